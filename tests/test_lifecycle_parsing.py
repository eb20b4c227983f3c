"""The lifecycle's pure parts, with plain dicts: entity readers, HTML to text, transforms, search builders,
the judging of lifecycle answers, and the streamed multipart body.

Payloads are the real samples of ZOHO-API.md §4 (``tests/fixtures/``) and entities as the sandbox builds them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.formparser import parse_form_data

from zoho_gateway.errors import (
    TicketNotFound,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
    ZohoRejected,
    ZohoUnavailable,
)
from zoho_gateway.sandbox.entities import (
    NewRequest,
    attachment_object,
    build_request,
    catalog_object,
    note_object,
    resolution_object,
    status_object,
    technician_object,
    user_object,
)
from zoho_gateway.zoho import entities, parser, search
from zoho_gateway.zoho.multipart import MultipartStream, ShortFile
from zoho_gateway.zoho.text import for_html_field, looks_like_html, plain_text
from zoho_gateway.zoho.transform import close_input_data, note_input_data, resolution_input_data, update_input_data

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def sandbox_entity(**lookups: Any) -> dict[str, Any]:
    new = NewRequest(
        subject="Screen flickers",
        description="<div>It <b>flickers</b><br>since Monday</div>",
        requester=user_object(name="Bo Berg", email_id="bo@example.com"),
        lookups={name: catalog_object(name, {"name": value}) for name, value in lookups.items()},
    )
    return build_request("123640000000301001", "57", new, 1_700_000_000_123)


# ---- entity readers ----------------------------------------------------------------------------------


def test_full_ticket_of_the_real_get_sample() -> None:
    full = entities.full_ticket(fixture("sdp_get_request.json")["request"])
    assert full == {
        "ticket_id": "123640000000240013",
        "status": "Open",
        "technician_assigned": "Unassigned",
        "technician_contact_email": None,
        "technician_comments": None,
        "display_id": "102",
        "subject": "Test create request",
        "description": "Update the description",
        "requester": {"name": "First Last", "email": None},
        "priority": "High",
        "category": None,
        "department": None,
        "created_at": "2020-06-24T12:05:00.533Z",
        "updated_at": "2020-06-24T15:27:44.184Z",
        "due_by": None,
        "resolution": None,
        "has_attachments": False,
    }


def test_full_ticket_of_the_assigned_sample_keeps_the_seed_fields() -> None:
    entity = fixture("sdp_get_request_assigned.json")["request"]
    full = entities.full_ticket(entity)
    seed = parser.simplify(entity)
    assert {key: full[key] for key in seed} == seed  # type: ignore[literal-required]
    assert full["technician_assigned"] == "First Last"


def test_full_ticket_of_a_sandbox_entity_reads_html_and_lookups() -> None:
    entity = sandbox_entity(priority="Urgent", category="Hardware", department="Sales")
    entity["resolution"] = resolution_object("<p>Replaced the <b>cable</b> &amp; driver</p>", 1_700_000_100_000)
    entity["technician"] = technician_object(name="Tess Tech", email_id="tess@example.com")
    full = entities.full_ticket(entity)
    assert full["description"] == "It flickers\nsince Monday"
    assert full["resolution"] == "Replaced the cable & driver"
    assert full["technician_comments"] == "<p>Replaced the <b>cable</b> &amp; driver</p>"  # the seed's, as stored
    assert (full["priority"], full["category"], full["department"]) == ("Urgent", "Hardware", "Sales")
    assert full["requester"] == {"name": "Bo Berg", "email": "bo@example.com"}
    assert full["created_at"] == "2023-11-14T22:13:20.123Z"
    assert full["due_by"] == "2023-11-15T02:13:20.123Z"  # Urgent: four hours
    assert full["technician_contact_email"] == "tess@example.com"


def test_full_ticket_tolerates_a_bare_entity() -> None:
    full = entities.full_ticket({"id": 5})
    assert full["ticket_id"] == "5"
    assert full["requester"] == {"name": None, "email": None}
    assert full["description"] is None and full["created_at"] is None and full["has_attachments"] is False
    assert entities.full_ticket({"id": "6", "attachments": [{"id": "1"}]})["has_attachments"] is True


def test_summary_of_a_list_row() -> None:
    row = fixture("sdp_get_request.json")["request"]
    assert entities.summary(row) == {
        "ticket_id": "123640000000240013",
        "display_id": "102",
        "subject": "Test create request",
        "status": "Open",
        "technician_assigned": "Unassigned",
        "created_at": "2020-06-24T12:05:00.533Z",
        "updated_at": "2020-06-24T15:27:44.184Z",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"display_value": "Jun 24, 2020 03:05 PM", "value": "1593000300533"}, "2020-06-24T12:05:00.533Z"),
        ({"value": "0"}, "1970-01-01T00:00:00.000Z"),
        ({"value": "soon"}, None),
        ({"display_value": "Jun 24, 2020"}, None),
        ({"value": "99999999999999999999"}, None),
        (None, None),
        ("1593000300533", None),
    ],
)
def test_iso_time(value: Any, expected: str | None) -> None:
    assert entities.iso_time(value) == expected


def test_is_closed() -> None:
    assert entities.is_closed({"status": status_object("Closed")})
    assert entities.is_closed({"status": {"name": "closed"}})
    assert not entities.is_closed({"status": status_object("Resolved")})
    assert not entities.is_closed({"status": None})


def test_note_of_a_sandbox_note() -> None:
    entity = note_object("900001", "<div>Called &amp; left a message</div>", {"show_to_requester": True}, 0)
    assert entities.note(entity) == {
        "note_id": "900001",
        "text": "Called & left a message",
        "show_to_requester": True,
        "created_at": "1970-01-01T00:00:00.000Z",
        "author": "Sandbox API User",
    }
    assert entities.note({"id": 7, "show_to_requester": "false"})["show_to_requester"] is False
    with pytest.raises(ZohoBadResponse):
        entities.note({"description": "no id"})


def test_attachment_of_a_sandbox_attachment_and_of_a_bare_one() -> None:
    entity = attachment_object("800001", "1", "shot.png", "image/png", 2048, "0" * 64, 0)
    assert entities.attachment(entity) == {
        "attachment_id": "800001",
        "name": "shot.png",
        "size": 2048,
        "content_type": "image/png",
    }
    assert entities.attachment({"id": "9", "size": 12}) == {
        "attachment_id": "9",
        "name": "",
        "size": 12,
        "content_type": None,
    }
    assert entities.attachment({"id": "9", "size": {"display_value": "1 KB"}})["size"] is None


def test_pick_value() -> None:
    assert entities.pick_value(catalog_object("priority", {"name": "High"})) == {
        "name": "High",
        "id": catalog_object("priority", {"name": "High"})["id"],
    }
    assert entities.pick_value({"id": "1", "name": None}) is None


# ---- HTML to text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<div>line1</div><div>line2</div><div><br></div><div>line4</div>", "line1\nline2\n\nline4"),
        ("Hi,<br><br>The printer &quot;HP&quot; is <i>broken</i>.", 'Hi,\n\nThe printer "HP" is broken.'),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<ol><li>first</li><li>second</li></ol>after", "- first\n- second\n\nafter"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ('<a href="mailto:x@example.com">x@example.com</a>', "x@example.com"),
        ('<a href="https://e.example/a">https://e.example/a</a>', "https://e.example/a"),
        ("<pre>a\n  b</pre>", "a\nb"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),  # text about a tag stays text
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("caf&eacute; &#8364;5 &#x1F600;", "café €5 \U0001f600"),
        ("<html><head><title>t</title><meta charset=utf-8></head><body>body</body></html>", "body"),
    ],
)
def test_plain_text_of_html(html: str, text: str) -> None:
    assert plain_text(html) == text


def test_plain_text_drops_every_kind_of_active_content() -> None:
    html = (
        "<script>a()</script><style>b{}</style><iframe>c</iframe><object>d</object><svg><text>e</text></svg>"
        "<template>f</template><noscript>g</noscript><textarea>h</textarea><!-- i --><![CDATA[j]]>"
        "<div onmouseover=k()>visible</div>"
    )
    assert plain_text(html) == "visible"


def test_plain_text_leaves_plain_text_alone() -> None:
    assert plain_text("a < b and c > d\r\n  indented  \r\nend\x07") == "a < b and c > d\n  indented\nend"
    assert plain_text(None) is None
    assert plain_text("") == ""


@pytest.mark.parametrize(
    "text",
    ["a < b", "Fish & chips", "plain", "two\nlines", "<soon>", "x &amp; y", "tag <b>bold</b>\nnext line", "&#60;"],
)
def test_text_for_an_html_field_reads_back_unchanged(text: str) -> None:
    assert plain_text(for_html_field(text)) == text


def test_text_for_an_html_field_changes_only_what_would_read_as_html() -> None:
    assert for_html_field("Fish & chips\nand peas") == "Fish & chips\nand peas"
    assert for_html_field("use <b>\nhere") == "use &lt;b&gt;<br>here"
    assert looks_like_html("&amp;") and looks_like_html("<br>") and not looks_like_html("a <3 b & c")


# ---- transforms --------------------------------------------------------------------------------------


def test_update_input_data_holds_only_the_changes() -> None:
    data = json.loads(update_input_data({"subject": "New", "priority": {"name": "High"}}))
    assert data == {"request": {"subject": "New", "priority": {"name": "High"}}}
    data = json.loads(update_input_data({"description": "x <y>", "status": {"name": "Open"}}))
    assert data == {"request": {"description": "x &lt;y&gt;", "status": {"name": "Open"}}}


def test_close_resolution_and_note_input_data() -> None:
    assert close_input_data(None) is None
    assert json.loads(close_input_data("done") or "") == {"request": {"closure_info": {"closure_comments": "done"}}}
    assert json.loads(resolution_input_data("Fixed")) == {"resolution": {"content": "Fixed"}}
    note = json.loads(note_input_data("Café ☕", show_to_requester=True))
    assert note == {"request_note": {"description": "Café ☕", "show_to_requester": True}}
    assert "Café ☕" in note_input_data("Café ☕", show_to_requester=True)  # non-ASCII kept as is


# ---- search builders ---------------------------------------------------------------------------------


def test_for_query_builds_one_criterion_per_filter() -> None:
    assert search.for_query() == []
    assert search.for_query(requester_email="a@b.co", status="Open", subject_text="vpn", display_id="42") == [
        {"field": "requester.email_id", "condition": "is", "value": "a@b.co"},
        {"field": "status.name", "condition": "is", "value": "Open"},
        {"field": "subject", "condition": "contains", "value": "vpn"},
        {"field": "display_id", "condition": "is", "value": "42"},
    ]


def test_page_of_pages_and_sorts() -> None:
    info = search.page_of(search.for_query(status="Open"), page=3, per_page=25, sort="-updated_at")
    assert info == {
        "row_count": 25,
        "start_index": 51,
        "sort_field": "last_updated_time",
        "sort_order": "desc",
        "search_criteria": [{"field": "status.name", "condition": "is", "value": "Open"}],
    }
    assert "search_criteria" not in search.page_of([], page=1, per_page=1, sort="created_at")
    for bad in ({"page": 0}, {"per_page": 101}, {"per_page": 0}, {"sort": "subject"}):
        with pytest.raises(ValueError):
            search.page_of([], **{"page": 1, "per_page": 10, "sort": "created_at", **bad})
    assert search.paging(101, 100) == {"row_count": 100, "start_index": 101}


# ---- judging lifecycle answers -----------------------------------------------------------------------


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize("operation", ["update", "close", "resolution", "note", "notes", "upload", "attachments"])
def test_an_unknown_request_is_ticket_not_found_on_every_call_on_it(operation: parser.Operation) -> None:
    with pytest.raises(TicketNotFound):
        parser.judge(404, body(fixture("sdp_error_4007.json")), operation)
    with pytest.raises(TicketNotFound):
        parser.judge(404, b"<html>Not Found</html>", operation)


def test_a_404_on_a_pick_list_is_no_ticket() -> None:
    with pytest.raises(ZohoBadResponse):
        parser.judge(404, body(fixture("sdp_error_4007.json")), "meta")


@pytest.mark.parametrize("operation", ["update", "close", "resolution", "note", "upload"])
def test_a_refused_value_on_a_write_is_zoho_rejected(operation: parser.Operation) -> None:
    with pytest.raises(ZohoRejected) as info:
        parser.judge(400, body(fixture("sdp_error_4001_extra_key.json")), operation)
    assert info.value.fields == {"os": ["EXTRA_KEY_FOUND_IN_JSON"]}


@pytest.mark.parametrize("operation", ["note", "upload"])
@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_after_an_adding_write_is_outcome_unknown(operation: parser.Operation, status: int) -> None:
    with pytest.raises(ZohoOutcomeUnknown) as info:
        parser.judge(status, b"oops", operation)
    assert parser.UNKNOWN_OUTCOMES[operation] in info.value.message


@pytest.mark.parametrize("operation", ["update", "close", "resolution"])
def test_a_server_error_on_a_value_setting_write_is_a_bad_response(operation: parser.Operation) -> None:
    with pytest.raises(ZohoBadResponse):
        parser.judge(500, b"oops", operation)
    with pytest.raises(ZohoUnavailable):
        parser.judge(504, b"", operation)


def test_an_already_closed_answer_is_a_4xx_refusal() -> None:
    answer = {"response_status": {"status_code": 4000, "messages": [{"status_code": 4000, "message": "x"}]}}
    with pytest.raises(ZohoBadResponse) as info:
        parser.judge(
            400, body({**answer, "response_status": {**answer["response_status"], "status": "failed"}}), "close"
        )
    assert info.value.extra["upstream_status"] == 400


def test_entity_of_and_entity_list() -> None:
    assert parser.entity_of({"request_note": {"id": "1"}}, "request_note", "note") == {"id": "1"}
    assert parser.entity_of({"note": {"id": 2}}, "request_note", "note") == {"id": 2}
    assert parser.entity_of({"request": {}}, "request") is None
    listed = fixture("sdp_list_requests.json")
    assert parser.entity_list(listed, ("requests",), 10) == ([], False)
    items = [{"id": "1"}, {"id": "2"}]
    assert parser.entity_list({"request_notes": items}, ("request_notes", "notes"), 2) == (items, True)
    assert (
        parser.entity_list({"notes": items, "list_info": {"has_more_rows": False}}, ("request_notes", "notes"), 2)[1]
        is False
    )
    assert parser.entity_list({}, ("attachments",), 10) == ([], False)
    with pytest.raises(ZohoBadResponse):
        parser.entity_list({"attachments": "none"}, ("attachments",), 10)


# ---- the streamed multipart body ---------------------------------------------------------------------


def parse(stream: MultipartStream, read_size: int) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    sent = io.BytesIO()
    while chunk := stream.read(read_size):
        assert len(chunk) <= read_size
        sent.write(chunk)
    assert sent.tell() == stream.length
    sent.seek(0)
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": stream.content_type,
        "CONTENT_LENGTH": str(stream.length),
        "wsgi.input": sent,
    }
    _, form, files = parse_form_data(environ)
    found = {
        key: (storage.filename or "", storage.mimetype, storage.read()) for key, storage in files.items(multi=True)
    }
    return dict(form), found


@pytest.mark.parametrize("read_size", [1, 7, 1000, 65536])
def test_multipart_stream_is_a_valid_form_whatever_the_read_size(read_size: int) -> None:
    data = bytes(range(256)) * 40
    source = io.BytesIO(b"skip" + data)
    source.seek(4)  # read from where the stream stands
    stream = MultipartStream(
        [("addtoattachment", "true")],
        [
            ("filename", 'shot "1".png', "image/png", source, len(data)),
            ("other", "empty.txt", "text/plain", io.BytesIO(b""), 0),
        ],
    )
    form, files = parse(stream, read_size)
    assert form == {"addtoattachment": "true"}
    assert files == {"filename": ('shot "1".png', "image/png", data), "other": ("empty.txt", "text/plain", b"")}


def test_multipart_stream_sends_only_the_stated_size_and_refuses_a_short_file() -> None:
    stream = MultipartStream([], [("f", "a.bin", "application/octet-stream", io.BytesIO(b"abcdef"), 3)])
    _, files = parse(stream, 2)
    assert files["f"][2] == b"abc"
    short = MultipartStream([], [("f", "a.bin", "application/octet-stream", io.BytesIO(b"ab"), 3)])
    with pytest.raises(ShortFile):
        while short.read(1024):
            pass
