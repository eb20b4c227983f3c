"""The simulated Zoho Desk API v1 of a Desk portal, at ``/t/<tenant>/api/v1``: tickets, comments,
attachments, contacts and departments.

Every call is counted, delayed, fault-injected (the same operation names as SDP: ``create``, ``get``,
``list``, ``update``, ``close``, ``note``, ``notes``, ``upload``, ``attachments``, ``meta``, plus
``contacts`` and ``contact_create``), then checked: ``Authorization: Zoho-oauthtoken <token>`` of the
portal's account, then the ``orgId`` header (or query parameter) equal to the portal's org id.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import IO, Any

from flask import Blueprint, Response, request
from werkzeug.datastructures import FileStorage

from . import zdesk_wire as dw
from .faults import Fault, aborted, after_commit, enact
from .tenancy import Portal
from .wire import json_response
from .world import current_portal
from .zdesk_entities import (
    DeskInputError,
    Entity,
    NewContact,
    apply_update,
    attachment_object,
    build_contact,
    build_ticket,
    check_include,
    comment_object,
    departments,
    iso,
    iso_to_ms,
    list_item,
    now_ms,
    parse_comment,
    parse_contact,
    parse_create,
    parse_update,
    view,
)

bp = Blueprint("sandbox_zdesk", __name__)

MAX_LIMIT = 100
DEFAULT_LIMIT = 10
TICKET_SORTS = ("createdTime", "modifiedTime", "ticketNumber", "dueDate", "responseDueDate", "customerResponseTime")
_CHUNK = 64 * 1024


def _invalid(exc: DeskInputError) -> Response:
    return dw.invalid_data([dw.field_error(exc.field_name, exc.error_type, exc.message)])


def begin(portal: Portal, operation: str) -> tuple[Response | None, Fault | None]:
    """Count, add latency, inject a fault, then check the token and the orgId, as ``sdp.begin`` does."""
    header = request.headers.get("Authorization")
    scheme, _, token = (header or "").strip().partition(" ")
    org_header = request.headers.get("orgId")
    portal.record_call(
        {
            "Accept": request.headers.get("Accept"),
            "Authorization": None if header is None else (scheme if token else "<no scheme>"),
            "Content-Type": request.headers.get("Content-Type"),
            "orgId": org_header,
        }
    )
    portal.bump(f"{operation}_calls")
    latency_ms = portal.settings.latency_ms
    if latency_ms and not portal.pause(latency_ms / 1000):
        return aborted(), None
    fault = portal.take_fault(operation)
    if fault is not None:
        answer = enact(fault, portal, request.environ)
        if answer is not None:
            return answer, fault
    if header is None or scheme.lower() != "zoho-oauthtoken" or not token.strip():
        portal.bump("unauthorized")
        return dw.unauthorized(), fault
    if not portal.accounts.token_is_valid(token.strip()):
        portal.bump("unauthorized")
        return dw.invalid_oauth(), fault
    org_id = org_header if org_header is not None else request.args.get("orgId")
    if org_id is None or not org_id.strip():
        return dw.org_id_missing(), fault
    if org_id.strip() != portal.spec.org_id:
        portal.bump("unauthorized")
        return dw.org_mismatch(), fault
    return None, fault


def _answer(portal: Portal, fault: Fault | None, success: Response) -> Response:
    lost = after_commit(fault, portal, request.environ)
    return lost if lost is not None else success


def _body() -> Any:
    """The JSON body, or raise DeskInputError when it is not JSON."""
    raw = request.get_data()
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise DeskInputError("body", "invalid", "The request body is not valid JSON") from exc


def _paging() -> tuple[int, int]:
    """``from`` (0-based, assumed) and ``limit`` (1-100, default 10); Desk's 422 outside the range."""
    raw_from, raw_limit = request.args.get("from", "0"), request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw_from.isdigit():
        raise _Unprocessable("The value passed for field 'from' is invalid.")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise _Unprocessable(f"The value passed for field 'limit' exceeds the range of '1-{MAX_LIMIT}'.")
    return int(raw_from), int(raw_limit)


