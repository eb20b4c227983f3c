"""Operators' view of one portal's Zoho account: ``GET /portals/<portal>/token/status`` and
``POST /portals/<portal>/token/validate``.

Both need the ``admin`` scope when keys are configured and a key allowed on the portal (api/access.py picks
the portal and refuses others). The token is never shown."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, Response

from ..errors import GatewayError, StateUnavailable, ZohoRateLimited, ZohoTimeout, ZohoTokenUnavailable, ZohoUnavailable
from ..gateway import Gateway, current_gateway
from ..state import StoreUnavailable
from ..zoho.model import PickKind
from .scopes import requires

bp = Blueprint("portals", __name__)

#: The cheap authenticated call per service: one short pick list (ServiceDesk Plus has few priorities; Zoho
#: Desk's only list is its departments, a handful per organisation).
PROBE: dict[str, PickKind] = {"sdp": "priorities", "desk": "departments"}


def _json(body: Any, status: int = 200) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def describe(gateway: Gateway) -> dict[str, Any]:
    """Which portal, which service, which account (never a credential) and the portals sharing its token."""
    portal = gateway.portal
    return {
        "portal": portal.name,
        "service": portal.service,
        "account": {
            "accounts_url": portal.account.accounts_url,
            "shared_with": [name for name in gateway.portals.definition.sharing(portal.account) if name != portal.name],
        },
    }


@bp.get("/portals/<portal>/token/status")
@requires("admin")
def token_status() -> Response:
    """The portal's account's token: held or not, expiry, fingerprint, last mint, mints in the last hour,
    back-off. 503 ``state_unavailable`` when the shared state cannot be read."""
    gateway = current_gateway()
    try:
        status = gateway.tokens.status()
    except StoreUnavailable:
        raise StateUnavailable("The shared state cannot be read; token status unknown", retry_after=5) from None
    return _json({**describe(gateway), "backend": gateway.store.backend, **status})


def _verdict(gateway: Gateway, error: GatewayError) -> str:
    """ "refused" when Zoho answered no (credentials, scope, throttle, a refusal), "unreachable" when it could
    not be asked or did not answer."""
    if isinstance(error, ZohoTokenUnavailable):
        try:
            backoff = gateway.tokens.status()["backoff"]
        except StoreUnavailable:
            backoff = None
        # A token that could not be had: refused when Zoho's accounts server said so, else unreachable.
        return "unreachable" if backoff is None or backoff["kind"] == "unreachable" else "refused"
    if isinstance(error, ZohoTimeout):
        return "unreachable"
    if isinstance(error, ZohoUnavailable) and not isinstance(error, ZohoRateLimited):
        return "unreachable"
    return "refused"


@bp.post("/portals/<portal>/token/validate")
@requires("admin")
def token_validate() -> Response:
    """One cheap authenticated call to the portal's Zoho (a short pick list, never cached), with the token the
    gateway holds (minted if none): ``result`` is ``ok``, ``refused`` (Zoho answered no: credentials, scopes,
    org, throttling) or ``unreachable`` (no answer). Always 200: the check ran; its outcome is the body."""
    gateway = current_gateway()
    kind = PROBE[gateway.portal.service]
    started = time.perf_counter()
    error: GatewayError | None = None
    try:
        gateway.tickets.pick_values(kind)
    except GatewayError as exc:
        error = exc
    body: dict[str, Any] = {
        **describe(gateway),
        "result": "ok" if error is None else _verdict(gateway, error),
        "call": f"list {kind}",
        "seconds": round(time.perf_counter() - started, 3),
    }
    if error is not None:
        body["error"] = {"code": error.code, "message": error.message}
    return _json(body)
