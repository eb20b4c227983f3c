"""``SandboxServer``: the sandbox app on a real socket in a background thread, for tests and demos."""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Self

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_sandbox_app
from .settings import SandboxSettings
from .world import EXTENSION_KEY, SandboxWorld


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class SandboxServer:
    """Serve a sandbox on ``host`` (port 0 picks a free port) with werkzeug's threaded server.

    The world is fresh and in memory unless ``state_file`` (or ``settings.state_file``) names a file:
    then it starts from that file and writes every change back (see ``SandboxWorld``).

    Usage::

        with SandboxServer() as sandbox:
            requests.post(f"{sandbox.url}/oauth/v2/token", data=...)
            sandbox.world.stats()
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = True,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.app: Flask = create_sandbox_app(settings, state_file=state_file)
        self._host = host
        self._port = port
        self._quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def world(self) -> SandboxWorld:
        """Direct access to the simulator's state (same object the requests see)."""
        world = self.app.extensions[EXTENSION_KEY]
        assert isinstance(world, SandboxWorld)
        return world

    @property
    def state_file(self) -> str | None:
        """The state file in use, or None when the world lives in memory only."""
        return self.world.state_file

    @property
    def port(self) -> int:
        """The bound port; raises RuntimeError before ``start``."""
        if self._server is None:
            raise RuntimeError("SandboxServer is not running")
        return self._server.server_port

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self. Starting twice is an error."""
        if self._server is not None:
            raise RuntimeError("SandboxServer is already running")
        handler = _QuietRequestHandler if self._quiet else WSGIRequestHandler
        self._server = make_server(self._host, self._port, self.app, threaded=True, request_handler=handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"zoho-sandbox:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any request sleeping in a delay fault and release the port. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.world.interrupt()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
