"""The OpenAPI 3 document, generated from the marshmallow schemas (apispec), and a no-CDN docs page."""

from __future__ import annotations

import json
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app
from marshmallow import fields

from .schemas import TICKET_ID, ErrorBody, NameRef, TicketCreated, TicketIn, TicketOut

bp = Blueprint("docs", __name__)

_ERRORS = {
    400: "Malformed body, bad header or ticket id (`invalid_json`, `invalid_header`, `invalid_ticket_id`)",
    401: "Missing or wrong API key (`unauthorized`)",
    404: "Unknown ticket or route (`ticket_not_found`, `not_found`)",
    405: "Method not allowed (`method_not_allowed`)",
    409: "The same Idempotency-Key is still being processed (`idempotency_key_in_flight`)",
    413: "Body over 1 MB (`payload_too_large`)",
    415: "Body is not JSON (`unsupported_media_type`)",
    422: "Invalid fields, a value Zoho refused, or an Idempotency-Key reused with another body "
    "(`validation_failed`, `zoho_rejected_value`, `idempotency_key_reused`)",
    429: "Client rate limit reached (`rate_limited`)",
    502: "Zoho answered something unusable or refused the gateway's credentials "
    "(`zoho_bad_response`, `zoho_auth_failed`)",
    503: "Zoho, its token endpoint or the gateway's state unavailable; see Retry-After "
    "(`zoho_unavailable`, `zoho_rate_limited`, `zoho_token_unavailable`, `zoho_token_throttled`, `state_unavailable`)",
    504: "Zoho did not answer in time (`zoho_timeout`; for creates `zoho_outcome_unknown`)",
}

_HEADER = {"schema": {"type": "string"}}
_COMMON_HEADERS = {
    "X-Request-ID": {"description": "The request id (yours if valid, else generated)", **_HEADER},
}
_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed per window", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "Requests left in this window", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "Seconds until the window resets", "schema": {"type": "integer"}},
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}


def _name_ref(_converter: Any, field: fields.Field[Any], **_: Any) -> dict[str, Any]:
    """apispec attribute function (bound to the converter): NameRef is a string or ``{"name": string}``."""
    if isinstance(field, NameRef):
        name = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
        return {
            "oneOf": [
                name,
                {"type": "object", "properties": {"name": name}, "required": ["name"], "additionalProperties": False},
            ],
            "nullable": True,
        }
    return {}


