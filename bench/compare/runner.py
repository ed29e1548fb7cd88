"""The matrix: one load generator run per cell, the server sampled from /proc
meanwhile, medians over rounds, and the system calls per request under strace.
The command line and the order of the steps are in __main__.py.
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import procstat
from . import scenarios as sc
from . import servers as sv

REPO = Path(__file__).resolve().parents[2]
# What stage10 prints when the kernel or a seccomp filter forbids io_uring.
UNAVAILABLE = "io_uring unavailable"


# ---------------------------------------------------------------------------
# What one cell of the matrix (a server in a scenario) produced


@dataclass
class Cell:
    scenario: sc.Scenario
    variant: sv.Variant
    status: str  # ok | n/a | failed
    note: str = ""  # n/a: why; failed: what went wrong
    runs: list[dict] = field(default_factory=list)
    median: dict = field(default_factory=dict)
    server_summary: str = ""


# ---------------------------------------------------------------------------
# Setting the stage


def raise_fd_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard one, for the runner and every child.

    10,000 idle connections need 10,000 descriptors in the server and as many
    in the load generator. Children inherit the limit at fork.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def choose_cpus() -> tuple[int | None, int | None]:
    """(server core, load generator core); (None, None) with a single core.

    The runner itself sits on the load generator's core, so its sampling
    never takes time from the server being measured.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    server_cpu, client_cpu = cpus[0], cpus[1]
    os.sched_setaffinity(0, {client_cpu})
    return server_cpu, client_cpu


def build(log_path: Path, build_dir: Path) -> None:
    """cmake --preset release && cmake --build --preset release (output to a log)."""
    started = time.monotonic()
    print("building (Release): cmake --preset release && cmake --build --preset release ...", flush=True)
    with open(log_path, "w") as log:
        for cmd in (["cmake", "--preset", "release"],
                    ["cmake", "--build", "--preset", "release", "-j", str(os.cpu_count() or 1)]):
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            if subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                tail = log_path.read_text(errors="replace").splitlines()[-25:]
                print("\n".join(tail))
                sys.exit(f"compare: the build failed (full log: {log_path}); fix it, or run with "
                         f"--no-build to measure the binaries already in {build_dir}")
    print(f"  built in {time.monotonic() - started:.0f} s", flush=True)


def make_docroot(full: bool) -> Path:
    """A temporary document root: index.html and the test files (random bytes).

    World-readable, because nginx's worker runs as an unprivileged user.
    """
    root = Path(tempfile.mkdtemp(prefix="iolab-www-"))
    root.chmod(0o755)
    (root / "index.html").write_text("<!doctype html>\n<title>iolab</title>\n<p>iolab compare</p>\n")
    for name, size in sc.FILES.items():
        if size > 16 * sc.MiB and not full:
            continue
        with open(root / name, "wb") as f:
            left = size
            while left:
                chunk = min(left, 4 * sc.MiB)
                f.write(os.urandom(chunk))
                left -= chunk
    for path in root.iterdir():
        path.chmod(0o644)
    return root


# ---------------------------------------------------------------------------
# One load generator run, with the server sampled throughout


def loadgen_command(loadgen: Path, scenario: sc.Scenario, port: int, root: Path,
                    duration_s: float, warmup_s: float) -> list[str]:
    cmd = [str(loadgen), "--host", "127.0.0.1", "--port", str(port),
           "--workload", scenario.workload, "--conns", str(scenario.conns),
           "--duration", str(duration_s), "--warmup", str(warmup_s), "--json"]
    if scenario.idle:
        cmd += ["--idle", str(scenario.idle)]
    sources = sc.sources_for(scenario.fds, sc.ephemeral_ports())
    if sources > 1:
        cmd += ["--sources", str(sources)]
    if scenario.is_file:
        cmd += ["--path", "/" + scenario.file, "--expect-file", str(root / scenario.file)]
    else:
        cmd += ["--size", str(scenario.size)]
    return cmd