class _Unprocessable(ValueError):
    """A query parameter out of range: 422 UNPROCESSABLE_ENTITY."""


def _sorter(allowed: tuple[str, ...]) -> Callable[[list[Entity]], list[Entity]]:
    """``sortBy`` (a ``-`` prefix: descending); creation order without it."""
    raw = request.args.get("sortBy")
    if raw is None or not raw.strip():
        return lambda items: items
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in allowed:
        raise _Unprocessable(f"The value passed for field 'sortBy' is invalid. Allowed: {', '.join(allowed)}.")

    def order(items: list[Entity]) -> list[Entity]:
        present = [item for item in items if item.get(key) is not None]
        missing = [item for item in items if item.get(key) is None]

        def sort_key(item: Entity) -> tuple[int, str]:
            value = str(item[key])
            return (len(value), value) if value.isdigit() else (0, value)

        return sorted(present, key=sort_key, reverse=descending) + missing

    return order


def _ticket_or_404(portal: Portal, ticket_id: str) -> Entity | None:
    return portal.desk.get_ticket(ticket_id) if ticket_id.isdigit() else None


# ---- tickets -----------------------------------------------------------------------------------------


def _find_contact(portal: Portal, contact_id: str) -> Entity | None:
    assert portal.contacts is not None
    return portal.contacts.get_ticket(contact_id) if contact_id.isdigit() else None


def _contact_for(portal: Portal, new: NewContact) -> Entity:
    """The contact with ``new``'s email (reused, as Desk does), or a new one."""
    with portal.contact_lock:
        return _contact_for_locked(portal, new)


def _contact_for_locked(portal: Portal, new: NewContact) -> Entity:
    assert portal.contacts is not None
    if new.email is not None:
        wanted = new.email.lower()
        matches, _ = portal.contacts.select_tickets(
            lambda every: [c for c in every if (c.get("email") or "").lower() == wanted], 1, 1
        )
        if matches:
            return matches[0]
    created_ms = now_ms()
    contact = portal.contacts.store_ticket(lambda cid, _n: build_contact(cid, new, created_ms, portal.name))
    portal.bump("contacts_created")
    return contact


@bp.post("/tickets")
def create_ticket() -> Response:
    """Create a ticket (JSON): subject, departmentId and contactId (or a ``contact`` object) required. The
    call counts in ``create_in_flight`` (and its peak) from its arrival to its answer."""
    portal = current_portal("desk")
    with portal.counters.in_flight("create"):
        return _create_ticket(portal)


def _create_ticket(portal: Portal) -> Response:
    answer, fault = begin(portal, "create")
    if answer is not None:
        return answer
    try:
        new = parse_create(_body(), portal.spec.org_id)
    except DeskInputError as exc:
        return _invalid(exc)
    if new.contact_id is not None:
        contact = _find_contact(portal, new.contact_id)
        if contact is None:
            return _invalid(DeskInputError("contactId", "invalid", "Contact does not exist"))
    else:
        assert new.contact is not None
        contact = _contact_for(portal, new.contact)
    created_ms = now_ms()
    ticket = portal.desk.store_ticket(
        lambda ticket_id, number: build_ticket(ticket_id, number, new, contact, created_ms, portal.name)
    )
    portal.bump("creates")
    return _answer(portal, fault, json_response(view(ticket, None), portal.settings.create_http_status))


@bp.get("/tickets/<ticket_id>")
def get_ticket(ticket_id: str) -> Response:
    """One ticket; ``include=contacts,assignee,departments,...`` adds the related objects."""
    portal = current_portal("desk")
    answer, _ = begin(portal, "get")
    if answer is not None:
        return answer
    include = request.args.get("include")
    try:
        check_include(include)
    except DeskInputError as exc:
        return _invalid(exc)
    ticket = _ticket_or_404(portal, ticket_id)
    if ticket is None:
        return dw.not_found()
    portal.bump("gets")
    return json_response(view(ticket, include))


