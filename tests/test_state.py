"""The shared-state contract on every backend, against real storage: a temp SQLite file, a live Redis."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest
import redis

from tests.helpers import OPEN_FILES_SOURCE, Spec, burst, free_port, run_python, spec_for
from zoho_gateway.state import (
    MemoryStore,
    RedisStore,
    SQLiteStore,
    Store,
    StoreUnavailable,
    open_store,
)

THREADS = 20


def _open_spec(spec: Spec) -> Store:
    kind, where = spec
    if kind == "sqlite":
        return SQLiteStore(where)
    url, namespace = where.split(" ")
    return RedisStore(url, namespace=namespace)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        backend: Store = MemoryStore()
    else:
        backend = _open_spec(spec_for(request.param, request, tmp_path))
    yield backend
    backend.close()


# -- the contract, on every backend -----------------------------------------------------------------


def test_get_set_replace_and_delete(store: Store) -> None:
    assert store.get("missing") is None
    store.set("k", b"\x00binary\xff")
    assert store.get("k") == b"\x00binary\xff"
    store.set("k", b"second")
    assert store.get("k") == b"second"
    store.delete("k")
    assert store.get("k") is None
    store.delete("k")  # deleting what is absent is not an error
    store.ping()


def test_ttl_expiry(store: Store) -> None:
    store.set("short", b"v", ttl=0.2)
    assert store.get("short") == b"v"
    # A plain set removes an earlier expiry.
    store.set("k", b"v", ttl=0.2)
    store.set("k", b"v")
    time.sleep(0.3)
    assert store.get("short") is None
    assert store.get("k") == b"v"


def test_add_is_a_claim(store: Store) -> None:
    won = burst(lambda i: store.add("claim", str(i).encode(), ttl=5), THREADS)
    assert won.count(True) == 1
    assert store.get("claim") == str(won.index(True)).encode()


def test_add_succeeds_once_the_claim_lapsed(store: Store) -> None:
    assert store.add("claim", b"first", ttl=0.2)
    assert not store.add("claim", b"second", ttl=0.2)
    time.sleep(0.3)
    assert store.add("claim", b"third")
    assert store.get("claim") == b"third"


def test_incr_is_atomic(store: Store) -> None:
    def bump(_: int) -> None:
        for _ in range(50):
            store.incr("hits", ttl=30)

    burst(bump, THREADS)
    assert store.get("hits") == b"1000"
    assert store.incr("hits", 0) == 1000
    assert store.incr("hits", -10) == 990


def test_incr_keeps_the_window_expiry(store: Store) -> None:
    assert store.incr("window", ttl=0.6) == 1
    time.sleep(0.3)
    assert store.incr("window", 5, ttl=0.6) == 6
    time.sleep(0.45)
    # The window ended 0.6 s after the first call; had the second call reset it, it would last until 0.9 s.
    assert store.get("window") is None
    assert store.incr("window", ttl=0.6) == 1  # a new window starts from zero


def test_incr_without_ttl_never_expires(store: Store) -> None:
    assert store.incr("forever") == 1
    time.sleep(0.2)
    assert store.incr("forever") == 2


def test_incr_refuses_a_value_that_is_not_a_counter(store: Store) -> None:
    store.set("text", b"hello")
    with pytest.raises(ValueError):
        store.incr("text")
    assert store.get("text") == b"hello"


def test_non_positive_durations_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.set("k", b"v", ttl=0)
    with pytest.raises(ValueError):
        store.add("k", b"v", ttl=-1)
    with pytest.raises(ValueError):
        store.acquire_lock("l", lease=0, wait=0)


def test_lock_excludes_other_threads(store: Store) -> None:
    inside = [0]
    overlaps = [0]

    def work(_: int) -> None:
        for _ in range(10):
            with store.lock("counter", lease=5, wait=10) as held:
                assert held
                inside[0] += 1
                if inside[0] > 1:
                    overlaps[0] += 1
                # A read-modify-write that loses updates unless the lock excludes everyone else.
                value = int(store.get("n") or b"0")
                time.sleep(0.001)
                store.set("n", str(value + 1).encode())
                inside[0] -= 1

    burst(work, 5)
    assert overlaps[0] == 0
    assert store.get("n") == b"50"


def test_lock_wait_times_out(store: Store) -> None:
    owner = store.acquire_lock("busy", lease=5, wait=0)
    assert owner is not None
    started = time.monotonic()
    assert store.acquire_lock("busy", lease=5, wait=0.2) is None
    assert 0.2 <= time.monotonic() - started < 1.0
    started = time.monotonic()
    assert store.acquire_lock("busy", lease=5, wait=0) is None
    assert time.monotonic() - started < 0.2
    with store.lock("busy", lease=5, wait=0) as held:
        assert not held
    store.release_lock("busy", owner)
    with store.lock("busy", lease=5, wait=0) as held:
        assert held


def test_lapsed_lease_can_be_taken_over(store: Store) -> None:
    first = store.acquire_lock("lease", lease=0.2, wait=0)
    assert first is not None
    started = time.monotonic()
    second = store.acquire_lock("lease", lease=5, wait=2)
    assert second is not None and second != first
    assert time.monotonic() - started >= 0.1
    # The first holder waking up late must not free the lock the second one holds now.
    store.release_lock("lease", first)
    assert store.acquire_lock("lease", lease=5, wait=0) is None
    store.release_lock("lease", second)
    assert store.acquire_lock("lease", lease=5, wait=0) is not None


def test_release_by_a_non_owner_does_nothing(store: Store) -> None:
    owner = store.acquire_lock("mine", lease=5, wait=0)
    assert owner is not None
    store.release_lock("mine", "someone-else")
    assert store.acquire_lock("mine", lease=5, wait=0) is None
    store.release_lock("mine", owner)


def test_locks_and_keys_do_not_collide(store: Store) -> None:
    store.set("same", b"value")
    assert store.acquire_lock("same", lease=5, wait=0) is not None
    assert store.get("same") == b"value"


# -- across processes (SQLite, Redis) --------------------------------------------------------------


def _wait_until(start_at: float) -> None:
    # Lines the workers up so that their calls really overlap.
    time.sleep(max(0.0, start_at - time.time()))


def _claim_keys(spec: Spec, start_at: float) -> list[str]:
    store = _open_spec(spec)
    _wait_until(start_at)
    won = [f"k{i}" for i in range(50) if store.add(f"k{i}", str(os.getpid()).encode(), ttl=30)]
    store.close()
    return won


def _count(spec: Spec, start_at: float) -> None:
    store = _open_spec(spec)
    _wait_until(start_at)
    for _ in range(250):
        store.incr("hits", ttl=30)
    store.close()


def _locked_read_modify_write(spec: Spec, start_at: float) -> None:
    store = _open_spec(spec)
    _wait_until(start_at)
    for _ in range(15):
        with store.lock("rmw", lease=5, wait=15) as held:
            assert held
            value = int(store.get("n") or b"0")
            time.sleep(0.001)
            store.set("n", str(value + 1).encode())
    store.close()


def _hold_lock_forever(spec: Spec, lease: float) -> None:
    store = _open_spec(spec)
    # The lease runs from some instant after this one, so it cannot lapse before this + lease.
    before = time.time()
    assert store.acquire_lock("doomed", lease=lease, wait=0) is not None
    store.set("taken_at", repr(before).encode())
    time.sleep(60)  # killed long before this ends


def _take_after_holder_died(spec: Spec) -> float:
    store = _open_spec(spec)
    owner = store.acquire_lock("doomed", lease=5, wait=10)
    assert owner is not None
    taken = time.time()
    time.sleep(0.02)
    store.release_lock("doomed", owner)
    store.close()
    return taken


def _start_soon() -> float:
    return time.time() + 0.3


def test_processes_claim_each_key_once(backend_spec: Spec, spawn_pool: Pool) -> None:
    results = spawn_pool.starmap(_claim_keys, [(backend_spec, _start_soon())] * 4, chunksize=1)
    won = sorted(key for keys in results for key in keys)
    assert won == sorted(f"k{i}" for i in range(50))


def test_processes_count_exactly(backend_spec: Spec, spawn_pool: Pool) -> None:
    spawn_pool.starmap(_count, [(backend_spec, _start_soon())] * 4, chunksize=1)
    assert _open_spec(backend_spec).get("hits") == b"1000"


def test_processes_exclude_each_other_under_a_lock(backend_spec: Spec, spawn_pool: Pool) -> None:
    spawn_pool.starmap(_locked_read_modify_write, [(backend_spec, _start_soon())] * 4, chunksize=1)
    assert _open_spec(backend_spec).get("n") == b"60"


def test_a_killed_holder_lets_its_lease_lapse(backend_spec: Spec, spawn_pool: Pool) -> None:
    lease = 1.5
    spawn = multiprocessing.get_context("spawn")
    holder = spawn.Process(target=_hold_lock_forever, args=(backend_spec, lease))
    holder.start()
    store = _open_spec(backend_spec)
    deadline = time.monotonic() + 10
    while (taken_at := store.get("taken_at")) is None:
        assert holder.is_alive() and time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.02)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert holder.exitcode == -signal.SIGKILL
    assert store.acquire_lock("doomed", lease=5, wait=0) is None  # the dead holder's lease still runs
    taken = spawn_pool.map(_take_after_holder_died, [backend_spec] * 4, chunksize=1)
    lapsed_at = float(taken_at) + lease
    assert all(t >= lapsed_at for t in taken)
    assert max(taken) - lapsed_at < 5


def _count_in_forked_child(store: Store) -> None:
    # An exception here makes the child exit with code 1, which the parent checks.
    for _ in range(100):
        store.incr("forked", ttl=30)


def test_a_store_used_before_fork_works_in_both_processes(backend_spec: Spec) -> None:
    store = _open_spec(backend_spec)
    store.incr("forked", ttl=30)  # the parent now holds a live connection
    child = multiprocessing.get_context("fork").Process(target=_count_in_forked_child, args=(store,))
    child.start()
    for _ in range(100):
        store.incr("forked", ttl=30)
    child.join()
    assert child.exitcode == 0
    assert store.get("forked") == b"201"
    store.close()


# -- SQLite specifics -------------------------------------------------------------------------------


def test_sqlite_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "state.db"
    store = SQLiteStore(path)
    store.set("k", b"v")
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    assert store.get("k") == b"v"  # reopens after close


def test_sqlite_closes_connections_of_finished_threads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    store.set("k", b"v")
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        # One short-lived thread per call, as a thread-per-request server would do.
        thread = threading.Thread(target=store.get, args=("k",))
        thread.start()
        thread.join()
    assert len(os.listdir("/proc/self/fd")) - fds_before < 10
    store.close()


_GREENLETS = """
import sys
from gevent import monkey
monkey.patch_all()
import gevent
from zoho_gateway.state.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
def request():
    store.get("k")
    store.incr("n")
