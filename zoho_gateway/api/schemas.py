"""Marshmallow schemas: the client's ticket in, the ticket out, the error body (also the OpenAPI source)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

#: Ticket ids are Zoho's long numeric ids (or display ids): digits only, at most 20.
TICKET_ID = re.compile(r"[0-9]{1,20}")


class NameRef(fields.Field[dict[str, str]]):
    """A lookup value: ``{"name": "High"}`` or the bare string ``"High"`` (wrapped). Loads to ``{"name": str}``."""

    default_error_messages = {
        # Doubled braces: marshmallow str.format()s every message (single ones raised KeyError, a 500).
        "invalid": 'Must be a string or an object {{"name": "..."}}.',
        "blank": "Must not be blank.",
        "too_long": "Must be at most 100 characters.",
        "unknown_key": 'Only the key "name" is accepted.',
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, str]:
        if isinstance(value, dict):
            if set(value) - {"name"}:
                raise self.make_error("unknown_key")
            value = value.get("name")
        if not isinstance(value, str):
            raise self.make_error("invalid")
        value = value.strip()
        if not value:
            raise self.make_error("blank")
        if len(value) > 100:
            raise self.make_error("too_long")
        return {"name": value}


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _required_text(max_length: int, example: str) -> fields.String:
    """A required text field: a string with at least one visible character, passed on as written (not trimmed).

    ``subject`` and ``description`` share this rule: the seed contract requires both, and a required field
    that may be empty or blank would require nothing.
    """
    return fields.String(
        required=True,
        validate=[validate.Length(max=max_length), _not_blank],
        # What _not_blank checks, said in the OpenAPI document.
        metadata={"minLength": 1, "pattern": r"\S", "example": example},
    )


class TicketIn(Schema):
    """``POST /requests`` body. Unknown fields are rejected by name."""

    class Meta:
        unknown = RAISE

    subject = _required_text(250, "Printer on fire")
    description = _required_text(65535, "Third floor, next to HR.")
    requester_email = fields.Email(
        required=True, validate=validate.Length(max=254), metadata={"example": "jane@example.com"}
    )
    priority = NameRef(load_default=None, allow_none=True, metadata={"example": "High"})
    department = NameRef(load_default=None, allow_none=True)
    category = NameRef(load_default=None, allow_none=True)
    status = NameRef(load_default=None, allow_none=True)


class Attachment(Schema):
    """A file attached to a ticket, as Zoho holds it: its type is the one the gateway judged from its bytes."""

    attachment_id = fields.String(required=True, metadata={"example": "123640000000900007"})
    name = fields.String(required=True, metadata={"description": "Made safe by the gateway", "example": "shot.png"})
    size = fields.Integer(required=True, allow_none=True, metadata={"description": "Bytes", "example": 48213})
    content_type = fields.String(required=True, allow_none=True, metadata={"example": "image/png"})


class AttachmentList(Schema):
    """``POST /requests/<ticket_id>/attachments`` (201: the files attached, in order) and its ``GET`` (200)."""

    items = fields.List(fields.Nested(Attachment), required=True)


class AttachmentFailure(Schema):
    """A file of a form create that was not attached: the ticket exists, attach the file to it again."""

    name = fields.String(required=True)
    code = fields.String(
        required=True,
        metadata={
            "description": "An error code of the table (what attaching it answered), or `ticket_pending` when the "
            "create answered 202 and the ticket does not exist yet"
        },
    )
    message = fields.String(required=True)


class CreatedAttachments(Schema):
    """The files of a ``multipart/form-data`` create: those attached, and those that failed (the ticket stands)."""

    items = fields.List(fields.Nested(Attachment), required=True)
    failed = fields.List(fields.Nested(AttachmentFailure), required=True)


class TicketCreated(Schema):
    """``POST /requests`` answer (201)."""

    message = fields.String(required=True, metadata={"example": "Ticket created successfully"})
    zoho_ticket_id = fields.String(required=True, metadata={"example": "123640000000251013"})
    attachments = fields.Nested(
        CreatedAttachments, metadata={"description": "Only when the ticket was sent as a form with `file` parts"}
    )


class TicketOut(Schema):
    """``GET /requests/<ticket_id>`` answer (200): the ticket as Zoho holds it now, in five fields."""

    ticket_id = fields.String(required=True, metadata={"example": "123640000000251013"})
    status = fields.String(required=True, allow_none=True, metadata={"example": "Open"})
    technician_assigned = fields.String(
        required=True, metadata={"description": '"Unassigned" when nobody is', "example": "Unassigned"}
    )
    technician_contact_email = fields.String(
        required=True, allow_none=True, metadata={"description": "null when unassigned or unknown"}
    )
    technician_comments = fields.String(
        required=True, allow_none=True, metadata={"description": "The latest resolution text, or null"}
    )


class ErrorDetails(Schema):
    """What went wrong, for programs (``code``) and people (``message``). More keys may come."""

    class Meta:
        unknown = INCLUDE  # documented as an open object: Zoho's failures add their own facts

    code = fields.String(required=True, metadata={"description": "Stable: branch on this"})
    message = fields.String(required=True, metadata={"description": "For people; may change"})
    request_id = fields.String(metadata={"description": "Quote it to us: it finds the request in our logs"})
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Per-field problems, keyed by your field names"},
    )
    retry_after = fields.Integer(metadata={"description": "Seconds to wait, as in the Retry-After header"})
    zoho_codes = fields.List(fields.Integer(), metadata={"description": "Zoho's own status codes"})
    upstream_status = fields.Integer(metadata={"description": "The HTTP status Zoho answered with"})


class ErrorBody(Schema):
    """Every error answer: ``{"error": <summary>, "details": {"code", "message", ...}}``."""

    error = fields.String(required=True)
    details = fields.Nested(ErrorDetails, required=True)


class Health(Schema):
    """``GET /healthz`` answer."""

    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class Readiness(Schema):
    """``GET /readyz`` answer: ``status`` and the facts that decided it."""

    class Meta:
        unknown = INCLUDE  # more facts may be added

    status = fields.String(required=True, validate=validate.OneOf(["ready", "not_ready"]))
    state = fields.String(validate=validate.OneOf(["ok", "unavailable"]), metadata={"description": "Shared state"})
    token = fields.String(validate=validate.OneOf(["valid", "absent"]), metadata={"description": "Access token"})
    token_backoff = fields.String(metadata={"description": "Why the token endpoint is being left alone"})


class TokenStatus(Schema):
    """``GET /token/status`` answer: the shared access token's state, never the token itself."""

    class Meta:
        unknown = INCLUDE  # an operator's view: more facts may be added

    backend = fields.String(required=True, metadata={"example": "sqlite"})
    token_held = fields.Boolean(required=True)
    expires_at = fields.String(allow_none=True, metadata={"description": "ISO 8601, UTC"})
    expires_in = fields.Integer(allow_none=True, metadata={"description": "Seconds"})
    fingerprint = fields.String(allow_none=True, metadata={"description": "Tells tokens apart without showing one"})
    mints_last_hour = fields.Integer()
    throttled = fields.Boolean()


