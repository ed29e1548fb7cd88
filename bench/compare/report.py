"""Writing the results: summary.md, results.csv, results.json, environment.md.

The Markdown table is the one the README shows: a section per scenario, a
row per server. A server that cannot take part in a scenario says why
("serial", "n/a (FD_SETSIZE)") instead of showing a number: a zero would
read as "tried and got nothing".
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path

NOTES = """\
How to read this:

- **req/s**, **MB/s**, **p50**, **p99**: from the load generator (closed loop:
  each connection sends its next request when the reply to the previous one has
  arrived and been checked byte for byte; latency is send to last reply byte).
- **CPU/req** (or **CPU s/GB** for files): server CPU time (user + system, all
  threads, children included) per request, or per GB of bodies sent. It is
  the run time the scheduler charged to every thread of every process in the
  server's session (/proc/PID/task/TID/schedstat, in ns) plus the CPU time of
  children already reaped (cutime + cstime in /proc/PID/stat), measured as a
  rate over the steady part of each run (connection setup excluded) and
  divided by the request rate. **≈** marks a figure taken over the whole run,
  setup included: a tree of thousands of processes is too slow to sample often.
- **ctx sw/req**: voluntary + involuntary context switches of all the server's
  threads and processes (/proc/PID/task/TID/status) per request, same window.
- **peak RSS**: the largest sum of VmRSS over the server's processes. Forked
  children (stage02) count their shared pages again, so there **PSS**
  (/proc/PID/smaps_rollup, read once mid-run) is the fair memory figure.
- **fds**, **procs/threads**: the most descriptors, processes and threads seen.
  For stage02 the process count also says how many clients it had got to:
  forking for a thousand newcomers while serving the others takes seconds.
- **Memory per connection** (scenarios with idle connections): the
  server's PSS once the connections are open (read with the full sample)
  minus its PSS before the load generator started, divided by the
  connections opened (idle and busy); and the kernel's slab caches
  (/proc/slabinfo, objects in use × object size, system-wide) over the same
  interval. A loopback connection is two sockets on this machine, the load
  generator's and the server's: **kernel** is the server's end (half of each
  socket cache, TCP, sock_inode_cache, filp and dentry; the epoll caches
  eventpoll_epi, eventpoll_pwq (struct eppoll_entry) and ep_head counted
  from the descriptors the server's own epoll instances watch; io_kiocb all
  the server's), **both ends** the whole difference of those caches. SLUB
  merges caches of the same size: a cache merged into another (results.json
  names them) counts the others' objects too. **all slab** adds every cache,
  the kmalloc ones included, which anything running meanwhile moves: read it
  as an upper bound. Caches not read (no root) show —.
