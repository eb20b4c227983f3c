"""The control API of portals and accounts: ``/_sandbox/portals``, ``/_sandbox/accounts``, ``/_sandbox/a/<name>/``.

A portal is declared with ``POST /_sandbox/portals {"name", "service": "sdp"|"desk", "account", "org_id"}``
and then reached at ``/t/<name>/api/v3`` (SDP) or ``/t/<name>/api/v1`` (Desk), controlled at
``/_sandbox/t/<name>/...``; its account signs in at ``/a/<account>/oauth/v2/token``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, g, request

from . import wire
from .faults import FaultSpecError, parse_fault
from .settings import ACCOUNT_FIELDS, SettingsError
from .tenancy import DEFAULT, TOKEN_COUNTERS, Account, PortalSpec, TenantConflict, TenantError
from .world import current_world

bp = Blueprint("sandbox_tenants", __name__, url_prefix="/_sandbox")


def _problem(message: str, status: int = 400) -> Response:
    return wire.json_response({"error": message}, status)


def _payload() -> Mapping[str, Any] | None:
    if not request.get_data():
        return {}
    payload = request.get_json(silent=True)
    return payload if isinstance(payload, Mapping) else None


def _host() -> str:
    return request.host_url.rstrip("/")


@bp.get("/portals")
def portals() -> Response:
    """Every portal (the default first) with its URLs, credentials and, for Desk, org id and departments."""
    return wire.json_response({"portals": [portal.describe(_host()) for portal in current_world().portals()]})


@bp.post("/portals")
def add_portal() -> Response:
    """Declare a portal: 201 with its description; 200 if it exists as asked; 409 if it exists otherwise."""
    payload = _payload()
    if payload is None:
        return _problem("a portal must be a JSON object")
    try:
        spec = PortalSpec.of(payload)
        portal, created = current_world().add_portal(spec)
    except TenantError as exc:
        return _problem(str(exc), 409 if isinstance(exc, TenantConflict) else 400)
    return wire.json_response(portal.describe(_host()), 201 if created else 200)


@bp.get("/portals/<name>")
def portal(name: str) -> Response:
    found = current_world().portal(name)
    if found is None:
        return _problem(f"no portal {name!r}", 404)
    return wire.json_response(found.describe(_host()))


@bp.delete("/portals/<name>")
def remove_portal(name: str) -> Response:
    """Forget a portal and its tickets (not the default one; its account stays)."""
    if name == DEFAULT:
        return _problem("the default portal cannot be removed", 400)
    if not current_world().remove_portal(name):
        return _problem(f"no portal {name!r}", 404)
    return wire.json_response({"removed": name})


@bp.get("/accounts")
def accounts() -> Response:
    return wire.json_response({"accounts": [account.describe() for account in current_world().account_list()]})


@bp.post("/accounts")
def add_account() -> Response:
    """Declare an account: ``{"name", "client_id"?, "client_secret"?, "refresh_token"?, "token_ttl"?, ...}``."""
    payload = _payload()
    if payload is None:
        return _problem("an account must be a JSON object")
    overrides = {key: value for key, value in payload.items() if key != "name"}
    try:
        account, created = current_world().add_account(str(payload.get("name", "")), overrides)
    except TenantError as exc:
        return _problem(str(exc), 409 if isinstance(exc, TenantConflict) else 400)
    return wire.json_response(account.describe(), 201 if created else 200)


# ---- one account's control: /_sandbox/a/<account>/... ------------------------------------------------------


def _account() -> Account:
    found = current_world().account(g.get("sandbox_account") or DEFAULT)
    if found is None:
        abort(404)
    return found


@bp.get("/a/<account>/stats")
def account_stats() -> Response:
    """The account's token counters and gauges (shared by every portal on the account)."""
    account = _account()
    counters = account.counters.snapshot()
    body: dict[str, Any] = {name: counters[name] for name in TOKEN_COUNTERS}
    body.update(
        account=account.name,
        active_tokens=account.accounts.active_tokens(),
        refresh_token_revoked=account.accounts.refresh_token_revoked(),
        pending_faults=len(account.fault_queue),
    )
    return wire.json_response(body)


@bp.route("/a/<account>/settings", methods=["GET", "POST", "PATCH"])
def account_settings() -> Response:
    """The account's settings (``ACCOUNT_FIELDS`` only)."""
    account = _account()
    if request.method != "GET":
        payload = _payload()
        if payload is None:
            return _problem("settings must be a JSON object")
        foreign = sorted(set(payload) - set(ACCOUNT_FIELDS))
        if foreign:
            return _problem(f"not an account setting: {', '.join(foreign)}")
        try:
            account.cell.update(payload)
        except SettingsError as exc:
            return _problem(str(exc))
    return wire.json_response(account.settings.account_part())


@bp.route("/a/<account>/faults", methods=["GET", "POST", "DELETE"])
def account_faults() -> Response:
    """Token faults of the account (target ``token``)."""
    account = _account()
    if request.method == "DELETE":
        account.fault_queue.clear()
    elif request.method == "POST":
        try:
            fault = parse_fault(request.get_json(silent=True))
        except FaultSpecError as exc:
            return _problem(str(exc))
        if fault.target != "token":
            return _problem("an account's faults target 'token'; queue API faults on a portal")
        account.fault_queue.add(fault)
        return wire.json_response({"queued": fault.describe(), "faults": account.fault_queue.describe()}, 201)
    return wire.json_response({"faults": account.fault_queue.describe()})


@bp.post("/a/<account>/reset")
def account_reset() -> Response:
    """Forget the account's tokens, codes, revocation, throttle window, token faults and counters."""
    account = _account()
    current_world().reset_account(account)
    return wire.json_response({"status": "reset", "account": account.name})


@bp.post("/a/<account>/codes")
def account_code() -> Response:
    return wire.json_response({"code": _account().accounts.issue_code()}, 201)


@bp.post("/a/<account>/refresh_tokens/<action>")
def account_refresh_token(action: str) -> Response:
    """``revoke`` or ``restore`` the account's refresh token."""
    if action not in ("revoke", "restore"):
        return _problem("use revoke or restore", 404)
    _account().accounts.set_refresh_token_revoked(action == "revoke")
    return wire.json_response({"refresh_token_revoked": action == "revoke"})
