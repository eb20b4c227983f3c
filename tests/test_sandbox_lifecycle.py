"""The sandbox's SDP v3 calls after creation (update, close, reopen, notes, resolution, uploads) and meta lists."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests

from tests.helpers import (
    ENTITY_KEYS,
    TIMEOUT,
    Served,
    control,
    failure,
    fault,
    mint,
    sdp_create,
    sdp_get,
    sdp_headers,
    stats,
)
from tests.servers import Sandbox
from zoho_gateway.sandbox import SandboxServer

PREFIXES = ["/api/v3", "/app/itdesk/api/v3"]


def call(
    sandbox: Served,
    token: str,
    method: str,
    path: str,
    payload: Any = None,
    prefix: str = "/api/v3",
    **kwargs: Any,
) -> requests.Response:
    """An SDP call with ``payload`` as the ``input_data`` form field (none when None)."""
    data = None if payload is None else {"input_data": json.dumps(payload)}
    return requests.request(
        method,
        f"{sandbox.url}{prefix}{path}",
        headers=sdp_headers(token),
        data=data,
        timeout=kwargs.pop("timeout", TIMEOUT),
        **kwargs,
    )


def new_ticket(sandbox: Served, token: str, **fields: Any) -> dict[str, Any]:
    entity = sdp_create(sandbox, token, {"subject": "Printer on fire", **fields}).json()["request"]
    assert isinstance(entity, dict)
    return entity


def detail(answer: requests.Response) -> dict[str, Any]:
    """The first message of a failed envelope."""
    message = answer.json()["response_status"]["messages"][0]
    assert isinstance(message, dict)
    return message


# ---- update, reopen ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_update_changes_fields_and_stamps_last_updated(sandbox: Sandbox, prefix: str) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token, priority={"name": "Low"}, udf_fields={"udf_sline_1": "ref"})
    time.sleep(0.01)
    change = {
        "subject": "Printer still on fire",
        "description": "<p>Now with <b>smoke</b></p>",
        "priority": {"name": "urgent"},
        "category": {"name": "Printers"},
        "department": {"name": "Finance"},
        "status": {"name": "In Progress"},
        "udf_fields": {"udf_char2": "more"},
        "technician": {"email_id": "ada@example.com"},
    }
    answer = call(sandbox, token, "PUT", f"/requests/{ticket['id']}", {"request": change}, prefix)
    assert answer.status_code == 200, answer.text
    assert answer.json()["response_status"] == {"status_code": 2000, "status": "success"}
    entity = answer.json()["request"]
    assert entity["subject"] == "Printer still on fire" and entity["description"] == change["description"]
    assert entity["priority"]["name"] == "Urgent" and entity["category"]["name"] == "Printers"
    assert entity["department"]["name"] == "Finance" and entity["status"]["name"] == "In Progress"
    assert entity["udf_fields"] == {"udf_sline_1": "ref", "udf_char2": "more"}
    assert entity["technician"]["name"] == "Ada"
    assert int(entity["last_updated_time"]["value"]) > int(ticket["last_updated_time"]["value"])
    created = int(entity["created_time"]["value"])
    assert int(entity["due_by_time"]["value"]) == created + 4 * 3_600_000  # Urgent: 4 h
    assert int(ticket["due_by_time"]["value"]) == created + 72 * 3_600_000  # Low: 72 h
    assert sdp_get(sandbox, token, ticket["id"]).json()["request"] == entity
    assert stats(sandbox)["update_calls"] == 1 and stats(sandbox)["updates"] == 1


def test_update_can_clear_a_lookup_and_set_the_resolution(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token, category={"name": "Network"})
    change = {"category": None, "resolution": {"content": "Rebooted the router"}}
    entity = call(sandbox, token, "PUT", f"/requests/{ticket['id']}", {"request": change}).json()["request"]
    assert entity["category"] is None and entity["resolution"]["content"] == "Rebooted the router"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"colour": "red"}, 4001, "colour"),
        ({"subject": ""}, 4012, "subject"),
        ({"priority": {"name": "Whenever"}}, 4001, "priority"),
        ({"status": None}, 4001, "status"),
        ({"udf_fields": {"custom": 1}}, 4001, "custom"),
        ({"closure_info": {"closure_code": {"name": "Because"}}}, 4001, "closure_code"),
    ],
)
def test_bad_update_changes_nothing(sandbox: Sandbox, change: dict[str, Any], code: int, field: str) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    answer = call(sandbox, token, "PUT", f"/requests/{ticket['id']}", {"request": change})
    assert answer.status_code == 400
    assert (detail(answer)["status_code"], detail(answer)["field"]) == (code, field)
    assert sdp_get(sandbox, token, ticket["id"]).json()["request"] == ticket


def test_update_of_unknown_request_is_4007_and_needs_a_token(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    answer = call(sandbox, token, "PUT", "/requests/999", {"request": {"subject": "x"}})
    assert answer.status_code == 404 and detail(answer)["status_code"] == 4007
    assert call(sandbox, "1000.bad.bad", "PUT", "/requests/999", {"request": {}}).status_code == 401
    assert call(sandbox, token, "PUT", "/requests/999").status_code == 404


def test_update_without_input_data_is_4000(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    answer = call(sandbox, token, "PUT", f"/requests/{ticket['id']}")
    assert answer.status_code == 400 and answer.json() == failure(4000, "input_data is required")


# ---- close, reopen -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_close_with_closure_info_then_reopen(sandbox: Sandbox, prefix: str) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    closure = {
        "requester_ack_resolution": True,
        "requester_ack_comments": "Works again",
        "closure_comments": "Replaced the fuser",
        "closure_code": {"name": "success"},
    }
    answer = call(
        sandbox, token, "PUT", f"/requests/{ticket['id']}/close", {"request": {"closure_info": closure}}, prefix
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["response_status"]["messages"][0]["message"] == "Request(s) closed successfully"
    entity = answer.json()["request"]
    assert entity["status"]["name"] == "Closed" and entity["completed_time"] is not None
    assert entity["closure_info"]["closure_code"]["name"] == "Success"
    assert entity["closure_info"]["closure_comments"] == "Replaced the fuser"
    assert set(entity) == ENTITY_KEYS | {"closure_info"}  # the 62 keys plus closure_info once closed

    # Closing again is refused (assumed SDP behaviour) and changes nothing.
    again = call(sandbox, token, "PUT", f"/requests/{ticket['id']}/close", {"request": {"closure_info": closure}})
    assert again.status_code == 400 and again.json() == failure(4000, "Request is already closed")

    reopened = call(sandbox, token, "PUT", f"/requests/{ticket['id']}", {"request": {"status": {"name": "Open"}}})
    entity = reopened.json()["request"]
    assert entity["status"]["name"] == "Open" and entity["is_reopened"] is True
    assert entity["completed_time"] is None and entity["resolved_time"] is None
    assert stats(sandbox)["closes"] == 1 and stats(sandbox)["close_calls"] == 2


def test_close_without_input_data_and_close_through_update(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    first, second = new_ticket(sandbox, token), new_ticket(sandbox, token)
    closed = call(sandbox, token, "PUT", f"/requests/{first['id']}/close").json()["request"]
    assert closed["status"]["name"] == "Closed" and closed["closure_info"]["requester_ack_resolution"] is False

    change = {
        "status": {"name": "Closed"},
        "closure_info": {"requester_ack_resolution": "true", "closure_comments": "done"},
    }
    closed = call(sandbox, token, "PUT", f"/requests/{second['id']}", {"request": change}).json()["request"]
    assert closed["status"]["name"] == "Closed" and closed["closure_info"]["requester_ack_resolution"] is True


def test_close_rejects_unknown_keys(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    answer = call(sandbox, token, "PUT", f"/requests/{ticket['id']}/close", {"request": {"closure_info": {"why": 1}}})
    assert answer.status_code == 400 and detail(answer)["field"] == "why"


# ---- notes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_notes_add_list_and_get(sandbox: Sandbox, prefix: str) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    assert ticket["has_notes"] is False
    first = call(
        sandbox,
        token,
        "POST",
        f"/requests/{ticket['id']}/notes",
        {"request_note": {"description": "<p>Called the user</p>", "show_to_requester": True}},
        prefix,
    )
    assert first.status_code == 201, first.text
    note = first.json()["request_note"]
    assert note["description"] == "<p>Called the user</p>" and note["show_to_requester"] is True
    assert note["notify_technician"] is False and note["created_time"]["value"].isdigit()
    assert note["id"].isdigit() and note["id"] != ticket["id"]
    call(
        sandbox, token, "POST", f"/requests/{ticket['id']}/notes", {"request_note": {"description": "Private"}}, prefix
    )

    listed = call(sandbox, token, "GET", f"/requests/{ticket['id']}/notes", prefix=prefix)
    body = listed.json()
    assert body["response_status"] == [{"status_code": 2000, "status": "success"}]
    assert [n["description"] for n in body["request_notes"]] == ["<p>Called the user</p>", "Private"]
    assert body["list_info"] == {"has_more_rows": False, "start_index": 1, "row_count": 2}
    one = call(sandbox, token, "GET", f"/requests/{ticket['id']}/notes/{note['id']}", prefix=prefix)
    assert one.json()["request_note"] == note
    assert call(sandbox, token, "GET", f"/requests/{ticket['id']}/notes/1", prefix=prefix).status_code == 404
    assert sdp_get(sandbox, token, ticket["id"]).json()["request"]["has_notes"] is True
    assert stats(sandbox)["notes_added"] == 2


@pytest.mark.parametrize(
    ("note", "code", "field"),
    [
        ({}, 4012, "description"),
        ({"description": "  "}, 4012, "description"),
        ({"description": "x" * 65_536}, 4001, "description"),
        ({"description": "x", "show_to_requester": "maybe"}, 4001, "show_to_requester"),
        ({"description": "x", "pinned": True}, 4001, "pinned"),
    ],
)
def test_bad_notes_are_refused(sandbox: Sandbox, note: dict[str, Any], code: int, field: str) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    answer = call(sandbox, token, "POST", f"/requests/{ticket['id']}/notes", {"request_note": note})
    assert answer.status_code == 400 and (detail(answer)["status_code"], detail(answer)["field"]) == (code, field)
    assert call(sandbox, token, "GET", f"/requests/{ticket['id']}/notes").json()["request_notes"] == []


def test_notes_of_unknown_request_are_4007(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    assert call(sandbox, token, "GET", "/requests/42/notes").status_code == 404
    assert call(sandbox, token, "POST", "/requests/42/notes", {"request_note": {"description": "x"}}).status_code == 404


# ---- resolution -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_resolution_endpoint_sets_the_one_resolution(sandbox: Sandbox, method: str) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    empty = call(sandbox, token, "GET", f"/requests/{ticket['id']}/resolutions")
    assert empty.json() == {"resolution": None, "response_status": {"status_code": 2000, "status": "success"}}
    for text in ("First try", "Replaced the toner"):
        answer = call(
            sandbox, token, method, f"/requests/{ticket['id']}/resolutions", {"resolution": {"content": text}}
        )
        assert answer.status_code == 200, answer.text
    resolution = answer.json()["resolution"]
    assert resolution["content"] == "Replaced the toner" and resolution["resolution_attachments"] == []
    assert set(resolution) == {"content", "submitted_on", "submitted_by", "resolution_attachments"}
    assert call(sandbox, token, "GET", f"/requests/{ticket['id']}/resolutions").json()["resolution"] == resolution
    assert sdp_get(sandbox, token, ticket["id"]).json()["request"]["resolution"]["content"] == "Replaced the toner"

    missing = call(sandbox, token, method, f"/requests/{ticket['id']}/resolutions", {"resolution": {}})
    assert missing.status_code == 400 and detail(missing)["status_code"] == 4012


# ---- uploads and attachments ---------------------------------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.mark.parametrize("prefix", PREFIXES)
def test_upload_attaches_files_and_lists_them(sandbox: Sandbox, prefix: str) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    files = [("filename", ("screen shot.png", PNG, "image/png")), ("filename", ("log.txt", b"hello\n", "text/plain"))]
    answer = requests.post(
        f"{sandbox.url}{prefix}/requests/{ticket['id']}/_uploads",
        headers=sdp_headers(token),
        files=files,
        data={"addtoattachment": "true"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["response_status"] == [{"status_code": 2000, "status": "success"}]
    uploaded = body["files"]
    assert [(f["name"], f["content_type"], f["size"]["value"]) for f in uploaded] == [
        ("screen shot.png", "image/png", str(len(PNG))),
        ("log.txt", "text/plain", "6"),
    ]
    assert all("_sha256" not in f for f in uploaded)

    listed = call(sandbox, token, "GET", f"/requests/{ticket['id']}/attachments", prefix=prefix).json()
    assert listed["attachments"] == uploaded and listed["response_status"][0]["status_code"] == 2000
    entity = sdp_get(sandbox, token, ticket["id"]).json()["request"]
    assert entity["has_attachments"] is True and entity["attachments"] == uploaded
    # The control API keeps each file's digest so tests can check the bytes arrived intact.
    stored = control(sandbox, "GET", f"tickets/{ticket['id']}/attachments").json()["attachments"]
    assert stored[0]["_sha256"] == hashlib.sha256(PNG).hexdigest()
    assert stats(sandbox)["uploads"] == 1 and stats(sandbox)["upload_calls"] == 1


def test_upload_without_addtoattachment_does_not_attach(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    answer = requests.post(
        f"{sandbox.url}/api/v3/requests/{ticket['id']}/_uploads",
        headers=sdp_headers(token),
        files={"filename": ("a.txt", b"a", "text/plain")},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200 and len(answer.json()["files"]) == 1
    assert call(sandbox, token, "GET", f"/requests/{ticket['id']}/attachments").json()["attachments"] == []
    assert sdp_get(sandbox, token, ticket["id"]).json()["request"]["has_attachments"] is False


def test_upload_needs_a_file_and_respects_the_size_cap(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    url = f"{sandbox.url}/api/v3/requests/{ticket['id']}/_uploads"
    none = requests.post(url, headers=sdp_headers(token), data={"addtoattachment": "true"}, timeout=TIMEOUT)
    assert none.status_code == 400 and detail(none)["status_code"] == 4012

    control(sandbox, "POST", "settings", {"max_upload_bytes": 1000}).raise_for_status()
    big = requests.post(
        url,
        headers=sdp_headers(token),
        files={"filename": ("big.bin", b"x" * 1001)},
        data={"addtoattachment": "true"},
        timeout=TIMEOUT,
    )
    assert big.status_code == 400 and detail(big)["status_code"] == 4000
    assert call(sandbox, token, "GET", f"/requests/{ticket['id']}/attachments").json()["attachments"] == []
    unknown = requests.post(
        f"{sandbox.url}/api/v3/requests/5/_uploads",
        headers=sdp_headers(token),
        files={"f": ("a", b"a")},
        timeout=TIMEOUT,
    )
    assert unknown.status_code == 404


# ---- meta lists -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("priorities", ["Low", "Medium", "Normal", "High", "Urgent"]),
        ("statuses", ["Open", "On Hold", "In Progress", "Resolved", "Closed", "Canceled"]),
        ("departments", ["IT Services", "Sales", "Finance", "Human Resources", "Engineering", "Administration"]),
    ],
)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_meta_lists(sandbox: Sandbox, key: str, names: list[str], prefix: str) -> None:
    token = mint(sandbox)
    answer = call(sandbox, token, "GET", f"/{key}", prefix=prefix)
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_status"] == [{"status_code": 2000, "status": "success"}]
    assert [item["name"] for item in body[key]] == names
    assert all(item["id"].isdigit() and len(item["id"]) == 18 for item in body[key])
    # The ids are the ones a create accepts.
    field = {"priorities": "priority", "statuses": "status", "departments": "department"}[key]
    entity = new_ticket(sandbox, token, **{field: {"id": body[key][-1]["id"]}})
    assert entity[field]["name"] == names[-1]
    assert stats(sandbox)["meta_calls"] == 1


def test_meta_lists_page_like_every_sdp_list(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    categories = call(sandbox, token, "GET", "/categories").json()
    assert len(categories["categories"]) == 8 and categories["list_info"]["has_more_rows"] is False
    page = requests.get(
        f"{sandbox.url}/api/v3/categories",
        headers=sdp_headers(token),
        params={"input_data": json.dumps({"list_info": {"row_count": 3, "start_index": 4, "get_total_count": True}})},
        timeout=TIMEOUT,
    ).json()
    assert [c["name"] for c in page["categories"]] == [c["name"] for c in categories["categories"][3:6]]
    assert page["list_info"] == {"has_more_rows": True, "start_index": 4, "row_count": 3, "total_count": 8}
    assert call(sandbox, "1000.bad.bad", "GET", "/categories").status_code == 401


# ---- faults reach every new call ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "method", "path", "payload"),
    [
        ("update", "PUT", "/requests/{id}", {"request": {"subject": "Changed"}}),
        ("close", "PUT", "/requests/{id}/close", None),
        ("note", "POST", "/requests/{id}/notes", {"request_note": {"description": "n"}}),
        ("resolution", "POST", "/requests/{id}/resolutions", {"resolution": {"content": "r"}}),
    ],
)
def test_writes_commit_then_lose_the_answer(
    sandbox: Sandbox, target: str, method: str, path: str, payload: Any
) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    fault(sandbox, target=target, kind="status_after_commit", status=502, times=1)
    answer = call(sandbox, token, method, path.format(id=ticket["id"]), payload)
    assert answer.status_code == 502 and detail(answer)["status_code"] == 4004
    assert sdp_get(sandbox, token, ticket["id"]).json()["request"] != ticket  # ... yet the change was stored


@pytest.mark.parametrize(
    ("target", "method", "path"),
    [
        ("notes", "GET", "/requests/{id}/notes"),
        ("attachments", "GET", "/requests/{id}/attachments"),
        ("meta", "GET", "/priorities"),
        ("upload", "POST", "/requests/{id}/_uploads"),
    ],
)
def test_faults_and_token_checks_cover_the_new_calls(
    sandbox: Sandbox, target: str, method: str, path: str
) -> None:
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    url_path = path.format(id=ticket["id"])
    fault(sandbox, target=target, kind="rate_limit", times=1)
    assert call(sandbox, token, method, url_path).status_code == 429
    assert call(sandbox, "1000.bad.bad", method, url_path).status_code == 401
    assert stats(sandbox)[f"{target}_calls"] == 2


def test_state_file_keeps_notes_and_attachments(tmp_path: Any) -> None:
    state_file = tmp_path / "world.json"
    with SandboxServer(state_file=state_file) as first:
        token = mint(first)
        ticket = new_ticket(first, token)
        call(first, token, "POST", f"/requests/{ticket['id']}/notes", {"request_note": {"description": "kept"}})
        requests.post(
            f"{first.url}/api/v3/requests/{ticket['id']}/_uploads",
            headers=sdp_headers(token),
            files={"filename": ("a.txt", b"a")},
            data={"addtoattachment": "true"},
            timeout=TIMEOUT,
        ).raise_for_status()
    with SandboxServer(state_file=state_file) as second:
        notes = call(second, token, "GET", f"/requests/{ticket['id']}/notes").json()["request_notes"]
        attachments = call(second, token, "GET", f"/requests/{ticket['id']}/attachments").json()["attachments"]
        assert [n["description"] for n in notes] == ["kept"] and [a["name"] for a in attachments] == ["a.txt"]
        later = call(second, token, "POST", f"/requests/{ticket['id']}/notes", {"request_note": {"description": "new"}})
        assert later.json()["request_note"]["id"] not in {notes[0]["id"], attachments[0]["id"]}


def test_a_10_mib_upload_arrives_intact(sandbox: Sandbox) -> None:
    """Big parts are spooled to disk by werkzeug and hashed in chunks; the digest proves every byte arrived."""
    token = mint(sandbox)
    ticket = new_ticket(sandbox, token)
    payload = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    answer = requests.post(
        f"{sandbox.url}/api/v3/requests/{ticket['id']}/_uploads",
        headers=sdp_headers(token),
        files={"filename": ("big.bin", payload, "application/octet-stream")},
        data={"addtoattachment": "true"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["files"][0]["size"] == {"display_value": "10.00 MB", "value": str(10 * 1024 * 1024)}
    stored = control(sandbox, "GET", f"tickets/{ticket['id']}/attachments").json()["attachments"]
    assert stored[0]["_sha256"] == hashlib.sha256(payload).hexdigest()
