"""bench/compare: the order of the runs, per scenario or (--interleave) across them."""

from pathlib import Path

import pytest

from bench.compare import runner
from bench.compare import scenarios as sc
from bench.compare import servers as sv


@pytest.fixture
def order(monkeypatch):
    """Records (scenario, server) for every run instead of running anything."""
    done = []

    def fake_run_once(ctx, cell):
        done.append((cell.scenario.name, cell.variant.name))
        cell.runs.append({"rps": 1.0})
        return "ok"

    monkeypatch.setattr(runner, "run_once", fake_run_once)
    return done


def context(interleave):
    return runner.Context(binaries=None, root=Path("/"), server_cpu=None, client_cpu=None,
                          timing={"runs": 2}, full=True, interleave=interleave)


SCENARIOS = [sc.echo(64, 10), sc.echo(64, 10, idle=10_000)]
VARIANTS = [sv.Variant("stage07_epoll"), sv.Variant("stage05_select")]


def test_by_default_the_rounds_stay_within_each_scenario(order):
    cells = []
    runner.run_matrix(context(False), SCENARIOS, VARIANTS, cells)
    a, b = SCENARIOS[0].name, SCENARIOS[1].name
    # stage05 cannot hold 10,000 idle clients: n/a, never run.
    assert order == [(a, "stage07_epoll"), (a, "stage05_select")] * 2 + [(b, "stage07_epoll")] * 2
    assert [c.status for c in cells] == ["ok", "ok", "ok", "n/a"]


def test_interleave_takes_each_round_across_every_scenario(order):
    cells = []
    runner.run_matrix(context(True), SCENARIOS, VARIANTS, cells)
    a, b = SCENARIOS[0].name, SCENARIOS[1].name
    assert order == [(a, "stage07_epoll"), (a, "stage05_select"), (b, "stage07_epoll")] * 2
    assert all(len(c.runs) == 2 for c in cells if c.status == "ok")
    assert all(c.median == {"rps": 1.0} for c in cells if c.status == "ok")
