"""Marshmallow schemas of the ticket lifecycle (issue 11): find, full view, update, notes, close, pick lists."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .schemas import TICKET_OUT_EXAMPLE, NameRef, TicketOut, _not_blank, _required_text


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false`` only (marshmallow's Boolean also takes ``1``, ``"yes"``, ``"on"``...)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _optional_text(max_length: int, example: str) -> fields.String:
    """An optional text field: when given, a string with at least one visible character (not trimmed)."""
    return fields.String(
        validate=[validate.Length(max=max_length), _not_blank],
        metadata={"minLength": 1, "pattern": r"\S", "example": example},
    )


SORTS = ["-created_at", "created_at", "-updated_at", "updated_at"]
#: The last page a find may ask for (SDP's list paging grows slow far out; narrow the filters instead).
MAX_PAGE = 10_000


class FindQuery(Schema):
    """``GET /requests`` query: filters (ANDed) and paging. Unknown parameters are rejected by name."""

    class Meta:
        unknown = RAISE

    requester_email = fields.Email(
        validate=validate.Length(max=254),
        metadata={"description": "The requester's email address, exactly", "example": "jane@example.com"},
    )
    status = fields.String(
        validate=[validate.Length(min=1, max=100), _not_blank],
        metadata={"description": "A status name, exactly (see `/meta/statuses`)", "example": "Open"},
    )
    q = fields.String(
        validate=[validate.Length(min=1, max=250), _not_blank],
        metadata={"description": "Text the subject contains", "example": "printer"},
    )
    display_id = fields.String(
        validate=validate.Regexp(r"^[0-9]{1,20}$"),
        metadata={"description": "The ticket number people see (`#1234` without the `#`)", "example": "1234"},
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE), metadata={"example": 1})
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100), metadata={"example": 25})
    sort = fields.String(
        load_default="-created_at",
        validate=validate.OneOf(SORTS),
        metadata={"description": "`-` first: newest first", "example": "-created_at"},
    )


class TicketSummaryOut(Schema):
    """One ticket in a list. Times are ISO 8601, UTC."""

    ticket_id = fields.String(required=True, metadata={"example": "123640000000251013"})
    display_id = fields.String(required=True, allow_none=True, metadata={"example": "1234"})
    subject = fields.String(required=True, allow_none=True, metadata={"example": "Printer on fire"})
    status = fields.String(required=True, allow_none=True, metadata={"example": "Open"})
    technician_assigned = fields.String(required=True, metadata={"example": "Unassigned"})
    created_at = fields.String(required=True, allow_none=True, metadata={"example": "2026-11-29T08:00:00.000Z"})
    updated_at = fields.String(required=True, allow_none=True, metadata={"example": "2026-11-29T08:05:00.000Z"})


class TicketListOut(Schema):
    """``GET /requests`` answer: one page; ``has_more`` (and a ``Link: rel="next"`` header) when more exist."""

    items = fields.List(fields.Nested(TicketSummaryOut), required=True)
    page = fields.Integer(required=True, metadata={"example": 1})
    per_page = fields.Integer(required=True, metadata={"example": 25})
    has_more = fields.Boolean(required=True)


class PersonOut(Schema):
    """Someone as Zoho names them; either part may be unknown."""

    name = fields.String(required=True, allow_none=True, metadata={"example": "Jane Doe"})
    email = fields.String(required=True, allow_none=True, metadata={"example": "jane@example.com"})


class FullTicketOut(TicketOut):
    """``GET /requests/<ticket_id>?view=full`` answer: the five fields of the default view and what a helpdesk
    page shows. Texts are plain text; names of pick-list values or null; times ISO 8601, UTC."""

    display_id = fields.String(required=True, allow_none=True, metadata={"example": "1234"})
    subject = fields.String(required=True, allow_none=True, metadata={"example": "Printer on fire"})
    description = fields.String(required=True, allow_none=True, metadata={"example": "Third floor, next to HR."})
    requester = fields.Nested(PersonOut, required=True)
    priority = fields.String(required=True, allow_none=True, metadata={"example": "High"})
    category = fields.String(required=True, allow_none=True)
    department = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True, allow_none=True)
    updated_at = fields.String(required=True, allow_none=True)
    due_by = fields.String(required=True, allow_none=True)
    resolution = fields.String(required=True, allow_none=True, metadata={"description": "Plain text"})
    has_attachments = fields.Boolean(required=True)


class TicketChangesIn(Schema):
    """``PATCH /requests/<ticket_id>`` body: any of these (at least one), validated as for a create."""

    class Meta:
        unknown = RAISE

    subject = _optional_text(250, "Printer on fire (again)")
    description = _optional_text(65535, "Now the second floor too.")
    priority = NameRef(metadata={"example": "High"})
    category = NameRef()
    department = NameRef()
    status = NameRef(metadata={"example": "In Progress"})

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Send at least one field to change.", "_body")


class NoteIn(Schema):
    """``POST /requests/<ticket_id>/notes`` body."""

    class Meta:
        unknown = RAISE

    text = _required_text(65535, "Rebooted the print server; watching it.")
    show_to_requester = StrictBoolean(load_default=False, metadata={"description": "Whether the requester sees it"})


class NoteCreated(Schema):
    """``POST /requests/<ticket_id>/notes`` answer (201)."""

    note_id = fields.String(required=True, metadata={"example": "123640000000262001"})


class NoteOut(Schema):
    """A note on a ticket; ``text`` is plain text, ``author`` the writer's name when Zoho says."""

    note_id = fields.String(required=True, metadata={"example": "123640000000262001"})
    text = fields.String(required=True, metadata={"example": "Rebooted the print server; watching it."})
    show_to_requester = fields.Boolean(required=True)
    created_at = fields.String(required=True, allow_none=True, metadata={"example": "2026-11-29T08:10:00.000Z"})
    author = fields.String(required=True, allow_none=True, metadata={"example": "Ann Tech"})


