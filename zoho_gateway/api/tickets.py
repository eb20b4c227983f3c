"""``POST /requests`` and ``GET /requests/<ticket_id>``: the client contract, over the Zoho client."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request
from marshmallow import ValidationError

from ..errors import InvalidJSON, InvalidTicketId, InvalidTicket, UnsupportedMediaType
from ..gateway import Gateway
from ..zoho.parser import simplify
from ..zoho.transform import to_input_data
from .schemas import TICKET_ID, ticket_in

bp = Blueprint("tickets", __name__)


def _gateway() -> Gateway:
    gateway: Gateway = current_app.extensions["zoho_gateway"]
    return gateway


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object. 415 for another content type, 400 for anything unparsable.

    The body size is capped by ``MAX_CONTENT_LENGTH`` (413 before reading); deep nesting that would
    exhaust the parser is a 400 like any other malformed body.
    """
    if not request.is_json:
        raise UnsupportedMediaType("Send the ticket as JSON with 'Content-Type: application/json'")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidJSON("The request body is empty; send a JSON object")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidJSON("The request body is not valid JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise InvalidJSON("The request body must be a JSON object")
    return data


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested messages as ``{field: [message, ...]}`` keyed by the client's field names."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, texts in _flatten(value, name).items():
                flat.setdefault(field, []).extend(texts)
    elif isinstance(messages, list):
        for item in messages:
            if isinstance(item, (dict, list)):
                for field, texts in _flatten(item, prefix).items():
                    flat.setdefault(field, []).extend(texts)
            else:
                flat.setdefault(prefix or "_body", []).append(str(item))
    else:
        flat.setdefault(prefix or "_body", []).append(str(messages))
    return flat


def validate_ticket(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        ticket: dict[str, Any] = ticket_in.load(payload)
    except ValidationError as err:
        fields = _flatten(err.messages)
        raise InvalidTicket(f"Invalid fields: {', '.join(sorted(fields))}", fields=fields) from None
    return ticket


@bp.post("/requests")
def create_ticket() -> Response:
    ticket = validate_ticket(read_json_object())
    entity = _gateway().zoho.create_request(to_input_data(ticket))
    return _json_response({"message": "Ticket created successfully", "zoho_ticket_id": str(entity["id"])}, 201)


@bp.get("/requests/<ticket_id>")
def get_ticket(ticket_id: str) -> Response:
    if not TICKET_ID.fullmatch(ticket_id):
        raise InvalidTicketId("Ticket ids are digits only (at most 20)")
    entity = _gateway().zoho.get_request(ticket_id)
    return _json_response(simplify(entity))
