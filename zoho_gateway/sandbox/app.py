"""The sandbox's Flask app factory: one world per app, Zoho-shaped answers for every error.

URL scheme (``<tenant>``: a portal's name, ``<account>``: an account's name):

- default portal (SDP): ``/api/v3/...``, ``/app/<portal>/api/v3/...``; control ``/_sandbox/...``
- other portals: ``/t/<tenant>/api/v3/...`` (SDP) or ``/t/<tenant>/api/v1/...`` (Zoho Desk);
  control ``/_sandbox/t/<tenant>/...``; ``/t/default/...`` is the default portal again
- accounts: ``/oauth/v2/...`` (default) and ``/a/<account>/oauth/v2/...``; control ``/_sandbox/a/<account>/...``
- portals and accounts: ``/_sandbox/portals``, ``/_sandbox/accounts``
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import control, control_tenants, lifecycle, meta, oauth, sdp, wire, zdesk, zdesk_wire
from .settings import SandboxSettings
from .world import EXTENSION_KEY, SandboxWorld

SDP_PREFIXES = ("/api/v3", "/app/<portal>/api/v3", "/t/<tenant>/api/v3", "/t/<tenant>/app/<portal>/api/v3")
DESK_PREFIX = "/t/<tenant>/api/v1"


def _is_sdp_path(path: str) -> bool:
    return path.startswith(("/api/v3/", "/app/", "/t/")) and "/api/v3/" in path


def _is_desk_path(path: str) -> bool:
    return path.startswith("/t/") and "/api/v1/" in path


def _pull_names(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Take ``tenant`` and ``account`` out of the URL values into ``g``, so views need no such arguments."""
    if values:
        g.sandbox_tenant = values.pop("tenant", None)
        g.sandbox_account = values.pop("account", None)


def _render_http_error(exc: HTTPException) -> Response:
    """SDP paths answer in SDP's envelope (404 -> 4007, 405 -> 4021), Desk paths in Desk's
    (URL_NOT_FOUND, METHOD_NOT_ALLOWED); everything else in plain JSON."""
    status = exc.code or 500
    if _is_desk_path(request.path):
        if status == 404:
            return zdesk_wire.url_not_found()
        if status == 405:
            return zdesk_wire.method_not_allowed()
        code = "INVALID_DATA" if status < 500 else "INTERNAL_SERVER_ERROR"
        return zdesk_wire.error(status, code, exc.description or exc.name)
    if _is_sdp_path(request.path):
        if status == 404:
            return wire.sdp_not_found()
        if status == 405:
            return wire.sdp_failure(405, 4021, "Invalid HTTP method", request.method)
        return wire.sdp_failure(status, 4000, exc.description or exc.name)
    return wire.json_response({"error": exc.name, "message": exc.description}, status)


def create_sandbox_app(
    settings: SandboxSettings | None = None, *, state_file: str | os.PathLike[str] | None = None
) -> Flask:
    """A plain WSGI app simulating Zoho Accounts plus SDP Cloud v3 (and Zoho Desk v1 portals), with its own world.

    Without ``settings`` the defaults apply, overridden by SANDBOX_LATENCY_MS / SANDBOX_TOKEN_TTL /
    SANDBOX_STATE_FILE, so ``gunicorn 'zoho_gateway.sandbox:create_sandbox_app()'`` works. ``state_file``,
    when given, overrides the settings' file: the world is loaded from it and saved to it after every
    change (raises StateFileError when it exists but is unreadable). The world is in
    ``app.extensions["zoho_sandbox"]``.
    """
    chosen = settings if settings is not None else SandboxSettings.from_env()
    if state_file is not None:
        chosen = chosen.with_state_file(state_file)
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = SandboxWorld(chosen)
    app.url_value_preprocessor(_pull_names)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(oauth.bp, url_prefix="/a/<account>", name="sandbox_oauth_a")
    app.register_blueprint(control.bp)
    app.register_blueprint(control.bp, url_prefix="/_sandbox/t/<tenant>", name="sandbox_control_t")
    app.register_blueprint(control_tenants.bp)
    for index, prefix in enumerate(SDP_PREFIXES):
        for blueprint in (sdp.bp, lifecycle.bp, meta.bp):
            app.register_blueprint(blueprint, url_prefix=prefix, name=f"{blueprint.name}_{index}")
    app.register_blueprint(zdesk.bp, url_prefix=DESK_PREFIX)
    app.register_error_handler(HTTPException, _render_http_error)
    return app
