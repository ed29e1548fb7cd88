"""The scenario matrix: what every server is put through, as data.

docs/measuring.md says why; in short, on a 2-core machine:
- one connection measures the cross-core wake-up, not the server:
  it is here for the latency lesson (busy polling vs sleeping) and stage01;
- servers are compared at 10 to 1000 connections;
- select and poll lose only when most descriptors are idle, hence the
  10,000-idle scenario;
- zero-copy shows in CPU per GB, not in MB/s, on loopback.

The file scenarios use the HTTP flavour (`http-get`) for every server, so
nginx sits in the same table under the same requests; `--full` adds the line
protocol's `GET` for the stages (a few bytes of header less per reply).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

KiB, MiB = 1024, 1024 * 1024

# The document root the runner generates: name -> size in bytes.
# (256 MiB only for --full.)
FILES = {"1k.bin": 1 * KiB, "1m.bin": 1 * MiB, "16m.bin": 16 * MiB, "256m.bin": 256 * MiB}


@dataclass(frozen=True)
class Scenario:
    name: str  # as shown in the table: "echo 64 B, c=100"
    workload: str  # loadgen --workload: echo | get | http-get | http-echo
    conns: int  # active connections
    idle: int = 0  # silent connections held open besides
    size: int = 64  # echo payload in bytes
    file: str = ""  # get / http-get: the file under the document root
    tiers: frozenset[str] = frozenset({"full"})  # smoke, quick, full
    min_duration_s: float = 0  # measure at least this long (few, long requests)
    client: str = "loadgen"  # loadgen | wrk (a second, independent client: http-get only)
    cc: str = ""  # TCP congestion control of every socket in the run ("": the machine's default)

    @property
    def is_file(self) -> bool:
        return self.workload in ("get", "http-get")

    @property
    def per_byte(self) -> bool:
        """Shown as MB/s and CPU per GB (big files) rather than per request."""
        return self.is_file and self.file_size >= MiB

    @property
    def file_size(self) -> int:
        return FILES[self.file] if self.file else 0

    @property
    def fds(self) -> int:
        """Client connections the server must hold at once."""
        return self.conns + self.idle


def _tiers(*names: str) -> frozenset[str]:
    return frozenset(names) | {"full"}


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // KiB} KiB" if n >= KiB else f"{n} B"


def echo(size: int, conns: int, idle: int = 0, tiers: frozenset[str] = _tiers()) -> Scenario:
    idle_part = f" + {idle:,} idle" if idle else ""
    return Scenario(f"echo {_size(size)}, c={conns}{idle_part}", "echo", conns, idle, size=size,
                    tiers=tiers)


def fetch(workload: str, file: str, conns: int, tiers: frozenset[str] = _tiers(),
          min_duration_s: float = 0, idle: int = 0) -> Scenario:
    idle_part = f" + {idle:,} idle" if idle else ""
    return Scenario(f"{workload} {_size(FILES[file])}, c={conns}{idle_part}", workload, conns, idle,
                    file=file, tiers=tiers, min_duration_s=min_duration_s)


# The matrix. `quick` is the default run; `full` is everything; `smoke`
# drives each server for a moment in two scenarios (every server can do them,
# stage01 included, so a failure there is a broken server).
SCENARIOS: list[Scenario] = [
    echo(64, 1, tiers=_tiers("quick", "smoke")),
    echo(64, 10, tiers=_tiers("quick", "ladder")),
    echo(64, 100, tiers=_tiers("quick", "ladder")),
    echo(64, 1000, tiers=_tiers("quick", "ladder")),
    echo(4 * KiB, 1),
    echo(4 * KiB, 10),
    echo(4 * KiB, 100),
    echo(4 * KiB, 1000),
    # 10 busy clients among many silent ones: where select and poll lose.
    echo(64, 10, idle=1000),
    echo(64, 10, idle=10_000, tiers=_tiers("quick")),
    fetch("http-get", "1k.bin", 1, tiers=frozenset({"smoke"})),
    fetch("http-get", "1k.bin", 10),
    # The same idle crowd over HTTP, where nginx can take part too (it has
    # no ECHO): what each server keeps per idle connection.
    fetch("http-get", "1k.bin", 10, idle=10_000),
    fetch("http-get", "1m.bin", 10),
    # Big bodies: the copy path's CPU cost per GB shows best here.
    fetch("http-get", "16m.bin", 10, tiers=_tiers("quick")),
    # A 256 MiB reply takes a fifth of a second: only whole replies count, so
    # measure long enough for a few dozen of them.
    fetch("http-get", "256m.bin", 2, min_duration_s=8),
    fetch("get", "1k.bin", 10),
    fetch("get", "1m.bin", 10),
    fetch("get", "16m.bin", 10),
]

# How long each tier drives each server, and how many times.
TIMING = {
    "smoke": dict(runs=1, duration_s=0.5, warmup_s=0.0),
    "quick": dict(runs=3, duration_s=1.5, warmup_s=0.1),
    "full": dict(runs=5, duration_s=3.0, warmup_s=0.5),
    # stage10's feature ladder (--ladder): few cells, so as many runs as full.
    "ladder": dict(runs=5, duration_s=2.0, warmup_s=0.3),
}

# select() cannot watch a descriptor numbered FD_SETSIZE (1024) or above.
# The server holds a few of its own (stdio, listener, document root), so a
# scenario with more client connections than this cannot run on stage05.
SELECT_MAX_CLIENTS = 1024 - 12

# stage03 serves --threads clients at once and parks the rest in its queue
# until a worker is free, which, with clients that stay connected, is never.
# So it runs with a thread per client (its --threads allows up to 1024); its
# cost is then the threads' memory and switches, which the table shows.
THREAD_CAP = 1024


# Descriptors a process holds besides its connections (stdio, the listener,
# epoll instances, the document root; the load generator's per-thread
# epoll), with a margin. Each connection is one descriptor in the server and
# one in the load generator, and each process has RLIMIT_NOFILE of them.
FD_RESERVE = 64


def idle_limit(scenario: Scenario, nofile: int) -> int:
    """The most idle connections beside the scenario's busy ones that
    `nofile` descriptors per process allow; rounded down to the thousand."""
    room = max(0, nofile - scenario.conns - FD_RESERVE)
    return room // 1000 * 1000 if room >= 1000 else room


def with_idle(scenario: Scenario, idle: int) -> Scenario:
    """The same scenario with another number of idle connections (and its name)."""
    base = scenario.name.split(" + ")[0]
    return dataclasses.replace(scenario, name=base + (f" + {idle:,} idle" if idle else ""), idle=idle)


def cap_idle(scenarios: list[Scenario], nofile: int,
             idle: int | None = None) -> tuple[list[Scenario], list[str]]:
    """The idle scenarios with `idle` connections if asked, each within
    what `nofile` (RLIMIT_NOFILE, hard) allows. Returns them and a message
    for every one cut down: a run asked for more than the machine allows
    goes as far as it can and says so."""
    out, notes = [], []
    for s in scenarios:
        if s.idle:
            wanted = idle if idle is not None else s.idle
            most = idle_limit(s, nofile)
            if wanted > most:
                notes.append(f"{s.name}: {wanted:,} idle connections asked, but each needs a "
                             f"descriptor in the server and one in the load generator, and "
                             f"RLIMIT_NOFILE (hard) is {nofile:,} per process: running "
                             f"{most:,} (root may raise it: docs/measuring.md)")
                wanted = most
            if wanted != s.idle:
                s = with_idle(s, wanted)
        if all(s.name != t.name for t in out):  # --idle makes the idle scenarios one
            out.append(s)
    return out, notes


def ephemeral_ports(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    """How many local ports the kernel picks from for one source address."""
    try:
        low, high = (int(v) for v in open(path).read().split())
    except (OSError, ValueError):
        return 28_232  # the default range, 32768-60999
    return high - low + 1


def sources_for(conns: int, ports: int) -> int:
    """Loopback source addresses the load generator needs for `conns`
    connections to one server: each address has `ports` ephemeral ports, of
    which earlier runs may still hold some (TIME_WAIT), so use 80%."""
    return max(1, math.ceil(conns / (0.8 * ports)))


CLIENTS = ("loadgen", "wrk")


def expanded(scenarios: list[Scenario], clients: list[str], ccs: list[str]) -> list[Scenario]:
    """Each scenario once per congestion control and per client that can run it.

    Only the load generator speaks every workload; wrk runs the HTTP ones
    (it checks status codes, not bodies). A second client or a congestion
    control is named in the scenario ("http-get 1 MiB, c=10, wrk, cubic"),
    so each is a cell of its own and the defaults keep their usual names.
    """
    out = []
    for s in scenarios:
        for cc in ccs or [""]:
            for client in clients or ["loadgen"]:
                if client != "loadgen" and s.workload != "http-get":
                    continue
                suffix = (f", {client}" if client != "loadgen" else "") + (f", {cc}" if cc else "")
                out.append(dataclasses.replace(s, name=s.name + suffix, client=client, cc=cc))
    return out


def duration_for(scenario: Scenario, base_s: float) -> float:
    """Measured seconds per run: the tier's, or longer where replies are few."""
    return max(base_s, scenario.min_duration_s)


