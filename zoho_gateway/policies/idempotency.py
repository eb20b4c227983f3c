"""Idempotency-Key for creates: one ticket per (client, key), the first outcome given again to every repeat.

Records live in the shared store, so every worker and host sees them:

- ``add`` claims the key atomically (state ``in_flight``) with a fingerprint of the ticket;
- the outcome replaces the claim (state ``done``): the create's ``request_ref`` (its outbox item), with
  the ticket id once known. A repeat follows the item, so it gets 201 with the one ticket's id once it is
  known, 202 while the outcome is pending, and the failure once it failed: never a second ticket;
- a failure that proves nothing was created (Zoho refusing a value, Zoho unavailable without
  ``Prefer``) releases the claim so the client may retry with the same key.

Records hold outcomes, not HTTP answers: a repeat is answered by the same code that answers a first
request, so a replayed failure is rendered exactly like a live one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    GatewayError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    StateUnavailable,
)
from ..metrics import Metrics
from ..state.base import Store, StoreUnavailable
from ..zoho.model import NewTicket
from .creates import Accepted, QueuedCreates
from .outbox import Item, Outbox, failure_of

log = logging.getLogger("zoho_gateway.idempotency")

#: Idempotency-Key values longer than this are refused (they are hashed, so only to bound client input).
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Outcome:
    """A create as the client sees it: the new ticket's id, the failure, or a pending reference (202).

    ``replayed``: a repeat's answer. ``ref``/``status``: the outbox item and its state.
    """

    ticket_id: str | None
    failure: GatewayError | None = None
    replayed: bool = False
    ref: str | None = None
    status: str | None = None
    #: the create was answered under ``Prefer: respond-async`` (for ``Preference-Applied``)
    respond_async: bool = False

    @property
    def pending(self) -> bool:
        """Not settled as far as the client can tell: answered 202 with ``ref``."""
        return self.ticket_id is None and self.failure is None

    def ticket_id_or_raise(self) -> str:
        """The created ticket's id; raises the failure instead. Only for an outcome that is not pending."""
        if self.failure is not None:
            raise self.failure
        assert self.ticket_id is not None  # the caller checked ``pending``
        return self.ticket_id


def outcome_of_item(item: Item, *, replayed: bool = False) -> Outcome:
    """What a create's outbox item tells its client now."""
    if item.state == "created" and item.zoho_ticket_id is not None:
        return Outcome(item.zoho_ticket_id, replayed=replayed, ref=item.ref, status=item.state)
    if item.state == "failed" and item.failure is not None:
        return Outcome(None, failure_of(item.failure), replayed=replayed, ref=item.ref, status=item.state)
    return Outcome(None, replayed=replayed, ref=item.ref, status=item.state, respond_async=item.respond_async)


def key_is_valid(key: str) -> bool:
    """1 to MAX_KEY_LENGTH printable characters."""
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


