"""One error table: the ``GatewayError`` tree is the only list of codes, and everything else agrees with it.

The README's table is the generated one; every class is raised (or mapped) somewhere; the OpenAPI document
lists per operation only codes the operation can produce, and a live gateway (real sockets, in front of the
sandbox) answers Werkzeug's own failures with codes of the tree, each documented for its operation.
``/`` points to ``/docs``, and ``/docs`` shows every route, parameter, request example, response and code.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from tests.helpers import raw_request
from tests.servers import REPO, Starter, ThreadedGateway
from zoho_gateway import errors
from zoho_gateway.api.openapi_responses import OPERATION_ERRORS
from zoho_gateway.api.schemas import TICKET_IN_EXAMPLES, ticket_in

README_TABLE = re.compile(r"<!-- errors:begin -->\n(.*?)<!-- errors:end -->", re.DOTALL)
KEY = "docs-client-7c2f9a41e0b35d68"
AUTH = {"Authorization": f"Bearer {KEY}"}


def readme_table() -> str:
    found = README_TABLE.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert found, "README.md has no <!-- errors:begin --> ... <!-- errors:end --> block"
    return found.group(1)


def test_the_readme_table_is_the_generated_one() -> None:
    assert readme_table() == errors.markdown_table(), "paste errors.markdown_table() between the README markers"


def test_codes_are_unique_and_each_class_says_what_it_means() -> None:
    catalogue = errors.catalogue()
    codes = [error.code for error in catalogue]
    assert len(codes) == len(set(codes)), codes
    assert [error.status for error in catalogue] == sorted(error.status for error in catalogue)
    for error in catalogue:
        assert 400 <= error.status < 600, error
        assert re.fullmatch(r"[a-z][a-z_]+", error.code), error
        assert error.summary and error.meaning and "|" not in error.meaning, error


def test_every_error_class_is_raised_or_mapped_somewhere() -> None:
    """What nothing raises is deleted (``Forbidden`` went this way); the docs may not count as a use."""
    listing = {REPO / "zoho_gateway" / "errors.py", REPO / "zoho_gateway" / "api" / "openapi_responses.py"}
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (REPO / "zoho_gateway").rglob("*.py")
        if path not in listing and "sandbox" not in path.parts
    )
    unused = [error.__name__ for error in errors.catalogue() if not re.search(rf"\b{error.__name__}\b", sources)]
    assert unused == []


def test_every_code_but_405_and_500_belongs_to_an_operation() -> None:
    listed = {error for operation in OPERATION_ERRORS.values() for error in operation}
    assert set(errors.catalogue()) - listed == {errors.GatewayError, errors.MethodNotAllowed}


def documented_codes(document: dict[str, Any], path: str, method: str) -> dict[int, set[str]]:
    """``{status: codes}`` of one operation's error responses, read from the schema that pins them."""
    codes: dict[int, set[str]] = {}
    for status, answer in document["paths"][path][method]["responses"].items():
        if int(status) < 400:
            continue
        pinned = answer["content"]["application/json"]["schema"]["allOf"][1]
        codes[int(status)] = set(pinned["properties"]["details"]["properties"]["code"]["enum"])
    return codes


@pytest.fixture
def live(make_gateway: Starter) -> tuple[ThreadedGateway, dict[str, Any]]:
    """A gateway with API keys on, and the OpenAPI document it serves."""
    gateway = make_gateway(GATEWAY_API_KEYS=f"docs={KEY}", GATEWAY_RATE_LIMIT="100000/minute")
    document: dict[str, Any] = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    return gateway, document


def test_each_operation_documents_only_the_codes_it_can_produce(live: tuple[ThreadedGateway, dict[str, Any]]) -> None:
    _, document = live
    create = documented_codes(document, "/requests", "post")
    read = documented_codes(document, "/requests/{ticket_id}", "get")
    assert create[400] == {"bad_request", "invalid_json", "invalid_header", "invalid_multipart"}  # a form too
    assert read[400] == {"invalid_ticket_id"}
    assert create[504] == {"zoho_outcome_unknown"} and read[504] == {"zoho_timeout"}
    assert 404 not in create and {409, 413, 415, 422} <= set(create) and not {409, 413, 415} & set(read)
    assert read[422] == {"validation_failed"}  # only ?view= other than full
    assert "state_unavailable" in create[503] and "state_unavailable" not in read[503]
    assert documented_codes(document, "/token/status", "get") == {
        401: {"unauthorized"},
        403: {"forbidden"},
        429: {"rate_limited"},
        503: {"state_unavailable"},
    }
    assert documented_codes(document, "/metrics", "get") == {401: {"unauthorized"}, 403: {"forbidden"}}
    for path in ("/", "/healthz", "/readyz", "/openapi.json", "/docs"):  # public: no key, no limit, no errors
        failures = {status for status in document["paths"][path]["get"]["responses"] if int(status) >= 400}
        assert failures == ({"503"} if path == "/readyz" else set()), path
    # Each error response says its codes and meanings in words too, from the same classes.
    described = document["paths"]["/requests"]["post"]["responses"]["415"]["description"]
    assert described.splitlines() == [
        f"- `unsupported_media_type`: {errors.UnsupportedMediaType.meaning}",
        f"- `unsupported_attachment_type`: {errors.UnsupportedAttachmentType.meaning}",  # a form's file
    ]
    assert "Content-Type" in described


