"""The simulator's in-memory state (credentials, tokens, tickets, faults, counters), guarded by one lock."""

from __future__ import annotations

import copy
import json
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .faults import Fault
from .persistence import FORMAT_VERSION, StateFile, StateFileError
from .settings import SandboxSettings

Entity = dict[str, Any]

EXTENSION_KEY = "zoho_sandbox"

# Ticket ids look like SDP's 18-digit ids and grow with every create; display ids are the human numbers.
_TICKET_ID_BASE = 123_640_000_000_250_000
_TICKET_ID_STEP = 1_013
_DISPLAY_ID_BASE = 100
# Notes and attachments get ids from their own sequence, in another range so they never equal a ticket id.
_CHILD_ID_BASE = 123_640_000_000_900_000
_CHILD_ID_STEP = 7

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
    "update_calls",
    "updates",
    "close_calls",
    "closes",
    "note_calls",
    "notes_added",
    "notes_calls",
    "resolution_calls",
    "upload_calls",
    "uploads",
    "attachments_calls",
    "meta_calls",
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

    With ``settings.state_file`` set, the tickets (with their notes and attachments), the id sequences and
    the unexpired access tokens are loaded from that file at start and written back after every change,
    before the change is answered; so a restarted sandbox still knows the tickets and tokens that a
    gateway (or a README example) holds. Raises StateFileError when the file exists but is unreadable.
    Counters, faults, codes and throttle windows always start empty.
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
        self._notes: dict[str, list[Entity]] = {}
        self._attachments: dict[str, list[Entity]] = {}
        self._sequence = 0
        self._child_sequence = 0
        self._faults: list[_QueuedFault] = []
        self._counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._last_headers: dict[str, str | None] = {}
        self._accept_seen: dict[str, int] = {}
        self._wake = threading.Event()
        # Persistence: every change bumps the generation; a save records the generation it wrote, so a
        # burst of changes is written once by whichever caller gets the file lock first.
        self._state_file = StateFile(settings.state_file) if settings.state_file else None
        self._save_lock = threading.Lock()
        self._generation = 0
        self._saved_generation = 0
        if self._state_file is not None:
            document = self._state_file.load()
            if document is not None:
                self._restore(document)

    # ---- persistence ------------------------------------------------------------------------------

    @property
    def state_file(self) -> str | None:
        """The path of the state file, or None for a world that lives in memory only."""
        return None if self._state_file is None else str(self._state_file.path)

    def _changed_locked(self) -> int:
        self._generation += 1
        return self._generation

    def _save(self, generation: int) -> None:
        """Write the world if no save since ``generation`` already did; called without the world lock."""
        if self._state_file is None:
            return
        with self._save_lock:
            if self._saved_generation >= generation:
                return
            with self._lock:
                text = json.dumps(self._snapshot_locked(), separators=(",", ":"))
                written = self._generation
            self._state_file.save(text)
            self._saved_generation = written

    def _snapshot_locked(self) -> dict[str, Any]:
        now, wall = self._clock(), time.time()
        # Expiries are kept on the monotonic clock, which restarts with the process: store wall-clock ones.
        tokens = {token: wall + (expiry - now) for token, expiry in self._access_tokens.items() if expiry > now}
        return {
            "version": FORMAT_VERSION,
            "saved_at": wall,
            "sequence": self._sequence,
            "child_sequence": self._child_sequence,
            "tickets": list(self._tickets.values()),
            "notes": self._notes,
            "attachments": self._attachments,
            "access_tokens": tokens,
        }

    def _restore(self, document: Mapping[str, Any]) -> None:
        try:
            tickets = {str(entity["id"]): dict(entity) for entity in document["tickets"]}
            sequence, child_sequence = int(document["sequence"]), int(document.get("child_sequence", 0))
            notes = {str(key): list(value) for key, value in dict(document.get("notes", {})).items()}
            attachments = {str(key): list(value) for key, value in dict(document.get("attachments", {})).items()}
            tokens = {str(token): float(expiry) for token, expiry in dict(document["access_tokens"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileError(f"sandbox state file {self.state_file} is damaged ({exc!r})") from exc
        now, wall = self._clock(), time.time()
        self._tickets = tickets
        self._sequence = sequence
        self._child_sequence = child_sequence
        self._notes = notes
        self._attachments = attachments
        self._access_tokens = {token: now + (expiry - wall) for token, expiry in tokens.items() if expiry > wall}

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

        With a state file, the file is emptied too (the reset is a change like any other).

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
            self._notes.clear()
            self._attachments.clear()
            self._sequence = 0
            self._child_sequence = 0
            self._faults.clear()
            self._counters = dict.fromkeys(COUNTERS, 0)
            self._last_headers = {}
            self._accept_seen = {}
            generation = self._changed_locked()
        self._save(generation)

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
            grant = TokenGrant(access_token=self._mint_locked(), expires_in=settings.token_ttl)
            generation = self._changed_locked()
        self._save(generation)
        return grant

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
            grant = TokenGrant(
                access_token=self._mint_locked(),
                refresh_token=self._settings.refresh_token,
                expires_in=self._settings.token_ttl,
            )
            generation = self._changed_locked()
        self._save(generation)
        return grant

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
            elif token is not None and token in self._access_tokens:
                del self._access_tokens[token]
            else:
                return False
            generation = self._changed_locked()
        self._save(generation)
        return True

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
            generation = self._changed_locked()
        self._save(generation)

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
                if queued.fault.probability < 1.0 and random.random() >= queued.fault.probability:
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
        """Allocate the next (id, display_id), store ``build(id, display_id)`` and return a copy.

        With a state file, the ticket is on disk when this returns.
        """
        with self._lock:
            self._sequence += 1
            ticket_id = str(_TICKET_ID_BASE + self._sequence * _TICKET_ID_STEP)
            entity = build(ticket_id, str(_DISPLAY_ID_BASE + self._sequence))
            self._tickets[ticket_id] = entity
            result = copy.deepcopy(entity)
            generation = self._changed_locked()
        self._save(generation)
        return result

    def get_ticket(self, ticket_id: str) -> Entity | None:
        """A copy of the stored ticket, or None."""
        with self._lock:
            entity = self._tickets.get(ticket_id)
            return None if entity is None else copy.deepcopy(entity)

    def update_ticket(self, ticket_id: str, change: Callable[[Entity], None]) -> Entity | None:
        """Apply ``change`` to the stored ticket in place; a copy of the result, or None if unknown.

        ``change`` may raise to refuse the change; it must then leave the entity untouched.
        """
        with self._lock:
            entity = self._tickets.get(ticket_id)
            if entity is None:
                return None
            change(entity)
            result = copy.deepcopy(entity)
            generation = self._changed_locked()
        self._save(generation)
        return result

    def list_tickets(self, start_index: int = 1, row_count: int | None = None) -> tuple[list[Entity], int]:
        """Copies of stored tickets in creation order (1-based ``start_index``), plus the total count."""
        with self._lock:
            every = list(self._tickets.values())
            end = None if row_count is None else start_index - 1 + row_count
            page = every[max(start_index - 1, 0) : end]
            return [copy.deepcopy(entity) for entity in page], len(every)

    def select_tickets(
        self, choose: Callable[[list[Entity]], list[Entity]], start_index: int, row_count: int
    ) -> tuple[list[Entity], int]:
        """Run ``choose`` (filter and order; it must not mutate) over the stored tickets in creation order.

        Returns copies of one page of its result (1-based ``start_index``) and the result's full length.
        Only the page is copied, so a search over thousands of tickets stays cheap.
        """
        with self._lock:
            chosen = choose(list(self._tickets.values()))
            page = chosen[max(start_index - 1, 0) : start_index - 1 + row_count]
            return [copy.deepcopy(entity) for entity in page], len(chosen)

    def ticket_count(self) -> int:
        """How many tickets are stored."""
        with self._lock:
            return len(self._tickets)

    # ---- notes and attachments --------------------------------------------------------------------

    def _child_id_locked(self) -> str:
        self._child_sequence += 1
        return str(_CHILD_ID_BASE + self._child_sequence * _CHILD_ID_STEP)

    def child_id(self) -> str:
        """A fresh id from the notes/attachments sequence."""
        with self._lock:
            return self._child_id_locked()

    def add_children(
        self,
        kind: str,
        ticket_id: str,
        builds: Sequence[Callable[[str], Entity]],
        touch: Callable[[Entity, list[Entity]], None],
    ) -> list[Entity] | None:
        """Add notes or attachments (``kind``: "notes" | "attachments") to a ticket, one per builder.

        Each item is ``build(new_id)``; ``touch(ticket, items)`` then updates the ticket itself (has_notes,
        last_updated_time, ...). Returns copies of the new items, or None when the ticket is unknown.
        """
        with self._lock:
            entity = self._tickets.get(ticket_id)
            if entity is None:
                return None
            store = self._notes if kind == "notes" else self._attachments
            items = [build(self._child_id_locked()) for build in builds]
            store.setdefault(ticket_id, []).extend(items)
            touch(entity, items)
            result = copy.deepcopy(items)
            generation = self._changed_locked()
        self._save(generation)
        return result

    def children(self, kind: str, ticket_id: str) -> list[Entity] | None:
        """Copies of a ticket's notes or attachments, oldest first; None when the ticket is unknown."""
        with self._lock:
            if ticket_id not in self._tickets:
                return None
            store = self._notes if kind == "notes" else self._attachments
            return copy.deepcopy(store.get(ticket_id, []))


def current_world() -> SandboxWorld:
    """The world of the sandbox app handling the current request."""
    world = current_app.extensions[EXTENSION_KEY]
    assert isinstance(world, SandboxWorld)
    return world
