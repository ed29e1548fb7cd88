"""The servers under test: which are built, how to start them, how to stop them.

A server here is one binary with one set of flags (a "variant"):
stage07_epoll runs once level-triggered and once edge-triggered, stage08
once per copy method. Each is started as the leader of a new session, so
its whole process tree (stage02's children, nginx's worker) can be sampled
and, on every way out, killed.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 15.0  # stage03 sized to 10,000 threads takes a moment
STOP_TIMEOUT_S = 10.0  # stage02 with 10,000 children to end
IDLE_TIMEOUT_S = 3600  # --idle-timeout for every iolab server (see Server.command)


@dataclass(frozen=True)
class Variant:
    """One way of running one server binary."""

    name: str  # the binary's name: stage07_epoll, asio_server, nginx
    flags: tuple[str, ...] = ()
    tag: str = ""  # what the flags mean, for the label: "edge", "sendfile"
    echo: bool = True  # runs the echo scenarios (nginx cannot: no ECHO)
    echo_full_only: bool = False  # ... but only in --full
    files: bool = True  # takes part in the file scenarios
    full_only: bool = False  # only in --full (a second trigger mode, say)
    # Not pinned to the server's core: may run on every core, the load
    # generator's included (a multi-threaded server showing its scaling).
    all_cores: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} ({self.tag})" if self.tag else self.name

    @property
    def is_nginx(self) -> bool:
        return self.name == "nginx"


# The knobs worth turning, per server. A built stage not listed here runs
# once with its defaults.
VARIANTS: dict[str, list[Variant]] = {
    "stage07_epoll": [
        Variant("stage07_epoll", ("--trigger", "level"), "level"),
        Variant("stage07_epoll", ("--trigger", "edge"), "edge", full_only=True),
    ],
    # The copy method matters only for file bodies. For echo stage08 is
    # stage07's loop: it runs the echo scenarios once, and only in --full.
    "stage08_zero_copy": [
        Variant("stage08_zero_copy", ("--copy", "sendfile"), "sendfile", echo_full_only=True),
        Variant("stage08_zero_copy", ("--copy", "mmap"), "mmap", echo=False),
        Variant("stage08_zero_copy", ("--copy", "splice"), "splice", echo=False),
        Variant("stage08_zero_copy", ("--copy", "read"), "read", echo=False),
        # O_DIRECT reads: no page cache, so every cell reads from the disk.
        Variant("stage08_zero_copy", ("--copy", "direct"), "direct", echo=False),
        # sendfile without the cap on unsent bytes (TCP_NOTSENT_LOWAT), for
        # the README's before-and-after in one run.
        Variant("stage08_zero_copy", ("--copy", "sendfile", "--unsent-limit", "0"),
                "unlimited sendfile", echo=False, full_only=True),
    ],
    # One thread: the server gets one core, as every other server does.
    "asio_server": [Variant("asio_server", ("--threads", "1"))],
    # The copy method of file bodies, as stage08's; echo runs once (splice).
    "stage10_io_uring": [
        Variant("stage10_io_uring", ("--copy", "splice"), "splice"),
        Variant("stage10_io_uring", ("--copy", "read"), "read", echo=False),
        Variant("stage10_io_uring", ("--copy", "send_zc"), "send_zc", echo=False),
    ],
    # One epoll loop per core. With one loop it is pinned like everyone; with
    # two it may use both cores, so its second loop competes with the load
    # generator for the generator's core (on a 2-core machine that row shows
    # the two sharing, not the server's scaling).
    "stage11_reactor_per_core": [
        Variant("stage11_reactor_per_core", ("--threads", "1"), "1 loop"),
        Variant("stage11_reactor_per_core", ("--threads", "2"), "2 loops, shares loadgen's core",
                all_cores=True),
    ],
}

NGINX = Variant("nginx", tag="1 worker, sendfile", echo=False)

# stage10's feature ladder (scripts/compare --ladder): --rung N adds the Nth
# io_uring feature to those below it (stage10_io_uring/README.md).
RUNGS = ("recv/send", "provided buffers", "multishot recv", "fixed files", "defer taskrun",
         "send_zc")


def ladder_variants(binaries: "Binaries") -> list[Variant]:
    """stage07 (level), the epoll yardstick, then stage10 at every rung."""
    out = VARIANTS["stage07_epoll"][:1] if "stage07_epoll" in binaries.servers else []
    if "stage10_io_uring" in binaries.servers:
        out += [Variant("stage10_io_uring", ("--rung", str(n)), f"rung {n}: {name}", files=False)
                for n, name in enumerate(RUNGS, 1)]
    return out


@dataclass
class Binaries:
    """Where the built servers and the load generator are."""

    build_dir: Path
    servers: dict[str, Path] = field(default_factory=dict)  # name -> path, in course order
    loadgen: Path | None = None
    nginx: Path | None = None
    wrk: Path | None = None  # the second, independent HTTP client (Debian's wrk)
    tcp_cc: Path | None = None  # LD_PRELOAD library behind --congestion (bench/tcp_cc)


def discover(build_dir: Path) -> Binaries:
    """Finds what is built: stageNN_*/stageNN_*, the asio server, loadgen, nginx.

    A stage that is not built yet is simply absent.
    """
    found = Binaries(build_dir)
    for path in sorted(build_dir.glob("stage[0-9][0-9]_*/stage[0-9][0-9]_*")):
        if path.name == path.parent.name and os.access(path, os.X_OK):
            found.servers[path.name] = path
    asio = build_dir / "bench/asio_server/asio_server"
    if os.access(asio, os.X_OK):
        found.servers["asio_server"] = asio
    loadgen = build_dir / "bench/loadgen/loadgen"
    if os.access(loadgen, os.X_OK):
        found.loadgen = loadgen
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    found.nginx = Path(nginx) if nginx else None
    wrk = shutil.which("wrk")
    found.wrk = Path(wrk) if wrk else None
    tcp_cc = build_dir / "bench/tcp_cc/libiolab_tcp_cc.so"
    found.tcp_cc = tcp_cc.resolve() if tcp_cc.exists() else None
    return found


def congestion_env(binaries: Binaries, cc: str) -> dict[str, str]:
    """The environment that runs a program's TCP under `cc` ("": unchanged)."""
    if not cc:
        return {}
    if binaries.tcp_cc is None:
        raise ServerError("--congestion needs bench/tcp_cc/libiolab_tcp_cc.so (build the release preset)")
    preload = " ".join(p for p in (os.environ.get("LD_PRELOAD", ""), str(binaries.tcp_cc)) if p)
    return {"LD_PRELOAD": preload, "IOLAB_TCP_CONGESTION": cc}