def wrk_command(wrk: Path, scenario: sc.Scenario, port: int, duration_s: float) -> list[str]:
    """wrk, one thread (as the load generator), the scenario's connections."""
    return [str(wrk), "-t1", f"-c{scenario.conns}", f"-d{max(1, round(duration_s))}s", "--latency",
            "--timeout", "10s", f"http://127.0.0.1:{port}/{scenario.file}"]


_WRK_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def parse_wrk(text: str) -> dict | None:
    """wrk's report as the load generator's JSON: rps, requests, errors, latency_us.

    Socket errors and non-2xx replies count as errors; wrk checks no body,
    which is why the load generator stays the reference client.
    """
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", text, re.M)
    if not rps or not total:
        return None
    report: dict = {"rps": float(rps.group(1)), "requests": int(total.group(1)), "client": "wrk"}
    kinds = {}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        kinds.update({k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), sock.groups())})
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if non2xx:
        kinds["non-2xx"] = int(non2xx.group(1))
    report["errors"] = sum(kinds.values())
    report["error_kinds"] = kinds
    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        latency[f"p{pct}"] = float(value) * _WRK_UNITS[unit]
    if latency:
        report["latency_us"] = latency
    return report


def run_loadgen(cmd: list[str], cpu: int | None, recorder: procstat.Recorder | None,
                time_limit_s: float, env: dict[str, str] | None = None,
                parse=None) -> tuple[dict | None, str, float]:
    """Runs the load generator to its end, sampling the server meanwhile.

    Returns (its JSON report or None, a note on failure, when it exited).
    `parse` turns another client's output into the same report (parse_wrk).
    Waits on a pidfd, so the exit time is known to the millisecond: the CPU
    window is placed relative to it.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        argv = cmd if parse else cmd + ["--time-limit", f"{time_limit_s:.1f}"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                preexec_fn=sv.pin_to(cpu), env={**os.environ, **env} if env else None)
        pidfd = os.pidfd_open(proc.pid)
        if recorder:
            recorder.client_pid = proc.pid
        deadline = time.monotonic() + time_limit_s + 10
        try:
            while True:
                if recorder:
                    recorder.maybe_sample()
                wait = recorder.sleep_time() if recorder else 0.5
                if select.select([pidfd], [], [], wait)[0]:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    break
            ended = time.monotonic()
            code = proc.wait()
        finally:
            os.close(pidfd)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace").strip()
        errors = err.read().decode(errors="replace").strip()
    report_json = parse(text) if parse else None
    for line in ([] if parse else reversed(text.splitlines())):
        if line.startswith("{"):
            try:
                report_json = json.loads(line)
            except json.JSONDecodeError:
                pass
            break
    if report_json is None:
        return None, f"loadgen exit {code}: {errors.splitlines()[-1] if errors else text[-200:]}", ended
    report_json["exit_code"] = code
    if code != 0 and errors:
        report_json["stderr"] = errors[-500:]
    report_json["wall_s"] = ended - started
    return report_json, "", ended


def window_rates(samples: list[procstat.Sample], ended: float, duration_s: float,
                 cpus: tuple[int | None, int | None] = (None, None)) -> dict:
    """Server CPU and context switches per second while the load was measured.

    The load generator measures the last `duration_s` seconds before it
    exits (after connecting and warming up). Taking the samples inside
    [exit - 0.9 d, exit - 0.05 d] keeps connection setup (10,000 accepts, or
    10,000 forks for stage02) out of the per-request cost. With too few
    samples there, the whole run is used and marked so.
    """
    lo, hi = ended - 0.9 * duration_s, ended - 0.05 * duration_s
    inside = [s for s in samples if lo <= s.t <= hi]
    window = "steady"
    if len(inside) < 2 or inside[-1].t - inside[0].t < 0.2 * duration_s:
        # Reading 10,000 stage02 children takes most of a second, so the
        # steady part may hold too few samples: use the whole run,
        # connection setup included (the table marks such figures with ≈).
        inside, window = samples, "whole run"
    if len(inside) < 2:
        return {}
    first, last = inside[0], inside[-1]
    dt = last.t - first.t
    rates = {
        "cpu_cores": (last.cpu_s - first.cpu_s) / dt,
        "switches_per_s": procstat.switches_between(first, last) / dt,
        "window": window,
        "window_s": dt,
    }
    # How busy the two pinned cores were, by anyone (procstat.read_cores).
    for side, cpu in zip(("server", "client"), cpus):
        busy = procstat.core_busy(first, last, cpu) if cpu is not None else None
        if busy is not None:
            rates[f"{side}_core_busy"], rates[f"{side}_core_irq"] = busy
    return rates


def summarize_run(result: dict, samples: list[procstat.Sample], ended: float,
                  scenario: sc.Scenario, duration_s: float, memory: dict | None = None,
                  cpus: tuple[int | None, int | None] = (None, None)) -> dict:
    """One run's numbers: the load generator's plus the server's costs
    (and, in the idle scenarios, `memory`: the cost per connection)."""
    run = dict(result)
    run.update(memory or {})
    rps = float(result.get("rps") or 0)
    run.update(window_rates(samples, ended, duration_s, cpus))
    if scenario.is_file:
        run["MBps"] = rps * scenario.file_size / 1e6
    if rps > 0 and "cpu_cores" in run:
        run["cpu_us_per_req"] = run["cpu_cores"] / rps * 1e6
        run["switches_per_req"] = run["switches_per_s"] / rps
        if scenario.is_file:
            run["cpu_s_per_GB"] = run["cpu_cores"] / (rps * scenario.file_size / 1e9)
    if samples:
        run["rss_peak"] = max(s.rss_bytes for s in samples)
        run["fds_peak"] = max(s.fds for s in samples)
        run["procs_peak"] = max(s.processes for s in samples)
        run["threads_peak"] = max(s.threads for s in samples)
        pss = [s.pss_bytes for s in samples if s.pss_bytes is not None]
        if pss:
            run["pss"] = pss[0]
        run["samples"] = len(samples)
        run["sample_cost_max_s"] = max(s.cost_s for s in samples)
    return run


def median_of(runs: list[dict]) -> dict:
    """The median of every number across runs; errors and requests are summed."""
    out: dict = {}
    keys = {k for r in runs for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key in sorted(keys):
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if key in ("errors", "requests"):
            out[key] = sum(values)
        elif values:
            out[key] = statistics.median(values)
    for pct in ("p50", "p90", "p99", "p999", "max"):
        values = [r["latency_us"][pct] for r in runs if isinstance(r.get("latency_us"), dict) and pct in r["latency_us"]]
        if values:
            out[f"{pct}_us"] = statistics.median(values)
    kinds: dict[str, int] = {}
    for r in runs:
        for kind, n in (r.get("error_kinds") or {}).items():
            if n:
                kinds[kind] = kinds.get(kind, 0) + n
    if kinds:
        out["error_kinds"] = kinds
    return out


# ---------------------------------------------------------------------------
# The matrix


@dataclass
class Context:
    binaries: sv.Binaries
    root: Path
    server_cpu: int | None
    client_cpu: int | None
    timing: dict
    full: bool
    interleave: bool = False  # rounds across scenarios, not within each (see run_matrix)


def applicable(variant: sv.Variant, scenario: sc.Scenario, full: bool) -> bool:
    if scenario.is_file:
        if variant.is_nginx:
            return scenario.workload == "http-get"  # nginx speaks HTTP only
        return variant.files
    return variant.echo and (full or not variant.echo_full_only)


def rate_text(scenario: sc.Scenario, run: dict) -> str:
    if scenario.per_byte:
        return f"{run.get('MBps', 0):,.0f} MB/s"
    return f"{run.get('rps', 0):,.0f} req/s"


def drive_once(ctx: Context, server: sv.Server, scenario: sc.Scenario) -> tuple[dict | None, str]:
    """One load generator run against a running server, sampled throughout."""
    t = ctx.timing
    warmup = sc.warmup_for(scenario, t["warmup_s"])
    duration = sc.duration_for(scenario, t["duration_s"])
    # The load generator's own bound: connecting (10,000 idle take a while
    # against a forking server), warm-up, the measured time, and a margin.
    time_limit = warmup + duration + 15 + scenario.fds / 500
    recorder = procstat.Recorder(server.session)
    recorder.sample_now()
    # The one PSS reading: halfway through the measured part (connections
    # take about 50 us each to open).
    recorder.pss_at(time.monotonic() + warmup + duration / 2 + scenario.fds * 50e-6)
    memory = IdleMemory(server.session, scenario, recorder) if scenario.idle else None
    env = sv.congestion_env(ctx.binaries, scenario.cc)
    if scenario.client == "wrk":
        cmd = wrk_command(ctx.binaries.wrk, scenario, server.port, warmup + duration)
        result, problem, ended = run_loadgen(cmd, ctx.client_cpu, recorder, time_limit, env, parse_wrk)
    else:
        cmd = loadgen_command(ctx.binaries.loadgen, scenario, server.port, ctx.root, duration, warmup)
        result, problem, ended = run_loadgen(cmd, ctx.client_cpu, recorder, time_limit, env)
    recorder.sample_now()
    if result is None:
        return None, problem
    return summarize_run(result, recorder.samples, ended, scenario, duration,
                         memory.result() if memory else None,
                         (ctx.server_cpu, ctx.client_cpu)), ""


class IdleMemory:
    """What the idle connections cost: the server's PSS and the kernel's slab
    caches read before the load generator starts and again at the run's one
    full sample (mid-measure, every connection open), per connection."""

    def __init__(self, sid: int, scenario: sc.Scenario, recorder: procstat.Recorder):
        self.sid, self.conns = sid, scenario.fds
        self.before = procstat.read_memory(sid)
        self.after: procstat.MemoryReading | None = None
        listed = set(self.before.slab or {})
        self.lines = procstat.slab_lines(procstat.TRACKED_CACHES, listed)
        self.slab_after: dict | None = None
        recorder.count_fds = False  # see Recorder.count_fds
        recorder.before_full = self._read_slab
        recorder.on_full = self._read_after
        self.recorder = recorder

    def _read_slab(self) -> None:
        # Before the full sample lists the descriptors (a dentry each).
        self.slab_after = procstat.read_slabinfo()

    def _read_after(self, sample: procstat.Sample) -> None:
        client = self.recorder.client_pid
        self.after = procstat.MemoryReading(
            sample.pss_bytes or 0, self.slab_after, procstat.session_epoll_watches(self.sid),
            procstat.epoll_watches(client) if client else 0)

    def result(self) -> dict:
        if self.after is None:
            return {"memory_note": "no reading with the connections open (the run ended first)"}
        out = procstat.per_connection(self.before, self.after, self.conns, self.lines)
        if self.before.slab is None:
            out["memory_note"] = f"{procstat.SLABINFO} not readable (root only): no kernel share"
        return out


def run_once(ctx: Context, cell: Cell) -> str:
    """Starts the cell's server, drives it once, stops it. Returns a progress text.

    A fresh server per run: nothing left over from the previous run (stage02
    children still exiting, connections stage05 has not closed yet) is
    measured, and an idle stage04 is never left spinning on the server's core.
    """
    scenario, variant = cell.scenario, cell.variant
    try:
        with sv.Server(variant, ctx.binaries, ctx.root, ctx.server_cpu,
                       extra_flags=sc.flags_for(variant.name, scenario),
                       env=sv.congestion_env(ctx.binaries, scenario.cc)) as server:
            run, problem = drive_once(ctx, server, scenario)
            died = not server.alive()
    except sv.ServerError as e:
        if UNAVAILABLE in str(e):
            # The machine forbids the model (stage10 where io_uring is switched
            # off): not a broken server, and the table says why.
            cell.status, cell.note = "n/a", UNAVAILABLE + " on this machine"
            return cell.note
        cell.status, cell.note = "failed", f"server did not start: {e}"
        return f"FAILED: {cell.note}"
    cell.server_summary = server.summary
    if run is None:
        cell.status, cell.note = "failed", problem
        return f"FAILED: {problem}"
    cell.runs.append(run)
    errors = run.get("errors", 0)
    text = rate_text(scenario, run)
    if "pss_per_idle_conn" in run:
        text += f"  memory per connection: PSS {run['pss_per_idle_conn']:,.0f} B"
        if "kernel_per_idle_conn" in run:
            text += f", kernel {run['kernel_per_idle_conn']:,.0f} B (server's end)"
    if errors:
        text += f"  ({errors:,} errors: {fmt_kinds(run.get('error_kinds'))})"
    if died:
        cell.status, cell.note = "failed", f"server died during the run (status {server.exit_code})"
        text += f"  FAILED: {cell.note} {server.stderr_tail(2)}"
    elif server.exit_code != 0:
        cell.note = f"exit status {server.exit_code} after SIGTERM"
    return text


class Progress:
    """Numbers the runs: "[12/147] stage07_epoll (level)  echo 64 B, c=100  run 2/3 … 45,210 req/s"."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    def line(self, cell: Cell, text: str, run: int | None = None, runs: int = 0) -> None:
        counter = "[--]"
        if run is not None:
            self.done += 1
            counter = f"[{self.done}/{self.total}]"
        what = f"run {run}/{runs}" if run is not None else ""
        print(f"{counter:>9} {cell.variant.label:<30} {cell.scenario.name:<30} {what:>8} … {text}", flush=True)