- **runs**: the slowest and the fastest run against the median (the rate
  column's unit); ⚑ where either lies more than 10% away.
- **busy: server/client core** (file scenarios): how much of the measured
  time the server's core and the client's core were busy, whoever kept them
  busy (/proc/stat: everything but idle and iowait). On loopback part of
  each side's kernel work runs on the other's core, so a client core at
  100% with the server's core half idle says the client was the limit, not
  the server.
- Numbers are medians of the runs; errors are summed. The machine is shared
  and noisy: compare servers within this table, not across machines or days.
"""

CSV_COLUMNS = [
    "scenario", "workload", "conns", "idle", "size_bytes", "server", "status", "note", "runs",
    "rps", "MBps", "rate_min", "rate_max", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
    "cpu_us_per_req", "cpu_s_per_GB", "cpu_cores", "switches_per_req",
    "rss_peak", "pss", "fds_peak", "procs_peak", "threads_peak", "errors", "requests",
    "pss_per_idle_conn", "kernel_per_idle_conn", "kernel_both_ends_per_conn", "slab_all_per_conn",
    "server_core_busy", "client_core_busy", "server_core_irq", "client_core_irq",
]

# The memory table's cache columns: (heading, caches added up).
MEMORY_CACHES = [("TCP", ("TCP", "TCPv6")), ("sock inode", ("sock_inode_cache",)),
                 ("filp", ("filp",)), ("dentry", ("dentry",)),
                 ("epoll", ("eventpoll_epi", "eventpoll_pwq", "ep_head")), ("io_uring", ("io_kiocb",))]


# ---------------------------------------------------------------------------
# Number formatting


def _us(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 1000:.1f} ms" if v >= 10_000 else f"{v:,.0f} µs"


def _bytes(v: float | None) -> str:
    if v is None:
        return "—"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= size:
            return f"{v / size:.1f} {unit}"
    return f"{v:.0f} B"


def _num(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def _cpu_per_req(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} µs" if v < 100 else f"{v:,.0f} µs"


# ---------------------------------------------------------------------------
# Spread: how far the runs of a cell lie from their median

# Beyond this, a cell's runs disagree too much for its median to be quoted
# as a difference between servers: the tables mark it.
SPREAD_LIMIT = 0.10


def rate_key(scenario) -> str:
    return "MBps" if scenario.per_byte else "rps"


def spread(cell) -> tuple[float, float] | None:
    """(slowest run, fastest run) relative to the median rate, e.g. (-0.08, 0.12)."""
    key = rate_key(cell.scenario)
    values = [r[key] for r in cell.runs if isinstance(r.get(key), (int, float))]
    median = cell.median.get(key)
    if len(values) < 2 or not median:
        return None
    return min(values) / median - 1, max(values) / median - 1


def spread_text(cell) -> str:
    """"−8%/+12% ⚑": the runs' range around the median; ⚑ beyond ±10%."""
    rel = spread(cell)
    if rel is None:
        return "—"
    lo, hi = rel
    flag = " ⚑" if max(-lo, hi) > SPREAD_LIMIT else ""
    return f"{lo * 100:+.0f}%/{hi * 100:+.0f}%".replace("-", "−") + flag


# ---------------------------------------------------------------------------
# summary.md


def _row(cell) -> list[str]:
    s, m = cell.scenario, cell.median
    name = cell.variant.label
    if cell.status == "n/a":
        return [name, cell.note] + ["—"] * 10
    if cell.status == "failed" and not m:
        return [name, f"failed: {cell.note}"] + ["—"] * 10
    rate = _num(m.get("rps"))
    if s.per_byte:
        mbps = m.get("MBps")
        rate = f"{_num(mbps, 1 if mbps is not None and mbps < 100 else 0)} ({rate} req/s)"
    cpu = (f"{m['cpu_s_per_GB']:.2f} s" if "cpu_s_per_GB" in m else "—") if s.per_byte \
        else _cpu_per_req(m.get("cpu_us_per_req"))
    if any(r.get("window") == "whole run" for r in cell.runs) and cpu != "—":
        cpu = "≈" + cpu  # measured over the whole run, connection setup included
    procs = f"{_num(m.get('procs_peak'))}/{_num(m.get('threads_peak'))}"
    errors = _num(m.get("errors", 0))
    if m.get("errors"):
        errors += " (" + ", ".join(f"{k} {v:,}" for k, v in m.get("error_kinds", {}).items()) + ")"
    if cell.status == "failed":
        errors += f"; failed: {cell.note}"
    return [name, rate, spread_text(cell), _us(m.get("p50_us")), _us(m.get("p99_us")), cpu,
            _num(m.get("switches_per_req"), 2), _bytes(m.get("rss_peak")), _bytes(m.get("pss")),
            _num(m.get("fds_peak")), procs, errors]


def _busy(m: dict) -> str:
    """"31%/100%": how busy the server's and the client's cores were, by anyone."""
    if "server_core_busy" not in m or "client_core_busy" not in m:
        return "—"
    return f"{m['server_core_busy']:.0%}/{m['client_core_busy']:.0%}"


def _memory_row(cell) -> list[str]:
    m = cell.median

    def b(key: str) -> str:
        return "—" if m.get(key) is None else f"{m[key]:,.0f} B"

    row = [cell.variant.label, b("pss_per_idle_conn"), b("kernel_per_idle_conn")]
    for _, names in MEMORY_CACHES:
        values = [m[f"kernel_per_idle_conn.{n}"] for n in names if f"kernel_per_idle_conn.{n}" in m]
        row.append(f"{sum(values):,.0f} B" if values else "—")
    return row + [b("kernel_both_ends_per_conn"), b("slab_all_per_conn")]


def _memory_table(cells: list) -> str:
    header = (["server", "PSS/conn", "kernel/conn"] + [h for h, _ in MEMORY_CACHES]
              + ["both ends", "all slab"])
    return _table(header, ["---"] + ["--:"] * (len(header) - 1), [_memory_row(c) for c in cells])


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _glance(cell) -> str:
    """One cell of the overview: the rate, or why there is none."""
    if cell is None:
        return ""
    m = cell.median
    if cell.status == "n/a":
        return cell.note.split(" (")[0] if cell.note.startswith("serial") else cell.note
    if not m:
        return "failed"
    text = _num(m.get("rps"))
    if cell.scenario.per_byte:
        text = _num(m.get("MBps")) + " MB/s"
        if "cpu_s_per_GB" in m:
            text += f", {m['cpu_s_per_GB']:.2f} CPU s/GB"
    rel = spread(cell)
    if rel and max(-rel[0], rel[1]) > SPREAD_LIMIT:
        text += " ⚑"
    return text + (" ⚠" if m.get("errors") or cell.status == "failed" else "")


def glance_table(cells: list, scenarios: list) -> str:
    """Servers down, scenarios across: req/s (echo) or MB/s (files), medians."""
    servers = []
    for c in cells:
        if c.variant.label not in servers:
            servers.append(c.variant.label)
    at = {(c.variant.label, c.scenario): c for c in cells}
    rows = [[name] + [_glance(at.get((name, s))) for s in scenarios] for name in servers]
    return _table(["server"] + [s.name for s in scenarios], ["---"] + ["--:"] * len(scenarios), rows)


def summary_markdown(tier: str, timing: dict, cells: list, syscalls: list[dict], env: dict,
                     elapsed_s: float, interrupted: bool) -> str:
    out = ["# iolab: every server, one scenario matrix", ""]
    out.append(
        f"{tier.capitalize()} matrix: {timing['runs']} run(s) × {timing['duration_s']:g} s "
        f"(after {timing['warmup_s']:g} s of warm-up) per server and scenario; medians shown. "
        f"{env['date']}, {env['pinning']}. Took {elapsed_s / 60:.1f} min. "
        f"Machine and build: [environment.md](environment.md).")
    if interrupted:
        out += ["", "**Interrupted: this table is incomplete.**"]
    scenarios = []
    for c in cells:
        if c.scenario not in scenarios:
            scenarios.append(c.scenario)
    out += ["", "## At a glance", "",
            "Requests per second, or MB/s and server CPU seconds per GB for files of 1 MiB and "
            "more; medians; "
            f"⚑ marks a cell whose runs spread more than ±{SPREAD_LIMIT:.0%} around the median "
            "(compare it with care), ⚠ marks errors (see the "
            "scenario's table). Empty: the server does not take part in that scenario.", "",
            glance_table(cells, scenarios)]
    for s in scenarios:
        file_cols = s.per_byte
        header = ["server", "MB/s" if file_cols else "req/s", "runs", "p50", "p99",
                  "CPU s/GB" if file_cols else "CPU/req", "ctx sw/req", "peak RSS", "PSS",
                  "fds", "procs/threads", "errors"]
        align = ["---"] + ["--:"] * 10 + ["---"]
        rows = [_row(c) for c in cells if c.scenario == s]
        if file_cols:
            # Who the limit was: a core busy all the time (runner.window_rates).
            header.append("busy: server/client core")
            align.append("--:")
            for row, c in zip(rows, [c for c in cells if c.scenario == s]):
                row.append(_busy(c.median))
        out += ["", f"## {s.name}", ""]
        if s.min_duration_s > timing["duration_s"]:
            out += [f"Measured {s.min_duration_s:g} s per run: only whole replies count, and these are few.", ""]
        out.append(_table(header, align, rows))
        memory = [c for c in cells if c.scenario == s and "pss_per_idle_conn" in c.median]
        if memory:
            out += ["", f"Memory per connection, {s.fds:,} connections open (see the notes below): "
                    "the server's PSS; the kernel's slab objects at the server's end, by cache; "
                    "both ends of the loopback connections; every slab cache (kmalloc included).",
                    "", _memory_table(memory)]
    if syscalls:
        out += ["", "## System calls per request", "",
                "Each server once under `strace -f -c` (its whole life, divided by the requests "
                "its summary line reports). Tracing slows it down many times; only the counts mean "
                "something.", ""]
        rows = []
        for e in syscalls:
            per = sorted(e.get("per_request", {}).items(), key=lambda kv: -kv[1])
            shown = " · ".join(f"{k} {v:.2f}" for k, v in per[:5]) or e.get("note", "—")
            total = sum(v for _, v in per)
            rows.append([e["server"], e["scenario"], _num(e.get("requests")),
                         f"{total:.2f}" if per else "—", shown])
        out.append(_table(["server", "scenario", "requests", "all calls/req", "top system calls per request"],
                          ["---", "---", "--:", "--:", "---"], rows))
    out += ["", NOTES]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# CSV and JSON


def _csv_row(cell) -> dict:
    s, m = cell.scenario, cell.median
    row = {"scenario": s.name, "workload": s.workload, "conns": s.conns, "idle": s.idle,
           "size_bytes": s.file_size if s.is_file else s.size, "server": cell.variant.label,
           "status": cell.status, "note": cell.note, "runs": len(cell.runs)}
    rates = [r[rate_key(s)] for r in cell.runs if isinstance(r.get(rate_key(s)), (int, float))]
    if rates:
        row["rate_min"], row["rate_max"] = round(min(rates), 3), round(max(rates), 3)
    for key in CSV_COLUMNS:
        if key not in row:
            v = m.get(key)
            row[key] = "" if v is None else round(v, 3) if isinstance(v, float) else v
    return row


def _cell_json(cell) -> dict:
    s = cell.scenario
    return {
        "scenario": {"name": s.name, "workload": s.workload, "conns": s.conns, "idle": s.idle,
                     "size": s.size, "file": s.file, "file_size": s.file_size,
                     "client": s.client, "cc": s.cc},
        "server": cell.variant.label, "binary": cell.variant.name, "flags": list(cell.variant.flags),
        "status": cell.status, "note": cell.note, "median": cell.median, "runs": cell.runs,
        "server_summary": cell.server_summary,
    }


def write_all(out_dir: Path, tier: str, timing: dict, cells: list, syscalls: list[dict], env: dict,
              elapsed_s: float, interrupted: bool) -> None:
    (out_dir / "summary.md").write_text(
        summary_markdown(tier, timing, cells, syscalls, env, elapsed_s, interrupted))
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS)
        writer.writeheader()
        for c in cells:
            writer.writerow(_csv_row(c))
    (out_dir / "results.json").write_text(json.dumps(
        {"tier": tier, "timing": timing, "interrupted": interrupted, "elapsed_s": elapsed_s,
         "environment": env, "cells": [_cell_json(c) for c in cells], "syscalls": syscalls},
        indent=1))
    (out_dir / "environment.md").write_text(environment_markdown(env))


