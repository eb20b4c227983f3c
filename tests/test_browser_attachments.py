"""A helpdesk page in a real browser (headless Chromium): a ticket with a screenshot in one form, then "my tickets".

A tiny ``http.server`` serves the page on one origin; the gateway (API keys on, the page's origin in
``GATEWAY_CORS_ORIGINS``) runs on another port of the same host, so every call is cross-origin. The page's
script draws a picture on a canvas, makes it a PNG (``canvas.toBlob``), and sends one ``multipart/form-data``
``POST /requests`` built with ``FormData`` (a ``ticket`` part holding the JSON and a ``file`` part holding the
PNG); then it lists "my tickets" with ``GET /requests?requester_email=...`` and the ticket's attachments, and
writes what it got into the DOM, which Chromium dumps (``--dump-dom``) for the test to read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.browser import PageServer, chromium, field
from tests.helpers import TICKET, TIMEOUT, api_key, keys_env
from tests.servers import Sandbox, Starter

pytestmark = pytest.mark.usefixtures("no_secrets_in_logs")

EMAIL = "page.user@example.com"


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Report a problem</title></head><body>
<h1>Report a problem, with a screenshot</h1>
<canvas id="shot" width="320" height="200"></canvas>
<dl>
<dt>POST /requests (form)</dt><dd id="create-status">pending</dd>
<dt>ticket</dt><dd id="ticket">pending</dd>
<dt>attached</dt><dd id="attached">pending</dd>
<dt>failed</dt><dd id="failed">pending</dd>
<dt>screenshot bytes</dt><dd id="shot-size">pending</dd>
<dt>my tickets</dt><dd id="mine-status">pending</dd><dd id="mine">pending</dd>
<dt>attachments read back</dt><dd id="listed">pending</dd>
<dt>error</dt><dd id="error">none</dd>
</dl><p id="done">running</p>
<script>
const GATEWAY = __GATEWAY__, KEY = __KEY__, TICKET = __TICKET__, EMAIL = __EMAIL__;
const show = (id, value) => { document.getElementById(id).textContent = String(value); };
const auth = {"Authorization": "Bearer " + KEY};
(async () => {
  try {
    const canvas = document.getElementById("shot"), ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 320, 200);
    ctx.fillStyle = "#c00"; ctx.font = "28px sans-serif"; ctx.fillText("Printer on fire", 20, 100);
    const png = await new Promise(done => canvas.toBlob(done, "image/png"));
    show("shot-size", png.size);
    const form = new FormData();
    form.append("ticket", JSON.stringify(TICKET));
    form.append("file", png, "screenshot.png");
    // No Content-Type: the browser writes multipart/form-data with its boundary.
    const created = await fetch(GATEWAY + "/requests", {
      method: "POST", body: form, headers: {...auth, "Idempotency-Key": "page-form-1"}});
    show("create-status", created.status);
    const body = await created.json();
    show("ticket", body.zoho_ticket_id);
    show("attached", body.attachments.items.map(a => a.name + " " + a.size + " " + a.content_type).join("; "));
    show("failed", body.attachments.failed.length);
    const mine = await fetch(GATEWAY + "/requests?requester_email=" + encodeURIComponent(EMAIL), {headers: auth});
    show("mine-status", mine.status);
    const page = await mine.json();
    show("mine", page.items.map(t => t.ticket_id + " " + t.subject).join("; "));
    const listed = await fetch(GATEWAY + "/requests/" + body.zoho_ticket_id + "/attachments", {headers: auth});
    show("listed", listed.status + " " + (await listed.json()).items.map(a => a.name).join("; "));
  } catch (err) {
    show("error", err.name + ": " + err.message);
  }
  show("done", "done");
})();
</script></body></html>
"""


@pytest.fixture
def page_server() -> Iterator[list[PageServer]]:
    started: list[PageServer] = []
    yield started
    for server in started:
        server.stop()


def test_a_page_creates_a_ticket_with_a_screenshot_then_lists_my_tickets(
    browser: None, make_gateway: Starter, sandbox: Sandbox, page_server: list[PageServer], tmp_path: Path
) -> None:
    # The page's origin is allowed before the gateway starts; the page, which names the gateway, comes after.
    page = PageServer()
    page_server.append(page)
    gateway = make_gateway(GATEWAY_API_KEYS=keys_env("frontend"), GATEWAY_CORS_ORIGINS=page.origin)
    assert page.origin != gateway.url  # same host, another port: cross-origin
    ticket = {**TICKET, "requester_email": EMAIL, "subject": "Printer on fire (with screenshot)"}
    html = (
        PAGE.replace("__GATEWAY__", json.dumps(gateway.url))
        .replace("__KEY__", json.dumps(api_key("frontend")))
        .replace("__TICKET__", json.dumps(ticket))
        .replace("__EMAIL__", json.dumps(EMAIL))
    )
    page.html = html.encode()

    dom = chromium(f"{page.origin}/", tmp_path / "profile", "--dump-dom", virtual_ms=20000, timeout=90)
    assert field(dom, "done") == "done", dom
    assert field(dom, "error") == "none", dom
    assert field(dom, "create-status") == "201"
    ticket_id = field(dom, "ticket")
    assert re.fullmatch(r"[0-9]+", ticket_id), ticket_id
    size = int(field(dom, "shot-size"))
    assert size > 500  # a real PNG the browser drew
    assert field(dom, "attached") == f"screenshot.png {size} image/png"
    assert field(dom, "failed") == "0"
    assert field(dom, "mine-status") == "200"
    assert field(dom, "mine") == f"{ticket_id} {ticket['subject']}"
    assert field(dom, "listed") == "200 screenshot.png"

    # What Zoho holds: one ticket, the requester's, with the browser's PNG byte for byte in size.
    assert [t["id"] for t in sandbox.tickets()] == [ticket_id]
    stored = requests.get(f"{sandbox.url}/_sandbox/tickets/{ticket_id}/attachments", timeout=TIMEOUT).json()
    [attachment] = stored["attachments"]
    assert (attachment["name"], attachment["content_type"], attachment["size"]["value"]) == (
        "screenshot.png",
        "image/png",
        str(size),
    )
    assert re.fullmatch(r"[0-9a-f]{64}", attachment["_sha256"])
    assert attachment["_sha256"] != hashlib.sha256(b"").hexdigest()
