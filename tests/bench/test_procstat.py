"""bench/compare/procstat.py: how a server's process tree is read from /proc.

The arithmetic is checked on a made-up /proc (a forking server's parent and
child, and a threaded server), the reading itself on a real process tree.
Run from the repository's root: python3 -m pytest tests/bench (CI: .ci/run).
"""

import os
import subprocess
import time

import pytest

from bench.compare import procstat

SID = 4000


def stat_line(pid, comm, sid, cutime, cstime, threads):
    """/proc/PID/stat: pid (comm) state ppid pgrp session ... cutime(16) cstime(17) ... num_threads(20)."""
    fields = ["S", "1", str(sid), str(sid)] + ["0"] * 9 + [str(cutime), str(cstime)] + ["0", "0",
                                                                                        str(threads)]
    return f"{pid} ({comm}) " + " ".join(fields) + " 0 0 0\n"


def status(rss_kib, voluntary, involuntary):
    return (f"Name:\tx\nVmRSS:\t  {rss_kib} kB\nvoluntary_ctxt_switches:\t{voluntary}\n"
            f"nonvoluntary_ctxt_switches:\t{involuntary}\n")


@pytest.fixture
def fake_proc(monkeypatch):
    """A session of three processes: a forking parent (4000) whose reaped
    children used 50 ticks, one child (4001), and a two-thread process (4002),
    plus a process of another session (5000) that must not count."""
    files = {
        "/proc/4000/stat": stat_line(4000, "stage02 (x)", SID, 30, 20, 1),
        "/proc/4000/status": status(1000, 10, 1),
        "/proc/4000/schedstat": "2000000000 0 0\n",
        "/proc/4000/smaps_rollup": "Rss: 1000 kB\nPss:  600 kB\n",
        "/proc/4001/stat": stat_line(4001, "stage02", SID, 0, 0, 1),
        "/proc/4001/status": status(900, 5, 0),
        "/proc/4001/schedstat": "500000000 0 0\n",
        "/proc/4001/smaps_rollup": "Pss:  300 kB\n",
        "/proc/4002/stat": stat_line(4002, "worker", SID, 0, 0, 2),
        "/proc/4002/status": status(2000, 99, 99),  # the main thread's only: not used
        "/proc/4002/task/4002/status": status(2000, 7, 2),
        "/proc/4002/task/4002/schedstat": "250000000 0 0\n",
        "/proc/4002/task/4003/status": status(2000, 3, 1),
        "/proc/4002/task/4003/schedstat": "250000000 0 0\n",
        "/proc/4002/smaps_rollup": "Pss:  100 kB\n",
        "/proc/5000/stat": stat_line(5000, "other", 5000, 99, 99, 1),
    }
    dirs = {
        "/proc": ["4000", "4001", "4002", "5000", "self", "meminfo"],
        "/proc/4002/task": ["4002", "4003"],
        "/proc/4000/fd": ["0", "1", "2", "3"],
        "/proc/4001/fd": ["0", "1", "2", "4"],
        "/proc/4002/fd": ["0", "1", "2"],
    }
    monkeypatch.setattr(procstat, "_read", files.get)
    monkeypatch.setattr(procstat.os, "listdir", lambda path: dirs[path])
    monkeypatch.setattr(procstat, "CLOCK_TICKS", 100)
    return files


def test_the_tree_is_the_session_and_its_costs_add_up(fake_proc):
    assert sorted(procstat.session_members(SID)) == [4000, 4001, 4002]
    s = procstat.sample(SID)
    # 2 + 0.5 + 0.25 + 0.25 s of run time, and 50 ticks of reaped children.
    assert s.cpu_s == pytest.approx(3.0 + 0.5)
    assert s.rss_bytes == (1000 + 900 + 2000) * 1024
    assert (s.processes, s.threads) == (3, 4)
    assert s.switches == {4000: (10, 1), 4001: (5, 0), 4002: (7, 2), 4003: (3, 1)}
    assert s.fds == 11
    assert s.pss_bytes is None
    assert procstat.sample(SID, with_pss=True).pss_bytes == (600 + 300 + 100) * 1024


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields(fake_proc):
    assert procstat._stat_fields(4000)[3] == str(SID)  # "stage02 (x)": split after the last ')'


