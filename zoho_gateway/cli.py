"""``flask zoho ...``: operator commands for OAuth set-up and the shared token (Flask's click integration).

Errors from Zoho are shown as one clear line and a non-zero exit, never a traceback. Only
``exchange-code`` ever prints a secret (the new refresh token, once, because that is its job).
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
from .gateway import current_gateway
from .state import StoreUnavailable
from .zoho.oauth import TokenError

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
    click.echo(
        "Open it as a Zoho admin, approve, and pass the 'code' parameter of the redirect to "
        "'flask zoho exchange-code'. For a Self Client, generate the code in the API console instead.",
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
    try:
        exchanged = current_gateway().oauth.exchange_code(code, redirect_uri)
    except TokenError as exc:
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
    click.echo(json.dumps({"backend": gateway.store.backend, **status}, indent=2))


@token.command("refresh")
def token_refresh() -> None:
    """Mint a new token now (single-flight with every worker; honours a recorded back-off)."""
    gateway = current_gateway()
    try:
        gateway.tokens.force_refresh()
    except GatewayError as exc:
        raise click.ClickException(f"{exc.message} (retry after {exc.retry_after}s)") from None
    except StoreUnavailable as exc:
        raise click.ClickException(f"the shared state is unavailable: {exc}") from None
    status = gateway.tokens.status()
    click.echo(f"Token refreshed; expires at {status['expires_at']} (fingerprint {status['fingerprint']}).")


@token.command("forget")
def token_forget() -> None:
    """Drop the stored token and any back-off; the next request mints a new one."""
    try:
        current_gateway().tokens.forget()
    except StoreUnavailable as exc:
        raise click.ClickException(f"the shared state is unavailable: {exc}") from None
    click.echo("Stored token and back-off forgotten.")


def init_app(app: Flask) -> None:
    """Register the ``zoho`` command group."""
    app.cli.add_command(zoho)
