"""Browser tests' tools: a page served on its own origin, headless Chromium on it, and reading its DOM."""

from __future__ import annotations

import re
import shutil
import subprocess
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.servers import QuietHTTPHandler, serve_in_thread, stop_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class PageServer:
    """Serves one HTML page at ``/`` from 127.0.0.1 on a free port: the page's origin is ``self.origin``."""

    def __init__(self) -> None:
        self.html = b""
        page = self

        class Handler(QuietHTTPHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = page.html if self.path == "/" else b"not found"
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve_in_thread(self._server)

    def stop(self) -> None:
        stop_server(self._server)


def chromium(url: str, profile: Path, *extra: str, virtual_ms: int, timeout: float) -> str:
    """Run headless Chromium on ``url`` with a fresh profile and ``extra`` flags, the page's timers given
    ``virtual_ms`` of virtual time; returns stdout (the DOM with ``--dump-dom``)."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={virtual_ms}",
        *extra,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def field(dom: str, element_id: str) -> str:
    """The text of the element ``id="element_id"`` in a dumped DOM."""
    found = re.search(rf'id="{re.escape(element_id)}">([^<]*)<', dom)
    assert found, (element_id, dom[-3000:])
    return found.group(1)
