"""The durable-queue contract on every backend, against real storage: a temp SQLite file, a live Redis.

Leases and due times run on an injected clock, so no test sleeps a lease out.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import OPEN_FILES_SOURCE, Spec, burst, free_port, run_python, spec_for
from tests.redis_server import answers_ping
from zoho_gateway.state import (
    Claimed,
    MemoryQueue,
    Queue,
    QueueItemExists,
    RedisQueue,
    SQLiteQueue,
    SQLiteStore,
    StoreUnavailable,
    open_queue,
)

LEASE = 30.0


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _open_spec(spec: Spec, clock: Callable[[], float] | None = None) -> Queue:
    kind, where = spec
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    if kind == "sqlite":
        return SQLiteQueue(where, **extra)
    url, namespace = where.split(" ")
    return RedisQueue(url, namespace=namespace, **extra)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Queue]:
    if request.param == "memory":
        backend: Queue = MemoryQueue(clock=clock)
    else:
        backend = _open_spec(spec_for(request.param, request, tmp_path), clock)
    yield backend
    backend.close()


def _claim(queue: Queue, owner: str, *, lease: float = LEASE, max_in_flight: int | None = None) -> Claimed:
    """A claim that the test expects to succeed."""
    claimed = queue.claim(owner, lease=lease, max_in_flight=max_in_flight)
    assert claimed is not None, "nothing was claimable"
    return claimed


def _drain(queue: Queue, owner: str) -> list[str]:
    """Claim until nothing is claimable, settling each item; the refs this owner got."""
    got = []
    while (item := queue.claim(owner, lease=LEASE)) is not None:
        got.append(item.ref)
        assert queue.update(item.ref, b"done", owner=item.owner, settled=True)
    return got


# -- the contract, on every backend -----------------------------------------------------------------


def test_put_then_get_and_no_second_put(queue: Queue) -> None:
    assert queue.get("r1") is None
    queue.put("r1", b'{"subject": "\x00binary\xff"}')
    assert queue.get("r1") == b'{"subject": "\x00binary\xff"}'
    with pytest.raises(QueueItemExists) as caught:
        queue.put("r1", b"other")
    assert caught.value.ref == "r1"
    assert queue.get("r1") == b'{"subject": "\x00binary\xff"}'
    queue.ping()


def test_claims_the_oldest_due_item_first(queue: Queue, clock: FakeClock) -> None:
    queue.put("later", b"a", due_at=clock.now + 10)
    queue.put("first", b"b")
    queue.put("second", b"c", due_at=clock.now - 5)  # due earlier, but put later: put order decides
    got = _claim(queue, "w")
    assert (got.ref, got.record, got.attempt, got.lapsed) == ("first", b"b", 1, False)
    assert got.owner.startswith("w")
    assert got.put_at == clock.now and got.lease_until == clock.now + LEASE
    second = queue.claim("w", lease=LEASE)
    assert second is not None and second.ref == "second"
    assert queue.claim("w", lease=LEASE) is None  # "later" is not due yet
    clock.advance(10)
    later = queue.claim("w", lease=LEASE)
    assert later is not None and later.ref == "later"


def test_an_older_item_falling_due_goes_before_a_newer_one(queue: Queue, clock: FakeClock) -> None:
    queue.put("old", b"", due_at=clock.now + 5)
    queue.put("new", b"", due_at=clock.now + 1)
    clock.advance(5)
    assert [item.ref for item in iter(lambda: queue.claim("w", lease=LEASE), None)] == ["old", "new"]


def test_claims_are_exclusive_across_threads(queue: Queue) -> None:
    refs = [f"ref-{i:03d}" for i in range(200)]
    for ref in refs:
        queue.put(ref, ref.encode())
    results = burst(lambda i: _drain(queue, f"thread-{i}"), 16)
    claimed = Counter(ref for got in results for ref in got)
    assert sorted(claimed) == refs
    assert set(claimed.values()) == {1}
    assert queue.stats().pending == 0


def test_max_in_flight_caps_live_leases(queue: Queue, clock: FakeClock) -> None:
    for ref in ("a", "b", "c", "d"):
        queue.put(ref, b"")
    assert queue.claim("w", lease=10, max_in_flight=2) is not None
    assert queue.claim("w", lease=20, max_in_flight=2) is not None
    assert queue.claim("w", lease=LEASE, max_in_flight=2) is None  # two sends in flight already
    c = _claim(queue, "w", max_in_flight=3)
    assert queue.update("c", b"", owner=c.owner, settled=True)
    clock.advance(10)  # a's lease lapsed: its holder is presumed dead, and no longer counts
    assert queue.stats().in_flight == 1
    taken = _claim(queue, "w2", max_in_flight=2)
    assert (taken.ref, taken.lapsed) == ("a", True)
    assert queue.claim("w2", lease=LEASE, max_in_flight=2) is None
    with pytest.raises(ValueError):
        queue.claim("w", lease=LEASE, max_in_flight=0)


def test_max_in_flight_holds_under_16_threads(queue: Queue) -> None:
    for i in range(100):
        queue.put(f"ref-{i:03d}", b"")
    lock = threading.Lock()
    holding = [0]
    most = [0]

    def deliver(i: int) -> int:
        delivered = 0
        while (item := queue.claim(f"thread-{i}", lease=LEASE, max_in_flight=3)) is not None or queue.stats().pending:
            if item is None:
                continue  # the cap is reached: another thread will settle soon
            with lock:
                holding[0] += 1
                most[0] = max(most[0], holding[0])
            with lock:
                holding[0] -= 1
            assert queue.update(item.ref, b"done", owner=item.owner, settled=True)
            delivered += 1
        return delivered

    assert sum(burst(deliver, 16)) == 100
    # Counted between a claim's return and its settle, so never more than the queue let out at once.
    assert 1 <= most[0] <= 3


def test_a_lapsed_lease_goes_to_another_claimer_flagged(queue: Queue, clock: FakeClock) -> None:
    queue.put("r", b"accepted")
    first = _claim(queue, "dead")
    assert first.attempt == 1 and not first.lapsed
    assert first.owner.startswith("dead")
    assert queue.update("r", b"sending", owner=first.owner)  # the recovery point before the send
    clock.advance(LEASE - 1)
    assert queue.claim("alive", lease=LEASE) is None  # the lease still holds
    clock.advance(1)
    second = _claim(queue, "alive")
    assert (second.ref, second.record, second.attempt, second.lapsed) == ("r", b"sending", 2, True)
    # The first holder waking up late is refused, and changes nothing.
    assert not queue.update("r", b"created by the dead", owner=first.owner, settled=True)
    assert not queue.update("r", b"rescheduled by the dead", owner=first.owner, due_at=clock.now)
    assert queue.get("r") == b"sending"
    assert queue.update("r", b"created", owner=second.owner, settled=True)
    assert queue.get("r") == b"created"


def test_a_new_claim_under_the_same_label_is_a_new_holder(queue: Queue, clock: FakeClock) -> None:
    # A deliverer restarted with the same host and pid, or one that stalled and claimed again, must
    # not be able to report back on a claim it no longer holds.
    queue.put("r", b"")
    stalled = _claim(queue, "host-1:pid-7")
    clock.advance(LEASE)
    fresh = _claim(queue, "host-1:pid-7")
    assert fresh.lapsed and fresh.owner != stalled.owner
    assert not queue.update("r", b"stale answer", owner=stalled.owner, settled=True)
    assert queue.update("r", b"created", owner=fresh.owner, settled=True)


def test_a_lapsed_lease_nobody_took_still_belongs_to_its_holder(queue: Queue, clock: FakeClock) -> None:
    queue.put("r", b"")
    slow = _claim(queue, "slow")
    clock.advance(LEASE + 60)
    assert queue.update("r", b"created", owner=slow.owner, settled=True)
    assert queue.claim("other", lease=LEASE) is None


def test_reschedule_releases_the_claim_until_the_new_due_time(queue: Queue, clock: FakeClock) -> None:
    queue.put("r", b"v1")
    first = _claim(queue, "w")
    assert queue.update("r", b"v2", owner=first.owner, due_at=clock.now + 8)
    assert not queue.update("r", b"v3", owner=first.owner)  # released: no longer this holder's
    assert queue.claim("w", lease=LEASE) is None
    clock.advance(8)
    again = _claim(queue, "other")
    # A released claim is not a lapsed one: the holder reported back.
    assert (again.record, again.attempt, again.lapsed) == (b"v2", 2, False)


def test_an_update_without_due_time_keeps_the_claim_and_may_renew_it(queue: Queue, clock: FakeClock) -> None:
    queue.put("r", b"accepted")
    held = _claim(queue, "w", lease=10)
    clock.advance(9)
    assert queue.update("r", b"sending", owner=held.owner, lease=10)  # renewed to now + 10
    clock.advance(9)
    assert queue.claim("other", lease=LEASE) is None  # past the first lease, inside the renewed one
    assert queue.update("r", b"still sending", owner=held.owner)
    assert queue.get("r") == b"still sending"
    clock.advance(1)
    taken = _claim(queue, "other")
    assert taken.lapsed and taken.record == b"still sending"


def test_settle_keeps_the_record_until_pruned(queue: Queue, clock: FakeClock) -> None:
    queue.put("r", b"accepted")
    queue.put("keep", b"accepted")
    held = _claim(queue, "w")
    settled_at = clock.now
    assert queue.update("r", b"created", owner=held.owner, settled=True)
    assert queue.get("r") == b"created"
    assert not queue.update("r", b"again", owner=held.owner, settled=True)  # settled: nobody holds it now
    clock.advance(3600)
    assert [item.ref for item in iter(lambda: queue.claim("w", lease=LEASE), None)] == ["keep"]
    assert queue.prune(settled_before=settled_at) == 0  # strictly before
    assert queue.get("r") == b"created"
    assert queue.prune(settled_before=settled_at + 1) == 1
    assert queue.get("r") is None
    assert queue.get("keep") == b"accepted"  # pending items are never pruned
    queue.put("r", b"a new item under the pruned ref")


def test_stats_count_pending_items_and_date_the_oldest(queue: Queue, clock: FakeClock) -> None:
    assert (queue.stats().pending, queue.stats().oldest_pending_put_at) == (0, None)
    first_put = clock.now
    queue.put("a", b"")
    clock.advance(5)
    queue.put("b", b"", due_at=clock.now + 100)
    queue.put("c", b"")
    stats = queue.stats()
    assert (stats.pending, stats.oldest_pending_put_at) == (3, first_put)
    claimed = _claim(queue, "w")
    assert claimed.ref == "a"
    stats = queue.stats()
    assert (stats.pending, stats.in_flight) == (3, 1)  # a claimed item is still pending
    clock.advance(LEASE)
    assert queue.stats().in_flight == 0  # its lease lapsed: nobody is delivering it
    assert queue.update("a", b"", owner=claimed.owner, settled=True)
    stats = queue.stats()
    assert (stats.pending, stats.in_flight, stats.oldest_pending_put_at) == (2, 0, first_put + 5)


def test_list_items_in_put_order_with_paging(queue: Queue, clock: FakeClock) -> None:
    for ref in ("a", "b", "c", "d"):
        queue.put(ref, ref.encode(), due_at=clock.now + 1)
        clock.advance(1)
    claimed = _claim(queue, "w")
    assert claimed.ref == "a"
    assert queue.update("b", b"b-done", owner=None, settled=True)
    everything = queue.list_items()
    assert [item.ref for item in everything] == ["a", "b", "c", "d"]
    a, b = everything[0], everything[1]
    assert (a.owner, a.claims, a.lease_until, a.pending) == (claimed.owner, 1, clock.now + LEASE, True)
    assert (b.record, b.pending, b.settled_at, b.owner) == (b"b-done", False, clock.now, "")
    assert [item.ref for item in queue.list_items(pending_only=True)] == ["a", "c", "d"]
    page = queue.list_items(limit=2)
    assert [item.ref for item in page] == ["a", "b"]
    assert [item.ref for item in queue.list_items(limit=2, after=page[-1].position)] == ["c", "d"]
    assert [item.ref for item in queue.list_items(pending_only=True, after=page[-1].position)] == ["c", "d"]
    assert queue.list_items(after=everything[-1].position) == []
    with pytest.raises(ValueError):
        queue.list_items(limit=0)


def test_delete_removes_an_item_in_any_state(queue: Queue) -> None:
    queue.put("r", b"")
    queue.put("s", b"")
    held = _claim(queue, "w")
    assert queue.delete("r")
    assert not queue.delete("r")
    assert queue.get("r") is None
    assert not queue.update("r", b"", owner=held.owner, settled=True)  # the holder learns it was dropped
    assert queue.stats().pending == 1
    queue.put("r", b"put again")  # goes to the back of the queue
    assert [item.ref for item in iter(lambda: queue.claim("w", lease=LEASE), None)] == ["s", "r"]


def test_operator_updates_touch_only_items_at_rest(queue: Queue, clock: FakeClock) -> None:
    queue.put("r", b"accepted", due_at=clock.now + 300)
    # An operator's "retry now" on an item waiting out its back-off.
    assert queue.update("r", b"retry", owner=None, due_at=clock.now)
    assert queue.claim("w", lease=LEASE) is not None
    assert not queue.update("r", b"operator", owner=None, settled=True)  # a claim is open
    clock.advance(LEASE * 2)
    assert not queue.update("r", b"operator", owner=None, settled=True)  # lapsed, but still open
    taken = _claim(queue, "w2")
    assert taken.lapsed
    assert queue.update("r", b"failed", owner=taken.owner, settled=True)
    assert not queue.update("r", b"retry", owner=None, due_at=clock.now)  # settled is for good
    assert queue.update("r", b"failed, annotated", owner=None)
    assert queue.get("r") == b"failed, annotated"
    assert queue.stats().pending == 0


def test_wait_says_whether_something_is_claimable(queue: Queue, clock: FakeClock) -> None:
    assert queue.wait(0) is False
    queue.put("later", b"", due_at=clock.now + 60)
    assert queue.wait(0.05) is False  # the clock stands still, so "later" never falls due
    queue.put("now", b"")
    assert queue.wait(0) is True
    assert _claim(queue, "w").ref == "now"
    assert queue.wait(0) is False
    clock.advance(LEASE)  # the lease lapses before "later" falls due
    assert queue.wait(0) is True


def test_wait_under_a_full_cap_waits_for_a_slot(queue: Queue, clock: FakeClock) -> None:
    queue.put("a", b"")
    queue.put("b", b"")
    first = _claim(queue, "w", lease=10, max_in_flight=1)
    assert queue.wait(0) is True  # without a cap, "b" is claimable
    assert queue.wait(0.05, max_in_flight=1) is False  # with one, it waits for the slot
    clock.advance(10)
    assert queue.wait(0, max_in_flight=1) is True  # the lease lapsed: "a" is claimable again
    clock.advance(-10)
    assert queue.update("a", b"", owner=first.owner, settled=True)
    assert queue.wait(0, max_in_flight=1) is True  # the holder reported back: the slot is free


def test_wait_under_a_full_cap_wakes_on_a_settle(queue: Queue) -> None:
    queue.put("a", b"")
    queue.put("b", b"")
    held = _claim(queue, "w", max_in_flight=1)
    started = threading.Event()
    answers: list[bool] = []

    def waiter() -> None:
        started.set()
        answers.append(queue.wait(30, max_in_flight=1))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    assert queue.update("a", b"", owner=held.owner, settled=True)
    thread.join(30)
    assert answers == [True]


def test_wait_wakes_on_a_put_from_another_thread(queue: Queue) -> None:
    started = threading.Event()
    answers: list[bool] = []

    def waiter() -> None:
        started.set()
        answers.append(queue.wait(30))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    queue.put("r", b"")
    thread.join(30)
    assert answers == [True]


def test_arguments_are_checked(queue: Queue) -> None:
    for bad in (
        lambda: queue.put("", b""),
        lambda: queue.claim("", lease=LEASE),
        lambda: queue.claim("w", lease=0),
        lambda: queue.update("r", b"", owner="w", settled=True, due_at=1.0),
        lambda: queue.update("r", b"", owner="w", settled=True, lease=5),
        lambda: queue.update("r", b"", owner="", settled=True),
    ):
        with pytest.raises(ValueError):
            bad()


def test_durability_is_stated(queue: Queue) -> None:
    facts = queue.durability()
    assert facts["backend"] == queue.backend
    expected = {"memory": False, "sqlite": True, "redis": True}[queue.backend]
    assert facts["survives_process_crash"] is expected
    assert set(facts) == {
        "backend",
        "survives_process_crash",
        "survives_power_cut",
        "survives_store_restart",
        "loss_window",
        "settings",
        "warning",
    }


# -- across processes (SQLite, Redis) --------------------------------------------------------------


def _claim_all(spec: Spec, owner: str, start: Any) -> list[str]:
    queue = _open_spec(spec)
    start.wait()  # line the workers up so that their claims really overlap
    got = _drain(queue, owner)
    queue.close()
    return got


def test_processes_claim_each_item_once(backend_spec: Spec, spawn_pool: Pool) -> None:
    queue = _open_spec(backend_spec)
    refs = [f"ref-{i:03d}" for i in range(200)]
    for ref in refs:
        queue.put(ref, ref.encode())
    with multiprocessing.get_context("spawn").Manager() as manager:
        start = manager.Event()
        work = [(backend_spec, f"proc-{i}", start) for i in range(4)]
        results = spawn_pool.starmap_async(_claim_all, work, chunksize=1)
        start.set()
        claimed = Counter(ref for got in results.get(120) for ref in got)
    assert sorted(claimed) == refs
    assert set(claimed.values()) == {1}
    assert queue.stats().pending == 0
    assert all(queue.get(ref) == b"done" for ref in refs)


_PUT_THEN_DIE = """
import os, signal, sys
from tests.test_queue import _open_spec
queue = _open_spec((sys.argv[1], sys.argv[2]))
queue.put("accepted", b"a ticket nobody may lose")
os.kill(os.getpid(), signal.SIGKILL)
"""

_READ = """
import sys
from tests.test_queue import _open_spec
queue = _open_spec((sys.argv[1], sys.argv[2]))
claimed = queue.claim("next-process", lease=30)
print(claimed.ref, claimed.record.decode(), claimed.lapsed)
"""


def test_a_put_survives_the_process_being_killed(backend_spec: Spec) -> None:
    died = run_python(_PUT_THEN_DIE, *backend_spec)
    assert died.returncode == -signal.SIGKILL, died.stderr
    read = run_python(_READ, *backend_spec)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "accepted a ticket nobody may lose False"


def test_a_forked_child_uses_connections_of_its_own(backend_spec: Spec) -> None:
    # gunicorn forks workers from a master that may have used the queue: the child must not share
    # the parent's SQLite connections or Redis sockets.
    queue = _open_spec(backend_spec)
    queue.put("parent", b"")
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        try:
            queue.put("child", b"from the child")
            claimed = queue.claim("child", lease=LEASE)
            os._exit(0 if claimed is not None and claimed.ref == "parent" else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert queue.get("child") == b"from the child"
    claimed = queue.claim("parent", lease=LEASE)
    assert claimed is not None and claimed.ref == "child"
    queue.close()


# -- SQLite specifics -------------------------------------------------------------------------------


def test_sqlite_queue_shares_the_state_file_and_syncs_fully(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    store.set("token", b"t")
    queue = SQLiteQueue(path)
    queue.put("r", b"v")
    facts = queue.durability()
    assert facts["settings"] == {"journal_mode": "wal", "synchronous": "FULL"}
    assert facts["survives_power_cut"] is True and facts["warning"] is None and facts["loss_window"] == "none"
    assert store.get("token") == b"t"
    with store._file._borrowed() as conn:  # the store's own connections keep their cheaper setting
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with sqlite3.connect(path) as raw:
        tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"state_kv", "state_queue"} <= tables
    store.close()
    queue.close()


_GREENLETS = """
import sys
from gevent import monkey
monkey.patch_all()
import gevent
from zoho_gateway.state.queue_sqlite import SQLiteQueue
queue = SQLiteQueue(sys.argv[1])
def deliver(i):
    queue.put(f"ref-{i}", b"")
    claimed = queue.claim(f"greenlet-{i}", lease=30)
    assert claimed is not None and queue.update(claimed.ref, b"done", owner=claimed.owner, settled=True)
