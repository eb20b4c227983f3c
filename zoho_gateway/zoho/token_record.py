"""The shared store's token record: one codec for the token every worker and host reads and writes."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

from ..state.base import Store
from ..state.sealing import Sealer, SealError

log = logging.getLogger("zoho_gateway.tokens")

TOKEN_KEY = "token:current"


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, safe for logs and status pages."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


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


def load_stored_token(store: Store, sealer: Sealer) -> StoredToken | None:
    """Like ``read_stored_token``, but a record this process's key cannot open counts as absent (one error line).

    The start-up check refuses a wrong key; a record sealed by a key rotated in later is replaced by the next mint.
    Raises StoreUnavailable.
    """
    try:
        return read_stored_token(store, sealer)
    except SealError as exc:
        log.error("stored token cannot be read: %s; it will be replaced", exc)
        return None


def save_stored_token(store: Store, sealer: Sealer, stored: StoredToken) -> None:
    """Share ``stored`` with every process; the record lapses with the token. Raises StoreUnavailable."""
    store.set(TOKEN_KEY, stored.encode(sealer), ttl=max(stored.lifetime, 1.0))


def delete_stored_token(store: Store) -> None:
    """Drop the shared token (the next caller mints). Raises StoreUnavailable."""
    store.delete(TOKEN_KEY)
