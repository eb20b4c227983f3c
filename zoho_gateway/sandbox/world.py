"""The simulator's in-memory state (credentials, tokens, tickets, faults, counters), guarded by one lock."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .faults import Fault
from .settings import SandboxSettings

Entity = dict[str, Any]

EXTENSION_KEY = "zoho_sandbox"

# Ticket ids look like SDP's 18-digit ids and grow with every create; display ids are the human numbers.
_TICKET_ID_BASE = 123_640_000_000_250_000
_TICKET_ID_STEP = 1_013
_DISPLAY_ID_BASE = 100

COUNTERS = (
    "token_calls",
    "mints",
    "code_grants",
    "token_failures",
    "throttled",
    "api_calls",
    "unauthorized",
    "create_calls",
    "creates",
    "get_calls",
    "gets",
    "list_calls",
    "faults_fired",
)


@dataclass(frozen=True)
class TokenGrant:
    """Outcome of a token request: ``error`` is a Zoho error string, or "throttled", or None on success."""

    error: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int = 0


class _QueuedFault:
    """A fault plus how many more calls it will hit (None: until cleared)."""

    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.times


def new_access_token() -> str:
    """A token in Zoho's ``1000.<32 hex>.<32 hex>`` shape."""
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


class SandboxWorld:
    """Everything the simulator remembers. Every public method is atomic and safe to call from any thread.

    Time comes from ``clock`` (monotonic seconds) so expiry and throttle windows ignore wall-clock jumps.
    Entities handed out are deep copies: callers may mutate them freely.
    """

    def __init__(self, settings: SandboxSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._defaults = settings
        self._settings = settings
        self._access_tokens: dict[str, float] = {}
        self._revoked_refresh_tokens: set[str] = set()
        self._codes: set[str] = set()
        self._mint_attempts: dict[str, deque[float]] = {}
        self._tickets: dict[str, Entity] = {}
        self._sequence = 0
        self._faults: list[_QueuedFault] = []
        self._counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._last_headers: dict[str, str | None] = {}
        self._accept_seen: dict[str, int] = {}
        self._wake = threading.Event()

    # ---- settings and lifecycle -------------------------------------------------------------------

    @property
    def settings(self) -> SandboxSettings:
        """The settings in force right now."""
        with self._lock:
            return self._settings

    def update_settings(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """Apply a partial change; raises SettingsError (nothing applied) if any field is bad."""
        with self._lock:
            self._settings = self._settings.updated(changes)
            return self._settings

    def reset(self) -> None:
        """Forget everything and go back to the settings the world was created with.

        Requests sleeping in a delay fault are woken up and told to give up (see ``pause``), so a slow
        request from one test can never write into the next test's world.
        """
        with self._lock:
            self._wake.set()
            self._wake = threading.Event()
            self._settings = self._defaults
            self._access_tokens.clear()
            self._revoked_refresh_tokens.clear()
            self._codes.clear()
            self._mint_attempts.clear()
            self._tickets.clear()
            self._sequence = 0
            self._faults.clear()
            self._counters = dict.fromkeys(COUNTERS, 0)
            self._last_headers = {}
            self._accept_seen = {}

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False if a reset or shutdown cut the sleep short."""
        with self._lock:
            wake = self._wake
        if seconds <= 0:
            return not wake.is_set()
        return not wake.wait(seconds)

    def interrupt(self) -> None:
        """Wake every sleeping request for good (used when the server stops)."""
        with self._lock:
            self._wake.set()

    # ---- counters ---------------------------------------------------------------------------------

    def bump(self, *names: str) -> None:
        """Add one to each named counter."""
        with self._lock:
            for name in names:
                self._counters[name] = self._counters.get(name, 0) + 1

    def record_api_call(self, accept: str | None, auth_scheme: str | None, content_type: str | None) -> None:
        """Count an SDP call and remember its headers (the Authorization *scheme* only, never the token)."""
        with self._lock:
            self._counters["api_calls"] += 1
            self._last_headers = {
                "Accept": accept,
                "Authorization": auth_scheme,
                "Content-Type": content_type,
            }
            key = accept if accept is not None else "<none>"
            self._accept_seen[key] = self._accept_seen.get(key, 0) + 1

    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of counters and gauges."""
        with self._lock:
            now = self._clock()
            snapshot: dict[str, Any] = dict(self._counters)
            snapshot["last_headers"] = dict(self._last_headers)
            snapshot["accept_seen"] = dict(self._accept_seen)
            snapshot["tickets"] = len(self._tickets)
            snapshot["active_tokens"] = sum(1 for expiry in self._access_tokens.values() if expiry > now)
            snapshot["pending_faults"] = len(self._faults)
            snapshot["refresh_token_revoked"] = self._settings.refresh_token in self._revoked_refresh_tokens
            return snapshot

    # ---- OAuth ------------------------------------------------------------------------------------

    def _mint_locked(self) -> str:
        now = self._clock()
        for token in [t for t, expiry in self._access_tokens.items() if expiry <= now]:
            del self._access_tokens[token]
        token = new_access_token()
        self._access_tokens[token] = now + self._settings.token_ttl
        return token

    def _check_client_locked(self, client_id: str | None, client_secret: str | None) -> str | None:
        if client_id != self._settings.client_id:
            return "invalid_client"
        if client_secret != self._settings.client_secret:
            return "invalid_client_secret"
        return None

    def grant_refresh(self, client_id: str | None, client_secret: str | None, refresh_token: str | None) -> TokenGrant:
        """Zoho's refresh-token grant, including the N-per-window throttle per refresh token.

        Every attempt that passes the client check counts towards the throttle (like Zoho); throttled
        answers themselves do not, so the window frees ``token_window`` seconds after the oldest attempt.
        """
        with self._lock:
            settings = self._settings
            client_error = self._check_client_locked(client_id, client_secret)
            if client_error is not None:
                return TokenGrant(error=client_error)
            key = refresh_token or ""
            now = self._clock()
            attempts = self._mint_attempts.setdefault(key, deque())
            while attempts and attempts[0] <= now - settings.token_window:
                attempts.popleft()
            if len(attempts) >= settings.token_limit:
                return TokenGrant(error="throttled")
            attempts.append(now)
            if refresh_token != settings.refresh_token or refresh_token in self._revoked_refresh_tokens:
                return TokenGrant(error="invalid_code")
            return TokenGrant(access_token=self._mint_locked(), expires_in=settings.token_ttl)

    def grant_code(self, client_id: str | None, client_secret: str | None, code: str | None) -> TokenGrant:
        """Exchange a single-use authorization code for an access token plus the configured refresh token.

        A successful exchange also un-revokes the refresh token, as consenting again would in Zoho.
        """
        with self._lock:
            client_error = self._check_client_locked(client_id, client_secret)
            if client_error is not None:
                return TokenGrant(error=client_error)
            if code is None or code not in self._codes:
                return TokenGrant(error="invalid_code")
            self._codes.discard(code)
            self._revoked_refresh_tokens.discard(self._settings.refresh_token)
            return TokenGrant(
                access_token=self._mint_locked(),
                refresh_token=self._settings.refresh_token,
                expires_in=self._settings.token_ttl,
            )

    def issue_code(self) -> str:
        """Create a single-use authorization code."""
        code = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self._lock:
            self._codes.add(code)
        return code

    def revoke(self, token: str | None) -> bool:
        """Revoke a refresh token (and every access token) or one access token; False if unknown."""
        with self._lock:
            if token is not None and token == self._settings.refresh_token:
                self._revoked_refresh_tokens.add(token)
                self._access_tokens.clear()
                return True
            if token is not None and token in self._access_tokens:
                del self._access_tokens[token]
                return True
            return False

    def set_refresh_token_revoked(self, revoked: bool) -> None:
        """Revoke or restore the configured refresh token (access tokens already issued stay valid)."""
        with self._lock:
            if revoked:
                self._revoked_refresh_tokens.add(self._settings.refresh_token)
            else:
                self._revoked_refresh_tokens.discard(self._settings.refresh_token)

    def token_is_valid(self, token: str) -> bool:
        """Whether ``token`` was issued here and has not expired or been invalidated."""
        with self._lock:
            expiry = self._access_tokens.get(token)
            return expiry is not None and expiry > self._clock()

    def expire_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        with self._lock:
            self._access_tokens.clear()

    # ---- faults -----------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> int:
        """Queue a fault behind the existing ones; returns how many are queued now."""
        with self._lock:
            self._faults.append(_QueuedFault(fault))
            return len(self._faults)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The queued faults with what is left of each."""
        with self._lock:
            return [{**queued.fault.describe(), "remaining": queued.remaining} for queued in self._faults]

    def take_fault(self, operation: str) -> Fault | None:
        """The first queued fault that applies to ``operation``, using up one of its ``times``."""
        with self._lock:
            for index, queued in enumerate(self._faults):
                if not queued.fault.matches(operation):
                    continue
                if queued.remaining is not None:
                    queued.remaining -= 1
                    if queued.remaining <= 0:
                        del self._faults[index]
                self._counters["faults_fired"] += 1
                return queued.fault
            return None

    # ---- tickets ----------------------------------------------------------------------------------

    def store_ticket(self, build: Callable[[str, str], Entity]) -> Entity:
        """Allocate the next (id, display_id), store ``build(id, display_id)`` and return a copy."""
        with self._lock:
            self._sequence += 1
            ticket_id = str(_TICKET_ID_BASE + self._sequence * _TICKET_ID_STEP)
            entity = build(ticket_id, str(_DISPLAY_ID_BASE + self._sequence))
            self._tickets[ticket_id] = entity
            return copy.deepcopy(entity)

    def get_ticket(self, ticket_id: str) -> Entity | None:
        """A copy of the stored ticket, or None."""
        with self._lock:
            entity = self._tickets.get(ticket_id)
            return None if entity is None else copy.deepcopy(entity)

    def update_ticket(self, ticket_id: str, change: Callable[[Entity], None]) -> Entity | None:
        """Apply ``change`` to the stored ticket in place; a copy of the result, or None if unknown."""
        with self._lock:
            entity = self._tickets.get(ticket_id)
            if entity is None:
                return None
            change(entity)
            return copy.deepcopy(entity)

    def list_tickets(self, start_index: int = 1, row_count: int | None = None) -> tuple[list[Entity], int]:
        """Copies of stored tickets in creation order (1-based ``start_index``), plus the total count."""
        with self._lock:
            every = list(self._tickets.values())
            end = None if row_count is None else start_index - 1 + row_count
            page = every[max(start_index - 1, 0) : end]
            return [copy.deepcopy(entity) for entity in page], len(every)


def current_world() -> SandboxWorld:
    """The world of the sandbox app handling the current request."""
    world = current_app.extensions[EXTENSION_KEY]
    assert isinstance(world, SandboxWorld)
    return world
