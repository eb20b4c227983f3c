"""Answer bodies shared by the ticket views: JSON, the ETag of a view, a cached view with 304 rules."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, request

from ..policies.cache import Cached, TicketCache


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def etag_of(body: str) -> str:
    """The (strong) ETag of an answer body: the same bytes give the same tag in every process."""
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def view_etag(view: Any) -> str:
    """The ETag a read of ``view`` answers with (so that ``If-Match`` can be checked against a fresh read)."""
    return etag_of(json.dumps(view, ensure_ascii=False))


def cached_view(cached: Cached[Any], cache: TicketCache) -> Response:
    """A view (the default or the full one) read through the cache: 200 with its ETag, or 304 on a matching
    ``If-None-Match``; ``Cache-Control`` and ``Age`` say how long it may be reused."""
    body = json.dumps(cached.ticket, ensure_ascii=False)
    etag = etag_of(body)
    # If-None-Match compares weakly (RFC 9110 §13.1.2: W/"x" matches "x"), and "*" matches any ticket.
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(body, status=200, mimetype="application/json")
    response.set_etag(etag)
    # Say what the cache does: answers are reused for up to the TTL, and Age says how much of it is gone
    # (so a client cache keeps it only for the rest); with the cache off, always revalidate.
    response.headers["Cache-Control"] = f"private, max-age={int(cache.ttl)}" if cache.enabled else "no-cache"
    if cache.enabled:
        response.headers["Age"] = str(int(cached.age))
    return response
