"""The OpenAPI 3 document at ``/openapi.json``, and the ``/docs`` page rendered from it (``api/docs.py``).

Schemas come from the marshmallow schemas (apispec); each operation's error responses from the error tree
(``api/openapi_responses.py``). ``openapi_document.py`` assembles it from every area's paths
(``openapi_tickets``, ``openapi_lifecycle``, ``openapi_attachments``, ``openapi_operators``, ``openapi_portals``),
each declared with ``openapi_operations.py``. Here: the two routes that serve it, both built once at start-up.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, current_app

from .. import errors as e
from . import docs
from .openapi_document import build_spec

bp = Blueprint("docs", __name__)

_OPENAPI_KEY = "zoho_gateway_openapi"
_PAGE_KEY = "zoho_gateway_docs_page"


@bp.get("/openapi.json")
def openapi() -> Response:
    """Public. The OpenAPI 3.0 document (JSON)."""
    return Response(current_app.extensions[_OPENAPI_KEY], mimetype="application/json")


@bp.get("/docs")
def page() -> Response:
    """Public. The document as one readable HTML page (no script, no CDN)."""
    return Response(current_app.extensions[_PAGE_KEY], mimetype="text/html")


def init_app(app: Flask) -> None:
    """Serve the document and the docs page, both built and serialised once, at start-up."""
    document = build_spec()
    app.extensions[_OPENAPI_KEY] = json.dumps(document)
    app.extensions[_PAGE_KEY] = docs.render(document, e.catalogue())
    app.register_blueprint(bp)
