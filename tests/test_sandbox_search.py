"""The sandbox's request search (``list_info``/``search_criteria``), UDFs and commit-then-lose faults."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.helpers import TIMEOUT, Served, control, failure, fault, mint, sdp_create, sdp_headers, stats
from tests.servers import Sandbox

T0 = 1_700_000_000_000  # epoch ms; tickets are back-dated to T0 + n minutes


def search(sandbox: Served, token: str, list_info: Any, prefix: str = "/api/v3") -> requests.Response:
    return requests.get(
        f"{sandbox.url}{prefix}/requests",
        headers=sdp_headers(token),
        params={"input_data": json.dumps({"list_info": list_info})},
        timeout=TIMEOUT,
    )


def subjects(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["subject"] for item in answer.json()["requests"]]


@pytest.fixture
def five(sandbox: Sandbox) -> str:
    """Five tickets created a minute apart (back-dated); returns a valid token."""
    token = mint(sandbox)
    rows = [
        ("Printer on fire", "ann@example.com", "Open", "<div>The <b>printer</b> is on fire</div>", "ref-a"),
        ("Printer jammed", "bob@example.com", "Closed", "Paper everywhere", "ref-b"),
        ("VPN down", "ann@example.com", "In Progress", "Cannot reach the VPN", None),
        ("Laptop slow", "cid@example.com", "Open", "It is slow &amp; hot", "ref-d"),
        ("New monitor", "bob@example.com", "On Hold", None, "ref-e"),
    ]
    for minute, (subject, email, status, description, ref) in enumerate(rows):
        body: dict[str, Any] = {"subject": subject, "requester": {"email_id": email}, "status": {"name": status}}
        if description is not None:
            body["description"] = description
        if ref is not None:
            body["udf_fields"] = {"udf_sline_1": ref}
        ticket_id = sdp_create(sandbox, token, body).json()["request"]["id"]
        control(sandbox, "PATCH", f"tickets/{ticket_id}", {"created_time": T0 + minute * 60_000}).raise_for_status()
    return token


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"field": "subject", "condition": "is", "value": "printer on fire"}, ["Printer on fire"]),
        ({"field": "subject", "condition": "contains", "value": "PRINTER"}, ["Printer on fire", "Printer jammed"]),
        ({"field": "subject", "condition": "starts with", "value": "vpn"}, ["VPN down"]),
        ({"field": "subject", "condition": "ends with", "value": "slow"}, ["Laptop slow"]),
        (
            {"field": "subject", "condition": "not contains", "value": "printer"},
            ["VPN down", "Laptop slow", "New monitor"],
        ),
        (
            {"field": "requester.email_id", "condition": "is", "value": "bob@example.com"},
            ["Printer jammed", "New monitor"],
        ),
        (
            {"field": "status.name", "condition": "is not", "value": "Open"},
            ["Printer jammed", "VPN down", "New monitor"],
        ),
        (
            {"field": "status.name", "condition": "is", "values": ["Closed", "On Hold"]},
            ["Printer jammed", "New monitor"],
        ),
        ({"field": "udf_fields.udf_sline_1", "condition": "is", "value": "ref-d"}, ["Laptop slow"]),
        ({"field": "udf_sline_1", "condition": "is", "value": "ref-b"}, ["Printer jammed"]),
        ({"field": "udf_fields.udf_sline_1", "condition": "is", "value": None}, ["VPN down"]),
        ({"field": "display_id", "condition": "is", "value": "103"}, ["VPN down"]),
        ({"field": "display_id", "condition": "greater than", "value": "103"}, ["Laptop slow", "New monitor"]),
        ({"field": "description", "condition": "contains", "value": "printer is on"}, ["Printer on fire"]),
        ({"field": "description", "condition": "is", "value": "The printer is on fire"}, ["Printer on fire"]),
        ({"field": "description", "condition": "is", "value": "it is slow & hot"}, ["Laptop slow"]),
        (
            {"field": "created_time", "condition": "greater than", "value": str(T0 + 120_000)},
            ["Laptop slow", "New monitor"],
        ),
        ({"field": "created_time", "condition": "lesser than", "value": str(T0 + 60_000)}, ["Printer on fire"]),
        ({"field": "created_time", "condition": "gte", "value": T0 + 240_000}, ["New monitor"]),
        (
            {"field": "created_time", "condition": "between", "values": [str(T0 + 60_000), str(T0 + 180_000)]},
            ["Printer jammed", "VPN down", "Laptop slow"],
        ),
        (
            {"field": "created_time", "condition": "not between", "values": [str(T0 + 60_000), str(T0 + 180_000)]},
            ["Printer on fire", "New monitor"],
        ),
    ],
)
def test_single_criterion(sandbox: Sandbox, five: str, criteria: dict[str, Any], expected: list[str]) -> None:
    assert subjects(search(sandbox, five, {"search_criteria": criteria})) == expected


def test_list_of_criteria_joined_by_logical_operators(sandbox: Sandbox, five: str) -> None:
    # The reconciliation query without a reference field: requester, subject, description, time window.
    window = [str(T0 - 60_000), str(T0 + 60_000)]
    criteria = [
        {"field": "requester.email_id", "condition": "is", "value": "ann@example.com"},
        {"field": "subject", "condition": "is", "value": "Printer on fire", "logical_operator": "AND"},
        {"field": "created_time", "condition": "between", "values": window, "logical_operator": "AND"},
    ]
    assert subjects(search(sandbox, five, {"search_criteria": criteria})) == ["Printer on fire"]

    either = [
        {"field": "subject", "condition": "contains", "value": "vpn"},
        {"field": "subject", "condition": "contains", "value": "laptop", "logical_operator": "OR"},
    ]
    assert subjects(search(sandbox, five, {"search_criteria": either})) == ["VPN down", "Laptop slow"]


def test_children_group_with_their_parent(sandbox: Sandbox, five: str) -> None:
    # ann AND (status Open OR status In Progress) ... then AND NOT "fire"
    criteria = [
        {
            "field": "requester.email_id",
            "condition": "is",
            "value": "ann@example.com",
            "children": [
                {
                    "field": "status.name",
                    "condition": "is",
                    "value": "Open",
                    "children": [
                        {"field": "status.name", "condition": "is", "value": "In Progress", "logical_operator": "OR"}
                    ],
                    "logical_operator": "AND",
                }
            ],
        },
        {"field": "subject", "condition": "not contains", "value": "fire", "logical_operator": "AND"},
    ]
    assert subjects(search(sandbox, five, {"search_criteria": criteria})) == ["VPN down"]


def test_paging_sorting_and_total_count(sandbox: Sandbox, five: str) -> None:
    first = search(
        sandbox, five, {"row_count": 2, "sort_field": "created_time", "sort_order": "desc", "get_total_count": True}
    )
    assert subjects(first) == ["New monitor", "Laptop slow"]
    info = first.json()["list_info"]
    assert info == {
        "has_more_rows": True,
        "start_index": 1,
        "row_count": 2,
        "sort_field": "created_time",
        "sort_order": "desc",
        "total_count": 5,
    }
    last = search(sandbox, five, {"row_count": 2, "start_index": 5, "sort_field": "created_time", "sort_order": "desc"})
    assert subjects(last) == ["Printer on fire"] and last.json()["list_info"]["has_more_rows"] is False
    by_subject = search(sandbox, five, {"sort_field": "subject"})
    assert subjects(by_subject) == sorted(subjects(by_subject), key=str.lower)
    filtered = search(
        sandbox,
        five,
        {
            "search_criteria": {"field": "subject", "condition": "contains", "value": "printer"},
            "get_total_count": "true",
        },
    )
    assert filtered.json()["list_info"]["total_count"] == 2


def test_row_count_is_capped_at_100(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    assert search(sandbox, token, {"row_count": 1000}).json()["list_info"]["row_count"] == 0
    assert search(sandbox, token, {"row_count": 1000}).status_code == 200


def test_search_fields_and_portal_prefix(sandbox: Sandbox, five: str) -> None:
    answer = search(
        sandbox, five, {"search_fields": {"subject": "printer", "status.name": "open"}}, "/app/itdesk/api/v3"
    )
    assert subjects(answer) == ["Printer on fire"]


@pytest.mark.parametrize(
    ("list_info", "code", "field"),
    [
        ({"search_criteria": {"field": "nonsense", "condition": "is", "value": "x"}}, 4001, "field"),
        ({"search_criteria": {"field": "subject", "condition": "resembles", "value": "x"}}, 4001, "condition"),
        ({"search_criteria": {"field": "subject", "condition": "is"}}, 4001, "value"),
        ({"search_criteria": {"condition": "is", "value": "x"}}, 4001, "field"),
        ({"search_criteria": {"field": "created_time", "condition": "between", "values": ["1"]}}, 4001, "values"),
        (
            {"search_criteria": {"field": "created_time", "condition": "greater than", "value": "yesterday"}},
            4001,
            "values",
        ),
        ({"search_criteria": [{"field": "subject", "condition": "is", "value": "x"}, 5]}, 4001, "search_criteria"),
        (
            {"search_criteria": [{"field": "subject", "condition": "is", "value": "x", "logical_operator": "XOR"}]},
            4001,
            "logical_operator",
        ),
        ({"search_criteria": {"field": "subject", "condition": "is", "value": "x", "children": []}}, 4001, "children"),
        ({"search_criteria": []}, 4001, "search_criteria"),
        ({"sort_field": "nonsense"}, 4001, "field"),
        ({"sort_order": "sideways"}, 4001, "sort_order"),
        ({"row_count": 0}, 4001, "row_count"),
        ({"start_index": "x"}, 4001, "start_index"),
        ({"rows": 5}, 4001, "rows"),
    ],
)
def test_malformed_list_info_is_refused(
    sandbox: Sandbox, list_info: dict[str, Any], code: int, field: str
) -> None:
    answer = search(sandbox, mint(sandbox), list_info)
    assert answer.status_code == 400
    detail = answer.json()["response_status"]["messages"][0]
    assert (detail["status_code"], detail["field"]) == (code, field)
    assert answer.json()["response_status"]["status_code"] == 4000


def test_input_data_that_is_not_json_is_4000(sandbox: Sandbox) -> None:
    answer = requests.get(
        f"{sandbox.url}/api/v3/requests",
        headers=sdp_headers(mint(sandbox)),
        params={"input_data": "{list_info"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400 and answer.json() == failure(4000, "input_data is not valid JSON")


# ---- UDFs -------------------------------------------------------------------------------------------


def test_udf_fields_are_stored_and_returned(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    udfs = {"udf_sline_1": "gw-ref-1", "udf_char2": "legacy", "udf_long_3": 7, "udf_sline_4": None}
    entity = sdp_create(sandbox, token, {"subject": "With UDFs", "udf_fields": udfs}).json()["request"]
    assert entity["udf_fields"] == udfs
    assert control(sandbox, "GET", f"tickets/{entity['id']}").json()["udf_fields"] == udfs


@pytest.mark.parametrize(
    ("udfs", "field"),
    [
        ({"ref": "x"}, "ref"),
        ({"udf_sline_1": {"nested": 1}}, "udf_sline_1"),
        ({"udf_sline_1": "x" * 251}, "udf_sline_1"),
        ("udf_sline_1=x", "udf_fields"),
    ],
)
def test_bad_udf_fields_are_4001(sandbox: Sandbox, udfs: Any, field: str) -> None:
    answer = sdp_create(sandbox, mint(sandbox), {"subject": "x", "udf_fields": udfs})
    assert answer.status_code == 400
    assert answer.json()["response_status"]["messages"][0]["field"] == field
    assert sandbox.ticket_count() == 0


# ---- faults that commit, then lose the answer -------------------------------------------------------


def test_reset_after_commit_stores_one_ticket_and_drops_the_connection(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="reset_after_commit", times=1)
    with pytest.raises(requests.ConnectionError):
        sdp_create(sandbox, token, {"subject": "Lost answer", "udf_fields": {"udf_sline_1": "ref-1"}})
    assert sandbox.ticket_count() == 1 and stats(sandbox)["creates"] == 1
    found = search(sandbox, token, {"search_criteria": {"field": "udf_sline_1", "condition": "is", "value": "ref-1"}})
    assert subjects(found) == ["Lost answer"]


def test_hang_after_commit_outlasts_the_client_timeout(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="hang_after_commit", seconds=0.5, times=1)
    with pytest.raises(requests.ReadTimeout):
        sdp_create(sandbox, token, {"subject": "Slow"}, timeout=(TIMEOUT, 0.2))
    assert sandbox.ticket_count() == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_status_after_commit_answers_5xx_for_a_stored_ticket(sandbox: Sandbox, status: int) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="status_after_commit", status=status, times=1, retry_after=3)
    answer = sdp_create(sandbox, token, {"subject": "Committed"})
    assert answer.status_code == status and answer.headers["Retry-After"] == "3"
    assert answer.json() == failure(4004, "Internal error")
    assert sandbox.ticket_count() == 1


def test_status_after_commit_with_a_proxy_page(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="status_after_commit", status=502, body="<html>bad gateway</html>", times=1)
    answer = sdp_create(sandbox, token)
    assert answer.status_code == 502 and answer.text == "<html>bad gateway</html>"
    assert sandbox.ticket_count() == 1


def test_after_commit_faults_aimed_at_api_skip_reads(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="api", kind="status_after_commit", status=503, times=1)
    assert search(sandbox, token, {}).status_code == 200  # a read does not use the fault up
    assert sdp_create(sandbox, token).status_code == 503
    assert sdp_create(sandbox, token).status_code == 201
    assert sandbox.ticket_count() == 2


@pytest.mark.parametrize(
    "spec",
    [
        {"target": "get", "kind": "reset_after_commit"},
        {"target": "token", "kind": "hang_after_commit"},
        {"target": "create", "kind": "status_after_commit"},
    ],
)
def test_after_commit_faults_need_a_write_target_and_a_status(sandbox: Sandbox, spec: dict[str, Any]) -> None:
    assert control(sandbox, "POST", "faults", spec).status_code == 400


def test_probability_makes_a_share_of_creates_lose_their_answer(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="status_after_commit", status=503, probability=0.2)
    answers = [sdp_create(sandbox, token).status_code for _ in range(200)]
    assert set(answers) == {201, 503}
    assert 15 <= answers.count(503) <= 70  # 40 expected; far outside only by a broken draw
    assert sandbox.ticket_count() == 200 and stats(sandbox)["faults_fired"] == answers.count(503)
    described = control(sandbox, "GET", "faults").json()["faults"][0]
    assert described["probability"] == 0.2 and described["remaining"] is None


@pytest.mark.parametrize("probability", [0, 1.5, "half"])
def test_probability_must_be_a_share(sandbox: Sandbox, probability: Any) -> None:
    spec = {"target": "create", "kind": "reset_after_commit", "probability": probability}
    assert control(sandbox, "POST", "faults", spec).status_code == 400
