"""The access-token cache: one mint per token lifetime across threads, workers and hosts.

Two levels, each double-checked. Level 1 is this process's copy, read without a lock on the hot
path. Level 2 is the shared store (SQLite for the workers of one host, Redis for several hosts),
read under this process's lock and re-read under the store's cross-process lock (a lease, so a holder
that dies never wedges the others) before minting, so that N workers x M hosts mint one token per
lifetime and a restart mints none. Refusals from Zoho (throttle, bad credentials, outage) are recorded
in the store as a cluster-wide back-off (:mod:`.token_backoff`), so no worker calls the token endpoint
again until it ends; a still-valid token keeps being served meanwhile. Without the store, each process
serves its own copy and mints on its own, rarely. Every mint and refusal is one audit line saying why
(:mod:`.token_audit`). A token Zoho refuses (401) is replaced with at most one mint per call
(``replace``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import GatewayError, ZohoTokenUnavailable
from ..state.base import Store, StoreUnavailable
from ..state.sealing import Sealer
from . import token_status
from .oauth import MintedToken, TokenCredentialsRejected, TokenEndpointUnavailable, TokenError, ZohoOAuth
from .token_audit import MintAudit
from .token_backoff import Backoff, clear_backoff, kind_of, read_backoff, record_backoff
from .token_held import HeldToken, Renewal, hold
from .token_local import LocalMinting
from .token_record import (
    TOKEN_KEY,
    StoredToken,
    delete_stored_token,
    fingerprint,
    load_stored_token,
    read_stored_token,
    save_stored_token,
)
from .token_settings import Clock, TokenSettings

__all__ = ["TOKEN_KEY", "Clock", "Renewal", "TokenManager", "TokenSettings", "fingerprint", "read_stored_token"]

log = logging.getLogger("zoho_gateway.tokens")

LOCK_NAME = "token-mint"


class TokenManager:
    """Hands out a usable access token; mints through Zoho only when no process anywhere has one.

    ``current()`` raises ``ZohoTokenThrottled`` (503) when Zoho throttles minting and no valid token is
    left, and ``ZohoTokenUnavailable`` (503) when credentials are refused or the accounts server is down;
    both carry ``retry_after``. It never raises for a token that is merely inside the refresh margin.
    """

    def __init__(
        self,
        *,
        oauth: ZohoOAuth,
        refresh_token: str,
        store: Store,
        sealer: Sealer,
        settings: TokenSettings | None = None,
        clock: Clock | None = None,
        on_mint: Callable[[str], None] | None = None,
    ) -> None:
        self._oauth = oauth
        self._refresh_token = refresh_token
        self._store = store
        self._sealer = sealer
        self._settings = settings if settings is not None else TokenSettings()
        self._clock = clock if clock is not None else Clock()
        self._audit = MintAudit(store, self._clock.wall, on_mint)
        self._local = LocalMinting(oauth, refresh_token, self._settings, self._clock, self._audit)
        self._lock = threading.Lock()
        self._held: HeldToken | None = None

    # --- level 1: the hot path ------------------------------------------------------------------

    def current(self) -> Renewal:
        """A token that is valid now. Lock-free while this process's copy is outside the refresh margin."""
        held = self._held
        if held is not None and self._clock.mono() < held.refresh_at:
            return held.served
        return self._slow_path()

    def access_token(self) -> str:
        """``current().token``."""
        return self.current().token

    # --- level 2 --------------------------------------------------------------------------------

    def _slow_path(self) -> Renewal:
        held = self._held
        if held is not None and self._clock.mono() < held.expires_at and self._lock.locked():
            return held.served  # inside the margin but valid while another thread renews it: do not queue
        with self._lock:
            held = self._held
            if held is not None and self._clock.mono() < held.refresh_at:
                return held.served  # another thread of this process refreshed it while we waited
            try:
                return self._from_store_or_mint()
            except StoreUnavailable:
                log.warning("shared state unavailable; using this process's token cache only")
                return self._without_store()

    def _from_store_or_mint(self) -> Renewal:
        found = self._adopt(load_stored_token(self._store, self._sealer))
        if found is not None:
            return found
        backoff = read_backoff(self._store, self._clock.wall())
        if backoff is not None:
            return self._serve_during_backoff(backoff)
        # A process still holding a valid token does not queue behind another's (maybe slow) mint: it
        # serves that token and re-checks shortly. Only a process with nothing valid waits for the lock.
        wait = 0.0 if self._held_valid() else self._settings.lock_wait
        with self._store.lock(LOCK_NAME, lease=self._settings.lock_lease, wait=wait) as got:
            if not got:
                # Another process is minting and slow; do not pile onto the token endpoint.
                return self._still_valid_or_raise(
                    ZohoTokenUnavailable("Timed out waiting for another worker to fetch the token", retry_after=2)
                )
            stored = load_stored_token(self._store, self._sealer)  # the re-check: someone may have minted
            found = self._adopt(stored)
            if found is not None:
                return found
            backoff = read_backoff(self._store, self._clock.wall())
            if backoff is not None:
                return self._serve_during_backoff(backoff)
            if stored is None:
                reason = "no stored token"
            else:
                reason = "expired" if stored.expires_at <= self._clock.wall() else "within the refresh margin"
            return self._mint_and_share(reason)

    def _adopt(self, stored: StoredToken | None) -> Renewal | None:
        """Hold ``stored`` if it is outside the refresh margin; None otherwise."""
        if stored is None:
            return None
        held = self._hold(stored)
        if self._clock.mono() >= held.refresh_at:
            return None
        self._held = held
        return held.served

    def _hold(self, stored: StoredToken) -> HeldToken:
        return hold(stored, self._settings.refresh_margin, self._clock)

    def _held_valid(self) -> bool:
        held = self._held
        return held is not None and self._clock.mono() < held.expires_at

    def _mint_and_share(self, reason: str) -> Renewal:
        """Mint (the caller holds the store's lock), store, adopt; ``reason`` goes into the audit line.

        On a refusal, records the cluster-wide back-off and serves a still-valid token or raises its 503.
        """
        try:
            minted = self._mint_with_retries()
        except TokenError as exc:
            kind = kind_of(exc)
            seconds = self._settings.backoff_for(kind)
            now = self._clock.wall()
            backoff = Backoff(now + seconds, kind, exc.reason)
            record_backoff(self._store, backoff, now)
            self._audit.refused(backoff, seconds, shared=True)
            return self._serve_during_backoff(backoff)
        now = self._clock.wall()
        stored = StoredToken(minted.access_token, now, now + minted.expires_in, self._sealer.enabled)
        save_stored_token(self._store, self._sealer, stored)
        clear_backoff(self._store)
        self._held = self._hold(stored)
        self._audit.minted(reason, minted.expires_in, shared=True)
        return Renewal(minted.access_token, minted=True)

    def _mint_with_retries(self) -> MintedToken:
        if not self._refresh_token:
            raise TokenCredentialsRejected("ZOHO_REFRESH_TOKEN is not set")
        for pause in (*self._settings.unreachable_pauses, None):
            try:
                return self._oauth.refresh(self._refresh_token)
            except TokenEndpointUnavailable:
                if pause is None:
                    raise
                self._clock.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- while minting is impossible ------------------------------------------------------------

    def _serve_during_backoff(self, backoff: Backoff) -> Renewal:
        return self._still_valid_or_raise(backoff.error(self._clock.wall()), recheck_until=backoff.until)

    def _still_valid_or_raise(self, error: GatewayError, recheck_until: float | None = None) -> Renewal:
        """Serve this process's (or the store's) token while it has not expired; otherwise raise ``error``."""
        now = self._clock.mono()
        held = self._held
        if held is None or now >= held.expires_at:
            try:
                stored = load_stored_token(self._store, self._sealer)
            except StoreUnavailable:
                stored = None
            held = self._hold(stored) if stored is not None else None
        if held is None or now >= held.expires_at:
            raise error
        # Inside the margin but valid: keep using it, and come back only after a short pause so that
        # every request does not queue on the lock while minting is impossible.
        pause = self._settings.recheck_interval
        if recheck_until is not None:
            pause = max(pause, min(recheck_until - self._clock.wall(), 30.0))
        self._held = dataclasses.replace(held, refresh_at=min(now + pause, held.expires_at))
        return held.served

    def _without_store(self) -> Renewal:
        """Degraded mode: serve this process's token until just before it expires, then mint locally, rarely."""
        held = self._held
        if not self._local.due(held.expires_at if held is not None else None):
            # Serves a valid copy, and re-tries the store in a moment.
            return self._still_valid_or_raise(
                ZohoTokenUnavailable("Shared state unavailable and no valid token held", retry_after=5)
            )
        outcome = self._local.mint()
        if isinstance(outcome, Backoff):
            return self._serve_during_backoff(outcome)
        self._held = self._hold(outcome)
        return Renewal(outcome.token, minted=True)

    # --- a token Zoho refused (401) -----------------------------------------------------------------

    def replace(self, rejected: str) -> Renewal:
        """The token to try after Zoho answered 401 with ``rejected``. Never returns ``rejected``.

        Forgets ``rejected`` here and, if it is still the stored token, everywhere. Then adopts a different
        valid token that another thread or worker already holds (``minted=False``: it may have been replaced
        and revoked as well), or else tries one mint (``minted=True``). Raises ZohoTokenThrottled or
        ZohoTokenUnavailable (503, with ``retry_after``) when no token can be had, as ``current()`` does.
        A burst of 401s for one token causes one mint: the first caller mints, the others adopt its token.
        """
        with self._lock:
            held = self._held
            if held is not None and held.token != rejected and self._clock.mono() < held.expires_at:
                return held.served  # another thread of this process has replaced it already
            self._held = None
            try:
                return self._replace_shared(rejected)
            except StoreUnavailable:
                return self._without_store()  # only the local copy could be dropped; any mint is local

    def _replace_shared(self, rejected: str) -> Renewal:
        lease, wait = self._settings.lock_lease, self._settings.lock_wait
        with self._store.lock(LOCK_NAME, lease=lease, wait=wait) as got:
            stored = load_stored_token(self._store, self._sealer)
            if stored is not None and stored.token == rejected:
                stored = None
                if got:
                    delete_stored_token(self._store)
                    log.info("access token rejected by Zoho; forgotten", extra={"token_fp": fingerprint(rejected)})
            if stored is not None and stored.expires_at > self._clock.wall():
                self._held = self._hold(stored)  # another worker's token, even inside the margin: try it first
                return self._held.served
            if not got:
                raise ZohoTokenUnavailable("Timed out waiting for another worker to fetch the token", retry_after=2)
            backoff = read_backoff(self._store, self._clock.wall())
            if backoff is not None:
                return self._serve_during_backoff(backoff)
            return self._mint_and_share("rejected by Zoho")

    # --- operator actions -----------------------------------------------------------------------

    def force_refresh(self) -> str:
        """Mint now (single-flight like any other mint), ignoring the held token but honouring back-off."""
        lease, wait = self._settings.lock_lease, self._settings.lock_wait
        with self._lock, self._store.lock(LOCK_NAME, lease=lease, wait=wait) as got:
            if not got:
                raise ZohoTokenUnavailable("Another worker is minting a token; try again", retry_after=2)
            backoff = read_backoff(self._store, self._clock.wall())
            if backoff is not None:
                return self._serve_during_backoff(backoff).token
            return self._mint_and_share("forced by an operator").token

    def forget(self) -> None:
        """Drop the stored token and any back-off (the next call mints)."""
        with self._lock:
            self._held = None
            self._local.forget()
            delete_stored_token(self._store)
            clear_backoff(self._store)

    # --- what operators see ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What an operator may see: never the token itself. Raises StoreUnavailable if the store is down."""
        return token_status.describe(self._store, self._sealer, self._audit, self._clock.wall())

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, facts). Ready when a token is held or may be minted: no credential or throttle back-off
        without a valid token. Never calls Zoho."""
        return token_status.readiness(
            self._store,
            self._sealer,
            now=self._clock.wall(),
            held_valid=self._held_valid(),
            local_backoff=self._local.backoff,
        )
