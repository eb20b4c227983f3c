"""Response bodies in Zoho's wire format: the SDP ``response_status`` envelope and OAuth token answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response

JSON_TYPE = "application/json;charset=UTF-8"

THROTTLE_BODY: dict[str, str] = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
}

SUCCESS_STATUS: dict[str, Any] = {"status_code": 2000, "status": "success"}


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Serialise ``body`` compactly, as Zoho does."""
    payload = json.dumps(body, separators=(",", ":"))
    response = Response(payload, status=status, content_type=JSON_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def failure_body(detail_code: int, message: str, field: str | None = None) -> dict[str, Any]:
    """SDP's failed envelope: generic 4000 outside, the specific code (and field) in ``messages``."""
    detail: dict[str, Any] = {"status_code": detail_code}
    if field is not None:
        detail["field"] = field
    detail["type"] = "failed"
    detail["message"] = message
    return {"response_status": {"status_code": 4000, "messages": [detail], "status": "failed"}}


def sdp_failure(
    http_status: int,
    detail_code: int,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A failed SDP answer."""
    return json_response(failure_body(detail_code, message, field), http_status, headers)


def sdp_entity(key: str, entity: Mapping[str, Any], http_status: int = 200) -> Response:
    """A successful single-entity answer: the entity beside an object ``response_status``."""
    return json_response({key: entity, "response_status": SUCCESS_STATUS}, http_status)


def sdp_list(key: str, items: list[Any], list_info: Mapping[str, Any]) -> Response:
    """A successful list answer: ``response_status`` as an array, ``list_info``, then the items."""
    return json_response({"response_status": [dict(SUCCESS_STATUS)], "list_info": dict(list_info), key: items})


def sdp_not_found() -> Response:
    """SDP's 4007 answer for an unknown id or path (HTTP 404), as on the vendor's error-code page."""
    body = {
        "response_status": {
            "messages": [{"status_code": 4007, "type": "failed", "message": "Invalid URL"}],
            "status": "failed",
        }
    }
    return json_response(body, 404)


def sdp_unauthorized() -> Response:
    """Our guess at SDP Cloud's answer to a missing, unknown or expired OAuth token (HTTP 401)."""
    return sdp_failure(401, 4001, "Invalid OAuth token")


def sdp_rate_limited(retry_after: str = "1") -> Response:
    """SDP's 4015 "API rate limit reached" (HTTP 429)."""
    return sdp_failure(429, 4015, "API Rate Limit reached", headers={"Retry-After": retry_after})


def token_error(error: str, http_status: int = 200) -> Response:
    """A Zoho Accounts error; Zoho usually sends these with HTTP 200."""
    return json_response({"error": error}, http_status)


def token_throttled(http_status: int) -> Response:
    """Zoho Accounts' "too many requests" answer."""
    return json_response(THROTTLE_BODY, http_status)


def token_success(access_token: str, expires_in: int, api_domain: str, refresh_token: str | None = None) -> Response:
    """A successful grant; only the authorization-code grant carries a refresh token."""
    body: dict[str, Any] = {"access_token": access_token}
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    body.update({"expires_in": expires_in, "api_domain": api_domain, "token_type": "Bearer"})
    return json_response(body)
