"""``POST /requests``, ``GET /requests/<ticket_id>`` and ``GET /requests/<request_ref>``: the client contract.

Each view reads and checks the request, calls one policy (idempotent creates through the outbox, cached
reads, the outbox's record of a create) and shapes the answer; it never sees Zoho's field names.
Failures are raised and rendered by ``api/errors.py``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, after_this_request, current_app, g, request
from marshmallow import ValidationError

from ..context import request_id
from ..errors import (
    AsyncCreateWithFiles,
    InvalidHeader,
    InvalidJSON,
    InvalidMultipart,
    InvalidTicket,
    InvalidTicketId,
    PayloadTooLarge,
    RequestNotFound,
    StateUnavailable,
    UnsupportedMediaType,
)
from ..gateway import MAX_PREFER_WAIT, current_gateway
from ..policies.idempotency import MAX_KEY_LENGTH, Outcome, key_is_valid
from ..policies.outbox import REF
from ..state import StoreUnavailable
from ..zoho.model import NewTicket
from .access import annotate
from .answers import cached_view
from .attachments import attach_after_create, not_attached_while_pending, read_files
from .schemas import TICKET_ID, ticket_in
from .scopes import requires
from .uploads import Form, is_multipart

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
    return parse_json_object(raw)


def parse_json_object(raw: bytes, what: str = "The request body") -> dict[str, Any]:
    """``raw`` as one JSON object (UTF-8, no key twice); InvalidJSON (400) naming ``what`` otherwise."""
    if not raw.strip():
        raise InvalidJSON(f"{what} is empty; send a JSON object")
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
        raise InvalidJSON(f"{what} is not valid JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise InvalidJSON(f"{what} must be a JSON object")
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


#: The ``wait`` of ``Prefer: respond-async`` when the client names none (issue 10).
DEFAULT_PREFER_WAIT = 5.0
#: Seconds a client is told to wait between polls of a pending reference.
POLL_AFTER = 2


def parse_prefer(values: list[str]) -> tuple[bool, float]:
    """(respond-async asked, wait seconds) from every ``Prefer`` header (RFC 7240).

    Preferences are comma-separated ``token[=value]`` with ``;``-parameters; names are case-insensitive
    and a value may be quoted. A malformed or negative ``wait`` is ignored (RFC 7240 §2: a preference a
    server does not understand is ignored); a longer one than ``MAX_PREFER_WAIT`` is cut to it.
    """
    respond_async, wait = False, DEFAULT_PREFER_WAIT
    for value in values:
        for preference in value.split(","):
            name, _, raw = preference.split(";", 1)[0].partition("=")
            name, raw = name.strip().lower(), raw.strip().strip('"')
            if name == "respond-async":
                respond_async = True
            elif name == "wait" and raw.isascii() and raw.isdigit():
                wait = min(float(raw), MAX_PREFER_WAIT)
    return respond_async, wait


def _pending_response(ref: str, status: str, *, respond_async: bool, **extra: Any) -> Response:
    """202: accepted, not yet settled; ``Location`` is where to poll. ``extra`` joins the body."""
    message = (
        "Ticket accepted; it needs review by an operator before its outcome is known"
        if status == "needs_review"
        else "Ticket accepted; Zoho has not confirmed it yet. Poll Location for the outcome"
    )
    response = _json_response({"message": message, "request_ref": ref, "status": status, **extra}, 202)
    response.headers["Location"] = f"/requests/{ref}"
    response.headers["Retry-After"] = str(POLL_AFTER)
    if respond_async:
        response.headers["Preference-Applied"] = "respond-async"
    return response


@bp.post("/requests")
@requires("tickets:create")
def create_ticket() -> Response:
    """Create a ticket; with an ``Idempotency-Key`` header, at most one ticket per (client, key).

    201 with the ticket's id and its ``Location`` once Zoho created it; 202 with a ``request_ref`` and
    ``Location: /requests/<request_ref>`` when the outcome is not settled in time (``Prefer: respond-async``
    asks for that rather than waiting, and queues through outages). A repeat of a keyed create follows the
    first one's outcome, marked ``Idempotent-Replayed: true``.

    ``multipart/form-data`` with a ``ticket`` part (the JSON body) and ``file`` parts: the files are read and
    checked first, the ticket created as above, then the files attached; the answer's ``attachments`` says
    which were and which failed (see ``_create_with_files``).
    """
    if is_multipart():
        return _create_with_files()
    payload = read_json_object()
    key = _idempotency_key()
    ticket = validate_ticket(payload)
    respond_async, wait = parse_prefer(request.headers.getlist("Prefer"))
    return _create(ticket, key, respond_async, wait)


#: The part of a multipart ``POST /requests`` that holds the ticket (JSON, as the JSON body).
TICKET_PART = "ticket"


def _create_with_files() -> Response:
    """``POST /requests`` as a form: every file is read and checked before the ticket is created, so a
    refused file (413, 415) or ticket (400, 422) creates nothing. A failed upload after the create is in the
    201's ``attachments.failed``, never an error. A 202 (the create not settled in time) attaches nothing:
    the files are listed as failed with code ``ticket_pending``; the gateway does not keep them, for a queued
    create may wait hours and the create queue holds small JSON tickets, not files. So ``Prefer:
    respond-async``, which asks for that queueing, is refused with a form (422) before the body is read.
    """
    key = _idempotency_key()
    respond_async, wait = parse_prefer(request.headers.getlist("Prefer"))
    if respond_async:
        raise AsyncCreateWithFiles(
            "Prefer: respond-async cannot come with a form: create the ticket as JSON with it, then POST the "
            "files to /requests/<id>/attachments once created; or send the form without Prefer"
        )
    with read_files(texts={TICKET_PART: current_gateway().config.max_body_bytes}) as form:
        raw = form.texts.get(TICKET_PART)
        if raw is None:
            raise InvalidMultipart("The form has no 'ticket' part: send the ticket as JSON in a part named 'ticket'")
        ticket = validate_ticket(parse_json_object(raw, "The 'ticket' part"))
        return _create(ticket, key, respond_async, wait, form)


def _create(ticket: NewTicket, key: str | None, respond_async: bool, wait: float, form: Form | None = None) -> Response:
    """Create ``ticket`` through the idempotency policy and answer (201, 202 or the failure raised)."""
    outcome: Outcome = current_gateway().idempotency.create(
        ticket,
        client=g.get("client", "-"),
        key=key,
        request_id=g.get("request_id", "-"),
        respond_async=respond_async,
        wait=wait,
    )
    if outcome.replayed:
        annotate(replayed=True)
        # Also when the replay is a failure: the error handler's answer passes through after-request hooks.
        after_this_request(_mark_replayed)
    if outcome.ref is not None:
        annotate(request_ref=outcome.ref)
    if outcome.pending:
        assert outcome.ref is not None  # a pending outcome always names its item
        queued_async = outcome.respond_async or respond_async or current_gateway().config.queue_creates == "always"
        extra = {} if form is None else {"attachments": not_attached_while_pending(form)}
        return _pending_response(outcome.ref, outcome.status or "queued", respond_async=queued_async, **extra)
    ticket_id = outcome.ticket_id_or_raise()
    annotate(zoho_ticket_id=ticket_id)
    body: dict[str, Any] = {"message": "Ticket created successfully", "zoho_ticket_id": ticket_id}
    if form is not None:
        body["attachments"] = attach_after_create(ticket_id, form, replayed=outcome.replayed)
    response = _json_response(body, 201)
    response.headers["Location"] = f"/requests/{ticket_id}"
    return response


def _request_status(ref: str) -> Response:
    """``GET /requests/<request_ref>``: a create's outcome, for the API key that made it only (others: 404)."""
    try:
        item = current_gateway().outbox.lookup(ref, g.get("client", "-"))
    except StoreUnavailable:
        raise StateUnavailable("The create queue cannot be read; retry shortly", retry_after=5) from None
    if item is None:
        raise RequestNotFound("No create with this reference was accepted for your API key")
    annotate(request_ref=ref)
    response = _json_response(item.public(), 202 if item.pending else 200)
    response.headers["Cache-Control"] = "no-store"
    if item.pending:
        response.headers["Retry-After"] = str(POLL_AFTER)
    if item.state == "created":
        response.headers["Location"] = f"/requests/{item.zoho_ticket_id}"
    return response


