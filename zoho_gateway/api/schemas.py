"""Marshmallow schemas: the client's ticket in, the ticket out, the error body (also the OpenAPI source)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate

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
    """``POST /requests`` answer (201)."""

    message = fields.String(required=True, metadata={"example": "Ticket created successfully"})
    zoho_ticket_id = fields.String(required=True, metadata={"example": "123640000000251013"})


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


ticket_in = TicketIn()
