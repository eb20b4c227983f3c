"""Pure conversions between the gateway's types (``zoho.model``) and Zoho Desk v1 records.

Bodies out (a ticket to create, changes to PATCH, a comment); records in (a ticket, a list row, a comment, an
attachment, a department) as our types. Desk takes priority, status and category as plain strings and the
department by id. Tolerant of nulls and missing keys: what Desk leaves out is None, never a guess. Raises
ZohoBadResponse only when a record lacks its id. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...errors import ZohoBadResponse
from ..model import (
    Attachment,
    FullTicket,
    NewTicket,
    Note,
    Person,
    PickValue,
    SortKey,
    Ticket,
    TicketChanges,
    TicketSummary,
)
from ..text import plain_text

UNASSIGNED = "Unassigned"

#: Our sort keys -> Desk's ``sortBy`` (a ``-`` prefix sorts newest first).
SORTS: dict[SortKey, str] = {
    "created_at": "createdTime",
    "-created_at": "-createdTime",
    "updated_at": "modifiedTime",
    "-updated_at": "-modifiedTime",
}

# ---- bodies out ------------------------------------------------------------------------------------------------


def create_body(
    ticket: NewTicket, *, department_id: str, contact_id: str, custom_fields: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``POST /api/v1/tickets``: subject, description, departmentId, contactId, and the names given."""
    body: dict[str, Any] = {
        "subject": ticket["subject"],
        "description": ticket["description"],
        "departmentId": department_id,
        "contactId": contact_id,
    }
    named = {"priority": ticket.get("priority"), "status": ticket.get("status"), "category": ticket.get("category")}
    body.update({key: ref["name"] for key, ref in named.items() if ref is not None})
    if custom_fields:
        body["cf"] = dict(custom_fields)
    return body


def update_body(changes: TicketChanges, *, department_id: str | None = None) -> dict[str, Any]:
    """``PATCH /api/v1/tickets/{id}``: the fields given (``department_id`` already resolved from its name)."""
    body: dict[str, Any] = {}
    if "subject" in changes:
        body["subject"] = changes["subject"]
    if "description" in changes:
        body["description"] = changes["description"]
    named = {"priority": changes.get("priority"), "status": changes.get("status"), "category": changes.get("category")}
    body.update({key: ref["name"] for key, ref in named.items() if ref is not None})
    if department_id is not None:
        body["departmentId"] = department_id
    return body


def close_body(resolution: str | None) -> dict[str, Any]:
    """Closing is a PATCH of the status (Desk has no close call); the resolution is a plain ticket field."""
    body: dict[str, Any] = {"status": "Closed"}
    if resolution is not None:
        body["resolution"] = resolution
    return body


def comment_body(text: str, *, show_to_requester: bool) -> dict[str, Any]:
    """A comment of plain text (``contentType: plainText``, so that Desk never reads it as HTML)."""
    return {"content": text, "isPublic": show_to_requester, "contentType": "plainText"}


def contact_body(email: str) -> dict[str, Any]:
    """A contact for a requester known only by email: Desk requires ``lastName``; the address's local part."""
    return {"lastName": email.split("@", 1)[0][:80] or email[:80], "email": email}


# ---- records in ------------------------------------------------------------------------------------------------


def record_id(record: Mapping[str, Any], what: str) -> str:
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise ZohoBadResponse(f"Zoho Desk answered a {what} without an id")
    return str(value)


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def iso_time(value: Any) -> str | None:
    """Desk's ``2022-06-27T17:12:35.000Z`` as ISO 8601 UTC with milliseconds; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_ms(epoch_ms: int) -> str:
    """Epoch milliseconds in Desk's format, for ``createdTimeRange``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def person_name(person: Any) -> str | None:
    """``firstName lastName`` (either may be missing), or ``name``; None when neither is there."""
    if not isinstance(person, Mapping):
        return None
    parts = [_str(person.get(key)) for key in ("firstName", "lastName")]
    joined = " ".join(part.strip() for part in parts if part and part.strip())
    return joined or _str(person.get("name")) or None


def _assignee(ticket: Mapping[str, Any]) -> tuple[str, str | None]:
    assignee = ticket.get("assignee")
    name = person_name(assignee)
    email = _str(assignee.get("email")) if isinstance(assignee, Mapping) else None
    return name or UNASSIGNED, email


