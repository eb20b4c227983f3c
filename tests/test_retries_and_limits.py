"""Retries toward Zoho (what is re-sent, how often) and per-API-key rate limits across workers and hosts.

Upstream attempts are counted by the sandbox (``get_calls``, ``create_calls``) or, where nothing answers (a
closed port), by the gateway's own ``/metrics``. Rate limits run on ``gunicorn wsgi:app`` with 4 workers on
SQLite state, and on two gunicorn masters sharing a real redis-server.

The module ends with the log scan of the whole run: every gunicorn log and stderr file under pytest's base
temporary directory and the session log, searched for API keys, Zoho tokens, the client secret and the
refresh token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import requests

from tests.helpers import (
    TICKET,
    api_key,
    bearer,
    burst,
    create,
    error_code,
    free_port,
    keys_env,
    logged_files,
    secrets_in,
    wait_for_workers,
)
from tests.redis_server import redis_db
from tests.servers import GunicornStarter, Sandbox, Starter, ThreadedGateway

pytestmark = pytest.mark.usefixtures("no_secrets_in_logs")

KEYS = keys_env("alice", "bob", "carol") + f",ops[admin]={api_key('ops')}"  # ops reads /metrics
#: A Redis database of the session's server that no other module uses; flushed before use.
DB_RATE_LIMIT = 11


def assert_retry_later(answer: requests.Response, status: int, code: str) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert error_code(answer) == code, answer.text
    assert answer.json()["details"]["request_id"] == answer.headers["X-Request-ID"]
    retry_after = answer.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) >= 1, answer.headers


# --- retries toward Zoho ---------------------------------------------------------------------------------


def test_a_read_survives_a_503_then_a_429(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    ticket_id = create(gateway.url, headers=bearer("carol"))
    before = sandbox.stats()
    sandbox.fault(target="get", kind="status", status=503, times=1)
    sandbox.fault(target="get", kind="rate_limit", retry_after="1", times=1)
    started = time.monotonic()
    answer = requests.get(f"{gateway.url}/requests/{ticket_id}", headers=bearer("alice"), timeout=15)
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert answer.json()["ticket_id"] == ticket_id
    after = sandbox.stats()
    assert after["get_calls"] - before["get_calls"] == 3, (before, after)
    assert after["gets"] - before["gets"] == 1
    assert elapsed >= 0.9, elapsed  # Zoho's Retry-After: 1 was honoured


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"kind": "status", "status": 503}, 503, "zoho_unavailable"),
        ({"kind": "rate_limit", "retry_after": "1"}, 503, "zoho_rate_limited"),
        ({"kind": "reset_connection"}, 201, None),
        ({"kind": "reset_after_commit"}, 201, None),
    ],
    ids=["503", "429", "dropped-connection", "dropped-after-commit"],
)
def test_a_create_that_may_have_arrived_is_never_resent(
    make_gateway: Starter, sandbox: Sandbox, fault: dict[str, object], status: int, code: str | None
) -> None:
    """Zoho refusing a create before storing it (503, 429) is answered at once, for the client to retry later.
    A dropped connection may follow a stored ticket: the gateway searches Zoho before any re-send, and sends
    again only when Zoho holds no such ticket, so the client gets the one ticket's 201."""
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    sandbox.fault(target="create", times=1, **fault)
    answer = requests.post(f"{gateway.url}/requests", json=TICKET, headers=bearer("alice"), timeout=15)
    stats = sandbox.stats()
    if code is None:
        assert answer.status_code == status, answer.text
        assert sandbox.ticket_count() == 1
        [stored] = sandbox.tickets()
        assert answer.json()["zoho_ticket_id"] == str(stored["id"])
        assert stats["list_calls"] == 1  # Zoho was searched before anything was sent again
        # Stored before the connection dropped: found, never sent again. Not stored: sent once more.
        assert stats["create_calls"] == (1 if fault["kind"] == "reset_after_commit" else 2), stats
    else:
        assert_retry_later(answer, status, code)
        assert stats["create_calls"] == 1
        assert sandbox.tickets() == []


def upstream_count(gateway: ThreadedGateway, operation: str, outcome: str) -> float:
    text = requests.get(f"{gateway.url}/metrics", headers=bearer("ops"), timeout=10).text
    pattern = (
        rf'gateway_upstream_calls_total\{{(?=[^}}]*operation="{operation}")(?=[^}}]*outcome="{outcome}")[^}}]*\}} (\S+)'
    )
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_a_create_toward_a_closed_port_is_retried_then_503(make_gateway: Starter, sandbox: Sandbox) -> None:
    # The token endpoint answers; the API port is closed, so no connection is ever made.
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS, ZOHO_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    answer = requests.post(f"{gateway.url}/requests", json=TICKET, headers=bearer("alice"), timeout=15)
    assert_retry_later(answer, 503, "zoho_unavailable")
    # Nothing left the gateway, so the POST was safe to try again: three connection attempts, all refused.
    assert upstream_count(gateway, "create", "not_sent") == 3
    assert sandbox.stats()["api_calls"] == 0


