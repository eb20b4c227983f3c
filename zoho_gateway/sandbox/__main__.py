"""Command line: ``python -m zoho_gateway.sandbox --port 9000`` serves the simulator until interrupted.

Tickets and access tokens are kept in ``var/sandbox-world.json`` (or $SANDBOX_STATE_FILE, or
``--state-file``) so that they survive a restart; ``--memory`` forgets everything on exit.
``--portal hr:sdp --portal support:desk`` (or $SANDBOX_PORTALS="hr:sdp,support:desk") serves extra
portals beside the default one, each at ``/t/<name>`` with its account at ``/a/<account>``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from werkzeug.serving import make_server

from .app import create_sandbox_app
from .persistence import StateFileError
from .settings import SandboxSettings, SettingsError
from .world import EXTENSION_KEY

DEFAULT_STATE_FILE = "var/sandbox-world.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zoho_gateway.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to bind; 0 picks a free one (default 9000)")
    parser.add_argument("--latency-ms", type=int, default=None, help="delay added to every SDP API call")
    parser.add_argument("--token-ttl", type=int, default=None, help="expires_in of minted access tokens (s)")
    parser.add_argument(
        "--state-file",
        default=None,
        help=f"where tickets and tokens survive restarts (default $SANDBOX_STATE_FILE or {DEFAULT_STATE_FILE})",
    )
    parser.add_argument("--memory", action="store_true", help="keep nothing across restarts (no state file)")
    parser.add_argument(
        "--portal",
        action="append",
        default=[],
        metavar="NAME:SERVICE[:ACCOUNT]",
        help="serve another portal (service sdp or desk; account defaults to NAME); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, print the URL and serve until Ctrl-C."""
    args = _parser().parse_args(argv)
    changes = {
        name: value
        for name, value in (("latency_ms", args.latency_ms), ("token_ttl", args.token_ttl))
        if value is not None
    }
    try:
        settings = SandboxSettings.from_env().updated(changes)
        if args.portal:
            settings = settings.with_portals((*settings.portals, *args.portal))
        if args.memory:
            settings = settings.with_state_file(None)
        elif args.state_file is not None or settings.state_file is None:
            settings = settings.with_state_file(args.state_file or DEFAULT_STATE_FILE)
        app = create_sandbox_app(settings)
    except (SettingsError, StateFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, app, threaded=True)
    url = f"http://{args.host}:{server.server_port}"
    print(f"Zoho sandbox listening on {url}", flush=True)
    print(
        f"  accounts: {url}/oauth/v2/token   SDP: {url}/api/v3/requests   control: {url}/_sandbox/stats",
        flush=True,
    )
    print(
        f"  client_id={settings.client_id} refresh_token={settings.refresh_token} (fake credentials)",
        flush=True,
    )
    print(
        f"  authorisation code: curl -s -X POST {url}/_sandbox/codes   state: {settings.state_file or 'memory only'}",
        flush=True,
    )
    world = app.extensions[EXTENSION_KEY]
    for portal in world.portals():
        if portal.name == "default":
            continue
        info = portal.describe(url)
        extra = f" orgId={info['org_id']} departmentId={info['department_id']}" if portal.service == "desk" else ""
        print(
            f"  portal {portal.name} ({portal.service}): {info['base_url']} (API {info['api_path']})"
            f"  accounts: {info['accounts_url']}  client_id={info['client_id']}"
            f" refresh_token={info['refresh_token']}{extra}",
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
