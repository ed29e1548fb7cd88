"""Where a file transfer's time goes, core by core: scripts/who-sends.

    scripts/who-sends [--sizes 1,4,16,64] [--cc cubic,bbr] [--duration 3] [--out DIR]

stage08 serves one file to `wrk -t1 -c10` over loopback, server pinned to
one CPU and wrk to the other, once per file size, congestion control and
server variant (sendfile with stage08's default --unsent-limit, sendfile
with no limit, read). During each run `perf record -a` samples both CPUs
and /proc/stat says how busy each was. Per run it reports:

- MB/s, and how busy the server's and the client's cores were;
- the share of each core's samples whose kernel stack holds
  tcp_write_xmit (sending segments) or process_backlog (the loopback
  device delivering them: the receive side runs on the CPU that sent);
- local timer interrupts per second on each core (/proc/interrupts, LOC):
  BBR paces with a high-resolution timer per socket when there is no fq
  qdisc, and the timer fires on the CPU that armed it;
- the client's copy out of the socket (_copy_to_iter samples on its core)
  in CPU seconds per GB received: what receiving one GB costs the client.

It writes results.json (the runner's cell format, so the course's figure
markers can quote it as runs:DIR) and summary.md. It needs perf (Debian:
linux-perf) and wrk, root or perf_event_paranoid <= 0 for -a, and the
Release build. A diagnosis, not a benchmark: one run per cell, perf's own
sampling costs a little, and the numbers are for comparing rows.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import procstat, report
from . import servers as sv
from .runner import REPO, parse_wrk

MiB = 1 << 20
VARIANTS = [  # label, stage08 flags
    ("stage08_zero_copy (sendfile)", ["--copy", "sendfile"]),
    ("stage08_zero_copy (unlimited sendfile)", ["--copy", "sendfile", "--unsent-limit", "0"]),
    ("stage08_zero_copy (read)", ["--copy", "read"]),
]
# What a sample's kernel stack says it was doing (the first match counts).
MARKS = ("tcp_write_xmit", "process_backlog")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/who-sends", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,4,16,64", help="file sizes in MiB (default 1,4,16,64)")
    p.add_argument("--cc", default="cubic,bbr", help="congestion controls, set per socket (default cubic,bbr)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds sampled per run (default 3)")
    p.add_argument("--build-dir", default=str(REPO / "build" / "release"))
    p.add_argument("--out", default=str(REPO / "results" / "who-sends"), help="results directory")
    return p.parse_args(argv)


def perf_shares(data: Path, cpus: tuple[int, int]) -> dict[int, dict[str, float]]:
    """Per CPU: the share of samples idle, copying to user space, and holding each of MARKS."""
    text = subprocess.run(["perf", "script", "-i", str(data), "-F", "cpu,ip,sym"],
                          capture_output=True, text=True, check=True).stdout
    counts = {cpu: collections.Counter() for cpu in cpus}
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        match = re.match(r"\s*\[(\d+)\]", lines[0])
        if not match or int(match.group(1)) not in counts:
            continue
        c = counts[int(match.group(1))]
        c["all"] += 1
        # "\tffffffff81e88764 skb_append_pagefrags": the innermost frame first
        frames = [line.split()[1] for line in lines[1:] if len(line.split()) > 1]
        if frames and frames[0] == "_copy_to_iter":
            c["copy"] += 1
        if "do_idle" in frames:
            c["idle"] += 1
        for mark in MARKS:
            if mark in frames:
                c[mark] += 1
    return {cpu: {k: c[k] / c["all"] for k in ("idle", "copy") + MARKS} if c["all"] else {}
            for cpu, c in counts.items()}


def local_timer_interrupts() -> list[int]:
    """Per CPU, the local timer interrupts so far (the LOC line of /proc/interrupts)."""
    for line in Path("/proc/interrupts").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "LOC:":
            return [int(v) for v in fields[1:] if v.isdigit()]
    return []


def one_run(binaries: sv.Binaries, root: Path, size_mib: int, cc: str, flags: list[str],
            duration: float, cpus: tuple[int, int], work: Path) -> dict:
    env = dict(os.environ, **sv.congestion_env(binaries, cc))
    server_cmd = ["taskset", "-c", str(cpus[0]), str(binaries.servers["stage08_zero_copy"]),
                  "--port", "0", "--root", str(root)] + flags
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, text=True)
    try:
        line = server.stdout.readline()  # the first line says where it listens
        port = re.search(r"listening on \S+:(\d+)", line)
        if not port:
            raise RuntimeError(f"stage08 did not say where it listens: {line!r}")
        wrk = subprocess.Popen(["taskset", "-c", str(cpus[1]), str(binaries.wrk), "-t1", "-c10",
                                f"-d{duration + 2:g}", "--timeout", "10s",
                                f"http://127.0.0.1:{port.group(1)}/{size_mib}m.bin"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        time.sleep(1)  # connected and past the first replies
        before, timers_before = procstat.read_cores(), local_timer_interrupts()
        data = work / "perf.data"
        subprocess.run(["perf", "record", "-q", "-F", "999", "-e", "cpu-clock", "-a", "-g",
                        "-o", str(data), "--", "sleep", f"{duration:g}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after, timers_after = procstat.read_cores(), local_timer_interrupts()
        out, _ = wrk.communicate(timeout=duration + 30)
    finally:
        server.kill()
        server.wait()
    report = parse_wrk(out)
    if report is None or not report.get("requests"):
        raise RuntimeError(f"wrk: {out[-300:]}")
    mbps = report["rps"] * size_mib * MiB / 1e6
    first = procstat.Sample(0.0, 0.0, {}, 0, 0, 1, 1, cores=before)
    last = procstat.Sample(0.0, 0.0, {}, 0, 0, 1, 1, cores=after)
    median = {"MBps": mbps, "rps": report["rps"], "errors": report.get("errors", 0)}
    shares = perf_shares(data, cpus)
    for side, cpu in zip(("server", "client"), cpus):
        busy = procstat.core_busy(first, last, cpu)
        if busy:
            median[f"{side}_core_busy"], median[f"{side}_core_irq"] = busy
        if cpu < min(len(timers_before), len(timers_after)):
            median[f"{side}_timer_irqs_per_s"] = (timers_after[cpu] - timers_before[cpu]) / duration
        for key, value in shares.get(cpu, {}).items():
            median[f"{side}_{key}_share"] = value
    if "client_copy_share" in median and mbps > 0:
        # CPU seconds the client's core spent copying per GB it received.
        median["client_copy_s_per_GB"] = median["client_copy_share"] / (mbps / 1000)
    return median


def machine() -> list[str]:
    """What the figures depend on: kernel, commit, caches, qdisc, RPS on lo."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout if shutil.which("lscpu") else ""
    caches = [line.split(":", 1)[1].strip() + " " + line.split(":", 1)[0].strip()
              for line in lscpu.splitlines() if re.match(r"L[23] cache:", line)]
    commit = report._first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return [f"- kernel {os.uname().release}, commit {commit}",
            f"- caches: {', '.join(caches) or '?'}",
            f"- default qdisc {report._read('/proc/sys/net/core/default_qdisc') or '?'}, "
            f"RPS on lo: rps_cpus {report._read('/sys/class/net/lo/queues/rx-0/rps_cpus') or '?'}"]


