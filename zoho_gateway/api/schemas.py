"""Marshmallow schemas: the client's ticket in, the ticket out, the error body (also the OpenAPI source)."""

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


class TicketCreated(Schema):
    message = fields.String(metadata={"example": "Ticket created successfully"})
    zoho_ticket_id = fields.String(metadata={"example": "123640000000240013"})


class TicketOut(Schema):
    ticket_id = fields.String()
    status = fields.String(allow_none=True)
    technician_assigned = fields.String(metadata={"example": "Unassigned"})
    technician_contact_email = fields.String(allow_none=True)
    technician_comments = fields.String(allow_none=True)


class ErrorDetails(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    request_id = fields.String()
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.List(fields.String()))
    retry_after = fields.Integer()


class ErrorBody(Schema):
    error = fields.String(required=True)
    details = fields.Nested(ErrorDetails, required=True)


ticket_in = TicketIn()
