"""The portals in the OpenAPI document (issue 12): every ticket path again under ``/portals/{portal}``, and the
portals' token routes.

Works on the built document, so that a ticket route documented later is mirrored too: each ``/requests...``
and ``/meta...`` operation is copied with the ``portal`` path parameter, an ``InPortal`` operation id, and
its error responses made again with ``portal_not_found`` (404) and ``forbidden`` (403: the key may not use
that portal) added.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import errors as e
from .openapi_responses import ECHOED_ID, LIMIT_HEADERS, OPERATION_ERRORS, PORTAL_ERRORS, error_responses, json_content

#: The paths mirrored: the ticket routes (api/__init__.py registers their blueprints under /portals/<portal>).
MIRRORED = ("/requests", "/meta")
PREFIX = "/portals/{portal}"
PORTAL_PARAMETER: dict[str, Any] = {
    "name": "portal",
    "in": "path",
    "required": True,
    "description": "A portal of the gateway's portals file (`GET /readyz` lists them); the key must be allowed it",
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"},
    "example": "hr",
}
_ACCOUNT = {
    "type": "object",
    "properties": {
        "accounts_url": {"type": "string", "description": "The account's Zoho accounts server"},
        "shared_with": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The other portals on this account: they share its token and its mint budget",
        },
    },
}
_PORTAL_FACTS = {
    "portal": {"type": "string", "example": "hr"},
    "service": {"type": "string", "enum": ["sdp", "desk"]},
    "account": _ACCOUNT,
}
_VALIDATION = {
    "type": "object",
    "required": ["portal", "service", "result"],
    "properties": {
        **_PORTAL_FACTS,
        "result": {
            "type": "string",
            "enum": ["ok", "refused", "unreachable"],
            "description": "`refused`: Zoho answered no (credentials, scopes, org, throttling); "
            "`unreachable`: Zoho could not be asked or did not answer",
        },
        "call": {"type": "string", "example": "list priorities"},
        "seconds": {"type": "number"},
        "error": {"type": "object", "description": "The failure's `code` and `message`, when not ok"},
    },
}


def _errors_of(operation_id: str) -> tuple[type[e.GatewayError], ...]:
    return (*OPERATION_ERRORS.get(operation_id, (e.Unauthorized, e.RateLimited)), *PORTAL_ERRORS)


def _mirror(operation: dict[str, Any]) -> dict[str, Any]:
    mirrored = copy.deepcopy(operation)
    original = str(operation.get("operationId", ""))
    mirrored["operationId"] = f"{original}InPortal"
    mirrored["summary"] = f"{operation.get('summary', '')} (one portal)"
    mirrored["description"] = (
        f"{operation.get('description', '')}\n\nThe same on the portal `{{portal}}`; the unprefixed route serves "
        "the key's default portal (the first of its `portals`)."
    )
    mirrored["parameters"] = [PORTAL_PARAMETER, *operation.get("parameters", [])]
    responses = {status: answer for status, answer in operation["responses"].items() if int(status) < 400}
    responses.update(error_responses(_errors_of(original), rate_limited=True))
    mirrored["responses"] = responses
    return mirrored


def _token_operation(
    operation_id: str, summary: str, description: str, schema: dict[str, Any], like: dict[str, Any]
) -> dict[str, Any]:
    """An operator route on one portal, with the security and common parameters of ``like``."""
    responses = {
        "200": {
            "description": summary,
            "headers": {**ECHOED_ID, **LIMIT_HEADERS},
            "content": json_content(schema),
        }
    }
    responses.update(error_responses(OPERATION_ERRORS[operation_id], rate_limited=True))
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": ["operators"],
        "security": like["security"],
        "parameters": [PORTAL_PARAMETER, *like["parameters"]],
        "responses": responses,
    }


def add_portal_paths(document: dict[str, Any]) -> None:
    """Add the mirrored ticket paths and the two token routes to ``document`` (built by ``openapi.build_spec``)."""
    paths: dict[str, Any] = document["paths"]
    for path, operations in list(paths.items()):
        if path.startswith(MIRRORED):
            paths[f"{PREFIX}{path}"] = {
                method: _mirror(operation) if isinstance(operation, dict) and "responses" in operation else operation
                for method, operation in operations.items()
            }
    like = paths["/token/status"]["get"]
    token_status = _token_operation(
        "getPortalTokenStatus",
        "One portal's Zoho access token",
        "The token of the portal's Zoho account (shared by the portals on that account): held or not, expiry, "
        "recent mints, any back-off. Never the token. Needs `admin` and a key allowed on the portal.",
        {"allOf": [{"$ref": "#/components/schemas/TokenStatus"}, {"type": "object", "properties": _PORTAL_FACTS}]},
        like,
    )
    validate = _token_operation(
        "validatePortalToken",
        "Check one portal's credentials against Zoho",
        "One cheap authenticated call to the portal's Zoho (a short pick list, never cached), with the token the "
        "gateway holds (minted if none). Always 200: the check ran; `result` says `ok`, `refused` or "
        "`unreachable`. Needs `admin` and a key allowed on the portal.",
        _VALIDATION,
        like,
    )
    paths[f"{PREFIX}/token/status"] = {"get": token_status}
    paths[f"{PREFIX}/token/validate"] = {"post": validate}
