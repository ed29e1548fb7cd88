"""The soak: minutes of mixed, partly hostile load against each event-driven server.

    scripts/compare --soak                 every event-driven server, 2 minutes each
    scripts/compare --soak --soak-minutes 5 --only stage07_epoll

Not in CI (it takes minutes per server). For each server, pinned to one
core while the load and this runner share the other:

1. start it with short timeouts (request 5 s, idle 10 s, send 5 s), warm
   it up for a few seconds, let it settle, and read its process tree from
   /proc: resident memory, descriptors, threads, zombie children;
2. for the soak's length, two well-behaved load generators run at a fixed
   rate (echo, and 1 MiB files over HTTP, every byte checked), while this
   runner keeps up to CHAOS_SLOTS hostile clients going: resets in the
   middle of a reply, clients that vanish after their request line,
   readers that read almost nothing (tiny receive buffer, big pipelined
   GETs), slowloris trickles, half-closes;
3. stop the load, close every hostile client, wait for the server to let
   go of them (at most the send timeout and a margin), read /proc again.

Flat means: descriptors and threads back to the baseline, no zombie, and
resident memory that stopped growing: its growth over the second half of
the soak is small (a leak grows all the time; an allocator that keeps freed
pages for reuse grows at first, then stays put). Also, the well-behaved
load generators must see no error at all: the hostile clients are nobody
else's problem. The exit status is 1 if a server is not flat.
"""

from __future__ import annotations

import errno
import json
import os
import random
import select
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import procstat
from . import servers as sv

# Event-driven servers only: the blocking stages (01-03) are bounded by
# their model (a slow client holds a thread or a process, by design), and
# stage04 spins by design, which would starve the hostile clients' core.
NOT_SOAKED = ("stage01_", "stage02_", "stage03_", "stage04_")
SERVER_FLAGS = ("--request-timeout", "5", "--idle-timeout", "10", "--send-timeout", "5")
SEND_TIMEOUT_S = 5
CHAOS_SLOTS = 40  # hostile clients open at once
ECHO_RATE, FILE_RATE = 4000, 100  # requests/s of the well-behaved load
RSS_SLACK_BYTES = 2 * 1024 * 1024  # growth allowed over the second half


def soaked(variants: list[sv.Variant]) -> list[sv.Variant]:
    """The first (default) variant of each event-driven server: the soak is
    about what the loop does with hostile clients, not the copy method."""
    out: dict[str, sv.Variant] = {}
    for v in variants:
        if not v.is_nginx and not v.name.startswith(NOT_SOAKED):
            out.setdefault(v.name, v)
    return list(out.values())


# ---------------------------------------------------------------------------
# Hostile clients: each is a small state machine driven by select()


@dataclass
class Hostile:
    kind: str
    sock: socket.socket
    started: float
    until: float  # it gives up (or is done) by then
    to_send: bytes = b""
    trickle: bool = False  # send one byte per step
    next_step: float = 0.0
    read_slowly: bool = False
    received: int = 0
    done: bool = False


def _connect(port: int, rcvbuf: int = 0) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    return s


