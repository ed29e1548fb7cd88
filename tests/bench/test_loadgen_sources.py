"""bench/loadgen's --source and --sources: connections really leave from
several local addresses.

A listener here accepts the load generator's idle connections and records
each one's peer address (getpeername on the server's side). It needs the
built load generator: ctest runs this file with LOADGEN set to it (the test
loadgen.sources); a plain `pytest tests/bench` without a build skips it.
"""

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOADGEN = os.environ.get("LOADGEN") or str(REPO / "build/debug/bench/loadgen/loadgen")

pytestmark = pytest.mark.skipif(not os.access(LOADGEN, os.X_OK),
                                reason=f"no load generator at {LOADGEN} (build it, or set LOADGEN)")


def peers_of_idle_run(flags: list[str], idle: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Runs the load generator with `idle` idle connections against a listener
    that accepts them and keeps them open; returns its result and the peers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(idle)
        listener.settimeout(20)  # a bound on every accept, never a measure
        peers: list[str] = []
        accepted: list[socket.socket] = []

        def accept_all():
            try:
                while len(accepted) < idle:
                    conn, (host, _) = listener.accept()
                    accepted.append(conn)
                    peers.append(host)
            except OSError:
                pass  # timed out: the assertions below say what was missing

        acceptor = threading.Thread(target=accept_all)
        acceptor.start()
        try:
            result = subprocess.run(
                [LOADGEN, "--port", str(listener.getsockname()[1]), "--conns", "0", "--idle",
                 str(idle), "--duration", "0.2", "--time-limit", "20", "--json", *flags],
                capture_output=True, text=True, timeout=60)
        finally:
            acceptor.join(timeout=30)
            for conn in accepted:
                conn.close()
    return result, peers


def test_sources_spreads_connections_over_loopback_addresses():
    result, peers = peers_of_idle_run(["--sources", "3"], 9)
    assert result.returncode == 0, result.stderr
    assert sorted(peers) == ["127.0.0.1"] * 3 + ["127.0.0.2"] * 3 + ["127.0.0.3"] * 3


def test_source_list_is_used_in_turn():
    result, peers = peers_of_idle_run(["--source", "127.0.0.5,127.0.0.9"], 4)
    assert result.returncode == 0, result.stderr
    assert sorted(peers) == ["127.0.0.5", "127.0.0.5", "127.0.0.9", "127.0.0.9"]


def test_without_source_every_connection_comes_from_the_kernels_choice():
    result, peers = peers_of_idle_run([], 3)
    assert result.returncode == 0, result.stderr
    assert peers == ["127.0.0.1"] * 3


@pytest.mark.parametrize("flags", [["--source", "::1"], ["--source", "127.0.0.1,,127.0.0.2"],
                                   ["--sources", "2", "--source", "127.0.0.1"],
                                   ["--sources", "0"]])
def test_bad_sources_are_usage_errors(flags):
    result = subprocess.run([LOADGEN, "--port", "9", "--idle", "1", *flags], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "--source" in result.stderr
