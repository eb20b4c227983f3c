"""Real servers for tests: the gateway in a thread (werkzeug) or under gunicorn, and a sandbox client.

Everything binds 127.0.0.1 on a free port and is stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.helpers import REPO, free_port

__all__ = [
    "REPO",
    "GunicornGateway",
    "GunicornStarter",
    "QuietHTTPHandler",
    "QuietHandler",
    "Sandbox",
    "Starter",
    "ThreadedGateway",
    "free_port",
    "serve_in_thread",
    "stop_server",
    "wait_healthy",
]


def serve_in_thread(server: socketserver.BaseServer, poll_interval: float = 0.5) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread; ``stop_server`` ends it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    return thread


def stop_server(server: socketserver.BaseServer) -> None:
    server.shutdown()
    server.server_close()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str, output: Path) -> None:
    """Poll ``url``/healthz until it answers 200; RuntimeError (with the end of ``output``) if ``proc`` exits
    or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {output.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become healthy: {output.read_text()[-2000:]}")


class Sandbox:
    """Talks to a running sandbox's control API (``/_sandbox/...``) over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def reset(self) -> None:
        self.http.post(f"{self.url}/_sandbox/reset", timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer = self.http.get(f"{self.url}/_sandbox/stats", timeout=5)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    def fault(self, **spec: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/faults", json=spec, timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete(f"{self.url}/_sandbox/faults", timeout=5).raise_for_status()

    def settings(self, **changes: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/settings", json=changes, timeout=5).raise_for_status()

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """One ticket as the sandbox stores it (its SDP entity)."""
        answer = self.http.get(f"{self.url}/_sandbox/tickets/{ticket_id}", timeout=5)
        answer.raise_for_status()
        entity: dict[str, Any] = answer.json()
        return entity

    def ticket_count(self) -> int:
        """How many tickets the sandbox stores."""
        answer = self.http.get(f"{self.url}/_sandbox/tickets/count", timeout=5)
        answer.raise_for_status()
        number = answer.json()["count"]
        assert isinstance(number, int), number
        return number

    def patch_ticket(self, ticket_id: str, **changes: Any) -> None:
        self.http.patch(f"{self.url}/_sandbox/tickets/{ticket_id}", json=changes, timeout=5).raise_for_status()

    def revoke_refresh_token(self) -> None:
        self.http.post(f"{self.url}/_sandbox/refresh_tokens/revoke", timeout=5).raise_for_status()

    def restore_refresh_token(self) -> None:
        self.http.post(f"{self.url}/_sandbox/refresh_tokens/restore", timeout=5).raise_for_status()

    def tickets(self) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.url}/_sandbox/tickets", timeout=5)
        answer.raise_for_status()
        data = answer.json()
        tickets: list[dict[str, Any]] = data["tickets"] if isinstance(data, dict) else data
        return tickets


class QuietHandler(WSGIRequestHandler):
    """A werkzeug request handler that logs no request line (``make_server(..., request_handler=QuietHandler)``)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class QuietHTTPHandler(BaseHTTPRequestHandler):
    """An ``http.server`` handler that logs nothing; subclass it with the ``do_*`` methods a test needs."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None


class ThreadedGateway:
    """``create_app(env)`` served by werkzeug's threaded server in a daemon thread."""

    def __init__(self, env: Mapping[str, str]) -> None:
        from zoho_gateway import create_app

        self.app = create_app(dict(env))
        self.gateway = self.app.extensions["zoho_gateway"]
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = serve_in_thread(self._server)

    def stop(self) -> None:
        stop_server(self._server)
        self.gateway.close()


class GunicornGateway:
    """``gunicorn wsgi:app`` from the repo root, as production runs it, with its own log file."""

    def __init__(self, env: Mapping[str, str], *, workers: int = 4, threads: int = 8, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_dir / f"gunicorn-{self.port}.log"
        self.stderr_file = log_dir / f"gunicorn-{self.port}.stderr"
        self.env = {
            **os.environ,
            "GATEWAY_LOG_FILE": str(self.log_file),
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "GATEWAY_THREADS": str(threads),
            "PROMETHEUS_MULTIPROC_DIR": str(log_dir / f"metrics-{self.port}"),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = False

    def start(self, wait: bool = True) -> GunicornGateway:
        stderr = open(self.stderr_file, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=REPO, env=self.env, stdout=stderr, stderr=stderr
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        assert self.proc is not None
        wait_healthy(self.url, self.proc, timeout, "gunicorn", self.stderr_file)

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def begin_stop(self, graceful: bool = False) -> None:
        """Ask gunicorn to stop, without waiting: ``stop`` waits. Several servers stop side by side when each is
        asked first and then waited for.

        Quick by default (SIGQUIT, gunicorn's quick shutdown: the workers exit at once, still running their
        ``worker_exit`` hook), for a test whose checks are done. ``graceful=True`` sends SIGTERM, as production
        stops it: a gevent worker then finishes in-flight requests and waits for idle keep-alive connections
        (up to the 5 s keep-alive), checking once a second; 2.3 to 4.1 s a server in test_cache_and_metrics,
        against 1.3 to 1.9 s quick.
        """
        if self.proc is not None and self.proc.poll() is None and not self._stopping:
            self.proc.send_signal(signal.SIGTERM if graceful else signal.SIGQUIT)
            self._stopping = True

    def stop(self, graceful: bool = False) -> None:
        """Stop gunicorn (``begin_stop``, unless already asked) and wait until it has exited."""
        self.begin_stop(graceful)
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._stopping = False

    def logs(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""


#: ``make_gateway`` and ``make_gunicorn`` (conftest.py), as test signatures name them.
Starter = Callable[..., ThreadedGateway]
GunicornStarter = Callable[..., GunicornGateway]
