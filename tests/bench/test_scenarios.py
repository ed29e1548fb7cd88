"""bench/compare/scenarios.py: the matrix as data, and the rules on it.

Run from the repository's root: python3 -m pytest tests/bench (CI: .ci/run).
"""

from bench.compare import scenarios as sc


def names(scenarios):
    return [s.name for s in scenarios]


def test_names_say_size_connections_and_idle():
    assert sc.echo(64, 10).name == "echo 64 B, c=10"
    assert sc.echo(4 * sc.KiB, 1000).name == "echo 4 KiB, c=1000"
    assert sc.echo(64, 10, idle=10_000).name == "echo 64 B, c=10 + 10,000 idle"
    assert sc.fetch("http-get", "16m.bin", 10).name == "http-get 16 MiB, c=10"


def test_file_scenarios_know_their_size_and_unit():
    small, big = sc.fetch("http-get", "1k.bin", 10), sc.fetch("http-get", "1m.bin", 10)
    assert small.is_file and small.file_size == 1024 and not small.per_byte
    assert big.file_size == sc.MiB and big.per_byte  # shown in MB/s and CPU s/GB
    echo = sc.echo(64, 10, idle=1000)
    assert not echo.is_file and echo.file_size == 0 and echo.fds == 1010


def test_every_tier_is_in_full_and_smoke_is_two_scenarios():
    full = sc.selected("full", None)
    assert set(names(sc.selected("quick", None))) <= set(names(full))
    assert names(sc.selected("smoke", None)) == ["echo 64 B, c=1", "http-get 1 KiB, c=1"]
    assert all(s.name for s in full) and len(set(names(full))) == len(full)  # names are keys


def test_a_selector_is_not_a_prefix_of_a_longer_number():
    chosen = names(sc.selected("full", ["c=1"]))
    assert "echo 64 B, c=1" in chosen
    assert not any("c=10" in n for n in chosen)  # c=1 does not pick c=10 or c=1000
    assert names(sc.selected("quick", ["ECHO 64 b, C=1000"])) == ["echo 64 B, c=1000"]
    assert sc.selected("quick", ["no such scenario"]) == []


def test_a_full_name_with_commas_picks_that_scenario_alone():
    # --scenarios splits on commas, and names have commas of their own.
    assert sc.split_names("echo 64 B, c=10") == ["echo 64 B, c=10"]
    assert sc.split_names("echo,c=100") == ["echo", "c=100"]
    assert sc.split_names("echo 64 B, c=10 + 10,000 idle,echo 64 B, c=1000") == [
        "echo 64 B, c=10 + 10,000 idle", "echo 64 B, c=1000"]
    # Exact: not the scenario that adds idle connections to c=10.
    assert names(sc.selected("quick", sc.split_names("echo 64 B, c=10"))) == ["echo 64 B, c=10"]
    assert names(sc.selected("quick", sc.split_names("echo 64 B, c=10 + 10,000 idle"))) == [
        "echo 64 B, c=10 + 10,000 idle"]


def test_what_each_model_cannot_do_is_said_not_measured():
    one, many, idle = sc.echo(64, 1), sc.echo(64, 100), sc.echo(64, 10, idle=10_000)
    assert sc.limitation("stage01_blocking", one) is None
    assert sc.limitation("stage01_blocking", many).startswith("serial")
    assert sc.limitation("stage05_select", many) is None
    assert sc.limitation("stage05_select", idle) == "n/a (FD_SETSIZE)"
    assert "1024" in sc.limitation("stage03_thread_pool", idle)
    assert sc.limitation("stage07_epoll", idle) is None


def test_stage03_gets_a_thread_per_client():
    assert sc.flags_for("stage03_thread_pool", sc.echo(64, 10, idle=1000)) == ("--threads", "1010")
    assert sc.flags_for("stage07_epoll", sc.echo(64, 10)) == ()


def test_timing_grows_with_idle_connections_and_few_long_replies():
    assert sc.warmup_for(sc.echo(64, 10, idle=10_000), 0.1) == 1.1
    assert sc.warmup_for(sc.echo(64, 10), 0.1) == 0.1
    big = sc.fetch("http-get", "256m.bin", 2, min_duration_s=8)
    assert sc.duration_for(big, 1.5) == 8 and sc.duration_for(sc.echo(64, 1), 1.5) == 1.5


def test_expanded_adds_a_cell_per_client_and_congestion_control():
    http, echo = sc.fetch("http-get", "1m.bin", 10), sc.echo(64, 10)
    assert sc.expanded([http, echo], ["loadgen"], []) == [http, echo]  # defaults: unchanged
    out = sc.expanded([http, echo], ["loadgen", "wrk"], ["cubic", "bbr"])
    assert names(out) == ["http-get 1 MiB, c=10, cubic", "http-get 1 MiB, c=10, wrk, cubic",
                          "http-get 1 MiB, c=10, bbr", "http-get 1 MiB, c=10, wrk, bbr",
                          "echo 64 B, c=10, cubic", "echo 64 B, c=10, bbr"]  # wrk: HTTP only
    assert {(s.client, s.cc) for s in out[:2]} == {("loadgen", "cubic"), ("wrk", "cubic")}


def test_the_ladder_is_echo_at_10_100_1000_and_every_rung_beside_stage07():
    from pathlib import Path

    from bench.compare import servers as sv
    assert names(sc.selected("ladder", None)) == ["echo 64 B, c=10", "echo 64 B, c=100",
                                                  "echo 64 B, c=1000"]
    built = sv.Binaries(Path("."), servers={"stage07_epoll": Path("a"), "stage10_io_uring": Path("b")})
    ladder = sv.ladder_variants(built)
    assert [v.label for v in ladder][:2] == ["stage07_epoll (level)",
                                             "stage10_io_uring (rung 1: recv/send)"]
    assert [v.flags for v in ladder[1:]] == [("--rung", str(n)) for n in range(1, 7)]
    assert sv.ladder_variants(sv.Binaries(Path("."))) == []  # nothing built, nothing to run
