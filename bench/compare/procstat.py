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
- How busy each CPU is, whoever keeps it busy: /proc/stat's per-CPU lines
  (proc(5): user, nice, system, idle, iowait, irq, softirq, steal, in clock
  ticks). On loopback the kernel does part of one side's work on the other
  side's CPU (the receiving of a segment runs where it was sent), so the
  server's own CPU seconds do not say whether the client's core was the limit.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable

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
    # CPU number -> (busy, irq + softirq, all) clock ticks so far (read_cores())
    cores: dict[int, tuple[int, int, int]] = field(default_factory=dict)


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


def read_cores() -> dict[int, tuple[int, int, int]]:
    """Per CPU: (busy, irq + softirq, all) clock ticks since boot, from /proc/stat.

    Busy is everything but idle and iowait; steal (time the hypervisor gave
    another guest) counts as busy, since the CPU was not ours to use.
    """
    cores: dict[int, tuple[int, int, int]] = {}
    for line in (_read("/proc/stat") or "").splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *ticks = line.split()
        values = [int(v) for v in ticks[:8]] + [0] * (8 - len(ticks[:8]))
        user, nice, system, idle, iowait, irq, softirq, steal = values
        everything = sum(values)
        cores[int(name[3:])] = (everything - idle - iowait, irq + softirq, everything)
    return cores


def core_busy(earlier: Sample, later: Sample, cpu: int) -> tuple[float, float] | None:
    """The share of time CPU `cpu` was busy between two samples, and the
    share spent in interrupts and softirqs; None without enough ticks."""
    if cpu not in earlier.cores or cpu not in later.cores:
        return None
    busy, irq, everything = (b - a for a, b in zip(earlier.cores[cpu], later.cores[cpu]))
    if everything < 20:  # under 0.2 s at 100 ticks/s: too coarse to say
        return None
    return busy / everything, irq / everything


