"""The ``/_sandbox/`` control API: counters, reset, live settings, fault injection, codes and ticket edits.

Registered at ``/_sandbox`` for the default portal (and, for ``/reset``, the whole world) and at
``/_sandbox/t/<tenant>`` for any portal by name; portals and accounts themselves are managed in
``control_tenants``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, g, request

from . import wire, zdesk_entities
from .entities import (
    STATUSES,
    Entity,
    datetime_value,
    now_ms,
    set_resolution,
    set_status,
    set_technician,
    status_object,
    technician_object,
)
from .faults import FaultSpecError, parse_fault
from .settings import SettingsError
from .tenancy import Portal
from .world import current_portal, current_world

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

PATCHABLE = frozenset({"technician", "resolution", "status", "created_time"})


def _bad_request(message: str, status: int = 400) -> Response:
    return wire.json_response({"error": message}, status)


def _json_object() -> Mapping[str, Any] | None:
    """The JSON body as an object ({} when empty), or None when it is not a JSON object."""
    if not request.get_data():
        return {}
    payload = request.get_json(silent=True)
    return payload if isinstance(payload, Mapping) else None


def _by_name() -> bool:
    """Whether the URL names the portal (``/_sandbox/t/<name>/...``)."""
    return g.get("sandbox_tenant") is not None


@bp.get("/stats")
def stats() -> Response:
    """Counters and the headers of the latest API call (a portal's include its account's token counters)."""
    portal = current_portal()
    body = portal.stats()
    if _by_name():
        body.update(portal=portal.name, service=portal.service, account=portal.account.name)
    return wire.json_response(body)


@bp.post("/stats/peaks")
def reset_peaks() -> Response:
    """Start the in-flight peaks (``create_in_flight_peak``) again from the calls in flight now, so that a
    phase of a run can be measured on its own; answers the peaks as they were."""
    return wire.json_response({"peaks": current_portal().counters.reset_peaks()})


@bp.post("/reset")
def reset() -> Response:
    """``/_sandbox/reset``: forget everything, remove portals declared since the start, restore settings.

    ``/_sandbox/t/<name>/reset``: forget that portal's tickets, faults and counters and restore its
    settings; its account (tokens, throttle) is reset with ``/_sandbox/a/<account>/reset``.
    """
    world, portal = current_world(), current_portal()
    if _by_name():
        world.reset_portal(portal)
    else:
        world.reset()
    return wire.json_response({"status": "reset", "settings": portal.settings.as_dict()})


@bp.route("/settings", methods=["GET", "POST", "PATCH"])
def settings() -> Response:
    """Read, or change any subset of, the settings (account fields change the portal's account)."""
    world = current_portal()
    if request.method == "GET":
        return wire.json_response(world.settings.as_dict())
    payload = _json_object()
    if payload is None:
        return _bad_request("settings must be a JSON object")
    try:
        return wire.json_response(world.update_settings(payload).as_dict())
    except SettingsError as exc:
        return _bad_request(str(exc))


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> Response:
    """Queue a fault (POST), list the queue (GET) or clear it (DELETE).

    A portal's token faults go to its account's queue, since the token endpoint serves the account.
    """
    world = current_portal()
    if request.method == "DELETE":
        world.clear_faults()
        return wire.json_response({"faults": []})
    if request.method == "GET":
        return wire.json_response({"faults": world.faults()})
    try:
        fault = parse_fault(request.get_json(silent=True))
    except FaultSpecError as exc:
        return _bad_request(str(exc))
    world.add_fault(fault)
    return wire.json_response({"queued": fault.describe(), "faults": world.faults()}, 201)


@bp.post("/codes")
def codes() -> Response:
    """Create a single-use authorization code for the ``authorization_code`` grant."""
    return wire.json_response({"code": current_portal().accounts.issue_code()}, 201)


@bp.post("/refresh_tokens/revoke")
def revoke_refresh_token() -> Response:
    """Revoke the configured refresh token: the next refresh answers ``invalid_code``."""
    current_portal().accounts.set_refresh_token_revoked(True)
    return wire.json_response({"refresh_token_revoked": True})


@bp.post("/refresh_tokens/restore")
def restore_refresh_token() -> Response:
    """Undo a revocation of the configured refresh token."""
    current_portal().accounts.set_refresh_token_revoked(False)
    return wire.json_response({"refresh_token_revoked": False})


def _summary(portal: Portal, entity: Mapping[str, Any]) -> dict[str, Any]:
    if portal.service == "desk":
        return zdesk_entities.summary(entity)
    requester = entity.get("requester") or {}
    return {
        "id": entity["id"],
        "display_id": entity["display_id"],
        "subject": entity["subject"],
        "requester_email": requester.get("email_id"),
        "status": entity["status"]["name"],
    }


@bp.get("/tickets")
def tickets() -> Response:
    """Every stored ticket, summarised, in creation order."""
    portal = current_portal()
    every, total = portal.desk.list_tickets()
    return wire.json_response({"count": total, "tickets": [_summary(portal, entity) for entity in every]})


@bp.get("/tickets/count")
def ticket_count() -> Response:
    """``{"count": n}``: how many tickets exist, so a test can assert "exactly one ticket" cheaply."""
    return wire.json_response({"count": current_portal().desk.ticket_count()})


@bp.get("/state")
def state() -> Response:
    """Where the world is kept: ``{"state_file": path or null}`` (null: memory only, lost on restart)."""
    return wire.json_response({"state_file": current_world().state_file})


@bp.get("/tickets/<ticket_id>")
def ticket(ticket_id: str) -> Response:
    """One stored ticket, as the full entity (no auth, no counters, no faults)."""
    entity = current_portal().desk.get_ticket(ticket_id)
    if entity is None:
        return _bad_request(f"no ticket {ticket_id}", 404)
    return wire.json_response(entity)


@bp.get("/tickets/<ticket_id>/<kind>")
def ticket_children(ticket_id: str, kind: str) -> Response:
    """A ticket's ``notes`` (Desk: ``comments``) or ``attachments`` as stored (attachments keep ``_sha256``)."""
    portal = current_portal()
    kinds = ("comments", "attachments") if portal.service == "desk" else ("notes", "attachments")
    if kind not in kinds:
        return _bad_request(f"no such list {kind!r}; try {' or '.join(kinds)}", 404)
    items = portal.desk.children(kind, ticket_id)
    if items is None:
        return _bad_request(f"no ticket {ticket_id}", 404)
    return wire.json_response({kind: items})


def _patch(payload: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """Validate a ticket patch into a list of changes (applied later under the world's lock)."""
    changes: list[Any] = []
    unknown = sorted(set(payload) - PATCHABLE)
    if unknown:
        return [], f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(PATCHABLE))}"
    if "technician" in payload:
        tech = payload["technician"]
        if tech is None:
            changes.append(("technician", None))
        elif isinstance(tech, Mapping) and (tech.get("name") or tech.get("email_id") or tech.get("id")):
            id_value = tech.get("id")
            changes.append(
                (
                    "technician",
                    technician_object(
                        name=tech.get("name"),
                        email_id=tech.get("email_id"),
                        tech_id=None if id_value is None else str(id_value),
                    ),
                )
            )
        else:
            return [], "technician must be null or an object with name, email_id or id"
    if "resolution" in payload:
        resolution = payload["resolution"]
        if resolution is not None and not isinstance(resolution, str):
            return [], "resolution must be a string or null"
        changes.append(("resolution", resolution))
    if "status" in payload:
        status = payload["status"]
        if isinstance(status, Mapping):
            status = status.get("name")
        if status not in STATUSES:
            return [], f"status must be one of {', '.join(STATUSES)}"
        changes.append(("status", status_object(str(status))))
    if "created_time" in payload:
        # Back-dating lets tests put tickets inside or outside a reconciliation time window.
        created = payload["created_time"]
        if isinstance(created, str) and created.isdigit():
            created = int(created)
        if isinstance(created, bool) or not isinstance(created, int) or created < 0:
            return [], "created_time must be epoch milliseconds"
        changes.append(("created_time", created))
    return changes, None


