"""Zoho Accounts OAuth: mint access tokens from the refresh token, exchange codes, build the consent URL.

Zoho often answers errors with HTTP 200 and ``{"error": ...}``, so every answer is judged by its body.
No token, secret or code ever reaches an exception message or a log line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .transport import NoAnswer, NotSent, Transport

#: Zoho's throttle says "Access Denied" with "too many requests"; the grant limits say "access_denied".
THROTTLE_ERRORS = frozenset({"access denied", "access_denied"})


class TokenError(Exception):
    """Base of token-endpoint failures. ``reason`` is Zoho's error name or a short description, never a secret."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TokenThrottled(TokenError):
    """Zoho refuses to mint more tokens for now (about 10 per 10 minutes per refresh token)."""


class TokenCredentialsRejected(TokenError):
    """Zoho refuses the client id, secret, refresh token or code: an operator must fix the configuration."""


class TokenEndpointUnavailable(TokenError):
    """The accounts server could not be reached or answered something unusable: may heal by itself."""


@dataclass(frozen=True)
class MintedToken:
    access_token: str = field(repr=False)
    expires_in: float
    api_domain: str | None = None


@dataclass(frozen=True)
class ExchangedCode:
    refresh_token: str = field(repr=False)
    access_token: str = field(repr=False)
    expires_in: float
    api_domain: str | None = None


def _parse(status: int, body: bytes) -> dict[str, Any]:
    """Judge a token-endpoint answer by its body; raises a TokenError subclass on any failure."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        if status == 429:
            raise TokenThrottled("HTTP 429 from the token endpoint")
        raise TokenEndpointUnavailable(f"token endpoint answered HTTP {status} without JSON")
    error = data.get("error")
    if error is not None:
        name = str(error)[:80]
        if name.lower() in THROTTLE_ERRORS or status == 429:
            raise TokenThrottled(name)
        if name == "general_error" or status >= 500:
            raise TokenEndpointUnavailable(name)
        raise TokenCredentialsRejected(name)
    if status >= 500:
        raise TokenEndpointUnavailable(f"token endpoint answered HTTP {status}")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        # An answer without a token is an error in disguise (seen with HTTP 200), whatever the status.
        raise TokenEndpointUnavailable(f"token endpoint answered HTTP {status} without an access_token")
    return data


def _expires_in(data: dict[str, Any]) -> float:
    raw = data.get("expires_in", 3600)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 3600.0
    # Older Zoho answers gave milliseconds in expires_in (with expires_in_sec beside it).
    if "expires_in_sec" in data:
        try:
            value = float(data["expires_in_sec"])
        except (TypeError, ValueError):
            pass
    return value if value > 0 else 3600.0


class ZohoOAuth:
    """Calls ``POST {accounts_url}/oauth/v2/token``. Thread-safe; holds the client secret, never shows it."""

    def __init__(self, transport: Transport, *, accounts_url: str, client_id: str, client_secret: str) -> None:
        self._transport = transport
        self.accounts_url = accounts_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret

    def _post(self, form: dict[str, str]) -> dict[str, Any]:
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        try:
            answer = self._transport.request("POST", f"{self.accounts_url}/oauth/v2/token", headers=headers, body=body)
        except NotSent as exc:
            raise TokenEndpointUnavailable("cannot connect to the accounts server") from exc
        except NoAnswer as exc:
            raise TokenEndpointUnavailable("the accounts server did not answer in time") from exc
        return _parse(answer.status, answer.body)

    def refresh(self, refresh_token: str) -> MintedToken:
        """Mint an access token. Raises TokenThrottled, TokenCredentialsRejected or TokenEndpointUnavailable."""
        data = self._post(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            }
        )
        return MintedToken(str(data["access_token"]), _expires_in(data), data.get("api_domain"))

    def exchange_code(self, code: str, redirect_uri: str | None = None) -> ExchangedCode:
        """Turn a self-client or consent code into a refresh token (single use; Zoho's codes live minutes)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if redirect_uri:
            form["redirect_uri"] = redirect_uri
        data = self._post(form)
        refresh = data.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise TokenCredentialsRejected(
                "Zoho returned no refresh_token (request the code with access_type=offline, prompt=consent)"
            )
        return ExchangedCode(refresh, str(data["access_token"]), _expires_in(data), data.get("api_domain"))

    def consent_url(self, scopes: str, redirect_uri: str) -> str:
        """The browser URL where a Zoho admin grants the scopes; offline access so that a refresh token comes back."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "scope": scopes,
                "redirect_uri": redirect_uri,
                "access_type": "offline",
                "prompt": "consent",
            }
        )
        return f"{self.accounts_url}/oauth/v2/auth?{query}"
