"""Start and stop the benchmarked servers (sandbox, nginx, gateway) on free loopback ports, always cleaned up."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

#: Inherited settings that would change what is measured; the bench sets the ones it needs itself.
_SCRUBBED_PREFIXES = ("ZOHO_", "GATEWAY_", "SANDBOX_", "GUNICORN_", "PROMETHEUS_")
_SCRUBBED_NAMES = frozenset({"WEB_CONCURRENCY", "PORT", "HOST"})

#: Loopback only, and never through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
SANDBOX_REFRESH_TOKEN = "sandbox-refresh-token"


class ServerError(RuntimeError):
    """A server did not start, or answered its set-up calls wrongly."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the gateway's settings, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SCRUBBED_PREFIXES) and name not in _SCRUBBED_NAMES
    }
    env.update(extra)
    return env


def http(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, Any]:
    """One loopback HTTP call: (status, decoded JSON body or None). Never raises for an HTTP status."""
    if urllib.parse.urlsplit(url).hostname != HOST:
        raise ValueError(f"the bench only talks to {HOST}, not {url}")
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as answer:
            status, raw = int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


@dataclass
class Service:
    """A started server process: its name, base URL, pid and the file its output goes to."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        """The pids of this process's children (gunicorn's workers)."""
        return child_pids(self.proc.pid)

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def child_pids(pid: int) -> list[int]:
    """Children of ``pid``, from /proc (``task/<pid>/children`` when the kernel has it, else a scan)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in children.read_text().split()]
    except OSError:
        pass
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may contain spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def connections_per_worker(url: str, pids: list[int]) -> tuple[int, ...]:
    """Established TCP connections to ``url``'s port held by each of ``pids`` right now (``ss -tnp``), most first;
    () when ``ss`` is missing. Shows how the clients' connections spread over gunicorn's workers."""
    port = urllib.parse.urlsplit(url).port
    try:
        done = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    counts = dict.fromkeys(pids, 0)
    for line in done.stdout.splitlines():
        # users:(("python",pid=123,fd=9)) - one connection may be listed with several holders; count each once.
        holders = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        for pid in holders & counts.keys():
            counts[pid] += 1
    return tuple(sorted(counts.values(), reverse=True))


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (VmRSS of /proc/<pid>/status); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of ``pids`` so far, in seconds: the scheduler's nanosecond run time summed over their threads
    (``/proc/<pid>/task/*/schedstat``), else utime + stime of ``/proc/<pid>/stat`` (clock ticks)."""
    total = 0.0
    for pid in pids:
        try:
            tasks = Path(f"/proc/{pid}/task").iterdir()
            total += sum(int(task.joinpath("schedstat").read_text().split()[0]) for task in tasks)
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields 14 and 15 of proc(5), counted after the command name
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") * 1e9
    return total / 1e9


class Servers:
    """Owns every process it starts; ``with Servers(workdir) as servers:`` stops them all on exit, even on error."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._started: list[Service] = []

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    # --- generic ------------------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str], url: str, ready_path: str, cwd: Path = REPO
    ) -> Service:
        log = self.workdir / f"{name}.out"
        with open(log, "ab") as out:
            # A session of its own: a Ctrl-C at the terminal reaches the bench, which stops its children in order.
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        service = Service(name, url, proc, log)
        self._started.append(service)
        self._wait_ready(service, ready_path)
        return service

    @staticmethod
    def _wait_ready(service: Service, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.proc.poll() is not None:
                raise ServerError(f"{service.name} exited with {service.proc.returncode}:\n{service.tail()}")
            try:
                status, _ = http("GET", service.url + path, timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise ServerError(f"{service.name} did not answer {path} within {timeout:g}s:\n{service.tail()}")

    def stop(self, service: Service, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL to the process group after ``timeout`` seconds."""
        if service in self._started:
            self._started.remove(service)
        proc = service.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group is only what we started
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)

    def stop_all(self) -> None:
        for service in reversed(list(self._started)):
            self.stop(service)

    # --- the three servers --------------------------------------------------------------------

    def sandbox(self, *, latency_ms: int, threads: int = 64) -> Service:
        """The Zoho simulator under gunicorn gthread, 1 worker x ``threads``, SDP calls delayed ``latency_ms``."""
        port = free_port()
        # An empty config file: the repo root's gunicorn.conf.py is the gateway's, not the sandbox's.
        conf = self.workdir / "sandbox.gunicorn.conf.py"
        conf.write_text("# the sandbox runs with gunicorn's defaults plus its command line\n")
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "zoho_gateway.sandbox:create_sandbox_app()",
            "--config",
            str(conf),
            "--bind",
            f"{HOST}:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            str(threads),
            # Idle keep-alive connections of nginx and the gateway's pool stay open between runs.
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ]
        env = clean_env(SANDBOX_LATENCY_MS=str(latency_ms))
        return self._spawn("sandbox", argv, env, f"http://{HOST}:{port}", "/_sandbox/stats")

    def gunicorn_app(
        self,
        name: str,
        app: str,
        *,
        worker_class: str,
        workers: int,
        threads: int,
        env: dict[str, str],
        ready_path: str,
    ) -> Service:
        """``gunicorn APP`` (``module:factory(args)``) with no config file: gunicorn's defaults plus the worker
        class, counts and keep-alive of the gateway's ``gunicorn.conf.py``; ready when ``ready_path`` answers 200."""
        port = free_port()
        conf = self.workdir / f"{name}.gunicorn.conf.py"
        conf.write_text("# gunicorn's defaults plus the command line\n")
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--config",
            str(conf),
            "--bind",
            f"{HOST}:{port}",
            "--worker-class",
            worker_class,
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-connections",
            "1000",
            "--keep-alive",
            "5",
            "--log-level",
            "warning",
        ]
        service = self._spawn(name, argv, clean_env(**env), f"http://{HOST}:{port}", ready_path)
        deadline = time.monotonic() + 30
        while len(service.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return service

    def nginx(self, upstream: Service, *, keepalive: int = 64) -> Service:
        """nginx (one worker) as a plain reverse proxy to ``upstream``, with upstream keep-alive."""
        port = free_port()
        prefix = self.workdir / "nginx"
        prefix.mkdir(exist_ok=True)
        upstream_host = urllib.parse.urlsplit(upstream.url).netloc
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream sandbox {{
        server {upstream_host};
        keepalive {keepalive};
    }}
    server {{
        listen {HOST}:{port};
        location / {{
            proxy_pass http://sandbox;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""
        )
        argv = ["/usr/sbin/nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
        return self._spawn("nginx", argv, clean_env(), f"http://{HOST}:{port}", "/_sandbox/stats")

    def gateway(
        self,
        name: str,
        sandbox: Service,
        *,
        workers: int,
        threads: int,
        cache_ttl: float | None = None,
        worker_class: str = "gevent",
        root: Path = REPO,
    ) -> Service:
        """``gunicorn wsgi:app`` from ``root`` (the repo, or a checkout of another revision) in sandbox mode, so
        that its own ``gunicorn.conf.py`` and ``logging.ini`` apply; ``cache_ttl`` None keeps the default."""
        port = free_port()
        state = self.workdir / name
        state.mkdir(exist_ok=True)
        env = clean_env(
            GATEWAY_SANDBOX="1",
            ZOHO_ACCOUNTS_URL=sandbox.url,
            ZOHO_API_BASE_URL=sandbox.url,
            GATEWAY_STATE_URL=f"sqlite:///{state / 'state.db'}",
            GATEWAY_LOG_FILE=str(state / "gw.log"),
            GUNICORN_BIND=f"{HOST}:{port}",
            WEB_CONCURRENCY=str(workers),
            GATEWAY_THREADS=str(threads),
            PROMETHEUS_MULTIPROC_DIR=str(state / "metrics"),
            GUNICORN_WORKER_CLASS=worker_class,
        )
        if cache_ttl is not None:
            env["GATEWAY_CACHE_TTL"] = f"{cache_ttl:g}"
        argv = [sys.executable, "-m", "gunicorn", "wsgi:app"]
        service = self._spawn(name, argv, env, f"http://{HOST}:{port}", "/healthz", cwd=root)
        service.extra["log_file"] = str(state / "gw.log")
        # One worker answering is enough for /healthz; CPU and memory are read from all of them.
        deadline = time.monotonic() + 30
        while len(service.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return service


# --- the sandbox's OAuth and control API ------------------------------------------------------------


def mint_token(sandbox: Service) -> str:
    """An access token from the sandbox's accounts server, with its fake default credentials."""
    status, body = http(
        "POST",
        f"{sandbox.url}/oauth/v2/token",
        form={
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
    )
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise ServerError(f"the sandbox minted no token: HTTP {status} {body!r}")
    token: str = body["access_token"]
    return token


def create_ticket(sandbox: Service, token: str) -> str:
    """Create one ticket straight in the sandbox (v3 form ``input_data``) and return its id."""
    input_data = json.dumps(
        {"request": {"subject": "Benchmark ticket", "description": "polled", "requester": {"email_id": "b@ex.com"}}}
    )
    status, body = http(
        "POST",
        f"{sandbox.url}/api/v3/requests",
        form={"input_data": input_data},
        headers={"Authorization": f"Zoho-oauthtoken {token}", "Accept": "application/vnd.manageengine.sdp.v3+json"},
    )
    try:
        return str(body["request"]["id"])
    except (TypeError, KeyError):
        raise ServerError(f"the sandbox created no ticket: HTTP {status} {body!r}") from None


def sandbox_stats(sandbox: Service) -> dict[str, int]:
    """The sandbox's integer counters (``gets``, ``creates``, ``api_calls``, ...)."""
    status, body = http("GET", f"{sandbox.url}/_sandbox/stats")
    if status != 200 or not isinstance(body, dict):
        raise ServerError(f"/_sandbox/stats answered HTTP {status}")
    return {k: v for k, v in body.items() if isinstance(v, int) and not isinstance(v, bool)}