def _reset(s: socket.socket) -> None:
    """Close with SO_LINGER {1, 0}: the kernel sends a reset, not a FIN."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


KINDS = ("reset-mid-reply", "vanish-after-request-line", "slow-reader", "slowloris", "half-close")


def new_hostile(kind: str, port: int, now: float) -> Hostile:
    if kind == "reset-mid-reply":
        # A big reply; the client reads a little of it, then resets.
        return Hostile(kind, _connect(port), now, now + random.uniform(0.05, 0.5),
                       to_send=b"GET /1m.bin HTTP/1.1\r\nHost: soak\r\n\r\n")
    if kind == "vanish-after-request-line":
        return Hostile(kind, _connect(port), now, now + 0.01, to_send=b"GET /1m.bin HTTP/1.1\r\n")
    if kind == "slow-reader":
        # Tiny receive window, ten 1 MiB replies asked for, a crumb read now and then:
        # the server's send timeout ends it.
        return Hostile(kind, _connect(port, rcvbuf=4096), now, now + SEND_TIMEOUT_S + 3,
                       to_send=b"GET /1m.bin\n" * 10, read_slowly=True)
    if kind == "slowloris":
        # One byte every 0.2 s of a request that never ends: the request timeout ends it.
        return Hostile(kind, _connect(port), now, now + 7,
                       to_send=b"GET /index.html HTTP/1.1\r\nX-Slow: " + b"a" * 200, trickle=True)
    # half-close: a request, then SHUT_WR; the reply must still come, then EOF.
    return Hostile(kind, _connect(port), now, now + 3, to_send=b"ECHO half-closed\n")


def step(h: Hostile, now: float, stats: dict) -> None:
    """One step of a hostile client; sets h.done when it is finished."""
    try:
        if h.to_send and now >= h.next_step:
            piece = h.to_send[:1] if h.trickle else h.to_send
            sent = h.sock.send(piece)
            h.to_send = h.to_send[sent:]
            h.next_step = now + 0.2 if h.trickle else now
            if not h.to_send and h.kind == "half-close":
                h.sock.shutdown(socket.SHUT_WR)
        if not h.read_slowly or now >= h.next_step:
            data = h.sock.recv(1024 if h.read_slowly else 65536)
            if h.read_slowly:
                h.next_step = now + 0.1
            if not data:  # EOF: the server closed (a timeout, or the end of a half-close)
                h.done = True
                stats["closed_by_server"] += 1
            h.received += len(data)
    except BlockingIOError:
        pass
    except OSError as e:
        h.done = True
        stats["reset_by_server" if e.errno in (errno.ECONNRESET, errno.EPIPE) else "errors"] += 1
    if h.kind == "reset-mid-reply" and h.received > 0 and now >= h.until:
        h.done = True
    if now >= h.until:
        h.done = True


def finish(h: Hostile) -> None:
    if h.kind in ("reset-mid-reply", "vanish-after-request-line") or h.to_send:
        _reset(h.sock)
    else:
        h.sock.close()


# ---------------------------------------------------------------------------
# One server


@dataclass
class Reading:
    rss: int
    fds: int
    threads: int
    zombies: int


def kernel_workers(sid: int) -> int:
    """io_uring's worker threads (iou-wrk-*) in the tree: the kernel starts
    them for work that would block (stage10's splices) and keeps one around;
    they are the kernel's, not threads the server started."""
    n = 0
    for pid in procstat.session_members(sid):
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    n += f.read().startswith("iou-")
        except OSError:
            pass
    return n


def read_tree(sid: int) -> Reading:
    s = procstat.sample(sid, with_pss=True)  # with_pss: descriptors counted however many processes
    zombies = sum(1 for fields in procstat.session_members(sid).values() if fields[0] == "Z")
    return Reading(s.rss_bytes, s.fds, s.threads - kernel_workers(sid), zombies)


def start_loadgen(loadgen: Path, port: int, root: Path, seconds: float, cpu: int | None,
                  workload: list[str]) -> tuple[subprocess.Popen, object]:
    out = tempfile.TemporaryFile()
    cmd = [str(loadgen), "--port", str(port), "--duration", f"{seconds:.0f}", "--json",
           "--time-limit", f"{seconds + 30:.0f}", *workload]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=sv.pin_to(cpu))
    return proc, out


