"""The plain helpers and constants the test modules share: import them from here, never from another test module.

Fixtures live in conftest.py, the servers tests start in servers.py, the session's redis-server in redis_server.py.

- ports, polling, bursts of concurrent calls, Python scripts in a process of their own (``run_python``);
  where a shared SQLite or Redis backend lives (``spec_for``);
- the gateway's client contract: ``TICKET``, ``post``/``get``/``create``, the error format (``assert_error``);
  a create's outcome (``settled``, ``outbox_records``);
- the sandbox's counters (``counters``, ``delta``);
- API keys and the secrets no log may hold; gateway settings (``base_env``, ``production_env``);
- speaking OAuth and SDP to the sandbox directly (``mint``, ``sdp_create``, ``sdp_get``, ``control``, ...).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import pytest
import requests

if TYPE_CHECKING:
    from tests.servers import GunicornGateway, Sandbox, ThreadedGateway

T = TypeVar("T")

#: The repository's root: the working directory of every process a test starts from the tree.
REPO = Path(__file__).resolve().parent.parent


class Served(Protocol):
    """Anything reachable over HTTP at ``url``: a gateway, a gunicorn, the sandbox or its control client."""

    @property
    def url(self) -> str: ...


def url_of(target: Served | str) -> str:
    return target if isinstance(target, str) else target.url


# ---- ports, polling, scripts, bursts -------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick), for a server that cannot be told "port 0"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, pause: float = 0.1) -> float:
    """Seconds until ``condition()`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(pause)
    return time.monotonic() - started


def run_python(
    script: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -c script args`` in a process of its own, from the repo root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: Python source for such a script: ``open_files(path)`` counts the process's descriptors open on ``path``
#: (how many connections a SQLite store or queue keeps). Append it after any monkey-patching.
OPEN_FILES_SOURCE = """
import os
def open_files(path):
    def target(fd):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the directory listing's own descriptor, closed by now
            return ""
    return sum(target(fd) == path for fd in os.listdir("/proc/self/fd"))
"""


def burst(call: Callable[[int], T], total: int, threads: int | None = None) -> list[T]:
    """``call(i)`` for every i below ``total``, ``threads`` at a time (all at once by default).

    The first wave waits at a barrier, so its calls really start together. Returns the results in order;
    ``result()`` re-raises a worker's exception here, in the test's thread.
    """
    if total == 0:
        return []
    threads = threads or total
    first_wave = min(threads, total)
    gate = threading.Barrier(first_wave)

    def run(i: int) -> T:
        if i < first_wave:
            gate.wait(timeout=30)
        return call(i)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run, i) for i in range(total)]
        return [future.result() for future in futures]


# ---- shared state backends --------------------------------------------------------------------------

#: How a child process finds the same store or queue: ("sqlite", path) or ("redis", "url namespace").
Spec = tuple[str, str]


def spec_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Spec:
    """A fresh backend of ``kind`` ("sqlite" or "redis") for one test: a file under ``tmp_path``, or a fresh
    namespace on the session's redis-server (which keeps tests apart on the one server)."""
    if kind == "sqlite":
        return ("sqlite", str(tmp_path / "state.db"))
    url = request.getfixturevalue("redis_url")
    return ("redis", f"{url} test-{uuid.uuid4().hex}:")


# ---- the gateway's client contract ------------------------------------------------------------------

#: Seconds a test waits for an answer it expects.
TIMEOUT = 15.0
#: A valid ``POST /requests`` body.
TICKET: dict[str, Any] = {
    "subject": "Printer on fire",
    "description": "Third floor, next to HR.",
    "requester_email": "jane.doe@example.com",
}


#: The sandbox's single-line UDF that ``ZOHO_REF_FIELD`` names in tests: a create's reference is written there.
REF_FIELD = "udf_sline_1"


def raw_request(url: str, data: bytes, timeout: float = TIMEOUT) -> tuple[bytes, bytes]:
    """Send ``data`` exactly as given to ``url``'s host and port, close our side, and read the whole answer:
    (status line and headers, body). For requests that ``requests`` would normalise or refuse to send."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def check_never_html(response: requests.Response) -> requests.Response:
    content_type = response.headers.get("Content-Type", "")
    assert "html" not in content_type.lower(), (response.status_code, content_type, response.text[:200])
    assert "Traceback" not in response.text
    return response


def post(
    target: Served | str,
    payload: Any = TICKET,
    headers: Mapping[str, str] | None = None,
    *,
    data: Any = None,
    content_type: str | None = None,
    timeout: float = TIMEOUT,
) -> requests.Response:
    """``POST /requests`` with ``payload`` as JSON, or, when ``data`` is given, those bytes (or chunks) as they
    are, with ``content_type`` if any. Checks that the answer is never HTML."""
    sent = dict(headers or {})
    if data is None:
        data = json.dumps(payload).encode()
        content_type = content_type or "application/json"
    if content_type is not None:
        sent["Content-Type"] = content_type
    return check_never_html(requests.post(f"{url_of(target)}/requests", data=data, headers=sent, timeout=timeout))


def get(
    target: Served | str, ticket_id: str, headers: Mapping[str, str] | None = None, *, timeout: float = TIMEOUT
) -> requests.Response:
    """``GET /requests/<ticket_id>``; checks that the answer is never HTML."""
    return check_never_html(
        requests.get(f"{url_of(target)}/requests/{ticket_id}", headers=dict(headers or {}), timeout=timeout)
    )


def create(target: Served | str, *, headers: Mapping[str, str] | None = None, **fields: Any) -> str:
    """Create ``TICKET`` with ``fields`` changed through the gateway; asserts the 201; returns the new id."""
    response = post(target, {**TICKET, **fields}, headers)
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["zoho_ticket_id"]
    return ticket_id


def keyed_post(
    target: Served | str,
    body: Any = TICKET,
    *,
    key: str | None = None,
    client: str = "alice",
    timeout: float = 30.0,
    **headers: str,
) -> requests.Response:
    """``POST /requests`` as API client ``client`` (its ``bearer`` key), with ``Idempotency-Key: key`` when given."""
    sent = {**bearer(client), **headers}
    if key is not None:
        sent["Idempotency-Key"] = key
    return post(target, body, sent, timeout=timeout)


def keyed_get(
    target: Served | str, path: str, client: str | None = "alice", *, timeout: float = 30.0
) -> requests.Response:
    """``GET <path>`` (``/requests/<request_ref>``, ``/readyz``, ...) as API client ``client`` (its ``bearer``
    key; None: no key). Checks that the answer is never HTML."""
    headers = bearer(client) if client is not None else {}
    return check_never_html(requests.get(f"{url_of(target)}{path}", headers=headers, timeout=timeout))


def settled(target: Served | str, ref: str, client: str | None = "alice", timeout: float = 40.0) -> requests.Response:
    """Poll ``GET /requests/<ref>`` (a create's outcome) until it answers other than 202 (pending), or
    ``timeout`` seconds pass; the last answer."""
    give_up = time.monotonic() + timeout
    while True:
        answer = keyed_get(target, f"/requests/{ref}", client)
        if answer.status_code != 202 or time.monotonic() > give_up:
            return answer
        time.sleep(0.1)


def outbox_records(gateway: ThreadedGateway) -> list[dict[str, Any]]:
    """Every create the gateway's outbox holds (its items' records, decoded), in the order they came."""
    return [json.loads(item.record) for item in gateway.gateway.queue.list_items(limit=1000)]


def error_code(answer: requests.Response) -> str:
    """The stable code of an error answer (whose body has the two keys of the error format)."""
    body = answer.json()
    assert set(body) == {"error", "details"}, body
    assert isinstance(body["error"], str) and body["error"], body
    return str(body["details"]["code"])


def assert_error(
    response: requests.Response, status: int, code: str, *, retry_after: bool | None = None
) -> dict[str, Any]:
    """The error format of DESIGN.md, never HTML, with the request id of the answer in ``details``; returns the body.

    ``retry_after=True``: a ``Retry-After`` of 1 to 120 s that ``details.retry_after`` repeats; ``False``: none.
    """
    check_never_html(response)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "details"}, body
    assert isinstance(body["error"], str) and body["error"]
    details = body["details"]
    assert details["code"] == code, body
    assert isinstance(details["message"], str) and details["message"]
    assert details["request_id"] == response.headers["X-Request-ID"]
    if retry_after is True:
        seconds = int(response.headers["Retry-After"])
        assert 0 < seconds <= 120
        assert details["retry_after"] == seconds
    elif retry_after is False:
        assert "Retry-After" not in response.headers
    return body


# ---- the sandbox's counters -------------------------------------------------------------------------


def counters(sandbox: Sandbox) -> dict[str, int]:
    """The sandbox's integer counters (``api_calls``, ``create_calls``, ``mints``, ``token_calls``, ...)."""
    return {k: v for k, v in sandbox.stats().items() if isinstance(v, int) and not isinstance(v, bool)}


def delta(before: dict[str, int], sandbox: Sandbox) -> dict[str, int]:
    """The counters that changed since ``before`` (a ``counters`` reading), by how much."""
    after = counters(sandbox)
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


# ---- API keys, and the secrets no log may hold --------------------------------------------------------

#: The sandbox's own credentials (zoho_gateway.config copies them; test_config checks the copies).
SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
SANDBOX_REFRESH_TOKEN = "sandbox-refresh-token"
#: A Zoho access token as the sandbox mints them.
ZOHO_TOKEN = re.compile(r"1000\.[0-9a-f]{8,}\.[0-9a-f]{8,}")
#: Every API key made by ``api_key`` contains this, so that a key in a log is found whichever test used it.
KEY_MARKER = "zgwk3y"
SECRET_PATTERNS = {
    "api key": re.compile(KEY_MARKER + r"[A-Za-z0-9_-]*"),
    "zoho token": ZOHO_TOKEN,
    "client secret": re.compile(re.escape(SANDBOX_CLIENT_SECRET)),
    "refresh token": re.compile(re.escape(SANDBOX_REFRESH_TOKEN)),
}


def api_key(name: str) -> str:
    """A recognisable key for client ``name`` (long enough for the gateway's 16-character minimum)."""
    return f"{KEY_MARKER}-{name}-5f0c2a9e81d4b7"


def keys_env(*names: str) -> str:
    """``GATEWAY_API_KEYS`` for the clients ``names``."""
    return ",".join(f"{name}={api_key(name)}" for name in names)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(name)}"}


def secrets_in(text: str) -> list[str]:
    """``"what: match"`` for every secret-shaped string in ``text``."""
    return [f"{what}: {m.group(0)[:60]}" for what, rx in SECRET_PATTERNS.items() for m in rx.finditer(text)]


def logged_files(tmp_path: Path, session_log: Path) -> list[Path]:
    """Every log a test can have written: gunicorn logs and stderr under ``tmp_path``, and the session log."""
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".stderr")]
    if session_log.exists():
        files.append(session_log)
    return files


def assert_logs_clean(tmp_path: Path, session_log: Path) -> None:
    found = {
        str(path): hits
        for path in logged_files(tmp_path, session_log)
        if (hits := secrets_in(path.read_text(errors="replace")))
    }
    assert not found, f"secrets in logs: {found}"


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON records of a log's text (lines that are not JSON objects are left out)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def wait_for_workers(server: GunicornGateway, count: int, timeout: float = 10.0) -> None:
    """Gunicorn forks its workers one by one after the first answers: wait until all ``count`` are up."""
    deadline = time.monotonic() + timeout
    while len(server.worker_pids()) < count:
        assert time.monotonic() < deadline, f"only {server.worker_pids()} of {count} workers started"
        time.sleep(0.05)


# ---- gateway settings -------------------------------------------------------------------------------

#: One log file for every in-process gateway of the session (logging is configured once per process).
SESSION_LOG = Path(os.environ.get("GATEWAY_TEST_LOG_DIR", "/tmp")) / f"zgw-tests-{os.getpid()}" / "gateway.log"


def base_env(sandbox_url: str, **extra: str) -> dict[str, str]:
    """Sandbox mode against the sandbox at ``sandbox_url``: memory state, no cache, the session log."""
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


def production_env(sandbox_url: str, **extra: str) -> dict[str, str]:
    """Settings outside sandbox mode: real-looking credentials (the sandbox's), pointing at the sandbox."""
    env = {
        "ZOHO_CLIENT_ID": SANDBOX_CLIENT_ID,
        "ZOHO_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
        "ZOHO_REFRESH_TOKEN": SANDBOX_REFRESH_TOKEN,
        "ZOHO_ACCOUNTS_URL": sandbox_url,
        "ZOHO_API_BASE_URL": sandbox_url,
        "GATEWAY_STATE_URL": "memory://",
        "GATEWAY_CACHE_TTL": "0",
    }
    env.update(extra)
    return env


# ---- speaking OAuth and SDP to the sandbox directly ----------------------------------------------------

SDP_ACCEPT = "application/vnd.manageengine.sdp.v3+json"
#: The 62 top-level keys of a real SDP Cloud GET /requests/{id} (ZOHO-API.md §4.1).
ENTITY_KEYS = {
    "subject",
    "resolution",
    "linked_to_request",
    "mode",
    "lifecycle",
    "is_read",
    "cancellation_requested",
    "is_trashed",
    "id",
    "assigned_time",
    "group",
    "requester",
    "email_to",
    "created_time",
    "item",
    "cancel_flag_comments",
    "level",
    "approval_status",
    "impact",
    "sla",
    "resolved_time",
    "priority",
    "created_by",
    "first_response_due_by_time",
    "is_escalated",
    "last_updated_time",
    "has_notes",
    "udf_fields",
    "impact_details",
    "subcategory",
    "deleted_time",
    "email_cc",
    "status",
    "template",
    "email_ids_to_notify",
    "attachments",
    "request_type",
    "display_id",
    "time_elapsed",
    "notification_status",
    "description",
    "responded_time",
    "is_service_request",
    "urgency",
    "has_request_initiated_change",
    "department",
    "is_reopened",
    "has_draft",
    "has_attachments",
    "has_linked_requests",
    "is_overdue",
    "technician",
    "has_problem",
    "due_by_time",
    "is_fcr",
    "has_project",
    "site",
    "is_first_response_overdue",
    "completed_time",
    "unreplied_count",
    "email_bcc",
    "category",
}


def refresh_params(**overrides: str) -> dict[str, str]:
    """The form of a refresh-token grant with the sandbox's credentials, ``overrides`` applied."""
    params = {
        "grant_type": "refresh_token",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "refresh_token": SANDBOX_REFRESH_TOKEN,
    }
    params.update(overrides)
    return params


def token_call(sandbox: Served, **overrides: str) -> requests.Response:
    return requests.post(f"{sandbox.url}/oauth/v2/token", data=refresh_params(**overrides), timeout=TIMEOUT)


def mint(sandbox: Served) -> str:
    """A fresh access token from the sandbox's token endpoint."""
    response = token_call(sandbox)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def sdp_headers(token: str, scheme: str = "Zoho-oauthtoken") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}", "Accept": SDP_ACCEPT}


def sdp_create(sandbox: Served, token: str, request: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    """``POST /api/v3/requests`` with ``{"request": request}`` as the ``input_data`` form field."""
    body = {"request": request if request is not None else {"subject": "Printer on fire"}}
    return requests.post(
        f"{sandbox.url}/api/v3/requests",
        headers=sdp_headers(token),
        data={"input_data": json.dumps(body)},
        timeout=kwargs.pop("timeout", TIMEOUT),
        **kwargs,
    )


def sdp_get(sandbox: Served, token: str, ticket_id: str, prefix: str = "/api/v3") -> requests.Response:
    return requests.get(f"{sandbox.url}{prefix}/requests/{ticket_id}", headers=sdp_headers(token), timeout=TIMEOUT)


def control(sandbox: Served, method: str, path: str, payload: Any = None) -> requests.Response:
    """A call to the sandbox's control API, ``/_sandbox/<path>``."""
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", json=payload, timeout=TIMEOUT)


def fault(sandbox: Served, **spec: Any) -> None:
    response = control(sandbox, "POST", "faults", spec)
    assert response.status_code == 201, response.text


def stats(sandbox: Served) -> dict[str, Any]:
    body = control(sandbox, "GET", "stats").json()
    assert isinstance(body, dict)
    return body


def failure(status_code: int, message: str, field: str | None = None) -> dict[str, Any]:
    """An SDP failure envelope with one message, as Zoho answers a refused call."""
    detail: dict[str, Any] = {"status_code": status_code, "type": "failed", "message": message}
    if field is not None:
        detail["field"] = field
    return {"response_status": {"status_code": 4000, "messages": [detail], "status": "failed"}}
