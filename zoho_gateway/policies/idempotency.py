"""Idempotency-Key for creates: one ticket per (client, key), the first outcome given again to every repeat.

Records live in the shared store, so every worker and host sees them:

- ``add`` claims the key atomically (state ``in_flight``) with a fingerprint of the ticket;
- the outcome replaces the claim for ``GATEWAY_IDEMPOTENCY_TTL`` (state ``done``): the id of the created
  ticket, or the failure of a create that may have created it (sent, no usable answer);
- a failure that proves nothing was created (Zoho refusing a value, Zoho unreachable before sending,
  no token) releases the claim so the client may retry with the same key.

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
from typing import Any, Protocol

from ..errors import (
    GatewayError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    StateUnavailable,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
)
from ..metrics import Metrics
from ..state.base import Store, StoreUnavailable
from ..zoho.model import NewTicket, Ticket

log = logging.getLogger("zoho_gateway.idempotency")

#: Idempotency-Key values longer than this are refused (they are hashed, so only to bound client input).
MAX_KEY_LENGTH = 255


class TicketCreator(Protocol):
    """What this policy wraps: the ticket service, or the cache in front of it."""

    def create(self, ticket: NewTicket) -> tuple[str, Ticket]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A create as the client sees it: the new ticket's id or the failure, and whether it is a repeat's replay."""

    ticket_id: str | None
    failure: GatewayError | None = None
    replayed: bool = False

    def ticket_id_or_raise(self) -> str:
        """The created ticket's id; raises the replayed failure instead when the first attempt failed."""
        if self.failure is not None:
            raise self.failure
        assert self.ticket_id is not None  # an Outcome holds one of the two
        return self.ticket_id


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
    """``create``: the wrapped ``create``, at most once per (client, Idempotency-Key)."""

    def __init__(
        self, tickets: TicketCreator, store: Store, *, ttl: float, in_flight_ttl: float, metrics: Metrics
    ) -> None:
        self._tickets = tickets
        self._store = store
        self._ttl = ttl
        self._in_flight_ttl = in_flight_ttl
        self._metrics = metrics

    def create(self, ticket: NewTicket, *, client: str, key: str | None) -> Outcome:
        """Create ``ticket``; with a ``key`` (checked by the caller), at most one ticket per (client, key).

        A repeat gets the first attempt's outcome with ``replayed`` set: the same ticket id, or the same
        failure (a create that may have created, so the key is spent). Raises what the wrapped ``create``
        raises (after spending or releasing the key, as the module docstring says), IdempotencyKeyReused
        (422) for the key with another ticket, IdempotencyKeyInFlight (409) while the first attempt runs,
        and StateUnavailable (503) when the records cannot be read: without them one ticket per key cannot
        be promised.
        """
        if key is None:
            return Outcome(self._tickets.create(ticket)[0])
        digest = fingerprint(ticket)
        try:
            earlier = self._claim(client, key, digest)
        except StoreUnavailable:
            raise StateUnavailable("Idempotency records are unavailable; retry shortly", retry_after=5) from None
        if earlier is not None:
            self._metrics.replays.inc()
            return earlier
        try:
            ticket_id, _ = self._tickets.create(ticket)
        except (ZohoOutcomeUnknown, ZohoBadResponse) as exc:
            # Zoho may have created the ticket: the key is spent, and every repeat gets this same failure.
            self._complete(client, key, {"fp": digest, "failure": _failure_record(exc)})
            raise
        except GatewayError:
            # Nothing was created (refused value, Zoho unreachable before sending, no token): free the key.
            try:
                self._store.delete(record_key(client, key))
            except StoreUnavailable:
                pass  # the claim lapses by itself after the in-flight TTL
            raise
        self._complete(client, key, {"fp": digest, "ticket_id": ticket_id})
        return Outcome(ticket_id)

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
            return _outcome_of(record)
        raise IdempotencyKeyInFlight("This Idempotency-Key is changing state; retry shortly", retry_after=1)

    def _complete(self, client: str, key: str, record: dict[str, Any]) -> None:
        try:
            self._store.set(record_key(client, key), json.dumps({"state": "done", **record}).encode(), ttl=self._ttl)
        except StoreUnavailable:
            # The answer stands (the ticket may exist). Repeats get 409 until the claim lapses; after that a
            # repeat could create a second ticket, which is why an operator is told.
            log.error("idempotency record could not be stored; the key's claim will lapse", extra={"client": client})


def _failure_record(error: GatewayError) -> dict[str, Any]:
    return {
        "status": error.status,
        "code": error.code,
        "summary": error.summary,
        "message": error.message,
        "retry_after": error.retry_after,
        "fields": error.fields,
        "extra": error.extra,
    }


def _error_class(code: str) -> type[GatewayError] | None:
    """The GatewayError subclass whose stable code is ``code``."""
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def _failure_of(record: Mapping[str, Any]) -> GatewayError:
    cls = _error_class(str(record["code"])) or GatewayError
    error = cls(
        str(record["message"]),
        retry_after=record.get("retry_after"),
        fields=record.get("fields"),
        **dict(record.get("extra") or {}),
    )
    # The stored facts win over the class's: the replay repeats what the client was first told.
    error.status, error.code, error.summary = int(record["status"]), str(record["code"]), str(record["summary"])
    return error


def _outcome_of(record: Mapping[str, Any]) -> Outcome:
    """The outcome a ``done`` record holds; also reads the records of earlier releases (an HTTP answer)."""
    if "ticket_id" in record:
        return Outcome(str(record["ticket_id"]), replayed=True)
    if "failure" in record:
        return Outcome(None, _failure_of(record["failure"]), replayed=True)
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
    return Outcome(None, _failure_of(failure), replayed=True)