def scenario_cells(scenario: sc.Scenario, variants: list[sv.Variant], cells: list[Cell],
                   progress: Progress) -> list[Cell]:
    """The cells of one scenario, appended to `cells`; returns those that can run
    (the others are n/a, with the reason)."""
    mine = []
    for variant in variants:
        cell = Cell(scenario, variant, "ok")
        cells.append(cell)
        reason = sc.limitation(variant.name, scenario)
        if reason:
            cell.status, cell.note = "n/a", reason
            progress.line(cell, reason)
        else:
            mine.append(cell)
    return mine


def run_round(ctx: Context, mine: list[Cell], i: int, progress: Progress) -> None:
    """Run `i` of each cell that is still ok."""
    for cell in mine:
        if cell.status != "ok":
            continue  # failed, or found unavailable on this machine
        progress.line(cell, run_once(ctx, cell), i, ctx.timing["runs"])
        if cell.runs:
            cell.median = median_of(cell.runs)


def run_scenario(ctx: Context, scenario: sc.Scenario, variants: list[sv.Variant],
                 cells: list[Cell], progress: Progress) -> None:
    """Every server in one scenario, in rounds: run 1 of each, then run 2 of each...

    The machine's background load drifts over minutes; taking one run of
    every server per round puts the servers being compared side by side in
    time, and the median over rounds discards a disturbed one.
    """
    mine = scenario_cells(scenario, variants, cells, progress)
    for i in range(1, ctx.timing["runs"] + 1):
        run_round(ctx, mine, i, progress)


