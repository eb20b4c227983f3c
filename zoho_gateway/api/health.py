"""Probes and inspection: ``/healthz`` (liveness), ``/readyz`` (can serve), ``/token/status``, ``/metrics``."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response

from ..errors import StateUnavailable
from ..gateway import current_gateway
from ..state import StoreUnavailable

bp = Blueprint("health", __name__)


def _json(body: Any, status: int = 200) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: answers without touching Zoho or the store."""
    return _json({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready: a token is held or can be minted, and the store answers. 503 (with the reason) otherwise."""
    ready, facts = current_gateway().tokens.readiness()
    body = {"status": "ready" if ready else "not_ready", **facts}
    response = _json(body, 200 if ready else 503)
    if not ready:
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/token/status")
def token_status() -> Response:
    """The token's state for operators: never the token itself."""
    gateway = current_gateway()
    try:
        status = gateway.tokens.status()
    except StoreUnavailable:
        raise StateUnavailable("The shared state cannot be read; token status unknown", retry_after=5) from None
    return _json({"backend": gateway.store.backend, **status})


@bp.get("/metrics")
def metrics() -> Response:
    gateway = current_gateway()
    return Response(gateway.metrics.render(), mimetype=None, content_type=gateway.metrics.content_type)