class NotesOut(Schema):
    """``GET /requests/<ticket_id>/notes`` answer: every note, oldest first."""

    items = fields.List(fields.Nested(NoteOut), required=True)


class CloseIn(Schema):
    """``POST /requests/<ticket_id>/close`` body (optional; both fields optional)."""

    class Meta:
        unknown = RAISE

    comments = _optional_text(65535, "Fixed by the bot")
    resolution = _optional_text(65535, "Replaced the fuser unit.")


class PickValueOut(Schema):
    """A value to pick: the ``name`` a ticket takes, and Zoho's id of it."""

    name = fields.String(required=True, metadata={"example": "High"})
    id = fields.String(required=True, metadata={"example": "123640000000006803"})


class PickListOut(Schema):
    """``GET /meta/<list>`` answer: every value, in Zoho's order."""

    items = fields.List(fields.Nested(PickValueOut), required=True)


FULL_TICKET_EXAMPLE = {
    **TICKET_OUT_EXAMPLE,
    "technician_comments": "Replaced the fuser unit.",
    "status": "Closed",
    "display_id": "1234",
    "subject": "Printer on fire",
    "description": "Third floor, next to HR.",
    "requester": {"name": "Jane Doe", "email": "jane@example.com"},
    "priority": "High",
    "category": "Printers",
    "department": "IT Services",
    "created_at": "2026-11-29T08:00:00.000Z",
    "updated_at": "2026-11-29T09:30:00.000Z",
    "due_by": "2026-11-30T08:00:00.000Z",
    "resolution": "Replaced the fuser unit.",
    "has_attachments": False,
}
TICKET_LIST_EXAMPLE = {
    "items": [
        {
            "ticket_id": "123640000000251013",
            "display_id": "1234",
            "subject": "Printer on fire",
            "status": "Open",
            "technician_assigned": "Unassigned",
            "created_at": "2026-11-29T08:00:00.000Z",
            "updated_at": "2026-11-29T08:05:00.000Z",
        }
    ],
    "page": 1,
    "per_page": 25,
    "has_more": True,
}
CHANGES_IN_EXAMPLES: dict[str, dict[str, Any]] = {
    "status": {"summary": "Move it on", "value": {"status": "In Progress"}},
    "several": {
        "summary": "Several fields at once",
        "value": {"subject": "Printer on fire (again)", "priority": {"name": "High"}, "department": "IT Services"},
    },
}
NOTE_IN_EXAMPLE = {"text": "Rebooted the print server; watching it.", "show_to_requester": False}
NOTES_EXAMPLE = {
    "items": [
        {
            "note_id": "123640000000262001",
            "text": "Rebooted the print server; watching it.",
            "show_to_requester": False,
            "created_at": "2026-11-29T08:10:00.000Z",
            "author": "Ann Tech",
        }
    ]
}
CLOSE_IN_EXAMPLE = {"comments": "Fixed by the bot", "resolution": "Replaced the fuser unit."}
PICK_LIST_EXAMPLE = {
    "items": [{"name": "Low", "id": "123640000000006801"}, {"name": "High", "id": "123640000000006803"}]
}

find_query = FindQuery()
changes_in = TicketChangesIn()
note_in = NoteIn()
close_in = CloseIn()
