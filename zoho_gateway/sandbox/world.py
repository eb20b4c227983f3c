"""The simulator's state: settings, the accounts and the desk, faults, counters, and the optional state file."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app

from .accounts import Accounts
from .desk import Desk
from .faults import Fault
from .persistence import FORMAT_VERSION, StateFile, StateFileError
from .settings import SandboxSettings

EXTENSION_KEY = "zoho_sandbox"

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


class _QueuedFault:
    """A fault plus how many more calls it will hit (None: until cleared)."""

    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.times


class SandboxWorld:
    """Everything the simulator remembers. Every public method is atomic and safe to call from any thread.

    ``accounts`` holds tokens and codes (see ``Accounts``), ``desk`` the requests (see ``Desk``); this
    object holds the live settings, the fault queue and the counters, and persists the other two.

    With ``settings.state_file`` set, the requests (with their notes and attachments), the id sequences and
    the unexpired access tokens are loaded from that file at start and written back after every change,
    before the change is answered; so a restarted sandbox still knows the tickets and tokens that a
    gateway (or a README example) holds. Raises StateFileError when the file exists but is unreadable.
    Counters, faults, codes, revocations and throttle windows always start empty.
    """

    def __init__(self, settings: SandboxSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._defaults = settings
        self._settings = settings
        self.accounts = Accounts(lambda: self.settings, self._changed, clock)
        self.desk = Desk(self._changed)
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

    def _changed(self) -> None:
        """Called after every change to the accounts or the desk: on disk before this returns.

        A save that starts after a change was counted includes it, because every change is applied
        before it is counted; so skipping a save whose generation is already written loses nothing.
        """
        if self._state_file is None:
            return
        with self._lock:
            self._generation += 1
            generation = self._generation
        with self._save_lock:
            if self._saved_generation >= generation:
                return
            with self._lock:
                written = self._generation
            tokens = json.dumps(self.accounts.dump_tokens(), separators=(",", ":"))
            desk = self.desk.dump_json()
            text = f'{{"version":{FORMAT_VERSION},"saved_at":{time.time()},"access_tokens":{tokens},"desk":{desk}}}'
            self._state_file.save(text)
            self._saved_generation = written

    def _restore(self, document: Mapping[str, Any]) -> None:
        try:
            self.desk.load(document["desk"])
            tokens = {str(token): float(expiry) for token, expiry in dict(document["access_tokens"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileError(f"sandbox state file {self.state_file} is damaged ({exc!r})") from exc
        self.accounts.load_tokens(tokens)

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
            self._faults.clear()
            self._counters = dict.fromkeys(COUNTERS, 0)
            self._last_headers = {}
            self._accept_seen = {}
        self.accounts.clear()
        self.desk.clear()
        self._changed()

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
            snapshot: dict[str, Any] = dict(self._counters)
            snapshot["last_headers"] = dict(self._last_headers)
            snapshot["accept_seen"] = dict(self._accept_seen)
            snapshot["pending_faults"] = len(self._faults)
        snapshot["tickets"] = self.desk.ticket_count()
        snapshot["active_tokens"] = self.accounts.active_tokens()
        snapshot["refresh_token_revoked"] = self.accounts.refresh_token_revoked()
        return snapshot

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


def current_world() -> SandboxWorld:
    """The world of the sandbox app handling the current request."""
    world = current_app.extensions[EXTENSION_KEY]
    assert isinstance(world, SandboxWorld)
    return world