@bp.patch("/tickets/<ticket_id>")
def update_ticket(ticket_id: str) -> Response:
    """Update a ticket; ``{"status": "Closed"}`` closes it (counted as a close too)."""
    portal = current_portal("desk")
    answer, fault = begin(portal, "update")
    if answer is not None:
        return answer
    if _ticket_or_404(portal, ticket_id) is None:
        return dw.not_found()
    try:
        changes = parse_update(_body(), portal.spec.org_id)
    except DeskInputError as exc:
        return _invalid(exc)
    contact = None
    if "contactId" in changes:
        contact = _find_contact(portal, changes["contactId"])
        if contact is None:
            return _invalid(DeskInputError("contactId", "invalid", "Contact does not exist"))
    at_ms = now_ms()
    updated = portal.desk.update_ticket(ticket_id, lambda ticket: apply_update(ticket, changes, at_ms, contact))
    if updated is None:
        return dw.not_found()
    portal.bump("updates")
    if changes.get("status") == "Closed":
        portal.bump("closes")
    return _answer(portal, fault, json_response(view(updated, None)))


def _matcher(value: str, contains: bool = False) -> Callable[[Any], bool]:
    """A test of one field against ``value``: ``*`` wildcards, else contains or equals (case-insensitive)."""
    probe = value.strip().lower()
    if "*" in probe:
        return lambda field: field is not None and fnmatch.fnmatchcase(str(field).lower(), probe)
    if contains:
        return lambda field: field is not None and probe in str(field).lower()
    return lambda field: field is not None and str(field).lower() == probe


def _on_key(key: str, test: Callable[[Any], bool]) -> Callable[[Entity], bool]:
    return lambda ticket: test(ticket.get(key))


def _on_custom_field(name: str, test: Callable[[Any], bool]) -> Callable[[Entity], bool]:
    return lambda ticket: test((ticket.get("cf") or {}).get(name))


# Query parameter -> ticket key, and whether it matches a part of the text (else the whole value).
FILTERS: tuple[tuple[str, str, bool], ...] = (
    ("subject", "subject", True),
    ("email", "email", False),
    ("ticketNumber", "ticketNumber", False),
    ("departmentId", "departmentId", False),
    ("contactId", "contactId", False),
    ("assigneeId", "assigneeId", False),
    ("priority", "priority", False),
    ("category", "category", False),
    ("channel", "channel", False),
)


def _ticket_filter() -> Callable[[Entity], bool]:
    """Filters shared by list and search (every one given must hold); raises _Unprocessable for a bad range."""
    tests: list[Callable[[Entity], bool]] = []
    for param, key, contains in FILTERS:
        raw = request.args.get(param)
        if raw is not None and raw.strip():
            tests.append(_on_key(key, _matcher(raw, contains)))
    raw_status = request.args.get("status")
    if raw_status:
        statuses = {part.strip().lower() for part in raw_status.split(",") if part.strip()}
        tests.append(_on_key("status", lambda value: str(value).lower() in statuses))
    for index in range(1, 6):
        raw = request.args.get(f"customField{index}")
        if raw:
            name, _, value = raw.partition(":")
            tests.append(_on_custom_field(name.strip(), _matcher(value)))
    raw_range = request.args.get("createdTimeRange")
    if raw_range:
        start_text, _, end_text = raw_range.partition(",")
        start, end = iso_to_ms(start_text), iso_to_ms(end_text)
        if start is None or end is None:
            raise _Unprocessable("The value passed for field 'createdTimeRange' is invalid.")
        low, high = start, end
        tests.append(_on_key("createdTime", lambda value: low <= (iso_to_ms(str(value)) or 0) <= high))
    return lambda ticket: all(test(ticket) for test in tests)


