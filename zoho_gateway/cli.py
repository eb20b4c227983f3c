"""``flask zoho ...`` (``./dev zoho ...`` in a checkout): OAuth set-up and the shared token, for operators.

Errors are shown as one clear line and a non-zero exit, never a traceback; a Zoho that cannot be reached
is called unreachable, never "refused". Only ``exchange-code`` ever prints a secret (the new refresh
token, once, because that is its job). In sandbox mode every command talks to the simulator and the
state that the gateway of ``./dev run`` uses (see ``config.development_env``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from .errors import GatewayError
from .gateway import Gateway, current_gateway
from .state import StoreUnavailable
from .zoho.oauth import TokenCredentialsRejected, TokenEndpointUnavailable, TokenThrottled

zoho = AppGroup("zoho", help="Zoho OAuth set-up and the shared access token.")
token = AppGroup("token", help="Inspect, refresh or forget the shared access token.")
zoho.add_command(token)


@zoho.command("auth-url")
@click.option(
    "--redirect-uri",
    default="http://localhost:8000/",
    show_default=True,
    help="The redirect URI registered for your Zoho client.",
)
@click.option(
    "--scopes", default=None, help="Comma-separated scopes (default: ZOHO_SCOPES or SDPOnDemand.requests.ALL)."
)
def auth_url(redirect_uri: str, scopes: str | None) -> None:
    """Print the consent URL for the configured data centre (offline access, so a refresh token comes back)."""
    gateway = current_gateway()
    click.echo(gateway.oauth.consent_url(scopes or gateway.config.scopes, redirect_uri))
    if gateway.config.sandbox:
        click.echo(
            "Sandbox: the simulator approves at once and redirects with ?code=...; or get a code with "
            f"'curl -s -X POST {gateway.config.accounts_url}/_sandbox/codes'. Pass it to 'zoho exchange-code'.",
            err=True,
        )
        return
    click.echo(
        "Open it as a Zoho admin, approve, and pass the 'code' parameter of the redirect to "
        "'zoho exchange-code'. For a Self Client, generate the code in the API console instead.",
        err=True,
    )


def _write_env(path: Path, refresh_token: str) -> None:
    """Set ZOHO_REFRESH_TOKEN in ``path`` (created with mode 600; other lines kept)."""
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [line for line in lines if not re.match(r"\s*(export\s+)?ZOHO_REFRESH_TOKEN\s*=", line)]
    lines.append(f"ZOHO_REFRESH_TOKEN={refresh_token}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)  # an existing file keeps its mode on open(); tighten it explicitly


@zoho.command("exchange-code")
@click.argument("code")
@click.option("--redirect-uri", default=None, help="Only for codes from the consent URL: the same redirect URI.")
@click.option("--write-env", is_flag=True, help="Write ZOHO_REFRESH_TOKEN to .env (mode 600) instead of printing it.")
@click.option("--env-file", default=".env", show_default=True, type=click.Path(dir_okay=False, path_type=Path))
def exchange_code(code: str, redirect_uri: str | None, write_env: bool, env_file: Path) -> None:
    """Turn a Self Client or consent CODE into a refresh token (Zoho's codes are single-use and short-lived)."""
    gateway = current_gateway()
    if write_env and gateway.config.sandbox:
        # The simulator's refresh token in .env would make the next './dev run' try it on real Zoho.
        raise click.ClickException("sandbox mode: the simulator's refresh token is fake; it is not written to .env")
    accounts = gateway.config.accounts_url
    try:
        exchanged = gateway.oauth.exchange_code(code, redirect_uri)
    except TokenEndpointUnavailable as exc:
        raise click.ClickException(
            f"Zoho's accounts server at {accounts} is unreachable: {exc.reason}{_sandbox_hint(gateway)}"
        ) from None
    except TokenThrottled as exc:
        raise click.ClickException(f"Zoho is throttling token requests ({exc.reason}); try again in a minute") from None
    except TokenCredentialsRejected as exc:
        raise click.ClickException(
            f"Zoho refused the code: {exc.reason} (codes expire within minutes and work once; "
            "check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_DC)"
        ) from None
    if write_env:
        _write_env(env_file, exchanged.refresh_token)
        click.echo(f"ZOHO_REFRESH_TOKEN written to {env_file} (mode 600).")
    else:
        click.echo(exchanged.refresh_token)
        click.echo("This is the refresh token; it is shown once. Store it as ZOHO_REFRESH_TOKEN.", err=True)


@token.command("status")
def token_status() -> None:
    """Show the shared token's state as JSON (never the token)."""
    gateway = current_gateway()
    try:
        status = gateway.tokens.status()
    except StoreUnavailable as exc:
        raise click.ClickException(f"the shared state ({gateway.store.backend}) is unavailable: {exc}") from None
    mode = "sandbox" if gateway.config.sandbox else "zoho"
    click.echo(json.dumps({"mode": mode, "backend": gateway.store.backend, **status}, indent=2))


@token.command("refresh")
def token_refresh() -> None:
    """Mint a new token now (single-flight with every worker; honours a recorded back-off)."""
    gateway = current_gateway()
    try:
        before = gateway.tokens.status()["fingerprint"]
        gateway.tokens.force_refresh()
        status = gateway.tokens.status()
    except GatewayError as exc:
        hint = _sandbox_hint(gateway) if _backoff_kind(gateway) == "unreachable" else ""
        raise click.ClickException(f"{exc.message} (retry after {exc.retry_after}s){hint}") from None
    except StoreUnavailable as exc:
        raise click.ClickException(f"the shared state is unavailable: {exc}") from None
    backoff = status["backoff"]
    if backoff and status["fingerprint"] == before:
        # force_refresh honours a running back-off by keeping the valid token it holds: say so, not "refreshed".
        hint = _sandbox_hint(gateway) if backoff["kind"] == "unreachable" else ""
        raise click.ClickException(
            f"not refreshed: the token endpoint is in a back-off ({backoff['kind']}: {backoff['reason']}) until "
            f"{backoff['until']}; the held token stays in use ('zoho token forget' clears the back-off){hint}"
        )
    click.echo(f"Token refreshed; expires at {status['expires_at']} (fingerprint {status['fingerprint']}).")


@token.command("forget")
def token_forget() -> None:
    """Drop the stored token and any back-off; the next request mints a new one."""
    try:
        current_gateway().tokens.forget()
    except StoreUnavailable as exc:
        raise click.ClickException(f"the shared state is unavailable: {exc}") from None
    click.echo("Stored token and back-off forgotten.")


def _backoff_kind(gateway: Gateway) -> str | None:
    """The kind of the back-off in force ("unreachable", "throttled", "invalid_credentials"), or None."""
    try:
        backoff = gateway.tokens.status()["backoff"]
    except StoreUnavailable:
        return None
    return str(backoff["kind"]) if backoff else None


def _sandbox_hint(gateway: Gateway) -> str:
    """In sandbox mode, where the simulator is expected, since an unreachable one is usually not started."""
    if not gateway.config.sandbox:
        return ""
    return f" (sandbox mode: is './dev run' running? the simulator is expected at {gateway.config.accounts_url})"


def init_app(app: Flask) -> None:
    """Register the ``zoho`` command group."""
    app.cli.add_command(zoho)
