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
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import (
    GatewayError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidHeader,
    StateUnavailable,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
)
from ..state.base import Store, StoreUnavailable

log = logging.getLogger("zoho_gateway.idempotency")

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

    def run_once(
        self, client: str, key: str, fingerprint: str, create: Callable[[], dict[str, Any]]
    ) -> tuple[Replay, bool]:
        """Run ``create`` (which returns the 201 body) at most once per (client, key).

        Returns the answer and whether it is a replay. Raises what ``begin`` raises, StateUnavailable
        (503) when the records cannot be read (without them a single ticket cannot be promised), and
        whatever ``create`` raises, after recording or releasing the key as the module docstring says.
        """
        try:
            replay = self.begin(client, key, fingerprint)
        except StoreUnavailable:
            raise StateUnavailable("Idempotency records are unavailable; retry shortly", retry_after=5) from None
        if replay is not None:
            return replay, True
        try:
            body = create()
        except (ZohoOutcomeUnknown, ZohoBadResponse) as exc:
            # Zoho may have created the ticket: the key is spent, and every repeat gets this same answer.
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
            self._complete_quietly(
                client, key, fingerprint, Replay(exc.status, {"error": exc.summary, "details": exc.details()}, headers)
            )
            raise
        except GatewayError:
            # Nothing was created (refused value, Zoho unreachable before sending, no token): free the key.
            try:
                self.release(client, key)
            except StoreUnavailable:
                pass  # the claim lapses by itself after the in-flight TTL
            raise
        answer = Replay(201, body, {})
        self._complete_quietly(client, key, fingerprint, answer)
        return answer, False

    def _complete_quietly(self, client: str, key: str, fingerprint: str, answer: Replay) -> None:
        try:
            self.complete(client, key, fingerprint, answer)
        except StoreUnavailable:
            # The answer stands (the ticket may exist). Repeats get 409 until the claim lapses; after that a
            # repeat could create a second ticket, which is why an operator is told.
            log.error("idempotency record could not be stored; the key's claim will lapse", extra={"client": client})
