"""Cross-origin access for browser frontends (flask-cors), from ``GATEWAY_CORS_ORIGINS``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from flask import Flask
from flask_cors import CORS

#: What a browser page may send beyond the simple headers.
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    "X-API-Key",
    "If-None-Match",
    "If-Match",
    "Prefer",
]
#: What a page's script may read from our answers.
EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "Idempotent-Replayed",
    "ETag",
    "Location",
    "Preference-Applied",
    "Link",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


def init_app(app: Flask, origins: Sequence[str]) -> None:
    """Allow exactly ``origins`` (none: no cross-origin access at all). Never credentials: clients
    authenticate with a header, not a cookie, so no wildcard-with-credentials trap can open."""
    if not origins:
        return
    CORS(
        app,
        # flask-cors reads an origin holding regex characters (an IPv6 "[::1]") as an unanchored regex:
        # escape and anchor each one so that only the exact origin matches.
        origins=[re.compile(re.escape(origin) + r"\Z", re.IGNORECASE) for origin in origins],
        methods=["GET", "POST", "PATCH", "OPTIONS"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        supports_credentials=False,
        max_age=600,
    )
