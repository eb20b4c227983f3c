"""Writes to an existing ticket (update, note, close, reopen), each at most once per Idempotency-Key, each
invalidating the ticket's cached reads in every process.

Idempotency for these writes is a small keyed replay, not the create queue of ``idempotency.py`` (that
one exists to find a create whose answer was lost; these writes name their ticket, and all but a note are
idempotent upstream anyway). A record per (client, key) lives in the shared store, separate from the
creates' records:

- ``add`` claims the key atomically (``in_flight``) with a fingerprint of the write (which operation, which
  ticket, the validated body, any ``If-Match``); a repeat while it runs is 409 ``idempotency_key_in_flight``;
  the same key for another write is 422 ``idempotency_key_reused``;
- a success is kept ``ttl`` seconds and replayed to every repeat (a note is never added twice);
- a failure that proves nothing or only something repeatable happened releases the key (the client may
  retry with it); a note whose sending got no answer (``ZohoOutcomeUnknown``) is kept and replayed, because
  sending it again could add it twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ..errors import (
    GatewayError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    PreconditionFailed,
    StateUnavailable,
    ZohoOutcomeUnknown,
)
from ..state.base import Store, StoreUnavailable
from ..zoho.model import FullTicket, TicketChanges
from ..zoho.service import HelpdeskService
from .cache import TicketCache
from .outbox import failure_of, failure_record

log = logging.getLogger("zoho_gateway.writes")

R = TypeVar("R")

#: Seconds a repeat that meets a write in flight is told to wait.
IN_FLIGHT_RETRY = 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """A write as its client sees it: the answer's body (``value``) or the ``failure`` to raise; ``replayed``
    when it is the first write's outcome given again."""

    value: Any = None
    failure: GatewayError | None = None
    replayed: bool = False

    def value_or_raise(self) -> Any:
        if self.failure is not None:
            raise self.failure
        return self.value


