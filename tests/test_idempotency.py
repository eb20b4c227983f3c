"""Idempotency-Key on ``POST /requests``, over real sockets: at most one Zoho ticket per (API key name, key).

The counts come from the sandbox (``create_calls``: creates that reached it; ``creates``: tickets it stored;
``tickets()``: the tickets themselves). Gunicorn runs share SQLite state across 4 workers; the others run the
gateway in a thread.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import TICKET, bearer, burst, error_code, free_port, keyed_post, keys_env, wait_for_workers
from tests.servers import GunicornStarter, Sandbox, Starter

pytestmark = pytest.mark.usefixtures("no_secrets_in_logs")

KEYS = keys_env("alice", "bob")


def replayed(answer: requests.Response) -> bool:
    return answer.headers.get("Idempotent-Replayed") == "true"


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    if isinstance(body.get("details"), dict):
        return {**body, "details": {k: v for k, v in body["details"].items() if k != "request_id"}}
    return body


def test_seven_identical_keyed_posts_across_workers_make_one_ticket(
    make_gunicorn: GunicornStarter, sandbox: Sandbox
) -> None:
    server = make_gunicorn(workers=4, GATEWAY_API_KEYS=KEYS)
    wait_for_workers(server, 4)
    answers = [keyed_post(server.url, key="order-7-attempt", **{"X-Request-ID": f"idem-{i}"}) for i in range(7)]

    assert [a.status_code for a in answers] == [201] * 7, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1, [a.text for a in answers]
    assert not replayed(answers[0])
    assert all(replayed(a) for a in answers[1:]), [dict(a.headers) for a in answers]
    assert [a.headers["X-Request-ID"] for a in answers] == [f"idem-{i}" for i in range(7)]
    stats = sandbox.stats()
    assert (stats["create_calls"], stats["creates"]) == (1, 1), stats
    tickets = sandbox.tickets()
    assert [t["id"] for t in tickets] == [answers[0].json()["zoho_ticket_id"]]


def test_concurrent_first_uses_of_one_key_create_once(make_gunicorn: GunicornStarter, sandbox: Sandbox) -> None:
    server = make_gunicorn(workers=4, threads=8, GATEWAY_API_KEYS=KEYS, ZOHO_TIMEOUT="6")
    wait_for_workers(server, 4)
    # Mint the token first, so that the only slow part is the create itself.
    assert requests.get(f"{server.url}/requests/1", headers=bearer("alice"), timeout=10).status_code == 404
    sandbox.fault(target="create", kind="delay", seconds=2.0)
    answers = burst(lambda _: keyed_post(server.url, key="burst-key"), 8, 8)
    sandbox.clear_faults()

    firsts = [a for a in answers if a.status_code == 201 and not replayed(a)]
    assert len(firsts) == 1, [(a.status_code, a.text) for a in answers]
    ticket_id = firsts[0].json()["zoho_ticket_id"]
    for answer in answers:
        if answer is firsts[0]:
            continue
        if answer.status_code == 409:
            assert error_code(answer) == "idempotency_key_in_flight", answer.text
            assert answer.headers["Retry-After"].isdigit(), answer.headers
        else:
            assert answer.status_code == 201 and replayed(answer), (answer.status_code, answer.text)
            assert answer.json()["zoho_ticket_id"] == ticket_id
    assert sum(a.status_code == 409 for a in answers) >= 1  # the others really did overlap the first
    again = keyed_post(server.url, key="burst-key")
    assert again.status_code == 201 and replayed(again) and again.json()["zoho_ticket_id"] == ticket_id
    stats = sandbox.stats()
    assert (stats["create_calls"], stats["creates"]) == (1, 1), stats


def test_same_key_with_another_body_is_refused(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    first = keyed_post(gateway.url, key="k-1")
    assert first.status_code == 201
    # The same JSON with its keys reordered is the same body.
    reordered = dict(reversed(list(TICKET.items())))
    same = keyed_post(gateway.url, body=reordered, key="k-1")
    assert same.status_code == 201 and replayed(same) and same.text == first.text
    assert same.headers["Location"] == first.headers["Location"] == f"/requests/{first.json()['zoho_ticket_id']}"
    other = keyed_post(gateway.url, body={**TICKET, "subject": "Printer on fire, again"}, key="k-1")
    assert other.status_code == 422, other.text
    assert error_code(other) == "idempotency_key_reused"
    assert other.json()["details"]["request_id"] == other.headers["X-Request-ID"]
    assert sandbox.stats()["create_calls"] == 1


def test_key_length_and_form(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    for bad in ("k" * 256, ""):
        answer = keyed_post(gateway.url, key=bad)
        assert answer.status_code == 400, (len(bad), answer.text)
        assert error_code(answer) == "invalid_header"
        assert answer.headers["X-Request-ID"] == answer.json()["details"]["request_id"]
    assert sandbox.stats()["create_calls"] == 0
    longest = keyed_post(gateway.url, key="k" * 255)
    assert longest.status_code == 201, longest.text
    assert keyed_post(gateway.url, key="k" * 255).text == longest.text
    assert sandbox.stats()["create_calls"] == 1


def test_keys_are_scoped_per_api_key_name(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    alice = keyed_post(gateway.url, key="shared-key", client="alice")
    bob = keyed_post(gateway.url, key="shared-key", client="bob")
    assert alice.status_code == bob.status_code == 201
    assert alice.json()["zoho_ticket_id"] != bob.json()["zoho_ticket_id"]
    assert not replayed(bob)
    # Each client's repeat replays its own answer.
    assert keyed_post(gateway.url, key="shared-key", client="alice").text == alice.text
    assert keyed_post(gateway.url, key="shared-key", client="bob").text == bob.text
    assert len(sandbox.tickets()) == 2


def test_unknown_outcome_is_reconciled_and_repeats_replay_the_one_ticket(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS, ZOHO_TIMEOUT="1", GATEWAY_RECONCILE_DELAY="0")
    # The sandbox stores the ticket, then stays silent past the gateway's read time-out: the gateway
    # searches Zoho for it (issue 10) instead of answering 504, and finds the one ticket.
    sandbox.fault(target="create", kind="fail_after_create", seconds=2.5, times=1)
    first = keyed_post(gateway.url, key="maybe-created")
    assert first.status_code == 201, first.text
    [stored] = sandbox.tickets()
    assert first.json()["zoho_ticket_id"] == str(stored["id"])
    for _ in range(2):
        again = keyed_post(gateway.url, key="maybe-created")
        assert again.status_code == 201 and replayed(again), (again.status_code, again.text)
        assert again.text == first.text and again.headers["Location"] == first.headers["Location"]
    stats = sandbox.stats()
    assert (stats["create_calls"], stats["creates"]) == (1, 1), stats


def test_a_503_from_zoho_releases_the_key_and_the_same_body_then_creates(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    sandbox.fault(target="create", kind="status", status=503, times=1)
    failed = keyed_post(gateway.url, key="retry-after-503")
    assert failed.status_code == 503 and error_code(failed) == "zoho_unavailable", failed.text
    assert sandbox.stats()["creates"] == 0
    retried = keyed_post(gateway.url, key="retry-after-503")
    assert retried.status_code == 201 and not replayed(retried), retried.text
    assert keyed_post(gateway.url, key="retry-after-503").text == retried.text
    stats = sandbox.stats()
    assert (stats["create_calls"], stats["creates"]) == (2, 1), stats


def test_a_token_failure_releases_the_key(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS, ZOHO_TOKEN_INVALID_BACKOFF="1")
    sandbox.revoke_refresh_token()
    failed = keyed_post(gateway.url, key="retry-after-token")
    assert failed.status_code == 503, failed.text
    assert error_code(failed).startswith("zoho_token"), failed.text
    assert sandbox.stats()["create_calls"] == 0
    sandbox.restore_refresh_token()
    deadline = time.monotonic() + 10
    while True:
        retried = keyed_post(gateway.url, key="retry-after-token")
        if retried.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.3)  # the gateway backs off the token endpoint for ZOHO_TOKEN_INVALID_BACKOFF
    assert retried.status_code == 201 and not replayed(retried), retried.text
    stats = sandbox.stats()
    assert (stats["create_calls"], stats["creates"]) == (1, 1), stats


def test_a_connect_failure_releases_the_key(make_gateway: Starter, sandbox: Sandbox, tmp_path: Path) -> None:
    # Two gateways share one SQLite state file: the first cannot reach Zoho at all, the second can.
    shared = {"GATEWAY_API_KEYS": KEYS, "GATEWAY_STATE_URL": f"sqlite:///{tmp_path}/state.db"}
    cut_off = make_gateway(ZOHO_API_BASE_URL=f"http://127.0.0.1:{free_port()}", **shared)
    failed = keyed_post(cut_off.url, key="retry-after-connect")
    assert failed.status_code == 503 and error_code(failed) == "zoho_unavailable", failed.text
    assert failed.headers["Retry-After"].isdigit()
    connected = make_gateway(**shared)
    retried = keyed_post(connected.url, key="retry-after-connect")
    assert retried.status_code == 201 and not replayed(retried), retried.text
    assert keyed_post(cut_off.url, key="retry-after-connect").text == retried.text  # the record is shared
    assert sandbox.stats()["creates"] == 1


def test_a_value_zoho_refuses_releases_the_key(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    wrong = {**TICKET, "priority": "Galactic"}
    refused = keyed_post(gateway.url, body=wrong, key="fix-and-retry")
    assert refused.status_code == 422 and error_code(refused) == "zoho_rejected_value", refused.text
    # Released, not stored: the same body goes to Zoho again (and is refused again, not replayed)...
    again = keyed_post(gateway.url, body=wrong, key="fix-and-retry")
    assert again.status_code == 422 and not replayed(again), again.text
    assert sandbox.stats()["create_calls"] == 2
    # ...and a corrected body may take the key, since no ticket was made with it.
    fixed = keyed_post(gateway.url, body={**TICKET, "priority": "High"}, key="fix-and-retry")
    assert fixed.status_code == 201 and not replayed(fixed), fixed.text
    stats = sandbox.stats()
    assert (stats["create_calls"], stats["creates"]) == (3, 1), stats


def test_without_a_key_every_post_creates(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    first, second = keyed_post(gateway.url), keyed_post(gateway.url)
    assert first.status_code == second.status_code == 201
    assert first.json()["zoho_ticket_id"] != second.json()["zoho_ticket_id"]
    assert "Idempotent-Replayed" not in first.headers and "Idempotent-Replayed" not in second.headers
    assert len(sandbox.tickets()) == 2


def test_the_same_ticket_written_two_ways_is_the_same_request(make_gateway: Starter, sandbox: Sandbox) -> None:
    """The key guards the ticket, not the bytes: a bare lookup name and its ``{"name"}`` form create the same."""
    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    first = keyed_post(gateway.url, body={**TICKET, "priority": "High"}, key="two-spellings")
    spelt = {**TICKET, "priority": {"name": " High "}, "category": None}
    again = keyed_post(gateway.url, body=spelt, key="two-spellings")
    assert first.status_code == 201 and not replayed(first), first.text
    assert again.status_code == 201 and replayed(again) and again.text == first.text
    assert sandbox.stats()["create_calls"] == 1


def test_a_record_of_the_previous_release_is_still_replayed(make_gateway: Starter, sandbox: Sandbox) -> None:
    """Records written before the upgrade (status, body and headers of the answer) replay as they did."""
    from zoho_gateway.policies.idempotency import fingerprint, record_key

    gateway = make_gateway(GATEWAY_API_KEYS=KEYS)
    store = gateway.gateway.store
    old_201 = {"message": "Ticket created successfully", "zoho_ticket_id": "4242"}
    old_504 = {
        "error": "Zoho did not answer in time",
        "details": {"code": "zoho_outcome_unknown", "message": "No answer", "retry_after": 5, "request_id": "x"},
    }
    for key, status, body, headers in (("old-201", 201, old_201, {}), ("old-504", 504, old_504, {"Retry-After": "5"})):
        record = {"state": "done", "fp": fingerprint(TICKET), "status": status, "body": body, "headers": headers}
        store.set(record_key("alice", key), json.dumps(record).encode(), ttl=60)
    created = keyed_post(gateway.url, key="old-201")
    assert created.status_code == 201 and replayed(created) and created.json() == old_201
    assert created.headers["Location"] == "/requests/4242"
    unknown = keyed_post(gateway.url, key="old-504")
    assert unknown.status_code == 504 and replayed(unknown) and unknown.headers["Retry-After"] == "5"
    assert without_request_id(unknown.json()) == without_request_id(old_504)
    assert unknown.json()["details"]["request_id"] == unknown.headers["X-Request-ID"]
    assert sandbox.stats()["create_calls"] == 0
