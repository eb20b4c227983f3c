"""The ticket lifecycle beside the seed contract (issue 11): find, update, notes, close, reopen.

``GET /requests`` finds tickets a page at a time; ``PATCH /requests/<id>`` changes fields (``If-Match`` for
optimistic concurrency); ``/notes`` adds and lists notes; ``/close`` and ``/reopen`` change the state. Each
view validates at the edge, calls one policy or the ticket service, and shapes the answer. Every write
honours ``Idempotency-Key`` and invalidates the ticket's cached reads (``policies/writes.py``). The full view
(``GET /requests/<id>?view=full``) is served by ``api/tickets.py``'s read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, after_this_request, g, request
from marshmallow import Schema, ValidationError

from ..errors import InvalidTicket, InvalidTicketId, PreconditionFailed
from ..gateway import current_gateway
from ..policies.writes import Outcome
from ..zoho.model import FullTicket, TicketQuery
from .access import annotate
from .answers import json_response, view_etag
from .schemas import TICKET_ID
from .schemas_lifecycle import MAX_PAGE, changes_in, close_in, find_query, note_in
from .scopes import requires
from .tickets import _flatten, _idempotency_key, _mark_replayed, read_json_object

bp = Blueprint("lifecycle", __name__)


def _check_id(ticket_id: str) -> None:
    if not TICKET_ID.fullmatch(ticket_id):
        raise InvalidTicketId("Ticket ids are digits only (at most 20)")


def _load(schema: Schema, data: dict[str, Any], what: str) -> Any:
    """``data`` through ``schema``; InvalidTicket (422) naming every field at fault, by the client's names."""
    try:
        return schema.load(data)
    except ValidationError as err:
        fields = _flatten(err.messages)
        raise InvalidTicket(f"Invalid {what}: {', '.join(sorted(fields))}", fields=fields) from None


def _optional_body() -> dict[str, Any]:
    """The JSON object of a request whose body may be left out (none at all reads as ``{}``)."""
    return read_json_object() if request.get_data(cache=True) else {}


def _answer(outcome: Outcome, status: int = 200) -> Response:
    """A write's outcome: its body (a full view also gets its ``ETag``), marked when replayed."""
    if outcome.replayed:
        annotate(replayed=True)
        after_this_request(_mark_replayed)  # also on a replayed failure: the error answer passes through hooks
    value = outcome.value_or_raise()
    response = json_response(value, status)
    if "ticket_id" in value:
        response.set_etag(view_etag(value))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/requests")
@requires("tickets:list")
def find_tickets() -> Response:
    """One page of the tickets matching the filters; ``Link: <...>; rel="next"`` when more exist."""
    args = request.args
    repeated = sorted(name for name in args if len(args.getlist(name)) > 1)
    if repeated:
        fields = {name: ["Give this parameter once."] for name in repeated}
        raise InvalidTicket(f"Invalid query parameters: {', '.join(repeated)}", fields=fields)
    query: TicketQuery = _load(find_query, args.to_dict(), "query parameters")
    found = current_gateway().tickets.find(query)
    body = {
        "items": found["items"],
        "page": query["page"],
        "per_page": query["per_page"],
        "has_more": found["has_more"],
    }
    response = json_response(body)
    if found["has_more"] and query["page"] < MAX_PAGE:  # never a link to a page the find refuses
        # Relative (RFC 8288 allows a reference), so that it stays right behind a proxy; the client's other
        # parameters are kept as given, the page moved on.
        following = urlencode({**args.to_dict(), "page": str(query["page"] + 1)})
        response.headers["Link"] = f'<{request.script_root}{request.path}?{following}>; rel="next"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.patch("/requests/<ticket_id>")
@requires("tickets:write")
def update_ticket(ticket_id: str) -> Response:
    """Change any of subject, description, priority, category, department, status; 200 with the full view.

    ``If-Match`` (the full view's ETag, or ``*``): 412 when the ticket as Zoho holds it now has another.
    """
    _check_id(ticket_id)
    payload = read_json_object()
    key = _idempotency_key()
    changes = _load(changes_in, payload, "fields")
    if_match = request.headers.get("If-Match")
    wanted = request.if_match

    def check(current: FullTicket) -> None:
        if not wanted.contains(view_etag(current)):
            raise PreconditionFailed(
                f"The ticket changed since the ETag in If-Match: read it again (GET /requests/{ticket_id}?view=full) "
                "and send its ETag"
            )

    outcome = current_gateway().writes.update(
        ticket_id,
        changes,
        check=check if if_match is not None else None,
        precondition=if_match,
        client=g.get("client", "-"),
        key=key,
    )
    return _answer(outcome)


@bp.post("/requests/<ticket_id>/notes")
@requires("tickets:write")
def add_note(ticket_id: str) -> Response:
    """Add a note; 201 ``{"note_id"}``. With an Idempotency-Key, a repeat replays: never a second note."""
    _check_id(ticket_id)
    payload = read_json_object()
    key = _idempotency_key()
    note = _load(note_in, payload, "fields")
    outcome = current_gateway().writes.add_note(
        ticket_id, note["text"], show_to_requester=note["show_to_requester"], client=g.get("client", "-"), key=key
    )
    response = _answer(outcome, 201)
    annotate(note_id=outcome.value["note_id"])
    return response


@bp.get("/requests/<ticket_id>/notes")
@requires("tickets:read")
def list_notes(ticket_id: str) -> Response:
    """Every note of the ticket, oldest first."""
    _check_id(ticket_id)
    response = json_response({"items": current_gateway().tickets.list_notes(ticket_id)})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/requests/<ticket_id>/close")
@requires("tickets:write")
def close_ticket(ticket_id: str) -> Response:
    """Close the ticket (``resolution`` becomes its resolution text); 200 with the full view, also when it was
    closed already. The body is optional."""
    _check_id(ticket_id)
    payload = _optional_body()
    key = _idempotency_key()
    body = _load(close_in, payload, "fields")
    outcome = current_gateway().writes.close(
        ticket_id,
        comments=body.get("comments"),
        resolution=body.get("resolution"),
        client=g.get("client", "-"),
        key=key,
    )
    return _answer(outcome)


@bp.post("/requests/<ticket_id>/reopen")
@requires("tickets:write")
def reopen_ticket(ticket_id: str) -> Response:
    """Reopen the ticket (status Open); 200 with the full view. Takes no body."""
    _check_id(ticket_id)
    key = _idempotency_key()
    outcome = current_gateway().writes.reopen(ticket_id, client=g.get("client", "-"), key=key)
    return _answer(outcome)
