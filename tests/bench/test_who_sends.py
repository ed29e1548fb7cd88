"""bench/compare/who_sends.py: how perf's samples are split per core.

The parsing is checked on made-up `perf script -F cpu,ip,sym` output (the
tool itself needs perf, wrk and root, and is run by hand).
Run from the repository's root: python3 -m pytest tests/bench (CI: .ci/run).
"""

import subprocess

from bench.compare import who_sends


def sample(cpu, *frames):
    """One sample of `perf script -F cpu,ip,sym`: the CPU, then its stack, innermost first."""
    return f"[{cpu:03d}] \n" + "".join(f"\tffffffff8100{i:04x} {f}\n" for i, f in enumerate(frames))


PERF_SCRIPT = "\n".join([
    # CPU 0, the server: two samples sending from sendfile(), one idle.
    sample(0, "skb_append_pagefrags", "tcp_sendmsg_locked", "tcp_write_xmit", "do_sendfile"),
    sample(0, "tcp_write_xmit", "__tcp_push_pending_frames", "do_sendfile"),
    sample(0, "pv_native_safe_halt", "default_idle", "do_idle"),
    # CPU 1, the client: copying out, delivering a segment, and a copy
    # whose caller is the read (not innermost: not counted as the copy).
    sample(1, "_copy_to_iter", "skb_copy_datagram_iter", "tcp_recvmsg"),
    sample(1, "tcp_v4_rcv", "process_backlog", "net_rx_action", "tcp_write_xmit", "tcp_ack"),
    sample(1, "__check_object_size", "_copy_to_iter", "tcp_recvmsg"),
    sample(1, "_copy_to_iter", "tcp_recvmsg"),
    # another CPU: ignored
    sample(2, "tcp_write_xmit"),
])


def test_perf_samples_are_shared_out_per_core(monkeypatch):
    def fake_run(cmd, **kwargs):
        assert cmd[:2] == ["perf", "script"]
        return subprocess.CompletedProcess(cmd, 0, PERF_SCRIPT, "")

    monkeypatch.setattr(who_sends.subprocess, "run", fake_run)
    shares = who_sends.perf_shares("perf.data", (0, 1))
    assert shares[0] == {"idle": 1 / 3, "copy": 0.0, "tcp_write_xmit": 2 / 3, "process_backlog": 0.0}
    assert shares[1] == {"idle": 0.0, "copy": 2 / 4, "tcp_write_xmit": 1 / 4, "process_backlog": 1 / 4}


def test_summary_pairs_server_and_client_and_leaves_gaps_visible():
    cells = [{"scenario": {"name": "wrk 16 MiB, cubic"}, "server": "stage08_zero_copy (sendfile)",
              "median": {"MBps": 2946.4, "server_core_busy": 0.46, "client_core_busy": 0.99,
                         "server_tcp_write_xmit_share": 0.15, "client_tcp_write_xmit_share": 0.04,
                         "server_timer_irqs_per_s": 1309, "client_timer_irqs_per_s": 1334,
                         "client_copy_s_per_GB": 0.0961}}]
    text = who_sends.summary(cells, (0, 1), 132)
    row = [line for line in text.splitlines() if line.startswith("| wrk 16 MiB")][0]
    assert row == ("| wrk 16 MiB, cubic | stage08_zero_copy (sendfile) | 2,946 | 46%/99% | 15%/4% | — "
                   "| 1,309/1,334 | 0.096 |")