def warmup_for(scenario: Scenario, base_s: float) -> float:
    """Warm-up before measuring: longer with many idle connections.

    The load generator counts a connection as open once the kernel has
    completed the handshake, before the server has accepted it. stage02 then
    still has to fork for each of 10,000 idle clients queued ahead of the
    busy ones (about 2 s); that storm belongs to setup, not to the measure.
    """
    return base_s + scenario.idle / 10_000


def limitation(server: str, scenario: Scenario) -> str | None:
    """Why a server cannot take part in a scenario (shown instead of a number)."""
    if server.startswith("stage01_") and scenario.fds > 1:
        return "serial (one client at a time)"
    if server.startswith("stage05_") and scenario.fds > SELECT_MAX_CLIENTS:
        return "n/a (FD_SETSIZE)"
    if server.startswith("stage03_") and scenario.fds > THREAD_CAP:
        return f"n/a (a thread per client, {THREAD_CAP} at most)"
    return None


def flags_for(server: str, scenario: Scenario) -> tuple[str, ...]:
    """Flags a server needs for one scenario (beyond its variant's)."""
    if server.startswith("stage03_"):
        return ("--threads", str(max(1, scenario.fds)))
    return ()


def split_names(spec: str) -> list[str]:
    """--scenarios' comma-separated list, where a scenario's full name counts
    as one item though it has commas of its own ("echo 64 B, c=10",
    "echo 64 B, c=10 + 10,000 idle"): at each place the longest run of
    pieces that spells a scenario's name is taken whole."""
    pieces = spec.split(",")
    known = {s.name.lower() for s in SCENARIOS}
    names, i = [], 0
    while i < len(pieces):
        end = next((j for j in range(len(pieces), i + 1, -1)
                    if ",".join(pieces[i:j]).strip().lower() in known), i + 1)
        names.append(",".join(pieces[i:end]).strip())
        i = end
    return [n for n in names if n]


def selected(tier: str, names: list[str] | None) -> list[Scenario]:
    """The scenarios of a tier, narrowed by --scenarios (split_names()).

    A scenario's full name picks that scenario alone ("echo 64 B, c=10", not
    the one with idle connections too). Any other name picks the scenarios
    whose name contains it, not followed by a digit: "echo" picks every echo,
    "c=1" only one connection (not c=10).
    """
    chosen = [s for s in SCENARIOS if tier in s.tiers]
    if names:
        exact = {n.strip().lower() for n in names} & {s.name.lower() for s in SCENARIOS}
        patterns = [re.compile(re.escape(n.strip()) + r"(?!\d)", re.I)
                    for n in names if n.strip() and n.strip().lower() not in exact]
        chosen = [s for s in chosen
                  if s.name.lower() in exact or any(p.search(s.name) for p in patterns)]
    return chosen
