"""Production entry: ``gunicorn wsgi:app`` (settings in gunicorn.conf.py, read automatically).

The ``flask`` command finds this file too: on a server, ``.venv/bin/flask zoho ...`` runs the operator
commands with the production settings (no sandbox unless GATEWAY_SANDBOX=1), and may run before a refresh
token exists. In a checkout, ``./dev zoho ...`` decides sandbox mode as ``./dev run`` does (app.py).
"""

from __future__ import annotations

import os
import sys

from zoho_gateway import ConfigError, create_app

# `flask ...` or `python -m flask ...`: the CLI, which may run before a refresh token exists.
_FLASK_CLI = os.path.basename(sys.argv[0]) == "flask" or sys.argv[0].endswith(os.path.join("flask", "__main__.py"))

try:
    app = create_app(for_cli=_FLASK_CLI)
except ConfigError as exc:
    # One clear line naming the setting, not a traceback. Exit code 4 is gunicorn's "app failed to load":
    # without preload_app its arbiter then stops instead of restarting workers for ever.
    print(f"zoho-gateway: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(4) from None
