"""The client contract of DESIGN.md over real sockets: a werkzeug-served gateway in front of the Zoho sandbox.

Every status code and stable error code a client can see from ``POST /requests`` and ``GET /requests/<id>``,
what actually reaches Zoho (headers, the ``input_data`` form field, lookups as ``{"name"}``), and the error
format ``{"error", "details": {"code", "message", "request_id", ...}}`` on every failure, never HTML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from tests.helpers import (
    SDP_ACCEPT,
    TICKET,
    TIMEOUT,
    assert_error,
    base_env,
    check_never_html,
    counters,
    create,
    failure,
    get,
    post,
    raw_request,
)
from tests.servers import QuietHandler, Sandbox, Starter, ThreadedGateway, serve_in_thread, stop_server
from zoho_gateway.sandbox import SandboxServer

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


# ---- helpers -------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RecordingProxy:
    """A pass-through HTTP proxy in front of the sandbox that records every request exactly as it arrived."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[Seen] = []
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        serve_in_thread(self._server, poll_interval=0.05)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING")
        self.seen.append(Seen(environ["REQUEST_METHOD"], path, headers, body))
        forward = {
            k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")
        }
        answer = requests.request(
            environ["REQUEST_METHOD"],
            f"{self.target}{path}" + (f"?{query}" if query else ""),
            headers=forward,
            data=body,
            timeout=TIMEOUT,
        )
        start_response(
            f"{answer.status_code} {answer.reason}",
            [("Content-Type", answer.headers.get("Content-Type", "application/octet-stream"))],
        )
        return [answer.content]

    def stop(self) -> None:
        stop_server(self._server)


# Most tests take ``reused_gateway`` (conftest.py): the module's one gateway, with a reset sandbox and no token,
# so every test starts from "nothing minted, nothing stored".


@pytest.fixture(scope="module")
def proxied(sandbox_server: SandboxServer) -> Iterator[tuple[RecordingProxy, ThreadedGateway]]:
    recorder = RecordingProxy(sandbox_server.url)
    running = ThreadedGateway(base_env(sandbox_server.url, ZOHO_API_BASE_URL=recorder.url))
    yield recorder, running
    running.stop()
    recorder.stop()


@pytest.fixture
def proxy(proxied: tuple[RecordingProxy, ThreadedGateway], sandbox: Sandbox) -> RecordingProxy:
    proxied[0].seen.clear()
    proxied[1].gateway.tokens.forget()
    return proxied[0]


@pytest.fixture
def proxied_gateway(
    proxied: tuple[RecordingProxy, ThreadedGateway], proxy: RecordingProxy
) -> ThreadedGateway:
    return proxied[1]


# ---- POST /requests: success and what reaches Zoho -----------------------------------------------


