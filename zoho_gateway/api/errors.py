"""One renderer for every error: ``{"error", "details": {"code", "message", "request_id", ...}}``.

Handlers for our ``GatewayError`` tree, for Werkzeug's ``HTTPException`` (404, 405, 413, ...), and a
last resort that logs the traceback and answers a generic 500 in the same shape.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response
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

log = logging.getLogger("zoho_gateway.api")

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


def _gateway_error(error: GatewayError) -> Response:
    level = logging.WARNING if error.status < 500 else logging.ERROR
    log.log(level, "request failed: %s", error.code, extra={"status": error.status, "code": error.code})
    return render(error)


def _http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    mapped = _HTTP_MAP.get(status)
    if mapped is None:
        error = GatewayError(exc.description or "HTTP error")
        error.status, error.code, error.summary = status, f"http_{status}", exc.name
    else:
        error = mapped()
    log.warning("request failed: %s", error.code, extra={"status": status, "code": error.code})
    response = render(error)
    if status == 405 and exc.response is None:
        allow = getattr(exc, "valid_methods", None)
        if allow:
            response.headers["Allow"] = ", ".join(allow)
    return response


def _unexpected(exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return render(GatewayError("The gateway failed unexpectedly; the request id identifies it in our logs"))


def init_app(app: Flask) -> None:
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _unexpected)
