"""What operators and load balancers see of the token: ``/token/status`` and ``/readyz``. Never the token itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..state.base import Store, StoreUnavailable
from ..state.sealing import Sealer
from .token_audit import MintAudit
from .token_backoff import Backoff, read_backoff
from .token_record import fingerprint, load_stored_token


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


def describe(store: Store, sealer: Sealer, audit: MintAudit, now: float) -> dict[str, Any]:
    """The shared token's state at ``now`` (wall clock), its last mint and any back-off. Raises StoreUnavailable."""
    stored = load_stored_token(store, sealer)
    held: dict[str, Any] = {"token_held": False, "expires_at": None, "expires_in": None, "fingerprint": None}
    if stored is not None:
        held.update(
            token_held=True,
            expires_at=_iso(stored.expires_at),
            expires_in=max(0, int(stored.expires_at - now)),
            minted_at=_iso(stored.minted_at),
            encrypted=stored.encrypted,
            fingerprint=fingerprint(stored.token),
        )
    last, mints = audit.history()
    if last is not None and last.get("at"):
        last = {**last, "at": _iso(float(last["at"]))}
    backoff = read_backoff(store, now)
    return {
        **held,
        "last_mint": last,
        "mints_last_hour": mints,
        "backoff": (
            {
                "kind": backoff.kind,
                "reason": backoff.reason,
                "until": _iso(backoff.until),
                "retry_after": backoff.retry_after(now),
            }
            if backoff
            else None
        ),
        "throttled": bool(backoff and backoff.kind == "throttled"),
    }


def readiness(
    store: Store, sealer: Sealer, *, now: float, held_valid: bool, local_backoff: Backoff | None
) -> tuple[bool, dict[str, Any]]:
    """(ready, facts). Ready when a token is held or may be minted: no back-off without a valid token, and no
    refused credentials. Without the store, ready while this process holds a valid token (``held_valid``);
    ``local_backoff`` is this process's own back-off then. Never calls Zoho."""
    facts: dict[str, Any] = {}
    try:
        store.ping()
        facts["state"] = "ok"
        backoff = read_backoff(store, now)
        stored = load_stored_token(store, sealer)
        shared_valid = stored is not None and stored.expires_at > now
    except StoreUnavailable:
        facts["state"] = "unavailable"
        backoff = local_backoff if local_backoff is not None and local_backoff.until > now else None
        shared_valid = False
    valid = held_valid or shared_valid
    facts["token"] = "valid" if valid else "absent"
    if backoff is not None:
        facts["token_backoff"] = backoff.kind
    if facts["state"] != "ok":
        return valid, facts  # degraded but still serving while a token is held
    if backoff is not None and not valid:
        return False, facts
    if backoff is not None and backoff.kind == "invalid_credentials":
        return False, facts
    return True, facts
