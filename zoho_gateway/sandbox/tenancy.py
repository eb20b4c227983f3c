"""Tenants of one sandbox: OAuth accounts (client, tokens, mint throttle) and portals (one helpdesk each).

A ``Portal`` is one simulated helpdesk, ServiceDesk Plus (``sdp``) or Zoho Desk (``desk``), with its own
tickets, id sequences, faults, counters and settings. It signs in through an ``Account``: one OAuth client
and refresh token, with its own access tokens, mint throttle, token faults and token counters. Two
portals on one account share its tokens and its mint budget, as Zoho counts them per refresh token.

The default portal and the default account share one settings cell, one counter set, one fault queue and
one sleeper, so ``/_sandbox/stats``, ``/_sandbox/settings`` and ``/_sandbox/faults`` behave exactly as they
did before there were several portals. Every extra portal and account has its own.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Response

from . import wire, zdesk_wire
from .accounts import Accounts
from .desk import Desk, IdScheme
from .faults import Fault
from .settings import ACCOUNT_FIELDS, SandboxSettings, SettingsError

DEFAULT = "default"
SERVICES = ("sdp", "desk")

TOKEN_COUNTERS = ("token_calls", "mints", "code_grants", "token_failures", "throttled")
API_COUNTERS = (
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
    "contacts_calls",
    "contact_create_calls",
    "contacts_created",
)
COUNTERS = (*TOKEN_COUNTERS, *API_COUNTERS, "faults_fired")
# Operations whose calls in flight are gauged: ``<operation>_in_flight`` now and ``<operation>_in_flight_peak``,
# the most at once since the start, a reset or ``POST /_sandbox/stats/peaks``.
GAUGED_OPERATIONS = ("create",)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

# Zoho Desk records: ids in another range than SDP's (17 digits, like the masked ids of ZOHO-API.md §4.6).
DESK_TICKET_IDS = IdScheme(
    base=97_709_000_000_300_000, step=1_013, display_base=100, child_base=97_709_000_000_900_000, child_step=7
)
DESK_CONTACT_IDS = IdScheme(
    base=97_709_000_000_500_000, step=1_009, display_base=0, child_base=97_709_000_000_600_000, child_step=7
)


def id_offset(name: str) -> int:
    """How far an extra portal's ids are shifted from the default's: a range of its own, derived from its
    name, so that an id from one portal is unknown (404) in every other, as with real separate portals."""
    return (zlib.crc32(f"ids:{name}".encode()) % 9_000 + 1_000) * 1_000_000_000


def shifted(ids: IdScheme, offset: int) -> IdScheme:
    return dataclasses.replace(ids, base=ids.base + offset, child_base=ids.child_base + offset)


class TenantError(ValueError):
    """A portal or account declaration the sandbox cannot accept (names the problem)."""


class TenantConflict(TenantError):
    """A declaration that clashes with an existing portal or account (a name, an org id, a refresh token)."""


def check_name(kind: str, name: object) -> str:
    """A portal or account name: 1-40 of ``a-z 0-9 _ -``, starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise TenantError(f"{kind} name must be 1-40 characters of a-z, 0-9, '_' and '-', got {name!r}")
    return name


