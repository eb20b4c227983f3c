"""The in-process token cache under load, counted by the sandbox's token endpoint.

A burst on a gateway holding no token mints exactly one; later requests mint none; a burst of 401s for one
token re-mints once; a worker whose stale token and the stored one are both refused tries one mint, not a 502.
Renewal over token lifetimes is in test_token_manager.py, on clocks the test drives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from tests.helpers import TICKET, TIMEOUT, burst, counters, mint, sdp_create
from tests.servers import Sandbox, ThreadedGateway


def seed_ticket(sandbox: Sandbox) -> str:
    """A ticket created directly in the sandbox, with a token the test mints itself (not the gateway)."""
    answer = sdp_create(sandbox, mint(sandbox), {"subject": "seed", "requester": {"email_id": "s@e.com"}})
    assert answer.status_code == 201, answer.text
    ticket_id: str = answer.json()["request"]["id"]
    return ticket_id


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

    calls = [read if i % 4 else create for i in range(200)]
    answers = burst(lambda i: calls[i](), len(calls), 64)
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 150 and statuses.count(201) == 50, statuses
    after = counters(sandbox)
    assert after["mints"] - before["mints"] == 1
    assert after["token_calls"] - before["token_calls"] == 1
    assert after["unauthorized"] == before["unauthorized"]
    assert after["tickets"] == 51

    # ... and the token is reused: another burst mints nothing.
    answers = burst(lambda _: read(), 64, 64)
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

    answers = burst(lambda _: read(), 64, 64)
    assert [a.status_code for a in answers] == [200] * 64
    after = counters(sandbox)
    assert after["mints"] - before["mints"] == 1
    assert after["token_calls"] - before["token_calls"] == 1
    assert after["unauthorized"] - before["unauthorized"] >= 1


def test_a_stale_token_then_a_revoked_stored_one_leads_to_one_mint_attempt_not_a_502(
    make_gateway: Callable[..., ThreadedGateway], sandbox: Sandbox, tmp_path: Path
) -> None:
    # The acceptance-run race: B holds T1 while A has already replaced it with T2 in the shared store;
    # Zoho then revokes both and the token endpoint is down. B must try the endpoint once (503), not
    # give up after T2's 401 (502 zoho_auth_failed) as if a freshly minted token had been refused.
    state = f"sqlite:///{tmp_path}/state.db"
    worker_a, worker_b = make_gateway(GATEWAY_STATE_URL=state), make_gateway(GATEWAY_STATE_URL=state)
    ticket_id = seed_ticket(sandbox)
    assert requests.get(f"{worker_b.url}/requests/{ticket_id}", timeout=TIMEOUT).status_code == 200  # B holds T1
    worker_a.gateway.tokens.force_refresh()  # A replaces it with T2 in the shared store
    sandbox.fault(target="get", kind="expire_tokens", times=1)  # Zoho revokes T1 and T2
    sandbox.fault(target="token", kind="status", status=500)  # and its token endpoint is down
    before = counters(sandbox)

    answer = requests.get(f"{worker_b.url}/requests/{ticket_id}", timeout=TIMEOUT)

    assert answer.status_code == 503, answer.text
    assert answer.json()["details"]["code"] == "zoho_token_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    after = counters(sandbox)
    assert after["unauthorized"] - before["unauthorized"] == 2  # T1, then T2 from the store
    assert after["token_calls"] - before["token_calls"] >= 1  # the one mint attempt (with its own tries)
    assert after["mints"] == before["mints"]
