"""The access-token cache: one mint per token lifetime across threads, workers and hosts.

Two levels, each double-checked. Level 1 is this process's copy, read without a lock on the hot
path. Level 2 is the shared store (SQLite for the workers of one host, Redis for several hosts),
read under this process's lock and re-read under the store's cross-process lock before minting, so
that N workers x M hosts mint one token per lifetime and a restart mints none. Refusals from Zoho
(throttle, bad credentials, outage) are recorded in the store as a cluster-wide back-off, so no
worker calls the token endpoint again until it ends; a still-valid token keeps being served meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from ..errors import GatewayError, ZohoTokenThrottled, ZohoTokenUnavailable
from ..state.base import Store, StoreUnavailable
from ..state.sealing import Sealer, SealError
from .oauth import (
    MintedToken,
    TokenCredentialsRejected,
    TokenEndpointUnavailable,
    TokenError,
    TokenThrottled,
    ZohoOAuth,
)

log = logging.getLogger("zoho_gateway.tokens")
audit = logging.getLogger("zoho_gateway.audit")

TOKEN_KEY = "token:current"
BACKOFF_KEY = "token:backoff"
AUDIT_KEY = "token:audit"
LOCK_NAME = "token-mint"

#: Tries per mint when the accounts server cannot be reached, and the pauses between them.
UNREACHABLE_PAUSES = (0.25, 0.75)
#: While minting is impossible, a process re-checks the shared store at most this often (seconds).
RECHECK_INTERVAL = 2.0
#: Without the shared store, one process mints at most once per this many seconds (storm guard)...
LOCAL_MINT_INTERVAL = 60.0
#: ...and only this close to its token's expiry.
LOCAL_MINT_LEAD = 10.0


#: What to fix for each refusal Zoho names (ZOHO-API.md §3.2); a client of another data centre is
#: unknown to this accounts server, hence ZOHO_DC beside the client id.
CREDENTIAL_HINTS = {
    "invalid_code": "ZOHO_REFRESH_TOKEN (revoked, mistyped, or from another client or data centre)",
    "invalid_client": "ZOHO_CLIENT_ID and ZOHO_DC/ZOHO_ACCOUNTS_URL",
    "invalid_client_secret": "ZOHO_CLIENT_SECRET",
    "unauthorized_client": "ZOHO_CLIENT_ID (the client may not use refresh tokens)",
    "ZOHO_REFRESH_TOKEN is not set": "ZOHO_REFRESH_TOKEN (run 'flask zoho exchange-code')",
}


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, safe for logs and status pages."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Held:
    """This process's copy. ``refresh_at``/``expires_at`` are monotonic; ``expires_wall`` is for display."""

    token: str = field(repr=False)
    fp: str
    refresh_at: float
    expires_at: float
    expires_wall: float


@dataclass(frozen=True)
class StoredToken:
    """The shared store's token record (wall-clock times, since several processes and hosts read it)."""

    token: str = field(repr=False)
    minted_at: float
    expires_at: float
    encrypted: bool

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.minted_at

    def encode(self, sealer: Sealer) -> bytes:
        return json.dumps(
            {"t": sealer.seal(self.token), "enc": sealer.enabled, "at": self.minted_at, "exp": self.expires_at}
        ).encode()


def read_stored_token(store: Store, sealer: Sealer) -> StoredToken | None:
    """The stored token, or None when there is none or its record is malformed.

    Raises SealError when ``sealer`` cannot open it (another GATEWAY_STATE_KEY) and StoreUnavailable.
    """
    raw = store.get(TOKEN_KEY)
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        encrypted = bool(record.get("enc"))
        token = sealer.open(str(record["t"]), encrypted)
        return StoredToken(token, float(record["at"]), float(record["exp"]), encrypted)
    except (ValueError, KeyError, TypeError, AttributeError):
        log.error("stored token record is malformed; it will be replaced")
        return None


@dataclass(frozen=True)
class _Backoff:
    until: float
    kind: str
    reason: str


