"""The OpenAPI paths outside the ticket contract: the operators' token status and metrics, the probes, the docs."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from .openapi_operations import _add, _answer
from .openapi_responses import LIMIT_HEADERS, RETRY_AFTER, STRING, json_content


def add_operator_paths(spec: APISpec) -> None:
    """Declare ``/token/status``, ``/metrics``, ``/healthz``, ``/readyz``, ``/``, ``/openapi.json``, ``/docs``."""
    _add(
        spec,
        "/token/status",
        "getTokenStatus",
        "The Zoho access token's state",
        "For operators: whether a token is held, when it expires, recent mints, any back-off. Never the token. "
        "Needs `admin`.",
        tags=["operators"],
        responses={"200": _answer("The token's state", json_content("TokenStatus"), **LIMIT_HEADERS)},
    )
    _add(
        spec,
        "/metrics",
        "getMetrics",
        "Prometheus metrics",
        "Summed over every worker. Never rate-limited. Needs `admin`.",
        tags=["operators"],
        responses={"200": _answer("Prometheus text format", {"text/plain": {"schema": STRING}})},
    )
    public: dict[str, Any] = {"security": []}
    _add(
        spec,
        "/healthz",
        "getHealth",
        "Liveness",
        "Answers without calling Zoho or the shared state.",
        tags=["probes"],
        responses={"200": _answer("OK", json_content("Health"))},
        **public,
    )
    _add(
        spec,
        "/readyz",
        "getReadiness",
        "Readiness",
        "Ready when a Zoho token is held or can be minted and the shared state answers. Never calls Zoho.",
        tags=["probes"],
        responses={
            "200": _answer("Ready", json_content("Readiness")),
            "503": _answer("Not ready; the body says why", json_content("Readiness"), **RETRY_AFTER),
        },
        **public,
    )
    to_docs = {"description": "`/docs`", "required": True, "schema": {"type": "string", "enum": ["/docs"]}}
    _add(
        spec,
        "/",
        "getIndex",
        "Where the docs are",
        "Redirects a browser to `/docs`; the body names the docs for clients that do not follow redirects.",
        tags=["docs"],
        responses={"302": _answer("See `/docs`", json_content("Index"), Location=to_docs)},
        **public,
    )
    _add(
        spec,
        "/openapi.json",
        "getOpenAPI",
        "This description",
        "OpenAPI 3.0, JSON.",
        tags=["docs"],
        responses={"200": _answer("OK", {"application/json": {"schema": {"type": "object"}}})},
        **public,
    )
    _add(
        spec,
        "/docs",
        "getDocs",
        "This description, readable",
        "One HTML page; no script, no CDN.",
        tags=["docs"],
        responses={"200": _answer("OK", {"text/html": {"schema": STRING}})},
        **public,
    )
