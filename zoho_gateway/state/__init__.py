"""Shared state: ``open_store(url)`` picks the backend named by ``GATEWAY_STATE_URL``."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from zoho_gateway.state.base import Store, StoreUnavailable
from zoho_gateway.state.memory import MemoryStore
from zoho_gateway.state.queue import Claimed, Durability, Queue, QueueItem, QueueItemExists, QueueStats
from zoho_gateway.state.queue_memory import MemoryQueue
from zoho_gateway.state.queue_redis import RedisQueue
from zoho_gateway.state.queue_sqlite import SQLiteQueue
from zoho_gateway.state.redis import RedisStore
from zoho_gateway.state.sqlite import SQLiteStore

__all__ = [
    "Claimed",
    "Durability",
    "MemoryQueue",
    "MemoryStore",
    "Queue",
    "QueueItem",
    "QueueItemExists",
    "QueueStats",
    "RedisQueue",
    "RedisStore",
    "SQLiteQueue",
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
    "open_queue",
    "open_store",
]

_ACCEPTED = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://[:password@]host:port/db or rediss://[:password@]host:port/db"
)


def _invalid(problem: str) -> ValueError:
    # The URL itself is never echoed: a Redis URL may carry a password.
    return ValueError(f"GATEWAY_STATE_URL {problem}; use {_ACCEPTED}")


def open_store(url: str) -> Store:
    """Open the store that ``url`` names. Does not connect: call ``ping()`` to check it answers.

    Raises ``ValueError`` (one line naming ``GATEWAY_STATE_URL`` and the accepted forms) for a URL
    of any other shape.
    """
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep:
        raise _invalid("is not a URL")

    if scheme == "memory":
        if rest:
            raise _invalid("takes nothing after memory://")
        return MemoryStore()

    if scheme == "sqlite":
        # sqlite:///var/state.db -> "/var/state.db" after the scheme: one slash marks a path
        # relative to the working directory, two slashes an absolute path (SQLAlchemy's rule).
        if not rest.startswith("/") or "?" in rest or "#" in rest:
            raise _invalid("names no SQLite file")
        path = unquote(rest[1:])
        if not path or path.endswith("/"):
            raise _invalid("names no SQLite file")
        return SQLiteStore(path)

    if scheme in ("redis", "rediss"):
        try:
            parts = urlsplit(url.strip())
            _ = parts.port  # raises ValueError for a port that is not a number
        except ValueError:
            raise _invalid("has a malformed Redis host or port") from None
        if not parts.hostname:
            raise _invalid("names no Redis host")
        if parts.path not in ("", "/") and not parts.path[1:].isdigit():
            raise _invalid("names a Redis database that is not a number")
        try:
            return RedisStore(url.strip())
        except ValueError:
            # redis-py rejects bad query options; its message is replaced so nothing leaks.
            raise _invalid("has options redis-py does not accept") from None

    # The scheme is named only when it is a plain word, so nothing that looks like credentials is echoed.
    named = f" {scheme!r}" if scheme.isalnum() else ""
    raise _invalid(f"has an unsupported scheme{named}")


def open_queue(url: str) -> Queue:
    """Open the durable queue beside the store that ``url`` names: the same SQLite file or Redis database.

    Accepts and refuses exactly the URLs ``open_store`` does (same ``ValueError``). Does not connect.
    """
    store = open_store(url)  # validates the URL and resolves a relative SQLite path; opens nothing
    if isinstance(store, SQLiteStore):
        return SQLiteQueue(store.path)
    if isinstance(store, RedisStore):
        return RedisQueue(url.strip())
    return MemoryQueue()