for batch in range(5):
    gevent.joinall([gevent.spawn(deliver, batch * 100 + i) for i in range(100)], raise_error=True)
""" + OPEN_FILES_SOURCE + """
print(len(queue.list_items(limit=1000)), queue.stats().pending, open_files(queue.path))
"""


def test_sqlite_under_gevent_reuses_connections_across_greenlets(tmp_path: Path) -> None:
    # Under the gevent worker each request is a new greenlet: the queue's pool must not open one
    # connection per greenlet, as a threading.local would.
    out = run_python(_GREENLETS, str(tmp_path / "state.db"))
    assert out.returncode == 0, out.stderr
    items, pending, open_files = out.stdout.split()
    assert (items, pending) == ("500", "0")
    assert int(open_files) <= 2


def test_sqlite_failures_become_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        SQLiteQueue(tmp_path).put("r", b"secret record")  # a directory is not a database
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert "secret" not in str(caught.value)


# -- Redis specifics --------------------------------------------------------------------------------


@contextmanager
def _redis_server(workdir: Path, *args: str, port: int | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of our own (the session one runs without persistence), killed on exit."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not on PATH"
    port = port or free_port()
    workdir.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(500):
            if answers_ping(port) or proc.poll() is not None:
                break
            threading.Event().wait(0.02)
        assert proc.poll() is None, "redis-server exited at start"
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.kill()
        proc.wait()


def test_redis_without_aof_says_items_die_with_redis(redis_url: str) -> None:
    facts = RedisQueue(redis_url).durability()
    assert facts["settings"]["appendonly"] == "no"
    assert facts["survives_process_crash"] is True
    assert facts["survives_store_restart"] is False and facts["survives_power_cut"] is False
    assert facts["warning"] is not None and "appendonly" in facts["warning"]


def test_redis_with_aof_everysec_meets_the_guarantee(tmp_path: Path) -> None:
    with _redis_server(tmp_path / "aof", "--appendonly", "yes") as (url, _):
        facts = RedisQueue(url).durability()
    assert facts["settings"]["appendonly"] == "yes" and facts["settings"]["appendfsync"] == "everysec"
    assert facts["survives_store_restart"] is True
    assert facts["survives_power_cut"] is False and "1 s" in facts["loss_window"]
    assert facts["warning"] is None


def test_redis_that_may_evict_queue_keys_is_flagged(tmp_path: Path) -> None:
    args = ("--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "allkeys-lru")
    with _redis_server(tmp_path / "lru", *args) as (url, _):
        facts = RedisQueue(url).durability()
    assert facts["survives_power_cut"] is True and facts["loss_window"] == "none"
    assert facts["warning"] is not None and "allkeys-lru" in facts["warning"]


def test_redis_that_refuses_config_is_unknown(tmp_path: Path) -> None:
    with _redis_server(tmp_path / "managed", "--rename-command", "CONFIG", "") as (url, _):
        queue = RedisQueue(url)
        queue.put("r", b"v")  # the queue itself still works
        facts = queue.durability()
    assert facts["settings"] == {}
    assert facts["survives_store_restart"] is None and facts["survives_power_cut"] is None
    assert facts["loss_window"] == "unknown" and facts["warning"] is not None


def test_redis_with_aof_keeps_items_across_a_redis_crash(tmp_path: Path) -> None:
    port = free_port()
    workdir = tmp_path / "crash"
    args = ("--appendonly", "yes", "--appendfsync", "always")
    with _redis_server(workdir, *args, port=port) as (url, server):
        queue = RedisQueue(url)
        queue.put("in-flight", b"sending")
        queue.put("waiting", b"a ticket nobody may lose")
        claimed = queue.claim("w", lease=LEASE)
        assert claimed is not None and claimed.ref == "in-flight"
        server.send_signal(signal.SIGKILL)
        server.wait()
    with _redis_server(workdir, *args, port=port) as (url, _):
        queue = RedisQueue(url)  # a fresh process's view: new connections, scripts not yet loaded
        assert queue.get("waiting") == b"a ticket nobody may lose"
        claimed = queue.claim("w2", lease=LEASE)  # the in-flight lease survived the crash too
        assert claimed is not None and claimed.ref == "waiting"
        assert queue.stats().pending == 2
        queue.close()


def test_redis_wait_blocks_on_the_server_instead_of_polling(redis_url: str) -> None:
    queue = RedisQueue(redis_url, namespace=f"test-{uuid.uuid4().hex}:")
    watcher = redis.Redis.from_url(redis_url)
    blocked_before = int(watcher.info("clients")["blocked_clients"])
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(queue.wait(30)))
    thread.start()
    # Wait (bounded) until the waiter sits in BLPOP on the server.
    for _ in range(1000):
        if int(watcher.info("clients")["blocked_clients"]) > blocked_before:
            break
        threading.Event().wait(0.01)
    else:
        pytest.fail("the waiter never blocked on the server")
    queue.put("r", b"")
    thread.join(30)
    assert answers == [True]
    watcher.close()
    queue.close()


def test_redis_failures_become_store_unavailable() -> None:
    queue = RedisQueue(f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable) as caught:
        queue.put("r", b"secret record")
    with pytest.raises(StoreUnavailable):
        queue.wait(1)
    assert "s3cret-pw" not in str(caught.value) and "secret record" not in str(caught.value)


# -- open_queue -------------------------------------------------------------------------------------


def test_open_queue_follows_the_state_url(tmp_path: Path, redis_url: str) -> None:
    assert isinstance(open_queue("memory://"), MemoryQueue)
    sqlite_queue = open_queue(f"sqlite:///{tmp_path}/state.db")
    assert isinstance(sqlite_queue, SQLiteQueue) and sqlite_queue.path == str(tmp_path / "state.db")
    redis_queue = open_queue(redis_url)
    assert isinstance(redis_queue, RedisQueue)
    redis_queue.ping()
    with pytest.raises(ValueError) as caught:
        open_queue("postgres://user:hunter2@db/x")
    assert str(caught.value).startswith("GATEWAY_STATE_URL ") and "hunter2" not in str(caught.value)
    assert os.path.exists(tmp_path) and not (tmp_path / "state.db").exists()  # opening connects nothing
