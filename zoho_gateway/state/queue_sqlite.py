"""SQLiteQueue: the durable queue in the state store's SQLite file, every write synced before it returns."""

from __future__ import annotations

import os
import time

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
from zoho_gateway.state.sqlite_file import BUSY_TIMEOUT, SQLiteFile

#: Seconds between looks at the table while ``wait`` has nothing to wake it: another process's put
#: reaches this one only through the file. Short enough that an idle deliverer starts a fresh item
#: within a quarter second, long enough that idle deliverers cost nothing measurable.
WAIT_POLL = 0.25

# AUTOINCREMENT: a position is never reused, even after the newest item is deleted, so put order
# stays strictly increasing for ``list_items(after=...)`` cursors.
# owner = '' while the item is at rest; a claim sets owner and lease_until, and leaves them set
# until its holder reports back, so a later claimer can tell that the lease lapsed.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS state_queue ("
    " position INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ref TEXT NOT NULL UNIQUE,"
    " record BLOB NOT NULL,"
    " put_at REAL NOT NULL,"
    " due_at REAL NOT NULL,"
    " owner TEXT NOT NULL DEFAULT '',"
    " lease_until REAL,"
    " claims INTEGER NOT NULL DEFAULT 0,"
    " settled_at REAL)",
    # Pending items in put order, covering everything the claim looks at: the claim walks this
    # index from the oldest and stops at the first claimable row.
    (
        "CREATE INDEX IF NOT EXISTS state_queue_pending"
        " ON state_queue (position, owner, due_at, lease_until) WHERE settled_at IS NULL"
    ),
    # Live and lapsed leases, few at any time: counted for the in-flight cap.
    (
        "CREATE INDEX IF NOT EXISTS state_queue_leased"
        " ON state_queue (lease_until) WHERE owner <> '' AND settled_at IS NULL"
    ),
    "CREATE INDEX IF NOT EXISTS state_queue_settled ON state_queue (settled_at) WHERE settled_at IS NOT NULL",
)

_CLAIMABLE = "settled_at IS NULL AND ((owner = '' AND due_at <= :now) OR (owner <> '' AND lease_until <= :now))"

_PUT = (
    "INSERT INTO state_queue (ref, record, put_at, due_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (ref) DO NOTHING RETURNING position"
)
# The oldest claimable item; read and then taken inside one BEGIN IMMEDIATE transaction, under the
# file's write lock, so no other process can take it in between. owner is the previous holder's
# ('' for an item at rest), which tells the new holder that a lease lapsed.
_OLDEST_CLAIMABLE = f"SELECT position, owner FROM state_queue WHERE {_CLAIMABLE} ORDER BY position LIMIT 1"
_TAKE = (
    "UPDATE state_queue SET owner = ?, lease_until = ?, claims = claims + 1 WHERE position = ?"
    " RETURNING ref, record, claims, put_at"
)
_IN_FLIGHT = "SELECT count(*) FROM state_queue WHERE owner <> '' AND settled_at IS NULL AND lease_until > ?"
_ITEM_COLUMNS = "ref, record, position, put_at, due_at, owner, lease_until, claims, settled_at"
_SETTLE = "UPDATE state_queue SET record = ?, owner = '', lease_until = NULL, settled_at = ? WHERE ref = ?"
_RESCHEDULE = "UPDATE state_queue SET record = ?, owner = '', lease_until = NULL, due_at = ? WHERE ref = ?"
_RENEW = "UPDATE state_queue SET record = ?, lease_until = ? WHERE ref = ?"
_REPLACE = "UPDATE state_queue SET record = ? WHERE ref = ?"
_OUTLOOK = (
    "SELECT min(CASE WHEN owner = '' THEN due_at ELSE lease_until END),"
    f" ({_IN_FLIGHT}),"
    " (SELECT min(lease_until) FROM state_queue WHERE owner <> '' AND settled_at IS NULL AND lease_until > ?1)"
    " FROM state_queue WHERE settled_at IS NULL"
)


