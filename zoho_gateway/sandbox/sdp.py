"""The simulated ServiceDesk Plus Cloud API v3 ``requests`` endpoints (create, get, list)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request

from . import wire
from .entities import build_request, now_ms
from .faults import Fault, aborted, enact
from .validation import SdpInputError, decode_input_data, parse_new_request
from .world import SandboxWorld, current_world

# Registered twice by the app factory: at "/api/v3" and at "/app/<portal>/api/v3".
bp = Blueprint("sandbox_sdp", __name__)

ACCEPTED_SCHEMES = ("zoho-oauthtoken", "bearer")


def _auth_header() -> tuple[str | None, str | None]:
    """(scheme as sent, token) from the Authorization header. A header without a space has no scheme."""
    header = request.headers.get("Authorization")
    if header is None:
        return None, None
    scheme, _, token = header.strip().partition(" ")
    if not token:
        return "<no scheme>", None
    return scheme, token.strip()


def _begin(world: SandboxWorld, operation: str) -> tuple[Response | None, Fault | None]:
    """Everything common to SDP calls: count, add latency, inject a fault, check the token.

    Returns (early answer or None, the fault taken or None). Faults fire before the token check, as a
    proxy or load balancer in front of SDP would.
    """
    scheme, token = _auth_header()
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
    if not valid_scheme or token is None or not world.token_is_valid(token):
        world.bump("unauthorized")
        return wire.sdp_unauthorized(), fault
    return None, fault


def _input_data() -> str | None:
    """``input_data`` from the form body, else from the query string (both are seen in the wild)."""
    value = request.form.get("input_data")
    return value if value is not None else request.args.get("input_data")


@bp.post("/requests")
def create_request(portal: str | None = None) -> Response:
    """Add a request; answers ``create_http_status`` (201 by default) with the full stored entity."""
    world = current_world()
    answer, fault = _begin(world, "create")
    if answer is not None:
        return answer
    try:
        new = parse_new_request(decode_input_data(_input_data()))
    except SdpInputError as exc:
        return wire.sdp_failure(400, exc.status_code, exc.message, exc.field)

    created_ms = now_ms()
    entity = world.store_ticket(lambda ticket_id, display_id: build_request(ticket_id, display_id, new, created_ms))
    world.bump("creates")
    if fault is not None and fault.kind == "fail_after_create" and not world.pause(fault.seconds):
        return aborted()
    return wire.sdp_entity("request", entity, world.settings.create_http_status)


@bp.get("/requests/<ticket_id>")
def get_request(ticket_id: str, portal: str | None = None) -> Response:
    """One request by id; 4007 (HTTP 404) for an unknown or non-numeric id."""
    world = current_world()
    answer, _ = _begin(world, "get")
    if answer is not None:
        return answer
    entity = world.get_ticket(ticket_id) if ticket_id.isdigit() else None
    if entity is None:
        return wire.sdp_not_found()
    world.bump("gets")
    return wire.sdp_entity("request", entity)


def _list_info() -> Mapping[str, Any]:
    raw = request.args.get("input_data")
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise SdpInputError(4000, "input_data is not valid JSON") from exc
    info = decoded.get("list_info", {}) if isinstance(decoded, Mapping) else None
    if not isinstance(info, Mapping):
        raise SdpInputError(4000, "list_info must be a JSON object")
    return info


def _positive(info: Mapping[str, Any], key: str, default: int) -> int:
    value = info.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SdpInputError(4001, f"Value given for {key} is not valid", key)
    return value


@bp.get("/requests")
def list_requests(portal: str | None = None) -> Response:
    """A page of requests in creation order, with the list form of the envelope (an array)."""
    world = current_world()
    answer, _ = _begin(world, "list")
    if answer is not None:
        return answer
    try:
        info = _list_info()
        start_index = _positive(info, "start_index", 1)
        row_count = min(_positive(info, "row_count", 10), 100)
    except SdpInputError as exc:
        return wire.sdp_failure(400, exc.status_code, exc.message, exc.field)
    page, total = world.list_tickets(start_index, row_count)
    list_info: dict[str, Any] = {
        "has_more_rows": start_index - 1 + len(page) < total,
        "start_index": start_index,
        "row_count": len(page),
    }
    if info.get("get_total_count") in (True, "true"):
        list_info["total_count"] = total
    body = {"response_status": [dict(wire.SUCCESS_STATUS)], "list_info": list_info, "requests": page}
    return wire.json_response(body)
