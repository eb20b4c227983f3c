"""The simulator's state: its portals and accounts (see ``tenancy``), and the optional state file."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import abort, current_app, g

from .accounts import Accounts
from .desk import Desk
from .faults import Fault
from .persistence import FORMAT_VERSION, StateFile, StateFileError
from .settings import SandboxSettings, SettingsError
from .tenancy import (
    COUNTERS,
    DEFAULT,
    Account,
    Counters,
    FaultQueue,
    Portal,
    PortalSpec,
    SettingsCell,
    Sleeper,
    TenantConflict,
    TenantError,
    all_sleepers,
    check_name,
    new_account,
    new_portal,
)

EXTENSION_KEY = "zoho_sandbox"

__all__ = ["COUNTERS", "EXTENSION_KEY", "SandboxWorld", "current_account", "current_portal", "current_world"]


class SandboxWorld:
    """Everything the simulator remembers. Every public method is atomic and safe to call from any thread.

    The world holds portals and accounts by name. The ``default`` portal (ServiceDesk Plus, at ``/api/v3``)
    and the ``default`` account (at ``/oauth/v2/token``) always exist; the methods and properties of this
    class that name no portal (``accounts``, ``desk``, ``settings``, ``stats``, ``add_fault``, ...) are
    theirs, exactly as before there were several portals. Extra portals come from
    ``settings.portals`` at start or from ``add_portal`` (the control API's ``POST /_sandbox/portals``).

    With ``settings.state_file`` set, the requests (with their notes and attachments), the id sequences,
    the unexpired access tokens, and every extra portal and account (their declarations and their
    records) are loaded from that file at start and written back after every change, before the change
    is answered; so a restarted sandbox still knows the tickets and tokens that a gateway holds.
    Raises StateFileError when the file exists but is unreadable. Counters, faults, codes, revocations
    and throttle windows always start empty.
    """

    def __init__(self, settings: SandboxSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        # What an extra portal or account starts from: the start settings, without the process-wide fields.
        self._template = dataclasses.replace(settings, state_file=None, portals=())
        cell, counters, faults, sleeper = SettingsCell(settings), Counters(), FaultQueue(), Sleeper()
        default_account = Account(DEFAULT, cell, counters, faults, sleeper, self._changed, clock)
        default_portal = Portal(
            PortalSpec(DEFAULT, "sdp", DEFAULT), default_account, cell, counters, faults, sleeper, self._changed
        )
        self._accounts: dict[str, Account] = {DEFAULT: default_account}
        self._portals: dict[str, Portal] = {DEFAULT: default_portal}
        self._declared_accounts: dict[str, dict[str, Any]] = {}
        self._startup_portals: tuple[PortalSpec, ...] = ()
        # Persistence: every change bumps the generation; a save records the generation it wrote, so a
        # burst of changes is written once by whichever caller gets the file lock first.
        self._state_file = StateFile(settings.state_file) if settings.state_file else None
        self._save_lock = threading.Lock()
        self._generation = 0
        self._saved_generation = 0
        self._loading = True
        try:
            specs = tuple(PortalSpec.parse(text) for text in settings.portals)
            for spec in specs:
                self.add_portal(spec)
        except TenantError as exc:
            raise SettingsError(f"SANDBOX_PORTALS / portals: {exc}") from exc
        self._startup_portals = specs
        if self._state_file is not None:
            document = self._state_file.load()
            if document is not None:
                self._restore(document)
        self._loading = False

    # ---- the default portal and account ----------------------------------------------------------------

    @property
    def default_portal(self) -> Portal:
        return self._portals[DEFAULT]

    @property
    def accounts(self) -> Accounts:
        """The default account's token store."""
        return self._accounts[DEFAULT].accounts

    @property
    def desk(self) -> Desk:
        """The default portal's requests."""
        return self._portals[DEFAULT].desk

    # ---- portals and accounts --------------------------------------------------------------------------

    def portal(self, name: str) -> Portal | None:
        with self._lock:
            return self._portals.get(name)

    def account(self, name: str) -> Account | None:
        with self._lock:
            return self._accounts.get(name)

    def portals(self) -> list[Portal]:
        with self._lock:
            return list(self._portals.values())

    def account_list(self) -> list[Account]:
        with self._lock:
            return list(self._accounts.values())

    def add_account(self, name: str, overrides: Mapping[str, Any] | None = None) -> tuple[Account, bool]:
        """Declare an account (credentials ``sandbox-<name>-client-id`` ... unless ``overrides`` gives them).

        Returns (account, created). Declaring an existing account again with the same (or no) overrides is
        a no-op; with different ones it raises TenantError, as does a bad name or field.
        """
        check_name("account", name)
        wanted = dict(overrides or {})
        with self._lock:
            existing = self._accounts.get(name)
            if existing is not None:
                if wanted and (name == DEFAULT or self._declared_accounts.get(name) != wanted):
                    raise TenantConflict(f"account {name!r} exists with other settings")
                return existing, False
            account = new_account(name, self._template, self._changed, wanted, self._clock)
            for other in self._accounts.values():
                if other.settings.refresh_token == account.settings.refresh_token:
                    raise TenantConflict(
                        f"account {other.name!r} already has that refresh token; share it by naming that account"
                    )
            self._accounts[name] = account
            self._declared_accounts[name] = wanted
        self._changed()
        return account, True

    def add_portal(self, spec: PortalSpec) -> tuple[Portal, bool]:
        """Declare a portal (its account is declared too if new). Returns (portal, created).

        Declaring an existing portal again with the same spec is a no-op; otherwise TenantError.
        """
        account, _ = self.add_account(spec.account)
        with self._lock:
            existing = self._portals.get(spec.name)
            if existing is not None:
                if existing.spec != spec:
                    raise TenantConflict(f"portal {spec.name!r} exists as {existing.spec.as_dict()}")
                return existing, False
            if spec.service == "desk":
                for other in self._portals.values():
                    if other.service == "desk" and other.spec.org_id == spec.org_id:
                        raise TenantConflict(f"portal {other.name!r} already has org_id {spec.org_id}")
            portal = new_portal(spec, account, self._template, self._changed)
            self._portals[spec.name] = portal
        self._changed()
        return portal, True

    def remove_portal(self, name: str) -> bool:
        """Forget an extra portal and its records (its account stays); False if unknown or the default."""
        with self._lock:
            portal = self._portals.get(name)
            if portal is None or name == DEFAULT:
                return False
            del self._portals[name]
        portal.sleeper.wake_all()
        self._changed()
        return True

    # ---- persistence ------------------------------------------------------------------------------

    @property
    def state_file(self) -> str | None:
        """The path of the state file, or None for a world that lives in memory only."""
        return None if self._state_file is None else str(self._state_file.path)

    def _changed(self) -> None:
        """Called after every change to an account, a store or the portal list: on disk before this returns.

        A save that starts after a change was counted includes it, because every change is applied
        before it is counted; so skipping a save whose generation is already written loses nothing.
        """
        if self._state_file is None or self._loading:
            return
        with self._lock:
            self._generation += 1
            generation = self._generation
        with self._save_lock:
            if self._saved_generation >= generation:
                return
            with self._lock:
                written = self._generation
            self._state_file.save(self._dump())
            self._saved_generation = written

    def _dump(self) -> str:
        """The document: the default's tokens and requests at the top (format 1), the extras beside them.

        The stores serialise themselves under their own locks (``dump_json``); the text is joined here.
        """
        with self._lock:
            accounts = dict(self._accounts)
            portals = dict(self._portals)
            declared = dict(self._declared_accounts)

        def compact(value: Any) -> str:
            return json.dumps(value, separators=(",", ":"))

        extra_accounts = ",".join(
            f'{compact(name)}:{{"settings":{compact(declared.get(name, {}))},'
            f'"access_tokens":{compact(account.accounts.dump_tokens())}}}'
            for name, account in accounts.items()
            if name != DEFAULT
        )
        extra_portals = ",".join(
            f'{compact(name)}:{{"spec":{compact(portal.spec.as_dict())},"desk":{portal.desk.dump_json()}'
            + (f',"contacts":{portal.contacts.dump_json()}' if portal.contacts is not None else "")
            + "}"
            for name, portal in portals.items()
            if name != DEFAULT
        )
        tokens = compact(accounts[DEFAULT].accounts.dump_tokens())
        desk = portals[DEFAULT].desk.dump_json()
        return (
            f'{{"version":{FORMAT_VERSION},"saved_at":{time.time()},"access_tokens":{tokens},"desk":{desk},'
            f'"accounts":{{{extra_accounts}}},"portals":{{{extra_portals}}}}}'
        )

    def _restore(self, document: Mapping[str, Any]) -> None:
        try:
            self.desk.load(document["desk"])
            tokens = {str(token): float(expiry) for token, expiry in dict(document["access_tokens"]).items()}
            self.accounts.load_tokens(tokens)
            for name, saved in dict(document.get("accounts", {})).items():
                account, _ = self.add_account(str(name), dict(saved.get("settings", {})))
                account.accounts.load_tokens(
                    {str(token): float(expiry) for token, expiry in dict(saved["access_tokens"]).items()}
                )
            for saved in dict(document.get("portals", {})).values():
                spec = PortalSpec(**{key: str(value) for key, value in dict(saved["spec"]).items()})
                portal = self.portal(spec.name)
                if portal is None or portal.spec != spec:
                    portal, _ = self.add_portal(spec)
                portal.desk.load(saved["desk"])
                if portal.contacts is not None:
                    portal.contacts.load(saved.get("contacts", {"sequence": 0, "tickets": []}))
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileError(f"sandbox state file {self.state_file} is damaged ({exc!r})") from exc

    # ---- settings and lifecycle (the default portal's) --------------------------------------------

    @property
    def settings(self) -> SandboxSettings:
        """The default portal's settings in force right now."""
        return self.default_portal.settings

    def update_settings(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """Apply a partial change; raises SettingsError (nothing applied) if any field is bad."""
        return self.default_portal.update_settings(changes)

    def reset(self) -> None:
        """Forget everything and go back to how the world was created.

        Every portal and account is reset (tickets, tokens, codes, faults, counters, settings); portals and
        accounts declared after the start are removed. With a state file, the file is emptied too (the
        reset is a change like any other).

        Requests sleeping in a delay fault are woken up and told to give up (see ``pause``), so a slow
        request from one test can never write into the next test's world.
        """
        keep = {DEFAULT, *(spec.name for spec in self._startup_portals)}
        keep_accounts = {DEFAULT, *(spec.account for spec in self._startup_portals)}
        with self._lock:
            self._portals = {name: portal for name, portal in self._portals.items() if name in keep}
            self._accounts = {name: account for name, account in self._accounts.items() if name in keep_accounts}
            self._declared_accounts = {
                name: value for name, value in self._declared_accounts.items() if name in keep_accounts
            }
            portals, accounts = list(self._portals.values()), list(self._accounts.values())
        for portal in portals:
            portal.reset()
        for account in accounts:
            account.reset()
        self._changed()

    def reset_portal(self, portal: Portal) -> None:
        """Forget one portal's tickets, faults and counters and restore its settings (its account stays)."""
        portal.reset()
        self._changed()

    def reset_account(self, account: Account) -> None:
        """Forget one account's tokens, codes, revocations, throttle window, token faults and counters."""
        account.reset()
        self._changed()

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False if a reset or shutdown cut the sleep short."""
        return self.default_portal.pause(seconds)

    def interrupt(self) -> None:
        """Wake every sleeping request, in every portal and account, for good (used when the server stops)."""
        with self._lock:
            items: list[Account | Portal] = [*self._portals.values(), *self._accounts.values()]
        for sleeper in all_sleepers(items):
            sleeper.stop()

    # ---- counters and faults (the default portal's) -----------------------------------------------

    def bump(self, *names: str) -> None:
        """Add one to each named counter."""
        self.default_portal.bump(*names)

    def record_api_call(self, accept: str | None, auth_scheme: str | None, content_type: str | None) -> None:
        """Count an SDP call and remember its headers (the Authorization *scheme* only, never the token)."""
        self.default_portal.record_api_call(accept, auth_scheme, content_type)

    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of counters and gauges."""
        return self.default_portal.stats()

    def add_fault(self, fault: Fault) -> int:
        """Queue a fault behind the existing ones; returns how many are queued now."""
        self.default_portal.add_fault(fault)
        return len(self.default_portal.fault_queue)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self.default_portal.clear_faults()

    def faults(self) -> list[dict[str, Any]]:
        """The queued faults with what is left of each."""
        return self.default_portal.faults()

    def take_fault(self, operation: str) -> Fault | None:
        """The first queued fault that applies to ``operation``, using up one of its ``times``."""
        return self.default_portal.take_fault(operation)


def current_world() -> SandboxWorld:
    """The world of the sandbox app handling the current request."""
    world = current_app.extensions[EXTENSION_KEY]
    assert isinstance(world, SandboxWorld)
    return world


def current_portal(service: str | None = None) -> Portal:
    """The portal named by the URL (``/t/<name>/...``; the default portal otherwise).

    Aborts with 404 (rendered in the path's wire format) when there is no such portal, or when it is not
    of ``service``.
    """
    name = g.get("sandbox_tenant") or DEFAULT
    portal = current_world().portal(name)
    if portal is None or (service is not None and portal.service != service):
        abort(404)
    return portal


def current_account() -> Account:
    """The account named by the URL (``/a/<name>/oauth/...``; the default account otherwise); 404 if unknown."""
    name = g.get("sandbox_account") or DEFAULT
    account = current_world().account(name)
    if account is None:
        abort(404)
    return account
