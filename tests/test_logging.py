"""Logs: one JSON line per record, one access line per request, and never a secret.

Drives creates, reads, a 401 refresh, token failures and API-key-authenticated calls through an in-process
gateway (whose lines go to the session log file) and through ``gunicorn wsgi:app`` with two workers (its own
log file), then reads both files back. Also unit-tests ``zoho_gateway.logs.redact_text`` and the formatter.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import SANDBOX_CLIENT_SECRET as CLIENT_SECRET
from tests.helpers import SANDBOX_REFRESH_TOKEN as REFRESH_TOKEN
from tests.helpers import TICKET, TIMEOUT
from tests.helpers import ZOHO_TOKEN as MINTED
from tests.servers import GunicornStarter, Sandbox, Starter
from zoho_gateway.context import request_id
from zoho_gateway.logs import REDACTED, GatewayJsonFormatter, redact_text

API_KEY = "kQ9vX2mT7pL4sR8wZ1nB6cY3hJ5dF0gA"  # 32 characters
assert len(API_KEY) == 32
ACCESS_FIELDS = {"method", "path", "status", "duration_ms", "request_id"}


def rid() -> str:
    return f"logtest-{uuid.uuid4().hex}"


def lines_of(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_lines(lines: list[str], sent: dict[str, tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Every line is a JSON object free of secrets; each request in ``sent`` (request id -> method, path,
    status) has exactly one access line saying so. Returns the parsed records."""
    assert lines, "the log is empty"
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line[:200]!r}")
        assert isinstance(record, dict), line[:200]
        assert CLIENT_SECRET not in line, line
        assert REFRESH_TOKEN not in line, line
        assert API_KEY not in line, line
        assert not MINTED.search(line), line
        assert "Zoho-oauthtoken 1" not in line, line
        records.append(record)
    access = [r for r in records if r.get("event") == "access" or r.get("name") == "zoho_gateway.access"]
    assert access, "no access lines"
    for record in access:
        missing = ACCESS_FIELDS - set(record)
        assert not missing, (missing, record)
        assert isinstance(record["status"], int) and 100 <= record["status"] <= 599
        assert isinstance(record["duration_ms"], (int, float)) and record["duration_ms"] >= 0
        assert isinstance(record["method"], str) and isinstance(record["path"], str)
        assert record["path"].startswith("/")
        assert isinstance(record["request_id"], str) and record["request_id"] not in ("", "-")
    for request_id_sent, (method, path, status) in sent.items():
        mine = [r for r in access if r["request_id"] == request_id_sent]
        assert len(mine) == 1, (request_id_sent, mine)
        assert (mine[0]["method"], mine[0]["path"], mine[0]["status"]) == (method, path, status), mine[0]
    return records


class Driver:
    """Sends requests with known request ids and remembers what each should have logged."""

    def __init__(self, url: str, **headers: str) -> None:
        self.url = url
        self.headers = headers
        self.sent: dict[str, tuple[str, str, int]] = {}

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> requests.Response:
        request_id_sent = rid()
        headers = {**self.headers, **kwargs.pop("headers", {}), "X-Request-ID": request_id_sent}
        response = requests.request(method, f"{self.url}{path}", headers=headers, timeout=TIMEOUT, **kwargs)
        assert response.status_code == expect, response.text
        assert response.headers["X-Request-ID"] == request_id_sent
        self.sent[request_id_sent] = (method, path, expect)
        return response


