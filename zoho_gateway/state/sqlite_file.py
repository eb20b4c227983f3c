"""SQLiteFile: one SQLite file's per-process connection pool and error guard, shared by the state store and the queue.

Each operation borrows a connection from this process's pool and hands it back: a connection is never used by
two callers at once and never crosses a fork. Multi-step writes run under ``BEGIN IMMEDIATE``, which takes the
file's write lock up front, so they serialise against other processes instead of failing on lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from zoho_gateway.state.base import StoreUnavailable

#: Seconds a writer waits for another process's write transaction before giving up. SQLite
#: transactions here last microseconds, so reaching this means the file is wedged, not busy.
BUSY_TIMEOUT = 5.0

#: Idle connections a process keeps for reuse; more may be open at once under a burst, and are closed
#: when handed back past this number.
MAX_IDLE = 32

#: Retrying a busy journal-mode switch: first pause, growth factor and ceiling (seconds).
_POLL_FIRST, _POLL_GROWTH, _POLL_MAX = 0.01, 1.5, 0.05


class _Pool:
    """One process's idle connections. A connection is used by one caller at a time, then handed back.

    A pool rather than one connection per thread: under gevent every request is a new greenlet (a
    "thread" to ``threading.local``), which would open, and leak, one connection per request.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        # deque append/pop are atomic: no lock is needed to hand connections out and back.
        self.idle: deque[sqlite3.Connection] = deque()


class SQLiteFile:
    """Connections to one SQLite file (WAL mode), safe for many threads, greenlets and processes on one host.

    ``pragmas`` run on every new connection (the durability each user needs: ``synchronous=NORMAL`` for
    tokens and caches, ``FULL`` for the queue); ``schema`` runs once per process, after the switch to WAL.
    ``name`` is how ``StoreUnavailable`` messages call the file's user.
    """

    def __init__(self, path: str, timeout: float, *, pragmas: Sequence[str], schema: Sequence[str], name: str) -> None:
        self.path = path
        self._timeout = timeout
        self._pragmas = tuple(pragmas)
        self._schema = tuple(schema)
        self._name = name
        # Connections a parent process opened are never used nor closed in a child (SQLite's file locks
        # and WAL index belong to the parent, and closing could checkpoint under its feet): a child
        # starts a pool of its own, and the parent's stays referenced so garbage collection leaves it be.
        self._pool = _Pool(0)
        self._inherited: list[_Pool] = []
        self._schema_pid = 0

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
            else:
                self._hand_back(pool, conn)
            raise
        self._hand_back(pool, conn)

    def _hand_back(self, pool: _Pool, conn: sqlite3.Connection) -> None:
        if pool is self._pool and len(pool.idle) < MAX_IDLE:
            pool.idle.append(conn)
        else:
            conn.close()  # the file was closed meanwhile, or the pool is full after a burst

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
            for pragma in self._pragmas:
                conn.execute(pragma)
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
                for statement in self._schema:
                    conn.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= give_up:
                    raise
            time.sleep(pause)
            pause = min(pause * _POLL_GROWTH, _POLL_MAX)

    @contextmanager
    def guard(self, action: str) -> Iterator[sqlite3.Connection]:
        """A connection; any SQLite failure becomes ``StoreUnavailable`` naming the error, never a value."""
        try:
            with self._borrowed() as conn:
                yield conn
        except sqlite3.Error as exc:
            # The error name (e.g. SQLITE_BUSY) says what went wrong without carrying any value.
            name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
            raise StoreUnavailable(f"{self._name} could not {action}: {name}") from exc

    @contextmanager
    def immediate(self, conn: sqlite3.Connection) -> Iterator[None]:
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

    def close(self) -> None:
        """Close this process's idle connections; borrowed ones are closed when handed back. Reopens lazily."""
        pool = self._this_process_pool()
        self._pool = _Pool(pool.pid)
        while pool.idle:
            pool.idle.pop().close()
