"""Production entry: ``gunicorn wsgi:app`` (settings in gunicorn.conf.py, read automatically)."""

from __future__ import annotations

import sys

from zoho_gateway import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    # One clear line naming the setting, not a traceback; gunicorn stops on a failed boot.
    print(f"zoho-gateway: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
