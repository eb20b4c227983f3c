"""CORS from GATEWAY_CORS_ORIGINS, checked on the wire and proven in a real browser (headless Chromium).

A tiny ``http.server`` serves a page on one origin (``http://127.0.0.1:<A>``); its script calls the gateway on
another origin (``http://127.0.0.1:<B>``: same host, other port, so cross-origin) with ``fetch``: a keyed POST
/requests with Authorization, Idempotency-Key, X-Request-ID and a JSON body, then GET /requests/<id>, and writes
statuses, the ticket and the exposed X-Request-ID header into the DOM. Chromium loads it with ``--dump-dom``
(and once more with ``--screenshot``). The same page served from a non-allowed origin must fail with a
TypeError while the gateway sees at most the preflight.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import PageServer, field
from tests.browser import chromium as headless_chromium
from tests.helpers import TICKET, api_key, bearer, keys_env
from tests.servers import Sandbox, Starter, ThreadedGateway

pytestmark = pytest.mark.usefixtures("no_secrets_in_logs")

#: Headers a page sends: ``Prefer: respond-async`` on a create (issue 10), ``If-Match`` on an update.
ALLOW_HEADERS = {"authorization", "content-type", "idempotency-key", "x-request-id", "prefer", "if-match"}
#: Headers a page reads: a 201's or 202's ``Location`` and ``Preference-Applied`` among them.
EXPOSE_HEADERS = {"x-request-id", "retry-after", "idempotent-replayed", "location", "preference-applied"}


@pytest.fixture
def pages() -> Iterator[Callable[[], PageServer]]:
    started: list[PageServer] = []

    def start() -> PageServer:
        server = PageServer()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class Recorder:
    """WSGI middleware around the gateway app: every request that reached the gateway, as (method, path)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.seen.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self.app(environ, start_response)


