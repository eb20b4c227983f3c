"""The ticket lifecycle routes of issue 11 over real sockets: find, full view, update, notes, close, reopen.

A werkzeug-served gateway (cache on, so that every write is seen invalidating it) in front of the sandbox.
Every status code each route documents, the error format on every failure, what reaches Zoho (counters),
Idempotency-Key replays (a note is never added twice), If-Match, and the cache staying correct across
processes: gunicorn with 2 workers on one SQLite store, and 2 gateways on one Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests

from tests.helpers import TICKET, TIMEOUT, assert_error, check_never_html, counters, create, delta
from tests.servers import Sandbox, Starter, ThreadedGateway

MODULE_GATEWAY_ENV = {"GATEWAY_CACHE_TTL": "30", "ZOHO_RETRY_BUDGET": "0.5"}
UNKNOWN_ID = "123640000009999999"
FULL_FIELDS = {
    "ticket_id",
    "status",
    "technician_assigned",
    "technician_contact_email",
    "technician_comments",
    "display_id",
    "subject",
    "description",
    "requester",
    "priority",
    "category",
    "department",
    "created_at",
    "updated_at",
    "due_by",
    "resolution",
    "has_attachments",
}
SUMMARY_FIELDS = {"ticket_id", "display_id", "subject", "status", "technician_assigned", "created_at", "updated_at"}


def call(method: str, url: str, *, json_body: Any = None, **headers: str) -> requests.Response:
    """One request as a client sends it (JSON body when given); never HTML."""
    return check_never_html(requests.request(method, url, json=json_body, headers=headers, timeout=TIMEOUT))


@pytest.fixture
def gw(reused_gateway: ThreadedGateway) -> ThreadedGateway:
    """The module's gateway (cache TTL 30 s) without the copies of earlier tests' tickets, whose ids the reset
    sandbox gives again."""
    reused_gateway.gateway.cache.forget_local()
    return reused_gateway


@pytest.fixture
def ticket(gw: ThreadedGateway) -> str:
    return create(gw, subject="Printer on fire", description="<p>Third <b>floor</b></p>", priority="High")


# ---- find ------------------------------------------------------------------------------------------------


def test_find_answers_a_page_with_has_more_and_a_next_link_that_keeps_the_filters(
    gw: ThreadedGateway, sandbox: Sandbox
) -> None:
    ids = [create(gw, requester_email="pager@example.com", subject=f"Pager {n}") for n in range(5)]
    create(gw, requester_email="other@example.com", subject="Pager other")
    answer = call("GET", f"{gw.url}/requests?requester_email=pager@example.com&per_page=2")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"items", "page", "per_page", "has_more"}
    assert (body["page"], body["per_page"], body["has_more"]) == (1, 2, True)
    assert [item["ticket_id"] for item in body["items"]] == ids[::-1][:2]  # newest first by default
    assert all(set(item) == SUMMARY_FIELDS for item in body["items"])
    seen = [item["ticket_id"] for item in body["items"]]
    while "Link" in answer.headers:
        link = answer.headers["Link"]
        assert link.endswith('>; rel="next"') and link.startswith("</requests?"), link
        query = parse_qs(urlsplit(link[1 : link.index(">")]).query)
        assert query["requester_email"] == ["pager@example.com"] and query["per_page"] == ["2"]
        answer = call("GET", f"{gw.url}{link[1 : link.index('>')]}")
        assert answer.status_code == 200
        seen += [item["ticket_id"] for item in answer.json()["items"]]
    assert seen == ids[::-1] and answer.json()["has_more"] is False and answer.json()["page"] == 3


def test_find_filters_by_status_subject_text_and_display_id_and_sorts(gw: ThreadedGateway) -> None:
    first = create(gw, subject="Coffee machine leaks")
    second = create(gw, subject="Laptop will not boot")
    full = call("GET", f"{gw.url}/requests/{second}?view=full").json()
    by_text = call("GET", f"{gw.url}/requests?q=coffee").json()["items"]
    assert [item["ticket_id"] for item in by_text] == [first]
    by_number = call("GET", f"{gw.url}/requests?display_id={full['display_id']}").json()["items"]
    assert [item["ticket_id"] for item in by_number] == [second]
    call("POST", f"{gw.url}/requests/{first}/close", json_body={})
    closed = call("GET", f"{gw.url}/requests?status=Closed").json()["items"]
    assert [item["ticket_id"] for item in closed] == [first]
    oldest = call("GET", f"{gw.url}/requests?sort=created_at&per_page=1").json()["items"]
    assert oldest[0]["ticket_id"] == first
    nothing = call("GET", f"{gw.url}/requests?q=%22%29%20OR%201%3D1%20--").json()  # client text is data
    assert nothing["items"] == [] and nothing["has_more"] is False


@pytest.mark.parametrize(
    "query, field",
    [
        ("per_page=101", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("sort=subject", "sort"),
        ("requester_email=not-an-email", "requester_email"),
        ("display_id=12a", "display_id"),
        ("q=", "q"),
        ("status=%20", "status"),
        ("colour=red", "colour"),
        ("page=1&page=2", "page"),
    ],
)
def test_find_refuses_a_bad_or_unknown_parameter_by_name(
    gw: ThreadedGateway, sandbox: Sandbox, query: str, field: str
) -> None:
    before = counters(sandbox)
    body = assert_error(call("GET", f"{gw.url}/requests?{query}"), 422, "validation_failed")
    assert list(body["details"]["fields"]) == [field], body
    assert "list_calls" not in delta(before, sandbox)


def test_find_when_zoho_fails(gw: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(target="list", kind="status", status=503)
    assert_error(call("GET", f"{gw.url}/requests"), 503, "zoho_unavailable", retry_after=True)
    sandbox.clear_faults()
    sandbox.fault(target="list", kind="garbage")
    assert_error(call("GET", f"{gw.url}/requests"), 502, "zoho_bad_response")


# ---- full view ---------------------------------------------------------------------------------------------


def test_full_view_has_every_field_with_its_own_etag_304_and_cache_entry(
    gw: ThreadedGateway, sandbox: Sandbox, ticket: str
) -> None:
    before = counters(sandbox)
    answer = call("GET", f"{gw.url}/requests/{ticket}?view=full")
    assert answer.status_code == 200, answer.text
    full = answer.json()
    assert set(full) == FULL_FIELDS
    assert full["description"] == "Third floor" and full["priority"] == "High"
    assert full["requester"]["email"] == TICKET["requester_email"] and full["has_attachments"] is False
    seed = call("GET", f"{gw.url}/requests/{ticket}")
    assert set(seed.json()) == {
        "ticket_id",
        "status",
        "technician_assigned",
        "technician_contact_email",
        "technician_comments",
    }
    assert {k: full[k] for k in seed.json()} == seed.json()
    assert seed.headers["ETag"] != answer.headers["ETag"]
    again = call("GET", f"{gw.url}/requests/{ticket}?view=full", **{"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == answer.headers["ETag"]
    assert again.headers["Cache-Control"] == "private, max-age=30"
    # The create primed the seed view; the full view was read once, then served from the cache.
    assert delta(before, sandbox).get("get_calls") == 1


def test_full_view_failures(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    assert_error(call("GET", f"{gw.url}/requests/{UNKNOWN_ID}?view=full"), 404, "ticket_not_found")
    assert_error(call("GET", f"{gw.url}/requests/12ab?view=full"), 400, "invalid_ticket_id")
    body = assert_error(call("GET", f"{gw.url}/requests/{ticket}?view=brief"), 422, "validation_failed")
    assert list(body["details"]["fields"]) == ["view"]
    sandbox.fault(target="get", kind="status", status=503)
    assert_error(call("GET", f"{gw.url}/requests/{ticket}?view=full"), 503, "zoho_unavailable", retry_after=True)


# ---- update ------------------------------------------------------------------------------------------------


def test_update_changes_the_fields_given_and_every_view_shows_it_at_once(
    gw: ThreadedGateway, sandbox: Sandbox, ticket: str
) -> None:
    seed_before = call("GET", f"{gw.url}/requests/{ticket}").json()
    full_before = call("GET", f"{gw.url}/requests/{ticket}?view=full").json()
    changes = {"subject": "Printer on fire (again)", "status": "In Progress", "department": {"name": "IT Services"}}
    answer = call("PATCH", f"{gw.url}/requests/{ticket}", json_body=changes)
    assert answer.status_code == 200, answer.text
    full = answer.json()
    assert set(full) == FULL_FIELDS
    assert (full["subject"], full["status"], full["department"]) == (
        "Printer on fire (again)",
        "In Progress",
        "IT Services",
    )
    assert full["priority"] == full_before["priority"] == "High"
    assert answer.headers["ETag"] and answer.headers["Cache-Control"] == "no-store"
    # Both cached views show the write at once (cache TTL is 30 s), and without another call to Zoho.
    before = counters(sandbox)
    assert call("GET", f"{gw.url}/requests/{ticket}").json() == {**seed_before, "status": "In Progress"}
    read_full = call("GET", f"{gw.url}/requests/{ticket}?view=full")
    assert read_full.json() == full and read_full.headers["ETag"] == answer.headers["ETag"]
    assert "get_calls" not in delta(before, sandbox)
    assert sandbox.ticket(ticket)["subject"] == "Printer on fire (again)"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "_body"),
        ({"subject": " "}, "subject"),
        ({"subject": "x" * 251}, "subject"),
        ({"priority": None}, "priority"),
        ({"priority": {"id": "1"}}, "priority"),
        ({"requester_email": "a@example.com"}, "requester_email"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_update_refuses_invalid_fields_by_name_before_zoho(
    gw: ThreadedGateway, sandbox: Sandbox, ticket: str, payload: dict[str, Any], field: str
) -> None:
    before = counters(sandbox)
    body = assert_error(call("PATCH", f"{gw.url}/requests/{ticket}", json_body=payload), 422, "validation_failed")
    assert list(body["details"]["fields"]) == [field], body
    assert "update_calls" not in delta(before, sandbox)


def test_update_failures(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    url = f"{gw.url}/requests/{ticket}"
    refused = assert_error(call("PATCH", url, json_body={"priority": "Cosmic"}), 422, "zoho_rejected_value")
    assert "priority" in refused["details"]["fields"]
    assert_error(
        call("PATCH", f"{gw.url}/requests/{UNKNOWN_ID}", json_body={"status": "Open"}), 404, "ticket_not_found"
    )
    assert_error(call("PATCH", f"{gw.url}/requests/x1", json_body={"status": "Open"}), 400, "invalid_ticket_id")
    bad_json = requests.patch(url, data="{", headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert_error(bad_json, 400, "invalid_json")
    as_form = requests.patch(url, data="status=Open", timeout=TIMEOUT)
    assert_error(as_form, 415, "unsupported_media_type")
    huge = json.dumps({"description": "x" * (1024 * 1024)})
    too_large = requests.patch(url, data=huge, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert_error(too_large, 413, "payload_too_large")
    assert_error(call("PATCH", url, json_body={"status": "Open"}, **{"Idempotency-Key": ""}), 400, "invalid_header")
    sandbox.fault(target="update", kind="status", status=503)
    assert_error(call("PATCH", url, json_body={"status": "Open"}), 503, "zoho_unavailable", retry_after=True)
    sandbox.clear_faults()
    sandbox.fault(target="update", kind="hang_after_commit", seconds=3)
    assert_error(call("PATCH", url, json_body={"status": "On Hold"}), 504, "zoho_timeout", retry_after=True)
    sandbox.clear_faults()
    # The update may have applied: the caches were dropped, so the next read asks Zoho.
    assert call("GET", url).json()["status"] == sandbox.ticket(ticket)["status"]["name"] == "On Hold"


def test_if_match_updates_only_an_unchanged_ticket(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    url = f"{gw.url}/requests/{ticket}"
    etag = call("GET", f"{url}?view=full").headers["ETag"]
    first = call("PATCH", url, json_body={"status": "In Progress"}, **{"If-Match": etag})
    assert first.status_code == 200, first.text
    # The same ETag again: the ticket changed since (our own update), so nothing is sent.
    before = counters(sandbox)
    stale = call("PATCH", url, json_body={"status": "On Hold"}, **{"If-Match": etag})
    body = assert_error(stale, 412, "precondition_failed")
    assert "?view=full" in body["details"]["message"]
    assert "update_calls" not in delta(before, sandbox)
    # A change made in Zoho itself (not through the gateway) is seen too, though the cache holds the ticket.
    fresh = first.headers["ETag"]
    assert call("GET", f"{url}?view=full").headers["ETag"] == fresh
    sandbox.patch_ticket(ticket, resolution="Done by an agent in Zoho")
    assert_error(call("PATCH", url, json_body={"status": "On Hold"}, **{"If-Match": fresh}), 412, "precondition_failed")
    # ... and after the 412 the next read shows what Zoho holds, whose ETag then matches.
    reread = call("GET", f"{url}?view=full")
    assert reread.json()["resolution"] == "Done by an agent in Zoho"
    ok = call("PATCH", url, json_body={"status": "On Hold"}, **{"If-Match": reread.headers["ETag"]})
    assert ok.status_code == 200 and ok.json()["status"] == "On Hold"
    star = call("PATCH", url, json_body={"status": "Open"}, **{"If-Match": "*"})
    assert star.status_code == 200
    weak = call("PATCH", url, json_body={"status": "Open"}, **{"If-Match": f"W/{star.headers['ETag']}"})
    assert_error(weak, 412, "precondition_failed")  # If-Match compares strongly (RFC 9110 §13.1.1)


def test_a_keyed_update_is_replayed_not_repeated(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    url = f"{gw.url}/requests/{ticket}"
    etag = call("GET", f"{url}?view=full").headers["ETag"]
    headers = {"Idempotency-Key": "upd-1", "If-Match": etag}
    first = call("PATCH", url, json_body={"status": "In Progress"}, **headers)
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    before = counters(sandbox)
    # The repeat (a client retrying after a lost answer) gets the first answer, not a 412 for its own write.
    again = call("PATCH", url, json_body={"status": "In Progress"}, **headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again.headers["ETag"] == first.headers["ETag"]
    assert delta(before, sandbox) == {}
    other = call("PATCH", url, json_body={"status": "Open"}, **headers)
    assert_error(other, 422, "idempotency_key_reused")


# ---- notes -------------------------------------------------------------------------------------------------


def test_notes_are_added_and_listed(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    url = f"{gw.url}/requests/{ticket}/notes"
    private = call("POST", url, json_body={"text": "Rebooted the print server"})
    assert private.status_code == 201, private.text
    assert set(private.json()) == {"note_id"}
    public = call("POST", url, json_body={"text": "We are on it", "show_to_requester": True})
    assert public.status_code == 201
    listed = call("GET", url)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(n["note_id"], n["text"], n["show_to_requester"]) for n in items] == [
        (private.json()["note_id"], "Rebooted the print server", False),
        (public.json()["note_id"], "We are on it", True),
    ]
    assert all(set(n) == {"note_id", "text", "show_to_requester", "created_at", "author"} for n in items)


def test_a_keyed_note_is_added_once_also_when_its_answer_was_lost(
    gw: ThreadedGateway, sandbox: Sandbox, ticket: str
) -> None:
    url = f"{gw.url}/requests/{ticket}/notes"
    first = call("POST", url, json_body={"text": "once"}, **{"Idempotency-Key": "note-1"})
    again = call("POST", url, json_body={"text": "once"}, **{"Idempotency-Key": "note-1"})
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # Zoho adds the note and the answer is lost: 504, and the repeat replays the 504 instead of adding it again.
    sandbox.fault(target="note", kind="reset_after_commit", times=1)
    lost = call("POST", url, json_body={"text": "lost"}, **{"Idempotency-Key": "note-2"})
    assert_error(lost, 504, "zoho_outcome_unknown", retry_after=False)
    repeat = call("POST", url, json_body={"text": "lost"}, **{"Idempotency-Key": "note-2"})
    assert_error(repeat, 504, "zoho_outcome_unknown", retry_after=False)
    assert repeat.headers["Idempotent-Replayed"] == "true"
    texts = [note["text"] for note in call("GET", url).json()["items"]]
    assert texts == ["once", "lost"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 65536}, "text"),
        ({"text": "ok", "show_to_requester": "yes"}, "show_to_requester"),
        ({"text": "ok", "show_to_requester": 1}, "show_to_requester"),
        ({"text": "ok", "pinned": True}, "pinned"),
    ],
)
def test_a_note_is_validated_by_field(
    gw: ThreadedGateway, sandbox: Sandbox, ticket: str, payload: dict[str, Any], field: str
) -> None:
    before = counters(sandbox)
    answer = call("POST", f"{gw.url}/requests/{ticket}/notes", json_body=payload)
    body = assert_error(answer, 422, "validation_failed")
    assert list(body["details"]["fields"]) == [field]
    assert "note_calls" not in delta(before, sandbox)


def test_notes_failures(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    assert call("POST", f"{gw.url}/requests/{ticket}/notes", json_body={"text": "x" * 65535}).status_code == 201
    unknown = f"{gw.url}/requests/{UNKNOWN_ID}/notes"
    assert_error(call("POST", unknown, json_body={"text": "hi"}), 404, "ticket_not_found")
    assert_error(call("GET", unknown), 404, "ticket_not_found")
    assert_error(call("GET", f"{gw.url}/requests/1x/notes"), 400, "invalid_ticket_id")
    sandbox.fault(target="note", kind="status", status=503, times=1)
    unavailable = call("POST", f"{gw.url}/requests/{ticket}/notes", json_body={"text": "hi"})
    assert_error(unavailable, 503, "zoho_unavailable", retry_after=True)


# ---- close and reopen --------------------------------------------------------------------------------------


def test_close_sets_the_resolution_the_seed_view_shows_and_closing_twice_is_200(
    gw: ThreadedGateway, sandbox: Sandbox, ticket: str
) -> None:
    url = f"{gw.url}/requests/{ticket}"
    assert call("GET", url).json()["technician_comments"] is None  # cached now (TTL 30 s)
    closed = call("POST", f"{url}/close", json_body={"comments": "Fixed by the bot", "resolution": "New fuser"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "Closed" and closed.json()["resolution"] == "New fuser"
    seed = call("GET", url).json()
    assert (seed["status"], seed["technician_comments"]) == ("Closed", "New fuser")
    again = call("POST", f"{url}/close")  # no body at all
    assert again.status_code == 200 and again.json()["status"] == "Closed"
    reopened = call("POST", f"{url}/reopen")
    assert reopened.status_code == 200 and reopened.json()["status"] == "Open"
    assert call("GET", url).json()["status"] == "Open"
    assert call("POST", f"{url}/reopen").status_code == 200


def test_close_and_reopen_failures(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    url = f"{gw.url}/requests/{ticket}"
    body = assert_error(call("POST", f"{url}/close", json_body={"reason": "x"}), 422, "validation_failed")
    assert list(body["details"]["fields"]) == ["reason"]
    assert_error(call("POST", f"{url}/close", json_body={"resolution": ""}), 422, "validation_failed")
    not_json = requests.post(f"{url}/close", data="x", headers={"Content-Type": "text/plain"}, timeout=TIMEOUT)
    assert_error(not_json, 415, "unsupported_media_type")
    assert_error(call("POST", f"{gw.url}/requests/{UNKNOWN_ID}/close"), 404, "ticket_not_found")
    assert_error(call("POST", f"{gw.url}/requests/{UNKNOWN_ID}/reopen"), 404, "ticket_not_found")
    assert_error(call("POST", f"{gw.url}/requests/00x/reopen"), 400, "invalid_ticket_id")
    sandbox.fault(target="close", kind="status", status=503)
    assert_error(call("POST", f"{url}/close"), 503, "zoho_unavailable", retry_after=True)
    assert call("GET", url).json()["status"] == "Open"
    sandbox.clear_faults()
    sandbox.fault(target="update", kind="status", status=503)
    assert_error(call("POST", f"{url}/reopen"), 503, "zoho_unavailable", retry_after=True)


def test_a_keyed_close_replays(gw: ThreadedGateway, sandbox: Sandbox, ticket: str) -> None:
    url = f"{gw.url}/requests/{ticket}/close"
    first = call("POST", url, json_body={"resolution": "Done"}, **{"Idempotency-Key": "close-1"})
    before = counters(sandbox)
    again = call("POST", url, json_body={"resolution": "Done"}, **{"Idempotency-Key": "close-1"})
    assert again.status_code == 200 and again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert delta(before, sandbox) == {}
    reused = call("POST", f"{gw.url}/requests/{ticket}/reopen", **{"Idempotency-Key": "close-1"})
    assert_error(reused, 422, "idempotency_key_reused")


# ---- the cache across processes -----------------------------------------------------------------------------


def write_then_read_everywhere(urls: list[str], ticket: str, reads: int = 12) -> None:
    """Warm every process's copies of both views, write through one process, then read through all of them:
    every read shows the write (with a 30 s cache TTL, so nothing ages out during the test)."""
    for _ in range(reads):
        for url in urls:
            assert requests.get(f"{url}/requests/{ticket}", timeout=TIMEOUT).json()["status"] == "Open"
            assert requests.get(f"{url}/requests/{ticket}?view=full", timeout=TIMEOUT).json()["status"] == "Open"
    steps: list[tuple[str, Callable[[str], requests.Response], str]] = [
        (
            "PATCH",
            lambda u: requests.patch(f"{u}/requests/{ticket}", json={"status": "On Hold"}, timeout=TIMEOUT),
            "On Hold",
        ),
        ("close", lambda u: requests.post(f"{u}/requests/{ticket}/close", timeout=TIMEOUT), "Closed"),
        ("reopen", lambda u: requests.post(f"{u}/requests/{ticket}/reopen", timeout=TIMEOUT), "Open"),
    ]
    for n, (what, write, status) in enumerate(steps):
        assert write(urls[n % len(urls)]).status_code == 200, what
        for _ in range(reads):
            for url in urls:
                seed = requests.get(f"{url}/requests/{ticket}", timeout=TIMEOUT).json()
                full = requests.get(f"{url}/requests/{ticket}?view=full", timeout=TIMEOUT).json()
                assert seed["status"] == full["status"] == status, (what, url)
    before = requests.get(f"{urls[-1]}/requests/{ticket}?view=full", timeout=TIMEOUT).json()["updated_at"]
    assert requests.post(f"{urls[0]}/requests/{ticket}/notes", json={"text": "n"}, timeout=TIMEOUT).status_code == 201
    for url in urls:  # a note changes updated_at in Zoho: the next read of every process shows it
        assert requests.get(f"{url}/requests/{ticket}?view=full", timeout=TIMEOUT).json()["updated_at"] >= before


def test_writes_invalidate_every_gunicorn_workers_copies(make_gunicorn: Starter, sandbox: Sandbox) -> None:
    server = make_gunicorn(workers=2, threads=4, GATEWAY_CACHE_TTL="30")
    ticket = create(server)
    # Many connections: each new connection may land on either worker, so both hold copies.
    write_then_read_everywhere([server.url], ticket, reads=24)


def test_writes_invalidate_the_copies_of_two_gateways_on_one_redis(
    make_gateway: Starter, sandbox: Sandbox, redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()  # ticket ids start again after a sandbox reset: no old copies
    gateways = [make_gateway(GATEWAY_STATE_URL=redis_url, GATEWAY_CACHE_TTL="30") for _ in range(2)]
    ticket = create(gateways[0])
    write_then_read_everywhere([g.url for g in gateways], ticket)