def raw_exchange(url: str, data: bytes) -> tuple[int, dict[str, Any]]:
    """Send ``data`` as-is, close our side, and read the whole answer: (status, JSON body)."""
    head, body = raw_request(url, data, timeout=10)
    return int(head.split()[1]), json.loads(body)


def test_werkzeugs_own_failures_answer_with_codes_of_the_tree(live: tuple[ThreadedGateway, dict[str, Any]]) -> None:
    gateway, document = live
    url = gateway.url
    too_large = json.dumps({**TICKET_IN_EXAMPLES["minimal"]["value"], "description": "x" * (1024 * 1024)})
    truncated = (
        b"POST /requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\nConnection: close\r\n\r\n{"subject"' % KEY.encode()
    )
    as_json = {**AUTH, "Content-Type": "application/json"}
    sent: list[tuple[str | None, requests.Response | tuple[int, dict[str, Any]]]] = [
        (None, requests.get(f"{url}/no/such/route", headers=AUTH, timeout=10)),
        (None, requests.delete(f"{url}/requests", headers=AUTH, timeout=10)),
        ("/requests/{ticket_id}", requests.get(f"{url}/requests/12%2F34", headers=AUTH, timeout=10)),
        ("/requests", requests.post(f"{url}/requests", data="subject=x", headers=AUTH, timeout=10)),
        ("/requests", requests.post(f"{url}/requests", data=too_large, headers=as_json, timeout=10)),
        ("/requests", raw_exchange(url, truncated)),  # the body stops before its Content-Length: Werkzeug's 400
    ]
    seen = set()
    by_code = {error.code: error for error in errors.catalogue()}
    for path, answer in sent:
        status, body = (answer.status_code, answer.json()) if isinstance(answer, requests.Response) else answer
        error = by_code[body["details"]["code"]]
        assert (status, body["error"]) == (error.status, error.summary), body
        if path is not None:
            method = "post" if path == "/requests" else "get"
            assert body["details"]["code"] in documented_codes(document, path, method)[status], (path, body)
        seen.add(error.code)
    assert seen == {"not_found", "method_not_allowed", "unsupported_media_type", "payload_too_large", "bad_request"}


def test_415_names_the_content_type(live: tuple[ThreadedGateway, dict[str, Any]]) -> None:
    gateway, _ = live
    answer = requests.post(
        f"{gateway.url}/requests", data="{}", headers={**AUTH, "Content-Type": "text/plain"}, timeout=10
    )
    assert answer.status_code == 415
    assert answer.json()["error"] == "Content-Type must be application/json"
    assert "Content-Type" in answer.json()["details"]["message"]


def test_the_root_points_to_the_docs_without_a_key(live: tuple[ThreadedGateway, dict[str, Any]]) -> None:
    gateway, _ = live
    answer = requests.get(f"{gateway.url}/", allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == "/docs"
    assert answer.json()["docs"] == "/docs" and answer.json()["openapi"] == "/openapi.json"
    followed = requests.get(f"{gateway.url}/", timeout=10)
    assert followed.status_code == 200 and followed.url == f"{gateway.url}/docs"
    assert followed.headers["Content-Type"].startswith("text/html")


def test_the_documented_request_examples_are_valid_and_create_tickets(
    live: tuple[ThreadedGateway, dict[str, Any]],
) -> None:
    gateway, document = live
    examples = document["paths"]["/requests"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"minimal", "full"}
    assert set(examples["full"]["value"]) == set(ticket_in.fields), "the full example shows every field"
    for example in examples.values():
        ticket_in.load(example["value"])
        created = requests.post(f"{gateway.url}/requests", json=example["value"], headers=AUTH, timeout=10)
        assert created.status_code == 201, created.text


def test_the_docs_page_shows_every_route_parameter_example_response_and_code(
    live: tuple[ThreadedGateway, dict[str, Any]],
) -> None:
    gateway, document = live
    answer = requests.get(f"{gateway.url}/docs", timeout=10)  # public: no key
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/html")
    page = answer.text
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no CDN, no script"
    for path, item in document["paths"].items():
        for operation in item.values():
            section = page.split(f'id="{operation["operationId"]}"', 1)[1].split("<h2", 1)[0]
            assert f"<code>{path}</code>" in section, path
            for parameter in operation["parameters"]:
                assert f"<code>{parameter['name']}</code>" in section, (path, parameter["name"])
            for status in operation["responses"]:
                assert f">{status}</b>" in section, (path, status)
            if operation["operationId"] == "createTicket":
                assert "Printer on fire" in section and "IT Services" in section, "the full request example"
                assert "<code>Location</code>" in section
    for error in errors.catalogue():
        assert f"<code>{error.code}</code>" in page, error.code
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in page, name
