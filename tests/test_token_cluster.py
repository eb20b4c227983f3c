"""Token management across real processes: gunicorn workers and masters sharing SQLite or Redis state.

Every scenario runs ``gunicorn wsgi:app`` (tests/servers.py) against the Zoho sandbox that runs in this
process, and counts what reached the sandbox's token endpoint: ``mints`` (tokens issued) and
``token_calls`` (every call, refused ones included). No mocks: real processes, real sockets, real SQLite
files and redis-servers. ``pytest -s`` prints the measured counts; the module prints a summary at the end.

Only what needs real processes stays here (forked workers, a SIGKILLed lock holder, a dying Redis, start-up
checks), on lifetimes, leases and back-offs as short as still prove the claim. What needs only time to pass
(renewal over many lifetimes, serving a valid token through a throttle, a slow mint) runs on driven clocks in
test_token_manager.py.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from cryptography.fernet import Fernet

from tests.helpers import TICKET, assert_error, burst, error_code, log_lines, wait_for
from tests.measured import Measurements
from tests.redis_server import redis_db, start_redis_server
from tests.servers import GunicornGateway, GunicornStarter, Sandbox
from zoho_gateway.state import open_store
from zoho_gateway.state.sealing import Sealer
from zoho_gateway.zoho.tokens import TOKEN_KEY, fingerprint

#: Redis databases of the session server, one per test that uses it, flushed before use.
DB_TWO_MASTERS, DB_SEALED, DB_SHORT_LIVED = 5, 6, 7

#: Numbers for the closing note, printed when the module ends.
report = Measurements("token-cluster")
_summary = report.summary_fixture()


# --- helpers ------------------------------------------------------------------------------------------------


def create(url: str, timeout: float = 30.0) -> requests.Response:
    return requests.post(f"{url}/requests", json=TICKET, timeout=timeout)


def statuses(answers: Sequence[requests.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
    return counts


def counters(sandbox: Sandbox) -> tuple[int, int]:
    stats = sandbox.stats()
    return int(stats["mints"]), int(stats["token_calls"])


def token_status(url: str) -> tuple[requests.Response, dict[str, Any]]:
    answer = requests.get(f"{url}/token/status", timeout=10)
    return answer, answer.json()


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    answer = requests.get(f"{url}/readyz", timeout=10)
    return answer.status_code, answer.json()


def audit_lines(server: GunicornGateway) -> list[dict[str, Any]]:
    """The ``token_mint`` audit events of one gunicorn's log file."""
    return [record for record in log_lines(server.logs()) if record.get("event") == "token_mint"]


def stored_record(state_url: str) -> dict[str, Any] | None:
    store = open_store(state_url)
    try:
        raw = store.get(TOKEN_KEY)
    finally:
        store.close()
    return None if raw is None else dict(json.loads(raw))


def stored_token(state_url: str, key: str | None = None) -> str:
    record = stored_record(state_url)
    assert record is not None, "no token in the shared store"
    return Sealer(key).open(record["t"], bool(record.get("enc")))


def all_workers(server: GunicornGateway, count: int) -> list[int]:
    """The worker pids once all ``count`` workers have been forked (healthy means one answers)."""
    wait_for(lambda: len(server.worker_pids()) == count, timeout=10, pause=0.05)
    return sorted(server.worker_pids())


def sqlite_url(tmp_path: Path) -> str:
    # The state file make_gunicorn gives every gunicorn of a test.
    return f"sqlite:///{tmp_path}/state.db"


