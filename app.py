"""Development entry: ``python app.py [--sandbox]`` (``./dev run``) serves the gateway with Flask's threaded server.

In sandbox mode (``--sandbox``, ``GATEWAY_SANDBOX=1``, or no Zoho credential in the environment or
``.env``) it also starts the built-in Zoho simulator in this process, on ``SANDBOX_PORT`` (8001), with its
tickets and tokens kept in ``var/sandbox-world.json`` across restarts. The deliverers of queued creates
start with the server, so that a backlog left by a previous run is delivered without waiting for a request.
``cli_app`` is the same decision for the ``./dev zoho ...`` commands, so that they reach this simulator and
this state.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from flask import Flask

from zoho_gateway import ConfigError, create_app
from zoho_gateway.config import Config, development_env
from zoho_gateway.gateway import Gateway

#: Where ``./dev run``'s simulator keeps its world unless SANDBOX_STATE_FILE says otherwise.
SANDBOX_WORLD_FILE = "var/sandbox-world.json"


def _fail(message: str, status: int = 2) -> SystemExit:
    print(f"zoho-gateway: configuration error: {message}", file=sys.stderr)
    return SystemExit(status)


def _start_simulator(config: Config, env: Mapping[str, str]) -> None:
    """Serve the simulator where sandbox mode points (``config.sandbox_url``), in a daemon thread."""
    # Imported here: the sandbox is a development tool, never loaded by the production entry.
    from zoho_gateway.sandbox import SandboxServer, SandboxSettings
    from zoho_gateway.sandbox.persistence import StateFileError
    from zoho_gateway.sandbox.settings import SettingsError

    try:
        settings = SandboxSettings.from_env(env)
        server = SandboxServer(
            settings, port=config.sandbox_port, state_file=settings.state_file or SANDBOX_WORLD_FILE
        ).start()
    except (SettingsError, StateFileError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"SANDBOX_PORT: cannot listen on {config.sandbox_url}: {exc.strerror}") from None
    print(f"Zoho sandbox (simulator) on {server.url}; world kept in {server.state_file}", file=sys.stderr)
    _declare_portals(config, server.url)


def _sandbox_part(url: str, sandbox_url: str, marker: str) -> str | None:
    """``name`` of ``<sandbox_url><marker><name>``, "default" for ``sandbox_url`` itself, None elsewhere."""
    if url == sandbox_url:
        return "default"
    prefix = f"{sandbox_url}{marker}"
    rest = url[len(prefix) :] if url.startswith(prefix) else ""
    return rest if rest and "/" not in rest else None


def _declare_portals(config: Config, sandbox_url: str) -> None:
    """Declare in the simulator the portals of GATEWAY_PORTALS_FILE that point at it (``/t/<name>`` for a
    portal, ``/a/<account>`` for its account; the simulator's own URL for its default ones), with the file's
    credentials and Desk org id, so that the example portals file runs as it is. Others are left alone."""
    import requests

    for portal in config.portals.portals if config.portals is not None else ():
        name = _sandbox_part(portal.api_base_url, sandbox_url, "/t/")
        account = _sandbox_part(portal.account.accounts_url, sandbox_url, "/a/")
        if name is None or account is None or name == "default":
            continue
        declarations = []
        credentials = {
            "client_id": portal.account.client_id,
            "client_secret": portal.account.client_secret,
            "refresh_token": portal.account.refresh_token,
        }
        if account != "default" and credentials["client_id"] != f"sandbox-{account}-client-id":
            declarations.append(("accounts", {"name": account, **credentials}))
        spec = {"name": name, "service": portal.service, "account": account}
        declarations.append(("portals", {**spec, **({"org_id": portal.org_id} if portal.org_id else {})}))
        for kind, body in declarations:
            answer = requests.post(f"{sandbox_url}/_sandbox/{kind}", json=body, timeout=5)
            if answer.status_code not in (200, 201):
                print(f"sandbox: portal {name!r} not declared: {answer.text.strip()[:200]}", file=sys.stderr)
                break
        else:
            print(f"  portal {name} ({portal.service}) on account {account}: {portal.api_base_url}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run zoho-gateway for development.")
    parser.add_argument("--sandbox", action="store_true", help="run against the built-in Zoho simulator")
    parser.add_argument("--host", help="interface to listen on (default: HOST, or 127.0.0.1)")
    parser.add_argument("--port", help="port to listen on (default: PORT, or 8000)")
    args = parser.parse_args(argv)

    from dotenv import find_dotenv, load_dotenv

    # The .env of the working directory (or above), as `flask` finds it for ./dev zoho; real variables win.
    load_dotenv(find_dotenv(usecwd=True))
    try:
        sandbox, env = development_env(os.environ, force_sandbox=args.sandbox)
        # Options win over the environment; Config validates them like any other setting.
        env.update({name: value for name, value in (("HOST", args.host), ("PORT", args.port)) if value})
        app = create_app(env, sandbox=sandbox)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    gateway: Gateway = app.extensions["zoho_gateway"]
    config = gateway.config
    if sandbox:
        _start_simulator(config, env)
    # At boot, as gunicorn's post_worker_init does in each worker (this server forks nothing): after the
    # simulator, which they may call at once.
    gateway.delivery.start()
    base = f"http://{config.host}:{config.port}"
    auth = "" if config.anonymous else " -H 'Authorization: Bearer <your key>'"
    print(
        f"zoho-gateway on {base} ({'sandbox' if sandbox else 'Zoho'} mode). Try:\n"
        f"  curl -s -X POST {base}/requests{auth} -H 'Content-Type: application/json' \\\n"
        '    -d \'{"subject": "Printer on fire", "description": "3rd floor", '
        '"requester_email": "jane@example.com"}\'\n'
        f"  curl -s {base}/requests/<zoho_ticket_id>{auth}",
        file=sys.stderr,
    )
    try:
        app.run(host=config.host, port=config.port, threaded=True, use_reloader=False)
    finally:
        # As gunicorn's worker_exit: let a deliverer finish the item in hand (briefly); an unfinished send
        # is searched for by the next holder.
        gateway.delivery.stop(wait=2.0)
    return 0


def cli_app() -> Flask:
    """The app of ``./dev zoho ...`` (``flask --app app:cli_app``): the gateway's CLI, decided like ``main``.

    Flask has read ``.env`` into the environment before calling this. A bad setting ends the command with
    one line and exit status 2.
    """
    try:
        sandbox, env = development_env(os.environ)
        return create_app(env, sandbox=sandbox, for_cli=True)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


if __name__ == "__main__":
    raise SystemExit(main())