@bp.patch("/tickets/<ticket_id>")
def patch_ticket(ticket_id: str) -> Response:
    """Change a stored ticket's technician, resolution or status, as an agent would in SDP.

    ``created_time`` (epoch ms) back-dates the ticket, which SDP itself never allows.
    """
    payload = _json_object()
    if payload is None:
        return _bad_request("the patch must be a JSON object")
    portal = current_portal()
    if portal.service == "desk":
        desk_apply, error = zdesk_entities.control_patch(payload)
        if error is not None:
            return _bad_request(error)
        patched = portal.desk.update_ticket(ticket_id, desk_apply)
        if patched is None:
            return _bad_request(f"no ticket {ticket_id}", 404)
        return wire.json_response(patched)
    changes, error = _patch(payload)
    if error is not None:
        return _bad_request(error)
    at_ms = now_ms()

    def apply(entity: Entity) -> None:
        for name, value in changes:
            if name == "technician":
                set_technician(entity, value, at_ms)
            elif name == "resolution":
                set_resolution(entity, value, at_ms)
            elif name == "created_time":
                entity["created_time"] = datetime_value(value)
            else:
                set_status(entity, value, at_ms)

    updated = portal.desk.update_ticket(ticket_id, apply)
    if updated is None:
        return _bad_request(f"no ticket {ticket_id}", 404)
    return wire.json_response(updated)
