"""The in-process token cache under load, counted by the sandbox's token endpoint.

A burst on a gateway holding no token mints exactly one; later requests mint none; a burst of 401s for one
token re-mints once; a short-lived token is renewed before it expires, with no request failing meanwhile.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.servers import Sandbox, ThreadedGateway

TIMEOUT = 15.0
TICKET = {"subject": "Laptop won't boot", "description": "Blue screen.", "requester_email": "sam@example.com"}


def counters(sandbox: Sandbox) -> dict[str, int]:
    return {k: v for k, v in sandbox.stats().items() if isinstance(v, int) and not isinstance(v, bool)}


def seed_ticket(sandbox: Sandbox) -> str:
    """A ticket created directly in the sandbox, with a token the test mints itself (not the gateway)."""
    token = sandbox.http.post(
        f"{sandbox.url}/oauth/v2/token",
        timeout=5,
        data={
            "grant_type": "refresh_token",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
            "refresh_token": "sandbox-refresh-token",
        },
    ).json()["access_token"]
    answer = sandbox.http.post(
        f"{sandbox.url}/api/v3/requests",
        timeout=5,
        headers={
            "Authorization": f"Zoho-oauthtoken {token}",
            "Accept": "application/vnd.manageengine.sdp.v3+json",
        },
        data={
            "input_data": json.dumps({"request": {"subject": "seed", "requester": {"email_id": "s@e.com"}}})
        },
    )
    assert answer.status_code == 201, answer.text
    ticket_id: str = answer.json()["request"]["id"]
    return ticket_id


def burst(calls: list[Callable[[], requests.Response]], threads: int = 64) -> list[requests.Response]:
    """Run every call on ``threads`` threads; the first wave is released at once by a barrier."""
    first_wave = min(threads, len(calls))
    gate = threading.Barrier(first_wave)

    def run(index: int) -> requests.Response:
        if index < first_wave:
            gate.wait(timeout=10)
        return calls[index]()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(len(calls))))


def test_a_burst_on_a_fresh_gateway_mints_exactly_one_token(
    make_gateway: Callable[..., ThreadedGateway], sandbox: Sandbox
) -> None:
    ticket_id = seed_ticket(sandbox)
    gateway = make_gateway()
    before = counters(sandbox)

    def read() -> requests.Response:
        return requests.get(f"{gateway.url}/requests/{ticket_id}", timeout=TIMEOUT)

    def create() -> requests.Response:
        return requests.post(f"{gateway.url}/requests", json=TICKET, timeout=TIMEOUT)

    answers = burst([read if i % 4 else create for i in range(200)])
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 150 and statuses.count(201) == 50, statuses
    after = counters(sandbox)
    assert after["mints"] - before["mints"] == 1
    assert after["token_calls"] - before["token_calls"] == 1
    assert after["unauthorized"] == before["unauthorized"]
    assert after["tickets"] == 51

    # ... and the token is reused: another burst mints nothing.
    answers = burst([read] * 64)
    assert all(a.status_code == 200 for a in answers)
    assert counters(sandbox)["token_calls"] == after["token_calls"]


def test_a_burst_of_401s_for_one_token_re_mints_once(
    make_gateway: Callable[..., ThreadedGateway], sandbox: Sandbox
) -> None:
    ticket_id = seed_ticket(sandbox)
    gateway = make_gateway()
    assert requests.get(f"{gateway.url}/requests/{ticket_id}", timeout=TIMEOUT).status_code == 200
    sandbox.fault(target="token", kind="delay", seconds=0.3, times=1)  # a slow mint widens the race window
    sandbox.fault(target="get", kind="expire_tokens", times=1)  # every token issued so far is now invalid
    before = counters(sandbox)

    def read() -> requests.Response:
        return requests.get(f"{gateway.url}/requests/{ticket_id}", timeout=TIMEOUT)

    answers = burst([read] * 64)
    assert [a.status_code for a in answers] == [200] * 64
    after = counters(sandbox)
    assert after["mints"] - before["mints"] == 1
    assert after["token_calls"] - before["token_calls"] == 1
    assert after["unauthorized"] - before["unauthorized"] >= 1


def test_a_short_lived_token_is_renewed_before_it_expires_without_failures(
    make_gateway: Callable[..., ThreadedGateway], sandbox: Sandbox
) -> None:
    ticket_id = seed_ticket(sandbox)
    sandbox.settings(token_ttl=3)
    gateway = make_gateway(ZOHO_TOKEN_REFRESH_MARGIN="1")
    base = counters(sandbox)
    failures: list[Any] = []
    stop = threading.Event()

    def hammer() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                answer = session.get(f"{gateway.url}/requests/{ticket_id}", timeout=TIMEOUT)
                if answer.status_code != 200:
                    failures.append((answer.status_code, answer.text[:200]))
            except requests.RequestException as exc:  # pragma: no cover - reported below
                failures.append(repr(exc))
            time.sleep(0.02)

    assert requests.get(f"{gateway.url}/requests/{ticket_id}", timeout=TIMEOUT).status_code == 200
    minted_at = time.monotonic()
    workers = [threading.Thread(target=hammer) for _ in range(6)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(max(0.0, minted_at + 1.5 - time.monotonic()))
        assert counters(sandbox)["mints"] - base["mints"] == 1  # still the first token at 1.5 s
        time.sleep(max(0.0, minted_at + 2.7 - time.monotonic()))
        assert counters(sandbox)["mints"] - base["mints"] == 2  # renewed at ~2 s (3 s lifetime - 1 s margin)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=TIMEOUT)
    assert failures == []
    after = counters(sandbox)
    assert after["unauthorized"] == base["unauthorized"]  # renewed before expiry: Zoho never saw an old token
    assert after["token_calls"] == after["mints"]  # every token call was a successful mint