def test_create_answers_201_with_the_contract_body(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    response = post(reused_gateway, TICKET)
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "zoho_ticket_id"}
    assert body["message"] == "Ticket created successfully"
    assert isinstance(body["zoho_ticket_id"], str) and body["zoho_ticket_id"].isdigit()
    # Where the new ticket can be read (RFC 9110 §10.2.2).
    assert response.headers["Location"] == f"/requests/{body['zoho_ticket_id']}"
    entity = sandbox.ticket(body["zoho_ticket_id"])
    assert entity["subject"] == TICKET["subject"]
    assert entity["description"] == TICKET["description"]
    assert entity["requester"]["email_id"] == TICKET["requester_email"]
    stats = sandbox.stats()
    assert stats["creates"] == 1 and stats["tickets"] == 1
    assert stats["last_headers"] == {
        "Accept": SDP_ACCEPT,
        "Authorization": "Zoho-oauthtoken",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_create_also_succeeds_when_zoho_answers_200(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.settings(create_http_status=200)
    assert post(reused_gateway, TICKET).status_code == 201


@pytest.mark.parametrize("form", ["bare", "object"])
def test_lookup_fields_arrive_at_zoho_as_name_objects(
    form: str, proxied_gateway: ThreadedGateway, sandbox: Sandbox, proxy: RecordingProxy
) -> None:
    gateway = proxied_gateway
    lookups = {"priority": "High", "department": "Sales", "category": "Hardware", "status": "On Hold"}
    sent: dict[str, Any] = {k: (v if form == "bare" else {"name": v}) for k, v in lookups.items()}
    ticket_id = create(gateway, **sent)

    creates = [s for s in proxy.seen if s.method == "POST"]
    assert len(creates) == 1
    seen = creates[0]
    assert seen.path == "/api/v3/requests"
    assert seen.headers["Accept"] == SDP_ACCEPT
    assert re.fullmatch(r"Zoho-oauthtoken 1000\.[0-9a-f]{32}\.[0-9a-f]{32}", seen.headers["Authorization"])
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form_fields = parse_qs(seen.body.decode("ascii"), strict_parsing=True)
    assert list(form_fields) == ["input_data"] and len(form_fields["input_data"]) == 1
    assert json.loads(form_fields["input_data"][0]) == {
        "request": {
            "subject": TICKET["subject"],
            "description": TICKET["description"],
            "requester": {"email_id": TICKET["requester_email"]},
            **{k: {"name": v} for k, v in lookups.items()},
        }
    }
    # ... and the sandbox (which refuses a lookup that is not an object) resolved every one of them.
    entity = sandbox.ticket(ticket_id)
    for field, name in lookups.items():
        assert entity[field]["name"] == name


def test_lookup_names_are_trimmed_and_null_lookups_are_not_sent(
    proxied_gateway: ThreadedGateway, sandbox: Sandbox, proxy: RecordingProxy
) -> None:
    gateway = proxied_gateway
    create(gateway, priority="  Low ", department=None, category={"name": "Network"})
    request = json.loads(parse_qs(proxy.seen[-1].body.decode())["input_data"][0])["request"]
    assert request["priority"] == {"name": "Low"} and request["category"] == {"name": "Network"}
    assert "department" not in request and "status" not in request


def test_non_ascii_ticket_round_trips(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway, subject="Drucker brennt 🔥 — 日本語", description="ü" * 1000)
    entity = sandbox.ticket(ticket_id)
    assert entity["subject"] == "Drucker brennt 🔥 — 日本語" and entity["description"] == "ü" * 1000


def test_zoho_refusing_a_lookup_value_is_422_with_zohos_message(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    body = assert_error(post(reused_gateway, {**TICKET, "priority": "Critical"}), 422, "zoho_rejected_value")
    assert body["details"]["fields"] == {"priority": ["Value given for priority is not valid"]}
    assert "Value given for priority is not valid" in body["details"]["message"]
    assert sandbox.stats()["tickets"] == 0


def test_zoho_4001_with_field_injected_is_422(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(
        target="create",
        kind="status",
        status=400,
        times=1,
        body=failure(4001, "EXTRA_KEY_FOUND_IN_JSON", field="os"),
    )
    body = assert_error(post(reused_gateway, TICKET), 422, "zoho_rejected_value")
    assert body["details"]["fields"] == {"os": ["EXTRA_KEY_FOUND_IN_JSON"]}
    assert "EXTRA_KEY_FOUND_IN_JSON" in body["details"]["message"]


def test_zoho_failure_inside_http_200_is_not_a_success(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(
        target="create",
        kind="status",
        status=200,
        times=1,
        body={
            "response_status": [
                {
                    "status_code": 4000,
                    "status": "failed",
                    "messages": [
                        {"status_code": 4001, "field": "category", "type": "failed", "message": "Not in use"}
                    ],
                }
            ]
        },
    )
    body = assert_error(post(reused_gateway, TICKET), 422, "zoho_rejected_value")
    assert body["details"]["fields"] == {"category": ["Not in use"]}


def test_zoho_permission_refusal_4002_is_502(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(
        target="api",
        kind="status",
        status=403,
        times=2,
        body=failure(4002, "User does not have this permission"),
    )
    assert_error(post(reused_gateway, TICKET), 502, "zoho_auth_failed")
    assert_error(get(reused_gateway, "123"), 502, "zoho_auth_failed")


def test_zoho_4007_on_create_is_not_reported_as_an_unknown_ticket(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    sandbox.fault(
        target="create",
        kind="status",
        status=404,
        times=1,
        body={
            "response_status": {
                "status": "failed",
                "messages": [{"status_code": 4007, "type": "failed", "message": "Invalid URL"}],
            }
        },
    )
    assert_error(post(reused_gateway, TICKET), 502, "zoho_bad_response")


# ---- GET /requests/<id> --------------------------------------------------------------------------


def test_get_unassigned_ticket(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway)
    response = get(reused_gateway, ticket_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "ticket_id": ticket_id,
        "status": "Open",
        "technician_assigned": "Unassigned",
        "technician_contact_email": None,
        "technician_comments": None,
    }
    assert sandbox.stats()["last_headers"]["Accept"] == SDP_ACCEPT


def test_get_assigned_and_resolved_ticket(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway, status="In Progress")
    assert get(reused_gateway, ticket_id).json()["status"] == "In Progress"
    sandbox.patch_ticket(
        ticket_id,
        technician={"name": "Heather Graham", "email_id": "heather@example.com"},
        resolution="Replaced the fuser unit.",
        status="Resolved",
    )
    assert get(reused_gateway, ticket_id).json() == {
        "ticket_id": ticket_id,
        "status": "Resolved",
        "technician_assigned": "Heather Graham",
        "technician_contact_email": "heather@example.com",
        "technician_comments": "Replaced the fuser unit.",
    }
    # A technician known only by name has no contact email; a cleared resolution is null again.
    sandbox.patch_ticket(ticket_id, technician={"name": "Nameonly Tech"}, resolution=None)
    body = get(reused_gateway, ticket_id).json()
    assert body["technician_assigned"] == "Nameonly Tech"
    assert body["technician_contact_email"] is None and body["technician_comments"] is None


def test_unknown_ticket_is_404(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    body = assert_error(get(reused_gateway, "123640000000999999"), 404, "ticket_not_found")
    assert body["details"]["code"] == "ticket_not_found"
    assert sandbox.stats()["get_calls"] == 1


def test_twenty_digit_id_is_accepted_and_asked_of_zoho(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    assert_error(get(reused_gateway, "9" * 20), 404, "ticket_not_found")
    assert sandbox.stats()["get_calls"] == 1


@pytest.mark.parametrize(
    "bad_id",
    [
        "abc",
        "1.5",
        "1" * 21,
        "-1",
        "+1",
        "%201",
        "1%0A",
        "0x1F",
        "%D9%A1%D9%A2",
        "12a",
        "%00",
        "1e5",
    ],
)
def test_invalid_ticket_ids_are_400_without_any_upstream_call(
    bad_id: str, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    before = counters(sandbox)
    assert_error(get(reused_gateway, bad_id), 400, "invalid_ticket_id")
    after = counters(sandbox)
    assert after["api_calls"] == before["api_calls"] and after["token_calls"] == before["token_calls"]


def test_dot_dot_id_is_400_without_any_upstream_call(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    before = counters(sandbox)
    # requests would normalise %2e%2e to "..": send the exact bytes on a raw socket.
    for target in (b"/requests/%2e%2e", b"/requests/%2E%2E", b"/requests/.%2e"):
        head, payload = raw_request(
            reused_gateway.url, b"GET " + target + b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
        )
        assert head.startswith(b"HTTP/1.1 400"), head
        assert b"content-type: application/json" in head.lower()
        assert json.loads(payload)["details"]["code"] == "invalid_ticket_id"
    after = counters(sandbox)
    assert after["api_calls"] == before["api_calls"] and after["token_calls"] == before["token_calls"]


# ---- validation (422) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"subject": None}, "subject", ""),
        ({"description": None}, "description", ""),
        ({"requester_email": None}, "requester_email", ""),
        ({"subject": ""}, "subject", "blank"),
        ({"subject": "   "}, "subject", "blank"),
        ({"description": ""}, "description", "blank"),
        ({"description": " \n\t "}, "description", "blank"),
        ({"description": "x" * 65536}, "description", "65535"),
        ({"description": 7}, "description", "string"),
        ({"subject": "x" * 251}, "subject", "250"),
        ({"subject": 42}, "subject", "string"),
        ({"requester_email": "not-an-email"}, "requester_email", "email"),
        ({"requester_email": "a@b.co" + "m" * 300}, "requester_email", ""),
        ({"priority": 5}, "priority", ""),
        ({"priority": ""}, "priority", "blank"),
        ({"priority": {"name": "High", "id": "1"}}, "priority", "name"),
        ({"department": {"title": "Sales"}}, "department", ""),
        ({"category": ["Hardware"]}, "category", ""),
        ({"status": "x" * 101}, "status", "100"),
    ],
)
def test_invalid_fields_are_422_with_per_field_messages(
    change: dict[str, Any], field: str, fragment: str, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    payload = {**TICKET, **change}
    payload = {k: v for k, v in payload.items() if not (v is None and k in TICKET)}
    body = assert_error(post(reused_gateway, payload), 422, "validation_failed")
    fields = body["details"]["fields"]
    assert set(fields) == {field}, fields
    assert all(isinstance(m, str) and m for m in fields[field])
    assert fragment.lower() in " ".join(fields[field]).lower()
    assert sandbox.stats()["api_calls"] == 0


def test_unknown_fields_are_rejected_by_name(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    body = assert_error(
        post(reused_gateway, {**TICKET, "urgency": "High", "technician": "me"}), 422, "validation_failed"
    )
    assert set(body["details"]["fields"]) == {"urgency", "technician"}
    assert "urgency" in body["details"]["message"] and "technician" in body["details"]["message"]
    assert sandbox.stats()["api_calls"] == 0


def test_every_problem_is_reported_at_once(reused_gateway: ThreadedGateway) -> None:
    body = assert_error(
        post(reused_gateway, {"subject": "", "requester_email": "nope", "extra": 1}), 422, "validation_failed"
    )
    assert set(body["details"]["fields"]) == {"subject", "description", "requester_email", "extra"}


def test_subject_and_description_follow_one_rule(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    """Both are required text: present, a string, and at least one visible character; both are sent as written.

    The seed contract requires ``description``; an empty one is refused like an empty ``subject``, with the
    same message, rather than accepted as a required field that may say nothing.
    """
    for blank in ("", "   "):
        answer = post(reused_gateway, {**TICKET, "subject": blank, "description": blank})
        body = assert_error(answer, 422, "validation_failed")
        assert body["details"]["fields"] == {"subject": ["Must not be blank."], "description": ["Must not be blank."]}
    ticket_id = create(reused_gateway, subject=" s ", description=" . ")
    assert (sandbox.ticket(ticket_id)["subject"], sandbox.ticket(ticket_id)["description"]) == (" s ", " . ")
    assert sandbox.stats()["create_calls"] == 1


def test_subject_of_exactly_250_characters_is_accepted(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway, subject="s" * 250)
    assert sandbox.ticket(ticket_id)["subject"] == "s" * 250


# ---- malformed bodies (400, 413, 415) ------------------------------------------------------------


def test_body_over_one_megabyte_is_413(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    big = json.dumps({**TICKET, "description": "x" * 1_500_000}).encode()
    assert_error(post(reused_gateway, data=big, content_type="application/json"), 413, "payload_too_large")
    assert sandbox.stats()["api_calls"] == 0


def test_chunked_body_over_one_megabyte_is_413(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"subject": "s", "requester_email": "a@b.co", "description": "'
        for _ in range(15):
            yield b"x" * 100_000
        yield b'"}'

    assert_error(post(reused_gateway, data=chunks(), content_type="application/json"), 413, "payload_too_large")
    assert sandbox.stats()["api_calls"] == 0


def test_chunked_body_under_the_limit_is_accepted(reused_gateway: ThreadedGateway) -> None:
    def chunks() -> Iterator[bytes]:
        yield json.dumps(TICKET).encode()

    assert post(reused_gateway, data=chunks(), content_type="application/json").status_code == 201


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("1 MB of [", b"[" * 1_000_000),
        ("100k-deep objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ("deep inside a field", b'{"subject": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        ("empty", b""),
        ("whitespace", b" \r\n\t "),
        ("truncated", b'{"subject": "s", '),
        ("single quotes", b"{'subject': 's'}"),
        ("trailing comma", b'{"subject": "s",}'),
        ("array", b"[1, 2]"),
        ("empty array", b"[]"),
        ("number", b"42"),
        ("null", b"null"),
        ("string", b'"ticket"'),
        ("true", b"true"),
        ("NaN", b'{"subject": NaN, "description": "d", "requester_email": "a@b.co"}'),
        ("Infinity", b'{"subject": "s", "description": "d", "requester_email": "a@b.co", "x": Infinity}'),
        ("-Infinity", b"-Infinity"),
        ("bare NaN", b"NaN"),
        ("latin-1 bytes", b'{"subject": "caf\xe9", "description": "d", "requester_email": "a@b.co"}'),
        ("invalid UTF-8", b"\xff\xfe\xfd"),
        ("UTF-16", json.dumps(TICKET).encode("utf-16")),
        ("UTF-32", json.dumps(TICKET).encode("utf-32")),
        ("lone surrogate", json.dumps({**TICKET, "subject": "\ud800"}).encode()),
        ("lone surrogate in a lookup", json.dumps({**TICKET, "priority": "\udfff"}).encode()),
        ("lone surrogate as a key", json.dumps({**TICKET, "\ud83d": 1}).encode()),
        ("NUL", b"\x00"),
    ],
)
def test_malformed_json_is_400_never_500(
    name: str, data: bytes, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    assert_error(post(reused_gateway, data=data, content_type="application/json"), 400, "invalid_json")
    assert sandbox.stats()["api_calls"] == 0


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b'{"subject": "a", "description": "d", "requester_email": "a@b.co", "subject": "b"}', "subject"),
        (b'{"subject": "a", "subject": "a", "description": "d", "requester_email": "a@b.co"}', "subject"),
        (b'{"subject": "s", "priority": {"name": "A", "name": "B"}}', "name"),
        (b'{"subject": "s", "description": "d", "requester_email": "a@b.co", "x": [{"k": 1, "k": 2}]}', "k"),
    ],
)
def test_a_key_given_twice_is_400_naming_it(
    data: bytes, key: str, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    """No silent "last one wins": the client meant one of the two values, and only it knows which."""
    body = assert_error(post(reused_gateway, data=data, content_type="application/json"), 400, "invalid_json")
    assert f'"{key}"' in body["details"]["message"], body
    assert sandbox.stats()["api_calls"] == 0


def test_escaped_surrogate_pairs_are_fine(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    data = json.dumps({**TICKET, "subject": "fire 🔥"}, ensure_ascii=True).encode()  # "\ud83d\udd25"
    assert b"\\ud83d" in data
    response = post(reused_gateway, data=data, content_type="application/json")
    assert response.status_code == 201
    assert sandbox.ticket(response.json()["zoho_ticket_id"])["subject"] == "fire 🔥"


def test_moderately_nested_unknown_field_is_422_not_500(reused_gateway: ThreadedGateway) -> None:
    data = (
        b'{"subject": "s", "description": "d", "requester_email": "a@b.co", "x": '
        + b"[" * 500
        + b"]" * 500
        + b"}"
    )
    body = assert_error(post(reused_gateway, data=data, content_type="application/json"), 422, "validation_failed")
    assert set(body["details"]["fields"]) == {"x"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        None,
    ],
)
def test_non_json_content_type_is_415(
    content_type: str | None, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    response = post(reused_gateway, data=json.dumps(TICKET).encode(), content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert sandbox.stats()["api_calls"] == 0


def test_a_json_body_labelled_multipart_is_400(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    # POST /requests also takes a form (a "ticket" part and files: tests/test_attachments_api.py); this is none.
    response = post(reused_gateway, data=json.dumps(TICKET).encode(), content_type="multipart/form-data; boundary=x")
    assert_error(response, 400, "invalid_multipart")
    assert sandbox.stats()["api_calls"] == 0


def test_json_content_type_with_charset_is_accepted(reused_gateway: ThreadedGateway) -> None:
    response = post(reused_gateway, data=json.dumps(TICKET).encode(), content_type="application/json; charset=utf-8")
    assert response.status_code == 201


# ---- routes and methods --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/requests/", "/requests/1/history", "/api/v3/requests", "/REQUESTS/1", "/meta/technicians"]
)
def test_unknown_route_is_404_json(path: str, reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    response = check_never_html(requests.get(f"{reused_gateway.url}{path}", timeout=TIMEOUT))
    assert_error(response, 404, "not_found")
    assert sandbox.stats()["api_calls"] == 0


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/requests", {"GET", "POST"}),
        ("PATCH", "/requests", {"GET", "POST"}),
        ("PUT", "/requests", {"GET", "POST"}),
        ("POST", "/requests/123", {"GET", "PATCH"}),
        ("PUT", "/requests/123", {"GET", "PATCH"}),
        ("DELETE", "/requests/123", {"GET", "PATCH"}),
        ("GET", "/requests/123/close", {"POST"}),
        ("DELETE", "/requests/123/notes", {"GET", "POST"}),
        ("POST", "/meta/priorities", {"GET"}),
    ],
)
def test_wrong_method_is_405_json_with_allow(
    method: str, path: str, allowed: set[str], reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    response = check_never_html(
        requests.request(method, f"{reused_gateway.url}{path}", json=TICKET, timeout=TIMEOUT)
    )
    assert_error(response, 405, "method_not_allowed")
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= allow and method not in allow
    assert sandbox.stats()["api_calls"] == 0


def test_no_answer_is_ever_html(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    """A sweep of odd requests: whatever the status, the answer is never an HTML page."""
    url = reused_gateway.url
    sandbox.fault(target="api", kind="html", times=3)
    answers = [
        requests.request("OPTIONS", f"{url}/requests", timeout=TIMEOUT),
        requests.request("OPTIONS", f"{url}/requests/1", timeout=TIMEOUT),
        requests.head(f"{url}/requests/abc", timeout=TIMEOUT),
        requests.request("TRACE", f"{url}/requests", timeout=TIMEOUT),
        requests.request("BREW", f"{url}/requests", timeout=TIMEOUT),
        requests.get(f"{url}/%ff%fe", timeout=TIMEOUT),
        requests.get(f"{url}/requests/1", timeout=TIMEOUT),  # Zoho answers an HTML 502 page three times
        requests.post(f"{url}/requests", data=b"x" * 2_000_000, timeout=TIMEOUT),
        requests.get(f"{url}/requests/1", headers={"Accept": "text/html"}, timeout=TIMEOUT),
    ]
    for response in answers:
        check_never_html(response)
        assert response.status_code < 500 or response.status_code in (502, 503, 504)
    assert answers[6].status_code == 502 and answers[6].json()["details"]["code"] == "zoho_bad_response"


# ---- client authentication (401) ----------------------------------------------------------------


def test_api_key_is_required_when_configured_and_checked_before_any_upstream_call(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    key = "Zx81-kLmN0pQ_rS2tUvW3xYz4aBcD5eF"
    gateway = make_gateway(GATEWAY_API_KEYS=f"bot={key}")
    answers = [
        post(gateway, TICKET),
        post(gateway, TICKET, {"Authorization": "Bearer wrong-key-0123456789abcdef"}),
        post(gateway, TICKET, {"Authorization": f"Basic {key}"}),
        get(gateway, "123", {"X-API-Key": key[::-1]}),
        get(gateway, "abc"),
    ]
    for response in answers:
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert key not in response.text and key[::-1] not in response.text
    stats = sandbox.stats()
    assert stats["api_calls"] == 0 and stats["token_calls"] == 0
    created = post(gateway, TICKET, {"Authorization": f"Bearer {key}"})
    assert created.status_code == 201
    assert get(gateway, created.json()["zoho_ticket_id"], {"X-API-Key": key}).status_code == 200


# ---- request ids ---------------------------------------------------------------------------------


def test_a_valid_request_id_is_echoed_and_reported(reused_gateway: ThreadedGateway) -> None:
    rid = "client-req_42.A"
    response = get(reused_gateway, "abc", {"X-Request-ID": rid})
    assert response.headers["X-Request-ID"] == rid
    assert assert_error(response, 400, "invalid_ticket_id")["details"]["request_id"] == rid
    assert post(reused_gateway, TICKET, {"X-Request-ID": "x" * 128}).headers["X-Request-ID"] == "x" * 128


@pytest.mark.parametrize(
    "hostile", ["<script>alert(1)</script>", "x" * 200, "a b", "id\u00e9", "../../etc", "a;b"]
)
def test_a_hostile_request_id_is_replaced_never_reflected(hostile: str, reused_gateway: ThreadedGateway) -> None:
    response = requests.get(
        f"{reused_gateway.url}/requests/abc", headers={"X-Request-ID": hostile.encode("utf-8")}, timeout=TIMEOUT
    )
    body = assert_error(response, 400, "invalid_ticket_id")
    rid = response.headers["X-Request-ID"]
    assert rid != hostile and GENERATED_ID.fullmatch(rid)
    assert body["details"]["request_id"] == rid
    assert hostile not in response.text


def test_every_answer_has_a_fresh_request_id(reused_gateway: ThreadedGateway) -> None:
    ids = {
        post(reused_gateway, data=b"{", content_type="application/json").headers["X-Request-ID"] for _ in range(5)
    }
    assert len(ids) == 5 and all(GENERATED_ID.fullmatch(i) for i in ids)
    assert GENERATED_ID.fullmatch(post(reused_gateway, TICKET).headers["X-Request-ID"])