def _error(status: int, methods_with_limits: bool = True) -> dict[str, Any]:
    headers: dict[str, Any] = dict(_COMMON_HEADERS)
    if status in (429, 503, 504, 409):
        headers.update(_RETRY_AFTER)
    if status == 401:
        headers["WWW-Authenticate"] = {"description": "Bearer", **_HEADER}
    if methods_with_limits:
        headers.update(_LIMIT_HEADERS)
    return {
        "description": _ERRORS[status],
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build_spec() -> dict[str, Any]:
    """The OpenAPI document as a dict (built once per app)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="zoho-gateway",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "Create and read ServiceDesk Plus tickets through a gateway that holds the Zoho "
            "credentials. Every error has the shape {error, details: {code, message, request_id, ...}}."
        },
    )
    plugin.converter.add_attribute_function(_name_ref)  # type: ignore[union-attr]
    # additionalProperties false: unknown fields are rejected (marshmallow RAISE).
    spec.components.schema("TicketIn", schema=TicketIn)
    spec.components.schema("TicketCreated", schema=TicketCreated)
    spec.components.schema("Ticket", schema=TicketOut)
    spec.components.schema("Error", schema=ErrorBody)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    request_id_param = {
        "name": "X-Request-ID",
        "in": "header",
        "required": False,
        "description": "Your id for this request (1-128 of A-Z a-z 0-9 . _ -); echoed back",
        "schema": {"type": "string"},
    }
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    spec.path(
        "/requests",
        operations={
            "post": {
                "summary": "Create a ticket",
                "operationId": "createTicket",
                "security": security,
                "parameters": [
                    request_id_param,
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Makes retries safe: one ticket per key (24 h); repeats replay the first answer",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TicketIn"}}},
                },
                "responses": {
                    "201": {
                        "description": "Created (or replayed for a repeated Idempotency-Key)",
                        "headers": {
                            **_COMMON_HEADERS,
                            **_LIMIT_HEADERS,
                            "Idempotent-Replayed": {"description": "true when this is a replayed answer", **_HEADER},
                        },
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TicketCreated"}}},
                    },
                    **{str(s): _error(s) for s in (400, 401, 409, 413, 415, 422, 429, 502, 503, 504)},
                },
            }
        },
    )
    spec.path(
        "/requests/{ticket_id}",
        operations={
            "get": {
                "summary": "Read a ticket's status",
                "operationId": "getTicket",
                "security": security,
                "parameters": [
                    {
                        "name": "ticket_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": f"^{TICKET_ID.pattern}$"},
                    },
                    request_id_param,
                    {
                        "name": "If-None-Match",
                        "in": "header",
                        "required": False,
                        "description": "An ETag from an earlier answer: 304 when unchanged",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The ticket",
                        "headers": {
                            **_COMMON_HEADERS,
                            **_LIMIT_HEADERS,
                            "ETag": {"description": "Validator for If-None-Match", **_HEADER},
                            "Cache-Control": {"description": "How long the answer may be reused", **_HEADER},
                        },
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ticket"}}},
                    },
                    "304": {"description": "Not modified (If-None-Match matched)", "headers": dict(_COMMON_HEADERS)},
                    **{str(s): _error(s) for s in (400, 401, 404, 429, 502, 503, 504)},
                },
            }
        },
    )
    for path, summary in (("/healthz", "Liveness (no upstream call)"), ("/readyz", "Readiness")):
        responses: dict[str, Any] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
        }
        if path == "/readyz":
            responses["503"] = {
                "description": "Not ready (no usable token, or state unavailable)",
                "headers": _RETRY_AFTER,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        spec.path(path, operations={"get": {"summary": summary, "security": [], "responses": responses}})
    document = spec.to_dict()
    ticket_in = document["components"]["schemas"]["TicketIn"]
    ticket_in["additionalProperties"] = False
    ticket_in["properties"]["subject"]["pattern"] = r"\S"
    # Error details may carry more than the listed keys (Zoho's codes, its HTTP status): an open object.
    details = document["components"]["schemas"]["ErrorDetails"]
    details["properties"]["zoho_codes"] = {"type": "array", "items": {"type": "integer"}}
    details["properties"]["upstream_status"] = {"type": "integer"}
    details["additionalProperties"] = True
    return document


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(current_app.extensions["zoho_gateway_openapi"], mimetype="application/json")


def init_app(app: Flask) -> None:
    """Serve the document (built and serialised once, at start-up) and the docs page."""
    app.extensions["zoho_gateway_openapi"] = json.dumps(build_spec())
    app.register_blueprint(bp)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zoho-gateway API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}pre{padding:.8rem;overflow:auto}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}.m{font-weight:bold;text-transform:uppercase}</style>
</head><body><h1>zoho-gateway API</h1><p id="intro"></p>
<div id="ops">Loading <a href="openapi.json">openapi.json</a>...</div>
<script>
fetch("openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("intro").textContent = doc.info.description;
  const ops = document.getElementById("ops"); ops.textContent = "";
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    const h = document.createElement("h2");
    h.innerHTML = `<span class="m"></span> <code></code>`;
    h.querySelector(".m").textContent = method; h.querySelector("code").textContent = path;
    ops.append(h);
    const p = document.createElement("p"); p.textContent = op.summary || ""; ops.append(p);
    const ul = document.createElement("ul");
    for (const [status, r] of Object.entries(op.responses)) {
      const li = document.createElement("li"); li.append(`${status}: `);
      // Descriptions mark error codes with backticks: odd pieces are code.
      r.description.split("`").forEach((piece, i) => {
        if (i % 2) { const c = document.createElement("code"); c.textContent = piece; li.append(c); }
        else li.append(piece);
      });
      ul.append(li);
    }
    ops.append(ul);
  }
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(doc.components.schemas, null, 2); ops.append(pre);
});
</script></body></html>"""


@bp.get("/docs")
def page() -> Response:
    return Response(_PAGE, mimetype="text/html")
