"""The token manager alone, with clocks the test drives: hours of token lifetimes pass in milliseconds.

Real parts everywhere else: the sandbox's token endpoint over a socket (it counts every call), and the
shared state in a real SQLite file or a live Redis, opened once per simulated worker so that each worker has
its own connection and its own in-process lock, as gunicorn workers do. Only time is fake: the managers'
wall, monotonic and sleep clocks. The sandbox keeps its own clock and the default one-hour token lifetime,
so every token it issued stays valid at Zoho unless the test expires it through the control API.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Sandbox
from zoho_gateway.errors import ZohoTokenThrottled, ZohoTokenUnavailable
from zoho_gateway.state import MemoryStore, RedisStore, SQLiteStore, Store
from zoho_gateway.state.sealing import Sealer
from zoho_gateway.zoho.oauth import ZohoOAuth
from zoho_gateway.zoho.tokens import Clock, Renewal, TokenManager, TokenSettings
from zoho_gateway.zoho.transport import Transport

LIFETIME = 3600.0  # the sandbox's default token_ttl
MARGIN = 300.0
USABLE = LIFETIME - MARGIN


class FakeClock:
    """Wall and monotonic time that move together, only when told; ``sleep`` moves them and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._guard = threading.Lock()

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now

    def mono(self) -> float:
        return 50_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        with self._guard:
            self.slept.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(wall=self.wall, mono=self.mono, sleep=self.sleep)


Opener = Callable[[], Store]


@pytest.fixture
def time_() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transport() -> Iterator[Transport]:
    transport = Transport(connect_timeout=1.0, read_timeout=5.0)
    yield transport
    transport.close()


@pytest.fixture(params=["sqlite", "redis"])
def open_shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens one more connection to one shared store: what each worker (or host) of a cluster has."""
    opened: list[Store] = []
    namespace = f"tm-{uuid.uuid4().hex}:"

    def open_one() -> Store:
        if request.param == "sqlite":
            store: Store = SQLiteStore(str(tmp_path / "state.db"))
        else:
            store = RedisStore(request.getfixturevalue("redis_url"), namespace=namespace)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def make_manager(sandbox: Sandbox, transport: Transport, time_: FakeClock) -> Callable[..., TokenManager]:
    """``make_manager(store, **settings)``: one worker's token manager against the sandbox, on fake time."""

    def make(store: Store, on_mint: Callable[[str], None] | None = None, **settings: Any) -> TokenManager:
        oauth = ZohoOAuth(
            transport,
            accounts_url=sandbox.url,
            client_id="sandbox-client-id",
            client_secret="sandbox-client-secret",
        )
        return TokenManager(
            oauth=oauth,
            refresh_token="sandbox-refresh-token",
            store=store,
            sealer=Sealer(None),
            settings=dataclasses.replace(TokenSettings(refresh_margin=MARGIN), **settings),
            clock=time_.clock(),
            on_mint=on_mint,
        )

    return make


def token_calls(sandbox: Sandbox) -> tuple[int, int]:
    """(mints, calls) the sandbox's token endpoint has seen."""
    stats = sandbox.stats()
    return int(stats["mints"]), int(stats["token_calls"])


