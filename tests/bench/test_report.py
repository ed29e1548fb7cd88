"""bench/compare/report.py: the tables, the spread flag, and the files written.

Run from the repository's root: python3 -m pytest tests/bench (CI: .ci/run).
"""

import csv
import json

import pytest

from bench.compare import report
from bench.compare import scenarios as sc
from bench.compare.runner import Cell, median_of
from bench.compare.servers import Variant

ECHO = sc.echo(64, 10)
BIG = sc.fetch("http-get", "16m.bin", 10)
EPOLL = Variant("stage07_epoll", ("--trigger", "level"), "level")
SELECT = Variant("stage05_select")


def measured(scenario, variant, rates):
    """A cell with one run per rate (req/s, or MB/s for big files)."""
    key = "MBps" if scenario.per_byte else "rps"
    runs = []
    for i, rate in enumerate(rates):
        run = {key: rate, "rps": rate if key == "rps" else rate / 16.8, "requests": 1000,
               "errors": 0, "cpu_us_per_req": 12.5, "switches_per_req": 0.5,
               "rss_peak": 3_500_000, "fds_peak": 14, "procs_peak": 1, "threads_peak": 1,
               "latency_us": {"p50": 80.0 + i, "p99": 20_000.0 + i}}
        if scenario.per_byte:
            run["cpu_s_per_GB"] = 0.25
        runs.append(run)
    return Cell(scenario, variant, "ok", runs=runs, median=median_of(runs))


def test_numbers_are_formatted_for_reading():
    assert report._us(None) == "—"
    assert report._us(950.0) == "950 µs" and report._us(25_000.0) == "25.0 ms"
    assert report._bytes(3_500_000) == "3.5 MB" and report._bytes(512) == "512 B"
    assert report._num(12345.6) == "12,346" and report._num(0.256, 2) == "0.26"
    assert report._cpu_per_req(12.34) == "12.3 µs" and report._cpu_per_req(1234.0) == "1,234 µs"


def test_spread_is_the_runs_range_around_the_median_flagged_past_ten_percent():
    steady = measured(ECHO, EPOLL, [95_000, 100_000, 104_000])
    assert report.spread(steady) == pytest.approx((-0.05, 0.04))
    assert report.spread_text(steady) == "−5%/+4%"
    noisy = measured(ECHO, EPOLL, [88_000, 100_000, 112_000])
    assert report.spread_text(noisy) == "−12%/+12% ⚑"
    assert report.spread(measured(ECHO, EPOLL, [100_000])) is None  # one run: no spread
    assert report.rate_key(BIG) == "MBps" and report.rate_key(ECHO) == "rps"


def test_a_row_shows_a_rate_or_why_there_is_none():
    row = report._row(measured(ECHO, EPOLL, [95_000, 100_000, 104_000]))
    assert row[:6] == ["stage07_epoll (level)", "100,000", "−5%/+4%", "81 µs", "20.0 ms", "12.5 µs"]
    assert row[-1] == "0"
    file_row = report._row(measured(BIG, EPOLL, [1500.0, 1600.0, 1700.0]))
    assert file_row[1].startswith("1,600 (") and file_row[5] == "0.25 s"
    na = Cell(sc.echo(64, 10, idle=10_000), SELECT, "n/a", "n/a (FD_SETSIZE)")
    assert report._row(na)[:2] == ["stage05_select", "n/a (FD_SETSIZE)"]
    assert report._glance(na) == "n/a (FD_SETSIZE)"
    serial = Cell(ECHO, Variant("stage01_blocking"), "n/a", "serial (one client at a time)")
    assert report._glance(serial) == "serial"


def test_summary_has_a_glance_table_and_one_table_per_scenario():
    cells = [measured(ECHO, EPOLL, [95_000, 100_000, 104_000]),
             measured(ECHO, SELECT, [80_000, 90_000, 120_000]),
             measured(BIG, EPOLL, [1500.0, 1600.0, 1700.0])]
    env = {"date": "2026-12-06", "pinning": "server on CPU 0"}
    text = report.summary_markdown("quick", sc.TIMING["quick"], cells, [], env, 90.0, False)
    assert "## At a glance" in text and "## echo 64 B, c=10" in text
    assert "## http-get 16 MiB, c=10" in text
    assert "| stage05_select | 90,000 ⚑ |" in text  # its runs spread past ±10%
    assert "1,600 MB/s, 0.25 CPU s/GB" in text
    assert "Interrupted" not in text
    assert "**Interrupted: this table is incomplete.**" in report.summary_markdown(
        "quick", sc.TIMING["quick"], cells, [], env, 90.0, True)


def test_write_all_writes_the_four_files(tmp_path):
    cells = [measured(ECHO, EPOLL, [95_000, 100_000, 104_000]),
             Cell(ECHO, SELECT, "failed", "server did not start: boom")]
    syscalls = [{"server": "stage07_epoll (level)", "scenario": "echo 64 B, c=10", "requests": 100,
                 "per_request": {"epoll_wait": 1.0, "read": 1.0, "sendto": 1.0}}]
    env = {"date": "2026-12-06", "pinning": "not pinned (a single CPU)"}
    report.write_all(tmp_path, "smoke", sc.TIMING["smoke"], cells, syscalls, env, 5.0, False)
    assert {p.name for p in tmp_path.iterdir()} == {"summary.md", "results.csv", "results.json",
                                                     "environment.md"}
    data = json.loads((tmp_path / "results.json").read_text())
    assert [c["status"] for c in data["cells"]] == ["ok", "failed"]
    assert data["cells"][0]["median"]["rps"] == 100_000
    assert data["cells"][0]["flags"] == ["--trigger", "level"]
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == report.CSV_COLUMNS
    assert (rows[0]["rate_min"], rows[0]["rate_max"]) == ("95000", "104000")
    assert rows[1]["note"] == "server did not start: boom"
    summary = (tmp_path / "summary.md").read_text()
    assert "## System calls per request" in summary and "| 3.00 |" in summary
    assert "| date | 2026-12-06 |" in (tmp_path / "environment.md").read_text()
