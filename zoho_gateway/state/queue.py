"""The durable queue (outbox) interface: opaque records keyed by a reference, handed out under leases.

One interface, three backends (memory, SQLite, Redis), tested by one shared suite. The queue never
interprets a record: the policy layer above it writes whatever it needs (JSON, usually) as bytes.

Life of an item::

    put ──▶ pending (at rest, due at ``due_at``) ──claim──▶ claimed by ``owner`` until the lease ends
                ▲                                             │
                └──────── update(due_at=...) ◀────────────────┤  (back-off: released, due later)
                                                              └──▶ update(settled=True): settled, kept
                                                                   readable until ``prune``

A claim whose lease ends without its holder reporting back (the holder was killed, or stalled) is
handed to the next claimer with ``Claimed.lapsed`` set: the previous send may have reached Zoho, so
the new holder must reconcile before it sends again.

Times are wall-clock seconds (``time.time()``) from the queue's ``clock``: several processes, and for
Redis several hosts, compare the same due times and leases, which a monotonic clock cannot do. Hosts
sharing a Redis queue are assumed to keep their clocks in step (NTP): a host whose clock runs ahead
by ``d`` seconds sees leases lapse ``d`` seconds early.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

#: A wall-clock source, seconds since the epoch: ``time.time`` unless a test injects another.
Clock = Callable[[], float]


class QueueItemExists(Exception):
    """``put`` was given a reference the queue already holds (pending or settled). ``ref`` names it."""

    def __init__(self, ref: str) -> None:
        super().__init__("a queue item with this reference already exists")
        self.ref = ref


@dataclass(frozen=True)
class Claimed:
    """An item handed out until ``lease_until``; report back with ``update(..., owner=claimed.owner)``."""

    ref: str
    record: bytes
    #: this claim's holder: the label given to ``claim`` plus a part unique to this claim
    owner: str
    #: how many times the item has been claimed, this claim included (1 on the first claim)
    attempt: int
    #: the previous claim's lease ran out before its holder reported back: it may have sent
    lapsed: bool
    put_at: float
    lease_until: float


@dataclass(frozen=True)
class QueueItem:
    """One item as an operator sees it (``list_items``)."""

    ref: str
    record: bytes
    #: the put order, increasing, never reused; pass the last one seen as ``list_items(after=...)``
    position: int
    put_at: float
    #: when the item becomes claimable while at rest (meaningless once settled)
    due_at: float
    #: the current claim holder ("" when at rest or settled); the claim may have lapsed
    owner: str
    lease_until: float | None
    claims: int
    settled_at: float | None

    @property
    def pending(self) -> bool:
        return self.settled_at is None


@dataclass(frozen=True)
class QueueStats:
    #: items not settled, claimed or not
    pending: int
    #: pending items under a live lease (being delivered)
    in_flight: int
    #: put time of the oldest pending item, None when nothing is pending
    oldest_pending_put_at: float | None


@dataclass(frozen=True)
class Outlook:
    """What ``wait`` needs to know, read at one instant ``now``."""

    #: the earliest instant a pending item is claimable (its due time at rest, its lease end if claimed)
    soonest: float | None
    #: pending items under a live lease
    in_flight: int
    #: the earliest end of a live lease (a slot under an in-flight cap frees then at the latest)
    next_lease_end: float | None

    def claimable_from(self, max_in_flight: int | None) -> float | None:
        """When a claim may next succeed; None when only a put can change the answer.

        Under a full in-flight cap nothing is claimable before the first live lease ends, unless a
        holder reports back first (which wakes waiters).
        """
        if max_in_flight is not None and self.in_flight >= max_in_flight:
            return self.next_lease_end
        return self.soonest


class Durability(TypedDict):
    """What a backend promises about items whose ``put`` returned."""

    backend: str
    #: survives the gateway process that accepted it being killed (SIGKILL, OOM)
    survives_process_crash: bool
    #: survives the storage host losing power; None when the backend cannot tell
    survives_power_cut: bool | None
    #: survives the storage server restarting (Redis); None when the backend cannot tell
    survives_store_restart: bool | None
    #: in words: what may be lost, e.g. "none", "up to 1 s of writes", "unknown"
    loss_window: str
    #: the settings the answer was read from (strings as the backend reported them)
    settings: dict[str, str]
    #: one line for /readyz and the CLI when the backend runs without the guarantee; None when it holds
    warning: str | None


def check_ref(ref: str) -> str:
    """The reference, if usable as a key; ``ValueError`` otherwise. The queue does not interpret it."""
    if not isinstance(ref, str) or not ref:
        raise ValueError("a queue reference must be a non-empty string")
    return ref


def check_owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner:
        raise ValueError("a claim owner must be a non-empty string")
    return owner


def new_holder(owner: str) -> str:
    """The holder of one claim: the caller's label (for operators) and a random part.

    Unique per claim, so that a deliverer that stalled past its lease can never report back on a later
    claim of the same item, even one made under the same label (itself, or the same host and pid
    after a restart).
    """
    return f"{check_owner(owner)}#{secrets.token_hex(6)}"


def check_lease(lease: float) -> float:
    if lease <= 0:
        raise ValueError("lease must be positive seconds")
    return float(lease)


def check_update(owner: str | None, due_at: float | None, settled: bool, lease: float | None) -> None:
    if owner is not None:
        check_owner(owner)
    if settled and due_at is not None:
        raise ValueError("an update either settles an item or reschedules it, not both")
    if lease is not None and (settled or due_at is not None):
        raise ValueError("a lease is renewed only by an update that keeps the claim")
    if lease is not None:
        check_lease(lease)


def check_cap(max_in_flight: int | None) -> int | None:
    if max_in_flight is not None and max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1, or None for no cap")
    return max_in_flight


def check_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return limit


class Queue(abc.ABC):
    """A durable queue of opaque records. All methods are thread-safe; all may raise ``StoreUnavailable``.

    Every backend failure surfaces as ``StoreUnavailable`` (from ``state.base``), whose message names the
    action and the error class, never a reference or a record.
    """

    #: "memory", "sqlite" or "redis"
    backend: str = ""
    #: True when every process (and, for Redis, every host) sees the same queue
    shared_across_processes: bool = False

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock

    @abc.abstractmethod
    def put(self, ref: str, record: bytes, *, due_at: float | None = None) -> None:
        """Store a new pending item, claimable from ``due_at`` (None: now).

        Durable when it returns, as far as ``durability()`` says. Raises ``QueueItemExists`` when
        ``ref`` is already held, pending or settled (until pruned or deleted): a put never replaces.
        After ``StoreUnavailable`` the item may or may not have been stored (a reply can be lost after
        the write): put again, and read ``QueueItemExists`` as "the first put landed".
        """

    @abc.abstractmethod
    def claim(self, owner: str, *, lease: float, max_in_flight: int | None = None) -> Claimed | None:
        """Atomically take the oldest (by put order) claimable item for ``lease`` seconds.

        ``owner`` labels the claimer (host, process, deliverer) for operators; the claim's own holder
        id, ``Claimed.owner``, adds a part unique to this claim, and is what ``update`` checks.

        Claimable: pending and either at rest with ``due_at <= now``, or claimed under a lease that has
        lapsed (whatever its due time). While a lease holds, no other claimer (thread, process, host)
        gets the item. None when nothing is claimable, or when ``max_in_flight`` items are already
        under live leases: counted in the same atomic step, so the cap holds across the cluster.
        """

    @abc.abstractmethod
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
        """Replace the record durably, and then:

        - ``settled=True``: take the item out of the pending set for good (it stays readable until pruned);
        - ``due_at=t``: release the claim; the item is claimable again from ``t`` (back-off);
        - neither: keep the claim (a recovery point written before a send); ``lease=s`` renews it to
          ``now + s``.

        ``owner`` is the claim's holder, ``Claimed.owner``. The update is refused (False, nothing
        changes) when ``owner`` no longer holds the claim: the item was claimed by another after the
        lease lapsed, or released, or settled. A lapsed lease nobody took over yet still belongs to its
        holder. ``owner=None`` is an
        operator's write: refused while any claim is open (lapsed or not), and a settled item can only
        have its record replaced, never be rescheduled. False also when ``ref`` is absent.
        """

    @abc.abstractmethod
    def get(self, ref: str) -> bytes | None:
        """The record, pending or settled; None when absent."""

    @abc.abstractmethod
    def delete(self, ref: str) -> bool:
        """Remove the item whatever its state (an open claim's later update is then refused). True if it existed."""

    @abc.abstractmethod
    def list_items(self, *, pending_only: bool = False, limit: int = 100, after: int | None = None) -> list[QueueItem]:
        """Up to ``limit`` items in put order, starting after position ``after``; for operators."""

    @abc.abstractmethod
    def stats(self) -> QueueStats:
        """How many items are pending, how many of them are in flight, and when the oldest was put."""

    @abc.abstractmethod
    def prune(self, settled_before: float) -> int:
        """Delete items settled before ``settled_before``; how many were deleted."""

    def wait(self, timeout: float, *, max_in_flight: int | None = None) -> bool:
        """Block until a claim (with the same ``max_in_flight``) may succeed, or ``timeout`` seconds pass.

        True when a claim may succeed now. Idle deliverers call this between claims instead of
        spinning; an answer is a hint (another claimer may be first), never a promise. Woken early by
        a put, and by a release or settle (which may free a slot under the cap); otherwise it sleeps
        until the soonest due time or lease end. ``timeout`` is real time, whatever the clock.
        """
        check_cap(max_in_flight)
        give_up = time.monotonic() + max(0.0, timeout)
        while True:
            now = self._clock()
            at = self._outlook(now).claimable_from(max_in_flight)
            if at is not None and at <= now:
                return True
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                return False
            self._pause(remaining if at is None else min(remaining, at - now))

    def _outlook(self, now: float) -> Outlook:
        """The queue as ``wait`` sees it at ``now``; backends that use the base ``wait`` provide it."""
        raise NotImplementedError

    def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early when woken by a put, release or settle if the backend can."""
        raise NotImplementedError

    @abc.abstractmethod
    def durability(self) -> Durability:
        """What an accepted item survives on this backend, read from the live settings where it can be."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the backend answers."""

    def close(self) -> None:  # noqa: B027 - an optional hook; a backend without connections keeps it
        """Release connections (reopened lazily if the queue is used again)."""
