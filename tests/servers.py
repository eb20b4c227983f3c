"""Real servers for tests: the gateway in a thread (werkzeug) or under gunicorn, and a sandbox client.

Everything binds 127.0.0.1 on a free port and is stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        return data["tickets"] if isinstance(data, dict) else data


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class ThreadedGateway:
    """``create_app(env)`` served by werkzeug's threaded server in a daemon thread."""

    def __init__(self, env: Mapping[str, str]) -> None:
        from zoho_gateway import create_app

        self.app = create_app(dict(env))
        self.gateway = self.app.extensions["zoho_gateway"]
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
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

    def start(self, wait: bool = True) -> GunicornGateway:
        stderr = open(self.stderr_file, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=REPO, env=self.env, stdout=stderr, stderr=stderr
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.proc.returncode}: {self.stderr_file.read_text()[-2000:]}"
                )
            try:
                if requests.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("gunicorn did not become healthy")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def logs(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""