def _select(portal: Portal, searching: bool) -> Response:
    include = request.args.get("include")
    try:
        check_include(include)
        start, limit = _paging()
        keep = _ticket_filter()
        order = _sorter(TICKET_SORTS)
    except DeskInputError as exc:
        return _invalid(exc)
    except _Unprocessable as exc:
        return dw.unprocessable(str(exc))
    page, total = portal.desk.select_tickets(lambda every: order([t for t in every if keep(t)]), start + 1, limit)
    items = [list_item(ticket, include) for ticket in page]
    if searching:
        return dw.data(items, count=total) if total else dw.no_content()
    return dw.data(items)


@bp.get("/tickets")
def list_tickets() -> Response:
    """A page of tickets: ``from`` (0-based), ``limit`` (1-100), ``sortBy`` (``-`` for descending), filters."""
    portal = current_portal("desk")
    answer, _ = begin(portal, "list")
    return answer if answer is not None else _select(portal, searching=False)


@bp.get("/tickets/search")
def search_tickets() -> Response:
    """Search by ``email``, ``subject`` (contains; ``*`` wildcards), ``status``, ``ticketNumber``, ids,
    ``customField1=cf_name:value``, ``createdTimeRange``; ``{"data", "count"}``, or 204 when nothing matches."""
    portal = current_portal("desk")
    answer, _ = begin(portal, "list")
    return answer if answer is not None else _select(portal, searching=True)


# ---- comments ------------------------------------------------------------------------------------------


@bp.post("/tickets/<ticket_id>/comments")
def add_comment(ticket_id: str) -> Response:
    """Add a comment (``content`` required, ``isPublic`` default false, ``contentType`` html|plainText)."""
    portal = current_portal("desk")
    answer, fault = begin(portal, "note")
    if answer is not None:
        return answer
    if _ticket_or_404(portal, ticket_id) is None:
        return dw.not_found()
    try:
        content, is_public, content_type = parse_comment(_body())
    except DeskInputError as exc:
        return _invalid(exc)
    at_ms = now_ms()

    def touch(ticket: Entity, items: list[Entity]) -> None:
        ticket["commentCount"] = str(int(ticket["commentCount"]) + len(items))
        ticket["modifiedTime"] = iso(at_ms)

    added = portal.desk.add_children(
        "comments", ticket_id, [lambda cid: comment_object(cid, content, is_public, content_type, at_ms)], touch
    )
    if added is None:
        return dw.not_found()
    portal.bump("notes_added")
    return _answer(portal, fault, json_response(added[0]))


def _children(ticket_id: str, kind: str, operation: str, sorts: tuple[str, ...]) -> Response:
    portal = current_portal("desk")
    answer, _ = begin(portal, operation)
    if answer is not None:
        return answer
    try:
        start, limit = _paging()
        order = _sorter(sorts)
    except _Unprocessable as exc:
        return dw.unprocessable(str(exc))
    items = portal.desk.children(kind, ticket_id) if ticket_id.isdigit() else None
    if items is None:
        return dw.not_found()
    page = order(items)[start : start + limit]
    return dw.data([{k: v for k, v in item.items() if not k.startswith("_")} for item in page])


@bp.get("/tickets/<ticket_id>/comments")
def list_comments(ticket_id: str) -> Response:
    """The ticket's comments, oldest first (``sortBy=-commentedTime`` for newest first)."""
    return _children(ticket_id, "comments", "notes", ("commentedTime",))


# ---- attachments ---------------------------------------------------------------------------------------


def _measure(stream: IO[bytes], limit: int) -> tuple[int, str] | None:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        digest.update(chunk)
    return size, digest.hexdigest()