@dataclass(frozen=True)
class PortalSpec:
    """What declares a portal: its name, its service (``sdp`` | ``desk``), its account and (Desk) org id."""

    name: str
    service: str = "sdp"
    account: str = ""
    org_id: str = ""

    @classmethod
    def parse(cls, text: str) -> PortalSpec:
        """``"name:service[:account]"``, as in ``SandboxSettings.portals``; raises TenantError."""
        parts = [part.strip() for part in text.split(":")]
        if len(parts) not in (2, 3):
            raise TenantError(f"portal {text!r} must be written name:service[:account]")
        return cls.of({"name": parts[0], "service": parts[1], "account": parts[2] if len(parts) == 3 else None})

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> PortalSpec:
        """From the control API's JSON (``name``, ``service``, ``account``, ``org_id``); raises TenantError."""
        unknown = sorted(set(payload) - {"name", "service", "account", "org_id"})
        if unknown:
            raise TenantError(f"unknown portal field(s): {', '.join(unknown)}")
        name = check_name("portal", payload.get("name"))
        if name == DEFAULT:
            raise TenantError("the default portal always exists; give the new portal another name")
        service = payload.get("service") or "sdp"
        if service not in SERVICES:
            raise TenantError(f"service must be one of {', '.join(SERVICES)}, got {service!r}")
        account = check_name("account", payload.get("account") or name)
        org_id = payload.get("org_id")
        if org_id is not None and (not isinstance(org_id, str) or not org_id.isdigit()):
            raise TenantError("org_id must be a string of digits")
        if service == "desk" and not org_id:
            org_id = derived_org_id(name)
        return cls(name=name, service=service, account=account, org_id=org_id or "")

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "service": self.service, "account": self.account, "org_id": self.org_id}


def derived_org_id(portal: str) -> str:
    """The Desk org id a portal gets when none is given: 9 digits, the same for the same name in every run."""
    return str(700_000_000 + zlib.crc32(f"org:{portal}".encode()) % 100_000_000)


def account_credentials(name: str) -> dict[str, str]:
    """The fake credentials of an extra account: ``sandbox-<name>-client-id`` and so on."""
    return {
        "client_id": f"sandbox-{name}-client-id",
        "client_secret": f"sandbox-{name}-client-secret",
        "refresh_token": f"sandbox-{name}-refresh-token",
    }


# ---- shared building blocks -------------------------------------------------------------------------


class SettingsCell:
    """One live ``SandboxSettings`` value with the value it started from."""

    def __init__(self, initial: SandboxSettings) -> None:
        self._lock = threading.Lock()
        self.initial = initial
        self._value = initial

    def get(self) -> SandboxSettings:
        with self._lock:
            return self._value

    def update(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """Apply a partial change (raises SettingsError, nothing applied, if any field is bad)."""
        with self._lock:
            self._value = self._value.updated(changes)
            return self._value

    def restore(self) -> None:
        with self._lock:
            self._value = self.initial


class Counters:
    """Named integer counters plus the headers of the latest API call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._last_headers: dict[str, str | None] = {}
        self._accept_seen: dict[str, int] = {}
        self._in_flight: dict[str, int] = dict.fromkeys(GAUGED_OPERATIONS, 0)
        self._peak: dict[str, int] = dict.fromkeys(GAUGED_OPERATIONS, 0)

    def clear(self) -> None:
        """Zero the counters. Calls in flight are a fact, not a count: they stay, and the peaks start from them."""
        with self._lock:
            self._values = dict.fromkeys(COUNTERS, 0)
            self._last_headers = {}
            self._accept_seen = {}
            self._peak = dict(self._in_flight)

    @contextmanager
    def in_flight(self, operation: str) -> Iterator[None]:
        """Count a call of ``operation`` as in flight for the ``with`` block (its whole handling: latency,
        faults, the commit, a hang after the commit), raising the peak when it is the most at once."""
        with self._lock:
            now = self._in_flight.get(operation, 0) + 1
            self._in_flight[operation] = now
            self._peak[operation] = max(self._peak.get(operation, 0), now)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[operation] -= 1

    def reset_peaks(self) -> dict[str, int]:
        """Start every peak again from the calls in flight now; returns the peaks as they were."""
        with self._lock:
            before = dict(self._peak)
            self._peak = dict(self._in_flight)
            return before

    def bump(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._values[name] = self._values.get(name, 0) + 1

    def record_call(self, headers: Mapping[str, str | None]) -> None:
        """Count an API call and remember its headers (``Authorization``: the scheme only, never the token)."""
        with self._lock:
            self._values["api_calls"] += 1
            self._last_headers = dict(headers)
            accept = headers.get("Accept")
            key = accept if accept is not None else "<none>"
            self._accept_seen[key] = self._accept_seen.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            snapshot: dict[str, Any] = dict(self._values)
            snapshot["last_headers"] = dict(self._last_headers)
            snapshot["accept_seen"] = dict(self._accept_seen)
            for operation, count in self._in_flight.items():
                snapshot[f"{operation}_in_flight"] = count
                snapshot[f"{operation}_in_flight_peak"] = self._peak.get(operation, count)
            return snapshot


class _QueuedFault:
    """A fault plus how many more calls it will hit (None: until cleared)."""

    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.times


class FaultQueue:
    """Faults waiting for matching calls, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_QueuedFault] = []

    def add(self, fault: Fault) -> int:
        with self._lock:
            self._faults.append(_QueuedFault(fault))
            return len(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**queued.fault.describe(), "remaining": queued.remaining} for queued in self._faults]

    def take(self, operation: str) -> Fault | None:
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
                return queued.fault
            return None


