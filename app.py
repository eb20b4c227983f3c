"""Development entry: ``python app.py [--sandbox]`` serves the gateway with Flask's threaded server.

With ``--sandbox`` (or with no Zoho credentials in the environment) it also starts the built-in
Zoho simulator in this process and points the gateway at it, so nothing else is needed.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run zoho-gateway for development.")
    parser.add_argument("--sandbox", action="store_true", help="run against the built-in Zoho simulator")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8001")))
    args = parser.parse_args(argv)

    try:
        from dotenv import load_dotenv

        load_dotenv()  # a .env file in development; real environment variables win
    except ImportError:  # pragma: no cover - python-dotenv is a runtime dependency
        pass

    sandbox = args.sandbox or not os.environ.get("ZOHO_REFRESH_TOKEN")
    if sandbox:
        from zoho_gateway.sandbox import SandboxServer

        simulator = SandboxServer(port=args.sandbox_port)
        simulator.start()
        os.environ["ZOHO_ACCOUNTS_URL"] = simulator.url
        os.environ["ZOHO_API_BASE_URL"] = simulator.url
        os.environ.setdefault("GATEWAY_STATE_URL", "sqlite:///var/sandbox-state.db")
        print(f"Zoho sandbox (simulator) listening on {simulator.url}", file=sys.stderr)

    from zoho_gateway import ConfigError, create_app

    try:
        app = create_app(sandbox=sandbox)
    except ConfigError as exc:
        print(f"zoho-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    base = f"http://{args.host}:{args.port}"
    auth = "" if app.extensions["zoho_gateway"].config.anonymous else " -H 'Authorization: Bearer <your key>'"
    print(
        f"zoho-gateway on {base} ({'sandbox' if sandbox else 'Zoho'} mode). Try:\n"
        f"  curl -s -X POST {base}/requests{auth} -H 'Content-Type: application/json' \\\n"
        '    -d \'{"subject": "Printer on fire", "description": "3rd floor", '
        '"requester_email": "jane@example.com"}\'\n'
        f"  curl -s {base}/requests/<zoho_ticket_id>{auth}",
        file=sys.stderr,
    )
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
