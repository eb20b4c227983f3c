"""``POST /requests`` and ``GET /requests/<ticket_id>``: the client contract, over the request policies.

Each view reads and checks the request, calls one policy (idempotent creates, cached reads) and shapes
the answer; it never sees Zoho's field names. Failures are raised and rendered by ``api/errors.py``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, Response, after_this_request, current_app, g, request
from marshmallow import ValidationError

from ..errors import (
    InvalidHeader,
    InvalidJSON,
    InvalidTicket,
    InvalidTicketId,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..gateway import current_gateway
from ..policies.idempotency import MAX_KEY_LENGTH, key_is_valid
from ..zoho.model import NewTicket
from .access import annotate
from .schemas import TICKET_ID, ticket_in

bp = Blueprint("tickets", __name__)

#: Key names echoed in an error message are cut to this length (they are the client's, and may be anything).
MAX_ECHOED_KEY = 64


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: the object, or _DuplicateKey for a key given twice (json would keep the last)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object. 415 for another content type, 400 for anything unparsable.

    The body size is capped by ``MAX_CONTENT_LENGTH`` (413 before reading); deep nesting that would
    exhaust the parser is a 400 like any other malformed body, and so is a key given twice in one object.
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
        data = json.loads(  # UTF-8 only (RFC 8259)
            raw.decode("utf-8-sig"), parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates
        )
        # Escapes can smuggle in lone surrogates (a lone \\ud800) that no UTF-8 encoder (Zoho's form body) accepts.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except _DuplicateKey as exc:
        name = json.dumps(exc.key[:MAX_ECHOED_KEY], ensure_ascii=False)
        raise InvalidJSON(f"The key {name} appears twice in one JSON object; send each key once") from None
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
    """The body as a ticket to create; InvalidTicket (422) naming every field at fault, by the client's names."""
    try:
        ticket: NewTicket = ticket_in.load(payload)
    except ValidationError as err:
        fields = _flatten(err.messages)
        raise InvalidTicket(f"Invalid fields: {', '.join(sorted(fields))}", fields=fields) from None
    return ticket


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not key_is_valid(key):
        raise InvalidHeader(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    return key


def _mark_replayed(response: Response) -> Response:
    response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/requests")
def create_ticket() -> Response:
    """Create a ticket; with an ``Idempotency-Key`` header, at most one ticket per (client, key).

    201 with the ticket's id and its ``Location``. A repeat of a keyed create gets the first answer again,
    marked ``Idempotent-Replayed: true``: the same body, or the same failure rendered for this request.
    """
    payload = read_json_object()
    key = _idempotency_key()
    ticket = validate_ticket(payload)
    outcome = current_gateway().idempotency.create(ticket, client=g.get("client", "-"), key=key)
    if outcome.replayed:
        annotate(replayed=True)
        # Also when the replay is a failure: the error handler's answer passes through after-request hooks.
        after_this_request(_mark_replayed)
    ticket_id = outcome.ticket_id_or_raise()
    annotate(zoho_ticket_id=ticket_id)
    response = _json_response({"message": "Ticket created successfully", "zoho_ticket_id": ticket_id}, 201)
    response.headers["Location"] = f"/requests/{ticket_id}"
    return response


@bp.get("/requests/<ticket_id>")
def get_ticket(ticket_id: str) -> Response:
    """The 5-field ticket, at most GATEWAY_CACHE_TTL seconds old, with an ETag (304 on If-None-Match)."""
    if not TICKET_ID.fullmatch(ticket_id):
        raise InvalidTicketId("Ticket ids are digits only (at most 20)")
    cache = current_gateway().cache
    cached = cache.get(ticket_id)
    body = json.dumps(cached.ticket, ensure_ascii=False)
    etag = hashlib.sha256(body.encode()).hexdigest()[:20]
    # If-None-Match compares weakly (RFC 9110 §13.1.2: W/"x" matches "x"), and "*" matches any ticket.
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(body, status=200, mimetype="application/json")
    response.set_etag(etag)
    # Say what the cache does: answers are reused for up to the TTL, and Age says how much of it is gone
    # (so a client cache keeps it only for the rest); with the cache off, always revalidate.
    response.headers["Cache-Control"] = f"private, max-age={int(cache.ttl)}" if cache.enabled else "no-cache"
    if cache.enabled:
        response.headers["Age"] = str(int(cached.age))
    return response
