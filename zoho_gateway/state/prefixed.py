"""A view of a store under a key prefix: one portal's or one account's share of the one shared store."""

from __future__ import annotations

from .base import Store


class PrefixedStore(Store):
    """Every key and lock name of ``inner`` under ``prefix``; the same backend, connections and health.

    Lets code written for one portal (token cache, read cache, idempotency records, the delivery pause) keep
    its key names while several portals and accounts share one store. ``prefixed(store, "")`` is ``store``.
    """

    def __init__(self, inner: Store, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix
        self.backend = inner.backend
        self.shared_across_processes = inner.shared_across_processes

    def get(self, key: str) -> bytes | None:
        return self.inner.get(self.prefix + key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.inner.set(self.prefix + key, value, ttl)

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return self.inner.add(self.prefix + key, value, ttl)

    def delete(self, key: str) -> None:
        self.inner.delete(self.prefix + key)

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return self.inner.incr(self.prefix + key, amount, ttl)

    def acquire_lock(self, name: str, lease: float, wait: float) -> str | None:
        return self.inner.acquire_lock(self.prefix + name, lease, wait)

    def release_lock(self, name: str, owner: str) -> None:
        self.inner.release_lock(self.prefix + name, owner)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        """Nothing: the connections are the inner store's, closed with it."""


def prefixed(store: Store, prefix: str) -> Store:
    """``store`` under ``prefix``; ``store`` itself for an empty prefix (the keys of before portals existed)."""
    return PrefixedStore(store, prefix) if prefix else store
