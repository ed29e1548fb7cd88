"""What a server costs, read from /proc while it runs.

Every server is started as the leader of its own session, so "the server"
is every process whose session id is the leader's pid: the server itself,
the children stage02 forks (one per connection) and nginx's worker. This
kernel has no /proc/PID/task/TID/children, so the tree is found by scanning
/proc for that session id; a process that calls setsid() would escape it,
and none of ours does.

What is read, and how it adds up over a process tree:

- CPU seconds: the run time the scheduler has charged to every thread of
  every live process (/proc/PID/task/TID/schedstat, in nanoseconds), plus
  each process's cutime + cstime (its children that exited and were reaped).
  A stage02 child that finishes moves its time into the parent's cutime when
  the parent reaps it, so nothing is lost or counted twice. Why not utime +
  stime from /proc/PID/stat: they are cut down to whole 10 ms clock ticks
  per process, and a thousand stage02 children using 8 ms each would add up
  to zero. (A thread that exits mid-run takes its time with it; the servers
  here keep their threads.)
- Context switches: voluntary_ctxt_switches and nonvoluntary_ctxt_switches
  from /proc/PID/task/TID/status, summed over every thread (the process's
  own status shows only its main thread's). Switches of threads or children
  that exited between two samples are not visible in /proc and are missed.
- RSS: the sum of VmRSS over the processes. A forked child counts the pages
  it shares with its parent again, so for stage02 this overstates real use;
  PSS (proportional set size, /proc/PID/smaps_rollup) splits shared pages
  between their users and is the fair figure. PSS is costly to read, so it is
  read once per run, in the middle.
- Open descriptors: entries of /proc/PID/fd, summed over processes (threads
  share one table).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# What reading /proc raises for a process or thread that has just exited.
GONE = (FileNotFoundError, ProcessLookupError, PermissionError)


@dataclass
class Sample:
    """One look at a server's process tree."""

    t: float  # time.monotonic() when the sample was taken
    cpu_s: float  # CPU seconds used so far by the tree (see the module docstring)
    switches: dict[int, tuple[int, int]]  # tid -> (voluntary, involuntary)
    rss_bytes: int
    fds: int  # 0 when not counted (a big tree, not the full sample)
    processes: int
    threads: int
    pss_bytes: int | None = None
    cost_s: float = 0.0  # how long taking this sample took


def _read(path: str) -> str | None:
    """A /proc file's text, or None if the process or thread is gone.

    os.open/os.read rather than open(): a sample of 10,000 stage02 children
    reads 40,000 of these files, and the file object costs more than the read.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except GONE:
        return None
    try:
        return os.read(fd, 8192).decode("ascii", "replace")
    except GONE:
        return None
    finally:
        os.close(fd)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat split into fields after the command name.

    The command name is in parentheses and may itself hold spaces or
    parentheses, so split after the last ')'. Index 0 is then field 3 (state).
    """
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text[text.rfind(")") + 2 :].split()


def session_members(sid: int) -> dict[int, list[str]]:
    """The processes whose session id is `sid` (the server's tree): pid -> stat fields."""
    members = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        # fields[3] is field 6 of stat: the session id.
        if fields is not None and int(fields[3]) == sid:
            members[int(name)] = fields
    return members


_STATUS_FIELDS = re.compile(
    r"^(VmRSS|voluntary_ctxt_switches|nonvoluntary_ctxt_switches):\s+(\d+)", re.M)


def _status(text: str) -> dict[str, int]:
    """The few numbers wanted from a /proc/.../status file."""
    return {m.group(1): int(m.group(2)) for m in _STATUS_FIELDS.finditer(text)}


def _switches(status: dict[str, int]) -> tuple[int, int]:
    return status.get("voluntary_ctxt_switches", 0), status.get("nonvoluntary_ctxt_switches", 0)


def _runtime_ns(path: str) -> int:
    text = _read(path)
    return int(text.split()[0]) if text else 0