def loadgen_result(proc: subprocess.Popen, out) -> dict:
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    out.seek(0)
    text = out.read().decode(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                result["exit_code"] = code
                return result
            except json.JSONDecodeError:
                break
    return {"exit_code": code, "errors": -1, "note": text.strip()[-300:]}


@dataclass
class SoakResult:
    server: str
    before: Reading | None = None
    after: Reading | None = None
    rss_mid: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    fds_peak: int = 0
    hostile: dict = field(default_factory=dict)
    echo: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return not self.problems


def soak_one(variant: sv.Variant, binaries: sv.Binaries, root: Path, server_cpu: int | None,
             client_cpu: int | None, seconds: float) -> SoakResult:
    result = SoakResult(variant.label)
    loadgen = binaries.loadgen
    assert loadgen is not None
    with sv.Server(variant, binaries, root, server_cpu, extra_flags=SERVER_FLAGS) as server:
        # Warm-up: the allocator and the kernel's socket caches reach their working size.
        warm = subprocess.run([str(loadgen), "--port", str(server.port), "--conns", "50",
                               "--duration", "3", "--json"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, preexec_fn=sv.pin_to(client_cpu))
        if warm.returncode != 0:
            result.problems.append("the warm-up load failed")
        time.sleep(1)
        result.before = read_tree(server.session)

        echo = start_loadgen(loadgen, server.port, root, seconds, client_cpu,
                             ["--workload", "echo", "--conns", "20", "--rate", str(ECHO_RATE)])
        files = start_loadgen(loadgen, server.port, root, seconds, client_cpu,
                              ["--workload", "http-get", "--path", "/1m.bin", "--expect-file",
                               str(root / "1m.bin"), "--conns", "4", "--rate", str(FILE_RATE)])
        stats = {k: 0 for k in ("started", "closed_by_server", "reset_by_server", "errors",
                                "connect_failed")}
        stats.update({f"kind {k}": 0 for k in KINDS})
        hostile: list[Hostile] = []
        started = time.monotonic()
        end = started + seconds
        next_sample = started
        rss: list[tuple[float, int, int]] = []
        while (now := time.monotonic()) < end:
            while len(hostile) < CHAOS_SLOTS:
                kind = random.choice(KINDS)
                try:
                    hostile.append(new_hostile(kind, server.port, now))
                    stats["started"] += 1
                    stats[f"kind {kind}"] += 1
                except OSError:
                    stats["connect_failed"] += 1
                    break
            readable = [h.sock for h in hostile]
            select.select(readable, [], [], 0.02)
            now = time.monotonic()
            for h in hostile:
                step(h, now, stats)
            for h in [h for h in hostile if h.done]:
                finish(h)
            hostile = [h for h in hostile if not h.done]
            if now >= next_sample:
                s = procstat.sample(server.session)
                rss.append((now - started, s.rss_bytes, s.fds))
                next_sample = now + 1.0
            if not server.alive():
                result.problems.append(f"the server died (status {server.proc.poll()})")
                break
        for h in hostile:
            finish(h)
        result.hostile = stats
        result.echo = loadgen_result(*echo)
        result.files = loadgen_result(*files)

        # Let the server notice every goodbye (a slow reader's is noticed at the
        # send timeout at the latest), then read the tree again.
        deadline = time.monotonic() + SEND_TIMEOUT_S + 10
        while time.monotonic() < deadline:
            result.after = read_tree(server.session)
            b, a = result.before, result.after
            if a.fds <= b.fds and a.zombies == 0 and a.threads == b.threads:
                break
            time.sleep(0.5)
        if rss:
            half = [r for t, r, _ in rss if t >= seconds / 2]
            result.rss_mid = half[0] if half else rss[-1][1]
            result.rss_end = rss[-1][1]
            result.rss_peak = max(r for _, r, _ in rss)
            result.fds_peak = max(f for _, _, f in rss)
        alive = server.alive()
    judge(result, alive)
    return result


def judge(r: SoakResult, alive: bool) -> None:
    if not alive:
        r.problems.append("the server was not alive at the end")
    if r.before and r.after:
        if r.after.fds > r.before.fds:
            r.problems.append(f"descriptors {r.before.fds} -> {r.after.fds}")
        if r.after.threads != r.before.threads:
            r.problems.append(f"threads {r.before.threads} -> {r.after.threads}")
        if r.after.zombies:
            r.problems.append(f"{r.after.zombies} zombie children")
    growth = r.rss_end - r.rss_mid
    if growth > RSS_SLACK_BYTES + r.rss_mid // 20:
        r.problems.append(f"resident memory still growing: +{growth / 2**20:.1f} MiB over the second half")
    for name, lg in (("echo", r.echo), ("files", r.files)):
        if lg.get("errors") or lg.get("exit_code"):
            r.problems.append(f"the well-behaved {name} load saw errors: {lg.get('errors')} "
                              f"{lg.get('error_kinds') or lg.get('note', '')}")
    if not r.hostile.get("started"):
        r.problems.append("no hostile client ran")


# ---------------------------------------------------------------------------
# Report


def mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def markdown(results: list[SoakResult], seconds: float, pinning: str) -> str:
    lines = [
        "# Soak",
        "",
        f"Each server {seconds / 60:g} min under mixed load ({ECHO_RATE} echo req/s on 20 connections, "
        f"{FILE_RATE} × 1 MiB HTTP GET/s on 4, every byte checked) while up to {CHAOS_SLOTS} hostile "
        "clients at a time reset mid-reply, vanish after the request line, read almost nothing, "
        "trickle a request (slowloris) or half-close. Server flags: " + " ".join(SERVER_FLAGS) + ". "
        f"Pinning: {pinning}.",
        "",
        "Before: after a 3 s warm-up and 1 s of rest. After: the load stopped, every hostile client "
        "gone, the server given up to the send timeout + 10 s to let go. RSS mid → end: resident "
        "memory at half time and at the end of the load (a leak keeps growing; a warmed-up "
        "allocator does not).",
        "",
        "| server | RSS before → after (MiB) | RSS mid → end (MiB) | fds before → peak → after | "
        "threads (io_uring's iou-wrk not counted) | zombies | hostile clients (closed/reset by server) | echo req, errors | "
        "files req, errors | flat |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, a = r.before, r.after
        h = r.hostile
        lines.append(
            f"| {r.server} | {mib(b.rss) if b else '?'} → {mib(a.rss) if a else '?'} | "
            f"{mib(r.rss_mid)} → {mib(r.rss_end)} | "
            f"{b.fds if b else '?'} → {r.fds_peak} → {a.fds if a else '?'} | "
            f"{b.threads if b else '?'} → {a.threads if a else '?'} | {a.zombies if a else '?'} | "
            f"{h.get('started', 0):,} ({h.get('closed_by_server', 0):,}/{h.get('reset_by_server', 0):,}) | "
            f"{r.echo.get('requests', 0):,}, {r.echo.get('errors', '?')} | "
            f"{r.files.get('requests', 0):,}, {r.files.get('errors', '?')} | "
            f"{'yes' if r.flat else 'NO: ' + '; '.join(r.problems)} |")
    return "\n".join(lines) + "\n"


def run(variants: list[sv.Variant], binaries: sv.Binaries, root: Path, server_cpu: int | None,
        client_cpu: int | None, minutes: float, out_dir: Path, pinning: str) -> int:
    todo = soaked(variants)
    if not todo:
        print("soak: no event-driven server among those selected")
        return 1
    seconds = minutes * 60
    print(f"soak: {len(todo)} servers x {minutes:g} min (about {len(todo) * (seconds + 15) / 60:.0f} min)",
          flush=True)
    results = []
    try:
        for n, variant in enumerate(todo, 1):
            try:
                r = soak_one(variant, binaries, root, server_cpu, client_cpu, seconds)
            except sv.ServerError as e:
                r = SoakResult(variant.label, problems=[f"server did not start: {e}"])
            results.append(r)
            print(f"[soak {n}/{len(todo)}] {variant.label:<30} "
                  f"fds {r.before.fds if r.before else '?'}->{r.after.fds if r.after else '?'}, "
                  f"RSS mid->end {mib(r.rss_mid)}->{mib(r.rss_end)} MiB, "
                  f"hostile {r.hostile.get('started', 0):,}: "
                  f"{'flat' if r.flat else 'NOT FLAT: ' + '; '.join(r.problems)}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: writing what was measured", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "soak.md").write_text(markdown(results, seconds, pinning))
    (out_dir / "soak.json").write_text(json.dumps(
        [{**r.__dict__, "before": r.before.__dict__ if r.before else None,
          "after": r.after.__dict__ if r.after else None, "flat": r.flat} for r in results], indent=2))
    print(f"soak results in {out_dir}/soak.md")
    return 0 if results and all(r.flat for r in results) and len(results) == len(todo) else 1