def failure(cell: Cell, strict: bool) -> str:
    """Why a cell counts as a failure ("" if it does not).

    A server that would not start or died always fails. With `strict` (the
    smoke test) so does any load generator error, a non-zero exit or a run
    with no request at all: smoke scenarios are ones every server can do.
    """
    if cell.status == "failed":
        return cell.note
    if not strict or cell.status != "ok":
        return ""
    m = cell.median
    if m.get("errors"):
        first = "; ".join(f"{k}: {v}" for r in cell.runs for k, v in (r.get("first_errors") or {}).items())
        return f"{m['errors']:,} loadgen errors ({fmt_kinds(m.get('error_kinds'))}) {first}".strip()
    if any(r.get("exit_code") for r in cell.runs):
        return "loadgen exited non-zero"
    if not m.get("requests"):
        return "no request completed"
    return ""


def fmt_kinds(kinds: dict | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (kinds or {}).items() if v) or "?"


def run_matrix(ctx: Context, scenarios: list[sc.Scenario], variants: list[sv.Variant],
               cells: list[Cell]) -> None:
    """Runs every scenario in turn, appending to `cells` (kept if interrupted)."""
    plan = [(s, [v for v in variants if applicable(v, s, ctx.full)]) for s in scenarios]
    total = sum(ctx.timing["runs"] for s, vs in plan for v in vs if not sc.limitation(v.name, s))
    progress = Progress(total)
    if not ctx.interleave:
        for scenario, mine in plan:
            run_scenario(ctx, scenario, mine, cells, progress)
        return
    # --interleave: the rounds span every scenario, so that a ratio between
    # two scenarios (10 busy clients with and without 10,000 idle ones) is
    # taken from runs side by side in time, whatever the machine does meanwhile.
    runnable = [scenario_cells(scenario, mine, cells, progress) for scenario, mine in plan]
    for i in range(1, ctx.timing["runs"] + 1):
        for mine in runnable:
            run_round(ctx, mine, i, progress)


