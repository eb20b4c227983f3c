"""The sandbox's Zoho Desk v1 portal: tickets, comments, attachments, contacts, departments, the orgId and
token checks, Desk-style errors and faults, over real sockets."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.helpers import TIMEOUT
from tests.servers import Sandbox

# The top-level keys of the ZOHO-API.md §4.6 ticket (fetched with every include), without the
# integration's own "comments".
SAMPLE_KEYS = {
    "modifiedTime", "subCategory", "statusType", "subject", "dueDate", "departmentId", "channel", "onholdTime",
    "language", "source", "resolution", "sharedDepartments", "closedTime", "approvalCount", "isOverDue", "isTrashed",
    "contact", "createdTime", "id", "isResponseOverdue", "customerResponseTime", "productId", "contactId",
    "threadCount", "secondaryContacts", "priority", "classification", "commentCount", "taskCount", "accountId",
    "phone", "webUrl", "assignee", "isSpam", "status", "entitySkills", "ticketNumber", "sentiment", "customFields",
    "isArchived", "skillsInfo", "isRead", "description", "timeEntryCount", "channelRelatedInfo", "responseDueDate",
    "isDeleted", "modifiedBy", "department", "followerCount", "email", "layoutDetails", "channelCode", "product",
    "isFollowing", "cf", "slaId", "team", "layoutId", "assigneeId", "createdBy", "teamId", "contractId", "tagCount",
    "attachmentCount", "isEscalated", "category",
}  # fmt: skip
ALL_INCLUDES = "contacts,products,assignee,departments,team,isRead,skills"


@dataclass
class Desk:
    """A declared Desk portal with a token of its account."""

    sandbox: Sandbox
    info: dict[str, Any]
    token: str

    @property
    def api(self) -> str:
        return f"{self.info['base_url']}/api/v1"

    @property
    def department_id(self) -> str:
        department: str = self.info["department_id"]
        return department

    def headers(self, token: str | None = None, org_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Zoho-oauthtoken {token or self.token}", "orgId": org_id or self.info["org_id"]}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("headers", self.headers())
        return requests.request(method, f"{self.api}{path}", timeout=TIMEOUT, **kwargs)

    def create(self, **body: Any) -> requests.Response:
        body.setdefault("departmentId", self.department_id)
        if "contactId" not in body:
            body.setdefault("contact", {"email": "pat@example.com", "lastName": "Pat"})
        return self.call("POST", "/tickets", json=body)

    def ticket(self, subject: str = "Printer on fire", **body: Any) -> dict[str, Any]:
        answer = self.create(subject=subject, **body)
        assert answer.status_code == 200, answer.text
        ticket: dict[str, Any] = answer.json()
        return ticket

    def control(self, method: str, path: str, payload: Any = None) -> requests.Response:
        url = f"{self.sandbox.url}/_sandbox/t/{self.info['name']}/{path}"
        return requests.request(method, url, json=payload, timeout=TIMEOUT)

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.control("GET", "stats").json()
        return body


def mint_for(info: dict[str, Any]) -> str:
    form = {
        "grant_type": "refresh_token",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "refresh_token": info["refresh_token"],
    }
    answer = requests.post(f"{info['accounts_url']}/oauth/v2/token", data=form, timeout=TIMEOUT)
    token: str = answer.json()["access_token"]
    return token


def declare(sandbox: Sandbox, **spec: Any) -> dict[str, Any]:
    answer = requests.post(f"{sandbox.url}/_sandbox/portals", json=spec, timeout=TIMEOUT)
    assert answer.status_code == 201, answer.text
    info: dict[str, Any] = answer.json()
    return info


@pytest.fixture
def desk(sandbox: Sandbox) -> Desk:
    info = declare(sandbox, name="support", service="desk", org_id="700000001")
    return Desk(sandbox, info, mint_for(info))


def errors_of(answer: requests.Response) -> list[tuple[str, str]]:
    return [(item["fieldName"], item["errorType"]) for item in answer.json()["errors"]]


# ---- tickets -------------------------------------------------------------------------------------------------


def test_create_answers_the_ticket_in_the_shape_of_a_real_one(desk: Desk) -> None:
    answer = desk.create(subject="Printer on fire", description="<p>smoke</p>", priority="high", category="Hardware")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    ticket = answer.json()
    assert ticket["subject"] == "Printer on fire" and ticket["description"] == "<p>smoke</p>"
    assert (ticket["status"], ticket["statusType"], ticket["priority"]) == ("Open", "Open", "High")
    assert ticket["ticketNumber"] == "101" and ticket["id"].isdigit() and len(ticket["id"]) == 17
    assert ticket["departmentId"] == desk.department_id and ticket["category"] == "Hardware"
    assert ticket["email"] == "pat@example.com" and ticket["assigneeId"] is None
    assert ticket["createdTime"].endswith("Z") and ticket["createdTime"][10] == "T"
    # Without include, the related objects are left out (only their ids are there).
    assert "assignee" not in ticket and "contact" not in ticket and "department" not in ticket

    full = desk.call("GET", f"/tickets/{ticket['id']}", params={"include": ALL_INCLUDES}).json()
    assert set(full) == SAMPLE_KEYS
    assert full["assignee"] is None
    assert full["contact"]["email"] == "pat@example.com" and full["contact"]["id"] == ticket["contactId"]
    assert full["department"] == {"name": "Support", "id": desk.department_id}
    assert desk.stats()["creates"] == 1 and desk.stats()["contacts_created"] == 1


def test_a_contact_object_reuses_the_contact_with_that_email(desk: Desk) -> None:
    first = desk.ticket(contact={"email": "Pat@Example.com", "lastName": "Pat"})
    second = desk.ticket(contact={"email": "pat@example.com"})
    assert first["contactId"] == second["contactId"]
    by_id = desk.ticket(contactId=first["contactId"])
    assert by_id["contactId"] == first["contactId"] and by_id["ticketNumber"] == "103"
    assert desk.stats()["contacts"] == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"departmentId": None, "subject": "x"}, ("/departmentId", "missing")),
        ({"subject": ""}, ("/subject", "missing")),
        ({"subject": "x", "departmentId": "123"}, ("/departmentId", "invalid")),
        ({"subject": "x", "contact": None}, ("/contactId", "missing")),
        ({"subject": "x", "contactId": "97709000000000001"}, ("/contactId", "invalid")),
        ({"subject": "x", "contact": {"firstName": "Only"}}, ("/contact/lastName", "missing")),
        ({"subject": "x", "contact": {"email": "not-an-address"}}, ("/contact/email", "invalid")),
        ({"subject": "x", "priority": "Urgent"}, ("/priority", "invalid")),
        ({"subject": "x", "status": "Pending"}, ("/status", "invalid")),
        ({"subject": "x", "requester": "pat"}, ("/requester", "invalid")),
        ({"subject": "x" * 256}, ("/subject", "invalid")),
        ({"subject": "x", "cf": {"Bad Name": "1"}}, ("/cf/Bad Name", "invalid")),
    ],
)
def test_a_bad_create_is_refused_with_invalid_data(desk: Desk, body: dict[str, Any], error: tuple[str, str]) -> None:
    if body.get("contact", "") is None:
        del body["contact"]
        answer = desk.call("POST", "/tickets", json={**body, "departmentId": desk.department_id})
    else:
        answer = desk.create(**body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errorCode"] == "INVALID_DATA" and isinstance(answer.json()["message"], str)
    assert errors_of(answer) == [error]
    assert desk.stats()["tickets"] == 0


def test_a_body_that_is_not_json_is_refused(desk: Desk) -> None:
    answer = desk.call(
        "POST", "/tickets", data=b"{nope", headers={**desk.headers(), "Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and answer.json()["errorCode"] == "INVALID_DATA"


def test_read_unknown_and_include(desk: Desk) -> None:
    ticket = desk.ticket(assigneeId=None)
    for ticket_id in ("97709000000000001", "abc"):
        answer = desk.call("GET", f"/tickets/{ticket_id}")
        assert answer.status_code == 404 and answer.json()["errorCode"] == "RESOURCE_NOT_FOUND"
    bad = desk.call("GET", f"/tickets/{ticket['id']}", params={"include": "assignee,everything"})
    assert bad.status_code == 422 and errors_of(bad) == [("/include", "invalid")]
    # An agent takes the ticket in Desk (the control API) and writes a resolution.
    patched = desk.control(
        "PATCH",
        f"tickets/{ticket['id']}",
        {"assignee": {"firstName": "Ada", "lastName": "Agent", "email": "ada@corp.example"}, "resolution": "Rebooted"},
    )
    assert patched.status_code == 200, patched.text
    read = desk.call("GET", f"/tickets/{ticket['id']}", params={"include": "assignee"}).json()
    assert {k: read["assignee"][k] for k in ("firstName", "lastName", "email")} == {
        "firstName": "Ada",
        "lastName": "Agent",
        "email": "ada@corp.example",
    }
    assert read["assigneeId"] == read["assignee"]["id"] and read["resolution"] == "Rebooted"
    assert "contact" not in read
    # SDP-style technician works on the control API too; null unassigns.
    desk.control("PATCH", f"tickets/{ticket['id']}", {"technician": {"name": "Bo Support", "email_id": "bo@x.example"}})
    read = desk.call("GET", f"/tickets/{ticket['id']}", params={"include": "assignee"}).json()
    assert (read["assignee"]["firstName"], read["assignee"]["lastName"]) == ("Bo", "Support")
    desk.control("PATCH", f"tickets/{ticket['id']}", {"assignee": None})
    assert desk.call("GET", f"/tickets/{ticket['id']}", params={"include": "assignee"}).json()["assignee"] is None
    assert desk.control("PATCH", f"tickets/{ticket['id']}", {"priority": "High"}).status_code == 400


def test_update_and_close_and_reopen(desk: Desk) -> None:
    ticket = desk.ticket()
    updated = desk.call("PATCH", f"/tickets/{ticket['id']}", json={"priority": "Low", "subject": "Printer fixed?"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["priority"], updated.json()["subject"]) == ("Low", "Printer fixed?")
    closed = desk.call("PATCH", f"/tickets/{ticket['id']}", json={"status": "Closed", "resolution": "Replaced"})
    body = closed.json()
    assert (body["status"], body["statusType"], body["resolution"]) == ("Closed", "Closed", "Replaced")
    assert body["closedTime"] is not None
    reopened = desk.call("PATCH", f"/tickets/{ticket['id']}", json={"status": "Open"}).json()
    assert (reopened["statusType"], reopened["closedTime"]) == ("Open", None)
    stats = desk.stats()
    assert (stats["update_calls"], stats["updates"], stats["closes"]) == (3, 3, 1)
    refused = desk.call("PATCH", f"/tickets/{ticket['id']}", json={"status": "Gone"})
    assert refused.status_code == 422 and errors_of(refused) == [("/status", "invalid")]
    missing = desk.call("PATCH", "/tickets/97709000000000001", json={"status": "Closed"})
    assert missing.status_code == 404
    agent = desk.call("PATCH", f"/tickets/{ticket['id']}", json={"assigneeId": "1"})
    assert agent.status_code == 422 and errors_of(agent) == [("/assigneeId", "invalid")]


def test_list_pages_sorts_and_checks_its_range(desk: Desk) -> None:
    numbers = [desk.ticket(subject=f"T{i}")["ticketNumber"] for i in range(5)]
    page = desk.call("GET", "/tickets", params={"from": 1, "limit": 2}).json()["data"]
    assert [row["ticketNumber"] for row in page] == numbers[1:3]
    assert "assignee" not in page[0] and "subject" in page[0] and "cf" in page[0]
    newest = desk.call("GET", "/tickets", params={"sortBy": "-ticketNumber", "limit": 100}).json()["data"]
    assert [row["ticketNumber"] for row in newest] == numbers[::-1]
    with_contact = desk.call("GET", "/tickets", params={"include": "contacts", "limit": 1}).json()["data"]
    assert with_contact[0]["contact"]["email"] == "pat@example.com"
    assert desk.call("GET", "/tickets", params={"from": 10}).json() == {"data": []}
    for params in ({"limit": 0}, {"limit": 101}, {"from": -1}, {"sortBy": "subject"}):
        answer = desk.call("GET", "/tickets", params=params)
        assert answer.status_code == 422 and answer.json()["errorCode"] == "UNPROCESSABLE_ENTITY", params
    assert "'1-100'" in desk.call("GET", "/tickets", params={"limit": 101}).json()["message"]


def test_search_by_email_subject_status_and_custom_field(desk: Desk) -> None:
    a = desk.ticket(subject="VPN down", contact={"email": "ann@example.com", "lastName": "Ann"}, cf={"cf_ref": "r-1"})
    b = desk.ticket(subject="VPN slow", contact={"email": "bob@example.com", "lastName": "Bob"})
    desk.call("PATCH", f"/tickets/{b['id']}", json={"status": "Closed"})

    def search(**params: Any) -> list[str]:
        answer = desk.call("GET", "/tickets/search", params=params)
        if answer.status_code == 204:
            assert answer.content == b""
            return []
        assert answer.status_code == 200 and answer.json()["count"] == len(answer.json()["data"]), answer.text
        return [row["id"] for row in answer.json()["data"]]

    assert search(email="ANN@example.com") == [a["id"]]
    assert search(subject="vpn") == [a["id"], b["id"]]
    assert search(subject="VPN s*") == [b["id"]]
    assert search(subject="vpn", status="Closed") == [b["id"]]
    assert search(customField1="cf_ref:r-1") == [a["id"]]
    assert search(ticketNumber=a["ticketNumber"]) == [a["id"]]
    assert search(email="nobody@example.com") == []
    assert search(createdTimeRange=f"{a['createdTime']},2999-01-01T00:00:00.000Z") == [a["id"], b["id"]]
    bad = desk.call("GET", "/tickets/search", params={"createdTimeRange": "yesterday"})
    assert bad.status_code == 422


# ---- comments and attachments ----------------------------------------------------------------------------------


def test_comments(desk: Desk) -> None:
    ticket = desk.ticket()
    added = desk.call("POST", f"/tickets/{ticket['id']}/comments", json={"content": "Looking", "isPublic": True})
    assert added.status_code == 200, added.text
    comment = added.json()
    assert (comment["content"], comment["isPublic"], comment["contentType"]) == ("Looking", True, "html")
    assert comment["commenter"]["type"] == "AGENT" and comment["commentedTime"].endswith("Z")
    desk.call("POST", f"/tickets/{ticket['id']}/comments", json={"content": "private note"})
    listed = desk.call("GET", f"/tickets/{ticket['id']}/comments").json()["data"]
    assert [(c["content"], c["isPublic"]) for c in listed] == [("Looking", True), ("private note", False)]
    newest = desk.call("GET", f"/tickets/{ticket['id']}/comments", params={"sortBy": "-commentedTime"}).json()
    assert newest["data"][0]["content"] in ("Looking", "private note")
    assert desk.call("GET", f"/tickets/{ticket['id']}").json()["commentCount"] == "2"
    empty = desk.call("POST", f"/tickets/{ticket['id']}/comments", json={"isPublic": True})
    assert empty.status_code == 422 and errors_of(empty) == [("/content", "missing")]
    unknown = desk.call("POST", "/tickets/97709000000000001/comments", json={"content": "x"})
    assert unknown.status_code == 404
    stats = desk.stats()
    assert (stats["note_calls"], stats["notes_added"], stats["notes_calls"]) == (4, 2, 2)


def test_attachments(desk: Desk) -> None:
    ticket = desk.ticket()
    payload = b"\x89PNG fake" * 100
    added = desk.call(
        "POST",
        f"/tickets/{ticket['id']}/attachments",
        params={"isPublic": "true"},
        files={"file": ("shot.png", payload, "image/png")},
    )
    assert added.status_code == 200, added.text
    attachment = added.json()
    assert (attachment["name"], attachment["size"], attachment["isPublic"]) == ("shot.png", str(len(payload)), True)
    assert "_sha256" not in attachment
    listed = desk.call("GET", f"/tickets/{ticket['id']}/attachments").json()["data"]
    assert [a["id"] for a in listed] == [attachment["id"]]
    stored = desk.control("GET", f"tickets/{ticket['id']}/attachments").json()["attachments"]
    assert stored[0]["_sha256"] == hashlib.sha256(payload).hexdigest()
    assert desk.call("GET", f"/tickets/{ticket['id']}").json()["attachmentCount"] == "1"
    missing = desk.call("POST", f"/tickets/{ticket['id']}/attachments", files={"other": ("a.txt", b"x")})
    assert missing.status_code == 422 and errors_of(missing) == [("/file", "missing")]
    desk.control("POST", "settings", {"max_upload_bytes": 10})
    too_big = desk.call("POST", f"/tickets/{ticket['id']}/attachments", files={"file": ("big.bin", b"x" * 11)})
    assert too_big.status_code == 413


# ---- contacts and departments ------------------------------------------------------------------------------------


def test_contacts_search_and_create(desk: Desk) -> None:
    assert desk.call("GET", "/contacts/search", params={"email": "pat@example.com"}).status_code == 204
    created = desk.call("POST", "/contacts", json={"lastName": "Pat", "firstName": "Lee", "email": "pat@example.com"})
    assert created.status_code == 200, created.text
    contact = created.json()
    found = desk.call("GET", "/contacts/search", params={"email": "PAT@example.com"}).json()
    assert found["count"] == 1 and found["data"][0]["id"] == contact["id"]
    assert desk.call("GET", "/contacts/search", params={"searchStr": "lee"}).json()["data"][0]["id"] == contact["id"]
    duplicate = desk.call("POST", "/contacts", json={"lastName": "Again", "email": "pat@example.com"})
    assert duplicate.status_code == 422 and errors_of(duplicate) == [("/email", "duplicate")]
    nameless = desk.call("POST", "/contacts", json={"email": "x@example.com"})
    assert nameless.status_code == 422 and errors_of(nameless) == [("/lastName", "missing")]
    assert desk.call("GET", "/contacts/search").status_code == 422
    # The ticket made for that email joins the existing contact.
    assert desk.ticket(contact={"email": "pat@example.com"})["contactId"] == contact["id"]
    stats = desk.stats()
    assert (stats["contacts_calls"], stats["contact_create_calls"], stats["contacts_created"]) == (4, 3, 1)


def test_departments(desk: Desk) -> None:
    departments = desk.call("GET", "/departments").json()["data"]
    assert [(d["name"], d["isDefault"]) for d in departments] == [("Support", True), ("Sales", False)]
    assert departments[0]["id"] == desk.department_id
    assert [d["id"] for d in desk.info["departments"]] == [d["id"] for d in departments]
    sales = desk.ticket(departmentId=departments[1]["id"])
    assert sales["departmentId"] == departments[1]["id"]


# ---- token and orgId -----------------------------------------------------------------------------------------------


def test_every_call_needs_a_token_of_the_portals_account_and_its_org_id(desk: Desk) -> None:
    def get(headers: dict[str, str], **params: str) -> requests.Response:
        return requests.get(f"{desk.api}/departments", headers=headers, params=params, timeout=TIMEOUT)

    no_auth = get({"orgId": desk.info["org_id"]})
    assert no_auth.status_code == 401 and no_auth.json() == {
        "errorCode": "UNAUTHORIZED",
        "message": "You are not authenticated to perform this operation.",
    }
    bearer = get({"Authorization": f"Bearer {desk.token}", "orgId": desk.info["org_id"]})
    assert bearer.status_code == 401 and bearer.json()["errorCode"] == "UNAUTHORIZED"
    invalid = get(desk.headers(token="1000.abc.def"))
    assert invalid.status_code == 401 and invalid.json() == {
        "errorCode": "INVALID_OAUTH",
        "message": "The OAuth Token you provided is invalid.",
    }
    # A token of the default account (another Zoho account) is not valid here.
    default_token = mint_for(requests.get(f"{desk.sandbox.url}/_sandbox/portals/default", timeout=5).json())
    assert get(desk.headers(token=default_token)).json()["errorCode"] == "INVALID_OAUTH"
    mismatch = get(desk.headers(org_id="700000002"))
    assert mismatch.status_code == 401 and mismatch.json() == {
        "errorCode": "OAUTH_ORG_MISMATCH",
        "message": "The OAuthToken is not valid for specified organization",
    }
    missing = get({"Authorization": f"Zoho-oauthtoken {desk.token}"})
    assert missing.status_code == 400 and missing.json()["errorCode"] == "INVALID_DATA"
    assert errors_of(missing) == [("orgId", "missing")]
    assert get({"Authorization": f"Zoho-oauthtoken {desk.token}"}, orgId=desk.info["org_id"]).status_code == 200
    stats = desk.stats()
    assert stats["unauthorized"] == 5 and stats["last_headers"]["orgId"] is None
    assert stats["last_headers"]["Authorization"] == "Zoho-oauthtoken"


def test_two_desk_portals_are_two_orgs(desk: Desk) -> None:
    other_info = declare(desk.sandbox, name="sales", service="desk", account="support")
    other = Desk(desk.sandbox, other_info, desk.token)  # the same account: the same token works
    assert other_info["org_id"] != desk.info["org_id"] and other.department_id != desk.department_id
    created = other.ticket(subject="Quote")
    assert desk.call("GET", f"/tickets/{created['id']}").status_code == 404
    wrong_org = other.call("GET", f"/tickets/{created['id']}", headers=other.headers(org_id=desk.info["org_id"]))
    assert wrong_org.json()["errorCode"] == "OAUTH_ORG_MISMATCH"
    assert (desk.stats()["tickets"], other.stats()["tickets"]) == (0, 1)


# ---- faults ---------------------------------------------------------------------------------------------------------


def test_faults_answer_in_desks_format(desk: Desk) -> None:
    desk.control("POST", "faults", {"target": "list", "kind": "rate_limit", "retry_after": 7, "times": 1})
    limited = desk.call("GET", "/tickets")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["errorCode"] == "TOO_MANY_REQUESTS"

    desk.control("POST", "faults", {"target": "create", "kind": "status_after_commit", "status": 500, "times": 1})
    lost = desk.create(subject="Did it land?")
    assert lost.status_code == 500 and lost.json()["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert desk.stats()["tickets"] == 1  # committed, answer lost

    desk.control("POST", "faults", {"target": "api", "kind": "expire_tokens", "times": 1})
    expired = desk.call("GET", "/departments")
    assert expired.status_code == 401 and expired.json()["errorCode"] == "INVALID_OAUTH"
    assert desk.stats()["faults_fired"] == 3

    desk.control("POST", "faults", {"target": "contact_create", "kind": "status", "status": 503, "times": 1})
    fresh = mint_for(desk.info)
    blocked = desk.call("POST", "/contacts", json={"lastName": "X"}, headers=desk.headers(token=fresh))
    assert blocked.status_code == 503


def test_an_unknown_desk_path_or_method(desk: Desk) -> None:
    assert desk.call("GET", "/nothing").json()["errorCode"] == "URL_NOT_FOUND"
    wrong = desk.call("DELETE", "/departments")
    assert wrong.status_code == 405 and wrong.json()["errorCode"] == "METHOD_NOT_ALLOWED"


def test_control_lists_desk_tickets_and_comments(desk: Desk) -> None:
    ticket = desk.ticket(subject="Listed", contact={"email": "lee@example.com"})
    desk.call("POST", f"/tickets/{ticket['id']}/comments", json={"content": "hi"})
    rows = desk.control("GET", "tickets").json()["tickets"]
    assert rows == [
        {
            "id": ticket["id"],
            "display_id": "101",
            "ticketNumber": "101",
            "subject": "Listed",
            "requester_email": "lee@example.com",
            "status": "Open",
        }
    ]
    assert [c["content"] for c in desk.control("GET", f"tickets/{ticket['id']}/comments").json()["comments"]] == ["hi"]
    assert desk.control("GET", f"tickets/{ticket['id']}/notes").status_code == 404
    stored = desk.control("GET", f"tickets/{ticket['id']}").json()
    assert stored["contact"]["email"] == "lee@example.com"  # the control API shows the whole record
    backdated = desk.control("PATCH", f"tickets/{ticket['id']}", {"createdTime": "2020-01-02T03:04:05.000Z"})
    assert backdated.json()["createdTime"] == "2020-01-02T03:04:05.000Z"
    assert json.loads(desk.control("GET", "tickets/count").text) == {"count": 1}


def test_concurrent_creates_for_one_new_email_make_one_contact(desk: Desk) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        tickets = list(
            pool.map(lambda n: desk.ticket(subject=f"burst {n}", contact={"email": "new@example.com"}), range(8))
        )
    assert len({ticket["contactId"] for ticket in tickets}) == 1
    assert (desk.stats()["contacts"], desk.stats()["tickets"]) == (1, 8)