# ---------------------------------------------------------------------------
# environment.md


def _first_line(cmd: list[str]) -> str:
    try:
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        text = text or ""
        return text.strip().splitlines()[0] if text.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _cmake_cache(build_dir: Path, key: str) -> str:
    try:
        for line in (build_dir / "CMakeCache.txt").read_text().splitlines():
            if line.startswith(key + ":"):
                return line.split("=", 1)[1]
    except OSError:
        pass
    return "?"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def environment(repo: Path, build_dir: Path, binaries, pinning: str, nofile: tuple[int, int],
                tier: str, timing: dict) -> dict:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    compiler = _cmake_cache(build_dir, "CMAKE_CXX_COMPILER")
    mem = re.search(r"MemTotal:\s*(\d+)", _read("/proc/meminfo"))
    commit = _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                           text=True).stdout.strip()
    try:
        import matplotlib
        mpl = matplotlib.__version__
    except ImportError:
        mpl = "not available (no plots)"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "cpu": model.group(1).strip() if model else "?",
        "cores": f"{os.cpu_count()} online",
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
        or "not exposed (no cpufreq: typical of a VM)",
        "ulimit -n": f"{nofile[0]} (soft raised to hard: {nofile[1]})",
        "compiler": f"{compiler}: {_first_line([compiler, '--version'])}" if compiler != "?" else "?",
        "build type": _cmake_cache(build_dir, "CMAKE_BUILD_TYPE") + f" ({os.path.relpath(build_dir, repo)})",
        "commit": commit + (" + uncommitted changes" if dirty else ""),
        "pinning": pinning,
        "load generator": "build/release/bench/loadgen/loadgen, 1 thread, closed loop, "
                          "every reply checked byte for byte",
        "matrix": f"{tier}: {timing['runs']} run(s) × {timing['duration_s']:g} s, "
                  f"{timing['warmup_s']:g} s warm-up",
        "servers built": ", ".join(binaries.servers) or "none",
        "nginx": _first_line_stderr([str(binaries.nginx), "-v"]) if binaries.nginx else "not installed",
        "strace": _first_line(["strace", "-V"]),
        "python": f"{platform.python_version()}, matplotlib {mpl}",
        "somaxconn": _read("/proc/sys/net/core/somaxconn"),
        "ephemeral ports": _read("/proc/sys/net/ipv4/ip_local_port_range").replace("\t", "–"),
        # Loopback TCP throughput depends on these as much as on the server:
        # file figures are only comparable between runs that agree here.
        "tcp congestion control": _read("/proc/sys/net/ipv4/tcp_congestion_control") or "?",
        "default qdisc": _read("/proc/sys/net/core/default_qdisc") or "?",
        "tcp_autocorking": _read("/proc/sys/net/ipv4/tcp_autocorking") or "?",
        "tcp_limit_output_bytes": _read("/proc/sys/net/ipv4/tcp_limit_output_bytes") or "?",
        "tcp_rmem / tcp_wmem": (_read("/proc/sys/net/ipv4/tcp_rmem").replace("\t", " ") + " / "
                                + _read("/proc/sys/net/ipv4/tcp_wmem").replace("\t", " ")),
    }


def _first_line_stderr(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (r.stderr or r.stdout).strip()
        return text.splitlines()[0] if text else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def environment_markdown(env: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in env.items())
    return f"# Where these numbers were measured\n\n| | |\n|---|---|\n{rows}\n"