@bp.get("/requests/<ticket_id>")
@requires("tickets:read")
def get_ticket(ticket_id: str) -> Response:
    """The 5-field ticket, at most GATEWAY_CACHE_TTL seconds old, with an ETag (304 on If-None-Match);
    ``?view=full``: the full view, under the same rules (its own cache entry and ETag).

    A request reference (never all digits, so never a ticket id) answers with its create's outcome instead.
    """
    if not TICKET_ID.fullmatch(ticket_id):
        if REF.fullmatch(ticket_id):
            return _request_status(ticket_id)
        raise InvalidTicketId("Ticket ids are digits only (at most 20)")
    cache = current_gateway().cache
    view = request.args.get("view")
    if view is not None:
        if view != "full" or len(request.args.getlist("view")) > 1:
            raise InvalidTicket("Invalid query parameters: view", fields={"view": ["Must be full, once."]})
        return cached_view(cache.get_full(ticket_id), cache)
    return cached_view(cache.get(ticket_id), cache)


@bp.before_app_request
def _start_deliverers() -> None:
    """Start this process's deliverers on its first request, where nothing started them at boot (tests'
    in-process servers, a WSGI server without a post-fork hook); gunicorn workers (gunicorn.conf.py's
    ``post_worker_init``) and ``./dev run`` (app.py) start theirs at once. A no-op once started.

    The deliverers are the process's, not this request's: their start line carries no request id (else a
    search of the logs for the first request's id finds a line that is not about it)."""
    token = request_id.set("-")
    try:
        current_gateway().delivery.start()
    finally:
        request_id.reset(token)
