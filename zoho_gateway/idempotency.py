"""Idempotency-Key for creates: one ticket per (client, key), the first answer replayed to every repeat.

Records live in the shared store, so every worker and host sees them:

- ``add`` claims the key atomically (state ``in_flight``) with a fingerprint of the body;
- the outcome replaces the claim for ``GATEWAY_IDEMPOTENCY_TTL`` (state ``done``): the status and body
  of a created ticket, of an answer Zoho gave, or of an unknown outcome (the POST left, no answer came);
- an error that proves nothing was created (validation, Zoho refusing a value, Zoho unreachable
  before sending, no token) releases the claim so the client may retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from .errors import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidHeader
from .state.base import Store

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def body_fingerprint(payload: Any) -> str:
    """A digest of the JSON body that ignores key order and white space."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidHeader(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")


class IdempotencyStore:
    """Claims, completes and replays keyed creates. All methods may raise StoreUnavailable."""

    def __init__(self, store: Store, *, ttl: float, in_flight_ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._in_flight_ttl = in_flight_ttl

    @staticmethod
    def _record_key(client: str, key: str) -> str:
        # Hash the key: clients choose it, so it must not shape our store's key space.
        return f"idem:{client}:{hashlib.sha256(key.encode()).hexdigest()}"

    def begin(self, client: str, key: str, fingerprint: str) -> Replay | None:
        """Claim the key (None: go ahead and create) or return the stored answer to replay.

        Raises IdempotencyKeyReused (422) for a different body and IdempotencyKeyInFlight (409) while
        the first request is still running.
        """
        record_key = self._record_key(client, key)
        claim = json.dumps({"state": "in_flight", "fp": fingerprint, "since": time.time()}).encode()
        for _ in range(3):
            if self._store.add(record_key, claim, ttl=self._in_flight_ttl):
                return None
            raw = self._store.get(record_key)
            if raw is None:
                continue  # released or lapsed between our add and get: claim again
            record = json.loads(raw)
            if record.get("fp") != fingerprint:
                raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body")
            if record.get("state") == "in_flight":
                raise IdempotencyKeyInFlight(
                    "A request with this Idempotency-Key is still in progress; retry shortly", retry_after=1
                )
            return Replay(int(record["status"]), record["body"], dict(record.get("headers") or {}))
        raise IdempotencyKeyInFlight("This Idempotency-Key is changing state; retry shortly", retry_after=1)

    def complete(self, client: str, key: str, fingerprint: str, replay: Replay) -> None:
        record = {
            "state": "done",
            "fp": fingerprint,
            "status": replay.status,
            "body": replay.body,
            "headers": replay.headers,
        }
        self._store.set(self._record_key(client, key), json.dumps(record).encode(), ttl=self._ttl)

    def release(self, client: str, key: str) -> None:
        self._store.delete(self._record_key(client, key))
