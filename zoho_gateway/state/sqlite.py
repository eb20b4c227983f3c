"""SQLiteStore: the shared-state interface on one SQLite file, shared by every worker process on a host."""

from __future__ import annotations

import os
import sqlite3
import time

from zoho_gateway.state.base import Store, poll_for_lock
from zoho_gateway.state.sqlite_file import BUSY_TIMEOUT, SQLiteFile

#: Seconds between purges of lapsed rows. Reads already ignore them; purging only bounds the file.
PURGE_EVERY = 60.0

_SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS state_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL) WITHOUT ROWID"),
    "CREATE INDEX IF NOT EXISTS state_kv_expires ON state_kv (expires_at) WHERE expires_at IS NOT NULL",
    (
        "CREATE TABLE IF NOT EXISTS state_locks"
        " (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID"
    ),
)

# Expiry is wall-clock (time.time()) in every statement: several processes compare the same rows,
# and a monotonic clock means nothing outside the process that read it.
_GET = "SELECT value FROM state_kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)"
_SET = (
    "INSERT INTO state_kv (key, value, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
# A claim in one statement: insert, or overwrite only a row that has lapsed. RETURNING yields a
# row exactly when this caller wrote, so two processes can never both see success.
_ADD = (
    "INSERT INTO state_kv (key, value, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
    " WHERE state_kv.expires_at IS NOT NULL AND state_kv.expires_at <= ?"
    " RETURNING 1"
)
_DELETE = "DELETE FROM state_kv WHERE key = ?"
# The same claim shape for leases: taken when absent or when the previous holder's lease lapsed.
_TAKE_LOCK = (
    "INSERT INTO state_locks (name, owner, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
    " WHERE state_locks.expires_at <= ?"
    " RETURNING 1"
)
_RELEASE_LOCK = "DELETE FROM state_locks WHERE name = ? AND owner = ?"
_PURGE = (
    "DELETE FROM state_kv WHERE expires_at IS NOT NULL AND expires_at <= ?",
    "DELETE FROM state_locks WHERE expires_at <= ?",
)


def _lapse_at(ttl: float | None, now: float) -> float | None:
    """The wall-clock instant at which an entry written ``now`` with ``ttl`` lapses."""
    if ttl is None:
        return None
    if ttl <= 0:
        raise ValueError("ttl must be positive seconds or None")
    return now + ttl


class SQLiteStore(Store):
    """A store in one SQLite file (WAL mode), safe for many threads, greenlets and processes on one host.

    Each operation borrows a connection from this process's pool and hands it back: a connection is
    never used by two callers at once and never crosses a fork. Multi-step writes run under
    ``BEGIN IMMEDIATE``, which takes the file's write lock up front, so they serialise against other
    processes instead of failing on lock upgrade.
    """

    backend = "sqlite"
    shared_across_processes = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        timeout: float = BUSY_TIMEOUT,
        *,
        purge_every: float = PURGE_EVERY,
    ) -> None:
        # Made absolute now so that a later chdir does not point some workers at another file.
        self.path = os.path.abspath(os.fspath(path))
        self._purge_every = purge_every
        # NORMAL is durable against a crashed process in WAL mode; only a power cut may lose
        # the last commits, which is acceptable for tokens, caches and counters.
        self._file = SQLiteFile(
            self.path, timeout, pragmas=("PRAGMA synchronous=NORMAL",), schema=_SCHEMA, name="SQLite state store"
        )
        self._next_purge = 0.0

    def _maybe_purge(self, conn: sqlite3.Connection, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + self._purge_every
        for statement in _PURGE:
            conn.execute(statement, (now,))

    # -- the Store interface -----------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        with self._file.guard("read a key") as conn:
            row = conn.execute(_GET, (key, time.time())).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        now = time.time()
        expires_at = _lapse_at(ttl, now)
        with self._file.guard("write a key") as conn:
            self._maybe_purge(conn, now)
            conn.execute(_SET, (key, bytes(value), expires_at))

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        now = time.time()
        expires_at = _lapse_at(ttl, now)
        with self._file.guard("claim a key") as conn:
            self._maybe_purge(conn, now)
            # fetchall() runs the statement to completion, which ends its implicit transaction;
            # a half-read RETURNING cursor would keep holding the write lock.
            return bool(conn.execute(_ADD, (key, bytes(value), expires_at, now)).fetchall())

    def delete(self, key: str) -> None:
        with self._file.guard("delete a key") as conn:
            conn.execute(_DELETE, (key,))

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        with self._file.guard("increment a counter") as conn, self._file.immediate(conn):
            # The clock is read under the write lock, so no other process can slip a write
            # between the expiry check and the update.
            now = time.time()
            row = conn.execute("SELECT value, expires_at FROM state_kv WHERE key = ?", (key,)).fetchone()
            if row is None or (row[1] is not None and row[1] <= now):
                current, expires_at = 0, _lapse_at(ttl, now)
            else:
                try:
                    current = int(bytes(row[0]))
                except ValueError:
                    raise ValueError("value is not an integer counter") from None
                expires_at = row[1]
            new = current + amount
            conn.execute(_SET, (key, str(new).encode("ascii"), expires_at))
        return new

    def acquire_lock(self, name: str, lease: float, wait: float) -> str | None:
        if lease <= 0:
            raise ValueError("lease must be positive seconds")

        def take(owner: str) -> bool:
            with self._file.guard("take a lock") as conn:
                now = time.time()
                return bool(conn.execute(_TAKE_LOCK, (name, owner, now + lease, now)).fetchall())

        return poll_for_lock(take, wait)

    def release_lock(self, name: str, owner: str) -> None:
        with self._file.guard("release a lock") as conn:
            conn.execute(_RELEASE_LOCK, (name, owner))

    def ping(self) -> None:
        with self._file.guard("answer a ping") as conn:
            conn.execute("SELECT 1 FROM state_kv LIMIT 1").fetchall()

    def close(self) -> None:
        """Close this process's idle connections; borrowed ones are closed when handed back. Reopens lazily."""
        self._file.close()