@bp.post("/tickets/<ticket_id>/attachments")
def add_attachment(ticket_id: str) -> Response:
    """Attach one file (multipart part ``file``; ``?isPublic=true`` to show it to the customer)."""
    portal = current_portal("desk")
    answer, fault = begin(portal, "upload")
    if answer is not None:
        return answer
    if _ticket_or_404(portal, ticket_id) is None:
        return dw.not_found()
    storage: FileStorage | None = request.files.get("file")
    if storage is None:
        return _invalid(DeskInputError("file", "missing", "A multipart part named 'file' is required"))
    limit = portal.settings.max_upload_bytes
    measured = _measure(storage.stream, limit)
    if measured is None:
        return dw.error(413, "PAYLOAD_TOO_LARGE", f"The file exceeds the limit of {limit} bytes.")
    size, sha256 = measured
    is_public = request.args.get("isPublic", "false").lower() == "true"
    at_ms = now_ms()
    name = storage.filename or "file"
    prefix = f"/t/{portal.name}"

    def touch(ticket: Entity, items: list[Entity]) -> None:
        ticket["attachmentCount"] = str(int(ticket["attachmentCount"]) + len(items))
        ticket["modifiedTime"] = iso(at_ms)

    def build(attachment_id: str) -> Entity:
        return attachment_object(attachment_id, ticket_id, name, size, sha256, is_public, at_ms, prefix)

    added = portal.desk.add_children("attachments", ticket_id, [build], touch)
    if added is None:
        return dw.not_found()
    portal.bump("uploads")
    public = {k: v for k, v in added[0].items() if not k.startswith("_")}
    return _answer(portal, fault, json_response(public))


@bp.get("/tickets/<ticket_id>/attachments")
def list_attachments(ticket_id: str) -> Response:
    """The ticket's attachments, oldest first."""
    return _children(ticket_id, "attachments", "attachments", ("createdTime",))


# ---- contacts and departments --------------------------------------------------------------------------


@bp.get("/contacts/search")
def search_contacts() -> Response:
    """Contacts by ``email`` (exact, case-insensitive) or ``searchStr`` (in names, email, phone; ``*``
    wildcards); ``{"data", "count"}``, or 204 when nothing matches."""
    portal = current_portal("desk")
    answer, _ = begin(portal, "contacts")
    if answer is not None:
        return answer
    assert portal.contacts is not None
    try:
        start, limit = _paging()
    except _Unprocessable as exc:
        return dw.unprocessable(str(exc))
    email = (request.args.get("email") or "").strip().lower()
    text = (request.args.get("searchStr") or "").strip().lower()
    if not email and not text:
        return _invalid(DeskInputError("searchStr", "missing", "Give searchStr or email"))

    def keep(contact: Mapping[str, Any]) -> bool:
        if email and (contact.get("email") or "").lower() != email:
            return False
        if text:
            fields = [contact.get(key) for key in ("firstName", "lastName", "email", "phone", "mobile")]
            haystack = [str(value).lower() for value in fields if value]
            probe = text if "*" in text else f"*{text}*"
            return any(fnmatch.fnmatchcase(value, probe) for value in haystack)
        return True

    page, total = portal.contacts.select_tickets(lambda every: [c for c in every if keep(c)], start + 1, limit)
    return dw.data(page, count=total) if total else dw.no_content()


@bp.post("/contacts")
def create_contact() -> Response:
    """Create a contact (``lastName`` required); an email already on a contact is refused as a duplicate."""
    portal = current_portal("desk")
    answer, fault = begin(portal, "contact_create")
    if answer is not None:
        return answer
    assert portal.contacts is not None
    try:
        new = parse_contact(_body())
    except DeskInputError as exc:
        return _invalid(exc)
    with portal.contact_lock:
        if new.email is not None:
            wanted = new.email.lower()
            _, clashes = portal.contacts.select_tickets(
                lambda every: [c for c in every if (c.get("email") or "").lower() == wanted], 1, 1
            )
            if clashes:
                return _invalid(DeskInputError("email", "duplicate", "A contact with this email already exists"))
        created_ms = now_ms()
        contact = portal.contacts.store_ticket(lambda cid, _n: build_contact(cid, new, created_ms, portal.name))
    portal.bump("contacts_created")
    return _answer(portal, fault, json_response(contact))


@bp.get("/departments")
def list_departments() -> Response:
    """The portal's departments (``Support`` first, the default; then ``Sales``)."""
    portal = current_portal("desk")
    answer, _ = begin(portal, "meta")
    if answer is not None:
        return answer
    return dw.data(departments(portal.spec.org_id))
