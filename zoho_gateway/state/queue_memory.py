"""MemoryQueue: the durable-queue interface for one process (tests and ``memory://``); nothing survives it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from zoho_gateway.state.queue import (
    Claimed,
    Clock,
    Durability,
    Outlook,
    Queue,
    QueueItem,
    QueueItemExists,
    QueueStats,
    check_cap,
    check_lease,
    check_limit,
    check_ref,
    check_update,
    new_holder,
)


@dataclass
class _Item:
    position: int
    record: bytes
    put_at: float
    due_at: float
    owner: str = ""
    lease_until: float | None = None
    claims: int = 0
    settled_at: float | None = None

    def ready_at(self) -> float:
        """The instant from which this pending item is claimable."""
        if self.owner:
            assert self.lease_until is not None
            return self.lease_until
        return self.due_at


class MemoryQueue(Queue):
    """A dict in put order behind one Condition; ``wait`` is woken by puts and releases in this process."""

    backend = "memory"
    shared_across_processes = False

    def __init__(self, clock: Clock = time.time) -> None:
        super().__init__(clock)
        self._cond = threading.Condition(threading.Lock())
        # Insertion order is put order: a ref deleted and put again goes to the end, with a new position.
        self._items: dict[str, _Item] = {}
        self._position = 0

    def put(self, ref: str, record: bytes, *, due_at: float | None = None) -> None:
        check_ref(ref)
        with self._cond:
            if ref in self._items:
                raise QueueItemExists(ref)
            now = self._clock()
            self._position += 1
            self._items[ref] = _Item(self._position, bytes(record), now, now if due_at is None else due_at)
            self._cond.notify_all()

    def claim(self, owner: str, *, lease: float, max_in_flight: int | None = None) -> Claimed | None:
        holder = new_holder(owner)
        check_lease(lease)
        check_cap(max_in_flight)
        with self._cond:
            now = self._clock()
            if max_in_flight is not None and self._in_flight(now) >= max_in_flight:
                return None
            for ref, item in self._items.items():
                if item.settled_at is None and item.ready_at() <= now:
                    lapsed = bool(item.owner)
                    item.owner, item.lease_until = holder, now + lease
                    item.claims += 1
                    return Claimed(ref, item.record, holder, item.claims, lapsed, item.put_at, item.lease_until)
        return None

    def update(
        self,
        ref: str,
        record: bytes,
        *,
        owner: str | None,
        due_at: float | None = None,
        settled: bool = False,
        lease: float | None = None,
    ) -> bool:
        check_update(owner, due_at, settled, lease)
        with self._cond:
            item = self._items.get(ref)
            if item is None or item.owner != (owner or ""):
                return False
            if item.settled_at is not None and due_at is not None:
                return False
            now = self._clock()
            item.record = bytes(record)
            if settled and item.settled_at is None:
                item.owner, item.lease_until, item.settled_at = "", None, now
                self._cond.notify_all()  # a slot under an in-flight cap is free
            elif due_at is not None:
                item.owner, item.lease_until, item.due_at = "", None, due_at
                self._cond.notify_all()
            elif lease is not None and item.owner:
                item.lease_until = now + lease
            return True

    def get(self, ref: str) -> bytes | None:
        with self._cond:
            item = self._items.get(ref)
        return None if item is None else item.record

    def delete(self, ref: str) -> bool:
        with self._cond:
            return self._items.pop(ref, None) is not None

    def list_items(self, *, pending_only: bool = False, limit: int = 100, after: int | None = None) -> list[QueueItem]:
        check_limit(limit)
        found: list[QueueItem] = []
        with self._cond:
            for ref, item in self._items.items():
                if (after is not None and item.position <= after) or (pending_only and item.settled_at is not None):
                    continue
                found.append(_public(ref, item))
                if len(found) == limit:
                    break
        return found

    def _in_flight(self, now: float) -> int:
        """Pending items under a live lease. Caller holds the lock."""
        return sum(
            1
            for item in self._items.values()
            if item.settled_at is None and item.owner and item.lease_until is not None and item.lease_until > now
        )

    def stats(self) -> QueueStats:
        with self._cond:
            pending = [item for item in self._items.values() if item.settled_at is None]
            in_flight = self._in_flight(self._clock())
        return QueueStats(len(pending), in_flight, pending[0].put_at if pending else None)

    def prune(self, settled_before: float) -> int:
        with self._cond:
            old = [
                ref
                for ref, item in self._items.items()
                if item.settled_at is not None and item.settled_at < settled_before
            ]
            for ref in old:
                del self._items[ref]
        return len(old)

    def wait(self, timeout: float, *, max_in_flight: int | None = None) -> bool:
        # The base loop, but holding the lock from the look to the sleep, so no notify falls between.
        check_cap(max_in_flight)
        give_up = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                now = self._clock()
                at = self._outlook(now).claimable_from(max_in_flight)
                if at is not None and at <= now:
                    return True
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining if at is None else min(remaining, at - now))

    def _outlook(self, now: float) -> Outlook:
        """Caller holds the lock."""
        pending = [item for item in self._items.values() if item.settled_at is None]
        live = [item.lease_until for item in pending if item.owner and item.lease_until and item.lease_until > now]
        return Outlook(min((item.ready_at() for item in pending), default=None), len(live), min(live, default=None))

    def durability(self) -> Durability:
        return {
            "backend": "memory",
            "survives_process_crash": False,
            "survives_power_cut": False,
            "survives_store_restart": False,
            "loss_window": "everything: items live in this process only",
            "settings": {},
            "warning": "memory:// keeps queued items in this process only; they are lost when it exits",
        }

    def ping(self) -> None:
        """Always answers: the items live in this process."""


def _public(ref: str, item: _Item) -> QueueItem:
    return QueueItem(
        ref,
        item.record,
        item.position,
        item.put_at,
        item.due_at,
        item.owner,
        item.lease_until,
        item.claims,
        item.settled_at,
    )