class Index(Schema):
    """``GET /`` answer (with a redirect to ``/docs``): where to read about the API."""

    message = fields.String(required=True)
    docs = fields.String(required=True, metadata={"example": "/docs"})
    openapi = fields.String(required=True, metadata={"example": "/openapi.json"})


#: Request bodies for the documentation (OpenAPI ``examples``); each must load through ``TicketIn``.
TICKET_IN_EXAMPLES: dict[str, dict[str, Any]] = {
    "minimal": {
        "summary": "The three required fields",
        "value": {
            "subject": "VPN down",
            "description": "Since 9am, from home",
            "requester_email": "jane@example.com",
        },
    },
    "full": {
        "summary": "Every field; lookups as a name or as {\"name\": ...}",
        "value": {
            "subject": "Printer on fire",
            "description": "Third floor, next to HR.",
            "requester_email": "jane@example.com",
            "priority": "High",
            "department": "IT Services",
            "category": {"name": "Printers"},
            "status": {"name": "Open"},
        },
    },
}
#: Success bodies for the documentation.
TICKET_CREATED_EXAMPLE = {"message": "Ticket created successfully", "zoho_ticket_id": "123640000000251013"}
TICKET_OUT_EXAMPLE = {
    "ticket_id": "123640000000251013",
    "status": "Open",
    "technician_assigned": "Unassigned",
    "technician_contact_email": None,
    "technician_comments": None,
}
#: One attached file, for the documentation.
ATTACHMENT_EXAMPLE = {
    "attachment_id": "123640000000900007",
    "name": "screenshot.png",
    "size": 48213,
    "content_type": "image/png",
}


ticket_in = TicketIn()


# --- the ticket lifecycle (issue 11): find, full view, update, notes, close, reopen, pick lists --------------


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
