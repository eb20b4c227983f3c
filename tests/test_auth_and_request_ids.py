"""API keys and request ids, over real sockets: a threaded gateway or ``gunicorn wsgi:app`` in front of the sandbox.

Every API key in these tests carries ``helpers.KEY_MARKER``, so one pattern finds any of them in any log; the
``no_secrets_in_logs`` fixture (conftest.py) scans every log a test wrote (its gunicorn log and stderr files
under ``tmp_path``, and the session log of the in-process gateways) after each test here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import (
    TICKET,
    api_key,
    bearer,
    error_code,
    keys_env,
    log_lines,
    production_env,
    wait_for_workers,
)
from tests.servers import GunicornStarter, Sandbox, Starter
from zoho_gateway import ConfigError, create_app

pytestmark = pytest.mark.usefixtures("no_secrets_in_logs")


# --- API keys -------------------------------------------------------------------------------------------


def test_missing_or_wrong_keys_get_401_before_any_upstream_call(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("alice", "bob"))
    before = sandbox.stats()
    wrong = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {api_key('mallory')}"},
        {"Authorization": f"Basic {api_key('alice')}"},  # right key, wrong scheme
        {"Authorization": api_key("alice")},  # no scheme at all
        {"Authorization": f"Bearer {api_key('alice').upper()}"},
        {"Authorization": f"Bearer {api_key('alice')}x"},
        {"Authorization": f"Bearer {api_key('alice')[:-1]}"},
        {"X-API-Key": api_key("mallory")},
        {"X-API-Key": ""},
        # A wrong X-API-Key is not rescued by a right bearer key: the explicit key header wins.
        {"X-API-Key": api_key("mallory"), "Authorization": f"Bearer {api_key('alice')}"},
    ]
    for headers in wrong:
        for method, path, body in (
            ("POST", "/requests", TICKET),
            ("GET", "/requests/123", None),
            ("POST", "/requests", {}),
        ):
            answer = requests.request(method, gateway.url + path, json=body, headers=headers, timeout=10)
            assert answer.status_code == 401, (headers, method, answer.status_code, answer.text)
            assert error_code(answer) == "unauthorized"
            assert answer.headers["WWW-Authenticate"].startswith("Bearer"), answer.headers
            assert answer.headers["X-Request-ID"] == answer.json()["details"]["request_id"]
            assert api_key("alice") not in answer.text and api_key("mallory") not in answer.text
    after = sandbox.stats()
    for counter in ("api_calls", "create_calls", "get_calls", "token_calls"):
        assert after[counter] == before[counter], (counter, before, after)
    assert sandbox.tickets() == []


def test_bearer_and_x_api_key_from_env_and_file_are_accepted(
    make_gateway: Starter, sandbox: Sandbox, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# partners\n\ncarol={api_key('carol')}\n  dave = {api_key('dave')}  \n")
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("alice"), GATEWAY_API_KEYS_FILE=str(keys_file))

    created = requests.post(f"{gateway.url}/requests", json=TICKET, headers=bearer("alice"), timeout=10)
    assert created.status_code == 201, created.text
    ticket_id = created.json()["zoho_ticket_id"]
    for headers in (
        {"X-API-Key": api_key("carol")},
        {"Authorization": f"bearer {api_key('dave')}"},  # the scheme is case-insensitive
        {"Authorization": f"Bearer   {api_key('alice')}  "},
        bearer("carol"),
    ):
        answer = requests.get(f"{gateway.url}/requests/{ticket_id}", headers=headers, timeout=10)
        assert answer.status_code == 200, (headers, answer.text)
        assert answer.json()["ticket_id"] == ticket_id
    assert len(sandbox.tickets()) == 1


def test_probes_and_the_api_description_need_no_key(make_gateway: Starter) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("alice") + f",ops[admin]={api_key('ops')}")
    for path in ("/healthz", "/readyz", "/openapi.json"):
        answer = requests.get(gateway.url + path, timeout=10)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        assert answer.headers["X-Request-ID"]
    assert requests.get(f"{gateway.url}/openapi.json", timeout=10).json()["openapi"].startswith("3.0")
    # The operator's view of the token is not public, nor for a client's key: it needs the admin scope.
    assert requests.get(f"{gateway.url}/token/status", timeout=10).status_code == 401
    assert requests.get(f"{gateway.url}/token/status", headers=bearer("alice"), timeout=10).status_code == 403
    assert requests.get(f"{gateway.url}/token/status", headers=bearer("ops"), timeout=10).status_code == 200


def test_no_keys_outside_sandbox_mode_is_a_config_error(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_API_KEYS") as refused:
        create_app(production_env(sandbox.url))
    assert "\n" not in str(refused.value)
    # Explicitly anonymous, or with keys, the same settings start.
    anonymous = create_app(production_env(sandbox.url, GATEWAY_ALLOW_ANONYMOUS="1"))
    anonymous.extensions["zoho_gateway"].close()
    keyed = create_app(production_env(sandbox.url, GATEWAY_API_KEYS=keys_env("alice")))
    keyed.extensions["zoho_gateway"].close()
    # A missing keys file and a short key name their setting, and never echo a key.
    with pytest.raises(ConfigError, match="GATEWAY_API_KEYS_FILE"):
        create_app(production_env(sandbox.url, GATEWAY_API_KEYS_FILE=str(tmp_path / "missing.txt")))
    with pytest.raises(ConfigError, match="GATEWAY_API_KEYS") as short:
        create_app(production_env(sandbox.url, GATEWAY_API_KEYS="alice=zgwk3y-short"))
    assert "zgwk3y" not in str(short.value)


def test_gunicorn_without_keys_exits_with_one_clear_line(
    make_gunicorn: GunicornStarter, sandbox: Sandbox, tmp_path: Path
) -> None:
    unset = {"GATEWAY_SANDBOX": "", "GATEWAY_API_KEYS": "", "GATEWAY_API_KEYS_FILE": "", "GATEWAY_ALLOW_ANONYMOUS": ""}
    refused = make_gunicorn(workers=2, wait=False, **production_env(sandbox.url, **unset))
    assert refused.proc is not None
    assert refused.proc.wait(timeout=30) != 0
    stderr = refused.stderr_file.read_text()
    lines = [line for line in stderr.splitlines() if "GATEWAY_API_KEYS" in line]
    assert lines and "configuration error" in lines[0], stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]

    anonymous = make_gunicorn(workers=2, **production_env(sandbox.url, **{**unset, "GATEWAY_ALLOW_ANONYMOUS": "1"}))
    answer = requests.post(f"{anonymous.url}/requests", json=TICKET, timeout=10)
    assert answer.status_code == 201, answer.text
    access = [
        line for line in log_lines(anonymous.logs()) if line.get("event") == "access" and line["method"] == "POST"
    ]
    assert [line["client"] for line in access] == ["anonymous"]


# --- request ids ----------------------------------------------------------------------------------------

SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
VALID_IDS = ["abc", "A.b_c-9", "x" * 128, "0", "trace-2f1e.span_7"]
INVALID_IDS: list[str | bytes] = [
    "y" * 129,
    "<script>alert(1)</script>",
    "has space",
    "tab\tid",
    "a/b",
    "a;b=c",
    '"quoted"',
    "ünïcode-id".encode(),
    "日本語".encode(),
]


def valid_id(index: int) -> str:
    """A unique id of allowed characters, at most 128 long (the 128-long base stays 128 long)."""
    candidate = f"{VALID_IDS[index % len(VALID_IDS)]}.{index}"
    return candidate[-128:]


def test_request_ids_are_echoed_or_replaced_and_tag_every_log_line(
    make_gunicorn: GunicornStarter, sandbox: Sandbox
) -> None:
    server = make_gunicorn(workers=4, GATEWAY_API_KEYS=keys_env("alice"))
    wait_for_workers(server, 4)
    url = server.url
    created = requests.post(f"{url}/requests", json=TICKET, headers=bearer("alice"), timeout=10)
    assert created.status_code == 201
    ticket_id = created.json()["zoho_ticket_id"]

    # (method, path, headers, json body, expected status, expected error code or None)
    calls: list[tuple[str, str, dict[str, str], Any, int, str | None]] = [
        ("POST", "/requests", bearer("alice"), TICKET, 201, None),
        ("GET", f"/requests/{ticket_id}", bearer("alice"), None, 200, None),
        ("GET", f"/requests/{ticket_id}", {}, None, 401, "unauthorized"),
        ("GET", f"/requests/{ticket_id}", {"X-API-Key": api_key("mallory")}, None, 401, "unauthorized"),
        ("GET", "/requests/999999", bearer("alice"), None, 404, "ticket_not_found"),
        ("GET", "/no/such/route", bearer("alice"), None, 404, "not_found"),
        ("GET", "/requests/not-digits", bearer("alice"), None, 400, "invalid_ticket_id"),
        ("POST", "/requests", bearer("alice"), {"subject": "x"}, 422, "validation_failed"),
        ("DELETE", "/requests", bearer("alice"), None, 405, "method_not_allowed"),
        ("GET", "/healthz", {}, None, 200, None),
    ]
    seen: dict[str, tuple[str, int]] = {}  # request id -> (what was sent, status)
    for index, (method, path, headers, body, status, code) in enumerate(calls):
        sent = valid_id(index)
        answer = requests.request(method, url + path, headers={**headers, "X-Request-ID": sent}, json=body, timeout=10)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        assert answer.headers["X-Request-ID"] == sent, (method, path, answer.headers)
        if code is not None:
            assert error_code(answer) == code
            assert answer.json()["details"]["request_id"] == sent
        seen[sent] = (sent, status)
        for bad in INVALID_IDS:
            answer = requests.request(
                method, url + path, headers={**headers, "X-Request-ID": bad}, json=body, timeout=10
            )
            assert answer.status_code == status, (bad, method, path, answer.status_code, answer.text)
            rid = answer.headers["X-Request-ID"]
            assert SAFE_ID.fullmatch(rid) and rid not in seen, (bad, rid)  # generated, harmless, unique
            raw = bad.decode("latin-1") if isinstance(bad, bytes) else bad  # what the server read
            assert raw not in answer.text and raw not in str(answer.headers)
            if code is not None:
                assert answer.json()["details"]["request_id"] == rid
            seen[rid] = (raw, status)
    # Exactly 128 allowed characters are kept; 129 are not (covered above); generated ids are unique.
    assert len(seen) == len(calls) * (1 + len(INVALID_IDS))

    # A request that logs more than its access line: Zoho answers 503 once, the gateway retries.
    sandbox.fault(target="get", kind="status", status=503, times=1)
    retried = requests.get(
        f"{url}/requests/{ticket_id}", headers={**bearer("alice"), "X-Request-ID": "retry.me"}, timeout=10
    )
    assert retried.status_code == 200 and retried.headers["X-Request-ID"] == "retry.me"
    seen["retry.me"] = ("retry.me", 200)

    lines = log_lines(server.logs())
    assert lines, "gunicorn wrote no log lines"
    by_id: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_id.setdefault(line.get("request_id", "<none>"), []).append(line)
    # Every line written while serving a request carries that request's id (only start-up lines may not).
    request_loggers = {"zoho_gateway.access", "zoho_gateway.api", "zoho_gateway.zoho"}
    outside = [line for line in by_id.get("-", []) + by_id.get("<none>", []) if line.get("name") in request_loggers]
    assert not outside, outside
    for rid, (_sent, status) in seen.items():
        tagged = by_id.get(rid, [])
        access = [line for line in tagged if line.get("event") == "access"]
        assert len(access) == 1 and access[0]["status"] == status, (rid, tagged)
        if status >= 400:
            # One line per request: a client mistake adds no line of its own; its code is on the access line.
            assert access[0]["code"], (rid, tagged)
            assert not [line for line in tagged if line["name"] == "zoho_gateway.api"], (rid, tagged)
    retry_lines = by_id["retry.me"]
    assert {"zoho_gateway.zoho", "zoho_gateway.access"} <= {line["name"] for line in retry_lines}, retry_lines
    # Replaced ids never reach the log either.
    log_text = server.logs()
    for bad in INVALID_IDS:
        readings = [bad.decode("utf-8"), bad.decode("latin-1")] if isinstance(bad, bytes) else [bad]
        for raw in readings:
            assert raw not in log_text, raw
            assert json.dumps(raw)[1:-1] not in log_text, raw
    # Clients are logged by key name; a refused key leaves "-".
    clients = {line["client"] for line in lines if line.get("event") == "access"}
    assert clients <= {"alice", "-"}, clients
    assert "alice" in clients
