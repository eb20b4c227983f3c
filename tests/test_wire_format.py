"""Pure unit tests of the wire format: ``zoho/transform.py`` (flat ticket -> ``input_data``),
``zoho/parser.py`` (every ServiceDesk Plus answer judged by its body) and the token-answer judgement of
``zoho/oauth.py``.

The payloads in ``tests/fixtures/`` are the real samples of ZOHO-API.md, copied verbatim:

- ``sdp_get_request.json``: §4.1 GET /api/v3/requests/{id} (demisto/content RESPONSE_LIST_SINGLE_REQUEST);
  ``sdp_get_request_assigned.json`` is the same with §4.1's technician object substituted (derived, as
  the doc says).
- ``sdp_get_resolution.json`` (§4.1 resolutions endpoint), ``sdp_list_requests.json`` (§4.2, array envelope).
- ``sdp_error_*.json``: §4.3 (vendor 4001/4007 without top-level status_code, 4002 with the typo removed;
  observed 4017, 4009, 4021 and the 4001 EXTRA_KEY_FOUND_IN_JSON).
- ``token_*.json``: §4.4/§4.5 token answers (the §4.4 placeholder replaced by a 1000.x.y string, as the
  doc says).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN
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
from zoho_gateway.zoho import parser
from zoho_gateway.zoho.oauth import (
    TokenCredentialsRejected,
    TokenEndpointUnavailable,
    TokenError,
    TokenThrottled,
    ZohoOAuth,
)
from zoho_gateway.zoho.parser import (
    TokenRejected,
    created_entity,
    judge,
    parse_retry_after,
    request_entity,
    simplify,
)
from zoho_gateway.zoho.transform import LOOKUP_FIELDS, to_input_data, to_request_entity
from zoho_gateway.zoho.transport import NoAnswer, NotSent, Response

FIXTURES = Path(__file__).parent / "fixtures"

HTML_502 = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>ZGS</center></body></html>\n"
)
GARBAGE = b'\x00\xff<response status=ok>{"request": \x1b[31mtruncated'
#: 4015 in SDP's failure envelope (ZOHO-API.md §1.6 table: HTTP 429 "API rate limit reached").
RATE_LIMITED = {
    "response_status": {
        "status_code": 4000,
        "messages": [{"status_code": 4015, "type": "failed", "message": "API Rate Limit reached"}],
        "status": "failed",
    }
}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(raw(name))


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def raises(
    exc_type: type[BaseException],
    status: int,
    code: str,
    operation: parser.Operation,
    payload: bytes,
    retry_after: str | None = None,
) -> Any:
    """``judge`` must raise exactly ``exc_type``; returns the exception for further checks."""
    with pytest.raises(exc_type) as info:
        judge(status, payload, operation, retry_after)
    assert type(info.value) is exc_type
    return info.value


# ---- transform -----------------------------------------------------------------------------------


class TestTransform:
    def test_minimal_ticket_becomes_request_with_requester_email_id_and_no_empty_lookups(self) -> None:
        ticket = {
            "subject": "Printer on fire",
            "description": "3rd floor",
            "requester_email": "jane@example.com",
            "priority": None,
            "department": None,
            "category": None,
            "status": None,
        }
        assert to_request_entity(ticket) == {
            "request": {
                "subject": "Printer on fire",
                "description": "3rd floor",
                "requester": {"email_id": "jane@example.com"},
            }
        }

    def test_absent_optional_fields_are_left_out(self) -> None:
        entity = to_request_entity({"subject": "s", "description": "", "requester_email": "a@b.co"})
        assert set(entity["request"]) == {"subject", "description", "requester"}

    def test_every_lookup_is_sent_as_a_name_object(self) -> None:
        ticket: dict[str, Any] = {
            "subject": "s",
            "description": "d",
            "requester_email": "a@b.co",
            "priority": {"name": "High"},
            "department": {"name": "Sales"},
            "category": {"name": "Hardware"},
            "status": {"name": "Open"},
        }
        request = to_request_entity(ticket)["request"]
        assert LOOKUP_FIELDS == ("priority", "department", "category", "status")
        for field in LOOKUP_FIELDS:
            assert request[field] == {"name": ticket[field]["name"]}

    def test_only_the_name_of_a_lookup_is_forwarded(self) -> None:
        ticket = {
            "subject": "s",
            "description": "d",
            "requester_email": "a@b.co",
            "priority": {"name": "High", "id": "123640000000006805"},
        }
        assert to_request_entity(ticket)["request"]["priority"] == {"name": "High"}

    def test_input_data_is_compact_json_of_the_request_entity_with_non_ascii_kept(self) -> None:
        ticket = {
            "subject": "Drucker brennt — ügly",
            "description": "日本語",
            "requester_email": "a@b.co",
            "category": {"name": "Printers"},
        }
        text = to_input_data(ticket)
        assert json.loads(text) == to_request_entity(ticket)
        assert " " not in text.replace("Drucker brennt — ügly", "")  # compact separators
        assert "日本語" in text and "\\u" not in text
        assert text.startswith('{"request":{"subject":')

    def test_input_data_escapes_json_special_characters(self) -> None:
        ticket = {
            "subject": 'quote " and \\ and \n newline',
            "description": "</script>",
            "requester_email": "a@b.co",
        }
        assert json.loads(to_input_data(ticket))["request"]["subject"] == 'quote " and \\ and \n newline'

    def test_transform_is_pure(self) -> None:
        ticket = {
            "subject": "s",
            "description": "d",
            "requester_email": "a@b.co",
            "priority": {"name": "Low"},
        }
        before = copy.deepcopy(ticket)
        entity = to_request_entity(ticket)
        entity["request"]["priority"]["name"] = "changed"
        assert ticket == before

    def test_udf_fields_carry_the_reference_and_are_left_out_when_empty(self) -> None:
        ticket = {"subject": "s", "description": "d", "requester_email": "a@b.co"}
        entity = to_request_entity(ticket, udf_fields={"udf_sline_1": "ref-1"})["request"]
        assert entity["udf_fields"] == {"udf_sline_1": "ref-1"}
        assert "udf_fields" not in to_request_entity(ticket, udf_fields={})["request"]
        assert "udf_fields" not in to_request_entity(ticket)["request"]


# ---- parser: successes ---------------------------------------------------------------------------


class TestSuccess:
    def test_real_get_entity_unassigned_unresolved(self) -> None:
        answer = judge(200, raw("sdp_get_request.json"), "get")
        entity = request_entity(answer)
        assert entity["id"] == "123640000000240013"
        assert simplify(entity) == {
            "ticket_id": "123640000000240013",
            "status": "Open",
            "technician_assigned": "Unassigned",
            "technician_contact_email": None,
            "technician_comments": None,
        }

    def test_real_get_entity_with_technician_assigned(self) -> None:
        ticket = simplify(request_entity(judge(200, raw("sdp_get_request_assigned.json"), "get")))
        assert ticket["technician_assigned"] == "First Last"
        assert ticket["technician_contact_email"] == "email@address.com"
        assert ticket["technician_comments"] is None

    def test_resolution_content_becomes_technician_comments(self) -> None:
        data = load("sdp_get_request_assigned.json")
        data["request"]["resolution"] = load("sdp_get_resolution.json")["resolution"]
        data["request"]["status"]["name"] = "Resolved"
        ticket = simplify(request_entity(judge(200, body(data), "get")))
        assert ticket["technician_comments"] == "changing resolution from demisto"
        assert ticket["status"] == "Resolved"

    def test_create_answer_201_and_200_are_both_success(self) -> None:
        for status in (200, 201):
            assert (
                request_entity(judge(status, raw("sdp_get_request.json"), "create"))["id"]
                == "123640000000240013"
            )

    def test_array_form_success_envelope_is_success(self) -> None:
        answer = judge(200, raw("sdp_list_requests.json"), "get")
        assert answer["list_info"]["row_count"] == 3
        # ... but it carries no request entity
        with pytest.raises(ZohoBadResponse):
            request_entity(answer)

    def test_success_envelope_without_status_code_is_success(self) -> None:
        data = load("sdp_get_request.json")
        data["response_status"] = {"status": "success"}
        assert request_entity(judge(200, body(data), "get"))["id"] == "123640000000240013"

    def test_numeric_id_is_accepted_and_stringified(self) -> None:
        data = load("sdp_get_request.json")
        data["request"]["id"] = 123640000000240013
        assert simplify(request_entity(judge(200, body(data), "get")))["ticket_id"] == "123640000000240013"

    def test_simplify_tolerates_trimmed_and_null_sub_objects(self) -> None:
        entity = {
            "id": "1",
            "status": None,
            "technician": {"name": "Ann", "mobile": None, "id": "7"},
            "resolution": {"content": ""},
        }
        assert simplify(entity) == {
            "ticket_id": "1",
            "status": None,
            "technician_assigned": "Ann",
            "technician_contact_email": None,
            "technician_comments": None,
        }
        assert simplify({"id": "2"})["technician_assigned"] == "Unassigned"
        assert simplify({"id": "3", "technician": {"name": None, "email_id": "x@y.z"}})[
            "technician_assigned"
        ] == ("Unassigned")

    def test_entity_without_id_is_a_bad_response(self) -> None:
        data = load("sdp_get_request.json")
        del data["request"]["id"]
        with pytest.raises(ZohoBadResponse):
            request_entity(judge(200, body(data), "get"))
        with pytest.raises(ZohoBadResponse):
            request_entity({"response_status": {"status_code": 2000, "status": "success"}, "request": None})


# ---- parser: failures ----------------------------------------------------------------------------


class TestFailures:
    def test_4007_http_404_on_get_is_ticket_not_found(self) -> None:
        err = raises(TicketNotFound, 404, "ticket_not_found", "get", raw("sdp_error_4007.json"))
        assert (err.status, err.code) == (404, "ticket_not_found")

    def test_4007_failed_with_http_200_is_ticket_not_found(self) -> None:
        raises(TicketNotFound, 200, "ticket_not_found", "get", raw("sdp_error_4007.json"))

    def test_http_404_without_json_on_get_is_ticket_not_found(self) -> None:
        raises(TicketNotFound, 404, "ticket_not_found", "get", b"<html>Not Found</html>")

    def test_4007_on_create_is_not_ticket_not_found(self) -> None:
        # A create answered "Invalid URL" means the gateway's base URL is wrong, not that a ticket is unknown.
        err = raises(ZohoBadResponse, 404, "zoho_bad_response", "create", raw("sdp_error_4007.json"))
        assert err.status == 502

    def test_4001_with_field_on_create_is_422_carrying_zohos_message(self) -> None:
        err = raises(ZohoRejected, 400, "zoho_rejected_value", "create", raw("sdp_error_4001_extra_key.json"))
        assert (err.status, err.code) == (422, "zoho_rejected_value")
        assert err.fields == {"os": ["EXTRA_KEY_FOUND_IN_JSON"]}
        assert "EXTRA_KEY_FOUND_IN_JSON" in err.message
        details = err.details()
        assert details["code"] == "zoho_rejected_value" and details["fields"] == {
            "os": ["EXTRA_KEY_FOUND_IN_JSON"]
        }
        assert details["zoho_codes"] == [4001]

    def test_4001_vendor_sample_without_status_code_or_field_on_create(self) -> None:
        err = raises(ZohoRejected, 400, "zoho_rejected_value", "create", raw("sdp_error_4001.json"))
        assert "Value given for title is not valid" in err.message
        assert err.fields == {"_ticket": ["Value given for title is not valid"]}

    def test_array_form_failed_envelope_with_http_200_is_a_failure(self) -> None:
        payload = {
            "response_status": [
                {
                    "status_code": 4000,
                    "status": "failed",
                    "messages": [
                        {
                            "status_code": 4001,
                            "field": "priority",
                            "type": "failed",
                            "message": "Value given for priority is not valid",
                        }
                    ],
                }
            ]
        }
        err = raises(ZohoRejected, 200, "zoho_rejected_value", "create", body(payload))
        assert err.fields == {"priority": ["Value given for priority is not valid"]}

    def test_failed_status_alone_is_a_failure_even_with_an_entity(self) -> None:
        data = load("sdp_get_request.json")
        data["response_status"] = {"status": "failed", "messages": [{"status_code": 4004, "type": "failed"}]}
        raises(ZohoBadResponse, 200, "zoho_bad_response", "get", body(data))

    def test_4000_code_without_status_is_a_failure(self) -> None:
        raises(
            ZohoBadResponse, 200, "zoho_bad_response", "get", body({"response_status": {"status_code": 4000}})
        )

    def test_4009_with_field_on_create_is_rejected_value(self) -> None:
        err = raises(ZohoRejected, 400, "zoho_rejected_value", "create", raw("sdp_error_4009_field.json"))
        assert err.fields == {"is_trashed": ["Given field is not editable"]}

    @pytest.mark.parametrize("fixture", ["sdp_error_4017.json", "sdp_error_4021_field.json"])
    def test_other_refusals_on_get_are_502(self, fixture: str) -> None:
        err = raises(ZohoBadResponse, 400, "zoho_bad_response", "get", raw(fixture))
        assert err.status == 502 and err.extra["upstream_status"] == 400

    @pytest.mark.parametrize("fixture", ["sdp_error_4001.json", "sdp_error_4001_extra_key.json"])
    def test_4001_on_get_is_not_found(self, fixture: str) -> None:
        # 4001 is "Id or Name given in input does not exist": on a read, the id is the only input.
        raises(TicketNotFound, 400, "ticket_not_found", "get", raw(fixture))

    @pytest.mark.parametrize("operation", ["create", "get"])
    def test_4002_http_403_is_auth_failed_502(self, operation: parser.Operation) -> None:
        err = raises(ZohoAuthFailed, 403, "zoho_auth_failed", operation, raw("sdp_error_4002.json"))
        assert (err.status, err.code) == (502, "zoho_auth_failed")
        assert err.extra["zoho_codes"] == [4002]

    def test_4002_inside_http_200_is_auth_failed(self) -> None:
        raises(ZohoAuthFailed, 200, "zoho_auth_failed", "create", raw("sdp_error_4002.json"))

    def test_bare_403_is_auth_failed(self) -> None:
        raises(
            ZohoAuthFailed, 403, "zoho_auth_failed", "get", body({"response_status": {"status": "failed"}})
        )

    @pytest.mark.parametrize("operation", ["create", "get"])
    def test_4015_http_429_is_rate_limited_503_honouring_retry_after(
        self, operation: parser.Operation
    ) -> None:
        err = raises(
            ZohoRateLimited, 429, "zoho_rate_limited", operation, body(RATE_LIMITED), retry_after="12"
        )
        assert (err.status, err.code, err.retry_after) == (503, "zoho_rate_limited", 12)
        assert isinstance(err, ZohoUnavailable)

    def test_4015_inside_http_200_is_rate_limited(self) -> None:
        err = raises(ZohoRateLimited, 200, "zoho_rate_limited", "get", body(RATE_LIMITED))
        assert err.retry_after and err.retry_after > 0

    def test_429_without_retry_after_or_body_still_gives_a_retry_after(self) -> None:
        err = raises(ZohoRateLimited, 429, "zoho_rate_limited", "get", b"")
        assert err.retry_after == 5

    @pytest.mark.parametrize("payload", [b"", HTML_502, GARBAGE, body(RATE_LIMITED)])
    @pytest.mark.parametrize(("status", "operation"), [(503, "create"), (503, "get"), (503, "list"), (504, "get")])
    def test_503_and_a_504_on_a_read_are_unavailable_whatever_the_body(
        self, status: int, operation: parser.Operation, payload: bytes
    ) -> None:
        err = raises(ZohoUnavailable, status, "zoho_unavailable", operation, payload, retry_after="3")
        assert (err.status, err.code, err.retry_after) == (503, "zoho_unavailable", 3)

    @pytest.mark.parametrize("payload", [b"", HTML_502, GARBAGE, body(RATE_LIMITED)])
    def test_504_on_a_create_is_outcome_unknown_whatever_the_body(self, payload: bytes) -> None:
        # A gateway time-out in front of Zoho may come after Zoho stored the ticket.
        err = raises(ZohoOutcomeUnknown, 504, "zoho_outcome_unknown", "create", payload, retry_after="3")
        assert err.retry_after is None and err.extra["upstream_status"] == 504

    @pytest.mark.parametrize("status", [200, 500, 502])
    def test_html_on_a_read_is_a_bad_response_502(self, status: int) -> None:
        err = raises(ZohoBadResponse, status, "zoho_bad_response", "get", HTML_502)
        assert err.status == 502 and err.extra["upstream_status"] == status

    @pytest.mark.parametrize("status", [200, 201, 500, 502])
    def test_html_to_a_create_is_outcome_unknown(self, status: int) -> None:
        # A 2xx that cannot be read, or a 5xx after sending: Zoho may hold the ticket.
        err = raises(ZohoOutcomeUnknown, status, "zoho_outcome_unknown", "create", HTML_502)
        assert err.status == 504 and err.extra["upstream_status"] == status

    @pytest.mark.parametrize("status", [400, 404, 413])
    def test_html_4xx_to_a_create_is_a_bad_response(self, status: int) -> None:
        # A 4xx never stores a ticket: refused for good, not unknown.
        raises(ZohoBadResponse, status, "zoho_bad_response", "create", HTML_502)

    def test_408_to_a_create_is_unavailable(self) -> None:
        # A proxy that timed out receiving the request passed nothing on: safe to send again.
        raises(ZohoUnavailable, 408, "zoho_unavailable", "create", HTML_502)

    @pytest.mark.parametrize("payload", [GARBAGE, b"null", b"[]", b'"ok"'])
    def test_garbage_to_a_create_is_outcome_unknown(self, payload: bytes) -> None:
        raises(ZohoOutcomeUnknown, 200, "zoho_outcome_unknown", "create", payload)

    def test_json_without_response_status_to_a_create_is_outcome_unknown(self) -> None:
        data = load("sdp_get_request.json")
        del data["response_status"]
        raises(ZohoOutcomeUnknown, 201, "zoho_outcome_unknown", "create", body(data))

    def test_success_without_an_entity_to_a_create_is_outcome_unknown(self) -> None:
        answer = {"response_status": {"status_code": 2000, "status": "success"}, "request": None}
        with pytest.raises(ZohoOutcomeUnknown):
            created_entity(answer)
        with pytest.raises(ZohoBadResponse):
            request_entity(answer)  # a read keeps today's mapping

    @pytest.mark.parametrize(
        "payload", [GARBAGE, b"\xff\xfe\x00", b'{"request": ', b"null", b"[]", b"42", b'"ok"']
    )
    def test_garbage_and_non_object_json_are_bad_responses(self, payload: bytes) -> None:
        raises(ZohoBadResponse, 200, "zoho_bad_response", "get", payload)

    def test_json_without_response_status_is_a_bad_response(self) -> None:
        data = load("sdp_get_request.json")
        del data["response_status"]
        raises(ZohoBadResponse, 200, "zoho_bad_response", "get", body(data))

    def test_500_with_4004_json_is_a_bad_response_with_upstream_status(self) -> None:
        payload = {
            "response_status": {
                "status_code": 4000,
                "messages": [{"status_code": 4004, "type": "failed"}],
                "status": "failed",
            }
        }
        err = raises(ZohoBadResponse, 500, "zoho_bad_response", "get", body(payload))
        assert err.extra == {"upstream_status": 500, "zoho_codes": [4004]}

    @pytest.mark.parametrize("status", [200, 500])
    def test_4004_to_a_create_is_outcome_unknown_with_upstream_status(self, status: int) -> None:
        # SDP's "internal error" may strike after the ticket was stored.
        payload = {
            "response_status": {
                "status_code": 4000,
                "messages": [{"status_code": 4004, "type": "failed"}],
                "status": "failed",
            }
        }
        err = raises(ZohoOutcomeUnknown, status, "zoho_outcome_unknown", "create", body(payload))
        assert err.extra == {"upstream_status": status, "zoho_codes": [4004]}

    def test_a_refused_value_in_a_5xx_to_a_create_is_still_rejected(self) -> None:
        # SDP's envelope says it refused the value: nothing was stored, whatever the HTTP status.
        err = raises(ZohoRejected, 500, "zoho_rejected_value", "create", raw("sdp_error_4001_extra_key.json"))
        assert err.fields == {"os": ["EXTRA_KEY_FOUND_IN_JSON"]}

    def test_3xx_is_never_a_success(self) -> None:
        raises(ZohoBadResponse, 302, "zoho_bad_response", "get", raw("sdp_get_request.json"))

    @pytest.mark.parametrize(
        "payload", [b"", HTML_502, raw("sdp_error_4002.json"), raw("sdp_get_request.json")]
    )
    def test_401_is_token_rejected_whatever_the_body(self, payload: bytes) -> None:
        with pytest.raises(TokenRejected):
            judge(401, payload, "get")

    def test_zoho_messages_are_truncated(self) -> None:
        payload = {
            "response_status": {
                "messages": [
                    {"status_code": 4001, "field": "subject", "type": "failed", "message": "x" * 5000}
                ],
                "status": "failed",
            }
        }
        err = raises(ZohoRejected, 400, "zoho_rejected_value", "create", body(payload))
        assert len(err.fields["subject"][0]) == parser.MAX_ZOHO_MESSAGE
        assert len(err.message) < 400

    def test_every_failure_is_a_gateway_error_with_a_stable_code(self) -> None:
        for status, payload in [
            (404, raw("sdp_error_4007.json")),
            (403, raw("sdp_error_4002.json")),
            (400, raw("sdp_error_4001.json")),
            (502, HTML_502),
            (200, GARBAGE),
        ]:
            with pytest.raises(GatewayError) as info:
                judge(status, payload, "create")
            details = info.value.details()
            assert set(details) >= {"code", "message"} and details["code"] == info.value.code


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, 5),
            ("", 5),
            ("7", 7),
            (" 3 ", 3),
            ("2.9", 2),
            ("-4", 1),
            ("0", 1),  # never tell a client to retry at once
            ("99999", 60),
            ("Wed, 21 Oct 2015 07:28:00 GMT", 5),
            ("abc", 5),
        ],
    )
    def test_parse_retry_after(self, value: str | None, expected: int) -> None:
        assert parse_retry_after(value, default=5) == expected


# ---- token answers (§4.4 / §4.5) -----------------------------------------------------------------


class StubTransport:
    """Answers the token endpoint with one canned response and records what was sent (no network)."""

    def __init__(self, status: int = 200, payload: bytes = b"", error: Exception | None = None) -> None:
        self.status, self.payload, self.error = status, payload, error
        self.calls: list[tuple[str, str, Mapping[str, str], bytes | None]] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> Response:
        self.calls.append((method, url, headers, body))
        if self.error is not None:
            raise self.error
        return Response(self.status, self.payload, {}, 0.01)


def refresh_with(status: int, payload: bytes, error: Exception | None = None) -> Any:
    transport = StubTransport(status, payload, error)
    oauth = ZohoOAuth(
        transport,  # type: ignore[arg-type]  # duck-typed stand-in for Transport
        accounts_url="https://accounts.example/",
        client_id="cid",
        client_secret=SANDBOX_CLIENT_SECRET,
    )
    return oauth.refresh(SANDBOX_REFRESH_TOKEN), transport


class TestTokenAnswers:
    def test_vendor_success_sample(self) -> None:
        minted, transport = refresh_with(200, raw("token_refresh_success.json"))
        assert minted.access_token == "1000.0f1e2d3c4b5a69788796a5b4c3d2e1f0.00112233445566778899aabbccddeeff"
        assert minted.expires_in == 3600 and minted.api_domain == "https://www.zohoapis.com"
        assert minted.access_token not in repr(minted)
        method, url, headers, sent = transport.calls[0]
        assert (method, url) == ("POST", "https://accounts.example/oauth/v2/token")
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        from urllib.parse import parse_qs

        assert parse_qs((sent or b"").decode()) == {
            "grant_type": ["refresh_token"],
            "refresh_token": [SANDBOX_REFRESH_TOKEN],
            "client_id": ["cid"],
            "client_secret": [SANDBOX_CLIENT_SECRET],
        }

    def test_success_with_scope_and_code_exchange_samples(self) -> None:
        minted, _ = refresh_with(200, raw("token_refresh_with_scope.json"))
        assert minted.access_token == " ***** " and minted.expires_in == 3600
        minted, _ = refresh_with(200, raw("token_code_exchange.json"))
        assert minted.access_token == "123456789"

    def test_legacy_expires_in_sec_wins_over_milliseconds(self) -> None:
        minted, _ = refresh_with(
            200, body({"access_token": "a", "expires_in": 3600000, "expires_in_sec": 3600})
        )
        assert minted.expires_in == 3600

    @pytest.mark.parametrize("status", [200, 400])
    def test_invalid_code_is_credentials_rejected_whatever_the_status(self, status: int) -> None:
        with pytest.raises(TokenCredentialsRejected) as info:
            refresh_with(status, raw("token_error_invalid_code.json"))
        assert info.value.reason == "invalid_code"

    @pytest.mark.parametrize("status", [200, 400, 429])
    def test_throttle_is_throttled_with_http_200_or_400(self, status: int) -> None:
        with pytest.raises(TokenThrottled) as info:
            refresh_with(status, raw("token_error_throttle.json"))
        assert info.value.reason == "Access Denied"

    @pytest.mark.parametrize(
        ("status", "payload"),
        [
            (200, b'{"foo": 1}'),
            (200, b'{"access_token": ""}'),
            (200, b'{"access_token": 12345}'),
            (200, b'{"access_token": null, "expires_in": 3600}'),
            (200, raw("sdp_list_requests.json")),
            (502, HTML_502),
            (200, GARBAGE),
            (500, b'{"access_token": "1000.aa.bb"}'),
            (200, b'{"error": "general_error"}'),
        ],
    )
    def test_answers_without_a_usable_token_are_endpoint_failures(self, status: int, payload: bytes) -> None:
        with pytest.raises(TokenEndpointUnavailable):
            refresh_with(status, payload)

    def test_error_key_wins_over_an_access_token(self) -> None:
        with pytest.raises(TokenCredentialsRejected):
            refresh_with(200, body({"access_token": "1000.aa.bb", "error": "invalid_client"}))

    def test_429_without_json_is_throttled(self) -> None:
        with pytest.raises(TokenThrottled):
            refresh_with(429, b"Too Many Requests")

    @pytest.mark.parametrize("error", [NotSent("cannot connect"), NoAnswer("no answer")])
    def test_transport_failures_are_endpoint_failures(self, error: Exception) -> None:
        with pytest.raises(TokenEndpointUnavailable):
            refresh_with(200, b"", error)

    @pytest.mark.parametrize(
        ("status", "payload", "error"),
        [
            (200, raw("token_error_invalid_code.json"), None),
            (200, raw("token_error_throttle.json"), None),
            (200, b'{"foo": 1}', None),
            (502, HTML_502, None),
            (200, b"", NotSent("x")),
            (200, b"", NoAnswer("x")),
        ],
    )
    def test_token_errors_never_carry_the_secret_or_refresh_token(
        self, status: int, payload: bytes, error: Exception | None
    ) -> None:
        with pytest.raises(TokenError) as info:
            refresh_with(status, payload, error)
        text = f"{info.value} {info.value.reason!r} {info.value!r}"
        assert SANDBOX_CLIENT_SECRET not in text and SANDBOX_REFRESH_TOKEN not in text and "cid" not in text
