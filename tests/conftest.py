"""Shared fixtures: a real sandbox (Zoho simulator) on a real socket, and gateways that call it.

The one place for fixtures: a test module defines only fixtures of its own, under names no fixture here has.
Plain helpers are in helpers.py, the servers in servers.py.

- ``sandbox_server`` (session): the SandboxServer; ``sandbox``: its control client, the world reset for the test.
- ``make_gateway`` / ``gateway``: a new werkzeug-served gateway for this test.
- ``module_gateway`` (module) / ``reused_gateway``: one gateway for the whole module (a werkzeug server takes
  half a second to stop), handed to each test with no token in front of a reset sandbox; a module sets its
  settings in ``MODULE_GATEWAY_ENV``.
- ``make_gunicorn``: ``gunicorn wsgi:app`` against the sandbox, stopped quickly (SIGQUIT) after the test.
- ``no_secrets_in_logs``: fails a test whose logs hold a secret; a module opts in with
  ``pytestmark = pytest.mark.usefixtures("no_secrets_in_logs")``.
- ``redis_url`` (session): a real redis-server (redis_server.py).
- ``backend_spec``: a fresh shared backend, once SQLite and once Redis; ``spawn_pool`` (module): four fresh
  interpreters for cross-process tests.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest

from tests.browser import CHROMIUM
from tests.helpers import SESSION_LOG, Spec, assert_logs_clean, base_env, spec_for
from tests.redis_server import redis_url  # noqa: F401  (re-exported fixture)
from tests.servers import GunicornGateway, Sandbox, ThreadedGateway
from zoho_gateway.policies.owners import TicketOwners
from zoho_gateway.sandbox import SandboxServer
from zoho_gateway.state.memory import MemoryStore

__all__ = ["SESSION_LOG", "base_env"]  # still imported from here by some modules; their home is helpers.py

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


@pytest.fixture(scope="module")
def module_gateway(request: pytest.FixtureRequest, sandbox_server: SandboxServer) -> Iterator[ThreadedGateway]:
    """One gateway for the module, with the settings of its ``MODULE_GATEWAY_ENV``; tests take ``reused_gateway``."""
    running = ThreadedGateway(base_env(sandbox_server.url, **getattr(request.module, "MODULE_GATEWAY_ENV", {})))
    yield running
    running.stop()


@pytest.fixture
def reused_gateway(module_gateway: ThreadedGateway, sandbox: Sandbox) -> ThreadedGateway:
    """The module's gateway with no token and no token back-off, in front of a freshly reset sandbox.

    The reset sandbox numbers its tickets from the start again, which Zoho never does: the records of which
    create owns which ticket id (``policies.owners``) are dropped too, else a new ticket would look like an
    earlier test's."""
    module_gateway.gateway.tokens.forget()
    store = module_gateway.gateway.store
    assert isinstance(store, MemoryStore)  # base_env's memory://
    for key in [key for key in store._data if key.startswith(TicketOwners.PREFIX)]:
        store.delete(key)
    return module_gateway


@pytest.fixture
def browser() -> None:
    # A browser test that skips proves nothing: ./dev test installs chromium, so its absence is a failure.
    assert CHROMIUM is not None, "chromium is not installed: run ./dev test (or apt-get install chromium)"


@pytest.fixture
def no_secrets_in_logs(tmp_path: Path, session_log: Path) -> Iterator[None]:
    """After the test, every log it can have written (see ``helpers.logged_files``) is free of secrets."""
    yield
    assert_logs_clean(tmp_path, session_log)


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
    for server in started:  # all asked first, so that they stop side by side
        server.begin_stop()
    for server in started:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def backend_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Spec:
    """Where a shared backend lives (``helpers.spec_for``), once on SQLite and once on Redis."""
    return spec_for(request.param, request, tmp_path)


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[Pool]:
    """Four worker processes for the module. Spawned, not forked: each is a fresh interpreter with its own
    connections, as gunicorn workers on several hosts would be."""
    with multiprocessing.get_context("spawn").Pool(4) as workers:
        yield workers
