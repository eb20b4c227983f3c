"""Probes and inspection: ``/`` (points to ``/docs``), ``/healthz`` (liveness), ``/readyz`` (can serve),
``/token/status``, ``/metrics``."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, Response

from ..errors import StateUnavailable
from ..gateway import current_gateway
from ..state import StoreUnavailable
from .scopes import requires

bp = Blueprint("health", __name__)


def _json(body: Any, status: int = 200) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index() -> Response:
    """Public. 302 to ``/docs``, with a small JSON body naming the docs and the OpenAPI document.

    A browser lands on the readable docs; ``curl`` (which does not follow redirects unless told) prints
    where to look.
    """
    body = {
        "message": "zoho-gateway: the API is described at /docs (readable) and /openapi.json (OpenAPI 3)",
        "docs": "/docs",
        "openapi": "/openapi.json",
    }
    response = _json(body, 302)
    # Relative, so that the redirect stays right behind a proxy that rewrites the host or scheme.
    response.headers["Location"] = "/docs"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: answers without touching Zoho or the store."""
    return _json({"status": "ok"})


def _queue_facts() -> dict[str, Any]:
    """The create queue for ``/readyz``: its backlog and what an accepted create survives. Never decides
    readiness: a backlog is what the queue is for, and the store's own health is judged with the token."""
    gateway = current_gateway()
    try:
        stats = gateway.queue.stats()
        durability = gateway.queue.durability()
    except StoreUnavailable:
        return {"backend": gateway.queue.backend, "error": "unavailable"}
    oldest = stats.oldest_pending_put_at
    return {
        "pending": stats.pending,
        "in_flight": stats.in_flight,
        "oldest_pending_seconds": round(max(0.0, time.time() - oldest), 1) if oldest is not None else None,
        "durability": durability,
        "warning": durability["warning"],
    }


@bp.get("/readyz")
def readyz() -> Response:
    """Ready: the shared state answers and at least one portal has a token or can mint one; 503 (with the
    reasons) otherwise.

    ``portals`` shows each portal's readiness (``status``, ``token``, any ``token_backoff``); the top level
    repeats the default portal's facts. One unready portal never makes the gateway unready: every instance
    sees the same Zoho, so taking instances out of rotation would not heal it and would cut off the healthy
    portals too. ``queue`` shows the create backlog and its durability (a warning when the store runs
    without the persistence queued creates need); a backlog never makes the gateway unready.
    """
    gateway = current_gateway()
    by_account: dict[tuple[str, str, str], tuple[bool, dict[str, Any]]] = {}
    portals: dict[str, Any] = {}
    for name, bundle in gateway.portals.bundles.items():
        identity = bundle.account.identity
        if identity not in by_account:  # portals on one account share its token: read it once
            by_account[identity] = bundle.tokens.readiness()
        ready, facts = by_account[identity]
        portals[name] = {"status": "ready" if ready else "not_ready", "service": bundle.portal.service, **facts}
    _, default_facts = by_account[gateway.portals.default.account.identity]
    ready = any(portal["status"] == "ready" for portal in portals.values())
    body = {"status": "ready" if ready else "not_ready", **default_facts, "portals": portals, "queue": _queue_facts()}
    response = _json(body, 200 if ready else 503)
    if not ready:
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/token/status")
@requires("admin")
def token_status() -> Response:
    """The token's state for operators: never the token itself. Needs the ``admin`` scope when keys are configured;
    503 ``state_unavailable`` when the shared state cannot be read."""
    gateway = current_gateway()
    try:
        status = gateway.tokens.status()
    except StoreUnavailable:
        raise StateUnavailable("The shared state cannot be read; token status unknown", retry_after=5) from None
    return _json({"backend": gateway.store.backend, **status})


@bp.get("/metrics")
@requires("admin")
def metrics() -> Response:
    """Prometheus text exposition, summed over every worker. Needs the ``admin`` scope when keys are configured;
    never rate-limited (a scrape must not be locked out, nor eat a client's budget)."""
    gateway = current_gateway()
    return Response(gateway.metrics.render(), mimetype=None, content_type=gateway.metrics.content_type)
