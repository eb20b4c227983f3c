"""The simulated ServiceDesk Plus Cloud API v3 ``requests`` endpoints: create, get, list/search."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from . import wire
from .entities import build_request, now_ms
from .faults import Fault, aborted, after_commit, enact
from .search import parse_list_info
from .tenancy import Portal
from .validation import SdpInputError, decode_input_data, parse_new_request
from .world import current_portal

# Registered by the app factory at "/api/v3" and "/app/<portal>/api/v3", and under "/t/<tenant>" for the
# other ServiceDesk Plus portals.
bp = Blueprint("sandbox_sdp", __name__)

ACCEPTED_SCHEMES = ("zoho-oauthtoken", "bearer")


def auth_header() -> tuple[str | None, str | None]:
    """(scheme as sent, token) from the Authorization header. A header without a space has no scheme."""
    header = request.headers.get("Authorization")
    if header is None:
        return None, None
    scheme, _, token = header.strip().partition(" ")
    if not token:
        return "<no scheme>", None
    return scheme, token.strip()


def begin(world: Portal, operation: str) -> tuple[Response | None, Fault | None]:
    """Everything common to SDP calls: count, add latency, inject a fault, check the token.

    Returns (early answer or None, the fault taken or None). Faults fire before the token check, as a
    proxy or load balancer in front of SDP would.
    """
    scheme, token = auth_header()
    world.record_api_call(request.headers.get("Accept"), scheme, request.headers.get("Content-Type"))
    world.bump(f"{operation}_calls")
    latency_ms = world.settings.latency_ms
    if latency_ms and not world.pause(latency_ms / 1000):
        return aborted(), None

    fault = world.take_fault(operation)
    if fault is not None:
        answer = enact(fault, world, request.environ)
        if answer is not None:
            return answer, fault

    valid_scheme = scheme is not None and scheme.lower() in ACCEPTED_SCHEMES
    if not valid_scheme or token is None or not world.accounts.token_is_valid(token):
        world.bump("unauthorized")
        return wire.sdp_unauthorized(), fault
    return None, fault


def input_data() -> str | None:
    """``input_data`` from the form body, else from the query string (both are seen in the wild)."""
    value = request.form.get("input_data")
    return value if value is not None else request.args.get("input_data")


@bp.post("/requests")
def create_request(portal: str | None = None) -> Response:
    """Add a request; answers ``create_http_status`` (201 by default) with the full stored entity. The call
    counts in ``create_in_flight`` (and its peak) from its arrival to its answer or lost answer."""
    world = current_portal("sdp")
    with world.counters.in_flight("create"):
        return _create_request(world)


def _create_request(world: Portal) -> Response:
    answer, fault = begin(world, "create")
    if answer is not None:
        return answer
    try:
        new = parse_new_request(decode_input_data(input_data()))
    except SdpInputError as exc:
        return wire.sdp_failure(400, exc.status_code, exc.message, exc.field)

    created_ms = now_ms()
    entity = world.desk.store_ticket(
        lambda ticket_id, display_id: build_request(ticket_id, display_id, new, created_ms)
    )
    world.bump("creates")
    lost = after_commit(fault, world, request.environ)
    if lost is not None:
        return lost
    return wire.sdp_entity("request", entity, world.settings.create_http_status)


@bp.get("/requests/<ticket_id>")
def get_request(ticket_id: str, portal: str | None = None) -> Response:
    """One request by id; 4007 (HTTP 404) for an unknown or non-numeric id."""
    world = current_portal("sdp")
    answer, _ = begin(world, "get")
    if answer is not None:
        return answer
    entity = world.desk.get_ticket(ticket_id) if ticket_id.isdigit() else None
    if entity is None:
        return wire.sdp_not_found()
    world.bump("gets")
    return wire.sdp_entity("request", entity)


@bp.get("/requests")
def list_requests(portal: str | None = None) -> Response:
    """A page of requests chosen by ``list_info`` (paging, sorting, ``search_criteria``; see ``search``).

    Answers the list form of the envelope (``response_status`` is an array) and echoes ``list_info`` with
    ``has_more_rows``, the ``start_index`` and ``row_count`` of the page, and ``total_count`` when asked.
    """
    world = current_portal("sdp")
    answer, _ = begin(world, "list")
    if answer is not None:
        return answer
    try:
        query = parse_list_info(request.args.get("input_data"))
    except SdpInputError as exc:
        return wire.sdp_failure(400, exc.status_code, exc.message, exc.field)
    page, total = world.desk.select_tickets(query.choose, query.start_index, query.row_count)
    list_info: dict[str, Any] = {
        "has_more_rows": query.start_index - 1 + len(page) < total,
        "start_index": query.start_index,
        "row_count": len(page),
        **query.echo,
    }
    if query.get_total_count:
        list_info["total_count"] = total
    return wire.sdp_list("requests", page, list_info)