# ---------------------------------------------------------------------------
# System calls per request, under strace


STRACE_SCENARIO = sc.echo(64, 10)


def parse_strace_summary(text: str) -> dict[str, int]:
    """syscall -> calls, from `strace -c` output (the errors column may be empty)."""
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] != "total" and parts[0][0].isdigit() and parts[3].isdigit():
            calls[parts[-1]] = int(parts[3])
    return calls


def run_strace(ctx: Context, variants: list[sv.Variant], duration_s: float, out: list[dict],
               full: bool, scenarios: list[sc.Scenario] | None = None) -> None:
    """Each server once under `strace -f -c`, in echo 64 B at 10 connections
    (or in each of `scenarios`: the ladder counts every cell).

    strace stops the server at every system call, so this run is slow and
    its throughput means nothing; only the counts are kept. The counts cover
    the server's whole life (startup is a few dozen calls) and are divided by
    the requests its own summary line reports.
    """
    if not shutil.which("strace"):
        print("strace not found: skipping system call counts", flush=True)
        return
    todo = [(v, s) for s in scenarios or [STRACE_SCENARIO] for v in variants
            if applicable(v, s, full) and (scenarios or not v.full_only)]
    for n, (variant, scenario) in enumerate(todo, 1):
        if sc.limitation(variant.name, scenario):
            scenario = sc.echo(64, 1)  # stage01: one client at a time
        with tempfile.NamedTemporaryFile(prefix="iolab-strace-", suffix=".txt") as trace:
            entry = {"server": variant.label, "scenario": scenario.name}
            try:
                with sv.Server(variant, ctx.binaries, ctx.root, ctx.server_cpu,
                               extra_flags=sc.flags_for(variant.name, scenario),
                               wrap=["strace", "-f", "-c", "-o", trace.name]) as server:
                    cmd = loadgen_command(ctx.binaries.loadgen, scenario, server.port, ctx.root, duration_s, 0)
                    result, problem, _ = run_loadgen(cmd, ctx.client_cpu, None, duration_s + 20)
                served = server.requests_served() or (result or {}).get("requests") or 0
                calls = parse_strace_summary(Path(trace.name).read_text(errors="replace"))
                entry.update(requests=served, calls=calls,
                             per_request={k: v / served for k, v in calls.items()} if served else {})
                if problem:
                    entry["note"] = problem
            except sv.ServerError as e:
                entry["note"] = f"server did not start: {e}"
        top = sorted(entry.get("per_request", {}).items(), key=lambda kv: -kv[1])[:4]
        shown = ", ".join(f"{k} {v:.2f}" for k, v in top) or entry.get("note", "no counts")
        print(f"[strace {n}/{len(todo)}] {variant.label:<32} {scenario.name:<20} per request: {shown}", flush=True)
        out.append(entry)