def _threads(pid: int, switches: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """Reads every thread of a multi-threaded `pid`: context switches into `switches`.

    Returns (threads, their run time in ns).
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except GONE:
        return 0, 0
    runtime_ns = 0
    for tid in tids:
        text = _read(f"/proc/{pid}/task/{tid}/status")
        if text is not None:
            switches[int(tid)] = _switches(_status(text))
        runtime_ns += _runtime_ns(f"/proc/{pid}/task/{tid}/schedstat")
    return len(tids), runtime_ns


def _count_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except GONE:
        return 0


def _pss_bytes(pid: int) -> int:
    text = _read(f"/proc/{pid}/smaps_rollup")
    m = re.search(r"^Pss:\s+(\d+)", text or "", re.M)
    return 1024 * int(m.group(1)) if m else 0


# Above this many processes, descriptors are counted only in the run's one
# full sample (with PSS): listing 10,000 fd directories takes a while.
FDS_ALWAYS_BELOW = 64


def sample(sid: int, with_pss: bool = False) -> Sample:
    """Reads the whole tree of session `sid` once.

    `with_pss` makes it a full sample: PSS, and descriptors however many
    processes there are.
    """
    started = time.monotonic()
    child_ticks = runtime_ns = rss_kib = fds = threads = 0
    pss = 0
    switches: dict[int, tuple[int, int]] = {}
    members = session_members(sid)
    for pid, fields in members.items():
        # stat fields 16-17 (cutime cstime) and 20 (num_threads) are
        # fields[13], fields[14] and fields[17] here.
        child_ticks += int(fields[13]) + int(fields[14])
        text = _read(f"/proc/{pid}/status")
        if text is None:
            continue  # exited since the scan
        status = _status(text)
        rss_kib += status.get("VmRSS", 0)
        if int(fields[17]) == 1:
            # One thread (every stage02 child): the process's own files are
            # that thread's, and there is no task directory to list.
            threads += 1
            switches[pid] = _switches(status)
            runtime_ns += _runtime_ns(f"/proc/{pid}/schedstat")
        else:
            n, ns = _threads(pid, switches)
            threads += n
            runtime_ns += ns
        if with_pss or len(members) < FDS_ALWAYS_BELOW:
            fds += _count_fds(pid)
        if with_pss:
            pss += _pss_bytes(pid)
    return Sample(
        t=started,
        cpu_s=runtime_ns / 1e9 + child_ticks / CLOCK_TICKS,
        switches=switches,
        rss_bytes=rss_kib * 1024,
        fds=fds,
        processes=len(members),
        threads=threads,
        pss_bytes=pss if with_pss else None,
        cost_s=time.monotonic() - started,
    )


def switches_between(earlier: Sample, later: Sample) -> int:
    """Context switches (voluntary + involuntary) made between two samples.

    Counted per thread, so a thread that appeared in between counts from
    zero and one that vanished does not make the total go backwards.
    """
    total = 0
    for tid, (vol, invol) in later.switches.items():
        before = earlier.switches.get(tid, (0, 0))
        total += max(0, vol - before[0]) + max(0, invol - before[1])
    return total


@dataclass
class Recorder:
    """Samples one server repeatedly during a run.

    The sampler runs in the runner's main thread, between polls of the load
    generator, and keeps its own cost bounded: after a sample that took c
    seconds it waits at least 4c, so it never uses more than a fifth of a
    core (a tree of 10,000 stage02 children takes a while to read).
    """

    sid: int
    interval_s: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    _next_at: float = 0.0
    _pss_at: float | None = None

    def pss_at(self, when: float) -> None:
        """Asks for the one PSS reading to be taken at (or soon after) `when`."""
        self._pss_at = when

    def maybe_sample(self) -> None:
        now = time.monotonic()
        if now < self._next_at:
            return
        want_pss = self._pss_at is not None and now >= self._pss_at
        s = sample(self.sid, with_pss=want_pss)
        if want_pss:
            self._pss_at = None
        self.samples.append(s)
        self._next_at = s.t + max(self.interval_s, 5 * s.cost_s)

    def sample_now(self) -> None:
        """A sample right now, whatever the interval says (the end of a run)."""
        self._next_at = 0.0
        self.maybe_sample()

    def sleep_time(self) -> float:
        return max(0.0, min(0.05, self._next_at - time.monotonic()))
