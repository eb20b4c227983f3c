"""Pure readers of SDP v3 entities into the gateway's lifecycle types (``zoho.model``).

Plain dicts in (a request, a list row, a note, an attachment, a pick-list value), our types out; no I/O.
Tolerant of nulls and missing keys: what Zoho leaves out is None, never a guess. Raises ZohoBadResponse
only when an entity lacks its id, without which nothing can refer to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ZohoBadResponse
from .model import Attachment, FullTicket, Note, Person, PickValue, TicketSummary
from .parser import simplify
from .text import plain_text


def iso_time(value: Any) -> str | None:
    """An SDP datetime (``{"display_value", "value": "<epoch ms>"}``) as ISO 8601 UTC with milliseconds.

    ``display_value`` is in the API user's own format and zone, so only ``value`` is read. None when absent
    or not a number.
    """
    raw = value.get("value") if isinstance(value, Mapping) else None
    try:
        epoch_ms = int(str(raw).strip())
    except ValueError:
        return None
    try:
        moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _id(entity: Mapping[str, Any], what: str) -> str:
    value = entity.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise ZohoBadResponse(f"Zoho answered a {what} without an id")
    return str(value)


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _name(value: Any) -> str | None:
    return _str(value.get("name")) if isinstance(value, Mapping) else None


def _size(value: Any) -> int | None:
    """Bytes from ``{"display_value": "1.2 MB", "value": "1258291"}`` or a bare number."""
    raw = value.get("value") if isinstance(value, Mapping) else value
    if isinstance(raw, bool):
        return None
    try:
        size = int(str(raw).strip())
    except ValueError:
        return None
    return size if size >= 0 else None


def summary(entity: Mapping[str, Any]) -> TicketSummary:
    """One list row (the full entity or the trimmed form lists may give)."""
    ticket = simplify(entity)
    return TicketSummary(
        ticket_id=ticket["ticket_id"],
        display_id=_str(entity.get("display_id")),
        subject=_str(entity.get("subject")),
        status=ticket["status"],
        technician_assigned=ticket["technician_assigned"],
        created_at=iso_time(entity.get("created_time")),
        updated_at=iso_time(entity.get("last_updated_time")),
    )


def full_ticket(entity: Mapping[str, Any]) -> FullTicket:
    """The full view of a request entity (``GET /requests/{id}``); HTML fields as plain text.

    The seed's five fields are exactly those of ``simplify`` (``technician_comments`` is Zoho's resolution
    text as stored); ``resolution`` is the same text read as plain text (equal unless Zoho holds HTML).
    ``has_attachments`` is Zoho's flag, or whether the entity lists attachments when the flag is absent.
    """
    ticket = simplify(entity)
    requester = entity.get("requester")
    person = requester if isinstance(requester, Mapping) else {}
    resolution = entity.get("resolution")
    content = resolution.get("content") if isinstance(resolution, Mapping) else None
    resolution_text = plain_text(content) if isinstance(content, str) else None
    flag = entity.get("has_attachments")
    attachments = entity.get("attachments")
    description = entity.get("description")
    return FullTicket(
        ticket_id=ticket["ticket_id"],
        status=ticket["status"],
        technician_assigned=ticket["technician_assigned"],
        technician_contact_email=ticket["technician_contact_email"],
        technician_comments=ticket["technician_comments"],
        display_id=_str(entity.get("display_id")),
        subject=_str(entity.get("subject")),
        description=plain_text(description) if isinstance(description, str) else None,
        requester=Person(name=_str(person.get("name")), email=_str(person.get("email_id"))),
        priority=_name(entity.get("priority")),
        category=_name(entity.get("category")),
        department=_name(entity.get("department")),
        created_at=iso_time(entity.get("created_time")),
        updated_at=iso_time(entity.get("last_updated_time")),
        due_by=iso_time(entity.get("due_by_time")),
        resolution=resolution_text or None,
        has_attachments=flag if isinstance(flag, bool) else bool(isinstance(attachments, list) and attachments),
    )


def is_closed(entity: Mapping[str, Any]) -> bool:
    """Whether the request's status is Closed (by its ``internal_name``, else its name; case ignored)."""
    status = entity.get("status")
    if not isinstance(status, Mapping):
        return False
    name = status.get("internal_name") or status.get("name")
    return isinstance(name, str) and name.strip().casefold() == "closed"


def note(entity: Mapping[str, Any]) -> Note:
    """A ``request_note``: its description as plain text, its author's name."""
    description = entity.get("description")
    show = entity.get("show_to_requester")
    return Note(
        note_id=_id(entity, "note"),
        text=(plain_text(description) if isinstance(description, str) else None) or "",
        show_to_requester=show is True or show == "true",
        created_at=iso_time(entity.get("created_time")),
        author=_name(entity.get("created_by")),
    )


def attachment(entity: Mapping[str, Any]) -> Attachment:
    """An attachment (``/attachments``) or an uploaded file (``/_uploads``' ``files``)."""
    content_type = entity.get("content_type")
    return Attachment(
        attachment_id=_id(entity, "attachment"),
        name=_str(entity.get("name")) or "",
        size=_size(entity.get("size")),
        content_type=content_type if isinstance(content_type, str) and content_type else None,
    )


def pick_value(entity: Mapping[str, Any]) -> PickValue | None:
    """A pick-list value, or None for one without a name (nothing a ticket could be given)."""
    name = _str(entity.get("name"))
    if not name:
        return None
    return PickValue(name=name, id=_id(entity, "pick-list value"))