def test_big_trees_count_descriptors_only_in_the_full_sample(fake_proc, monkeypatch):
    monkeypatch.setattr(procstat, "FDS_ALWAYS_BELOW", 3)
    assert procstat.sample(SID).fds == 0
    assert procstat.sample(SID, with_pss=True).fds == 11


def test_a_process_gone_between_the_scan_and_its_read_is_skipped(fake_proc):
    del fake_proc["/proc/4001/status"]  # exited after /proc was listed
    s = procstat.sample(SID)
    assert s.processes == 3 and s.threads == 3 and 4001 not in s.switches


def test_switches_count_per_thread_and_never_go_backwards():
    def at(switches):
        return procstat.Sample(0.0, 0.0, switches, 0, 0, 1, len(switches))

    earlier = at({1: (10, 2), 2: (5, 5)})
    later = at({1: (15, 3), 3: (4, 0)})  # thread 2 exited, thread 3 appeared
    assert procstat.switches_between(earlier, later) == 5 + 1 + 4


def test_a_real_session_is_read_whole():
    """A shell and two children in a session of their own: three processes,
    each with its own descriptors, and memory and CPU that add up."""
    tree = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], start_new_session=True,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while len(procstat.session_members(tree.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        recorder = procstat.Recorder(tree.pid)
        recorder.sample_now()
        recorder.maybe_sample()  # within the interval: no second sample
        assert len(recorder.samples) == 1
        s = recorder.samples[0]
        assert (s.processes, s.threads) == (3, 3)
        assert s.fds >= 3 * 3  # stdin, stdout and stderr at least, in each
        assert s.rss_bytes > 0 and s.cpu_s > 0
        recorder.pss_at(time.monotonic())
        recorder.sample_now()
        assert recorder.samples[-1].pss_bytes > 0
        assert 0 <= recorder.sleep_time() <= 0.05
    finally:
        os.killpg(tree.pid, 9)
        tree.wait()


def test_core_busy_is_everything_but_idle_and_iowait_per_cpu(monkeypatch):
    # proc(5): cpuN user nice system idle iowait irq softirq steal ...
    stats = iter([
        "cpu  0 0 0 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0 0 0\ncpu1 10 0 10 970 0 5 5 0 0 0\n",
        "cpu  0 0 0 0 0 0 0 0\ncpu0 130 0 70 840 60 0 0 0 0 0\ncpu1 70 0 20 970 0 10 25 5 0 0\n",
    ])
    monkeypatch.setattr(procstat, "_read", lambda path: next(stats) if path == "/proc/stat" else None)
    first = procstat.Sample(0.0, 0.0, {}, 0, 0, 1, 1, cores=procstat.read_cores())
    later = procstat.Sample(1.0, 0.0, {}, 0, 0, 1, 1, cores=procstat.read_cores())
    # CPU 0: 30 + 20 busy of 100 ticks (40 idle, 10 iowait); no interrupts.
    assert procstat.core_busy(first, later, 0) == (0.5, 0.0)
    # CPU 1: 60 + 10 + 5 + 20 + 5 (steal counts as busy) of 100, 25 in irq + softirq.
    assert procstat.core_busy(first, later, 1) == (1.0, 0.25)
    assert procstat.core_busy(first, later, 2) is None  # no such CPU
    assert procstat.core_busy(first, first, 0) is None  # no ticks in between


def test_a_spinning_process_keeps_its_core_busy():
    cpu = sorted(os.sched_getaffinity(0))[0]
    spinner = subprocess.Popen(["taskset", "-c", str(cpu), "sh", "-c", "while :; do :; done"])
    try:
        time.sleep(0.2)  # pinned and spinning
        first = procstat.Sample(0.0, 0.0, {}, 0, 0, 1, 1, cores=procstat.read_cores())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the CPU has ticked enough to say
            time.sleep(0.1)
            later = procstat.Sample(0.0, 0.0, {}, 0, 0, 1, 1, cores=procstat.read_cores())
            busy = procstat.core_busy(first, later, cpu)
            if busy is not None:
                break
        assert busy is not None and busy[0] > 0.9
    finally:
        spinner.kill()
        spinner.wait()
