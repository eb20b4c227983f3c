"""MemoryStore: the shared-state interface for one process (tests and ``memory://``)."""

from __future__ import annotations

import secrets
import threading
import time

from zoho_gateway.state.base import Store

#: Seconds between sweeps of lapsed entries; reads already ignore them, this only bounds memory.
_SWEEP_EVERY = 60.0


def _deadline(ttl: float | None, now: float) -> float | None:
    """The monotonic instant at which an entry stored ``now`` with ``ttl`` lapses."""
    if ttl is None:
        return None
    if ttl <= 0:
        raise ValueError("ttl must be positive seconds or None")
    return now + ttl


class MemoryStore(Store):
    """A dict behind one lock; expiry on the monotonic clock, so wall-clock jumps never expire keys early.

    Nothing is shared with other processes: under gunicorn each worker would have its own copy,
    which is why this backend is meant for tests and single-process runs only.
    """

    backend = "memory"
    shared_across_processes = False

    def __init__(self) -> None:
        # One Condition guards both maps; waiters on a lock are woken when any lock is released.
        self._cond = threading.Condition(threading.Lock())
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._next_sweep = time.monotonic() + _SWEEP_EVERY

    def _sweep(self, now: float) -> None:
        """Drop lapsed entries now and then, so keys that are written once and never read do not pile up.

        Caller holds the lock.
        """
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY
        lapsed = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
        for key in lapsed:
            del self._data[key]

    def _live(self, key: str, now: float) -> tuple[bytes, float | None] | None:
        """The entry for ``key`` if it has not lapsed; a lapsed one is dropped. Caller holds the lock."""
        entry = self._data.get(key)
        if entry is None:
            return None
        expires_at = entry[1]
        if expires_at is not None and expires_at <= now:
            del self._data[key]
            return None
        return entry

    def get(self, key: str) -> bytes | None:
        with self._cond:
            entry = self._live(key, time.monotonic())
        return None if entry is None else entry[0]

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._cond:
            now = time.monotonic()
            self._sweep(now)
            self._data[key] = (bytes(value), _deadline(ttl, now))

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self._cond:
            now = time.monotonic()
            self._sweep(now)
            if self._live(key, now) is not None:
                return False
            self._data[key] = (bytes(value), _deadline(ttl, now))
            return True

    def delete(self, key: str) -> None:
        with self._cond:
            self._data.pop(key, None)

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        with self._cond:
            now = time.monotonic()
            self._sweep(now)
            entry = self._live(key, now)
            if entry is None:
                current, expires_at = 0, _deadline(ttl, now)
            else:
                # Same rule as Redis INCRBY: a value that is not a decimal integer is a caller bug.
                try:
                    current = int(entry[0])
                except ValueError:
                    raise ValueError("value is not an integer counter") from None
                expires_at = entry[1]
            new = current + amount
            self._data[key] = (str(new).encode("ascii"), expires_at)
            return new

    def acquire_lock(self, name: str, lease: float, wait: float) -> str | None:
        if lease <= 0:
            raise ValueError("lease must be positive seconds")
        owner = secrets.token_hex(16)
        give_up = time.monotonic() + max(0.0, wait)
        with self._cond:
            while True:
                now = time.monotonic()
                held = self._locks.get(name)
                if held is None or held[1] <= now:
                    self._locks[name] = (owner, now + lease)
                    return owner
                if now >= give_up:
                    return None
                # Sleep until a release wakes us, the holder's lease lapses, or our wait runs out,
                # whichever comes first; a lapsed lease sends no notification, hence the bound.
                self._cond.wait(min(give_up, held[1]) - now)

    def release_lock(self, name: str, owner: str) -> None:
        with self._cond:
            held = self._locks.get(name)
            if held is not None and held[0] == owner:
                del self._locks[name]
                self._cond.notify_all()

    def ping(self) -> None:
        """Always answers: the data lives in this process."""