def together(calls: list[Callable[[], Renewal]], pool: ThreadPoolExecutor | None = None) -> list[Renewal]:
    """Run every call on its own thread of ``pool`` (a new one by default), released at once by a barrier."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Renewal]) -> Renewal:
        gate.wait(timeout=10)
        return call()

    if pool is not None:
        return list(pool.map(run, calls))
    with ThreadPoolExecutor(max_workers=len(calls)) as own:
        return list(own.map(run, calls))


@pytest.fixture
def token_log() -> Iterator[list[logging.LogRecord]]:
    """What the token loggers wrote (the app's logging.ini stops them from propagating to caplog)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.INFO)
    loggers = [logging.getLogger(name) for name in ("zoho_gateway.tokens", "zoho_gateway.audit")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield records
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


# --- one mint per lifetime, cluster-wide ------------------------------------------------------------------


def test_workers_sharing_a_store_mint_once_per_usable_lifetime(
    sandbox: Sandbox, open_shared: Opener, make_manager: Callable[..., TokenManager], time_: FakeClock
) -> None:
    workers = [make_manager(open_shared()) for _ in range(4)]
    hours, step = 3, 60.0
    with ThreadPoolExecutor(max_workers=4 * len(workers)) as pool:
        while time_.now <= hours * LIFETIME:
            # Every step, each worker serves a wave of concurrent requests.
            wave = together([w.current for w in workers for _ in range(4)], pool)
            assert sum(r.minted for r in wave) <= 1
            time_.advance(step)
    mints, calls = token_calls(sandbox)
    assert mints == calls == 1 + math.floor(hours * LIFETIME / USABLE)
    status = workers[0].status()
    assert status["last_mint"]["reason"] == "within the refresh margin"
    assert status["expires_in"] >= MARGIN - step  # renewed as soon as it entered the margin, never later


def test_a_token_is_renewed_inside_the_margin_and_never_served_expired(
    sandbox: Sandbox, make_manager: Callable[..., TokenManager], time_: FakeClock
) -> None:
    manager = make_manager(MemoryStore())
    first = manager.current()
    assert first.minted
    time_.advance(USABLE - 1)
    assert manager.current() == Renewal(first.token, minted=False)
    assert token_calls(sandbox) == (1, 1)
    time_.advance(2)  # inside the margin: renewed, while the first token is still valid at Zoho
    second = manager.current()
    assert second.minted and second.token != first.token
    assert manager.status()["last_mint"]["reason"] == "within the refresh margin"
    time_.advance(3 * LIFETIME)  # idle past expiry: the next call mints, and says why
    third = manager.current()
    assert third.minted and third.token != second.token
    assert manager.status()["last_mint"]["reason"] == "expired"
    assert token_calls(sandbox) == (3, 3)
    assert sandbox.stats()["active_tokens"] == 3


# --- while minting is impossible --------------------------------------------------------------------------


def test_a_throttled_renewal_keeps_serving_the_valid_token_then_503_once_it_expires(
    sandbox: Sandbox, open_shared: Opener, make_manager: Callable[..., TokenManager], time_: FakeClock
) -> None:
    backoff = 60.0
    workers = [make_manager(open_shared(), backoff_throttled=backoff) for _ in range(3)]
    token = workers[0].access_token()
    assert [w.access_token() for w in workers] == [token] * 3
    sandbox.fault(target="token", kind="throttle")
    time_.advance(USABLE + 1)

    while time_.now < LIFETIME - 1:  # inside the margin: Zoho refuses new tokens, the current one works
        assert [w.access_token() for w in workers] == [token] * 3
        time_.advance(1.0)
    mints, calls = token_calls(sandbox)
    assert mints == 1
    # One refused call per back-off across the cluster, not one per worker or per request.
    assert 1 <= calls - 1 <= math.ceil(MARGIN / backoff) + 1
    status = workers[1].status()
    assert status["throttled"] is True and status["token_held"] is True
    assert status["backoff"]["kind"] == "throttled" and status["backoff"]["retry_after"] >= 1
    assert workers[2].readiness() == (True, {"state": "ok", "token": "valid", "token_backoff": "throttled"})

    time_.advance(2.0)  # expired: nothing valid is left, so 503 with Retry-After
    for worker in workers:
        with pytest.raises(ZohoTokenThrottled) as refused:
            worker.current()
        assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    ready, facts = workers[0].readiness()
    assert ready is False and facts["token_backoff"] == "throttled"

    sandbox.clear_faults()
    time_.advance(backoff)
    assert workers[0].current().minted
    assert workers[0].readiness()[0] is True


def test_refused_credentials_log_one_line_naming_the_setting_to_fix(
    sandbox: Sandbox, make_manager: Callable[..., TokenManager], time_: FakeClock, token_log: list[logging.LogRecord]
) -> None:
    sandbox.settings(client_id="another-client-id")
    outcomes: list[str] = []
    manager = make_manager(MemoryStore(), on_mint=outcomes.append, backoff_invalid=60.0)
    for _ in range(20):
        with pytest.raises(ZohoTokenUnavailable):
            manager.current()
        time_.advance(1.0)
    assert token_calls(sandbox) == (0, 1)  # the back-off holds every later call
    errors = [r.getMessage() for r in token_log if r.levelno == logging.ERROR and "ZOHO_" in r.getMessage()]
    assert len(errors) == 1 and "ZOHO_CLIENT_ID" in errors[0] and "ZOHO_CLIENT_SECRET" not in errors[0]
    audit = [r for r in token_log if getattr(r, "event", None) == "token_mint"]
    assert [(r.outcome, r.kind, r.reason) for r in audit] == [  # type: ignore[attr-defined]
        ("failure", "invalid_credentials", "invalid_client")
    ]
    assert outcomes == ["invalid_credentials"]
    assert manager.readiness()[0] is False

    sandbox.settings(client_id="sandbox-client-id")  # fixed: heals after the back-off, without a restart
    time_.advance(60.0)
    assert manager.current().minted
    assert outcomes == ["invalid_credentials", "minted"]


def test_an_unreachable_token_endpoint_is_tried_three_times_with_pauses_then_backs_off(
    sandbox: Sandbox, make_manager: Callable[..., TokenManager], time_: FakeClock
) -> None:
    sandbox.fault(target="token", kind="reset_connection")
    manager = make_manager(MemoryStore(), backoff_unreachable=10.0)
    with pytest.raises(ZohoTokenUnavailable) as refused:
        manager.current()
    assert time_.slept == [0.25, 0.75]  # the pauses between tries pass on the injected clock
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    with pytest.raises(ZohoTokenUnavailable):
        manager.current()
    assert token_calls(sandbox) == (0, 3)
    sandbox.clear_faults()
    time_.advance(10.0)
    assert manager.current().minted


def test_a_slow_mint_stalls_neither_other_workers_nor_other_threads_holding_a_valid_token(
    sandbox: Sandbox, open_shared: Opener, make_manager: Callable[..., TokenManager], time_: FakeClock
) -> None:
    renewing, other = make_manager(open_shared()), make_manager(open_shared())
    token = renewing.access_token()
    assert other.access_token() == token
    time_.advance(USABLE + 1)
    sandbox.fault(target="token", kind="delay", seconds=2.0, times=1)  # Zoho takes its time with the renewal

    with ThreadPoolExecutor(max_workers=1) as pool:
        renewal = pool.submit(renewing.current)
        for _ in range(500):  # until the renewal has reached the token endpoint, where it waits
            if token_calls(sandbox)[1] == 2:
                break
            threading.Event().wait(0.01)
        else:
            pytest.fail("the renewal never reached the token endpoint")
        # Meanwhile another worker, and another thread of the renewing one, get the valid token at once.
        assert other.current() == Renewal(token, minted=False)
        assert renewing.current() == Renewal(token, minted=False)
        assert not renewal.done()
        fresh = renewal.result(timeout=10)
    assert fresh.minted and fresh.token != token
    time_.advance(TokenSettings().recheck_interval)  # the other worker re-checks the store and adopts it
    assert other.current() == Renewal(fresh.token, minted=False)
    assert token_calls(sandbox) == (2, 2)


# --- a token Zoho refuses ---------------------------------------------------------------------------------


def test_replace_adopts_another_workers_token_then_tries_one_mint_when_that_is_refused_too(
    sandbox: Sandbox, open_shared: Opener, make_manager: Callable[..., TokenManager], time_: FakeClock
) -> None:
    worker_a, worker_b = make_manager(open_shared()), make_manager(open_shared())
    t1 = worker_b.access_token()
    t2 = worker_a.force_refresh()  # A replaced T1 in the store; B still holds T1
    assert worker_b.access_token() == t1 != t2
    sandbox.fault(target="token", kind="status", status=500)  # the token endpoint is down

    # Zoho refused T1: B tries the stored T2 first; that is not a token minted for this call.
    assert worker_b.replace(t1) == Renewal(t2, minted=False)
    assert token_calls(sandbox)[1] == 2
    # Zoho refused T2 as well: it is forgotten everywhere and one mint is tried, which fails: a 503.
    with pytest.raises(ZohoTokenUnavailable) as refused:
        worker_b.replace(t2)
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    assert token_calls(sandbox)[1] == 2 + 3  # one mint attempt (three tries)
    assert worker_a.status()["token_held"] is False
    # The back-off is cluster-wide: worker A, asked to replace T2 too, does not call the endpoint again.
    with pytest.raises(ZohoTokenUnavailable):
        worker_a.replace(t2)
    assert token_calls(sandbox)[1] == 5

    sandbox.clear_faults()
    time_.advance(30.0)
    fresh = worker_a.replace(t2)
    assert fresh.minted and fresh.token not in (t1, t2)
    assert worker_b.current() == Renewal(fresh.token, minted=False)


def test_a_burst_of_401s_for_one_token_mints_one_replacement(
    sandbox: Sandbox, open_shared: Opener, make_manager: Callable[..., TokenManager]
) -> None:
    workers = [make_manager(open_shared()) for _ in range(3)]
    rejected = workers[0].access_token()
    assert {w.access_token() for w in workers} == {rejected}
    sandbox.fault(target="token", kind="delay", seconds=0.3, times=1)  # a slow mint widens the race
    renewals = together([functools.partial(w.replace, rejected) for w in workers for _ in range(12)])
    assert len({r.token for r in renewals}) == 1 and rejected not in {r.token for r in renewals}
    assert sum(r.minted for r in renewals) == 1  # exactly one caller minted; a refusal of it would be a 502
    assert token_calls(sandbox) == (2, 2)
    # A late 401 for the old token changes nothing.
    assert workers[1].replace(rejected) == Renewal(renewals[0].token, minted=False)
    assert token_calls(sandbox) == (2, 2)


# --- without the shared store -----------------------------------------------------------------------------


def test_without_the_store_a_process_serves_its_copy_and_mints_on_its_own_rarely(
    sandbox: Sandbox, make_manager: Callable[..., TokenManager], time_: FakeClock
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: every store call is refused at once
        probe.bind(("127.0.0.1", 0))
        dead = RedisStore(f"redis://127.0.0.1:{probe.getsockname()[1]}/0")
    settings = TokenSettings()
    manager = make_manager(dead)
    first = manager.current()
    assert first.minted  # nothing to share it with, so this process mints for itself
    assert manager.readiness() == (True, {"state": "unavailable", "token": "valid"})
    time_.advance(LIFETIME - settings.local_mint_lead - 1)
    assert manager.current() == Renewal(first.token, minted=False)  # served late into its life, not renewed
    assert token_calls(sandbox) == (1, 1)

    # Zoho refuses it: one local mint is allowed per interval, and the interval since the first has passed.
    second = manager.replace(first.token)
    assert second.minted and second.token != first.token
    # Refused again at once: the storm guard says no, so the client gets a 503 rather than a third mint.
    with pytest.raises(ZohoTokenUnavailable):
        manager.replace(second.token)
    assert token_calls(sandbox) == (2, 2)
    time_.advance(settings.local_mint_interval)
    assert manager.replace(second.token).minted
    assert token_calls(sandbox) == (3, 3)
    dead.close()
