"""Polling-friendly ticket reads: the ticket service behind a short read-through cache with single-flight,
which every write through the gateway invalidates on every worker and host.

Bots poll one ticket by the hundred; Zoho rate-limits per portal. So a read is served, in order, from
this process's copy, from the shared store (every worker of the host with SQLite, every host with
Redis), or from Zoho, and only one caller per ticket and view goes to Zoho at a time: within a process
the others wait for its answer; across processes a short claim in the store makes the others wait for
the stored answer (and fetch themselves if it does not come in time). Errors are never cached.

Two views are kept apart: the seed view (``ticket:<id>``) and the full view (``full:<id>``).

Invalidation: each ticket has a generation in the shared store (``gen:<id>``, a random token replaced by
every write; absent until the first). Every copy, shared or local, records the generation it was read
under, the generation being read *before* Zoho is asked; a copy is used only while its generation is still
the ticket's. A write (:meth:`TicketCache.written`, :meth:`TicketCache.invalidate`) replaces the token
after Zoho applied it, so a copy read before, here or in any other process, is never served again: the
next read shows the write. The price is one store read per local hit (see BENCHMARKS.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from ..metrics import Metrics
from ..state.base import Store, StoreUnavailable
from ..zoho.model import FullTicket, NewTicket, Ticket
from ..zoho.service import HelpdeskService

log = logging.getLogger("zoho_gateway.cache")

#: How often a process waiting for another process's fetch looks at the store (seconds).
POLL_INTERVAL = 0.005
#: Local copies kept at most; past it the oldest half is dropped (bots poll a few hot tickets).
MAX_LOCAL = 10_000
#: A ticket's generation outlives by this much (seconds) every copy made under the one before it.
GENERATION_MARGIN = 60.0
#: The seed view's fields, which the full view contains (so a write's full view primes both).
SEED_FIELDS = tuple(Ticket.__annotations__)

T = TypeVar("T", Ticket, FullTicket)


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    """A view of a ticket and how long ago Zoho said so (seconds; for the ``Age`` header)."""

    ticket: T
    age: float


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class _Unknown:
    """The generation when the store cannot be read: it matches no copy, and nothing read under it is kept."""


UNKNOWN = _Unknown()
Generation = str | None | _Unknown


class TicketCache:
    """The ticket service with reads at most ``ttl`` seconds old; ``ttl`` 0 turns the cache off.

    ``get``/``get_full`` are the service's ``get``/``get_full`` served from the nearest fresh copy; ``create``
    is the service's ``create`` that keeps the created ticket as the first copy. All raise what the service
    raises. ``written``/``invalidate`` are for every write through the gateway.
    """

    def __init__(
        self, service: HelpdeskService, store: Store, *, ttl: float, fetch_timeout: float, metrics: Metrics
    ) -> None:
        self._service = service
        self.ttl = ttl
        self._store = store
        self._shared = store.shared_across_processes
        self._fetch_timeout = fetch_timeout
        self._metrics = metrics
        #: "<view>:<id>" -> (monotonic expiry, the view, its generation)
        self._local: dict[str, tuple[float, Any, Generation]] = {}
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, ticket_id: str) -> Cached[Ticket]:
        """The seed view from the nearest fresh copy; from Zoho only when none is fresh."""
        return cast(Cached[Ticket], self._read("ticket", ticket_id, self._service.get))

    def get_full(self, ticket_id: str) -> Cached[FullTicket]:
        """The full view from the nearest fresh copy; from Zoho only when none is fresh."""
        return cast(Cached[FullTicket], self._read("full", ticket_id, self._service.get_full))

    def create(self, ticket: NewTicket, *, ref: str | None = None) -> tuple[str, Ticket]:
        """Create ``ticket`` (see ``TicketService.create``); the created ticket serves the first polls."""
        ticket_id, created = self._service.create(ticket, ref=ref)
        # Zoho's answer is the ticket as it is now: a poll right after the create needs no upstream call.
        if self.enabled:
            generation = self._generation(ticket_id)  # None for a new id (a reset sandbox reuses them)
            if not isinstance(generation, _Unknown):
                self._keep(f"ticket:{ticket_id}", created, generation, shared=True)
        return ticket_id, created

    def invalidate(self, ticket_id: str) -> str | None:
        """Forget every copy of ``ticket_id``'s views, in every process; call it after each write to it.

        Returns the ticket's new generation (None when the cache is off or the store cannot be written: the
        other processes' copies then age out within ``ttl``, and a warning is logged).
        """
        for view in ("ticket", "full"):
            self._local.pop(f"{view}:{ticket_id}", None)
        if not self.enabled:
            return None
        token = uuid.uuid4().hex
        try:
            self._store.set(f"gen:{ticket_id}", token.encode(), ttl=self.ttl + GENERATION_MARGIN)
            if self._shared:
                self._store.delete(f"ticket:{ticket_id}")
                self._store.delete(f"full:{ticket_id}")
        except StoreUnavailable:
            log.warning(
                "shared state unavailable: other processes may serve a written ticket for up to the TTL",
                extra={"ticket_id": ticket_id},
            )
            return None
        return token

    def written(self, ticket_id: str, full: FullTicket | None = None) -> None:
        """After a write to ``ticket_id``: invalidate it, and keep ``full`` (Zoho's answer to the write, the
        ticket as it is now) as the first copy of both views, so the next read needs no upstream call."""
        generation = self.invalidate(ticket_id)
        if generation is None or full is None:
            return
        seed = cast(Ticket, {name: full[name] for name in SEED_FIELDS})  # type: ignore[literal-required]
        self._keep(f"full:{ticket_id}", full, generation, shared=True)
        self._keep(f"ticket:{ticket_id}", seed, generation, shared=True)

    def forget_local(self) -> None:
        """Drop this process's copies (tests: a reset sandbox gives its ids to new tickets)."""
        self._local.clear()

    # --- internals ------------------------------------------------------------------------------

    def _read(self, view: str, ticket_id: str, load: Callable[[str], Any]) -> Cached[Any]:
        if not self.enabled:
            return Cached(load(ticket_id), 0.0)
        key = f"{view}:{ticket_id}"
        entry = self._local.get(key)
        if entry is not None:
            remaining = entry[0] - time.monotonic()
            if remaining > 0 and self._generation(ticket_id) == entry[2]:
                self._metrics.cache.labels("hit").inc()
                return Cached(entry[1], max(0.0, self.ttl - remaining))
        return self._single_flight(key, lambda: self._from_store_or_load(key, ticket_id, load))

    def _generation(self, ticket_id: str) -> Generation:
        """The ticket's current generation (None before its first write; UNKNOWN when the store fails)."""
        try:
            raw = self._store.get(f"gen:{ticket_id}")
        except StoreUnavailable:
            return UNKNOWN
        return raw.decode() if raw is not None else None

    def _single_flight(self, key: str, fetch: Callable[[], Cached[Any]]) -> Cached[Any]:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if flight.done.wait(self._fetch_timeout + 1) and flight.error is None and flight.result is not None:
                self._metrics.cache.labels("hit").inc()
                result: Cached[Any] = flight.result
                return result
            if flight.error is not None:
                raise flight.error
            return fetch()  # the leader is stuck beyond its time-out: do not wait forever
        try:
            flight.result = fetch()
            return cast(Cached[Any], flight.result)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _from_store_or_load(self, key: str, ticket_id: str, load: Callable[[str], Any]) -> Cached[Any]:
        # Read the generation before Zoho: a write that lands after this read replaces it, so what we read
        # from Zoho (perhaps from before that write) is never served under the new generation.
        generation = self._generation(ticket_id)
        if not self._shared or isinstance(generation, _Unknown):
            self._metrics.cache.labels("miss").inc()
            value = load(ticket_id)
            if not isinstance(generation, _Unknown):
                self._keep(key, value, generation, shared=False)
            return Cached(value, 0.0)
        claim = f"fill:{key}"
        claimed = False
        try:
            found = self._get_shared(key, generation)
            if found is None:
                claimed = self._store.add(claim, b"1", ttl=self._fetch_timeout + 1)
                # Claimed: another process may have stored the view and released its claim between our
                # read and our claim, so look once more. Not claimed: another process is fetching; wait.
                found = self._get_shared(key, generation) if claimed else self._wait_for_other_process(key, generation)
            if found is not None:
                self._metrics.cache.labels("hit").inc()
                remaining, value = found
                self._keep(key, value, generation, shared=False, expires_in=remaining)
                return Cached(value, max(0.0, self.ttl - remaining))
        except StoreUnavailable:
            pass  # the cache is an optimisation: without the store, read from Zoho
        self._metrics.cache.labels("miss").inc()
        try:
            value = load(ticket_id)
            # Store before releasing the claim: a waiter that sees the claim gone must find the view.
            self._keep(key, value, generation, shared=True)
        finally:
            if claimed:
                try:
                    self._store.delete(claim)
                except StoreUnavailable:
                    pass
        return Cached(value, 0.0)

    def _get_shared(self, key: str, generation: Generation) -> tuple[float, Any] | None:
        raw = self._store.get(key)
        if raw is None:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            remaining = float(data["exp"]) - time.time()
            if remaining <= 0 or data.get("gen") != generation:
                return None
            return remaining, data["ticket"]
        except (ValueError, KeyError, TypeError):
            return None

    def _wait_for_other_process(self, key: str, generation: Generation) -> tuple[float, Any] | None:
        deadline = time.monotonic() + self._fetch_timeout
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            found = self._get_shared(key, generation)
            if found is not None:
                return found
            if self._store.get(f"fill:{key}") is None:
                return self._get_shared(key, generation)  # the other fetch ended (maybe in an error): our turn
        return None

    def _keep(
        self, key: str, value: Any, generation: Generation, *, shared: bool, expires_in: float | None = None
    ) -> None:
        ttl = self.ttl if expires_in is None else min(self.ttl, expires_in)
        if len(self._local) >= MAX_LOCAL:
            with self._lock:
                for old in list(self._local)[: MAX_LOCAL // 2]:
                    self._local.pop(old, None)
        self._local[key] = (time.monotonic() + ttl, value, generation)
        if shared and self._shared:
            record = json.dumps({"exp": time.time() + ttl, "gen": generation, "ticket": value}).encode()
            try:
                self._store.set(key, record, ttl=ttl)
            except StoreUnavailable:
                log.warning("shared cache unavailable; ticket kept in this process only")