def summary(cells: list[dict], cpus: tuple[int, int], took_s: float) -> str:
    lines = ["# Who sends the bytes: stage08 under wrk, core by core", "",
             f"`scripts/who-sends`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"server on CPU {cpus[0]}, `wrk -t1 -c10` on CPU {cpus[1]}, one run per row, "
             f"took {took_s / 60:.1f} min. Busy: /proc/stat. Shares: of each core's `perf` "
             "samples, those whose kernel stack holds the function. Client copy: the client "
             "core's `_copy_to_iter` samples, in CPU seconds per GB received.", ""] + machine() + ["",
             "| run | server | MB/s | busy server/client | tcp_write_xmit server/client "
             "| process_backlog server/client | timer irq/s server/client | client copy s/GB |",
             "|---|---|--:|--:|--:|--:|--:|--:|"]

    def pair(m: dict, key: str) -> str:
        a, b = m.get(f"server_{key}"), m.get(f"client_{key}")
        return "—" if a is None or b is None else f"{a:.0%}/{b:.0%}"

    def timers(m: dict) -> str:
        a, b = m.get("server_timer_irqs_per_s"), m.get("client_timer_irqs_per_s")
        return "—" if a is None or b is None else f"{a:,.0f}/{b:,.0f}"

    for c in cells:
        m = c["median"]
        copy = m.get("client_copy_s_per_GB")
        lines.append(f"| {c['scenario']['name']} | {c['server']} | {m['MBps']:,.0f} | "
                     f"{pair(m, 'core_busy')} | {pair(m, 'tcp_write_xmit_share')} | "
                     f"{pair(m, 'process_backlog_share')} | {timers(m)} | "
                     f"{'—' if copy is None else f'{copy:.3f}'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for tool in ("perf", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"who-sends: needs {tool} (Debian: linux-perf, wrk, util-linux)")
    cpus_online = sorted(os.sched_getaffinity(0))
    if len(cpus_online) < 2:
        sys.exit("who-sends: needs two CPUs, one for the server and one for wrk")
    cpus = (cpus_online[0], cpus_online[1])
    binaries = sv.discover(Path(args.build_dir))
    if "stage08_zero_copy" not in binaries.servers or not binaries.wrk or not binaries.tcp_cc:
        sys.exit(f"who-sends: build the release preset first ({args.build_dir}: stage08_zero_copy, "
                 "bench/tcp_cc)")
    sizes = [int(s) for s in args.sizes.split(",")]
    ccs = args.cc.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cells = []
    with tempfile.TemporaryDirectory(prefix="who-sends.") as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        for size in sizes:
            (root / f"{size}m.bin").write_bytes(os.urandom(size * MiB))
        for cc in ccs:
            for size in sizes:
                name = f"wrk {size} MiB, {cc}"
                for label, flags in VARIANTS:
                    median = one_run(binaries, root, size, cc, flags, args.duration, cpus, Path(tmp))
                    print(f"{name:<20} {label:<40} {median['MBps']:>7,.0f} MB/s", flush=True)
                    cells.append({"scenario": {"name": name, "file_size": size * MiB, "client": "wrk",
                                               "cc": cc},
                                  "server": label, "status": "ok", "median": median})
    took = time.monotonic() - started
    (out / "results.json").write_text(json.dumps({"tool": "scripts/who-sends", "cells": cells},
                                                 indent=1))
    (out / "summary.md").write_text(summary(cells, cpus, took))
    print(f"results in {out}/ (summary.md, results.json) after {took / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