def variants_of(binaries: Binaries, full: bool) -> list[Variant]:
    """Every variant to run, in course order, then asio, then nginx."""
    out = []
    for name in binaries.servers:
        for v in VARIANTS.get(name, [Variant(name)]):
            if full or not v.full_only:
                out.append(v)
    if binaries.nginx:
        out.append(NGINX)
    return out


# Every CPU the runner may use, read before it pins itself to the load generator's.
ALL_CPUS = frozenset(os.sched_getaffinity(0))


def pin_to(cpu: int | frozenset[int] | None):
    """A preexec_fn that pins the child to one CPU (or a set) before it runs anything.

    Pinning in the child before exec means every thread the server later
    creates inherits the mask. (preexec_fn is safe here: the runner has no
    threads.) RLIMIT_NOFILE is raised once in the runner itself and inherited.
    """

    def preexec() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu} if isinstance(cpu, int) else cpu)

    return preexec


def free_port() -> int:
    """A port nothing listens on now (for nginx, which cannot be told --port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """\
# Written by bench/compare for one run: nginx as a fair yardstick for the
# file workloads. One worker (every server gets one core), sendfile on,
# no access log, keep-alive that does not cut benchmark connections.
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections {nofile};
    multi_accept on;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root};
        index index.html;
    }}
}}
"""


class Server:
    """A running server: started by __enter__, always stopped by __exit__.

    __exit__ runs on every way out, exceptions and Ctrl-C included: SIGTERM
    to the server (it prints its summary and exits 0), then SIGKILL to its
    whole session for whatever is left, then reap.
    """

    def __init__(self, variant: Variant, binaries: Binaries, root: Path, cpu: int | None,
                 extra_flags: tuple[str, ...] = (), wrap: list[str] | None = None,
                 env: dict[str, str] | None = None):
        self.variant = variant
        self.binaries = binaries
        self.root = root
        self.cpu = cpu
        self.extra_flags = extra_flags
        self.wrap = wrap or []  # e.g. ["strace", "-f", "-c", "-o", FILE]
        self.env = env or {}  # added to the runner's environment (e.g. congestion_env)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.pid = 0  # the server's own pid (not strace's when wrapped)
        self.summary = ""  # the line it printed on SIGTERM
        self.exit_code: int | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.nginx_log = ""
        self._stderr = None

    # -- starting -------------------------------------------------------

    def command(self) -> list[str]:
        if self.variant.is_nginx:
            return self._nginx_command()
        path = self.binaries.servers[self.variant.name]
        # The idle scenarios hold thousands of silent connections for longer
        # than the default --idle-timeout (60 s) in --full: the timeout stays
        # on (its bookkeeping is part of each server's cost) but never fires.
        return [str(path), "--host", "127.0.0.1", "--port", "0", "--root", str(self.root),
                "--idle-timeout", str(IDLE_TIMEOUT_S), *self.variant.flags, *self.extra_flags]

    def _nginx_command(self) -> list[str]:
        self._tmp = tempfile.TemporaryDirectory(prefix="iolab-nginx-")
        prefix = self._tmp.name
        self.port = free_port()
        nofile = os.sysconf("SC_OPEN_MAX")
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=self.port, root=self.root, nofile=nofile))
        return [str(self.binaries.nginx), "-p", prefix, "-c", str(conf), "-e", f"{prefix}/error.log"]

    def __enter__(self) -> "Server":
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [*self.wrap, *self.command()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True, env={**os.environ, **self.env} if self.env else None,
            preexec_fn=pin_to(ALL_CPUS if self.variant.all_cores and self.cpu is not None else self.cpu))
        try:
            if self.variant.is_nginx:
                self._wait_connectable()
            else:
                self._read_listening_line()
            self.pid = self._find_server_pid()
        except ServerError as e:
            self.__exit__(None, None, None)
            detail = self.stderr_tail(3).replace("\n", " | ")
            raise ServerError(f"{e}: {detail}" if detail else str(e)) from None
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _read_listening_line(self) -> None:
        """Waits for `listening on HOST:PORT`, the first line every server prints."""
        assert self.proc and self.proc.stdout
        line = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise ServerError(f"no 'listening on' line within {START_TIMEOUT_S:.0f} s")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                raise ServerError(f"exited before listening (status {self.proc.wait()})")
            line += chunk
        m = re.match(rb"listening on (\S+):(\d+)", line)
        if not m:
            raise ServerError(f"unexpected first line {line!r}")
        self.port = int(m.group(2))

    def _wait_connectable(self) -> None:
        assert self.proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"exited at start (status {self.proc.returncode})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise ServerError(f"not accepting connections within {START_TIMEOUT_S:.0f} s")

    def _find_server_pid(self) -> int:
        """The server's pid; under strace, the traced child rather than strace."""
        assert self.proc
        if not self.wrap:
            return self.proc.pid
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    stat = Path(f"/proc/{name}/stat").read_text()
                except OSError:
                    continue
                if int(stat[stat.rfind(")") + 2 :].split()[1]) == self.proc.pid:
                    return int(name)
        raise ServerError("could not find the traced server process")

    @property
    def session(self) -> int:
        """The session id shared by the server's whole process tree."""
        assert self.proc
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, lines: int = 5) -> str:
        """The end of what the server wrote on stderr (nginx: its error log)."""
        text = self.nginx_log
        if self._stderr is not None:
            self._stderr.seek(0)
            text += self._stderr.read().decode(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    # -- stopping -------------------------------------------------------

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self._stop()
        if self._tmp is not None:
            if self.variant.is_nginx and self.proc is not None:
                log = Path(self._tmp.name) / "error.log"
                self.nginx_log = log.read_text(errors="replace") if log.exists() else ""
            self._tmp.cleanup()
            self._tmp = None

    def _stop(self) -> None:
        assert self.proc
        leader = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.kill(self.pid or leader, signal.SIGTERM)  # ours print a summary; nginx stops fast
            except ProcessLookupError:
                pass
            _wait_exited_unreaped(leader, STOP_TIMEOUT_S)
        # Whatever is left of the tree (a stuck child, the server itself) dies
        # now. The leader is not reaped yet, so its pid still names this group.
        try:
            os.killpg(leader, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.exit_code = self.proc.wait()
        if self.proc.stdout:
            rest = self.proc.stdout.read().decode(errors="replace").strip()
            self.summary = rest.splitlines()[-1] if rest else ""
            self.proc.stdout.close()

    def requests_served(self) -> int | None:
        """The request count from the server's summary line, if it printed one."""
        m = re.search(r"(\d+) requests", self.summary)
        return int(m.group(1)) if m else None


def _wait_exited_unreaped(pid: int, timeout_s: float) -> bool:
    """Waits up to `timeout_s` for child `pid` to exit, leaving it unreaped.

    WNOWAIT keeps the zombie, so its pid (and process group id) cannot be
    reused before the group is killed.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        time.sleep(0.01)
    return False


class ServerError(RuntimeError):
    """A server that could not be started."""
