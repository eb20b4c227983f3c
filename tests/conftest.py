"""Shared fixtures: a real sandbox (Zoho simulator) on a real socket, and gateways that call it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.redis_server import redis_url  # noqa: F401  (re-exported fixture)
from tests.servers import GunicornGateway, Sandbox, ThreadedGateway
from zoho_gateway.sandbox import SandboxServer

#: One log file for every in-process gateway of the session (logging is configured once per process).
SESSION_LOG = Path(os.environ.get("GATEWAY_TEST_LOG_DIR", "/tmp")) / f"zgw-tests-{os.getpid()}" / "gateway.log"
os.environ.setdefault("GATEWAY_LOG_FILE", str(SESSION_LOG))


@pytest.fixture(scope="session")
def session_log() -> Path:
    return SESSION_LOG


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Sandbox:
    """The session's sandbox, reset to a clean world for each test."""
    control = Sandbox(sandbox_server.url)
    control.reset()
    return control


def base_env(sandbox_url: str, **extra: str) -> dict[str, str]:
    env = {
        "GATEWAY_SANDBOX": "1",
        "ZOHO_ACCOUNTS_URL": sandbox_url,
        "ZOHO_API_BASE_URL": sandbox_url,
        "GATEWAY_STATE_URL": "memory://",
        "GATEWAY_LOG_FILE": str(SESSION_LOG),
        "ZOHO_TIMEOUT": "2",
        "GATEWAY_CACHE_TTL": "0",
    }
    env.update(extra)
    return env


@pytest.fixture
def make_gateway(sandbox: Sandbox) -> Iterator[Callable[..., ThreadedGateway]]:
    """Start a gateway (werkzeug, threaded, in this process) against the sandbox; ``make_gateway(KEY=value)``."""
    started: list[ThreadedGateway] = []

    def start(**env: str) -> ThreadedGateway:
        gateway = ThreadedGateway(base_env(sandbox.url, **env))
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateway(make_gateway: Callable[..., ThreadedGateway]) -> ThreadedGateway:
    """A default gateway: sandbox mode, memory state, no API keys."""
    return make_gateway()


@pytest.fixture
def make_gunicorn(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callable[..., GunicornGateway]]:
    """Start ``gunicorn wsgi:app`` (default 4 workers) against the sandbox; stopped after the test."""
    started: list[GunicornGateway] = []

    def start(workers: int = 4, threads: int = 8, wait: bool = True, **env: str) -> GunicornGateway:
        merged = base_env(sandbox.url, GATEWAY_STATE_URL=f"sqlite:///{tmp_path}/state.db")
        merged.pop("GATEWAY_LOG_FILE")
        merged.update(env)
        server = GunicornGateway(merged, workers=workers, threads=threads, log_dir=tmp_path)
        started.append(server)
        return server.start(wait=wait)

    yield start
    for server in started:
        server.stop()