def test_a_persistent_503_exhausts_a_bounded_budget(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    ticket_id = create(gateway.url, headers=bearer("carol"))
    before = sandbox.stats()
    sandbox.fault(target="get", kind="status", status=503)  # until cleared
    started = time.monotonic()
    answer = requests.get(f"{gateway.url}/requests/{ticket_id}", headers=bearer("alice"), timeout=30)
    elapsed = time.monotonic() - started
    sandbox.clear_faults()
    assert_retry_later(answer, 503, "zoho_unavailable")
    attempts = sandbox.stats()["get_calls"] - before["get_calls"]
    assert 2 <= attempts <= 3, attempts
    assert elapsed < 5.0, elapsed  # ZOHO_RETRY_BUDGET defaults to 4 s


# --- rate limits per API key -----------------------------------------------------------------------------


def wait_for_fresh_window(window: float = 60.0, need: float = 6.0) -> None:
    """Sleep into the next window when fewer than ``need`` seconds are left of this one (fixed windows)."""
    left = window - time.time() % window
    if left < need:
        time.sleep(left + 0.2)


def reads(urls: Sequence[str], path: str, client: str, total: int) -> list[requests.Response]:
    """``total`` GETs of ``path`` by ``client``, spread over ``urls``, 8 at a time."""
    return burst(lambda i: requests.get(urls[i % len(urls)] + path, headers=bearer(client), timeout=15), total, 8)


def assert_limited(answers: Sequence[requests.Response], allowed: int) -> None:
    passed = [a for a in answers if a.status_code != 429]
    refused = [a for a in answers if a.status_code == 429]
    assert len(passed) == allowed, sorted(a.status_code for a in answers)
    assert all(a.status_code == 200 for a in passed), [(a.status_code, a.text) for a in passed]
    # Every allowed request saw its own count: remaining runs from limit-1 down to 0 exactly once each.
    assert sorted(int(a.headers["RateLimit-Remaining"]) for a in passed) == list(range(allowed))
    for answer in refused:
        assert_retry_later(answer, 429, "rate_limited")
        assert answer.headers["RateLimit-Limit"] == str(allowed)
        assert answer.headers["RateLimit-Remaining"] == "0"
        reset = int(answer.headers["RateLimit-Reset"])
        assert 1 <= reset <= 60 and int(answer.headers["Retry-After"]) <= 60, answer.headers


def test_rate_limit_is_shared_by_gunicorn_workers_and_separate_per_key(
    make_gunicorn: GunicornStarter, sandbox: Sandbox
) -> None:
    server = make_gunicorn(workers=4, GATEWAY_API_KEYS=KEYS, GATEWAY_RATE_LIMIT="10/minute")
    ticket_id = create(server.url, headers=bearer("carol"))
    wait_for_workers(server, 4)
    wait_for_fresh_window()
    before = sandbox.stats()["get_calls"]
    alice = reads([server.url], f"/requests/{ticket_id}", "alice", 30)
    assert_limited(alice, 10)
    bob = reads([server.url], f"/requests/{ticket_id}", "bob", 12)
    assert_limited(bob, 10)
    # Refused requests never reach Zoho; probes are never limited.
    assert sandbox.stats()["get_calls"] - before == 20
    for _ in range(5):
        assert requests.get(f"{server.url}/healthz", headers=bearer("alice"), timeout=5).status_code == 200
    assert len(server.worker_pids()) == 4  # no worker died on the way


def test_rate_limit_in_redis_is_shared_by_two_gunicorn_masters(
    make_gunicorn: GunicornStarter,
    sandbox: Sandbox,
    redis_url: str,
) -> None:
    url = redis_db(redis_url, DB_RATE_LIMIT)
    env = {"GATEWAY_API_KEYS": KEYS, "GATEWAY_RATE_LIMIT": "10/minute", "GATEWAY_STATE_URL": url}
    first, second = make_gunicorn(workers=2, **env), make_gunicorn(workers=2, **env)
    ticket_id = create(first.url, headers=bearer("carol"))
    wait_for_workers(first, 2)
    wait_for_workers(second, 2)
    wait_for_fresh_window()
    alice = reads([first.url, second.url], f"/requests/{ticket_id}", "alice", 30)
    assert_limited(alice, 10)
    served_by = {a.url.split("/requests")[0] for a in alice if a.status_code == 200}
    assert served_by == {first.url, second.url}, served_by
    bob = reads([second.url, first.url], f"/requests/{ticket_id}", "bob", 12)
    assert_limited(bob, 10)


# --- the whole run's logs --------------------------------------------------------------------------------


def test_no_log_of_the_run_holds_a_secret(tmp_path_factory: pytest.TempPathFactory, session_log: Path) -> None:
    # The scanner finds what it is meant to find...
    planted = f"x {api_key('alice')} 1000.{'ab' * 16}.{'cd' * 16} sandbox-client-secret sandbox-refresh-token y"
    assert len(secrets_in(planted)) == 4, secrets_in(planted)
    # ...and nothing in the logs of this run: every gunicorn's file and stderr, and the in-process gateways' log.
    files = logged_files(tmp_path_factory.getbasetemp(), session_log)
    assert files, "no log was written"
    size = 0
    found: dict[str, list[str]] = {}
    for path in files:
        text = path.read_text(errors="replace")
        size += len(text)
        if hits := secrets_in(text):
            found[str(path)] = hits
    assert not found, found
    assert size > 0
