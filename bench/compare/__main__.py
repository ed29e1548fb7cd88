"""scripts/compare's command line, and the order of its steps.

    python3 -m bench.compare [options]     (from the repository's root; scripts/compare does it)

main() reads the options, builds (or not), picks the servers, then either
soaks them (soak.py) or runs the matrix (runner.py) and writes the results
(report.py, plots.py). Each step is a function of its own below.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import report, runner
from . import scenarios as sc
from . import servers as sv
from .runner import REPO, STRACE_SCENARIO, Cell, Context, applicable


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/compare",
        description="Build in Release and run every built server (plus asio and nginx) "
                    "through one scenario matrix; write results/.")
    tier = p.add_mutually_exclusive_group()
    tier.add_argument("--full", action="store_true", help="the whole matrix (5 runs x 3 s per cell)")
    tier.add_argument("--smoke", action="store_true",
                      help="each server driven ~0.5 s in two scenarios; exit 1 if any stage or asio fails")
    tier.add_argument("--ladder", action="store_true",
                      help="stage10's io_uring feature ladder: each --rung beside stage07 (level) in "
                           "echo 64 B at c=10, 100 and 1000, system calls counted in every cell")
    p.add_argument("--only", help="comma-separated servers: binary names (every variant), e.g. "
                   "stage07_epoll,asio_server,nginx, or variant labels, e.g. 'stage08_zero_copy (sendfile)'; "
                   "separated by | instead when they hold commas")
    p.add_argument("--scenarios", help="comma-separated substrings of scenario names, e.g. echo or "
                                        "'c=100'; a full name picks that scenario alone, commas and "
                                        "all ('echo 64 B, c=10'); | separates names instead, e.g. "
                                        "'echo 64 B, c=10|http-get 1 KiB, c=10 + 10,000 idle'")
    p.add_argument("--idle", type=int, metavar="N",
                   help="idle connections in the idle scenarios (default: theirs, 1,000 and "
                        "10,000); capped, with a message, to what RLIMIT_NOFILE allows")
    p.add_argument("--runs", type=int, help="runs per cell (default: 3 quick, 5 full, 1 smoke)")
    p.add_argument("--duration", type=float, help="measured seconds per run")
    p.add_argument("--interleave", action="store_true",
                   help="take the runs in rounds across all scenarios (run 1 of every cell, then "
                        "run 2...), for ratios between scenarios on a machine whose load drifts")
    p.add_argument("--no-build", action="store_true", help="use build/release as it is")
    p.add_argument("--build-dir", help="measure the binaries of this Release build directory "
                                        "instead of build/release (implies --no-build)")
    p.add_argument("--clients", default="loadgen",
                   help="comma-separated clients for the HTTP scenarios: loadgen (always the "
                        "reference), wrk (a second, independent client); e.g. loadgen,wrk")
    p.add_argument("--congestion", default="",
                   help="comma-separated TCP congestion controls to run every scenario under, set per "
                        "socket (LD_PRELOAD bench/tcp_cc), e.g. cubic,default; default: the machine's, "
                        "unnamed")
    p.add_argument("--no-strace", action="store_true", help="skip the system call counts")
    p.add_argument("--out", default=str(REPO / "results"), help="results directory (default results/)")
    p.add_argument("--soak", action="store_true",
                   help="instead of the matrix: soak each event-driven server under mixed, hostile "
                        "load and check that memory, descriptors, threads and zombies stay flat")
    p.add_argument("--soak-minutes", type=float, default=2.0, help="minutes per server (default 2)")
    return p.parse_args(argv)


@dataclass
class Setup:
    """What every step needs: the options read, and the binaries found."""
    args: argparse.Namespace
    tier: str  # quick | full | smoke | ladder
    timing: dict  # runs, duration_s, warmup_s
    out_dir: Path
    build_dir: Path
    nofile: tuple[int, int]
    binaries: sv.Binaries
    variants: list[sv.Variant]
    notes: list[str] = field(default_factory=list)  # said on the console and in environment.md

    @property
    def full(self) -> bool:
        return self.tier == "full"


def tier_and_timing(args: argparse.Namespace) -> tuple[str, dict]:
    tier = "full" if args.full else "smoke" if args.smoke else "ladder" if args.ladder else "quick"
    timing = dict(sc.TIMING[tier])
    if args.runs:
        timing["runs"] = args.runs
    if args.duration:
        timing["duration_s"] = args.duration
    return tier, timing


def chosen_variants(only: str | None, binaries: sv.Binaries, full: bool) -> list[sv.Variant]:
    """Every way of running every built server, or those --only names."""
    variants = sv.variants_of(binaries, full=full)
    if not only:
        return variants
    # A binary name takes all its variants; a label ("stage08_zero_copy
    # (sendfile)") takes that one. Labels may hold commas ("nginx (1 worker,
    # sendfile)"): then separate with | instead.
    wanted = {w.strip() for w in only.split("|" if "|" in only else ",") if w.strip()}
    unknown = wanted - {v.name for v in variants} - {v.label for v in variants}
    if unknown:
        print(f"compare: not built (or unknown): {', '.join(sorted(unknown))}", file=sys.stderr)
    return [v for v in variants if v.name in wanted or v.label in wanted]


def set_up(args: argparse.Namespace) -> Setup:
    """Reads the options, builds unless told not to, and finds the binaries."""
    tier, timing = tier_and_timing(args)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    nofile = runner.raise_fd_limit()
    build_dir = Path(args.build_dir).resolve() if args.build_dir else REPO / "build/release"
    if not args.build_dir and not args.no_build:
        runner.build(out_dir / "build.log", build_dir)
    binaries = sv.discover(build_dir)
    if binaries.loadgen is None:
        sys.exit(f"compare: no load generator at {build_dir}/bench/loadgen/loadgen (build it first)")
    variants = (sv.ladder_variants(binaries) if tier == "ladder"
                else chosen_variants(args.only, binaries, full=tier == "full"))
    return Setup(args, tier, timing, out_dir, build_dir, nofile, binaries, variants)


def pinning_text(server_cpu: int | None, client_cpu: int | None, clients: str) -> str:
    if server_cpu is None:
        return "not pinned (a single CPU)"
    return f"server on CPU {server_cpu}; {clients} on CPU {client_cpu}"


def soak(setup: Setup) -> int:
    """--soak: minutes of mixed, hostile load per server instead of the matrix."""
    from . import soak as soak_run

    server_cpu, client_cpu = runner.choose_cpus()
    pinning = pinning_text(server_cpu, client_cpu,
                           "load generators, hostile clients and this runner")
    root = runner.make_docroot(False)
    try:
        return soak_run.run(setup.variants, setup.binaries, root, server_cpu, client_cpu,
                            setup.args.soak_minutes, setup.out_dir, pinning)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def congestion_controls(spec: str) -> list[str]:
    """--congestion's names, "default" resolved to the machine's, each checked.

    A name the kernel would refuse (not available, or not allowed to this
    user: /proc/sys/net/ipv4/tcp_allowed_congestion_control) stops the run
    here with the reason, rather than at the first server.
    """
    default = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    names: list[str] = []
    for name in (n.strip() for n in spec.split(",")):
        name = default if name == "default" else name
        if name and name not in names:
            names.append(name)
    for name in names:
        with socket.socket() as probe:
            try:
                probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
            except OSError as e:
                sys.exit(f"compare: --congestion {name}: the kernel refuses it ({e.strerror}); available: "
                         + Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().strip())
    return names


def matrix_scenarios(setup: Setup) -> tuple[list[sc.Scenario], list[str], list[str]]:
    """The scenarios to run (--scenarios, --clients, --congestion applied), the
    clients and the congestion controls."""
    args, binaries = setup.args, setup.binaries
    names = None
    if args.scenarios:
        names = args.scenarios.split("|") if "|" in args.scenarios else sc.split_names(args.scenarios)
    scenarios = sc.selected(setup.tier, names)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if "loadgen" not in clients or set(clients) - set(sc.CLIENTS):
        sys.exit(f"compare: --clients takes loadgen and optionally wrk, not {args.clients!r}")
    if "wrk" in clients and binaries.wrk is None:
        sys.exit("compare: --clients wrk needs wrk (apt-get install wrk; scripts/install-deps --bench)")
    ccs = congestion_controls(args.congestion)
    if ccs and binaries.tcp_cc is None:
        sys.exit(f"compare: --congestion needs {setup.build_dir}/bench/tcp_cc/libiolab_tcp_cc.so "
                 "(build it first)")
    if args.idle is not None and args.idle < 0:
        sys.exit("compare: --idle takes a number of connections, 0 or more")
    scenarios, notes = sc.cap_idle(scenarios, setup.nofile[0], args.idle)
    for note in notes:
        print(f"compare: {note}", flush=True)
    setup.notes.extend(notes)
    scenarios = sc.expanded(scenarios, clients, ccs)
    if not setup.variants or not scenarios:
        sys.exit("compare: nothing to run (check --only and --scenarios)")
    return scenarios, clients, ccs


def announce(setup: Setup, scenarios: list[sc.Scenario], pinning: str) -> None:
    """The size of the matrix and about how long it will take."""
    timing, variants = setup.timing, setup.variants
    matrix = [(s, v) for s in scenarios for v in variants if applicable(v, s, setup.full)]
    estimate = sum(timing["runs"] * (sc.duration_for(s, timing["duration_s"])
                                     + sc.warmup_for(s, timing["warmup_s"]) + 0.15)
                   for s, v in matrix if not sc.limitation(v.name, s))
    if not setup.args.no_strace:
        traced = scenarios if setup.tier == "ladder" else [STRACE_SCENARIO]
        estimate += sum(2.5 for v in variants for s in traced if applicable(v, s, setup.full))
    print(f"{setup.tier} matrix: {len(scenarios)} scenarios x {len(variants)} servers = "
          f"{len(matrix)} cells, {timing['runs']} run(s) x {timing['duration_s']:g} s each "
          f"(medians); about {estimate / 60:.1f} min", flush=True)
    print(f"pinning: {pinning}; RLIMIT_NOFILE {setup.nofile[0]}", flush=True)


@dataclass
class Measured:
    cells: list[Cell]
    syscalls: list[dict]
    elapsed_s: float
    interrupted: bool


def measure(setup: Setup, ctx: Context, scenarios: list[sc.Scenario]) -> Measured:
    """The matrix, then the strace counts; what was measured is kept on Ctrl-C."""
    started = time.monotonic()
    cells: list[Cell] = []
    syscalls: list[dict] = []
    interrupted = False
    try:
        runner.run_matrix(ctx, scenarios, setup.variants, cells)
        if not setup.args.no_strace:
            runner.run_strace(ctx, setup.variants, 1.0 if setup.full else 0.5, syscalls, setup.full,
                              scenarios if setup.tier == "ladder" else None)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: servers stopped; writing what was measured", flush=True)
    return Measured(cells, syscalls, time.monotonic() - started, interrupted)


def wrk_version(wrk: Path) -> str:
    r = subprocess.run([str(wrk), "-v"], capture_output=True, text=True)
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0].split(" [")[0] if text else "wrk"


def write_results(setup: Setup, measured: Measured, pinning: str, clients: list[str],
                  ccs: list[str]) -> None:
    """summary.md, results.csv, results.json, environment.md and the plots."""
    out_dir = setup.out_dir
    env = report.environment(REPO, setup.build_dir, setup.binaries, pinning, setup.nofile,
                             setup.tier, setup.timing)
    if "wrk" in clients:
        env["second client"] = (f"{wrk_version(setup.binaries.wrk)}, 1 thread, HTTP scenarios "
                                "only (checks status codes, not bodies)")
    if setup.notes:
        env["capped"] = "; ".join(setup.notes)
    if ccs:
        env["congestion control per run"] = (", ".join(ccs) + " (set on every socket of server and "
                                             "client with TCP_CONGESTION, bench/tcp_cc; named in each scenario)")
    report.write_all(out_dir, setup.tier, setup.timing, measured.cells, measured.syscalls, env,
                     measured.elapsed_s, measured.interrupted)
    try:
        from . import plots
        made = plots.write_all(out_dir, measured.cells)
        print(f"plots: {', '.join(made) if made else 'none (not enough data)'}")
    except ImportError as e:
        print(f"plots skipped: {e} (install python3-matplotlib and run with /usr/bin/python3)")
    print(f"results in {out_dir}/ (summary.md, results.csv, results.json, environment.md) "
          f"after {measured.elapsed_s / 60:.1f} min")


def exit_status(measured: Measured, strict: bool) -> int:
    """0, or 1 when a stage or the asio server could not be driven, or 130 if interrupted."""
    failed = [(c, why) for c in measured.cells if (why := runner.failure(c, strict=strict))]
    for c, why in failed:
        print(f"FAILED: {c.variant.label} in {c.scenario.name}: {why}")
    if measured.interrupted:
        return 130
    # nginx is a yardstick that may be missing or misconfigured on a machine;
    # a stage or the asio server that cannot be driven is a broken build.
    return 1 if any(not c.variant.is_nginx for c, _ in failed) else 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Ctrl-C raises KeyboardInterrupt; make SIGTERM and SIGHUP do the same,
    # so every `with Server` block stops its server on the way out.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)

    setup = set_up(args)
    if args.soak:
        return soak(setup)
    scenarios, clients, ccs = matrix_scenarios(setup)
    server_cpu, client_cpu = runner.choose_cpus()
    pinning = pinning_text(server_cpu, client_cpu, "load generator and this runner")
    announce(setup, scenarios, pinning)

    root = runner.make_docroot(setup.full)
    try:
        ctx = Context(setup.binaries, root, server_cpu, client_cpu, setup.timing, setup.full,
                      args.interleave)
        measured = measure(setup, ctx, scenarios)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    write_results(setup, measured, pinning, clients, ccs)
    return exit_status(measured, strict=setup.tier == "smoke")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
