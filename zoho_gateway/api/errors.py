"""One renderer for every error: ``{"error", "details": {"code", "message", "request_id", ...}}``.

Handlers for our ``GatewayError`` tree, for Werkzeug's ``HTTPException`` (404, 405, 413, ...), and a
last resort that answers a generic 500 in the same shape. None of them writes a log line: each puts the
error's ``code`` (and the fields at fault, by name) on the request's one access line, which for a 5xx is
an ERROR line with the cause (the traceback, for the last resort).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, g
from werkzeug.exceptions import HTTPException

from ..context import request_id
from ..errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    UnsupportedMediaType,
)
from .access import annotate

#: Werkzeug's exceptions mapped onto ours, so that their answers carry our stable codes.
_HTTP_MAP: dict[int, type[GatewayError]] = {
    400: BadRequest,
    404: RouteNotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def render(error: GatewayError) -> Response:
    details = error.details()
    details["request_id"] = request_id.get()
    body = json.dumps({"error": error.summary, "details": details}, ensure_ascii=False)
    response = Response(body, status=error.status, mimetype="application/json")
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="zoho-gateway"'
    return response


#: At most this many field names, each cut to this length, go on the access line (unknown ones are the client's).
_LOGGED_FIELDS, _LOGGED_FIELD_LENGTH = 20, 64


def _note(error: GatewayError) -> None:
    """Put what the access line must say about ``error`` on it: names and codes only, never client values."""
    facts: dict[str, Any] = {"code": error.code}
    if error.fields:
        facts["fields"] = [name[:_LOGGED_FIELD_LENGTH] for name in sorted(error.fields)[:_LOGGED_FIELDS]]
    if error.status >= 500:
        facts["detail"] = error.message  # messages never carry secrets (errors.py)
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if cause is not None:
            facts["cause"] = f"{type(cause).__name__}: {cause}"
    annotate(**facts)


def _gateway_error(error: GatewayError) -> Response:
    _note(error)
    return render(error)


def _http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    mapped = _HTTP_MAP.get(status)
    if mapped is None:
        error = GatewayError(exc.description or "HTTP error")
        error.status, error.code, error.summary = status, f"http_{status}", exc.name
    else:
        error = mapped()
    _note(error)
    response = render(error)
    if status == 405 and exc.response is None:
        allow = getattr(exc, "valid_methods", None)
        if allow:
            response.headers["Allow"] = ", ".join(allow)
    return response


def _unexpected(exc: Exception) -> Response:
    g.unexpected = exc  # the access line carries its traceback
    error = GatewayError("The gateway failed unexpectedly; the request id identifies it in our logs")
    _note(error)
    return render(error)


def init_app(app: Flask) -> None:
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _unexpected)
