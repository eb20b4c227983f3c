"""``POST /requests`` and ``GET /requests/<ticket_id>``: the client contract, over the Zoho client."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from marshmallow import ValidationError

from ..context import request_id
from ..errors import (
    InvalidJSON,
    InvalidTicket,
    InvalidTicketId,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..gateway import Gateway, current_gateway
from ..policies.idempotency import Replay, body_fingerprint, check_key
from ..zoho.model import NewTicket
from .schemas import TICKET_ID, ticket_in

bp = Blueprint("tickets", __name__)


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
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    # Werkzeug silently cuts a chunked (length-less) body at the limit: anything left means it was too large.
    cut = limit is not None and request.content_length is None and len(raw) >= limit
    if cut and request.environ["wsgi.input"].read(1):
        raise PayloadTooLarge()
    if not raw.strip():
        raise InvalidJSON("The request body is empty; send a JSON object")
    try:
        data = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)  # UTF-8 only (RFC 8259)
        # Escapes can smuggle in lone surrogates (a lone \\ud800) that no UTF-8 encoder (Zoho's form body) accepts.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
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


def validate_ticket(payload: dict[str, Any]) -> NewTicket:
    try:
        ticket: NewTicket = ticket_in.load(payload)
    except ValidationError as err:
        fields = _flatten(err.messages)
        raise InvalidTicket(f"Invalid fields: {', '.join(sorted(fields))}", fields=fields) from None
    return ticket


def _replay(replay: Replay) -> Response:
    body = replay.body
    if isinstance(body.get("details"), dict):
        body = {**body, "details": {**body["details"], "request_id": request_id.get()}}
    response = _json_response(body, replay.status)
    response.headers.update(replay.headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/requests")
def create_ticket() -> Response:
    """Create a ticket; with an ``Idempotency-Key`` header, at most one ticket per (client, key)."""
    payload = read_json_object()
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        check_key(key)
    ticket = validate_ticket(payload)
    gateway = current_gateway()
    if key is None:
        return _json_response(_create(gateway, ticket), 201)
    answer, replayed = gateway.idempotency.run_once(
        g.get("client", "-"), key, body_fingerprint(payload), lambda: _create(gateway, ticket)
    )
    if replayed:
        gateway.metrics.replays.inc()
        return _replay(answer)
    return _json_response(answer.body, answer.status)


def _create(gateway: Gateway, ticket: NewTicket) -> dict[str, Any]:
    """Create the ticket in Zoho; the 201 body."""
    ticket_id, created = gateway.tickets.create(ticket)
    # Zoho's answer is the ticket as it is now: a poll right after the create needs no upstream call.
    gateway.cache.prime(created)
    return {"message": "Ticket created successfully", "zoho_ticket_id": ticket_id}


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    return any(candidate.strip().removeprefix("W/") == etag for candidate in header.split(","))


@bp.get("/requests/<ticket_id>")
def get_ticket(ticket_id: str) -> Response:
    """The 5-field ticket, at most GATEWAY_CACHE_TTL seconds old, with an ETag (304 on If-None-Match)."""
    if not TICKET_ID.fullmatch(ticket_id):
        raise InvalidTicketId("Ticket ids are digits only (at most 20)")
    gateway = current_gateway()
    cached = gateway.cache.read(ticket_id, lambda: gateway.tickets.get(ticket_id))
    body = json.dumps(cached.ticket, ensure_ascii=False)
    etag = f'"{hashlib.sha256(body.encode()).hexdigest()[:20]}"'
    # Say what the cache does: answers are reused for up to the TTL, and Age says how much of it is gone
    # (so a client cache keeps it only for the rest); with the cache off, always revalidate.
    cache_control = f"private, max-age={int(gateway.cache.ttl)}" if gateway.cache.enabled else "no-cache"
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        response = Response(status=304)
    else:
        response = Response(body, status=200, mimetype="application/json")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control
    if gateway.cache.enabled:
        response.headers["Age"] = str(int(cached.age))
    return response
