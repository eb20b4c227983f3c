"""The shared-state interface: a small key/value store with TTLs, atomic claims, counters and leases.

One interface, three backends (memory, SQLite, Redis). Everything above it (token cache,
idempotency records, read cache, rate limits) is written once against this interface.
Keys are plain strings; values are bytes; TTLs are seconds (float). Backends never log values.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def poll_for_lock(take: Callable[[str], bool], wait: float) -> str | None:
    """Call ``take(owner)`` until it succeeds or ``wait`` seconds pass; the owner token, or None.

    For backends with no wake-up on release (SQLite, Redis without a subscriber connection): waiters
    poll, with a pause that grows from 10 to 50 ms so that many waiters do not flood the backend.
    """
    owner = secrets.token_hex(16)
    give_up = time.monotonic() + max(0.0, wait)
    pause = 0.01
    while True:
        if take(owner):
            return owner
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(pause, remaining))
        pause = min(pause * 1.5, 0.05)


class StoreUnavailable(Exception):
    """The backend cannot be reached or answered with an error. Carries no secret."""


class Store(abc.ABC):
    """A shared key/value store. All methods are thread-safe; all may raise ``StoreUnavailable``."""

    #: "memory", "sqlite" or "redis"
    backend: str = ""
    #: True when every process (and, for Redis, every host) sees the same data
    shared_across_processes: bool = False

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    @abc.abstractmethod
    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` (replacing any), expiring after ``ttl`` seconds (None: never)."""

    @abc.abstractmethod
    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if the key is absent (or expired). True when stored: an atomic claim."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the key if present."""

    @abc.abstractmethod
    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to an integer counter and return the new value, atomically.

        A missing or expired counter starts at 0 and gets ``ttl``; an existing one keeps its expiry
        (a fixed window).
        """

    @abc.abstractmethod
    def acquire_lock(self, name: str, lease: float, wait: float) -> str | None:
        """Take the named cross-process (cross-host for Redis) lock.

        Waits up to ``wait`` seconds. Returns an owner token on success, None on time-out. The lock
        lapses by itself ``lease`` seconds after it was taken, so a holder that dies never wedges
        the others.
        """

    @abc.abstractmethod
    def release_lock(self, name: str, owner: str) -> None:
        """Release the lock if ``owner`` still holds it (a lapsed lock taken by another is left alone)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the backend answers."""

    def close(self) -> None:  # noqa: B027 - an optional hook; a backend without connections keeps it
        """Release connections (reopened lazily if the store is used again). Default: nothing to release."""

    @contextmanager
    def lock(self, name: str, lease: float, wait: float) -> Iterator[bool]:
        """``with store.lock(...) as held:``; ``held`` is False when the wait timed out."""
        owner = self.acquire_lock(name, lease, wait)
        try:
            yield owner is not None
        finally:
            if owner is not None:
                self.release_lock(name, owner)
