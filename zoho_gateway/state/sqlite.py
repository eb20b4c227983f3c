"""SQLiteStore: the shared-state interface on one SQLite file, shared by every worker process on a host."""

from __future__ import annotations

import os
import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from zoho_gateway.state.base import Store, StoreUnavailable, poll_for_lock

#: Seconds a writer waits for another process's write transaction before giving up. SQLite
#: transactions here last microseconds, so reaching this means the file is wedged, not busy.
BUSY_TIMEOUT = 5.0

#: Seconds between purges of lapsed rows. Reads already ignore them; purging only bounds the file.
PURGE_EVERY = 60.0

#: Retrying a busy journal-mode switch: first pause, growth factor and ceiling (seconds).
_POLL_FIRST, _POLL_GROWTH, _POLL_MAX = 0.01, 1.5, 0.05

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


#: Idle connections a process keeps for reuse; more may be open at once under a burst, and are closed
#: when handed back past this number.
MAX_IDLE = 32


class _Pool:
    """One process's idle connections. A connection is used by one caller at a time, then handed back.

    A pool rather than one connection per thread: under gevent every request is a new greenlet (a
    "thread" to ``threading.local``), which would open, and leak, one connection per request.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        # deque append/pop are atomic: no lock is needed to hand connections out and back.
        self.idle: deque[sqlite3.Connection] = deque()


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
        self._timeout = timeout
        self._purge_every = purge_every
        # Connections a parent process opened are never used nor closed in a child (SQLite's file locks
        # and WAL index belong to the parent, and closing could checkpoint under its feet): a child
        # starts a pool of its own, and the parent's stays referenced so garbage collection leaves it be.
        self._pool = _Pool(0)
        self._inherited: list[_Pool] = []
        self._schema_pid = 0
        self._next_purge = 0.0

    # -- connections -------------------------------------------------------------------------------

    def _this_process_pool(self) -> _Pool:
        pool = self._pool
        pid = os.getpid()
        if pool.pid != pid:
            if pool.idle:
                self._inherited.append(pool)
            pool = self._pool = _Pool(pid)
        return pool

    @contextmanager
    def _borrowed(self) -> Iterator[sqlite3.Connection]:
        """A connection for this caller alone; handed back to the pool afterwards unless it broke."""
        pool = self._this_process_pool()
        try:
            conn = pool.idle.pop()
        except IndexError:
            conn = self._open()
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                # Never hand back a connection with a transaction open: it would hold the write lock and
                # block every other process. Closing it is the sure way to drop its locks.
                conn.close()
            elif pool is self._pool and len(pool.idle) < MAX_IDLE:
                pool.idle.append(conn)
            else:
                conn.close()
            raise
        if pool is self._pool and len(pool.idle) < MAX_IDLE:
            pool.idle.append(conn)
        else:
            conn.close()  # the store was closed meanwhile, or the pool is full after a burst

    def _open(self) -> sqlite3.Connection:
        parent = os.path.dirname(self.path)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the SQLite state directory {parent}") from exc
        # isolation_level=None: the module must not open transactions behind our back; single
        # statements autocommit and multi-step writes say BEGIN IMMEDIATE themselves.
        # check_same_thread=False: a pooled connection serves whichever thread borrows it next, one at a time.
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        try:
            # NORMAL is durable against a crashed process in WAL mode; only a power cut may lose
            # the last commits, which is acceptable for tokens, caches and counters.
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._schema_pid != os.getpid():
                self._prepare_file(conn)
                self._schema_pid = os.getpid()
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _prepare_file(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL and create the tables, once per process.

        WAL lets readers proceed while one process writes; the mode is stored in the file. Changing
        the journal mode is the one step SQLite does not retry under its busy timeout: when every
        worker opens a fresh file at once, all but one get SQLITE_BUSY straight away. So the busy
        case is retried here, for as long as the busy timeout would have waited.
        """
        give_up = time.monotonic() + self._timeout
        pause = _POLL_FIRST
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL").fetchall()
                for statement in _SCHEMA:
                    conn.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= give_up:
                    raise
            time.sleep(pause)
            pause = min(pause * _POLL_GROWTH, _POLL_MAX)

    @contextmanager
    def _guard(self, action: str) -> Iterator[sqlite3.Connection]:
        """Yield this thread's connection; turn any SQLite failure into ``StoreUnavailable``."""
        try:
            with self._borrowed() as conn:
                yield conn
        except sqlite3.Error as exc:
            # The error name (e.g. SQLITE_BUSY) says what went wrong without carrying any value.
            name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
            raise StoreUnavailable(f"SQLite state store could not {action}: {name}") from exc

    @contextmanager
    def _immediate(self, conn: sqlite3.Connection) -> Iterator[None]:
        """A write transaction holding the file's write lock from its first statement."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            # Roll back so the connection can go back to the pool; if even that fails, the original
            # failure is the one worth reporting, and _borrowed closes the connection (still in a transaction).
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _maybe_purge(self, conn: sqlite3.Connection, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + self._purge_every
        for statement in _PURGE:
            conn.execute(statement, (now,))

    # -- the Store interface -----------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        with self._guard("read a key") as conn:
            row = conn.execute(_GET, (key, time.time())).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        now = time.time()
        expires_at = _lapse_at(ttl, now)
        with self._guard("write a key") as conn:
            self._maybe_purge(conn, now)
            conn.execute(_SET, (key, bytes(value), expires_at))

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        now = time.time()
        expires_at = _lapse_at(ttl, now)
        with self._guard("claim a key") as conn:
            self._maybe_purge(conn, now)
            # fetchall() runs the statement to completion, which ends its implicit transaction;
            # a half-read RETURNING cursor would keep holding the write lock.
            return bool(conn.execute(_ADD, (key, bytes(value), expires_at, now)).fetchall())

    def delete(self, key: str) -> None:
        with self._guard("delete a key") as conn:
            conn.execute(_DELETE, (key,))

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        with self._guard("increment a counter") as conn, self._immediate(conn):
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
            with self._guard("take a lock") as conn:
                now = time.time()
                return bool(conn.execute(_TAKE_LOCK, (name, owner, now + lease, now)).fetchall())

        return poll_for_lock(take, wait)

    def release_lock(self, name: str, owner: str) -> None:
        with self._guard("release a lock") as conn:
            conn.execute(_RELEASE_LOCK, (name, owner))

    def ping(self) -> None:
        with self._guard("answer a ping") as conn:
            conn.execute("SELECT 1 FROM state_kv LIMIT 1").fetchall()

    def close(self) -> None:
        """Close this process's idle connections; borrowed ones are closed when handed back. Reopens lazily."""
        pool = self._this_process_pool()
        self._pool = _Pool(pool.pid)
        while pool.idle:
            pool.idle.pop().close()
