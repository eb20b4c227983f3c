"""The Desk judge alone: (HTTP status, body, operation) to JSON or our errors, with ZOHO-API.md §4.6's payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from zoho_gateway.errors import (
    GatewayError,
    TicketNotFound,
    ZohoAuthFailed,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
    ZohoRateLimited,
    ZohoRejected,
    ZohoUnavailable,
)
from zoho_gateway.zoho.desk import wire
from zoho_gateway.zoho.desk.judge import ERROR_CODES, Operation, TokenRejected, field_errors, judge

# ZOHO-API.md §4.6, verbatim.
UNAUTHORIZED = {"errorCode": "UNAUTHORIZED", "message": "You are not authenticated to perform this operation."}
INVALID_OAUTH = {"errorCode": "INVALID_OAUTH", "message": "The OAuth Token you provided is invalid."}
ORG_MISMATCH = {"errorCode": "OAUTH_ORG_MISMATCH", "message": "The OAuthToken is not valid for specified organization"}
SAMPLE_TICKET = (
    '{"modifiedTime":"2022-06-27T17:12:35.000Z","statusType":"Open","subject":"tesa","departmentId":"97709xxxxxxxxxxx",'
    '"resolution":null,"contact":{"firstName":null,"lastName":"test","id":"97709xxxxxxxxxxxx","email":"test@test.com"},'
    '"createdTime":"2022-06-27T17:12:35.000Z","id":"97709xxxxxxxxxxx","priority":null,"status":"Open",'
    '"assignee":{"photoURL":"https://desk.zoho.eu/api/v1/agents/97709xxxxxxxxxxx/photo?orgId=2008xxxxx",'
    '"firstName":"TIP","lastName":"Labops","id":"97709xxxxxxxxxxx","email":"tip.labops@siemplify.co"},'
    '"ticketNumber":"102","description":"<div style=\\"font-size: 13px\\"><div>tetsta</div></div>",'
    '"department":{"name":"Siemplify","id":"97709xxxxxxxxxxx"},"email":"test@test.com","attachmentCount":"0",'
    '"assigneeId":"97709xxxxxxxxxxx","category":null,"dueDate":null}'
)


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def raised(status: int, payload: Any, operation: Operation = "get", retry_after: str | None = None) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        judge(status, payload if isinstance(payload, bytes) else body(payload), operation, retry_after)
    return caught.value


def test_every_listed_error_code_has_a_verdict() -> None:
    listed = {"UNAUTHORIZED", "INVALID_OAUTH", "SCOPE_MISMATCH", "OAUTH_ORG_MISMATCH", "FORBIDDEN"}
    listed |= {"LICENSE_ACCESS_LIMITED", "URL_NOT_FOUND", "METHOD_NOT_ALLOWED", "INVALID_DATA", "UNPROCESSABLE_ENTITY"}
    assert listed <= set(ERROR_CODES)


def test_success_is_the_json_and_a_204_is_none() -> None:
    assert judge(200, SAMPLE_TICKET.encode(), "get")["ticketNumber"] == "102"
    assert judge(204, b"", "list") is None


@pytest.mark.parametrize("status", [401, 403])
def test_invalid_oauth_asks_for_a_new_token_whatever_the_status(status: int) -> None:
    with pytest.raises(TokenRejected):
        judge(status, body(INVALID_OAUTH), "create")


def test_a_401_without_a_known_code_is_a_token_refusal_too() -> None:
    with pytest.raises(TokenRejected):
        judge(401, b"<html>no</html>", "get")


@pytest.mark.parametrize("payload", [UNAUTHORIZED, ORG_MISMATCH, {"errorCode": "SCOPE_MISMATCH", "message": "x"}])
def test_credential_codes_are_auth_failures(payload: dict[str, str]) -> None:
    error = raised(401, payload, "create")
    assert isinstance(error, ZohoAuthFailed) and error.extra["zoho_codes"] == [payload["errorCode"]]


def test_forbidden_and_a_bare_403_are_auth_failures() -> None:
    assert isinstance(raised(403, {"errorCode": "FORBIDDEN", "message": "no"}), ZohoAuthFailed)
    assert isinstance(raised(403, b"", "list"), ZohoAuthFailed)


@pytest.mark.parametrize("code", ["RESOURCE_NOT_FOUND", "URL_NOT_FOUND"])
def test_not_found_is_the_ticket_on_a_per_ticket_call_only(code: str) -> None:
    for operation in ("get", "update", "close", "note", "notes", "upload", "attachments"):
        assert isinstance(raised(404, {"errorCode": code, "message": "x"}, operation), TicketNotFound)
    error = raised(404, {"errorCode": code, "message": "x"}, "create")
    assert type(error) is ZohoBadResponse and error.extra["upstream_status"] == 404


def test_invalid_data_on_a_write_names_the_clients_fields() -> None:
    payload = {
        "errorCode": "INVALID_DATA",
        "message": "An invalid value has been passed in the request.",
        "errors": [
            {"fieldName": "/priority", "errorType": "invalid", "errorMessage": "Priority 'Urgent' does not exist"},
            {"fieldName": "/departmentId", "errorType": "invalid", "errorMessage": "Department does not exist"},
            {"fieldName": "/content", "errorType": "missing", "errorMessage": ""},
        ],
    }
    error = raised(422, payload, "create")
    assert isinstance(error, ZohoRejected)
    assert error.fields == {
        "priority": ["Priority 'Urgent' does not exist"],
        "department": ["Department does not exist"],
        "text": ["missing"],
    }


def test_a_top_level_field_name_counts_too() -> None:
    payload = {"errorCode": "INVALID_DATA", "message": "m", "fieldName": "/subject", "errorType": "missing"}
    assert field_errors(payload) == {"subject": ["m"]}


def test_unprocessable_on_a_read_is_ours_not_the_clients() -> None:
    error = raised(422, {"errorCode": "UNPROCESSABLE_ENTITY", "message": "limit"}, "list")
    assert type(error) is ZohoBadResponse and error.extra["upstream_status"] == 422


def test_a_refused_org_id_is_an_auth_failure() -> None:
    payload = {"errorCode": "INVALID_DATA", "message": "m", "errors": [{"fieldName": "orgId", "errorType": "missing"}]}
    assert isinstance(raised(400, payload, "create"), ZohoAuthFailed)


def test_rate_limit_by_code_or_status_honours_retry_after() -> None:
    error = raised(429, {"errorCode": "TOO_MANY_REQUESTS", "message": "slow"}, "get", retry_after="7")
    assert isinstance(error, ZohoRateLimited) and error.retry_after == 7
    assert isinstance(raised(429, b"", "create"), ZohoRateLimited)


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_after_an_adding_write_may_have_stored_it(status: int) -> None:
    payload = {"errorCode": "INTERNAL_SERVER_ERROR", "message": "x"}
    for operation in ("create", "note", "upload", "contact_create"):
        assert isinstance(raised(status, payload, operation), ZohoOutcomeUnknown)


def test_a_503_created_nothing() -> None:
    error = raised(503, b"busy", "create", retry_after="3")
    assert type(error) is ZohoUnavailable and error.retry_after == 3


def test_a_server_error_on_a_read_or_a_patch_is_a_bad_response() -> None:
    for operation in ("get", "update", "close"):
        error = raised(500, {"errorCode": "INTERNAL_SERVER_ERROR", "message": "x"}, operation)
        assert type(error) is ZohoBadResponse and error.extra["upstream_status"] == 500
    assert type(raised(504, b"", "get")) is ZohoUnavailable


def test_a_refusal_code_on_a_5xx_is_still_a_refusal() -> None:
    assert isinstance(raised(500, {"errorCode": "INVALID_DATA", "message": "m"}, "create"), ZohoRejected)


def test_an_unreadable_success_of_a_create_may_have_created_it() -> None:
    assert isinstance(raised(200, b"<html>", "create"), ZohoOutcomeUnknown)
    assert type(raised(200, b"<html>", "get")) is ZohoBadResponse


def test_the_sample_ticket_reads_as_the_five_seed_fields() -> None:
    record = json.loads(SAMPLE_TICKET)
    assert wire.ticket(record) == {
        "ticket_id": "97709xxxxxxxxxxx",
        "status": "Open",
        "technician_assigned": "TIP Labops",
        "technician_contact_email": "tip.labops@siemplify.co",
        "technician_comments": None,
    }
    full = wire.full_ticket(record)
    assert full["description"] == "tetsta" and full["department"] == "Siemplify"
    assert full["requester"] == {"name": "test", "email": "test@test.com"}
    assert full["created_at"] == "2022-06-27T17:12:35.000Z" and full["has_attachments"] is False


def test_no_assignee_is_unassigned() -> None:
    record = {**json.loads(SAMPLE_TICKET), "assignee": None, "assigneeId": None, "resolution": "Replaced it"}
    seed = wire.ticket(record)
    assert (seed["technician_assigned"], seed["technician_contact_email"]) == ("Unassigned", None)
    assert seed["technician_comments"] == "Replaced it"