class SQLiteQueue(Queue):
    """The queue as one table (``state_queue``) in the SQLite file the state store uses.

    Its connections are its own, opened with ``synchronous=FULL``: in WAL mode every commit is fsynced
    before it returns, so an accepted item survives a power cut, while the store's connections keep
    ``NORMAL`` for tokens and caches. A per-process pool (``SQLiteFile``, as ``SQLiteStore``'s): fork-safe
    (a child never touches its parent's connections) and gevent-safe (no ``threading.local``).
    """

    backend = "sqlite"
    shared_across_processes = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        timeout: float = BUSY_TIMEOUT,
        *,
        clock: Clock = time.time,
        wait_poll: float = WAIT_POLL,
    ) -> None:
        super().__init__(clock)
        self.path = os.path.abspath(os.fspath(path))
        self._wait_poll = wait_poll
        # FULL: in WAL mode, the WAL is fsynced at every commit, so a commit that returned survives a
        # power cut. fullfsync asks macOS for F_FULLFSYNC (its fsync leaves data in the drive's cache);
        # elsewhere it is a no-op.
        self._file = SQLiteFile(
            self.path,
            timeout,
            pragmas=("PRAGMA synchronous=FULL", "PRAGMA fullfsync=ON"),
            schema=_SCHEMA,
            name="SQLite queue",
        )

    # -- the Queue interface -----------------------------------------------------------------------

    def put(self, ref: str, record: bytes, *, due_at: float | None = None) -> None:
        check_ref(ref)
        now = self._clock()
        with self._file.guard("put an item") as conn:
            # fetchall() runs the statement to completion, which commits (and syncs) it.
            added = conn.execute(_PUT, (ref, bytes(record), now, now if due_at is None else due_at)).fetchall()
        if not added:
            raise QueueItemExists(ref)

    def claim(self, owner: str, *, lease: float, max_in_flight: int | None = None) -> Claimed | None:
        holder = new_holder(owner)
        lease = check_lease(lease)
        check_cap(max_in_flight)
        with self._file.guard("claim an item") as conn, self._file.immediate(conn):
            # Under the write lock, so what is counted and read here is what the UPDATE acts on.
            now = self._clock()
            if max_in_flight is not None and conn.execute(_IN_FLIGHT, (now,)).fetchone()[0] >= max_in_flight:
                return None
            oldest = conn.execute(_OLDEST_CLAIMABLE, {"now": now}).fetchone()
            if oldest is None:
                return None
            position, previous_owner = oldest
            lease_until = now + lease
            ref, record, claims, put_at = conn.execute(_TAKE, (holder, lease_until, position)).fetchone()
        return Claimed(ref, bytes(record), holder, int(claims), previous_owner != "", float(put_at), lease_until)

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
        value = bytes(record)
        with self._file.guard("update an item") as conn, self._file.immediate(conn):
            now = self._clock()
            row = conn.execute("SELECT owner, settled_at FROM state_queue WHERE ref = ?", (ref,)).fetchone()
            if row is None or row[0] != (owner or ""):
                return False
            was_settled = row[1] is not None
            if was_settled and due_at is not None:
                return False
            if settled and not was_settled:
                conn.execute(_SETTLE, (value, now, ref))
            elif due_at is not None:
                conn.execute(_RESCHEDULE, (value, due_at, ref))
            elif lease is not None and owner:
                conn.execute(_RENEW, (value, now + lease, ref))
            else:
                conn.execute(_REPLACE, (value, ref))
        return True

    def get(self, ref: str) -> bytes | None:
        with self._file.guard("read an item") as conn:
            row = conn.execute("SELECT record FROM state_queue WHERE ref = ?", (ref,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete(self, ref: str) -> bool:
        with self._file.guard("delete an item") as conn:
            return bool(conn.execute("DELETE FROM state_queue WHERE ref = ? RETURNING 1", (ref,)).fetchall())

    def list_items(self, *, pending_only: bool = False, limit: int = 100, after: int | None = None) -> list[QueueItem]:
        check_limit(limit)
        where = "position > ?" + (" AND settled_at IS NULL" if pending_only else "")
        query = f"SELECT {_ITEM_COLUMNS} FROM state_queue WHERE {where} ORDER BY position LIMIT ?"
        with self._file.guard("list items") as conn:
            rows = conn.execute(query, (-1 if after is None else after, limit)).fetchall()
        return [
            QueueItem(ref, bytes(record), int(position), put_at, due_at, owner, lease_until, int(claims), settled_at)
            for ref, record, position, put_at, due_at, owner, lease_until, claims, settled_at in rows
        ]

    def stats(self) -> QueueStats:
        now = self._clock()
        with self._file.guard("count items") as conn:
            # One statement, one snapshot: the counts and the oldest agree.
            count, in_flight, oldest = conn.execute(
                "SELECT count(*),"
                f" ({_IN_FLIGHT}),"
                " (SELECT put_at FROM state_queue WHERE settled_at IS NULL ORDER BY position LIMIT 1)"
                " FROM state_queue WHERE settled_at IS NULL",
                (now,),
            ).fetchone()
        return QueueStats(int(count), int(in_flight), oldest)

    def prune(self, settled_before: float) -> int:
        with self._file.guard("prune items") as conn:
            return len(
                conn.execute(
                    "DELETE FROM state_queue WHERE settled_at IS NOT NULL AND settled_at < ? RETURNING 1",
                    (settled_before,),
                ).fetchall()
            )

    def _outlook(self, now: float) -> Outlook:
        with self._file.guard("look for due items") as conn:
            soonest, in_flight, next_lease_end = conn.execute(_OUTLOOK, (now,)).fetchone()
        return Outlook(soonest, int(in_flight), next_lease_end)

    def _pause(self, seconds: float) -> None:
        # Another process's put reaches this one only through the file: look again after a short nap.
        time.sleep(min(seconds, self._wait_poll))

    def durability(self) -> Durability:
        with self._file.guard("read its settings") as conn:
            journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        # PRAGMA synchronous answers 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
        synced = synchronous >= 2
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return {
            "backend": "sqlite",
            "survives_process_crash": True,
            "survives_power_cut": synced,
            "survives_store_restart": True,
            "loss_window": "none" if synced else "the last commits before a power cut",
            "settings": {"journal_mode": journal, "synchronous": names.get(synchronous, str(synchronous))},
            "warning": None if synced else "the SQLite queue runs without synchronous=FULL: a power cut may lose items",
        }

    def ping(self) -> None:
        with self._file.guard("answer a ping") as conn:
            conn.execute("SELECT 1 FROM state_queue LIMIT 1").fetchall()

    def close(self) -> None:
        """Close this process's idle connections; borrowed ones are closed when handed back. Reopens lazily."""
        self._file.close()