def recorded(gateway: ThreadedGateway) -> Recorder:
    recorder = Recorder(gateway.app.wsgi_app)
    gateway.app.wsgi_app = recorder  # type: ignore[method-assign]
    return recorder


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CORS check</title>
<style>body{font:16px/1.6 sans-serif;margin:1.5rem}dt{font-weight:bold}
dd{margin:0 0 .4rem 1rem;font-family:monospace}</style>
</head><body>
<h1>zoho-gateway from another origin</h1>
<p>page: <code id="origin"></code> &rarr; gateway: <code id="gateway"></code></p>
<dl>
<dt>POST /requests</dt><dd id="create-status">pending</dd>
<dt>POST X-Request-ID (exposed header)</dt><dd id="create-rid">pending</dd>
<dt>ticket</dt><dd id="ticket">pending</dd>
<dt>GET /requests/&lt;id&gt;</dt><dd id="read-status">pending</dd>
<dt>GET X-Request-ID (exposed header)</dt><dd id="read-rid">pending</dd>
<dt>ticket read back</dt><dd id="read-ticket">pending</dd>
<dt>repeat POST: status, Idempotent-Replayed</dt><dd id="replay">pending</dd>
<dt>error</dt><dd id="error">none</dd>
</dl><p id="done">running</p>
<script>
const GATEWAY = __GATEWAY__, KEY = __KEY__, TICKET = __TICKET__;
const show = (id, value) => { document.getElementById(id).textContent = String(value); };
show("origin", location.origin); show("gateway", GATEWAY);
const create = () => fetch(GATEWAY + "/requests", {
  method: "POST",
  headers: {"Authorization": "Bearer " + KEY, "Content-Type": "application/json",
            "Idempotency-Key": "browser-key-1", "X-Request-ID": "browser-create.1"},
  body: JSON.stringify(TICKET),
});
(async () => {
  try {
    const created = await create();
    show("create-status", created.status);
    show("create-rid", created.headers.get("X-Request-ID"));
    const body = await created.json();
    show("ticket", body.zoho_ticket_id);
    const read = await fetch(GATEWAY + "/requests/" + body.zoho_ticket_id,
                             {headers: {"Authorization": "Bearer " + KEY, "X-Request-ID": "browser-read.1"}});
    show("read-status", read.status);
    show("read-rid", read.headers.get("X-Request-ID"));
    const ticket = await read.json();
    show("read-ticket", ticket.ticket_id + " " + ticket.status + " " + ticket.technician_assigned);
    const again = await create();
    show("replay", again.status + " " + again.headers.get("Idempotent-Replayed"));
  } catch (err) {
    show("error", err.name + ": " + err.message);
  }
  show("done", "done");
})();
</script></body></html>
"""


def page_for(gateway_url: str) -> bytes:
    html = (
        PAGE.replace("__GATEWAY__", json.dumps(gateway_url))
        .replace("__KEY__", json.dumps(api_key("browser")))
        .replace("__TICKET__", json.dumps(TICKET))
    )
    return html.encode()


def chromium(url: str, profile: Path, *extra: str) -> str:
    """Headless Chromium on ``url`` (scrollbars hidden for the screenshots); stdout (the DOM with --dump-dom)."""
    return headless_chromium(url, profile, "--hide-scrollbars", *extra, virtual_ms=15000, timeout=60)


# --- on the wire -------------------------------------------------------------------------------------------


def header_set(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def test_preflight_and_exposed_headers_for_exact_origins_only(make_gateway: Starter) -> None:
    allowed = "http://127.0.0.1:8123"
    others = ["https://app.example", "http://[::1]:8123"]  # an IPv6 origin holds regex characters
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("browser"), GATEWAY_CORS_ORIGINS=",".join([allowed, *others]))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ", ".join(sorted(ALLOW_HEADERS)),
    }
    answer = requests.options(f"{gateway.url}/requests", headers={"Origin": allowed, **preflight}, timeout=10)
    assert answer.status_code in (200, 204), answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == allowed
    assert header_set(answer.headers.get("Access-Control-Allow-Headers")) >= ALLOW_HEADERS, answer.headers
    assert "post" in header_set(answer.headers.get("Access-Control-Allow-Methods")), answer.headers
    assert answer.headers.get("Access-Control-Allow-Credentials") != "true"
    assert "origin" in header_set(answer.headers.get("Vary"))
    # An update of a ticket: PATCH with If-Match.
    patch = {"Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization, if-match"}
    answer = requests.options(f"{gateway.url}/requests/42", headers={"Origin": allowed, **patch}, timeout=10)
    assert answer.status_code in (200, 204), answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == allowed
    assert "patch" in header_set(answer.headers.get("Access-Control-Allow-Methods")), answer.headers
    assert header_set(answer.headers.get("Access-Control-Allow-Headers")) >= {"authorization", "if-match"}

    for origin in others:
        also = requests.options(f"{gateway.url}/requests", headers={"Origin": origin, **preflight}, timeout=10)
        assert also.headers.get("Access-Control-Allow-Origin") == origin, (origin, also.headers)
    strangers = [
        "http://127.0.0.1:8124",
        "https://127.0.0.1:8123",
        "http://localhost:8123",
        "http://127.0.0.1:81234",
        "https://app.example.evil.net",
        "https://appxexample",
        "http://1:8123",  # what "[::1]" would match as an unescaped character class
        "http://::8123",
        "null",
        "*",
    ]
    for stranger in strangers:
        refused = requests.options(f"{gateway.url}/requests", headers={"Origin": stranger, **preflight}, timeout=10)
        assert "Access-Control-Allow-Origin" not in refused.headers, (stranger, refused.headers)

    # Real answers, including errors a browser must be able to read, carry the exposed headers.
    for headers, status in ((bearer("browser"), 404), ({}, 401)):
        real = requests.get(f"{gateway.url}/requests/42", headers={"Origin": allowed, **headers}, timeout=10)
        assert real.status_code == status
        assert real.headers["Access-Control-Allow-Origin"] == allowed
        assert header_set(real.headers.get("Access-Control-Expose-Headers")) >= EXPOSE_HEADERS, real.headers
    other = requests.get(
        f"{gateway.url}/requests/42", headers={"Origin": "http://evil.example", **bearer("browser")}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def test_without_cors_origins_no_origin_is_allowed(make_gateway: Starter) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("browser"))
    origin = {"Origin": "http://127.0.0.1:8123", "Access-Control-Request-Method": "POST"}
    answer = requests.options(f"{gateway.url}/requests", headers=origin, timeout=10)
    assert "Access-Control-Allow-Origin" not in answer.headers
    real = requests.get(f"{gateway.url}/healthz", headers={"Origin": "http://127.0.0.1:8123"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in real.headers


# --- in a real browser -------------------------------------------------------------------------------------


def test_a_page_on_an_allowed_origin_creates_and_reads_a_ticket(
    browser: None, make_gateway: Starter, sandbox: Sandbox, pages: Callable[[], PageServer], tmp_path: Path
) -> None:
    page = pages()
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("browser"), GATEWAY_CORS_ORIGINS=page.origin)
    assert page.origin != gateway.url  # same host, another port: cross-origin
    page.html = page_for(gateway.url)

    dom = chromium(f"{page.origin}/", tmp_path / "profile-dom", "--dump-dom")
    assert field(dom, "done") == "done", dom
    assert field(dom, "error") == "none", dom
    assert field(dom, "create-status") == "201"
    assert field(dom, "create-rid") == "browser-create.1"  # readable only because it is exposed
    ticket_id = field(dom, "ticket")
    assert re.fullmatch(r"[0-9]+", ticket_id), ticket_id
    assert field(dom, "read-status") == "200"
    assert field(dom, "read-rid") == "browser-read.1"
    assert field(dom, "read-ticket") == f"{ticket_id} Open Unassigned"
    assert field(dom, "replay") == "201 true"
    assert [t["id"] for t in sandbox.tickets()] == [ticket_id]

    # A picture of it for people (a fresh profile: the repeat POST is replayed, still one ticket).
    screenshot = tmp_path / "cors-allowed-origin.png"
    chromium(f"{page.origin}/", tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=900,640")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\n[cors] screenshot: {screenshot}")
    assert len(sandbox.tickets()) == 1


def test_a_page_on_another_origin_is_refused_by_the_browser(
    browser: None, make_gateway: Starter, sandbox: Sandbox, pages: Callable[[], PageServer], tmp_path: Path
) -> None:
    allowed, stranger = pages(), pages()
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("browser"), GATEWAY_CORS_ORIGINS=allowed.origin)
    recorder = recorded(gateway)
    stranger.html = page_for(gateway.url)

    dom = chromium(f"{stranger.origin}/", tmp_path / "profile-dom", "--dump-dom")
    assert field(dom, "done") == "done", dom
    assert field(dom, "error").startswith("TypeError"), dom
    assert field(dom, "create-status") == "pending"
    screenshot = tmp_path / "cors-refused-origin.png"
    chromium(f"{stranger.origin}/", tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=900,640")
    print(f"\n[cors] screenshot: {screenshot}")
    # The browser did try (its preflight reached the gateway), but the gateway saw nothing else: nothing reached Zoho.
    assert ("OPTIONS", "/requests") in recorder.seen, recorder.seen
    assert all(method == "OPTIONS" for method, _ in recorder.seen), recorder.seen
    stats = sandbox.stats()
    assert stats["create_calls"] == 0 and stats["api_calls"] == 0, stats
    assert sandbox.tickets() == []