def _fingerprint(write: Mapping[str, Any]) -> str:
    canonical = json.dumps(write, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class KeyedWrites:
    """``run``: a write at most once per (client, Idempotency-Key); without a key, just the write."""

    def __init__(self, store: Store, *, ttl: float, in_flight_ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._in_flight_ttl = in_flight_ttl

    def run(
        self,
        write: Mapping[str, Any],
        action: Callable[[], Any],
        *,
        client: str,
        key: str | None,
        keep_failure: Callable[[GatewayError], bool] = lambda _: False,
    ) -> Outcome:
        """``action()``'s JSON-able result, or the first outcome of the same ``write`` under ``key``.

        Raises IdempotencyKeyInFlight, IdempotencyKeyReused, StateUnavailable (the records cannot be read),
        and what ``action`` raises (kept for repeats when ``keep_failure`` says so).
        """
        if key is None:
            return Outcome(action())
        record_key = f"write:{client}:{hashlib.sha256(key.encode()).hexdigest()}"
        digest = _fingerprint(write)
        try:
            claimed = self._store.add(
                record_key, json.dumps({"state": "in_flight", "fp": digest}).encode(), ttl=self._in_flight_ttl
            )
            raw = None if claimed else self._store.get(record_key)
        except StoreUnavailable:
            raise StateUnavailable("Idempotency records cannot be read; retry shortly", retry_after=5) from None
        if not claimed:
            return self._replay(raw, digest)
        try:
            value = action()
        except GatewayError as exc:
            self._settle(
                record_key,
                {"state": "failed", "fp": digest, "failure": failure_record(exc)} if keep_failure(exc) else None,
            )
            raise
        except BaseException:
            self._settle(record_key, None)
            raise
        self._settle(record_key, {"state": "done", "fp": digest, "value": value})
        return Outcome(value)

    def _replay(self, raw: bytes | None, digest: str) -> Outcome:
        if raw is None:  # released between our claim and our read: the first write failed; retry
            raise IdempotencyKeyInFlight(retry_after=IN_FLIGHT_RETRY)
        record: dict[str, Any] = json.loads(raw)
        if record.get("fp") != digest:
            raise IdempotencyKeyReused("This Idempotency-Key was used for another write; use a new key")
        if record.get("state") == "done":
            return Outcome(record.get("value"), replayed=True)
        if record.get("state") == "failed":
            return Outcome(failure=failure_of(record["failure"]), replayed=True)
        raise IdempotencyKeyInFlight(retry_after=IN_FLIGHT_RETRY)

    def _settle(self, record_key: str, record: dict[str, Any] | None) -> None:
        """Keep ``record`` as the key's outcome, or (None) release the key."""
        try:
            if record is None:
                self._store.delete(record_key)
            else:
                self._store.set(record_key, json.dumps(record).encode(), ttl=self._ttl)
        except StoreUnavailable:
            # The write is done (or failed) either way; a repeat then meets the in-flight claim until it expires.
            log.warning("idempotency record of a write not stored: shared state unavailable")


class TicketWrites:
    """Update, note, close and reopen through the helpdesk service; each invalidates the ticket's cached reads
    (primed with Zoho's answer when the write returns the ticket), whether the write succeeded or not."""

    def __init__(self, service: HelpdeskService, cache: TicketCache, keyed: KeyedWrites) -> None:
        self._service = service
        self._cache = cache
        self._keyed = keyed

    def update(
        self,
        ticket_id: str,
        changes: TicketChanges,
        *,
        check: Callable[[FullTicket], None] | None = None,
        precondition: str | None = None,
        client: str,
        key: str | None,
    ) -> Outcome:
        """Apply ``changes``; the full view after them. ``check`` (raising PreconditionFailed) is run on the
        ticket as Zoho holds it now, read just before the update; ``precondition`` names it for the key's
        fingerprint. The read-compare-update is not atomic in Zoho: a change landing in between is not seen."""

        def action() -> FullTicket:
            if check is not None:
                current = self._service.get_full(ticket_id)
                try:
                    check(current)
                except PreconditionFailed:
                    self._cache.written(ticket_id, current)  # the client will read again: serve what Zoho holds
                    raise
            return self._written(ticket_id, lambda: self._service.update(ticket_id, changes))

        write = {"op": "update", "ticket_id": ticket_id, "changes": changes, "if_match": precondition}
        return self._keyed.run(write, action, client=client, key=key)

    def add_note(self, ticket_id: str, text: str, *, show_to_requester: bool, client: str, key: str | None) -> Outcome:
        """Add a note; ``{"note_id"}``. With a key, never a second note for a repeat, also when the first
        got no answer (its ZohoOutcomeUnknown is replayed)."""

        def action() -> dict[str, str]:
            note_id = self._written(
                ticket_id, lambda: self._service.add_note(ticket_id, text, show_to_requester=show_to_requester)
            )
            return {"note_id": note_id}

        write = {"op": "note", "ticket_id": ticket_id, "text": text, "show_to_requester": show_to_requester}
        return self._keyed.run(
            write, action, client=client, key=key, keep_failure=lambda exc: isinstance(exc, ZohoOutcomeUnknown)
        )

    def close(
        self, ticket_id: str, *, comments: str | None, resolution: str | None, client: str, key: str | None
    ) -> Outcome:
        """Close (closing a closed ticket is a success); the full view after it."""
        write = {"op": "close", "ticket_id": ticket_id, "comments": comments, "resolution": resolution}
        return self._keyed.run(
            write,
            lambda: self._written(
                ticket_id, lambda: self._service.close(ticket_id, comments=comments, resolution=resolution)
            ),
            client=client,
            key=key,
        )

    def reopen(self, ticket_id: str, *, client: str, key: str | None) -> Outcome:
        """Reopen; the full view after it."""
        write = {"op": "reopen", "ticket_id": ticket_id}
        return self._keyed.run(
            write, lambda: self._written(ticket_id, lambda: self._service.reopen(ticket_id)), client=client, key=key
        )

    def _written(self, ticket_id: str, call: Callable[[], R]) -> R:
        """``call()``, then the ticket's cached reads invalidated (also after a failure: it may have applied);
        a full view that ``call`` returns becomes the first copy of the ticket's views."""
        try:
            result = call()
        except BaseException:
            self._cache.invalidate(ticket_id)
            raise
        self._cache.written(ticket_id, cast(FullTicket, result) if isinstance(result, dict) else None)
        return result