def wait_for(path: Path, request_ids: list[str], timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = lines_of(path) if path.exists() else []
        text = "\n".join(lines)
        if all(r in text for r in request_ids) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_session_log_is_json_with_access_lines_and_no_secrets(
    make_gateway: Starter, sandbox: Sandbox, session_log: Path
) -> None:
    open_gateway = make_gateway()
    drive = Driver(open_gateway.url)
    created = drive.call("POST", "/requests", 201, json=TICKET).json()["zoho_ticket_id"]
    drive.call("GET", f"/requests/{created}", 200)
    # a 401 from Zoho: the token is refreshed (one extra mint) and the read retried
    sandbox.fault(target="get", kind="expire_tokens", times=1)
    drive.call("GET", f"/requests/{created}", 200)
    assert sandbox.stats()["mints"] == 2
    # a second 401: the gateway gives up
    sandbox.fault(target="get", kind="status", status=401, times=2)
    drive.call("GET", f"/requests/{created}", 502)
    # client mistakes
    drive.call("GET", "/requests/abc", 400)
    drive.call("POST", "/requests", 422, json={**TICKET, "refresh_token": REFRESH_TOKEN})
    drive.call(
        "POST",
        "/requests",
        400,
        data=b'{"client_secret": "' + CLIENT_SECRET.encode(),
        headers={"Content-Type": "application/json"},
    )
    # token failures: refused credentials (HTTP 200 + error), then an answer without a token
    open_gateway.gateway.tokens.forget()
    sandbox.fault(target="token", kind="invalid_code", times=1)
    drive.call("POST", "/requests", 503, json=TICKET)
    open_gateway.gateway.tokens.forget()
    sandbox.fault(target="token", kind="status", status=200, body=json.dumps({"foo": 1}), times=3)
    drive.call("GET", f"/requests/{created}", 503)
    open_gateway.gateway.tokens.forget()
    sandbox.fault(target="token", kind="throttle", times=1)
    drive.call("GET", f"/requests/{created}", 503)

    # a gateway that requires an API key
    keyed = make_gateway(GATEWAY_API_KEYS=f"bot={API_KEY}")
    with_bearer = Driver(keyed.url, Authorization=f"Bearer {API_KEY}")
    with_bearer.call("POST", "/requests", 201, json=TICKET)
    with_header = Driver(keyed.url, **{"X-API-Key": API_KEY})
    with_header.call("GET", f"/requests/{created}", 200)
    anonymous = Driver(keyed.url)
    anonymous.call("GET", f"/requests/{created}", 401)
    wrong = Driver(keyed.url, Authorization=f"Bearer {API_KEY[::-1]}")
    wrong.call("GET", f"/requests/{created}", 401)

    sent = {**drive.sent, **with_bearer.sent, **with_header.sent, **anonymous.sent, **wrong.sent}
    records = check_lines(wait_for(session_log, list(sent)), sent)
    clients = {r["request_id"]: r.get("client") for r in records if r.get("event") == "access"}
    assert all(clients[r] == "bot" for r in (*with_bearer.sent, *with_header.sent))
    assert API_KEY[::-1] not in session_log.read_text(encoding="utf-8")
    # The failures were logged (by name, never by value) under the request that caused them.
    mine = [r for r in records if r.get("request_id") in sent]
    assert any(r.get("levelname") in ("WARNING", "ERROR") for r in mine)
    assert any(r.get("name") == "zoho_gateway.audit" and r.get("outcome") == "minted" for r in records)


def test_one_line_per_request_saying_what_happened(
    make_gateway: Starter, sandbox: Sandbox, session_log: Path
) -> None:
    """The access line carries the outcome: the new ticket's id, the error code, the fields at fault (names,
    never values). A client mistake (4xx) adds no other line; a 5xx access line is ERROR with its cause."""
    drive = Driver(make_gateway().url)
    created = drive.call("POST", "/requests", 201, json=TICKET).json()["zoho_ticket_id"]
    secret_value = "do-not-log-this-value"
    invalid = {**TICKET, "subject": " ", "requester_email": secret_value, "urgency": secret_value}
    drive.call("POST", "/requests", 422, json=invalid)
    twice = b'{"subject": "a", "subject": "b"}'
    drive.call("POST", "/requests", 400, data=twice, headers={"Content-Type": "application/json"})
    drive.call("GET", "/requests/abc", 400)
    drive.call("GET", "/requests/999999999", 404)
    drive.call("DELETE", "/requests", 405)
    drive.call("GET", "/nowhere", 404)
    sandbox.fault(target="get", kind="status", status=401, times=2)
    drive.call("GET", f"/requests/{created}", 502)

    records = check_lines(wait_for(session_log, list(drive.sent)), drive.sent)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_request.setdefault(record.get("request_id", "-"), []).append(record)
    access = {rid: next(r for r in by_request[rid] if r.get("event") == "access") for rid in drive.sent}

    (create_line,) = [line for line in access.values() if line["status"] == 201]
    assert create_line["zoho_ticket_id"] == created and create_line["levelname"] == "INFO"
    assert "code" not in create_line
    (invalid_line,) = [line for line in access.values() if line["status"] == 422]
    assert invalid_line["code"] == "validation_failed"
    assert invalid_line["fields"] == ["requester_email", "subject", "urgency"]
    assert secret_value not in session_log.read_text(encoding="utf-8")
    codes = sorted(line["code"] for line in access.values() if 400 <= line["status"] < 500 and line["status"] != 422)
    assert codes == ["invalid_json", "invalid_ticket_id", "method_not_allowed", "not_found", "ticket_not_found"]
    for rid, (_method, _path, status) in drive.sent.items():
        if 400 <= status < 500:
            # One line for a client mistake: no WARNING beside the access line.
            assert [r.get("event") for r in by_request[rid]] == ["access"], by_request[rid]
            assert access[rid]["levelname"] == "INFO"
    (failed,) = [line for line in access.values() if line["status"] == 502]
    assert failed["levelname"] == "ERROR" and failed["code"] == "zoho_auth_failed"
    assert "Zoho refused" in failed["detail"], failed


def test_an_unexpected_failure_is_one_error_line_with_its_traceback(
    make_gateway: Starter, session_log: Path
) -> None:
    server = make_gateway()

    def broken() -> str:
        raise RuntimeError("a bug with client_secret=" + CLIENT_SECRET)

    server.app.add_url_rule("/broken", "broken", broken)  # before its first request, as Flask requires
    drive = Driver(server.url)
    answer = drive.call("GET", "/broken", 500)
    assert answer.json()["details"]["code"] == "internal_error"
    assert "RuntimeError" not in answer.text and CLIENT_SECRET not in answer.text
    records = check_lines(wait_for(session_log, list(drive.sent)), drive.sent)
    (line,) = [r for r in records if r.get("request_id") in drive.sent]
    assert line["event"] == "access" and line["levelname"] == "ERROR" and line["code"] == "internal_error"
    assert "RuntimeError: a bug" in line["exc_info"], line


def test_gunicorn_log_is_json_with_access_lines_and_no_secrets(
    make_gunicorn: GunicornStarter, sandbox: Sandbox
) -> None:
    server = make_gunicorn(workers=2, threads=4, GATEWAY_API_KEYS=f"bot={API_KEY}")
    drive = Driver(server.url, Authorization=f"Bearer {API_KEY}")
    created = drive.call("POST", "/requests", 201, json=TICKET).json()["zoho_ticket_id"]
    for _ in range(4):  # likely to reach both workers
        drive.call("GET", f"/requests/{created}", 200)
    sandbox.fault(target="get", kind="expire_tokens", times=1)
    drive.call("GET", f"/requests/{created}", 200)
    drive.call("GET", "/requests/1.5", 400)
    drive.call("GET", "/nowhere", 404)
    anonymous = Driver(server.url)
    anonymous.call("GET", f"/requests/{created}", 401)
    sent = {**drive.sent, **anonymous.sent}
    check_lines(wait_for(server.log_file, list(sent)), sent)
    # What gunicorn and the workers wrote to stderr is free of secrets as well.
    stderr = server.stderr_file.read_text(encoding="utf-8", errors="replace")
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, API_KEY):
        assert secret not in stderr
    assert not MINTED.search(stderr)