class TokenManager:
    """Hands out a usable access token; mints through Zoho only when no process anywhere has one.

    ``access_token()`` raises ``ZohoTokenThrottled`` (503) when Zoho throttles minting and no valid
    token is left, and ``ZohoTokenUnavailable`` (503) when credentials are refused or the accounts
    server is down; both carry ``retry_after``. It never raises for a token that is merely inside
    the refresh margin.
    """

    def __init__(
        self,
        *,
        oauth: ZohoOAuth,
        refresh_token: str,
        store: Store,
        sealer: Sealer,
        refresh_margin: float = 300.0,
        lock_lease: float = 30.0,
        lock_wait: float = 10.0,
        backoff_throttled: float = 60.0,
        backoff_invalid: float = 60.0,
        backoff_unreachable: float = 10.0,
        on_mint: Callable[[str], None] | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._oauth = oauth
        self._refresh_token = refresh_token
        self._store = store
        self._sealer = sealer
        self._margin = refresh_margin
        self._lease = lock_lease
        self._wait = lock_wait
        self._backoffs = {
            "throttled": backoff_throttled,
            "invalid_credentials": backoff_invalid,
            "unreachable": backoff_unreachable,
        }
        self._on_mint = on_mint
        self._wall = wall
        self._mono = mono
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self._local_backoff: _Backoff | None = None
        self._last_local_mint = -LOCAL_MINT_INTERVAL
        self._host = socket.gethostname()

    # --- the hot path ---------------------------------------------------------------------------

    def access_token(self) -> str:
        """A token that is valid now. Lock-free while this process's copy is outside the refresh margin."""
        held = self._held
        if held is not None and self._mono() < held.refresh_at:
            return held.token
        return self._slow_path()

    # --- level 2 --------------------------------------------------------------------------------

    def _slow_path(self) -> str:
        held = self._held
        if held is not None and self._mono() < held.expires_at and self._lock.locked():
            return held.token  # inside the margin but valid while another thread renews it: do not queue
        with self._lock:
            held = self._held
            if held is not None and self._mono() < held.refresh_at:
                return held.token  # another thread of this process refreshed it while we waited
            try:
                return self._from_store_or_mint()
            except StoreUnavailable:
                log.warning("shared state unavailable; using this process's token cache only")
                return self._without_store()

    def _from_store_or_mint(self) -> str:
        found = self._adopt_shared()
        if found is not None:
            return found
        backoff = self._read_backoff()
        if backoff is not None:
            return self._serve_during_backoff(backoff)
        # A process still holding a valid token does not queue behind another's (maybe slow) mint: it
        # serves that token and re-checks shortly. Only a process with nothing valid waits for the lock.
        held = self._held
        wait = 0.0 if held is not None and self._mono() < held.expires_at else self._wait
        with self._store.lock(LOCK_NAME, lease=self._lease, wait=wait) as got:
            if not got:
                # Another process is minting and slow; do not pile onto the token endpoint.
                return self._still_valid_or_raise(
                    ZohoTokenUnavailable("Timed out waiting for another worker to fetch the token", retry_after=2)
                )
            found = self._adopt_shared()  # the re-check: someone may have minted while we waited
            if found is not None:
                return found
            backoff = self._read_backoff()
            if backoff is not None:
                return self._serve_during_backoff(backoff)
            return self._mint_and_share()

    def _adopt_shared(self) -> str | None:
        """Adopt the stored token if it is outside the refresh margin; None otherwise."""
        stored = self._read_stored()
        if stored is None:
            return None
        held = self._hold(stored)
        if self._mono() >= held.refresh_at:
            return None
        self._held = held
        return stored.token

    def _read_stored(self) -> StoredToken | None:
        """The stored token; None (and one error line) when this process's key cannot open it."""
        try:
            return read_stored_token(self._store, self._sealer)
        except SealError as exc:
            log.error("stored token cannot be read: %s; it will be replaced", exc)
            return None

    def _hold(self, stored: StoredToken) -> _Held:
        remaining = stored.expires_at - self._wall()
        now = self._mono()
        # The margin never exceeds half a lifetime, so short-lived tokens are still used before renewal.
        margin = min(self._margin, stored.lifetime / 2) if stored.lifetime > 0 else self._margin
        return _Held(
            stored.token, fingerprint(stored.token), now + remaining - margin, now + remaining, stored.expires_at
        )

    def _mint_and_share(self, reason: str | None = None) -> str:
        """Mint (the caller holds the store's lock), store, adopt. Records a back-off on refusal.

        ``reason`` (why a mint is needed) goes into the audit line; by default it is read off the store.
        """
        if reason is None:
            stored = self._read_stored()
            if stored is None:
                reason = "no stored token"
            else:
                reason = "expired" if stored.expires_at <= self._wall() else "within the refresh margin"
        try:
            minted = self._mint_with_retries()
        except TokenError as exc:
            kind = self._kind(exc)
            self._record_failure(kind, exc.reason)
            return self._serve_during_backoff(_Backoff(self._wall() + self._backoffs[kind], kind, exc.reason))
        now = self._wall()
        stored = StoredToken(minted.access_token, now, now + minted.expires_in, self._sealer.enabled)
        self._store.set(TOKEN_KEY, stored.encode(self._sealer), ttl=minted.expires_in)
        self._store.delete(BACKOFF_KEY)
        self._held = self._hold(stored)
        self._record_success(minted, reason)
        return minted.access_token

    def _mint_with_retries(self) -> MintedToken:
        if not self._refresh_token:
            raise TokenCredentialsRejected("ZOHO_REFRESH_TOKEN is not set")
        for pause in (*UNREACHABLE_PAUSES, None):
            try:
                return self._oauth.refresh(self._refresh_token)
            except TokenEndpointUnavailable:
                if pause is None:
                    raise
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _kind(exc: TokenError) -> str:
        if isinstance(exc, TokenThrottled):
            return "throttled"
        if isinstance(exc, TokenCredentialsRejected):
            return "invalid_credentials"
        return "unreachable"

    # --- back-off ---------------------------------------------------------------------------------

    def _read_backoff(self) -> _Backoff | None:
        raw = self._store.get(BACKOFF_KEY)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            backoff = _Backoff(float(data["until"]), str(data["kind"]), str(data["reason"]))
        except (ValueError, KeyError, TypeError):
            return None
        return backoff if backoff.until > self._wall() else None

    def _serve_during_backoff(self, backoff: _Backoff) -> str:
        retry_after = max(1, int(backoff.until - self._wall() + 0.999))
        if backoff.kind == "throttled":
            error: GatewayError = ZohoTokenThrottled(
                "Zoho is throttling access-token requests and no valid token is left", retry_after=retry_after
            )
        elif backoff.kind == "invalid_credentials":
            error = ZohoTokenUnavailable(
                "Zoho refused the gateway's OAuth credentials; an operator must fix them", retry_after=retry_after
            )
        else:
            error = ZohoTokenUnavailable("Zoho's token endpoint is unreachable", retry_after=retry_after)
        return self._still_valid_or_raise(error, recheck_until=backoff.until)

    def _still_valid_or_raise(self, error: GatewayError, recheck_until: float | None = None) -> str:
        """Serve this process's (or the store's) token while it has not expired; otherwise raise ``error``."""
        now = self._mono()
        held = self._held
        if held is None or now >= held.expires_at:
            try:
                stored = self._read_stored()
            except StoreUnavailable:
                stored = None
            held = self._hold(stored) if stored is not None else None
        if held is not None and now < held.expires_at:
            # Inside the margin but valid: keep using it, and come back only after a short pause so
            # that every request does not queue on the lock while minting is impossible.
            pause = RECHECK_INTERVAL
            if recheck_until is not None:
                pause = max(pause, min(recheck_until - self._wall(), 30.0))
            self._held = _Held(
                held.token, held.fp, min(now + pause, held.expires_at), held.expires_at, held.expires_wall
            )
            return held.token
        raise error

    # --- without the shared store -----------------------------------------------------------------

    def _without_store(self) -> str:
        """Degraded mode: serve this process's token until just before it expires, then mint locally.

        Without the store there is no cluster-wide single flight, so each process mints on its own:
        as late as possible (``LOCAL_MINT_LEAD`` before expiry) and at most once per
        ``LOCAL_MINT_INTERVAL``, to stay well inside Zoho's mint limit until the store is back.
        """
        error = ZohoTokenUnavailable("Shared state unavailable and no valid token held", retry_after=5)
        now = self._mono()
        held = self._held
        if held is not None and now < held.expires_at - LOCAL_MINT_LEAD:
            return self._still_valid_or_raise(error)  # serves it, and re-tries the store in a moment
        if self._local_backoff is not None and self._local_backoff.until > self._wall():
            return self._still_valid_or_raise(error)
        if now - self._last_local_mint < LOCAL_MINT_INTERVAL:
            return self._still_valid_or_raise(error)
        self._last_local_mint = now
        try:
            minted = self._oauth.refresh(self._refresh_token)
        except TokenError as exc:
            kind = self._kind(exc)
            self._local_backoff = _Backoff(self._wall() + self._backoffs[kind], kind, exc.reason)
            self._audit("failure", kind=kind, reason=exc.reason, shared=False)
            return self._serve_during_backoff(self._local_backoff)
        now_wall = self._wall()
        self._held = self._hold(StoredToken(minted.access_token, now_wall, now_wall + minted.expires_in, False))
        self._audit("minted", reason="shared state unavailable", expires_in=minted.expires_in, shared=False)
        if self._on_mint:
            self._on_mint("minted")
        return minted.access_token

    # --- 401 handling -------------------------------------------------------------------------------

    def invalidate(self, failed_token: str) -> None:
        """Forget ``failed_token`` (Zoho answered 401 with it) here and, if it is still current, everywhere.

        A token already replaced by another worker is left alone, so a burst of 401s for one token
        causes one mint, not one per request.
        """
        with self._lock:
            if self._held is not None and self._held.token == failed_token:
                self._held = None
            try:
                with self._store.lock(LOCK_NAME, lease=self._lease, wait=self._wait) as got:
                    stored = self._read_stored()
                    if got and stored is not None and stored.token == failed_token:
                        self._store.delete(TOKEN_KEY)
                        log.info(
                            "access token rejected by Zoho; forgotten", extra={"token_fp": fingerprint(failed_token)}
                        )
            except StoreUnavailable:
                pass  # only the local copy could be dropped; without the store the next mint is local

    # --- operator actions -----------------------------------------------------------------------------

    def force_refresh(self) -> str:
        """Mint now (single-flight like any other mint), ignoring the held token but honouring back-off."""
        with self._lock, self._store.lock(LOCK_NAME, lease=self._lease, wait=self._wait) as got:
            if not got:
                raise ZohoTokenUnavailable("Another worker is minting a token; try again", retry_after=2)
            backoff = self._read_backoff()
            if backoff is not None:
                return self._serve_during_backoff(backoff)
            return self._mint_and_share("forced by an operator")

    def forget(self) -> None:
        """Drop the stored token and any back-off (the next call mints)."""
        with self._lock:
            self._held = None
            self._local_backoff = None
            self._store.delete(TOKEN_KEY)
            self._store.delete(BACKOFF_KEY)

    # --- audit and status -------------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        # The pid is read per event: with gunicorn's preload_app this object is built before the fork.
        return {"pid": os.getpid(), "host": self._host}

    def _audit(self, outcome: str, **fields: Any) -> None:
        level = logging.INFO if outcome == "minted" else logging.WARNING
        audit.log(
            level, "token %s", outcome, extra={"event": "token_mint", "outcome": outcome, **self._identity(), **fields}
        )

    def _load_audit(self) -> dict[str, Any]:
        raw = self._store.get(AUDIT_KEY)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _save_audit(self, last: dict[str, Any], minted: bool) -> None:
        data = self._load_audit()
        now = self._wall()
        mints = [t for t in data.get("mints", []) if isinstance(t, (int, float)) and t > now - 3600]
        if minted:
            mints.append(now)
        data.update(last=last, mints=mints)
        self._store.set(AUDIT_KEY, json.dumps(data).encode(), ttl=7 * 24 * 3600)

    def _record_success(self, minted: MintedToken, reason: str) -> None:
        self._audit("minted", reason=reason, expires_in=minted.expires_in, shared=True)
        self._save_audit({"at": self._wall(), "outcome": "minted", "reason": reason, **self._identity()}, True)
        if self._on_mint:
            self._on_mint("minted")

    def _record_failure(self, kind: str, reason: str) -> None:
        duration = self._backoffs[kind]
        until = self._wall() + duration
        self._store.set(
            BACKOFF_KEY,
            json.dumps({"until": until, "kind": kind, "reason": reason, "since": self._wall()}).encode(),
            ttl=duration,
        )
        self._audit("failure", kind=kind, reason=reason, backoff_seconds=duration, shared=True)
        if kind == "invalid_credentials":
            log.error(
                "Zoho refused the OAuth credentials (%s): check %s; retrying in %ds",
                reason,
                CREDENTIAL_HINTS.get(reason, "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN and ZOHO_DC"),
                int(duration),
            )
        self._save_audit({"at": self._wall(), "outcome": kind, "reason": reason, **self._identity()}, False)
        if self._on_mint:
            self._on_mint(kind)

    def status(self) -> dict[str, Any]:
        """What an operator may see: never the token itself. Raises StoreUnavailable if the store is down."""
        from datetime import datetime

        def iso(ts: float | None) -> str | None:
            return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None

        now = self._wall()
        stored = self._read_stored()
        held_info: dict[str, Any] = {"token_held": False, "expires_at": None, "expires_in": None, "fingerprint": None}
        if stored is not None:
            held_info.update(
                token_held=True,
                expires_at=iso(stored.expires_at),
                expires_in=max(0, int(stored.expires_at - now)),
                minted_at=iso(stored.minted_at),
                encrypted=stored.encrypted,
                fingerprint=fingerprint(stored.token),
            )
        data = self._load_audit()
        mints = [t for t in data.get("mints", []) if isinstance(t, (int, float)) and t > now - 3600]
        backoff = self._read_backoff()
        last = data.get("last") or None
        if isinstance(last, dict) and last.get("at"):
            last = {**last, "at": iso(float(last["at"]))}
        return {
            **held_info,
            "last_mint": last,
            "mints_last_hour": len(mints),
            "backoff": (
                {
                    "kind": backoff.kind,
                    "reason": backoff.reason,
                    "until": iso(backoff.until),
                    "retry_after": max(1, int(backoff.until - now + 0.999)),
                }
                if backoff
                else None
            ),
            "throttled": bool(backoff and backoff.kind == "throttled"),
        }

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, facts). Ready when a token is held or may be minted: no credential or throttle back-off
        without a valid token. Never calls Zoho."""
        facts: dict[str, Any] = {}
        held = self._held
        local_valid = held is not None and self._mono() < held.expires_at
        try:
            self._store.ping()
            facts["state"] = "ok"
            backoff = self._read_backoff()
            stored = self._read_stored()
            shared_valid = stored is not None and stored.expires_at > self._wall()
        except StoreUnavailable:
            facts["state"] = "unavailable"
            backoff = self._local_backoff if self._local_backoff and self._local_backoff.until > self._wall() else None
            shared_valid = False
        valid = local_valid or shared_valid
        facts["token"] = "valid" if valid else "absent"
        if backoff is not None:
            facts["token_backoff"] = backoff.kind
        if facts["state"] != "ok":
            # Degraded but serving is still ready while a token is held.
            return valid, facts
        if backoff is not None and not valid:
            return False, facts
        if backoff is not None and backoff.kind == "invalid_credentials":
            return False, facts
        return True, facts
