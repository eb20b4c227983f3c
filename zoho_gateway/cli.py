"""``flask zoho ...`` (``./dev zoho ...`` in a checkout): OAuth set-up, the shared token and the create queue.

``flask zoho --portal NAME ...`` runs a command for one portal of the portals file (its account's token,
its consent URL; ``queue list`` shows only its creates); without it, the default portal.

Errors are shown as one clear line and a non-zero exit, never a traceback; a Zoho that cannot be reached
is called unreachable, never "refused". Only ``exchange-code`` ever prints a secret (the new refresh
token, once, because that is its job). In sandbox mode every command talks to the simulator and the
state that the gateway of ``./dev run`` uses (see ``config.development_env``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from .errors import GatewayError
from .gateway import Gateway, current_gateway
from .policies.outbox import PENDING, STATES, Item
from .state import QueueItem, StoreUnavailable
from .zoho.oauth import TokenCredentialsRejected, TokenEndpointUnavailable, TokenThrottled

#: Where the ``--portal`` of ``flask zoho`` is kept for the subcommand (click's context meta, shared by the chain).
PORTAL_META = "zoho_gateway.portal"
#: OAuth scopes a consent asks for per service when neither --scopes nor ZOHO_SCOPES says (Desk's are assumed:
#: tickets, contacts to find or create the requester, and the basic read of departments).
SERVICE_SCOPES = {"sdp": "SDPOnDemand.requests.ALL", "desk": "Desk.tickets.ALL,Desk.contacts.ALL,Desk.basic.READ"}


@click.group("zoho", cls=AppGroup)
@click.option(
    "--portal",
    default=None,
    metavar="NAME",
    help="The portal of GATEWAY_PORTALS_FILE to act on (default: the default portal).",
)
@click.pass_context
def zoho(ctx: click.Context, portal: str | None) -> None:
    """Zoho OAuth set-up, the shared access token and the create queue."""
    ctx.meta[PORTAL_META] = portal


token = AppGroup("token", help="Inspect, refresh or forget the shared access token.")
queue = AppGroup("queue", help="The create queue (outbox): list, show, retry or drop creates.")
zoho.add_command(token)
zoho.add_command(queue)


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
    gateway = _gateway()
    click.echo(gateway.oauth.consent_url(scopes or _default_scopes(gateway), redirect_uri))
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
    gateway = _gateway()
    if write_env and gateway.portals.definition.source is not None:
        raise click.ClickException(
            "the portals file names each portal's refresh token: store the printed token where "
            f"[portals.{gateway.portal.name}] refresh_token points (run without --write-env)"
        )
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
    gateway = _gateway()
    try:
        status = gateway.tokens.status()
    except StoreUnavailable as exc:
        raise click.ClickException(f"the shared state ({gateway.store.backend}) is unavailable: {exc}") from None
    mode = "sandbox" if gateway.config.sandbox else "zoho"
    portal = {"portal": gateway.portal.name, "service": gateway.portal.service, "shared_with": _sharing(gateway)}
    click.echo(json.dumps({"mode": mode, **portal, "backend": gateway.store.backend, **status}, indent=2))


@token.command("refresh")
def token_refresh() -> None:
    """Mint a new token now (single-flight with every worker; honours a recorded back-off)."""
    gateway = _gateway()
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
        _gateway().tokens.forget()
    except StoreUnavailable as exc:
        raise click.ClickException(f"the shared state is unavailable: {exc}") from None
    click.echo("Stored token and back-off forgotten.")


def _gateway() -> Gateway:
    """The gateway of ``--portal`` (the default portal's without it); a ClickException for an unknown name."""
    gateway = current_gateway()
    name = click.get_current_context().meta.get(PORTAL_META)
    if name is None:
        return gateway
    chosen = gateway.bundle(name)
    if chosen is None:
        known = ", ".join(gateway.portals.bundles)
        raise click.ClickException(f"no portal named {name!r} (portals: {known})")
    return chosen


def _sharing(gateway: Gateway) -> list[str]:
    """The other portals on this portal's account (they share its token)."""
    return [name for name in gateway.portals.definition.sharing(gateway.account) if name != gateway.portal.name]


def _default_scopes(gateway: Gateway) -> str:
    """ZOHO_SCOPES for the ZOHO_* variables' portal; else the scopes of every service on the portal's account,
    so that one consent covers every portal that shares its refresh token."""
    if gateway.portals.definition.source is None:
        return gateway.config.scopes
    services = {
        gateway.portals.bundles[name].portal.service for name in gateway.portals.definition.sharing(gateway.account)
    }
    return ",".join(SERVICE_SCOPES[service] for service in sorted(services, reverse=True))


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


def _queue_unavailable(gateway: Gateway, exc: StoreUnavailable) -> click.ClickException:
    return click.ClickException(f"the create queue ({gateway.queue.backend}) is unavailable: {exc}")


@queue.command("list")
@click.option("--all", "everything", is_flag=True, help="Settled creates too (default: pending only).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Only creates in this state.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
def queue_list(everything: bool, states: tuple[str, ...], limit: int) -> None:
    """One line per create, oldest first: reference, state, attempts, age, ticket id, last error.

    ``--state needs_review`` (or failed, created) looks at settled creates too; ``zoho --portal NAME queue list``
    only that portal's.
    """
    gateway = _gateway()
    one_portal = click.get_current_context().meta.get(PORTAL_META) is not None
    pending_only = not everything and not (set(states) - PENDING)
    try:
        facts = gateway.queue.durability()
        rows: list[tuple[QueueItem, Item]] = []
        after: int | None = None
        while len(rows) < limit:
            page = gateway.outbox.items(pending_only=pending_only, limit=500, after=after)
            if not page:
                break
            after = page[-1][0].position
            rows += [
                (q, item)
                for q, item in page
                if (not states or item.state in states) and (not one_portal or gateway.outbox.holds(item))
            ]
        stats = gateway.queue.stats()
    except StoreUnavailable as exc:
        raise _queue_unavailable(gateway, exc) from None
    now = time.time()
    several, default = len(gateway.portals.bundles) > 1, gateway.portals.definition.default
    for queued, item in rows[:limit]:
        error = (item.last_error or {}).get("code", "-")
        age = f"{now - item.accepted_at:.0f}s"
        holder = queued.owner or "-"
        click.echo(
            f"{item.ref}  {item.state:<12} attempts={item.attempts} age={age} "
            f"ticket={item.zoho_ticket_id or '-'} last_error={error} client={item.client} holder={holder}"
            + (f" portal={item.portal or default}" if several else "")
        )
    click.echo(
        f"{stats.pending} pending ({stats.in_flight} in flight) on {facts['backend']}; "
        f"loss window: {facts['loss_window']}",
        err=True,
    )
    if facts["warning"]:
        click.echo(f"warning: {facts['warning']}", err=True)


@queue.command("show")
@click.argument("ref")
def queue_show(ref: str) -> None:
    """Everything known of one create (as JSON), the ticket's subject and requester included."""
    gateway = _gateway()
    try:
        item = gateway.outbox.get(ref)
    except StoreUnavailable as exc:
        raise _queue_unavailable(gateway, exc) from None
    if item is None:
        raise click.ClickException(f"no create with reference {ref!r}")
    click.echo(json.dumps(item.operator_view(), indent=2, ensure_ascii=False))


@queue.command("retry")
@click.argument("ref")
def queue_retry(ref: str) -> None:
    """Make a create due now: failed ones are sent again, ones in review are searched for again.

    After you have checked Zoho yourself: retrying a failed create whose last error says a send may have
    arrived can make a second ticket only if Zoho's search does not find the first.
    """
    gateway = _gateway()
    try:
        item = gateway.outbox.retry(ref)
    except StoreUnavailable as exc:
        raise _queue_unavailable(gateway, exc) from None
    if item is None:
        raise click.ClickException(f"no create with reference {ref!r}, or a deliverer holds it now; try again")
    click.echo(f"{ref}: {item.state}, due now")


@queue.command("drop")
@click.argument("ref")
def queue_drop(ref: str) -> None:
    """Stop delivering a pending create: it ends failed (``request_dropped``); its client sees that."""
    gateway = _gateway()
    try:
        item = gateway.outbox.drop(ref)
    except StoreUnavailable as exc:
        raise _queue_unavailable(gateway, exc) from None
    if item is None:
        raise click.ClickException(f"no create with reference {ref!r}, or a deliverer holds it now; try again")
    click.echo(f"{ref}: {item.state}")


@zoho.command("deliver")
@click.option(
    "--loops", default=None, type=click.IntRange(1, 64), help="Deliverer loops (default: GATEWAY_DELIVERERS or 2)."
)
def deliver(loops: int | None) -> None:
    """Deliver queued creates until stopped (SIGTERM or Ctrl-C), beside or instead of the gateway's own deliverers."""
    gateway = _gateway()
    deliverer = gateway.delivery.start(loops=loops or gateway.config.deliverers or 2)
    assert deliverer is not None  # loops >= 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"delivering as {deliverer.label}; stop with SIGTERM or Ctrl-C", err=True)
    while not stop.wait(1.0):
        pass
    gateway.delivery.stop(wait=5.0)
    click.echo("deliverer stopped", err=True)


def init_app(app: Flask) -> None:
    """Register the ``zoho`` command group."""
    app.cli.add_command(zoho)
