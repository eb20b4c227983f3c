"""Zoho Desk v1 answers on the wire: ``{"errorCode", "message"}`` errors (ZOHO-API.md §2, §4.6) and lists.

The messages of UNAUTHORIZED, INVALID_OAUTH and OAUTH_ORG_MISMATCH are the ones recorded live
(ZOHO-API.md §4.6); the others are assumed, and so are the HTTP statuses not listed there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Response

from .wire import json_response

UNAUTHORIZED_MESSAGE = "You are not authenticated to perform this operation."
INVALID_OAUTH_MESSAGE = "The OAuth Token you provided is invalid."
ORG_MISMATCH_MESSAGE = "The OAuthToken is not valid for specified organization"
INVALID_DATA_MESSAGE = "An invalid value has been passed in the request."


def error(http_status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """A Desk error body: ``{"errorCode", "message"}``."""
    return json_response({"errorCode": code, "message": message}, http_status, headers)


def unauthorized() -> Response:
    """No (usable) Authorization header: 401 UNAUTHORIZED, as recorded live."""
    return error(401, "UNAUTHORIZED", UNAUTHORIZED_MESSAGE)


def invalid_oauth() -> Response:
    """An unknown, expired or revoked token: 401 INVALID_OAUTH, as recorded live."""
    return error(401, "INVALID_OAUTH", INVALID_OAUTH_MESSAGE)


def org_mismatch() -> Response:
    """A valid token with an orgId that is not this portal's: OAUTH_ORG_MISMATCH (HTTP 401 assumed)."""
    return error(401, "OAUTH_ORG_MISMATCH", ORG_MISMATCH_MESSAGE)


def org_id_missing() -> Response:
    """No orgId header (nor query parameter): assumed 400 INVALID_DATA naming orgId."""
    return invalid_data([field_error("orgId", "missing", "orgId is required in the request header")], status=400)


def not_found(message: str = "The requested resource does not exist.") -> Response:
    """An unknown id: 404 RESOURCE_NOT_FOUND (assumed name)."""
    return error(404, "RESOURCE_NOT_FOUND", message)


def url_not_found() -> Response:
    """An unknown path: 404 URL_NOT_FOUND."""
    return error(404, "URL_NOT_FOUND", "The URL you have requested is not found.")


def method_not_allowed() -> Response:
    return error(405, "METHOD_NOT_ALLOWED", "The HTTP method used is not allowed for this URL.")


def field_error(field: str, error_type: str, message: str = "") -> dict[str, str]:
    """One entry of ``errors``: ``fieldName`` a JSON pointer (``/subject``), ``errorType`` missing|invalid|duplicate."""
    pointer = field if field.startswith("/") or field == "orgId" else f"/{field}"
    return {"fieldName": pointer, "errorType": error_type, "errorMessage": message}


def invalid_data(
    errors: Sequence[Mapping[str, str]], status: int = 422, message: str = INVALID_DATA_MESSAGE
) -> Response:
    """422 INVALID_DATA with ``errors: [{fieldName, errorType, errorMessage}]``."""
    body = {"errorCode": "INVALID_DATA", "message": message, "errors": [dict(item) for item in errors]}
    return json_response(body, status)


def unprocessable(message: str) -> Response:
    """422 UNPROCESSABLE_ENTITY, as Desk answers a ``limit`` outside 1-100."""
    return error(422, "UNPROCESSABLE_ENTITY", message)


def rate_limited(retry_after: str = "1") -> Response:
    """429 TOO_MANY_REQUESTS (the errorCode name is assumed; ZOHO-API.md §2 did not capture it)."""
    return error(
        429,
        "TOO_MANY_REQUESTS",
        "You have made too many requests within a given amount of time. Please try again after some time.",
        {"Retry-After": retry_after},
    )


def server_error(status: int = 500) -> Response:
    """INTERNAL_SERVER_ERROR (with the given HTTP status, 500 by default)."""
    return error(status, "INTERNAL_SERVER_ERROR", "An internal server error occurred while performing this operation.")


def data(items: Sequence[Any], **extra: Any) -> Response:
    """A list answer: ``{"data": [...]}`` (search answers add ``count``)."""
    return json_response({"data": list(items), **extra})


def no_content() -> Response:
    """204 with an empty body: a search that matched nothing (assumed, as Desk lists 204 among its statuses)."""
    return Response(b"", status=204)
