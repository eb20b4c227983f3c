"""The simulated Zoho Accounts server: ``/oauth/v2/auth`` consent, ``/oauth/v2/token`` grants and revocation.

Registered twice: at the root for the default account and under ``/a/<account>`` for each other account.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, request

from . import wire
from .faults import enact
from .world import current_account

bp = Blueprint("sandbox_oauth", __name__)


def _param(name: str) -> str | None:
    """Zoho takes its parameters form-encoded or in the query string; the form wins if both are given."""
    value = request.form.get(name)
    return value if value is not None else request.args.get(name)


@bp.post("/oauth/v2/token")
def token() -> Response:
    """Mint an access token. Errors follow Zoho: an ``{"error": ...}`` body, usually with HTTP 200."""
    world = current_account()
    world.bump("token_calls")
    fault = world.take_fault("token")
    if fault is not None:
        answer = enact(fault, world, request.environ)
        if answer is not None:
            world.bump("token_failures")
            return answer

    settings = world.settings
    grant_type = _param("grant_type")
    client_id, client_secret = _param("client_id"), _param("client_secret")
    if grant_type == "refresh_token":
        grant = world.accounts.grant_refresh(client_id, client_secret, _param("refresh_token"))
    elif grant_type == "authorization_code":
        grant = world.accounts.grant_code(client_id, client_secret, _param("code"))
    else:
        world.bump("token_failures")
        return wire.token_error("unsupported_grant_type", 400)

    if grant.error == "throttled":
        world.bump("token_failures", "throttled")
        return wire.token_throttled(settings.throttle_http_status)
    if grant.error is not None or grant.access_token is None:
        world.bump("token_failures")
        return wire.token_error(grant.error or "general_error")
    world.bump("mints" if grant_type == "refresh_token" else "code_grants")
    return wire.token_success(grant.access_token, grant.expires_in, settings.api_domain, grant.refresh_token)


@bp.post("/oauth/v2/token/revoke")
def revoke() -> Response:
    """Revoke a refresh token (with its access tokens) or one access token; HTTP 400 if unknown, as Zoho."""
    if current_account().accounts.revoke(_param("token")):
        return wire.json_response({"status": "success"})
    return wire.json_response({"status": "failure", "error": "invalid_token"}, 400)


def _with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@bp.get("/oauth/v2/auth")
def consent() -> Response:
    """Zoho's consent page, auto-approved: a SANDBOX-ONLY shortcut (real Zoho asks an admin to click Accept).

    Checks ``response_type=code`` and ``client_id``, issues a single-use authorization code and redirects
    (302) to ``redirect_uri?code=...&location=us&accounts-server=...`` plus ``state`` when given, as Zoho
    does. Without ``redirect_uri`` (another shortcut) it answers the same parameters as JSON. Errors
    answer 400 ``{"error": ...}``: Zoho shows an error page there and never redirects.
    """
    world = current_account()
    if request.args.get("response_type") != "code":
        return wire.json_response({"error": "unsupported_response_type"}, 400)
    if request.args.get("client_id") != world.settings.client_id:
        return wire.json_response({"error": "invalid_client"}, 400)
    params = {
        "code": world.accounts.issue_code(),
        "location": "us",
        "accounts-server": request.host_url.rstrip("/") + ("" if world.name == "default" else f"/a/{world.name}"),
    }
    state = request.args.get("state")
    if state is not None:
        params["state"] = state
    redirect_uri = request.args.get("redirect_uri")
    if not redirect_uri:
        return wire.json_response(params)
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return wire.json_response({"error": "invalid_redirect_uri"}, 400)
    return Response(status=302, headers={"Location": _with_query(redirect_uri, params)})