def fingerprint(ticket: Mapping[str, Any]) -> str:
    """A digest of the ticket that ignores key order and absent optional fields.

    Computed on the validated ticket, so two spellings of one ticket (``"High"`` and ``{"name": "High"}``)
    are the same request. For a body of plain strings (no lookups, no nulls) it equals the digest of the
    JSON body that earlier releases stored, so their records keep matching across the upgrade.
    """
    present = {name: value for name, value in ticket.items() if value is not None}
    canonical = json.dumps(present, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_key(client: str, key: str) -> str:
    """The store key of (client, Idempotency-Key)."""
    # Hash the key: clients choose it, so it must not shape our store's key space.
    return f"idem:{client}:{hashlib.sha256(key.encode()).hexdigest()}"


class IdempotentCreates:
    """``create``: a create through the outbox, at most once per (client, Idempotency-Key).

    ``ttl`` keeps a settled outcome; ``pending_ttl`` keeps the record of a create still pending when it was
    answered (at least ``ttl`` past the deliverers' maximum age, so that it outlives the item's settling).
    """

    def __init__(
        self,
        creates: QueuedCreates,
        outbox: Outbox,
        store: Store,
        *,
        ttl: float,
        in_flight_ttl: float,
        pending_ttl: float,
        metrics: Metrics,
    ) -> None:
        self._creates = creates
        self._outbox = outbox
        self._store = store
        self._ttl = ttl
        self._in_flight_ttl = in_flight_ttl
        self._pending_ttl = pending_ttl
        self._metrics = metrics

    def create(
        self,
        ticket: NewTicket,
        *,
        client: str,
        key: str | None,
        request_id: str = "-",
        respond_async: bool = False,
        wait: float = 5.0,
    ) -> Outcome:
        """Create ``ticket``; with a ``key`` (checked by the caller), at most one ticket per (client, key).

        The outcome is the ticket id, the failure to answer with, or a pending reference (see
        ``QueuedCreates``). A repeat follows the first create's item, with ``replayed`` set. Raises
        IdempotencyKeyReused (422) for the key with another ticket, IdempotencyKeyInFlight (409) while the
        first attempt runs, and StateUnavailable (503) when the records or the outbox cannot be read:
        without them one ticket per key cannot be promised.
        """
        if key is None:
            return self._outcome(
                self._creates.create(
                    ticket,
                    client=client,
                    request_id=request_id,
                    idempotency_key=None,
                    respond_async=respond_async,
                    wait=wait,
                )
            )
        digest = fingerprint(ticket)
        try:
            earlier = self._claim(client, key, digest)
        except StoreUnavailable:
            raise StateUnavailable("Idempotency records are unavailable; retry shortly", retry_after=5) from None
        if earlier is not None:
            self._metrics.replays.inc()
            return earlier
        try:
            accepted = self._creates.create(
                ticket,
                client=client,
                request_id=request_id,
                idempotency_key=key,
                respond_async=respond_async,
                wait=wait,
            )
        except StateUnavailable:
            self._release(client, key)  # nothing was sent (or it is settled later under its own reference)
            raise
        item = accepted.item
        assert item is not None  # only an unkeyed create goes direct (without an item)
        if accepted.failure is not None:
            # Nothing was created (refused value, Zoho unavailable without Prefer): free the key.
            self._release(client, key)
        elif item.state == "created":
            self._complete(client, key, {"fp": digest, "ref": item.ref, "ticket_id": item.zoho_ticket_id}, self._ttl)
        else:
            self._complete(client, key, {"fp": digest, "ref": item.ref}, self._pending_ttl)
        return self._outcome(accepted)

    @staticmethod
    def _outcome(accepted: Accepted) -> Outcome:
        if accepted.item is None:
            assert accepted.ticket_id is not None  # a direct create raises its failure
            return Outcome(accepted.ticket_id)
        if accepted.failure is not None:
            return Outcome(None, accepted.failure, ref=accepted.item.ref, status=accepted.item.state)
        return outcome_of_item(accepted.item)

    def _release(self, client: str, key: str) -> None:
        try:
            self._store.delete(record_key(client, key))
        except StoreUnavailable:
            pass  # the claim lapses by itself after the in-flight TTL

    def _claim(self, client: str, key: str, digest: str) -> Outcome | None:
        """Claim the key (None: go ahead and create) or return the stored outcome to replay."""
        store_key = record_key(client, key)
        claim = json.dumps({"state": "in_flight", "fp": digest, "since": time.time()}).encode()
        for _ in range(3):
            if self._store.add(store_key, claim, ttl=self._in_flight_ttl):
                return None
            raw = self._store.get(store_key)
            if raw is None:
                continue  # released or lapsed between our add and get: claim again
            record = json.loads(raw)
            if record.get("fp") != digest:
                raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body")
            if record.get("state") == "in_flight":
                raise IdempotencyKeyInFlight(
                    "A request with this Idempotency-Key is still in progress; retry shortly", retry_after=1
                )
            return self._replay(record)
        raise IdempotencyKeyInFlight("This Idempotency-Key is changing state; retry shortly", retry_after=1)

    def _complete(self, client: str, key: str, record: dict[str, Any], ttl: float) -> None:
        try:
            self._store.set(record_key(client, key), json.dumps({"state": "done", **record}).encode(), ttl=ttl)
        except StoreUnavailable:
            # The answer stands (the ticket may exist). Repeats get 409 until the claim lapses; after that a
            # repeat could create a second ticket, which is why an operator is told.
            log.error("idempotency record could not be stored; the key's claim will lapse", extra={"client": client})

    def _replay(self, record: Mapping[str, Any]) -> Outcome:
        """The outcome a ``done`` record holds: its outbox item's, while the item is pending or failed."""
        if record.get("ticket_id"):
            return Outcome(str(record["ticket_id"]), replayed=True, ref=record.get("ref"), status="created")
        if "ref" in record:
            item = self._outbox.get(str(record["ref"]))
            if item is None:
                return Outcome(
                    None, GatewayError("The outcome of this Idempotency-Key's create was lost"), replayed=True
                )
            return outcome_of_item(item, replayed=True)
        return _outcome_of(record)


def _outcome_of(record: Mapping[str, Any]) -> Outcome:
    """The outcome a ``done`` record of an earlier release holds: a failure, or an HTTP answer."""
    if "failure" in record:
        return Outcome(None, failure_of(record["failure"]), replayed=True)
    status, body = int(record["status"]), record["body"]
    if status == 201:
        return Outcome(str(body["zoho_ticket_id"]), replayed=True)
    details = {k: v for k, v in body["details"].items() if k != "request_id"}
    failure = {
        "status": status,
        "code": details.pop("code"),
        "summary": body["error"],
        "message": details.pop("message"),
        "retry_after": details.pop("retry_after", None),
        "fields": details.pop("fields", None),
        "extra": details,
    }
    return Outcome(None, failure_of(failure), replayed=True)
