"""Marshmallow schemas of a ticket: the client's ticket in, the ticket out, its attachments; the OpenAPI source."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

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
