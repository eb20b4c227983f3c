"""The ticket service's create contract and ``find_created``, over real sockets against the sandbox.

Each test drives ``TicketService`` of a real gateway (``make_gateway(...).gateway.tickets``) whose client
talks HTTP to the sandbox; faults are injected through the sandbox's control API. ZOHO_TIMEOUT is 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.servers import Sandbox, ThreadedGateway
from zoho_gateway.config import ConfigError, load_config
from zoho_gateway.errors import (
    TicketNotFound,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
    ZohoRateLimited,
    ZohoRejected,
    ZohoTokenThrottled,
    ZohoTokenUnavailable,
    ZohoUnavailable,
)
from zoho_gateway.zoho import search, tickets
from zoho_gateway.zoho.model import NewTicket
from zoho_gateway.zoho.service import WINDOW_BEFORE_SEND
from zoho_gateway.zoho.tickets import TicketService

REF_FIELD = "udf_sline_1"
DAY_MS = 24 * 3600 * 1000

MakeGateway = Callable[..., ThreadedGateway]


def new_ticket(**changes: Any) -> NewTicket:
    ticket: NewTicket = {
        "subject": "Printer on fire",
        "description": "Third floor, next to the kitchen.\nPlease hurry.",
        "requester_email": "ana@example.com",
    }
    ticket.update(changes)  # type: ignore[typeddict-item]
    return ticket


def count(sandbox: Sandbox) -> int:
    answer = requests.get(f"{sandbox.url}/_sandbox/tickets/count", timeout=5)
    answer.raise_for_status()
    return int(answer.json()["count"])


def stored(sandbox: Sandbox, ticket_id: str) -> dict[str, Any]:
    answer = requests.get(f"{sandbox.url}/_sandbox/tickets/{ticket_id}", timeout=5)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


def only_id(sandbox: Sandbox) -> str:
    every = sandbox.tickets()
    assert len(every) == 1, every
    return str(every[0]["id"])


@pytest.fixture
def with_ref(make_gateway: MakeGateway) -> TicketService:
    service: TicketService = make_gateway(ZOHO_REF_FIELD=REF_FIELD).gateway.tickets
    return service


@pytest.fixture
def by_content(make_gateway: MakeGateway) -> TicketService:
    service: TicketService = make_gateway().gateway.tickets
    return service


# ---- create ----------------------------------------------------------------------------------------


def test_create_with_ref_field_writes_the_reference_into_the_udf(with_ref: TicketService, sandbox: Sandbox) -> None:
    ticket_id, ticket = with_ref.create(new_ticket(), ref="ref_abc-1")
    assert ticket["ticket_id"] == ticket_id
    assert stored(sandbox, ticket_id)["udf_fields"] == {REF_FIELD: "ref_abc-1"}


def test_create_without_ref_field_or_ref_writes_no_udf(
    with_ref: TicketService, by_content: TicketService, sandbox: Sandbox
) -> None:
    first, _ = by_content.create(new_ticket(), ref="ref_abc-1")
    second, _ = with_ref.create(new_ticket())
    assert stored(sandbox, first)["udf_fields"] == {}
    assert stored(sandbox, second)["udf_fields"] == {}


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "hang_after_commit", "seconds": 3},
        {"kind": "reset_after_commit"},
        {"kind": "status_after_commit", "status": 500},
        {"kind": "status_after_commit", "status": 502},
        {"kind": "status_after_commit", "status": 504},
    ],
    ids=lambda fault: "-".join(str(v) for v in fault.values()),
)
def test_a_create_that_lost_its_answer_is_outcome_unknown_and_found_again(
    fault: dict[str, Any], with_ref: TicketService, sandbox: Sandbox
) -> None:
    sandbox.fault(target="create", times=1, **fault)
    sent_at = time.time()
    with pytest.raises(ZohoOutcomeUnknown) as info:
        with_ref.create(new_ticket(), ref="ref-lost-1")
    assert info.value.retry_after is None  # waiting settles nothing: searching does
    assert count(sandbox) == 1  # committed once, never re-sent
    assert with_ref.find_created(new_ticket(), ref="ref-lost-1", sent_at=sent_at) == [only_id(sandbox)]


def test_a_lost_answer_is_found_by_content_without_ref_field(by_content: TicketService, sandbox: Sandbox) -> None:
    sandbox.fault(target="create", kind="reset_after_commit", times=1)
    sent_at = time.time()
    with pytest.raises(ZohoOutcomeUnknown):
        by_content.create(new_ticket(), ref="ref-lost-2")
    assert by_content.find_created(new_ticket(), ref="ref-lost-2", sent_at=sent_at) == [only_id(sandbox)]


@pytest.mark.parametrize("kind", ["garbage", "html"])
def test_an_unreadable_answer_to_a_create_is_outcome_unknown(
    kind: str, with_ref: TicketService, sandbox: Sandbox
) -> None:
    sandbox.fault(target="create", kind=kind, times=1)
    with pytest.raises(ZohoOutcomeUnknown):
        with_ref.create(new_ticket(), ref="ref-x")
    assert sandbox.stats()["create_calls"] == 1  # never re-sent


def test_503_before_the_commit_is_unavailable_and_nothing_was_created(
    with_ref: TicketService, sandbox: Sandbox
) -> None:
    sandbox.fault(target="create", kind="status", status=503, times=1)
    with pytest.raises(ZohoUnavailable) as info:
        with_ref.create(new_ticket(), ref="ref-503")
    assert type(info.value) is ZohoUnavailable
    assert count(sandbox) == 0
    assert with_ref.find_created(new_ticket(), ref="ref-503", sent_at=time.time()) == []


def test_429_is_rate_limited_a_kind_of_unavailable(with_ref: TicketService, sandbox: Sandbox) -> None:
    sandbox.fault(target="create", kind="rate_limit", times=1)
    with pytest.raises(ZohoRateLimited):
        with_ref.create(new_ticket(), ref="ref-429")
    assert count(sandbox) == 0


@pytest.mark.parametrize(("kind", "error"), [("throttle", ZohoTokenThrottled), ("invalid_code", ZohoTokenUnavailable)])
def test_no_token_is_unavailable_and_nothing_was_sent(
    kind: str, error: type[ZohoUnavailable], with_ref: TicketService, sandbox: Sandbox
) -> None:
    sandbox.fault(target="token", kind=kind)
    with pytest.raises(error):
        with_ref.create(new_ticket(), ref="ref-token")
    assert sandbox.stats().get("create_calls", 0) == 0 and count(sandbox) == 0


def test_zoho_unreachable_is_unavailable(make_gateway: MakeGateway, sandbox: Sandbox) -> None:
    service = make_gateway(ZOHO_API_BASE_URL="http://127.0.0.1:9", ZOHO_RETRY_BUDGET="0.5").gateway.tickets
    with pytest.raises(ZohoUnavailable):
        service.create(new_ticket(), ref="ref-down")
    assert count(sandbox) == 0


def test_a_refused_value_is_rejected(with_ref: TicketService, sandbox: Sandbox) -> None:
    with pytest.raises(ZohoRejected) as info:
        with_ref.create(new_ticket(priority={"name": "No such priority"}), ref="ref-4001")
    assert info.value.extra["zoho_codes"] == [4001]
    assert count(sandbox) == 0


def test_zoho_refusing_the_reference_field_is_the_operators_problem_not_the_clients(
    with_ref: TicketService, sandbox: Sandbox
) -> None:
    refusal = {
        "response_status": {
            "status_code": 4000,
            "messages": [{"status_code": 4001, "field": REF_FIELD, "type": "failed", "message": "Invalid field"}],
            "status": "failed",
        }
    }
    sandbox.fault(target="create", kind="status", status=400, body=refusal, times=2)
    with pytest.raises(ZohoBadResponse) as info:
        with_ref.create(new_ticket(), ref="ref-udf")
    assert "ZOHO_REF_FIELD" in info.value.message
    assert info.value.extra == {"upstream_status": 400, "zoho_codes": [4001]}  # a 4xx: refused for good
    with pytest.raises(ZohoRejected):  # without a reference nothing of the operator's was sent
        with_ref.create(new_ticket())


# ---- find_created with a reference field -----------------------------------------------------------


def test_exact_search_finds_the_one_ticket_among_lookalikes(with_ref: TicketService) -> None:
    sent_at = time.time()
    wanted, _ = with_ref.create(new_ticket(), ref="ref-one")
    with_ref.create(new_ticket(), ref="ref-two")
    with_ref.create(new_ticket(), ref="REF-ONE")  # SDP's "is" may ignore case; references do not
    with_ref.create(new_ticket())
    assert with_ref.find_created(new_ticket(), ref="ref-one", sent_at=sent_at) == [wanted]
    assert with_ref.find_created(new_ticket(), ref="ref-three", sent_at=sent_at) == []


def test_exact_search_ignores_time_and_content(with_ref: TicketService, sandbox: Sandbox) -> None:
    # The reference alone identifies the create, however long ago and whatever Zoho did to the text.
    ticket_id, _ = with_ref.create(new_ticket(description="<div>changed</div>"), ref="ref-old")
    sandbox.patch_ticket(ticket_id, created_time=int(time.time() * 1000) - 30 * DAY_MS)
    assert with_ref.find_created(new_ticket(), ref="ref-old", sent_at=time.time()) == [ticket_id]


# ---- find_created by content ---------------------------------------------------------------------------


def test_content_search_finds_the_one_ticket(by_content: TicketService) -> None:
    sent_at = time.time()
    wanted, _ = by_content.create(new_ticket())
    by_content.create(new_ticket(requester_email="bob@example.com"))  # same subject, another requester
    by_content.create(new_ticket(subject="Printer on fire again"))
    by_content.create(new_ticket(description="Second floor."))
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == [wanted]


def test_content_search_ignores_a_ticket_outside_the_window(by_content: TicketService, sandbox: Sandbox) -> None:
    old, _ = by_content.create(new_ticket())
    sandbox.patch_ticket(old, created_time=int(time.time() * 1000) - DAY_MS)
    sent_at = time.time()
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == []
    recent, _ = by_content.create(new_ticket())
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == [recent]


def test_content_search_window_allows_for_clock_skew(by_content: TicketService, sandbox: Sandbox) -> None:
    # Zoho's clock half a minute behind ours: the ticket is stamped before our sent_at, still inside the window
    # (a minute); an identical ticket stamped further back is another create's, never this send's.
    sent_at = time.time()
    ticket_id, _ = by_content.create(new_ticket())
    sandbox.patch_ticket(ticket_id, created_time=int((sent_at - 30) * 1000))
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == [ticket_id]
    sandbox.patch_ticket(ticket_id, created_time=int((sent_at - WINDOW_BEFORE_SEND - 60) * 1000))
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == []
    sandbox.patch_ticket(ticket_id, created_time=int((sent_at - 120) * 1000))  # two minutes: inside until 300 s
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == []


def test_content_search_returns_every_identical_ticket(by_content: TicketService) -> None:
    sent_at = time.time()
    first, _ = by_content.create(new_ticket())
    second, _ = by_content.create(new_ticket())
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == [first, second]


def test_content_search_matches_a_description_zoho_stored_as_html(by_content: TicketService) -> None:
    sent_at = time.time()
    ticket_id, _ = by_content.create(
        new_ticket(description="<div>Third floor, next to the kitchen.<br>Please hurry.</div>")
    )
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == [ticket_id]


def test_client_text_cannot_change_the_query(by_content: TicketService) -> None:
    hostile = '"}], "search_criteria": [{"field": "id", "condition": "greater than", "value": "0"}], "x": [{"a": "'
    sent_at = time.time()
    by_content.create(new_ticket())
    wanted, _ = by_content.create(new_ticket(subject=hostile, description=hostile + "\\ \u00e9 \U0001f525"))
    found = by_content.find_created(
        new_ticket(subject=hostile, description=hostile + "\\ \u00e9 \U0001f525"), ref="r", sent_at=sent_at
    )
    assert found == [wanted]


def test_content_search_pages_through_every_candidate(
    by_content: TicketService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "MAX_ROW_COUNT", 2)
    sent_at = time.time()
    made = [by_content.create(new_ticket())[0] for _ in range(5)]
    assert by_content.find_created(new_ticket(), ref="r", sent_at=sent_at) == made


def test_a_search_cut_short_by_the_page_cap_cannot_settle_anything(
    by_content: TicketService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "MAX_ROW_COUNT", 1)
    monkeypatch.setattr(tickets, "MAX_PAGES", 2)
    sent_at = time.time()
    by_content.create(new_ticket(description="one"))
    by_content.create(new_ticket(description="two"))
    by_content.create(new_ticket())
    with pytest.raises(ZohoBadResponse):
        by_content.find_created(new_ticket(), ref="r", sent_at=sent_at)


# ---- when the search itself fails ----------------------------------------------------------------------


def test_search_during_an_outage_is_unavailable_not_an_empty_answer(with_ref: TicketService, sandbox: Sandbox) -> None:
    with_ref.create(new_ticket(), ref="ref-1")
    sandbox.fault(target="list", kind="status", status=503)
    with pytest.raises(ZohoUnavailable):
        with_ref.find_created(new_ticket(), ref="ref-1", sent_at=time.time())


def test_a_single_failed_search_page_is_retried_like_every_get(with_ref: TicketService, sandbox: Sandbox) -> None:
    ticket_id, _ = with_ref.create(new_ticket(), ref="ref-1")
    sandbox.fault(target="list", kind="reset_connection", times=1)
    assert with_ref.find_created(new_ticket(), ref="ref-1", sent_at=time.time()) == [ticket_id]
    assert sandbox.stats()["list_calls"] == 2


def test_a_search_answer_is_judged_by_its_body(with_ref: TicketService, sandbox: Sandbox) -> None:
    # HTTP 200 with a failed list envelope is a failure, never "no such ticket".
    failed = {"response_status": [{"status_code": 4000, "status": "failed", "messages": [{"status_code": 4004}]}]}
    sandbox.fault(target="list", kind="status", status=200, body=failed, times=1)
    with pytest.raises(ZohoBadResponse):
        with_ref.find_created(new_ticket(), ref="ref-1", sent_at=time.time())
    rate_limited = {"response_status": [{"status": "failed", "messages": [{"status_code": 4015}]}]}
    sandbox.fault(target="list", kind="status", status=200, body=rate_limited)
    with pytest.raises(ZohoRateLimited):
        with_ref.find_created(new_ticket(), ref="ref-1", sent_at=time.time())


@pytest.mark.parametrize("kind", ["garbage", "html"])
def test_an_unreadable_search_answer_is_a_bad_response(kind: str, with_ref: TicketService, sandbox: Sandbox) -> None:
    sandbox.fault(target="list", kind=kind)
    with pytest.raises(ZohoBadResponse):
        with_ref.find_created(new_ticket(), ref="ref-1", sent_at=time.time())


def test_a_refused_search_is_a_bad_response_never_an_empty_answer(make_gateway: MakeGateway) -> None:
    # The sandbox refuses a UDF name it does not know the shape of, as SDP refuses an unknown field.
    service = make_gateway().gateway.tickets
    with pytest.raises(ZohoBadResponse):
        service._client.list_requests({"search_criteria": {"field": "nonsense", "condition": "is", "value": "x"}})


# ---- the setting -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["udf_fields.udf_sline_1", "subject", "udf_sline", "udf_sline_1; drop", "UDF_SLINE_1"]
)
def test_zoho_ref_field_must_be_a_udf_name(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"GATEWAY_SANDBOX": "1", "ZOHO_REF_FIELD": value})
    message = str(info.value)
    assert "ZOHO_REF_FIELD" in message and "\n" not in message


def test_zoho_ref_field_is_optional() -> None:
    assert load_config({"GATEWAY_SANDBOX": "1"}).ref_field is None
    assert load_config({"GATEWAY_SANDBOX": "1", "ZOHO_REF_FIELD": " udf_sline_3 "}).ref_field == "udf_sline_3"


# ---- rows that carry less than the full entity (no sockets: the client's answers are given) -------------------


class TrimmedRows:
    """A client whose list rows lack ``description`` (as SDP list views may trim it); counts full reads."""

    def __init__(self, rows: list[dict[str, Any]], full: dict[str, dict[str, Any]]) -> None:
        self.rows = rows
        self.full = full
        self.reads: list[str] = []

    def list_requests(self, list_info: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        return self.rows, False

    def get_request(self, ticket_id: str) -> dict[str, Any]:
        self.reads.append(ticket_id)
        if ticket_id not in self.full:
            raise TicketNotFound("gone")
        return self.full[ticket_id]


def row(ticket_id: str, email: str | None = "ana@example.com", subject: str = "Printer on fire") -> dict[str, Any]:
    return {"id": ticket_id, "subject": subject, "requester": {"email_id": email, "name": "Ana"}}


def test_rows_without_a_description_are_read_in_full() -> None:
    sent = new_ticket()
    client = TrimmedRows(
        [
            row("1"),
            row("2"),
            row("3", email=None),
            row("4", email="bob@example.com"),
            row("5"),
            row("6", email="Ana@Example.com", subject="PRINTER  on fire"),
            row("7", subject="Printer on fire, again"),
        ],
        {
            "1": {"id": "1", "description": "<div>Third floor, next to the kitchen.<br>Please hurry.</div>"},
            "2": {"id": "2", "description": "Something else"},
            "3": {"id": "3", "description": sent["description"]},
            "6": {"id": "6", "description": sent["description"]},
        },
    )
    service = TicketService(client)  # type: ignore[arg-type]
    # 3: Zoho hid the requester's email, so its criterion stands; 4 and 7: another requester or subject (Zoho
    # ignored a criterion); 5: deleted between the list and the read; 6: case and spaces as SDP's "is" ignores.
    assert service.find_created(sent, ref="r", sent_at=time.time()) == ["1", "3", "6"]
    assert client.reads == ["1", "2", "3", "5", "6"]