for _ in range(10):
    gevent.joinall([gevent.spawn(request) for _ in range(100)])
""" + OPEN_FILES_SOURCE + """
print(store.get("n").decode(), open_files(store.path))
"""


def test_sqlite_under_gevent_reuses_connections_across_greenlets(tmp_path: Path) -> None:
    # The gevent worker runs each request in a new greenlet, which threading.local sees as a new thread: a
    # per-thread connection would open (and keep) one connection per request. 1,000 greenlets in their own
    # process (monkey-patching this one would change every other test) must share a handful.
    out = run_python(_GREENLETS, str(tmp_path / "state.db"))
    assert out.returncode == 0, out.stderr
    count, open_files = out.stdout.split()
    assert count == "1000"
    assert int(open_files) <= 2


def test_sqlite_purges_lapsed_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path, purge_every=0)
    store.set("old", b"v", ttl=0.1)
    store.incr("old-counter", ttl=0.1)
    assert store.acquire_lock("old-lock", lease=0.1, wait=0)
    time.sleep(0.2)
    store.set("new", b"v")
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT key FROM state_kv").fetchall() == [("new",)]
        assert raw.execute("SELECT count(*) FROM state_locks").fetchone()[0] == 0


def test_sqlite_failures_become_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        SQLiteStore(blocker / "state.db").ping()
    with pytest.raises(StoreUnavailable) as caught:
        SQLiteStore(tmp_path).get("k")  # a directory is not a database
    assert isinstance(caught.value.__cause__, sqlite3.Error)


# -- Redis specifics --------------------------------------------------------------------------------


def test_redis_refused_fails_fast() -> None:
    store = RedisStore(f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.incr("k")
    assert time.monotonic() - started < 2.0
    assert "s3cret-pw" not in str(caught.value)


def test_redis_that_never_answers_fails_fast() -> None:
    # A peer that accepts connections and then says nothing: the socket timeout must end the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = RedisStore(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.get("k")
        assert time.monotonic() - started < 2.0


def test_redis_keys_live_under_the_namespace(redis_url: str) -> None:
    namespace = f"ns-{uuid.uuid4().hex}:"
    store = RedisStore(redis_url, namespace=namespace)
    store.set("k", b"v")
    other = RedisStore(redis_url, namespace="elsewhere:")
    assert other.get("k") is None
    raw = redis.Redis.from_url(redis_url)
    assert raw.get(f"{namespace}kv:k") == b"v"
    for client in (store, other, raw):
        client.close()


# -- open_store -------------------------------------------------------------------------------------


def test_open_store_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_open_store_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///var/state.db")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == str(tmp_path / "var" / "state.db")
    relative.ping()
    assert (tmp_path / "var" / "state.db").exists()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == str(tmp_path / "abs.db")


@pytest.mark.parametrize(
    "url",
    ["redis://localhost:6379/0", "redis://:pw@cache.internal:6380/2", "rediss://:pw@cache", "redis://h"],
)
def test_open_store_redis_forms(url: str) -> None:
    assert isinstance(open_store(url), RedisStore)  # nothing connects until first use


def test_open_store_redis_round_trip(redis_url: str) -> None:
    store = open_store(redis_url)
    store.ping()
    assert store.backend == "redis" and store.shared_across_processes


@pytest.mark.parametrize(
    "url",
    [
        "",
        "state.db",
        "postgres://user:hunter2@db/x",
        "memory://somewhere",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/state.db",
        "redis://:hunter2@",
        "redis://:hunter2@host:notaport/0",
        "redis://:hunter2@host/zero",
        "redis://:hunter2@host/0?socket_timeout=soon",
    ],
)
def test_open_store_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith("GATEWAY_STATE_URL ")
    assert "sqlite:///" in message and "redis://" in message and "memory://" in message
    assert "\n" not in message and "hunter2" not in message
