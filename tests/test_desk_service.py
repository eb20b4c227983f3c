"""``DeskService`` over real sockets against the sandbox's Zoho Desk portal, with a real TokenManager (MemoryStore)
minting at the portal's own account. Faults are queued through the sandbox's control API."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.helpers import TIMEOUT
from tests.servers import Sandbox
from zoho_gateway.errors import (
    NotSupportedByService,
    TicketNotFound,
    ZohoAuthFailed,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
    ZohoRateLimited,
    ZohoRejected,
    ZohoUnavailable,
)
from zoho_gateway.state import MemoryStore
from zoho_gateway.state.sealing import Sealer
from zoho_gateway.zoho.desk.service import DeskService
from zoho_gateway.zoho.model import NewTicket, TicketQuery, Upload
from zoho_gateway.zoho.oauth import ZohoOAuth
from zoho_gateway.zoho.retry import RetryPolicy
from zoho_gateway.zoho.service import HelpdeskService
from zoho_gateway.zoho.tokens import TokenManager
from zoho_gateway.zoho.transport import Transport

PORTAL = "deskgw"
UNKNOWN_ID = "97709000000000001"


@dataclass
class Desk:
    """The declared portal, its service and the control API."""

    sandbox: Sandbox
    info: dict[str, Any]
    service: DeskService
    calls: list[tuple[str, str]]

    def control(self, method: str, path: str, payload: Any = None) -> requests.Response:
        return requests.request(method, f"{self.info['control_url']}/{path}", json=payload, timeout=TIMEOUT)

    def fault(self, **spec: Any) -> None:
        answer = self.control("POST", "faults", spec)
        assert answer.status_code == 201, answer.text

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.control("GET", "stats").json()
        return body

    def patch(self, ticket_id: str, **changes: Any) -> None:
        answer = self.control("PATCH", f"tickets/{ticket_id}", changes)
        assert answer.status_code == 200, answer.text

    def stored(self, ticket_id: str) -> dict[str, Any]:
        answer = requests.get(
            f"{self.info['base_url']}/api/v1/tickets/{ticket_id}",
            headers={"Authorization": f"Zoho-oauthtoken {self.service_token()}", "orgId": self.info["org_id"]},
            timeout=TIMEOUT,
        )
        record: dict[str, Any] = answer.json()
        return record

    def service_token(self) -> str:
        return self._tokens.current().token

    _tokens: TokenManager = None  # type: ignore[assignment]


def make_service(
    info: dict[str, Any], transport: Transport, tokens: TokenManager, calls: list[tuple[str, str]], **options: Any
) -> DeskService:
    return DeskService(
        base_url=info["base_url"],
        org_id=info["org_id"],
        department_id=info["department_id"],
        tokens=tokens,
        transport=transport,
        policy=RetryPolicy(budget=4.0, max_attempts=3, base=0.01, cap=0.05, retry_after_cap=0.1),
        observe=lambda operation, outcome, _seconds: calls.append((operation, outcome)),
        **options,
    )


@pytest.fixture
def transport() -> Iterator[Transport]:
    transport = Transport(connect_timeout=1.0, read_timeout=2.0)
    yield transport
    transport.close()


@pytest.fixture
def desk(sandbox: Sandbox, transport: Transport) -> Desk:
    answer = requests.post(
        f"{sandbox.url}/_sandbox/portals",
        json={"name": PORTAL, "service": "desk", "account": "deskacct", "org_id": "700000042"},
        timeout=TIMEOUT,
    )
    assert answer.status_code in (200, 201), answer.text
    info: dict[str, Any] = answer.json()
    requests.post(f"{sandbox.url}/_sandbox/t/{PORTAL}/reset", timeout=TIMEOUT)
    requests.post(f"{sandbox.url}/_sandbox/a/deskacct/reset", timeout=TIMEOUT)
    oauth = ZohoOAuth(
        transport, accounts_url=info["accounts_url"], client_id=info["client_id"], client_secret=info["client_secret"]
    )
    tokens = TokenManager(oauth=oauth, refresh_token=info["refresh_token"], store=MemoryStore(), sealer=Sealer(None))
    calls: list[tuple[str, str]] = []
    found = Desk(sandbox, info, make_service(info, transport, tokens, calls), calls)
    found._tokens = tokens
    return found


def new_ticket(**changes: Any) -> NewTicket:
    ticket: NewTicket = {
        "subject": "Printer on fire",
        "description": "Third floor, next to the kitchen.\nPlease hurry.",
        "requester_email": "ana.lima@example.com",
    }
    ticket.update(changes)  # type: ignore[typeddict-item]
    return ticket


def query(**fields: Any) -> TicketQuery:
    base: TicketQuery = {"page": 1, "per_page": 25, "sort": "created_at"}
    base.update(fields)  # type: ignore[typeddict-item]
    return base


def test_desk_service_is_a_helpdesk_service(desk: Desk) -> None:
    service: HelpdeskService = desk.service
    assert service.ref_field is None


# ---- create and read ----------------------------------------------------------------------------------------


def test_create_makes_the_contact_once_and_sends_names_as_strings(desk: Desk) -> None:
    ticket_id, ticket = desk.service.create(
        new_ticket(priority={"name": "High"}, category={"name": "Hardware"}, status={"name": "On Hold"})
    )
    assert ticket == {
        "ticket_id": ticket_id,
        "status": "On Hold",
        "technician_assigned": "Unassigned",
        "technician_contact_email": None,
        "technician_comments": None,
    }
    stored = desk.stored(ticket_id)
    assert (stored["priority"], stored["category"], stored["departmentId"]) == (
        "High",
        "Hardware",
        desk.info["department_id"],
    )
    assert stored["email"] == "ana.lima@example.com"
    desk.service.create(new_ticket(subject="Second", requester_email="ANA.LIMA@example.com"))
    stats = desk.stats()
    assert stats["contacts_created"] == 1 and stats["contacts_calls"] == 2 and stats["creates"] == 2
    assert stats["last_headers"]["orgId"] == desk.info["org_id"]
    assert stats["last_headers"]["Authorization"] == "Zoho-oauthtoken"


def test_create_in_a_named_department_and_refusals(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket(department={"name": "sales"}))
    assert desk.stored(ticket_id)["departmentId"] == desk.info["departments"][1]["id"]
    with pytest.raises(ZohoRejected) as caught:
        desk.service.create(new_ticket(department={"name": "Nowhere"}))
    assert list(caught.value.fields or {}) == ["department"]
    with pytest.raises(ZohoRejected) as caught:
        desk.service.create(new_ticket(priority={"name": "Urgent"}))
    assert list(caught.value.fields or {}) == ["priority"]
    assert desk.stats()["creates"] == 1


def test_get_reads_assignee_and_resolution(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket())
    desk.patch(ticket_id, assignee={"firstName": "Ada", "lastName": "Agent", "email": "ada.agent@sandbox.invalid"})
    desk.patch(ticket_id, resolution="Replaced the fuser", status="Closed")
    assert desk.service.get(ticket_id) == {
        "ticket_id": ticket_id,
        "status": "Closed",
        "technician_assigned": "Ada Agent",
        "technician_contact_email": "ada.agent@sandbox.invalid",
        "technician_comments": "Replaced the fuser",
    }
    with pytest.raises(TicketNotFound):
        desk.service.get(UNKNOWN_ID)


def test_a_refused_token_is_replaced_with_one_mint(desk: Desk) -> None:
    desk.service.create(new_ticket())
    mints = desk.stats()["mints"]
    desk.fault(target="api", kind="expire_tokens", times=1)
    ticket_id, _ = desk.service.create(new_ticket(subject="After expiry"))
    assert desk.stats()["mints"] == mints + 1
    assert desk.stats()["creates"] == 2
    assert desk.service.get(ticket_id)["ticket_id"] == ticket_id
    assert desk.stats()["mints"] == mints + 1


def test_invalid_oauth_in_a_403_replaces_the_token_too(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket())
    mints = desk.stats()["mints"]
    desk.fault(target="get", kind="status", status=403, times=1, body={"errorCode": "INVALID_OAUTH", "message": "x"})
    assert desk.service.get(ticket_id)["ticket_id"] == ticket_id
    assert desk.stats()["mints"] == mints + 1


def test_a_token_refused_after_its_replacement_is_an_auth_failure_after_one_mint(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket())
    mints = desk.stats()["mints"]
    desk.fault(target="get", kind="status", status=401, body={"errorCode": "INVALID_OAUTH", "message": "no"})
    with pytest.raises(ZohoAuthFailed):
        desk.service.get(ticket_id)
    assert desk.stats()["mints"] == mints + 1 and desk.stats()["get_calls"] == 2


def test_auth_and_rate_limit_codes(desk: Desk) -> None:
    desk.fault(target="get", kind="status", status=403, times=1, body={"errorCode": "FORBIDDEN", "message": "no"})
    with pytest.raises(ZohoAuthFailed):
        desk.service.get(UNKNOWN_ID)
    desk.fault(target="create", kind="rate_limit", retry_after="1", times=1)
    with pytest.raises(ZohoRateLimited):
        desk.service.create(new_ticket())
    assert desk.stats()["creates"] == 0


def test_a_wrong_org_id_is_an_auth_failure(desk: Desk, transport: Transport) -> None:
    info = {**desk.info, "org_id": "1"}
    service = make_service(info, transport, desk._tokens, [])
    with pytest.raises(ZohoAuthFailed):
        service.get(UNKNOWN_ID)


# ---- the create error contract ------------------------------------------------------------------------------


def test_create_answered_500_after_commit_may_exist_and_is_found_by_content(desk: Desk) -> None:
    ticket = new_ticket(subject="Lost answer")
    sent_at = time.time()
    desk.fault(target="create", kind="status_after_commit", status=500, times=1)
    with pytest.raises(ZohoOutcomeUnknown):
        desk.service.create(ticket)
    found = desk.service.find_created(ticket, ref="r-1", sent_at=sent_at)
    assert len(found) == 1 and desk.stored(found[0])["subject"] == "Lost answer"
    assert desk.service.find_created(new_ticket(subject="Never sent"), ref="r-2", sent_at=sent_at) == []
    other = new_ticket(subject="Lost answer", description="another text")
    assert desk.service.find_created(other, ref="r-3", sent_at=sent_at) == []


def test_create_without_an_answer_is_never_resent(desk: Desk) -> None:
    desk.fault(target="create", kind="hang_after_commit", seconds=3, times=1)
    with pytest.raises(ZohoOutcomeUnknown):
        desk.service.create(new_ticket())
    assert desk.stats()["create_calls"] == 1


def test_a_503_on_create_or_a_failed_contact_step_created_nothing(desk: Desk) -> None:
    desk.fault(target="create", kind="status", status=503, times=1)
    with pytest.raises(ZohoUnavailable):
        desk.service.create(new_ticket())
    desk.fault(target="contact_create", kind="status", status=500, times=1)
    with pytest.raises(ZohoUnavailable) as caught:
        desk.service.create(new_ticket(requester_email="new.person@example.com"))
    assert type(caught.value) is ZohoUnavailable
    assert desk.stats()["creates"] == 0


def test_an_unusable_2xx_create_may_exist(desk: Desk) -> None:
    desk.fault(target="create", kind="garbage", times=1)
    with pytest.raises(ZohoOutcomeUnknown):
        desk.service.create(new_ticket())
    desk.fault(target="get", kind="garbage", times=1)
    with pytest.raises(ZohoBadResponse):
        desk.service.get(UNKNOWN_ID)


def test_the_ref_field_is_written_and_searched(desk: Desk, transport: Transport) -> None:
    service = make_service(desk.info, transport, desk._tokens, [], ref_field="cf_gateway_ref")
    assert service.ref_field == "cf_gateway_ref"
    sent_at = time.time()
    ticket_id, _ = service.create(new_ticket(), ref="ref-abc")
    assert desk.stored(ticket_id)["cf"] == {"cf_gateway_ref": "ref-abc"}
    service.create(new_ticket(), ref="ref-other")
    assert service.find_created(new_ticket(), ref="ref-abc", sent_at=sent_at) == [ticket_id]
    assert service.find_created(new_ticket(), ref="ref-none", sent_at=sent_at) == []
    with pytest.raises(ValueError):
        make_service(desk.info, transport, desk._tokens, [], ref_field="Gateway Ref")


# ---- the lifecycle ------------------------------------------------------------------------------------------


def test_find_lists_searches_and_pages(desk: Desk) -> None:
    ids = [desk.service.create(new_ticket(subject=f"Ticket {n}"))[0] for n in range(5)]
    desk.service.create(new_ticket(subject="Other person", requester_email="bo@example.com"))
    page = desk.service.find(query(per_page=2))
    assert [item["ticket_id"] for item in page["items"]] == ids[:2] and page["has_more"] is True
    last = desk.service.find(query(per_page=2, page=3))
    assert len(last["items"]) == 2 and last["has_more"] is False
    newest = desk.service.find(query(per_page=1, sort="-created_at"))
    assert newest["items"][0]["subject"] == "Other person"
    mine = desk.service.find(query(requester_email="ana.lima@example.com", per_page=4))
    assert len(mine["items"]) == 4 and mine["has_more"] is True
    assert desk.service.find(query(q="ticket 3"))["items"][0]["ticket_id"] == ids[3]
    assert desk.service.find(query(q="Tick*3"))["items"] == []  # a * is data, not a wildcard
    assert desk.service.find(query(status="Closed")) == {"items": [], "has_more": False}
    row = desk.service.find(query(display_id=desk.stored(ids[0])["ticketNumber"]))["items"][0]
    assert row["technician_assigned"] == "Unassigned" and row["created_at"] is not None


def test_get_full_update_close_reopen(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket(description="<p>Smoke &amp; <b>fire</b></p>"))
    full = desk.service.get_full(ticket_id)
    assert full["description"] == "Smoke & fire" and full["department"] == "Support"
    assert full["requester"]["email"] == "ana.lima@example.com" and full["display_id"] is not None
    updated = desk.service.update(
        ticket_id, {"subject": "Printer fixed?", "priority": {"name": "Low"}, "department": {"name": "Sales"}}
    )
    assert (updated["subject"], updated["priority"], updated["department"]) == ("Printer fixed?", "Low", "Sales")
    with pytest.raises(ZohoRejected) as caught:
        desk.service.update(ticket_id, {"status": {"name": "Pending"}})
    assert list(caught.value.fields or {}) == ["status"]
    closed = desk.service.close(ticket_id, comments="Closing: replaced", resolution="New fuser")
    assert closed["status"] == "Closed" and closed["resolution"] == "New fuser"
    assert closed["technician_comments"] == "New fuser"
    again = desk.service.close(ticket_id, comments="Closing: replaced")
    assert again["status"] == "Closed"
    notes = desk.service.list_notes(ticket_id)
    assert [(n["text"], n["show_to_requester"]) for n in notes] == [("Closing: replaced", False)]
    assert desk.service.reopen(ticket_id)["status"] == "Open"
    with pytest.raises(TicketNotFound):
        desk.service.update(UNKNOWN_ID, {"subject": "x"})
    with pytest.raises(TicketNotFound):
        desk.service.close(UNKNOWN_ID)


def test_update_is_retried_after_a_lost_answer(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket())
    desk.fault(target="update", kind="reset_after_commit", times=1)
    assert desk.service.update(ticket_id, {"subject": "Again"})["subject"] == "Again"
    assert desk.stats()["update_calls"] == 2


def test_notes_are_comments(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket())
    first = desk.service.add_note(ticket_id, "Internal: <b>not html</b>")
    second = desk.service.add_note(ticket_id, "Visible to you", show_to_requester=True)
    notes = desk.service.list_notes(ticket_id)
    assert [(n["note_id"], n["text"], n["show_to_requester"]) for n in notes] == [
        (first, "Internal: <b>not html</b>", False),
        (second, "Visible to you", True),
    ]
    assert notes[0]["author"] == "Sandbox API User"
    with pytest.raises(ZohoRejected) as caught:
        desk.service.add_note(ticket_id, "")
    assert list(caught.value.fields or {}) == ["text"]
    desk.fault(target="note", kind="hang_after_commit", seconds=3, times=1)
    with pytest.raises(ZohoOutcomeUnknown):
        desk.service.add_note(ticket_id, "lost")
    assert desk.stats()["note_calls"] == 4
    with pytest.raises(TicketNotFound):
        desk.service.list_notes(UNKNOWN_ID)


def test_attachments_are_streamed_one_call_per_file(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket())
    files = [
        Upload(name="log.txt", content_type="text/plain", stream=io.BytesIO(b"line\n" * 1000), size=5000),
        Upload(name="photo.png", content_type="image/png", stream=io.BytesIO(b"\x89PNG" + b"0" * 96), size=100),
    ]
    made = desk.service.attach(ticket_id, files)
    assert [(a["name"], a["size"]) for a in made] == [("log.txt", 5000), ("photo.png", 100)]
    assert desk.service.list_attachments(ticket_id) == made
    assert desk.service.get_full(ticket_id)["has_attachments"] is True
    desk.fault(target="upload", kind="status", status=500, times=1)
    more = [Upload(name="again.txt", content_type="text/plain", stream=io.BytesIO(b"x"), size=1)]
    with pytest.raises(ZohoOutcomeUnknown):
        desk.service.attach(ticket_id, more)
    with pytest.raises(TicketNotFound):
        desk.service.attach(UNKNOWN_ID, [Upload(name="a", content_type="text/plain", stream=io.BytesIO(b"a"), size=1)])


def test_a_failed_second_file_says_which_were_attached(desk: Desk) -> None:
    ticket_id, _ = desk.service.create(new_ticket())
    desk.control("POST", "settings", {"max_upload_bytes": 10})
    files = [
        Upload(name="small.txt", content_type="text/plain", stream=io.BytesIO(b"ok"), size=2),
        Upload(name="big.txt", content_type="text/plain", stream=io.BytesIO(b"x" * 50), size=50),
    ]
    with pytest.raises(ZohoRejected) as caught:
        desk.service.attach(ticket_id, files)
    assert list(caught.value.fields or {}) == ["file"]
    assert caught.value.extra["attached"] == [a["attachment_id"] for a in desk.service.list_attachments(ticket_id)]


def test_pick_values_has_departments_only(desk: Desk) -> None:
    assert desk.service.pick_values("departments") == [
        {"name": d["name"], "id": d["id"]} for d in desk.info["departments"]
    ]
    for kind in ("priorities", "statuses", "categories"):
        with pytest.raises(NotSupportedByService) as caught:
            desk.service.pick_values(kind)
        assert caught.value.status == 501 and caught.value.code == "not_supported_by_service"


def test_every_call_is_observed(desk: Desk) -> None:
    desk.service.create(new_ticket())
    assert [operation for operation, _ in desk.calls] == ["contacts", "contact_create", "create"]
    assert [outcome for _, outcome in desk.calls] == ["204", "200", "200"]  # no contact yet: the search is empty


def test_a_contact_created_meanwhile_is_found_again(desk: Desk) -> None:
    first, _ = desk.service.create(new_ticket())
    # The next search misses the contact (as when another call creates it between our search and our create):
    # Desk refuses the create as a duplicate, and the search is made again.
    desk.fault(target="contacts", kind="status", status=204, times=1)
    second, _ = desk.service.create(new_ticket(subject="Second"))
    assert desk.stored(second)["contactId"] == desk.stored(first)["contactId"]
    assert desk.stats()["contacts_created"] == 1