def sample(sid: int, with_pss: bool = False, count_fds: bool = True) -> Sample:
    """Reads the whole tree of session `sid` once.

    `with_pss` makes it a full sample: PSS, and descriptors however many
    processes there are. Without `count_fds` only a full sample counts them.
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
        if with_pss or (count_fds and len(members) < FDS_ALWAYS_BELOW):
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
        cores=read_cores(),
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
    # Called right before and right after the full sample (the idle
    # scenarios read the kernel's caches at the same moment as PSS).
    before_full: Callable[[], None] | None = None
    on_full: Callable[[Sample], None] | None = None
    client_pid: int | None = None  # the load generator, once started
    # Count descriptors in every sample (not only the full one). Listing
    # /proc/PID/fd makes a dentry per descriptor: the idle scenarios turn it
    # off, or the kernel's share per connection would count them.
    count_fds: bool = True

    def pss_at(self, when: float) -> None:
        """Asks for the one PSS reading to be taken at (or soon after) `when`."""
        self._pss_at = when

    def maybe_sample(self) -> None:
        now = time.monotonic()
        if now < self._next_at:
            return
        want_pss = self._pss_at is not None and now >= self._pss_at
        if want_pss and self.before_full:
            self.before_full()
        s = sample(self.sid, with_pss=want_pss, count_fds=self.count_fds)
        if want_pss:
            self._pss_at = None
            if self.on_full:
                self.on_full(s)
        self.samples.append(s)
        self._next_at = s.t + max(self.interval_s, 5 * s.cost_s)

    def sample_now(self) -> None:
        """A sample right now, whatever the interval says (the end of a run)."""
        self._next_at = 0.0
        self.maybe_sample()

    def sleep_time(self) -> float:
        return max(0.0, min(0.05, self._next_at - time.monotonic()))


# ---------------------------------------------------------------------------
# Memory per idle connection: the server's PSS and the kernel's slab caches
#
# An idle connection costs the server whatever it keeps per connection (PSS,
# read above) and the kernel the objects behind a socket and its epoll
# registration. Those live in slab caches, counted system-wide in
# /proc/slabinfo (slabinfo(5): name, active_objs, num_objs, objsize,
# objperslab, pagesperslab, then tunables and slabdata; root only). The
# runner reads them before the idle clients connect and again with all of
# them connected, and divides the difference by the connections.

# Per socket: the TCP socket (TCPv6 for IPv6), its inode (sock_inode_cache),
# its struct file (filp) and its dentry. Both ends of a loopback connection
# are sockets on this machine, the load generator's and the server's, so each
# of these moves by two objects per connection: the server's share is half.
SOCKET_CACHES = ("TCP", "TCPv6", "sock_inode_cache", "filp", "dentry")
# Per descriptor watched by an epoll instance: the epitem (eventpoll_epi),
# the wait-queue hook on the socket (struct eppoll_entry, cache
# eventpoll_pwq) and the file's list head (ep_head). The load generator
# watches each of its sockets too, so the server's share is counted from its
# own epoll instances (the tfd lines of /proc/PID/fdinfo), not halved.
EPOLL_CACHES = ("eventpoll_epi", "eventpoll_pwq", "ep_head")
# io_uring's requests (stage10): one armed receive per connection; only the
# server uses io_uring, so all of it is the server's.
SERVER_ONLY_CACHES = ("io_kiocb",)
TRACKED_CACHES = SOCKET_CACHES + EPOLL_CACHES + SERVER_ONLY_CACHES

SLABINFO = "/proc/slabinfo"
SLAB_SYSFS = "/sys/kernel/slab"


@dataclass(frozen=True)
class SlabCache:
    active: int  # objects in use
    total: int  # objects allocated (in use or free in their slabs)
    size: int  # bytes per object, padding included


def parse_slabinfo(text: str) -> dict[str, SlabCache]:
    """/proc/slabinfo (version 2.x) as name -> SlabCache.

    Raises ValueError for another format: its columns could mean something else.
    """
    lines = text.splitlines()
    if not lines or not re.match(r"slabinfo - version: 2\.\d+$", lines[0].strip()):
        raise ValueError(f"not slabinfo 2.x: {lines[0] if lines else 'empty'!r}")
    caches = {}
    for line in lines[1:]:
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split()
        caches[fields[0]] = SlabCache(int(fields[1]), int(fields[2]), int(fields[3]))
    return caches


def read_slabinfo(path: str = SLABINFO) -> dict[str, SlabCache] | None:
    """The slab caches now, or None where /proc/slabinfo cannot be read (not root)."""
    try:
        with open(path) as f:
            return parse_slabinfo(f.read())
    except (OSError, ValueError):
        return None


def slab_lines(names: tuple[str, ...], listed: set[str], sysfs: str = SLAB_SYSFS) -> dict[str, dict]:
    """Where each cache of `names` is counted in /proc/slabinfo.

    SLUB merges caches whose objects have the same size and flags: the merged
    caches share one set of counters, which /proc/slabinfo shows under one of
    their names, and /sys/kernel/slab/NAME of each is a symlink to the same
    directory (":A-0000128"). So eventpoll_epi may stand for tcp_bind_bucket
    and others as well, and eventpoll_pwq may not be listed at all. Returns
    name -> {"line": the slabinfo line that counts it, or None if the kernel
    has no such cache; "merged_with": the other caches counted on that line}.
    """
    try:
        entries = os.listdir(sysfs)
    except OSError:
        entries = []
    groups: dict[str, list[str]] = {}
    for entry in entries:
        if entry.startswith(":"):
            continue  # the merged group's own directory, not a cache's name
        target = os.path.realpath(os.path.join(sysfs, entry))
        groups.setdefault(target, []).append(entry)
    out = {}
    for name in names:
        members = [name]
        if name in entries:
            members = sorted(groups.get(os.path.realpath(os.path.join(sysfs, name)), [name]))
        shown = [m for m in members if m in listed]
        line = name if name in listed else (shown[0] if shown else None)
        out[name] = {"line": line, "merged_with": [m for m in members if m != name]}
    return out


def epoll_watches(pid: int) -> int:
    """Descriptors watched by the epoll instances of process `pid`.

    Each epoll descriptor's /proc/PID/fdinfo lists one "tfd:" line per
    watched descriptor (proc(5)).
    """
    total = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except GONE:
        return 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                total += sum(1 for line in f if line.startswith("tfd:"))
        except GONE + (OSError,):
            continue
    return total


def session_epoll_watches(sid: int) -> int:
    return sum(epoll_watches(pid) for pid in session_members(sid))


@dataclass
class MemoryReading:
    """What idle connections cost, read once before and once with them connected."""

    pss_bytes: int
    slab: dict[str, SlabCache] | None
    server_watches: int  # descriptors the server's epoll instances watch
    client_watches: int = 0  # the same for the load generator


def read_memory(sid: int, client_pid: int | None = None) -> MemoryReading:
    # The caches first: listing /proc/PID/fd makes a dentry per descriptor,
    # which would count as the connections' own.
    slab = read_slabinfo()
    pss = sum(_pss_bytes(pid) for pid in session_members(sid))
    return MemoryReading(pss, slab, session_epoll_watches(sid),
                         epoll_watches(client_pid) if client_pid else 0)


def per_connection(before: MemoryReading, after: MemoryReading, conns: int,
                   lines: dict[str, dict]) -> dict:
    """Memory per connection between two readings, user and kernel.

    `conns`: the connections opened in between (idle and busy). `lines`:
    slab_lines() for TRACKED_CACHES. Returns the run's flat metrics
    (pss_per_idle_conn, kernel_per_idle_conn, kernel_both_ends_per_conn,
    slab_all_per_conn, kmalloc_per_conn, and per cache
    kernel_per_idle_conn.NAME) plus "kernel_caches", the breakdown per cache.
    """
    out: dict = {"pss_before": before.pss_bytes, "pss_after": after.pss_bytes,
                 "pss_per_idle_conn": (after.pss_bytes - before.pss_bytes) / conns,
                 "memory_conns": conns}
    if before.slab is None or after.slab is None:
        return out
    caches: dict[str, dict] = {}
    counted: set[str] = set()
    server_total = both_total = 0.0
    watches = after.server_watches - before.server_watches
    for name in TRACKED_CACHES:
        where = lines.get(name) or {"line": None, "merged_with": []}
        line = where["line"]
        if line is None or line not in before.slab or line not in after.slab:
            caches[name] = {"present": False}
            continue
        b, a = before.slab[line], after.slab[line]
        objects = a.active - b.active
        entry = {"present": True, "line": line, "merged_with": where["merged_with"],
                 "object_size": a.size, "objects": objects,
                 "objects_per_conn": objects / conns}
        # A line counted once, even if several tracked caches are merged on it.
        if line not in counted:
            counted.add(line)
            entry["both_ends_per_conn"] = objects * a.size / conns
            both_total += entry["both_ends_per_conn"]
        if name in SOCKET_CACHES:
            server = objects / 2  # one socket at each end of every connection
            entry["server_share"] = "half: one object at each end"
        elif name in EPOLL_CACHES:
            server = watches  # one of each per descriptor the server watches
            entry["server_share"] = "one per descriptor the server's epoll instances watch"
        else:
            server = objects
            entry["server_share"] = "all: only the server uses it"
        entry["server_per_conn"] = server * a.size / conns
        server_total += entry["server_per_conn"]
        out[f"kernel_per_idle_conn.{name}"] = entry["server_per_conn"]
        out[f"slab_objects_per_conn.{name}"] = entry["objects_per_conn"]  # both ends
        caches[name] = entry
    out["kernel_per_idle_conn"] = server_total
    out["kernel_both_ends_per_conn"] = both_total
    out["server_epoll_watches"] = watches
    out["client_epoll_watches"] = after.client_watches - before.client_watches

    def delta(names) -> float:
        return sum((after.slab[n].active - before.slab.get(n, SlabCache(0, 0, 0)).active)
                   * after.slab[n].size for n in names) / conns

    out["slab_all_per_conn"] = delta(after.slab)
    out["kmalloc_per_conn"] = delta([n for n in after.slab if n.startswith("kmalloc-")])
    out["kernel_caches"] = caches
    return out
