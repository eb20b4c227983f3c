"""Polling-friendly ticket reads: the ticket service behind a short read-through cache with single-flight.

Bots poll one ticket by the hundred; Zoho rate-limits per portal. So a read is served, in order, from
this process's copy, from the shared store (every worker of the host with SQLite, every host with
Redis), or from Zoho, and only one caller per ticket goes to Zoho at a time: within a process the
others wait for its answer; across processes a short claim in the store makes the others wait for
the stored answer (and fetch themselves if it does not come in time). Errors are never cached.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from ..metrics import Metrics
from ..state.base import Store, StoreUnavailable
from ..zoho.model import NewTicket, Ticket
from ..zoho.tickets import TicketService

log = logging.getLogger("zoho_gateway.cache")

#: How often a process waiting for another process's fetch looks at the store (seconds).
POLL_INTERVAL = 0.005
#: Local copies kept at most; past it the oldest half is dropped (bots poll a few hot tickets).
MAX_LOCAL = 10_000


@dataclass(frozen=True, slots=True)
class Cached:
    """A ticket and how long ago Zoho said so (seconds; for the ``Age`` header)."""

    ticket: Ticket
    age: float


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: Cached | None = None
    error: BaseException | None = None


class TicketCache:
    """The ticket service with reads at most ``ttl`` seconds old; ``ttl`` 0 turns the cache off.

    ``get`` is the service's ``get`` served from the nearest fresh copy; ``create`` is the service's
    ``create`` that keeps the created ticket as the first copy. Both raise what the service raises.
    """

    def __init__(
        self, service: TicketService, store: Store, *, ttl: float, fetch_timeout: float, metrics: Metrics
    ) -> None:
        self._service = service
        self.ttl = ttl
        self._store = store
        self._shared = store.shared_across_processes
        self._fetch_timeout = fetch_timeout
        self._metrics = metrics
        self._local: dict[str, tuple[float, Ticket]] = {}
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, ticket_id: str) -> Cached:
        """The ticket from the nearest fresh copy; from Zoho only when none is fresh (errors are never kept)."""
        load = partial(self._service.get, ticket_id)
        if not self.enabled:
            return Cached(load(), 0.0)
        entry = self._local.get(ticket_id)
        if entry is not None:
            remaining = entry[0] - time.monotonic()
            if remaining > 0:
                self._metrics.cache.labels("hit").inc()
                return Cached(entry[1], max(0.0, self.ttl - remaining))
        return self._single_flight(ticket_id, lambda: self._from_store_or_load(ticket_id, load))

    def create(self, ticket: NewTicket, *, ref: str | None = None) -> tuple[str, Ticket]:
        """Create ``ticket`` (see ``TicketService.create``); the created ticket serves the first polls."""
        ticket_id, created = self._service.create(ticket, ref=ref)
        # Zoho's answer is the ticket as it is now: a poll right after the create needs no upstream call.
        if self.enabled:
            self._keep(ticket_id, created, shared=True)
        return ticket_id, created

    # --- internals ------------------------------------------------------------------------------

    def _single_flight(self, key: str, fetch: Callable[[], Cached]) -> Cached:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if flight.done.wait(self._fetch_timeout + 1) and flight.error is None and flight.result is not None:
                self._metrics.cache.labels("hit").inc()
                return flight.result
            if flight.error is not None:
                raise flight.error
            return fetch()  # the leader is stuck beyond its time-out: do not wait forever
        try:
            flight.result = fetch()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _from_store_or_load(self, ticket_id: str, load: Callable[[], Ticket]) -> Cached:
        if not self._shared:
            self._metrics.cache.labels("miss").inc()
            ticket = load()
            self._keep(ticket_id, ticket, shared=False)
            return Cached(ticket, 0.0)
        key = f"ticket:{ticket_id}"
        claimed = False
        try:
            found = self._get_shared(key)
            if found is None:
                claimed = self._store.add(f"fill:{ticket_id}", b"1", ttl=self._fetch_timeout + 1)
                # Claimed: another process may have stored the ticket and released its claim between our
                # read and our claim, so look once more. Not claimed: another process is fetching; wait.
                found = self._get_shared(key) if claimed else self._wait_for_other_process(key)
            if found is not None:
                self._metrics.cache.labels("hit").inc()
                remaining, ticket = found
                self._keep(ticket_id, ticket, shared=False, expires_in=remaining)
                return Cached(ticket, max(0.0, self.ttl - remaining))
        except StoreUnavailable:
            pass  # the cache is an optimisation: without the store, read from Zoho
        self._metrics.cache.labels("miss").inc()
        try:
            ticket = load()
            # Store before releasing the claim: a waiter that sees the claim gone must find the ticket.
            self._keep(ticket_id, ticket, shared=True)
        finally:
            if claimed:
                try:
                    self._store.delete(f"fill:{ticket_id}")
                except StoreUnavailable:
                    pass
        return Cached(ticket, 0.0)

    def _get_shared(self, key: str) -> tuple[float, Ticket] | None:
        raw = self._store.get(key)
        if raw is None:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            remaining = float(data["exp"]) - time.time()
            return (remaining, cast(Ticket, data["ticket"])) if remaining > 0 else None
        except (ValueError, KeyError, TypeError):
            return None

    def _wait_for_other_process(self, key: str) -> tuple[float, Ticket] | None:
        deadline = time.monotonic() + self._fetch_timeout
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            found = self._get_shared(key)
            if found is not None:
                return found
            if self._store.get(f"fill:{key.removeprefix('ticket:')}") is None:
                return self._get_shared(key)  # the other fetch ended (maybe in an error): our turn
        return None

    def _keep(self, ticket_id: str, ticket: Ticket, *, shared: bool, expires_in: float | None = None) -> None:
        ttl = self.ttl if expires_in is None else min(self.ttl, expires_in)
        if len(self._local) >= MAX_LOCAL:
            with self._lock:
                for old in list(self._local)[: MAX_LOCAL // 2]:
                    self._local.pop(old, None)
        self._local[ticket_id] = (time.monotonic() + ttl, ticket)
        if shared and self._shared:
            record = json.dumps({"exp": time.time() + ttl, "ticket": ticket}).encode()
            try:
                self._store.set(f"ticket:{ticket_id}", record, ttl=ttl)
            except StoreUnavailable:
                log.warning("shared cache unavailable; ticket kept in this process only")
