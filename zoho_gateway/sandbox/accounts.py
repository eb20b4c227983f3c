"""The simulated Zoho Accounts' memory: access tokens, authorization codes, revocations and the mint throttle."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .settings import SandboxSettings


@dataclass(frozen=True)
class TokenGrant:
    """Outcome of a token request: ``error`` is a Zoho error string, or "throttled", or None on success."""

    error: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int = 0


def new_access_token() -> str:
    """A token in Zoho's ``1000.<32 hex>.<32 hex>`` shape (authorization codes share it)."""
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


class Accounts:
    """Tokens and codes of one simulated tenant. Every method is atomic and safe to call from any thread.

    Time comes from ``clock`` (monotonic seconds) so expiry and throttle windows ignore wall-clock jumps.
    ``settings`` is read on every call, so live setting changes apply at once. ``on_change`` is called
    (outside the lock) after every change worth persisting: a token minted, revoked or expired.
    """

    def __init__(
        self,
        settings: Callable[[], SandboxSettings],
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._on_change = on_change
        self._clock = clock
        self._access_tokens: dict[str, float] = {}
        self._revoked_refresh_tokens: set[str] = set()
        self._codes: set[str] = set()
        self._mint_attempts: dict[str, deque[float]] = {}

    def clear(self) -> None:
        """Forget every token, code, revocation and throttle window (does not call ``on_change``)."""
        with self._lock:
            self._access_tokens.clear()
            self._revoked_refresh_tokens.clear()
            self._codes.clear()
            self._mint_attempts.clear()

    # ---- grants ----------------------------------------------------------------------------------------

    def _mint_locked(self, ttl: int, cap: int = 0) -> str:
        """A new access token; with ``cap`` > 0, the oldest live ones are invalidated to stay within it,
        as Zoho silently drops the oldest of a refresh token's access tokens past its limit."""
        now = self._clock()
        for token in [t for t, expiry in self._access_tokens.items() if expiry <= now]:
            del self._access_tokens[token]
        if cap > 0:
            # Insertion order is minting order: the first keys are the oldest tokens.
            for token in list(self._access_tokens)[: max(len(self._access_tokens) - cap + 1, 0)]:
                del self._access_tokens[token]
        token = new_access_token()
        self._access_tokens[token] = now + ttl
        return token

    @staticmethod
    def _client_error(settings: SandboxSettings, client_id: str | None, client_secret: str | None) -> str | None:
        if client_id != settings.client_id:
            return "invalid_client"
        if client_secret != settings.client_secret:
            return "invalid_client_secret"
        return None

    def grant_refresh(self, client_id: str | None, client_secret: str | None, refresh_token: str | None) -> TokenGrant:
        """Zoho's refresh-token grant, including the N-per-window throttle per refresh token.

        Every attempt that passes the client check counts towards the throttle (like Zoho); throttled
        answers themselves do not, so the window frees ``token_window`` seconds after the oldest attempt.
        """
        settings = self._settings()
        with self._lock:
            client_error = self._client_error(settings, client_id, client_secret)
            if client_error is not None:
                return TokenGrant(error=client_error)
            now = self._clock()
            attempts = self._mint_attempts.setdefault(refresh_token or "", deque())
            while attempts and attempts[0] <= now - settings.token_window:
                attempts.popleft()
            if len(attempts) >= settings.token_limit:
                return TokenGrant(error="throttled")
            attempts.append(now)
            if refresh_token != settings.refresh_token or refresh_token in self._revoked_refresh_tokens:
                return TokenGrant(error="invalid_code")
            grant = TokenGrant(
                access_token=self._mint_locked(settings.token_ttl, settings.token_cap), expires_in=settings.token_ttl
            )
        self._on_change()
        return grant

    def grant_code(self, client_id: str | None, client_secret: str | None, code: str | None) -> TokenGrant:
        """Exchange a single-use authorization code for an access token plus the configured refresh token.

        A successful exchange also un-revokes the refresh token, as consenting again would in Zoho.
        """
        settings = self._settings()
        with self._lock:
            client_error = self._client_error(settings, client_id, client_secret)
            if client_error is not None:
                return TokenGrant(error=client_error)
            if code is None or code not in self._codes:
                return TokenGrant(error="invalid_code")
            self._codes.discard(code)
            self._revoked_refresh_tokens.discard(settings.refresh_token)
            grant = TokenGrant(
                access_token=self._mint_locked(settings.token_ttl, settings.token_cap),
                refresh_token=settings.refresh_token,
                expires_in=settings.token_ttl,
            )
        self._on_change()
        return grant

    def issue_code(self) -> str:
        """Create a single-use authorization code (never expires here; Zoho's live minutes)."""
        code = new_access_token()
        with self._lock:
            self._codes.add(code)
        return code

    # ---- revocation and validity ------------------------------------------------------------------------

    def revoke(self, token: str | None) -> bool:
        """Revoke a refresh token (and every access token) or one access token; False if unknown."""
        refresh_token = self._settings().refresh_token
        with self._lock:
            if token is not None and token == refresh_token:
                self._revoked_refresh_tokens.add(token)
                self._access_tokens.clear()
            elif token is not None and token in self._access_tokens:
                del self._access_tokens[token]
            else:
                return False
        self._on_change()
        return True

    def set_refresh_token_revoked(self, revoked: bool) -> None:
        """Revoke or restore the configured refresh token (access tokens already issued stay valid)."""
        refresh_token = self._settings().refresh_token
        with self._lock:
            if revoked:
                self._revoked_refresh_tokens.add(refresh_token)
            else:
                self._revoked_refresh_tokens.discard(refresh_token)

    def refresh_token_revoked(self) -> bool:
        """Whether the configured refresh token is revoked."""
        refresh_token = self._settings().refresh_token
        with self._lock:
            return refresh_token in self._revoked_refresh_tokens

    def token_is_valid(self, token: str) -> bool:
        """Whether ``token`` was issued here and has not expired or been invalidated."""
        with self._lock:
            expiry = self._access_tokens.get(token)
            return expiry is not None and expiry > self._clock()

    def active_tokens(self) -> int:
        """How many access tokens are unexpired."""
        with self._lock:
            now = self._clock()
            return sum(1 for expiry in self._access_tokens.values() if expiry > now)

    def expire_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        with self._lock:
            self._access_tokens.clear()
        self._on_change()

    # ---- persistence -------------------------------------------------------------------------------------

    def dump_tokens(self) -> dict[str, float]:
        """Unexpired access tokens with their expiry as wall-clock epoch seconds.

        Expiries are kept on the monotonic clock, which restarts with the process: a file needs wall time.
        """
        with self._lock:
            now, wall = self._clock(), time.time()
            return {token: wall + (expiry - now) for token, expiry in self._access_tokens.items() if expiry > now}

    def load_tokens(self, tokens: Mapping[str, float]) -> None:
        """Adopt ``dump_tokens`` output (expired ones are dropped)."""
        with self._lock:
            now, wall = self._clock(), time.time()
            self._access_tokens = {token: now + (expiry - wall) for token, expiry in tokens.items() if expiry > wall}