def pids_connected_to(port: int, pids: Sequence[int]) -> list[int]:
    """Which of ``pids`` hold an established TCP connection to 127.0.0.1:``port`` (read from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found


# --- 1. one host, four workers, SQLite ----------------------------------------------------------------------


def test_cold_start_burst_mints_once_and_restart_reuses_the_stored_token(
    sandbox: Sandbox, make_gunicorn: GunicornStarter
) -> None:
    first = make_gunicorn(workers=4)
    answers = burst(lambda _: create(first.url), 200, 64)
    assert statuses(answers) == {201: 200}
    mints, calls = counters(sandbox)
    report("1 cold start, 4 workers sqlite, 200 req/64 threads", mints=mints, token_calls=calls)
    assert (mints, calls) == (1, 1)
    minted = [event for event in audit_lines(first) if event["outcome"] == "minted"]
    assert len(minted) == 1
    first.stop()

    second = make_gunicorn(workers=4)
    answers = burst(lambda _: create(second.url), 200, 64)
    assert statuses(answers) == {201: 200}
    mints_after, calls_after = counters(sandbox)
    report("1 full restart on the same state, 200 req", further_mints=mints_after - mints)
    assert (mints_after, calls_after) == (1, 1)
    assert audit_lines(second) == []


# --- 2. two hosts, one Redis --------------------------------------------------------------------------------


def test_two_masters_sharing_redis_mint_once(sandbox: Sandbox, make_gunicorn: GunicornStarter, redis_url: str) -> None:
    state = redis_db(redis_url, DB_TWO_MASTERS)
    host_a = make_gunicorn(workers=2, GATEWAY_STATE_URL=state)
    host_b = make_gunicorn(workers=2, GATEWAY_STATE_URL=state)
    urls = [host_a.url, host_b.url]
    answers = burst(lambda i: create(urls[i % len(urls)]), 200, 64)
    assert statuses(answers) == {201: 200}
    mints, calls = counters(sandbox)
    report("2 two masters x 2 workers, shared redis, 200 req", mints=mints, token_calls=calls)
    assert (mints, calls) == (1, 1)
    _, status_a = token_status(host_a.url)
    _, status_b = token_status(host_b.url)
    assert status_a["backend"] == status_b["backend"] == "redis"
    assert status_a["fingerprint"] == status_b["fingerprint"] is not None


# --- 3. short-lived tokens under steady load ----------------------------------------------------------------


def test_short_lived_tokens_refresh_once_per_usable_lifetime(
    sandbox: Sandbox, make_gunicorn: GunicornStarter, redis_url: str
) -> None:
    # Real processes on real time, briefly: two masters x two workers, 2 s of usable lifetime, 5 s of load.
    # The same claim over hours of lifetimes, on SQLite and Redis, runs on driven clocks in test_token_manager.py.
    ttl, margin, duration = 4, 2, 5.0
    topology = "redis, 2 masters x 2 workers"
    sandbox.settings(token_ttl=ttl)
    state = redis_db(redis_url, DB_SHORT_LIVED)
    urls = [
        make_gunicorn(workers=2, GATEWAY_STATE_URL=state, ZOHO_TOKEN_REFRESH_MARGIN=str(margin)).url for _ in range(2)
    ]
    failures: list[str] = []
    done = [0]
    guard = threading.Lock()
    started = time.monotonic()

    def load(url: str) -> None:
        while time.monotonic() - started < duration:
            try:
                answer = create(url, timeout=10)
                ok = answer.status_code == 201
                detail = f"{answer.status_code} {answer.text[:200]}"
            except requests.RequestException as exc:
                ok, detail = False, type(exc).__name__
            with guard:
                done[0] += 1
                if not ok:
                    failures.append(detail)
            time.sleep(0.02)

    threads = [threading.Thread(target=load, args=(urls[i % len(urls)],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 30)
    elapsed = time.monotonic() - started
    mints, calls = counters(sandbox)
    usable = ttl - margin
    # The first mint is at the start; each next one comes once the previous token enters its margin,
    # so never more than 1 + elapsed // usable, and at most one fewer if the last renewal is just due.
    expected = 1 + math.floor(elapsed / usable)
    report(
        f"3 ttl={ttl}s margin={margin}s, {topology}, {elapsed:.1f}s steady load",
        requests=done[0],
        failed=len(failures),
        mints=mints,
        token_calls=calls,
        expected=expected,
    )
    assert failures == []
    assert done[0] >= 20
    assert expected - 1 <= mints <= expected
    assert calls == mints


# --- 4. throttled token endpoint ----------------------------------------------------------------------------


@pytest.mark.parametrize("throttle_status", [200, 400])
def test_throttle_backs_off_cluster_wide_then_heals(
    sandbox: Sandbox, make_gunicorn: GunicornStarter, throttle_status: int
) -> None:
    backoff = 2  # outlasts the burst and the status and readiness checks that follow it
    sandbox.settings(throttle_http_status=throttle_status)
    sandbox.fault(target="token", kind="throttle")
    server = make_gunicorn(workers=4, ZOHO_TOKEN_THROTTLE_BACKOFF=str(backoff))
    started = time.monotonic()
    answers = burst(lambda _: create(server.url), 100, 64)
    took = time.monotonic() - started
    for answer in answers:
        assert_error(answer, 503, "zoho_token_throttled", retry_after=True)
    mints, calls = counters(sandbox)
    report(
        f"4 throttle (HTTP {throttle_status}), no token, 100 req in {took:.1f}s",
        token_calls=calls,
        mints=mints,
    )
    assert mints == 0
    assert 1 <= calls <= 2

    answer, status = token_status(server.url)
    assert answer.status_code == 200
    assert status["throttled"] is True and status["token_held"] is False
    assert status["backoff"]["kind"] == "throttled"
    ready, facts = readyz(server.url)
    assert ready == 503 and facts["token_backoff"] == "throttled"
    failures = [event for event in audit_lines(server) if event["outcome"] == "failure"]
    assert len(failures) == calls
    assert all(event["kind"] == "throttled" and event["reason"] == "Access Denied" for event in failures)

    sandbox.clear_faults()
    healed = wait_for(lambda: create(server.url).status_code == 201, timeout=backoff + 5, pause=0.25)
    mints, calls_after = counters(sandbox)
    report(f"4 throttle (HTTP {throttle_status}) cleared", healed_after_s=round(healed, 1), mints=mints)
    assert mints == 1
    assert readyz(server.url)[0] == 200


# --- 5. credentials refused -----------------------------------------------------------------------------


def test_refused_credentials_fail_clearly_and_heal_without_restart(
    sandbox: Sandbox, make_gunicorn: GunicornStarter
) -> None:
    # Zoho's other refusals and the setting each one names are checked on driven clocks in test_token_manager.py.
    backoff, reason, setting = 1, "invalid_code", "ZOHO_REFRESH_TOKEN"
    sandbox.revoke_refresh_token()
    server = make_gunicorn(workers=4, ZOHO_TOKEN_INVALID_BACKOFF=str(backoff))
    pids = all_workers(server, 4)
    started = time.monotonic()
    refused = burst(lambda _: create(server.url), 10, 10)
    # Asked at once: the refusal's back-off (1 s) outlasts the burst, not the whole loop below.
    ready, facts = readyz(server.url)
    assert ready == 503 and facts["token_backoff"] == "invalid_credentials"
    while time.monotonic() - started < 2 * backoff:
        time.sleep(0.1)
        refused.extend(burst(lambda _: create(server.url), 10, 10))
    elapsed = time.monotonic() - started
    for answer in refused:
        assert_error(answer, 503, "zoho_token_unavailable", retry_after=True)
    mints, calls = counters(sandbox)
    report(
        f"5 revoked refresh token, {len(refused)} req in {elapsed:.1f}s, back-off={backoff}s",
        token_calls=calls,
        mints=mints,
    )
    assert mints == 0
    assert 1 <= calls <= math.ceil(elapsed / backoff) + 1

    records = log_lines(server.logs())
    errors = [r for r in records if r.get("levelname") == "ERROR" and setting in r.get("message", "")]
    failures = [r for r in records if r.get("event") == "token_mint" and r.get("outcome") == "failure"]
    assert len(errors) == calls, [r.get("message") for r in errors]  # one line per refusal, not per request
    # The line names what to fix for this refusal, not every setting there is.
    assert not any("ZOHO_CLIENT_SECRET" in r["message"] for r in errors), [r["message"] for r in errors]
    assert len(failures) == calls
    assert all(event["kind"] == "invalid_credentials" and event["reason"] == reason for event in failures)
    assert all(event["pid"] in pids and event["host"] == socket.gethostname() for event in failures)

    sandbox.restore_refresh_token()
    wait_for(lambda: readyz(server.url)[0] == 200, timeout=backoff + 3)
    answer = create(server.url)
    assert answer.status_code == 201, answer.text
    assert counters(sandbox)[0] == 1
    assert sorted(server.worker_pids()) == pids  # healed without restarting anything


# --- 6. the lock holder dies mid-mint -----------------------------------------------------------------------


def test_killing_the_worker_that_holds_the_mint_lock_does_not_wedge_the_others(
    sandbox: Sandbox, make_gunicorn: GunicornStarter
) -> None:
    # Short time-outs make a short lease: the test waits out one lease after the kill.
    connect, read = 0.25, 1.0
    # As zoho_gateway.gateway.build_gateway computes them.
    lease, lock_wait = 3 * (connect + read) + 2, read + 2
    sandbox.fault(target="token", kind="delay", seconds=30, times=1)
    server = make_gunicorn(workers=3, ZOHO_TIMEOUT=str(read), ZOHO_CONNECT_TIMEOUT=str(connect))
    pids = all_workers(server, 3)
    sandbox_port = int(sandbox.url.rsplit(":", 1)[1])

    hung = ThreadPoolExecutor(max_workers=1)
    first = hung.submit(create, server.url)
    minting: list[int] = []

    def found() -> bool:
        minting[:] = pids_connected_to(sandbox_port, pids)
        return bool(minting)

    wait_for(found, timeout=read - 0.5, pause=0.01)
    assert len(minting) == 1
    os.kill(minting[0], signal.SIGKILL)
    killed_at = time.monotonic()
    with pytest.raises(requests.RequestException):
        first.result(timeout=10)  # its worker died under it
    hung.shutdown()

    answers: list[requests.Response] = []
    success = threading.Event()
    recovered = [math.inf]

    def client() -> None:
        while not success.is_set() and time.monotonic() - killed_at < lease + lock_wait + 5:
            answer = create(server.url)
            answers.append(answer)
            if answer.status_code == 201:
                recovered[0] = min(recovered[0], time.monotonic() - killed_at)
                success.set()
            else:
                time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = burst(lambda _: create(server.url), 30, 10)
    mints, calls = counters(sandbox)
    report(
        f"6 mint-lock holder SIGKILLed (lease {lease:.1f}s)",
        recovered_after_s=round(recovered[0], 1),
        answers=statuses(answers),
        mints=mints,
        token_calls=calls,
    )
    assert success.is_set()
    assert recovered[0] <= lease + lock_wait + 2
    assert statuses(after) == {201: 30}
    assert set(statuses(answers)) <= {201, 503}
    for answer in answers:
        if answer.status_code == 503:
            assert_error(answer, 503, "zoho_token_unavailable", retry_after=True)
    assert mints == 1  # the delayed call never completed; one mint after the lease lapsed
    assert minting[0] not in server.worker_pids()


# --- 7. Redis goes away -------------------------------------------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[tuple[Any, str]]:
    """A redis-server for one test only (this test kills it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH", pytrace=False)
    proc, port = start_redis_server(binary)
    try:
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_redis_down_keeps_serving_the_in_process_token(
    sandbox: Sandbox, make_gunicorn: GunicornStarter, own_redis: tuple[Any, str]
) -> None:
    proc, url = own_redis
    # A rate limit too, so that every request touches Redis (the limiter must fail open, not 500).
    server = make_gunicorn(workers=2, GATEWAY_STATE_URL=url, GATEWAY_RATE_LIMIT="100000/minute")
    # Enough concurrent requests that both workers adopt the token before Redis goes.
    warm = burst(lambda _: create(server.url), 64, 32)
    assert statuses(warm) == {201: 64}
    ticket_id = warm[0].json()["zoho_ticket_id"]
    assert counters(sandbox)[0] == 1
    assert readyz(server.url)[1]["state"] == "ok"

    proc.kill()
    proc.wait()
    answers = burst(lambda _: create(server.url), 60, 16)
    ready_answers = [requests.get(f"{server.url}/readyz", timeout=10) for _ in range(6)]
    status_answers = [requests.get(f"{server.url}/token/status", timeout=10) for _ in range(4)]
    reads = [requests.get(f"{server.url}/requests/{ticket_id}", timeout=10) for _ in range(6)]
    keyed = [
        requests.post(f"{server.url}/requests", json=TICKET, headers={"Idempotency-Key": f"k-{i}"}, timeout=10)
        for i in range(4)
    ]
    # A queued create (Prefer) cannot be stored durably: refused, never sent straight to Zoho instead.
    keyed.append(requests.post(f"{server.url}/requests", json=TICKET, headers={"Prefer": "respond-async"}, timeout=10))
    answers += burst(lambda _: create(server.url), 20, 4)
    mints, calls = counters(sandbox)
    local = [event for event in audit_lines(server) if event["outcome"] == "minted" and event["shared"] is False]
    report(
        "7 redis killed, 2 workers, 80 creates after",
        answers=statuses(answers),
        mints=mints,
        local_mints=len(local),
        token_calls=calls,
    )
    assert statuses(answers) == {201: 80}
    assert statuses(reads) == {200: 6}
    for answer in ready_answers:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["state"] == "unavailable" and body["status"] == "ready" and body["token"] == "valid"
    for answer in [*status_answers, *keyed]:
        assert answer.status_code == 503 and error_code(answer) == "state_unavailable", answer.text
        assert answer.headers.get("Retry-After")
    every = [*warm, *answers, *reads, *ready_answers, *status_answers, *keyed]
    assert all(answer.status_code != 500 for answer in every)
    # Each worker serves the copy it holds; only a worker that never had one may mint, once, on its own.
    assert mints == 1 + len(local) and len(local) <= 1


def test_redis_down_a_create_goes_straight_to_zoho_and_a_lost_answer_is_504(
    sandbox: Sandbox, make_gunicorn: GunicornStarter, own_redis: tuple[Any, str]
) -> None:
    """Without the queue's store, a create without Prefer is the create of before the queue: nobody can
    search for a lost answer later, so it is 504 zoho_outcome_unknown; a queued create (Prefer) is refused."""
    proc, url = own_redis
    server = make_gunicorn(workers=1, GATEWAY_STATE_URL=url, ZOHO_TIMEOUT="1")
    assert create(server.url).status_code == 201
    proc.kill()
    proc.wait()
    assert create(server.url).status_code == 201
    sandbox.fault(target="create", kind="hang_after_commit", seconds=3, times=1)
    lost = create(server.url)
    assert lost.status_code == 504 and error_code(lost) == "zoho_outcome_unknown", lost.text
    assert "look for it" in lost.json()["details"]["message"]
    queued = requests.post(f"{server.url}/requests", json=TICKET, headers={"Prefer": "respond-async"}, timeout=10)
    assert queued.status_code == 503 and error_code(queued) == "state_unavailable", queued.text
    assert create(server.url).status_code == 201
    assert sandbox.ticket_count() == 4  # the lost answer's ticket was stored, never sent again
    bypassed = [line for line in log_lines(server.logs()) if line.get("event") == "outbox_bypassed"]
    assert len(bypassed) == 1  # once per outage (one worker)


# --- 8. encryption at rest ----------------------------------------------------------------------------------


def redis_contents(client: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """Every key of ``client``'s database with all it holds, read by the key's type (strings beside the
    queue's sorted sets, hashes and streams): names, members, fields and values, joined. A type not read
    here fails, so that nothing is skipped unseen."""
    for name in client.scan_iter(count=1000):
        kind = client.type(name).decode()
        parts: list[bytes]
        if kind == "string":
            parts = [client.get(name) or b""]
        elif kind == "hash":
            parts = [piece for pair in client.hgetall(name).items() for piece in pair]
        elif kind == "zset":
            parts = list(client.zrange(name, 0, -1))
        elif kind == "set":
            parts = list(client.smembers(name))
        elif kind == "list":
            parts = list(client.lrange(name, 0, -1))
        elif kind == "stream":
            parts = [piece for _, fields in client.xrange(name) for pair in fields.items() for piece in pair]
        elif kind == "none":
            continue  # expired since the scan listed it
        else:
            raise AssertionError(f"Redis key {name!r} has a type this test does not read: {kind}")
        yield name, b"\n".join([name, *parts])


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_state_key_encrypts_the_stored_token_and_a_wrong_key_stops_the_start(
    sandbox: Sandbox, make_gunicorn: GunicornStarter, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    state = sqlite_url(tmp_path) if backend == "sqlite" else redis_db(request.getfixturevalue("redis_url"), DB_SEALED)
    key = Fernet.generate_key().decode()
    server = make_gunicorn(workers=2, GATEWAY_STATE_URL=state, GATEWAY_STATE_KEY=key)
    assert create(server.url).status_code == 201

    store = open_store(state)
    raw = store.get(TOKEN_KEY)
    store.close()
    assert raw is not None
    token = stored_token(state, key)
    assert token.startswith("1000.")
    assert token.encode() not in raw
    assert json.loads(raw)["enc"] is True
    if backend == "redis":
        client = redis.Redis.from_url(state)
        contents = dict(redis_contents(client))
        client.close()
        assert any(raw in content for content in contents.values())  # the sealed token's key was among those read
        assert [name for name, content in contents.items() if token.encode() in content] == []

    answer, status = token_status(server.url)
    assert token not in answer.text and token.split(".")[1] not in answer.text
    assert status["encrypted"] is True and status["fingerprint"] == fingerprint(token)
    assert token not in server.logs()
    server.stop()

    wrong = make_gunicorn(
        workers=2, wait=False, GATEWAY_STATE_URL=state, GATEWAY_STATE_KEY=Fernet.generate_key().decode()
    )
    assert wrong.proc is not None
    code = wrong.proc.wait(timeout=30)
    stderr = wrong.stderr_file.read_text()
    naming = [line for line in stderr.splitlines() if "GATEWAY_STATE_KEY" in line]
    report(f"8 state key ({backend})", wrong_key_exit=code, stderr_lines_naming_key=len(naming))
    assert code != 0
    assert len(naming) == 1, stderr
    assert "Traceback" not in stderr
    assert key not in stderr and token not in stderr
    assert counters(sandbox)[0] == 1


def test_wrong_state_key_stops_the_start_without_preload_too(
    sandbox: Sandbox, make_gunicorn: GunicornStarter, make_gateway: Callable[..., Any], tmp_path: Path
) -> None:
    # A token sealed with one key, minted by an in-process gateway on the state file gunicorn will use.
    state = sqlite_url(tmp_path)
    sealed = make_gateway(GATEWAY_STATE_URL=state, GATEWAY_STATE_KEY=Fernet.generate_key().decode())
    sealed.gateway.tokens.access_token()
    assert stored_record(state) is not None
    wrong = make_gunicorn(workers=2, wait=False, GUNICORN_PRELOAD="0", GATEWAY_STATE_KEY=Fernet.generate_key().decode())
    assert wrong.proc is not None
    try:
        code = wrong.proc.wait(timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("gunicorn keeps respawning workers that cannot start instead of exiting")
    assert code != 0
    assert "GATEWAY_STATE_KEY" in wrong.stderr_file.read_text()


# --- 9. /token/status and the audit line --------------------------------------------------------------------


def test_token_status_fields_and_audit_line(sandbox: Sandbox, make_gunicorn: GunicornStarter, tmp_path: Path) -> None:
    server = make_gunicorn(workers=4)
    pids = all_workers(server, 4)
    answer, empty = token_status(server.url)
    assert answer.status_code == 200
    assert empty["backend"] == "sqlite"
    assert empty["token_held"] is False and empty["expires_at"] is None and empty["mints_last_hour"] == 0

    assert statuses(burst(lambda _: create(server.url), 20, 10)) == {201: 20}
    answer, status = token_status(server.url)
    token = stored_token(sqlite_url(tmp_path))
    assert token not in answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    for field in (
        "backend",
        "token_held",
        "expires_at",
        "expires_in",
        "last_mint",
        "mints_last_hour",
        "throttled",
        "backoff",
        "fingerprint",
    ):
        assert field in status, field
    assert status["backend"] == "sqlite" and status["token_held"] is True
    assert 3590 <= status["expires_in"] <= 3600
    assert status["expires_at"].endswith("+00:00")
    assert status["mints_last_hour"] == 1
    assert status["throttled"] is False and status["backoff"] is None
    assert status["fingerprint"] == fingerprint(token)
    last = status["last_mint"]
    assert last["outcome"] == "minted" and last["pid"] in pids and last["host"] == socket.gethostname()

    events = audit_lines(server)
    report("9 status + audit, 20 req", mints=counters(sandbox)[0], audit_lines=len(events))
    assert len(events) == 1
    event = events[0]
    assert event["event"] == "token_mint" and event["outcome"] == "minted"
    assert event["pid"] == last["pid"] and event["host"] == socket.gethostname()
    # Why it minted: a cold start has nothing stored. The same reason is shown in /token/status.
    assert event["reason"] == "no stored token" == last["reason"]
    assert "asctime" in event
    assert event["name"] == "zoho_gateway.audit"
    assert token not in server.logs()


# --- 10. a 401 burst refreshes once -------------------------------------------------------------------------


def test_a_burst_of_401s_for_one_token_refreshes_once(sandbox: Sandbox, make_gunicorn: GunicornStarter) -> None:
    server = make_gunicorn(workers=4)
    assert statuses(burst(lambda _: create(server.url), 64, 32)) == {201: 64}
    # Zoho forgets every token it issued: all workers now hold a token that fails with 401.
    sandbox.fault(target="create", kind="expire_tokens", times=1)
    answers = burst(lambda _: create(server.url), 100, 32)
    mints, calls = counters(sandbox)
    report("10 all tokens revoked at Zoho, 4 workers, 100 req", answers=statuses(answers), mints=mints)
    assert statuses(answers) == {201: 100}
    assert mints == 2


# --- 11. the token endpoint cannot be reached ---------------------------------------------------------------


def test_unreachable_token_endpoint_retries_a_little_then_503(sandbox: Sandbox, make_gunicorn: GunicornStarter) -> None:
    backoff = 1
    sandbox.fault(target="token", kind="reset_connection")
    server = make_gunicorn(workers=4, ZOHO_TOKEN_UNREACHABLE_BACKOFF=str(backoff))
    started = time.monotonic()
    answers = burst(lambda _: create(server.url), 40, 20)
    took = time.monotonic() - started
    for answer in answers:
        assert_error(answer, 503, "zoho_token_unavailable", retry_after=True)
    _, calls = counters(sandbox)
    report(f"11 token endpoint drops connections, 40 req in {took:.1f}s", token_calls=calls)
    assert 3 <= calls <= 6  # one bounded retry (3 tries), perhaps a second after the back-off
    sandbox.clear_faults()
    wait_for(lambda: create(server.url).status_code == 201, timeout=backoff + 5, pause=0.25)
    assert counters(sandbox)[0] == 1
