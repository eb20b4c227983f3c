"""Around every request: the request id, client authentication by API key and its scopes, the access log
line, metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..apikeys import ANONYMOUS_SCOPES, find_key
from ..context import request_id
from ..errors import Forbidden, PortalNotFound, RateLimited, Unauthorized
from ..gateway import current_gateway, use_portal
from .scopes import required_scope

log = logging.getLogger("zoho_gateway.access")

#: An inbound X-Request-ID is kept only when it is this harmless; anything else is replaced, never reflected.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: Routes anyone may call: probes, the API description, the docs page.
PUBLIC_ENDPOINTS = frozenset({"health.index", "health.healthz", "health.readyz", "docs.openapi", "docs.page", "static"})
#: Routes the client rate limit does not count: the public ones, and the metrics scrape (a monitor must
#: not be locked out, nor eat a client's budget).
UNLIMITED_ENDPOINTS = PUBLIC_ENDPOINTS | {"health.metrics"}


def _begin() -> None:
    g.started = time.perf_counter()
    inbound = request.headers.get("X-Request-ID", "")
    rid = inbound if REQUEST_ID.fullmatch(inbound) else uuid.uuid4().hex
    g.request_id = rid
    g.request_id_token = request_id.set(rid)
    g.client = "-"


def _authenticate() -> None:
    """Set ``g.client`` to the key's name and ``g.scopes`` to its scopes; raise Unauthorized (401) before any
    upstream call."""
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return
    keys = current_gateway().config.api_keys
    if not keys:
        g.client = "anonymous"
        g.scopes = ANONYMOUS_SCOPES
        return
    presented = request.headers.get("X-API-Key", "")
    if not presented:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            presented = value.strip()
    if not presented:
        raise Unauthorized("Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    key = find_key(presented, keys)
    if key is None:
        raise Unauthorized("The API key is not valid")
    g.client = key.name
    g.scopes = key.scopes


def _authorize() -> None:
    """Raise Forbidden (403, naming the scope) when the key lacks the scope its route declares (api/scopes.py)."""
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return
    scope = required_scope(current_app.view_functions[request.endpoint])
    if scope not in g.scopes:
        raise Forbidden(f"This API key lacks the scope {scope!r} that this route needs", scope=scope)


def _take_portal(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Keep the ``<portal>`` of ``/portals/<portal>/...`` for ``_portal`` and out of the view's arguments, so that
    the ticket views serve the mirrored routes unchanged."""
    if values and "portal" in values:
        g.portal_name = values.pop("portal")


def _portal() -> None:
    """Serve the request from its portal's bundle (``current_gateway()``): the one in ``/portals/<name>/...``, or
    the key's default portal. 404 ``portal_not_found`` for an unknown name, 403 ``forbidden`` for a portal the
    key may not call; both after authentication, so that nobody learns portal names without a key."""
    name: str | None = g.get("portal_name")
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return
    gateway = current_gateway()
    portals = gateway.portals
    if name is None and len(portals.bundles) == 1:
        return  # one portal, asked for by no name: nothing to choose
    allowed = portals.definition.allowed(g.client if gateway.config.api_keys else None)
    chosen = gateway.bundle(name if name is not None else allowed[0])
    if chosen is None:
        raise PortalNotFound(f"No portal is named {str(name)[:40]!r}")
    if chosen.portal.name not in allowed:
        raise Forbidden(f"This API key may not use the portal {chosen.portal.name!r}", portal=chosen.portal.name)
    use_portal(chosen)
    annotate(portal=chosen.portal.name)


def _portal_location(response: Response) -> Response:
    """A mirrored route's ``Location`` (``/requests/...``, written by the views) under its ``/portals/<name>``."""
    name = g.get("portal_name")
    location = response.headers.get("Location")
    if name is not None and location is not None and location.startswith("/requests"):
        response.headers["Location"] = f"/portals/{name}{location}"
    return response


def _rate_limit() -> None:
    """Count the request against its client's limit; 429 with Retry-After past it. Probes are never limited."""
    limiter = current_gateway().limiter
    if limiter is None or request.method == "OPTIONS" or request.endpoint in UNLIMITED_ENDPOINTS:
        return
    if request.endpoint is None:
        return
    client = g.client if g.client not in ("-", "anonymous") else f"addr:{request.remote_addr}"
    verdict = limiter.hit(client)
    g.rate_limit = verdict
    if not verdict.allowed:
        current_gateway().metrics.rate_limited.inc()
        raise RateLimited(
            f"Rate limit of {verdict.limit} requests per {int(limiter.window)}s exceeded; retry later",
            retry_after=verdict.reset,
        )


def annotate(**fields: Any) -> None:
    """Add ``fields`` to this request's access line (the one line that says what the request did)."""
    g.setdefault("access_fields", {}).update(fields)


def _route() -> str:
    """The matched rule (the metrics label): for a 405 the rule of the path, "unmatched" when no rule has it."""
    if request.url_rule is not None:
        return request.url_rule.rule
    exc = request.routing_exception
    # Werkzeug matched the path but not the method, and so kept no rule: match again with a method it allows.
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        adapter = current_app.create_url_adapter(request)
        try:
            if adapter is not None:
                rule, _ = adapter.match(method=next(iter(exc.valid_methods)), return_rule=True)
                return rule.rule
        except HTTPException:
            pass
    return "unmatched"


def _finish(response: Response) -> Response:
    rid = g.get("request_id") or request_id.get()
    response.headers["X-Request-ID"] = rid
    if response.mimetype == "text/html" and not response.is_streamed and not response.get_data():
        # Flask's automatic OPTIONS answer is an empty body labelled text/html: an empty answer needs no type.
        del response.headers["Content-Type"]
    verdict = g.get("rate_limit")
    if verdict is not None:
        response.headers.update(verdict.headers())
    started = g.get("started")
    duration = time.perf_counter() - started if started is not None else 0.0
    current_gateway().metrics.request(_route(), request.method, response.status_code, duration)
    # One line per request; a failure of ours (5xx) is an ERROR line, with its cause (see api/errors.py).
    log.log(
        logging.ERROR if response.status_code >= 500 else logging.INFO,
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        exc_info=g.get("unexpected"),
        extra={
            "event": "access",
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 2),
            "client": g.get("client", "-"),
            "remote_addr": request.remote_addr,
            **g.get("access_fields", {}),
        },
    )
    return response


def _teardown(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.before_request(_authenticate)
    app.url_value_preprocessor(_take_portal)
    app.before_request(_portal)
    app.after_request(_portal_location)
    app.before_request(_authorize)
    app.before_request(_rate_limit)
    app.after_request(_finish)
    app.teardown_request(_teardown)
