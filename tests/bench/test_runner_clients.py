"""bench/compare: the second client (wrk) and --congestion.

Run from the repository's root: python3 -m pytest tests/bench (CI: .ci/run).
"""

import socket
import subprocess
from pathlib import Path

import pytest

from bench.compare import runner
from bench.compare import scenarios as sc
from bench.compare.__main__ import congestion_controls

# wrk 4.1.0's report, as Debian's wrk prints it with --latency.
WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:40123/1m.bin
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.61ms    1.02ms  12.31ms   71.90%
    Req/Sec     3.82k   156.04     4.03k    80.00%
  Latency Distribution
     50%    2.45ms
     75%    3.10ms
     90%    3.88ms
     99%    6.02ms
  7602 requests in 2.00s, 7.43GB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3800.11
Transfer/sec:      3.71GB
"""


def test_parse_wrk_reads_rate_requests_latency_and_errors():
    report = runner.parse_wrk(WRK_OUTPUT)
    assert report["rps"] == pytest.approx(3800.11)
    assert report["requests"] == 7602
    assert report["latency_us"] == {"p50": pytest.approx(2450.0), "p90": pytest.approx(3880.0),
                                    "p99": pytest.approx(6020.0)}
    assert report["error_kinds"] == {"connect": 0, "read": 2, "write": 0, "timeout": 1, "non-2xx": 4}
    assert report["errors"] == 7


def test_parse_wrk_units_and_a_clean_run():
    text = WRK_OUTPUT.replace("     50%    2.45ms", "     50%  812.00us").replace("     99%    6.02ms",
                                                                                  "     99%    1.20s")
    text = text.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    text = text.replace("  Non-2xx or 3xx responses: 4\n", "")
    report = runner.parse_wrk(text)
    assert report["latency_us"]["p50"] == pytest.approx(812.0)
    assert report["latency_us"]["p99"] == pytest.approx(1_200_000.0)
    assert report["errors"] == 0


def test_parse_wrk_refuses_output_without_a_rate():
    assert runner.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n") is None


def test_wrk_command_matches_the_scenario():
    scenario = sc.fetch("http-get", "1m.bin", 10)
    cmd = runner.wrk_command(Path("/usr/bin/wrk"), scenario, 40123, 2.4)
    assert cmd == ["/usr/bin/wrk", "-t1", "-c10", "-d2s", "--latency", "--timeout", "10s",
                   "http://127.0.0.1:40123/1m.bin"]


def test_congestion_default_resolves_to_the_machine_and_duplicates_go():
    default = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    assert congestion_controls("default") == [default]
    assert congestion_controls(f"default,{default}, default") == [default]
    assert congestion_controls("") == []


def test_congestion_refuses_an_unknown_algorithm():
    with pytest.raises(SystemExit) as stopped:
        congestion_controls("no-such-algorithm")
    assert "refuses" in str(stopped.value)


def test_the_preload_library_sets_the_algorithm_on_every_tcp_socket(tmp_path):
    """bench/tcp_cc, built here with the system compiler: a child's sockets get the algorithm."""
    source = Path(__file__).resolve().parents[2] / "bench/tcp_cc/tcp_cc.c"
    library = tmp_path / "libiolab_tcp_cc.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True)
    default = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    probe = ("import socket; s = socket.socket(); "
             "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b'\\0').decode())")
    env = {"LD_PRELOAD": str(library), "IOLAB_TCP_CONGESTION": default, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["/usr/bin/python3", "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == default
    env["IOLAB_TCP_CONGESTION"] = "no-such-algorithm"
    refused = subprocess.run(["/usr/bin/python3", "-c", probe], env=env, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "libiolab_tcp_cc: TCP_CONGESTION no-such-algorithm" in refused.stderr