class Sleeper:
    """Delays that a reset or shutdown can cut short."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False if a reset or shutdown cut the sleep short."""
        with self._lock:
            wake = self._wake
        if seconds <= 0:
            return not wake.is_set()
        return not wake.wait(seconds)

    def wake_all(self) -> None:
        """Wake every sleeper now (they give up); later sleeps sleep normally unless stopped."""
        with self._lock:
            self._wake.set()
            if not self._stopped:
                self._wake = threading.Event()

    def stop(self) -> None:
        """Wake every sleeper for good (the server is stopping)."""
        with self._lock:
            self._stopped = True
            self._wake.set()


# ---- accounts and portals ---------------------------------------------------------------------------


class Account:
    """One Zoho Accounts OAuth client with its refresh token: tokens, codes, throttle, token faults and counters.

    ``accounts`` is the token store (the name is the one the token views and fault code use).
    """

    def __init__(
        self,
        name: str,
        cell: SettingsCell,
        counters: Counters,
        faults: FaultQueue,
        sleeper: Sleeper,
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.cell = cell
        self.counters = counters
        self.fault_queue = faults
        self.sleeper = sleeper
        self.accounts = Accounts(cell.get, on_change, clock)

    @property
    def settings(self) -> SandboxSettings:
        return self.cell.get()

    def bump(self, *names: str) -> None:
        self.counters.bump(*names)

    def pause(self, seconds: float) -> bool:
        return self.sleeper.pause(seconds)

    def take_fault(self, operation: str) -> Fault | None:
        fault = self.fault_queue.take(operation)
        if fault is not None:
            self.counters.bump("faults_fired")
        return fault

    def expire_tokens(self) -> None:
        self.accounts.expire_tokens()

    def rate_limited(self, retry_after: str) -> Response:
        return wire.sdp_rate_limited(retry_after)

    def server_error(self, status: int) -> Response:
        return wire.sdp_failure(status, 4004, "Internal error")

    def reset(self) -> None:
        """Forget tokens, codes, revocations, throttle windows, token faults and counters; restore settings."""
        self.sleeper.wake_all()
        self.cell.restore()
        self.fault_queue.clear()
        self.counters.clear()
        self.accounts.clear()

    def describe(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "name": self.name,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "refresh_token": settings.refresh_token,
            "token_path": "/oauth/v2/token" if self.name == DEFAULT else f"/a/{self.name}/oauth/v2/token",
        }


class Portal:
    """One simulated helpdesk: ServiceDesk Plus (``desk`` holds its requests) or Zoho Desk (``desk`` holds
    its tickets, ``contacts`` its contacts). Every public method is safe to call from any thread."""

    def __init__(
        self,
        spec: PortalSpec,
        account: Account,
        cell: SettingsCell,
        counters: Counters,
        faults: FaultQueue,
        sleeper: Sleeper,
        on_change: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.service = spec.service
        self.account = account
        self.cell = cell
        self.counters = counters
        self.fault_queue = faults
        self.sleeper = sleeper
        # Serialises Desk's find-or-create of a contact by email, so two creates never make two contacts.
        self.contact_lock = threading.Lock()
        offset = 0 if spec.name == DEFAULT else id_offset(spec.name)
        if spec.service == "desk":
            self.desk = Desk(on_change, child_kinds=("comments", "attachments"), ids=shifted(DESK_TICKET_IDS, offset))
            self.contacts: Desk | None = Desk(on_change, child_kinds=(), ids=shifted(DESK_CONTACT_IDS, offset))
        else:
            self.desk = Desk(on_change, ids=shifted(IdScheme(), offset))
            self.contacts = None

    # ---- what the views use ----------------------------------------------------------------------------

    @property
    def shares_everything_with_account(self) -> bool:
        """True for the default portal: one settings cell, counter set and fault queue with its account."""
        return self.cell is self.account.cell

    @property
    def settings(self) -> SandboxSettings:
        """The portal's settings, with the account fields of its account."""
        own = self.cell.get()
        if self.shares_everything_with_account:
            return own
        return own.combined(self.account.settings)

    @property
    def accounts(self) -> Accounts:
        """The token store of this portal's account (tokens minted there are the ones accepted here)."""
        return self.account.accounts

    def bump(self, *names: str) -> None:
        self.counters.bump(*names)

    def record_api_call(self, accept: str | None, auth_scheme: str | None, content_type: str | None) -> None:
        """Count an SDP call and remember its headers (the Authorization *scheme* only, never the token)."""
        self.counters.record_call({"Accept": accept, "Authorization": auth_scheme, "Content-Type": content_type})

    def record_call(self, headers: Mapping[str, str | None]) -> None:
        """Count an API call with the headers worth showing (never a token)."""
        self.counters.record_call(headers)

    def pause(self, seconds: float) -> bool:
        return self.sleeper.pause(seconds)

    def take_fault(self, operation: str) -> Fault | None:
        fault = self.fault_queue.take(operation)
        if fault is not None:
            self.counters.bump("faults_fired")
        return fault

    def expire_tokens(self) -> None:
        self.account.accounts.expire_tokens()

    def rate_limited(self, retry_after: str) -> Response:
        if self.service == "desk":
            return zdesk_wire.rate_limited(retry_after)
        return wire.sdp_rate_limited(retry_after)

    def server_error(self, status: int) -> Response:
        if self.service == "desk":
            return zdesk_wire.server_error(status)
        return wire.sdp_failure(status, 4004, "Internal error")

    # ---- control -----------------------------------------------------------------------------------------

    def update_settings(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """Apply a partial change: account fields to the account (every portal on it sees them), the rest here.

        Raises SettingsError (nothing applied) if any field is bad.
        """
        if self.shares_everything_with_account:
            return self.cell.update(changes)
        mine = {key: value for key, value in changes.items() if key not in ACCOUNT_FIELDS}
        theirs = {key: value for key, value in changes.items() if key in ACCOUNT_FIELDS}
        # Check both halves before applying either.
        self.cell.get().updated(mine)
        self.account.cell.get().updated(theirs)
        self.cell.update(mine)
        self.account.cell.update(theirs)
        return self.settings

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault: token faults on the account (the token endpoint serves the account), others here."""
        queue = self.account.fault_queue if fault.target == "token" else self.fault_queue
        queue.add(fault)

    def fault_queues(self) -> list[FaultQueue]:
        if self.shares_everything_with_account:
            return [self.fault_queue]
        return [self.fault_queue, self.account.fault_queue]

    def faults(self) -> list[dict[str, Any]]:
        return [item for queue in self.fault_queues() for item in queue.describe()]

    def clear_faults(self) -> None:
        """Drop this portal's faults and its account's token faults."""
        for queue in self.fault_queues():
            queue.clear()

    def reset(self) -> None:
        """Forget tickets (and contacts), faults, counters; restore settings. The account is left alone."""
        self.sleeper.wake_all()
        self.cell.restore()
        self.fault_queue.clear()
        self.counters.clear()
        self.desk.clear()
        if self.contacts is not None:
            self.contacts.clear()

    def stats(self) -> dict[str, Any]:
        """Counters (the account's token counters included), the latest headers and gauges."""
        snapshot = self.counters.snapshot()
        if not self.shares_everything_with_account:
            account = self.account.counters.snapshot()
            for name in TOKEN_COUNTERS:
                snapshot[name] = account[name]
            snapshot["faults_fired"] += account["faults_fired"]
        snapshot["pending_faults"] = sum(len(queue) for queue in self.fault_queues())
        snapshot["tickets"] = self.desk.ticket_count()
        snapshot["active_tokens"] = self.accounts.active_tokens()
        snapshot["refresh_token_revoked"] = self.accounts.refresh_token_revoked()
        if self.contacts is not None:
            snapshot["contacts"] = self.contacts.ticket_count()
        return snapshot

    def departments(self) -> list[dict[str, str]]:
        """A Desk portal's departments, ``{id, name}`` (empty for SDP)."""
        if self.service != "desk":
            return []
        from .zdesk_entities import departments

        return departments(self.spec.org_id)

    def describe(self, host_url: str = "") -> dict[str, Any]:
        """Where a client finds this portal, its account's credentials and (Desk) its org and departments."""
        base = host_url.rstrip("/")
        prefix = "" if self.name == DEFAULT else f"/t/{self.name}"
        account = self.account.describe()
        body: dict[str, Any] = {
            **self.spec.as_dict(),
            "base_url": f"{base}{prefix}",
            "api_path": f"{prefix}/api/v1" if self.service == "desk" else f"{prefix}/api/v3",
            "accounts_url": f"{base}" if self.account.name == DEFAULT else f"{base}/a/{self.account.name}",
            "client_id": account["client_id"],
            "client_secret": account["client_secret"],
            "refresh_token": account["refresh_token"],
            "control_url": f"{base}/_sandbox" if self.name == DEFAULT else f"{base}/_sandbox/t/{self.name}",
        }
        if self.service == "desk":
            departments = self.departments()
            body["departments"] = departments
            body["department_id"] = departments[0]["id"]
        return body


def new_account(
    name: str,
    initial: SandboxSettings,
    on_change: Callable[[], None],
    overrides: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Account:
    """An extra account with its own cell (credentials derived from the name unless ``overrides`` gives them)."""
    changes = {**account_credentials(name), **(overrides or {})}
    unknown = sorted(set(changes) - set(ACCOUNT_FIELDS))
    if unknown:
        raise TenantError(f"unknown account field(s): {', '.join(unknown)}")
    try:
        settings = initial.updated(changes)
    except SettingsError as exc:
        raise TenantError(str(exc)) from exc
    return Account(name, SettingsCell(settings), Counters(), FaultQueue(), Sleeper(), on_change, clock)


def new_portal(spec: PortalSpec, account: Account, initial: SandboxSettings, on_change: Callable[[], None]) -> Portal:
    """An extra portal with its own cell, counters, faults and sleeper."""
    settings = initial.updated({"org_id": spec.org_id})
    if spec.service == "desk":
        # Zoho Desk answers a create with HTTP 200 (assumed; switchable like SDP's 201).
        settings = settings.updated({"create_http_status": 200})
    return Portal(spec, account, SettingsCell(settings), Counters(), FaultQueue(), Sleeper(), on_change)


def all_sleepers(items: Iterable[Account | Portal]) -> list[Sleeper]:
    """Each distinct sleeper once."""
    seen: dict[int, Sleeper] = {}
    for item in items:
        seen.setdefault(id(item.sleeper), item.sleeper)
    return list(seen.values())
