"""The ticket service's lifecycle (issue 11), over real sockets against the sandbox.

Each test drives ``TicketService`` (through its ``HelpdeskService`` interface) of a real gateway whose
client talks HTTP to the sandbox; faults are injected through the sandbox's control API. ZOHO_TIMEOUT is 2 s.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import REPO, base_env, free_port, wait_for
from tests.servers import Sandbox, ThreadedGateway
from zoho_gateway.errors import (
    TicketNotFound,
    ZohoOutcomeUnknown,
    ZohoRejected,
    ZohoTimeout,
    ZohoUnavailable,
)
from zoho_gateway.zoho.model import FullTicket, NewTicket, TicketQuery, Upload
from zoho_gateway.zoho.service import HelpdeskService
from zoho_gateway.zoho.tickets import TicketService

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UNKNOWN_ID = "123640000009999999"
MIB = 1024 * 1024

HTML_DESCRIPTION = (
    "<div>Hello&nbsp;team,<br>the <b>printer</b> on floor 3 is <i>on fire</i>.</div>"
    "<script>alert('x')</script><style>div{color:red}</style>"
    '<p>Steps &lt;tried&gt; &amp; failed:</p><ul><li>turned it off</li><li>called <a href="https://help.example.com/p">'
    "support</a></li></ul><img src=x onerror=alert(1) alt=photo><!-- internal note -->"
)


def service_of(gateway: ThreadedGateway) -> TicketService:
    service: TicketService = gateway.gateway.tickets
    return service


@pytest.fixture
def service(reused_gateway: ThreadedGateway) -> HelpdeskService:
    return service_of(reused_gateway)


def new_ticket(**changes: Any) -> NewTicket:
    ticket: NewTicket = {
        "subject": "Printer on fire",
        "description": "Third floor, next to the kitchen.\nPlease hurry.",
        "requester_email": "ana.lima@example.com",
    }
    ticket.update(changes)  # type: ignore[typeddict-item]
    return ticket


def create(service: HelpdeskService, **changes: Any) -> str:
    ticket_id, _ = service.create(new_ticket(**changes))
    return ticket_id


def query(**fields: Any) -> TicketQuery:
    base: TicketQuery = {"page": 1, "per_page": 25, "sort": "created_at"}
    base.update(fields)  # type: ignore[typeddict-item]
    return base


def stats(sandbox: Sandbox) -> dict[str, Any]:
    counters: dict[str, Any] = sandbox.stats().get("counters", sandbox.stats())
    return counters


def calls(sandbox: Sandbox, operation: str) -> int:
    return int(stats(sandbox).get(f"{operation}_calls", 0))


def children(sandbox: Sandbox, ticket_id: str, kind: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{sandbox.url}/_sandbox/tickets/{ticket_id}/{kind}", timeout=5)
    answer.raise_for_status()
    data = answer.json()
    items: list[dict[str, Any]] = data if isinstance(data, list) else data.get(kind, data.get("items", []))
    return items


# ---- find ------------------------------------------------------------------------------------------


def test_find_filters_by_requester_status_subject_text_and_display_id(
    service: HelpdeskService, sandbox: Sandbox
) -> None:
    first = create(service, subject="VPN drops every hour")
    second = create(service, subject="Printer jammed", requester_email="bo@example.com")
    third = create(service, subject="VPN client will not install", requester_email="bo@example.com")
    sandbox.patch_ticket(third, status="In Progress")

    def ids(page: Any) -> list[str]:
        return [item["ticket_id"] for item in page["items"]]

    assert ids(service.find(query(requester_email="bo@example.com"))) == [second, third]
    assert ids(service.find(query(q="vpn"))) == [first, third]
    assert ids(service.find(query(q="VPN", requester_email="bo@example.com"))) == [third]
    assert ids(service.find(query(status="In Progress"))) == [third]
    assert ids(service.find(query(status="Open"))) == [first, second]
    display_id = sandbox.ticket(second)["display_id"]
    found = service.find(query(display_id=display_id))
    assert ids(found) == [second] and found["has_more"] is False
    item = found["items"][0]
    assert item["display_id"] == display_id
    assert item["subject"] == "Printer jammed"
    assert item["status"] == "Open"
    assert item["technician_assigned"] == "Unassigned"
    assert item["created_at"] is not None and ISO_UTC.match(item["created_at"])
    assert item["updated_at"] is not None and ISO_UTC.match(item["updated_at"])


def test_find_pages_with_has_more_and_sorts(service: HelpdeskService, sandbox: Sandbox) -> None:
    made = [create(service, subject=f"Ticket {n}") for n in range(5)]
    pages = [service.find(query(page=page, per_page=2)) for page in (1, 2, 3, 4)]
    assert [[i["ticket_id"] for i in p["items"]] for p in pages] == [made[0:2], made[2:4], made[4:5], []]
    assert [p["has_more"] for p in pages] == [True, True, False, False]
    newest_first = service.find(query(per_page=3, sort="-created_at"))
    assert [i["ticket_id"] for i in newest_first["items"]] == made[::-1][:3]
    assert newest_first["has_more"] is True
    sandbox.patch_ticket(made[1], status="On Hold")  # the most recently updated now
    recent = service.find(query(per_page=1, sort="-updated_at"))
    assert [i["ticket_id"] for i in recent["items"]] == [made[1]]


@pytest.mark.parametrize(
    "text",
    ['"}],"row_count":1000,"x":[{"', "' OR 1=1 --", "%\\_*", 'a"b\\c', "<b>"],
)
def test_find_sends_client_text_as_data_never_as_query(text: str, service: HelpdeskService) -> None:
    plain = create(service, subject="Nothing special")
    odd = create(service, subject=f"Odd {text} subject")
    found = service.find(query(q=text))
    assert [i["ticket_id"] for i in found["items"]] == [odd]
    assert plain not in [i["ticket_id"] for i in service.find(query(requester_email=text))["items"]]


# ---- the full view ---------------------------------------------------------------------------------


def test_full_view_reads_every_field_and_makes_html_plain_text(service: HelpdeskService, sandbox: Sandbox) -> None:
    ticket_id = create(
        service,
        description=HTML_DESCRIPTION,
        priority={"name": "High"},
        category={"name": "Hardware"},
        department={"name": "IT Services"},
    )
    full = service.get_full(ticket_id)
    stored = sandbox.ticket(ticket_id)
    assert full["ticket_id"] == ticket_id
    assert full["display_id"] == stored["display_id"]
    assert full["subject"] == "Printer on fire"
    assert full["requester"] == {"name": "Ana Lima", "email": "ana.lima@example.com"}
    assert (full["priority"], full["category"], full["department"]) == ("High", "Hardware", "IT Services")
    assert full["status"] == "Open"
    assert full["technician_assigned"] == "Unassigned"
    assert full["technician_contact_email"] is None
    assert full["technician_comments"] is None and full["resolution"] is None
    assert full["has_attachments"] is False
    for stamp in (full["created_at"], full["updated_at"], full["due_by"]):
        assert stamp is not None and ISO_UTC.match(stamp), stamp
    assert full["description"] == (
        "Hello team,\nthe printer on floor 3 is on fire.\n\nSteps <tried> & failed:\n\n"
        "- turned it off\n- called support (https://help.example.com/p)\n\n[photo]"
    )
    # The five seed fields are the seed view's, exactly.
    seed = service.get(ticket_id)
    assert {key: full[key] for key in seed} == seed  # type: ignore[literal-required]


def test_full_view_keeps_a_plain_description_as_written(service: HelpdeskService) -> None:
    ticket_id = create(service, description="Line one\nLine two\n\n  indented? & a < b")
    assert service.get_full(ticket_id)["description"] == "Line one\nLine two\n\n  indented? & a < b"


def test_full_view_of_html_never_holds_markup_or_script(service: HelpdeskService) -> None:
    nasty = (
        "<div onclick=steal()>ok</div><script>document.cookie</script><iframe src=//evil></iframe>"
        "<svg><script>alert(2)</script></svg><style>@import 'x'</style><a href='javascript:alert(3)'>click</a>"
        "<noscript><img src=x></noscript><template><b>hidden</b></template>"
    )
    ticket_id = create(service, description=nasty)
    description = service.get_full(ticket_id)["description"]
    assert description == "ok\nclick"


# ---- update, reopen --------------------------------------------------------------------------------


def test_update_changes_only_the_given_fields_and_answers_the_full_view(
    service: HelpdeskService, sandbox: Sandbox
) -> None:
    ticket_id = create(service, priority={"name": "Low"})
    before = service.get_full(ticket_id)
    after = service.update(
        ticket_id,
        {"subject": "Printer fixed?", "priority": {"name": "Urgent"}, "status": {"name": "In Progress"}},
    )
    assert (after["subject"], after["priority"], after["status"]) == ("Printer fixed?", "Urgent", "In Progress")
    assert after["description"] == before["description"]
    assert after["category"] is None
    assert after == service.get_full(ticket_id)
    assert sandbox.ticket(ticket_id)["subject"] == "Printer fixed?"
    assert service.update(ticket_id, {}) == after  # nothing to send: the ticket as it is


def test_update_refused_value_is_zoho_rejected_naming_the_field(service: HelpdeskService) -> None:
    ticket_id = create(service)
    with pytest.raises(ZohoRejected) as info:
        service.update(ticket_id, {"priority": {"name": "Whenever"}})
    assert info.value.status == 422
    assert list(info.value.fields or {}) == ["priority"]
    assert service.get_full(ticket_id)["priority"] is None


def test_update_whose_answer_was_lost_is_sent_again_and_succeeds(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    service = service_of(reused_gateway)
    ticket_id = create(service)
    sandbox.fault(target="update", kind="reset_after_commit", times=1)
    after = service.update(ticket_id, {"subject": "Sent twice, applied the same"})
    assert after["subject"] == "Sent twice, applied the same"
    assert calls(sandbox, "update") == 2


def test_an_update_that_never_got_an_answer_is_a_timeout_safe_to_send_again(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    service = service_of(reused_gateway)
    ticket_id = create(service)
    sandbox.fault(target="update", kind="hang_after_commit", seconds=3, times=2)
    with pytest.raises(ZohoTimeout) as info:
        service.update(ticket_id, {"subject": "Applied, answer lost"})
    assert not isinstance(info.value, ZohoOutcomeUnknown)  # setting values again is harmless
    assert info.value.retry_after is not None
    assert calls(sandbox, "update") == 2
    sandbox.clear_faults()
    assert service.update(ticket_id, {"subject": "Applied, answer lost"})["subject"] == "Applied, answer lost"


def test_reopen_sets_open(service: HelpdeskService) -> None:
    ticket_id = create(service)
    service.close(ticket_id)
    reopened = service.reopen(ticket_id)
    assert reopened["status"] == "Open"
    assert service.reopen(ticket_id)["status"] == "Open"  # idempotent


# ---- notes -----------------------------------------------------------------------------------------


def test_notes_are_added_and_listed_with_their_visibility(service: HelpdeskService, sandbox: Sandbox) -> None:
    ticket_id = create(service)
    private = service.add_note(ticket_id, "Checked the toner.\nNot the cause.", show_to_requester=False)
    public = service.add_note(ticket_id, "We are on it & will call you <soon>.", show_to_requester=True)
    assert private != public and private.isdigit()
    notes = service.list_notes(ticket_id)
    assert [(n["note_id"], n["text"], n["show_to_requester"]) for n in notes] == [
        (private, "Checked the toner.\nNot the cause.", False),
        (public, "We are on it & will call you <soon>.", True),
    ]
    assert all(n["author"] == "Sandbox API User" for n in notes)
    assert all(n["created_at"] is not None and ISO_UTC.match(n["created_at"]) for n in notes)
    stored = children(sandbox, ticket_id, "notes")
    assert [n["show_to_requester"] for n in stored] == [False, True]


def test_notes_are_read_page_by_page(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    service = service_of(reused_gateway)
    ticket_id = create(service)
    made = [service.add_note(ticket_id, f"note {n}", show_to_requester=False) for n in range(5)]
    service.list_page_size = 2
    try:
        before = calls(sandbox, "notes")
        assert [n["note_id"] for n in service.list_notes(ticket_id)] == made
        assert calls(sandbox, "notes") - before == 3
    finally:
        service.list_page_size = TicketService.list_page_size


def test_a_note_whose_answer_was_lost_is_never_sent_again(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    service = service_of(reused_gateway)
    ticket_id = create(service)
    sandbox.fault(target="note", kind="reset_after_commit", times=1)
    with pytest.raises(ZohoOutcomeUnknown) as info:
        service.add_note(ticket_id, "Only once, please", show_to_requester=False)
    assert "note may or may not have been added" in info.value.message
    assert info.value.retry_after is None
    assert calls(sandbox, "note") == 1
    assert [n["text"] for n in service.list_notes(ticket_id)] == ["Only once, please"]


def test_a_note_refused_before_zoho_did_anything_is_unavailable(service: HelpdeskService, sandbox: Sandbox) -> None:
    ticket_id = create(service)
    sandbox.fault(target="note", kind="status", status=503, times=1)
    with pytest.raises(ZohoUnavailable):
        service.add_note(ticket_id, "Not stored", show_to_requester=False)
    assert service.list_notes(ticket_id) == []


# ---- close -----------------------------------------------------------------------------------------


def test_close_sets_the_resolution_and_closing_twice_is_no_error(service: HelpdeskService, sandbox: Sandbox) -> None:
    ticket_id = create(service)
    closed = service.close(ticket_id, comments="Closed by the bot", resolution="Replaced the fuser unit.")
    assert closed["status"] == "Closed"
    assert closed["resolution"] == "Replaced the fuser unit."
    assert closed["technician_comments"] == "Replaced the fuser unit."
    assert service.get(ticket_id)["technician_comments"] == "Replaced the fuser unit."
    assert sandbox.ticket(ticket_id)["closure_info"]["closure_comments"] == "Closed by the bot"

    again = service.close(ticket_id, comments="Closed again")
    assert again["status"] == "Closed"
    assert again["resolution"] == "Replaced the fuser unit."
    assert service.close(ticket_id) == again


def test_closing_a_closed_ticket_with_a_new_resolution_sets_it(service: HelpdeskService) -> None:
    ticket_id = create(service)
    service.close(ticket_id)
    closed = service.close(ticket_id, resolution="Found the real cause: a paper clip.")
    assert closed["status"] == "Closed"
    assert closed["resolution"] == "Found the real cause: a paper clip."


def test_a_close_whose_answer_was_lost_is_sent_again_and_taken_as_done(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    service = service_of(reused_gateway)
    ticket_id = create(service)
    sandbox.fault(target="close", kind="reset_after_commit", times=1)
    assert service.close(ticket_id, comments="once")["status"] == "Closed"
    assert calls(sandbox, "close") == 2  # the re-send met "already closed": success


def test_close_without_anything_else_closes(service: HelpdeskService) -> None:
    ticket_id = create(service)
    closed: FullTicket = service.close(ticket_id)
    assert closed["status"] == "Closed" and closed["resolution"] is None


# ---- attachments -----------------------------------------------------------------------------------


def test_files_are_attached_and_listed(service: HelpdeskService, sandbox: Sandbox) -> None:
    ticket_id = create(service)
    shot = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    made = service.attach(
        ticket_id,
        [
            Upload(name="screen shot.png", content_type="image/png", stream=io.BytesIO(shot), size=len(shot)),
            Upload(name='notes "v2".txt', content_type="text/plain", stream=io.BytesIO(b"hello\r\n"), size=7),
        ],
    )
    assert [(a["name"], a["size"], a["content_type"]) for a in made] == [
        ("screen shot.png", len(shot), "image/png"),
        ('notes "v2".txt', 7, "text/plain"),
    ]
    assert all(a["attachment_id"].isdigit() for a in made)
    assert service.list_attachments(ticket_id) == made
    assert service.get_full(ticket_id)["has_attachments"] is True
    assert service.attach(ticket_id, []) == []


@pytest.fixture(scope="module")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sandbox in a process of its own (its URL), so that this process's memory is the gateway's alone."""
    port = free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoho_gateway.sandbox", "--port", str(port), "--memory"],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                return requests.get(f"{url}/_sandbox/stats", timeout=0.5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=20)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_10_mib_upload_is_streamed_not_held_in_memory(sandbox_process: str, tmp_path: Path) -> None:
    gateway = ThreadedGateway(base_env(sandbox_process))
    try:
        service = service_of(gateway)
        ticket_id = create(service)
        size = 10 * MIB
        path = tmp_path / "big.bin"
        with path.open("wb") as out:
            block = bytes(range(256)) * 256  # 64 KiB
            for _ in range(size // len(block)):
                out.write(block)
        with path.open("rb") as stream:
            tracemalloc.start()
            try:
                made = service.attach(
                    ticket_id,
                    [Upload(name="big.bin", content_type="application/octet-stream", stream=stream, size=size)],
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        gateway.stop()
    assert made[0]["size"] == size
    assert made == service.list_attachments(ticket_id)
    # Every Python allocation of this process while the file went out: the gateway's chunks, never the file.
    assert peak < MIB, f"peak {peak / MIB:.2f} MiB while sending a 10 MiB file"


def test_an_upload_whose_answer_was_lost_is_never_sent_again(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    service = service_of(reused_gateway)
    ticket_id = create(service)
    sandbox.fault(target="upload", kind="reset_after_commit", times=1)
    with pytest.raises(ZohoOutcomeUnknown) as info:
        service.attach(ticket_id, [Upload(name="a.txt", content_type="text/plain", stream=io.BytesIO(b"a"), size=1)])
    assert "may or may not have been attached" in info.value.message
    assert calls(sandbox, "upload") == 1
    assert len(service.list_attachments(ticket_id)) == 1


def test_an_upload_refused_for_the_token_is_sent_again_from_the_start(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    service = service_of(reused_gateway)
    ticket_id = create(service)  # a token is held now
    sandbox.fault(target="upload", kind="expire_tokens", times=1)
    data = b"0123456789" * 1000
    made = service.attach(
        ticket_id, [Upload(name="d.txt", content_type="text/plain", stream=io.BytesIO(data), size=len(data))]
    )
    assert made[0]["size"] == len(data)
    assert calls(sandbox, "upload") == 2


# ---- pick lists ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("priorities", ["Low", "Medium", "Normal", "High", "Urgent"]),
        ("statuses", ["Open", "On Hold", "In Progress", "Resolved", "Closed", "Canceled"]),
        ("departments", ["IT Services", "Sales", "Finance", "Human Resources", "Engineering", "Administration"]),
    ],
)
def test_pick_values_list_names_and_ids(kind: Any, names: list[str], service: HelpdeskService) -> None:
    values = service.pick_values(kind)
    assert [v["name"] for v in values] == names
    assert all(v["id"].isdigit() for v in values)


def test_pick_values_are_read_page_by_page(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    service = service_of(reused_gateway)
    service.list_page_size = 3
    try:
        before = calls(sandbox, "meta")
        categories = service.pick_values("categories")
        assert len(categories) == 8 and categories[0]["name"] == "Hardware"
        assert calls(sandbox, "meta") - before == 3
    finally:
        service.list_page_size = TicketService.list_page_size


# ---- unknown tickets -------------------------------------------------------------------------------

PER_TICKET: dict[str, Callable[[HelpdeskService], object]] = {
    "get_full": lambda s: s.get_full(UNKNOWN_ID),
    "update": lambda s: s.update(UNKNOWN_ID, {"subject": "x"}),
    "add_note": lambda s: s.add_note(UNKNOWN_ID, "x", show_to_requester=False),
    "list_notes": lambda s: s.list_notes(UNKNOWN_ID),
    "close": lambda s: s.close(UNKNOWN_ID, comments="x"),
    "close_with_resolution": lambda s: s.close(UNKNOWN_ID, resolution="x"),
    "reopen": lambda s: s.reopen(UNKNOWN_ID),
    "attach": lambda s: s.attach(
        UNKNOWN_ID, [Upload(name="a.txt", content_type="text/plain", stream=io.BytesIO(b"a"), size=1)]
    ),
    "list_attachments": lambda s: s.list_attachments(UNKNOWN_ID),
}


@pytest.mark.parametrize("operation", sorted(PER_TICKET))
def test_an_unknown_id_is_ticket_not_found(operation: str, service: HelpdeskService) -> None:
    with pytest.raises(TicketNotFound):
        PER_TICKET[operation](service)
