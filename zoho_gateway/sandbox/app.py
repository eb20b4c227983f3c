"""The sandbox's Flask app factory: one world per app, Zoho-shaped answers for every error."""

from __future__ import annotations

import os

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import control, lifecycle, meta, oauth, sdp, wire
from .settings import SandboxSettings
from .world import EXTENSION_KEY, SandboxWorld

SDP_PREFIXES = ("/api/v3", "/app/<portal>/api/v3")


def _is_sdp_path(path: str) -> bool:
    return path.startswith("/api/v3/") or (path.startswith("/app/") and "/api/v3/" in path)


def _render_http_error(exc: HTTPException) -> Response:
    """SDP paths answer in SDP's envelope (404 -> 4007, 405 -> 4021); everything else in plain JSON."""
    status = exc.code or 500
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
    """A plain WSGI app simulating Zoho Accounts plus SDP Cloud v3, with its own world.

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
    app.register_blueprint(oauth.bp)
    app.register_blueprint(control.bp)
    for index, prefix in enumerate(SDP_PREFIXES):
        for blueprint in (sdp.bp, lifecycle.bp, meta.bp):
            app.register_blueprint(blueprint, url_prefix=prefix, name=f"{blueprint.name}_{index}")
    app.register_error_handler(HTTPException, _render_http_error)
    return app