# ---- redact_text and the formatter ---------------------------------------------------------------


TOKEN = "1000.4f2a9c0e8b7d6a5f4e3d2c1b0a998877.0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "text",
    [
        TOKEN,
        f"Authorization: Zoho-oauthtoken {TOKEN}",
        f"Authorization: Bearer {API_KEY}",
        f"authorization: bearer {API_KEY}",
        f"refresh_token={REFRESH_TOKEN}&client_id=sandbox-client-id&client_secret={CLIENT_SECRET}",
        f'{{"access_token": "{TOKEN}", "expires_in": 3600}}',
        f"{{'client_secret': '{CLIENT_SECRET}'}}",
        f'"refresh_token" : "{REFRESH_TOKEN}"',
        f"api_key={API_KEY}",
        f"API-KEY: {API_KEY}",
        f"apikey={API_KEY}",
        f"x-api-key: {API_KEY}",
        f"two tokens: {TOKEN} and {TOKEN.upper()}",
        f"Traceback ... urllib3 body=b'grant_type=refresh_token&refresh_token={REFRESH_TOKEN}'",
    ],
)
def test_redact_text_scrubs_secrets(text: str) -> None:
    redacted = redact_text(text)
    assert REDACTED in redacted
    for secret in (TOKEN, TOKEN.upper(), API_KEY, REFRESH_TOKEN, CLIENT_SECRET):
        assert secret not in redacted, redacted
    assert not MINTED.search(redacted)


def test_redact_text_keeps_names_and_harmless_text() -> None:
    assert redact_text(f"client_secret={CLIENT_SECRET}") == f"client_secret={REDACTED}"
    assert redact_text(f"Bearer {API_KEY}") == f"Bearer {REDACTED}"
    assert redact_text("client_id=sandbox-client-id").endswith("sandbox-client-id")
    for harmless in (
        "GET /requests/123640000000251013 200",
        "token minted",
        "1000.5 tickets",
        "version 1000.12.34",
        "Zoho answered 401; refreshing the token once",
        "",
    ):
        assert redact_text(harmless) == harmless


def test_redact_text_is_idempotent() -> None:
    once = redact_text(f"Zoho-oauthtoken {TOKEN} client_secret={CLIENT_SECRET}")
    assert redact_text(once) == once


def test_formatter_redacts_sensitive_keys_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(GatewayJsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(f"tests.logging.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    marker = request_id.set("rid-123")
    try:
        logger.info(
            "minted %s for %s",
            TOKEN,
            f"Bearer {API_KEY}",
            extra={
                "access_token": "plain-looking-value",
                "client_secret": CLIENT_SECRET,
                "Authorization": "anything",
                "nested": {"refresh_token": REFRESH_TOKEN, "list": [f"Zoho-oauthtoken {TOKEN}"]},
                "token_fp": "abc123def456",
            },
        )
        try:
            raise RuntimeError(f"failed with client_secret={CLIENT_SECRET} and {TOKEN}")
        except RuntimeError:
            logger.exception("boom")
    finally:
        request_id.reset(marker)
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["request_id"] == "rid-123" and second["request_id"] == "rid-123"
    assert first["access_token"] == REDACTED and first["client_secret"] == REDACTED
    assert first["Authorization"] == REDACTED
    assert first["nested"]["refresh_token"] == REDACTED
    assert first["token_fp"] == "abc123def456"  # a fingerprint is safe and kept
    text = stream.getvalue()
    for secret in ("plain-looking-value", CLIENT_SECRET, REFRESH_TOKEN, API_KEY, TOKEN):
        assert secret not in text
    assert "RuntimeError" in second.get("exc_info", "")