def ticket(record: Mapping[str, Any]) -> Ticket:
    """The seed view: status, the assignee's name ("Unassigned") and email, the resolution as Desk holds it."""
    technician, email = _assignee(record)
    return Ticket(
        ticket_id=record_id(record, "ticket"),
        status=_str(record.get("status")),
        technician_assigned=technician,
        technician_contact_email=email,
        technician_comments=_str(record.get("resolution")),
    )


def needs_assignee(record: Mapping[str, Any]) -> bool:
    """Whether the record names an assignee (``assigneeId``) without the ``assignee`` object to name them by."""
    return record.get("assigneeId") not in (None, "") and not isinstance(record.get("assignee"), Mapping)


def full_ticket(record: Mapping[str, Any]) -> FullTicket:
    """The full view of a ticket read with ``include=contacts,assignee,departments``."""
    seed = ticket(record)
    contact = record.get("contact")
    requester = Person(
        name=person_name(contact),
        email=_str(contact.get("email")) if isinstance(contact, Mapping) else _str(record.get("email")),
    )
    if requester["email"] is None:
        requester["email"] = _str(record.get("email"))
    department = record.get("department")
    attachments = _str(record.get("attachmentCount"))
    description = _str(record.get("description"))
    return FullTicket(
        ticket_id=seed["ticket_id"],
        status=seed["status"],
        technician_assigned=seed["technician_assigned"],
        technician_contact_email=seed["technician_contact_email"],
        technician_comments=seed["technician_comments"],
        display_id=_str(record.get("ticketNumber")),
        subject=_str(record.get("subject")),
        description=plain_text(description),
        requester=requester,
        priority=_str(record.get("priority")),
        category=_str(record.get("category")),
        department=_str(department.get("name")) if isinstance(department, Mapping) else None,
        created_at=iso_time(record.get("createdTime")),
        updated_at=iso_time(record.get("modifiedTime")),
        due_by=iso_time(record.get("dueDate")),
        resolution=plain_text(seed["technician_comments"]),
        has_attachments=attachments is not None and attachments.isdigit() and int(attachments) > 0,
    )


def summary(record: Mapping[str, Any]) -> TicketSummary:
    """A list row (read with ``include=assignee``)."""
    technician, _ = _assignee(record)
    return TicketSummary(
        ticket_id=record_id(record, "ticket"),
        display_id=_str(record.get("ticketNumber")),
        subject=_str(record.get("subject")),
        status=_str(record.get("status")),
        technician_assigned=technician,
        created_at=iso_time(record.get("createdTime")),
        updated_at=iso_time(record.get("modifiedTime")),
    )


def note(record: Mapping[str, Any]) -> Note:
    """A comment as a note: ``isPublic`` is ``show_to_requester``; plain-text comments are not read as HTML."""
    content = _str(record.get("content")) or ""
    if record.get("contentType") == "plainText":
        text = content.replace("\r\n", "\n").strip()
    else:
        text = plain_text(content) or ""
    return Note(
        note_id=record_id(record, "comment"),
        text=text,
        show_to_requester=record.get("isPublic") is True,
        created_at=iso_time(record.get("commentedTime")),
        author=person_name(record.get("commenter")),
    )


def attachment(record: Mapping[str, Any]) -> Attachment:
    """An attachment; Desk gives ``size`` as a string of bytes and no content type."""
    size = _str(record.get("size"))
    content_type = record.get("contentType") or record.get("type")
    return Attachment(
        attachment_id=record_id(record, "attachment"),
        name=_str(record.get("name")) or "",
        size=int(size) if size is not None and size.isdigit() else None,
        content_type=content_type if isinstance(content_type, str) and "/" in content_type else None,
    )


def pick_value(record: Mapping[str, Any]) -> PickValue | None:
    """A department as a pick-list value; None for one without a name or id."""
    name, value_id = _str(record.get("name")), _str(record.get("id"))
    if not name or not value_id:
        return None
    return PickValue(name=name, id=value_id)


def rows(data: Any, what: str) -> list[Mapping[str, Any]]:
    """The ``data`` list of a Desk list answer; ``[]`` for None (204). Raises ZohoBadResponse for another shape."""
    if data is None:
        return []
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise ZohoBadResponse(f"Zoho Desk answered a list of {what} without its data")
    return list(items)


def count(data: Any) -> int | None:
    """A search answer's total ``count``, or None."""
    value = data.get("count") if isinstance(data, Mapping) else None
    text = _str(value)
    return int(text) if text is not None and text.isdigit() else None
