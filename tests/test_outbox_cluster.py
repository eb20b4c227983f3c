"""Issue 10 under gunicorn, as production runs it: deliverers inside the workers, a worker SIGKILLed in the
middle of a send, the whole arbiter killed and restarted with creates pending, two masters sharing Redis.

Every test counts the tickets in the sandbox: each create must exist exactly once. Waits poll for a state
with a generous limit; nothing asserts on a duration. Leases are short (``GATEWAY_DELIVERY_LEASE``) so
that a killed holder's claim lapses within seconds.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from tests.helpers import REF_FIELD, keyed_get, keyed_post, keys_env, settled
from tests.redis_server import redis_db
from tests.servers import GunicornStarter, Sandbox

#: Short leases, no pause before a search, deliverers in every worker.
CLUSTER = {
    "GATEWAY_API_KEYS": keys_env("alice", "bob"),
    "GATEWAY_RECONCILE_DELAY": "0",
    "GATEWAY_DELIVERY_LEASE": "3",
    "ZOHO_TIMEOUT": "10",
    "ZOHO_TOKEN_UNREACHABLE_BACKOFF": "0.5",
}


def wait_until(condition: Callable[[], bool], timeout: float = 40.0) -> bool:
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.1)
    return True


def queue_async(url: str, n: int, **headers: str) -> list[str]:
    """``n`` creates with ``Prefer: respond-async, wait=0`` (stored, answered 202 without calling Zoho)."""
    refs = []
    for i in range(n):
        body: dict[str, Any] = {
            "subject": f"Queued {i}",
            "description": f"ticket {i}",
            "requester_email": "jane@example.com",
        }
        answer = keyed_post(url, body, key=f"queued-{i}", Prefer="respond-async, wait=0", **headers)
        assert answer.status_code == 202, answer.text
        refs.append(answer.json()["request_ref"])
    return refs


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_worker_killed_mid_send_leaves_one_ticket(make_gunicorn: GunicornStarter, sandbox: Sandbox) -> None:
    server = make_gunicorn(workers=2, ZOHO_REF_FIELD=REF_FIELD, **CLUSTER)
    # Zoho stores the ticket and then says nothing: the deliverer that sent it is killed while it waits.
    sandbox.fault(target="create", kind="hang_after_commit", seconds=30, times=1)
    [ref] = queue_async(server.url, 1)
    assert wait_until(lambda: sandbox.stats()["create_calls"] == 1), sandbox.stats()
    kill(server.worker_pids())
    # The arbiter starts new workers; one takes the item over once the lease lapses, and searches first.
    done = settled(server.url, ref)
    assert done.status_code == 200 and done.json()["status"] == "created", done.text
    assert sandbox.ticket_count() == 1
    assert sandbox.stats()["create_calls"] == 1  # found, never sent again
    assert "outbox_lapsed" in server.logs() or "sending -> unknown" in server.logs()


def test_the_arbiter_killed_with_creates_pending_delivers_them_after_a_restart(
    make_gunicorn: GunicornStarter, sandbox: Sandbox
) -> None:
    first = make_gunicorn(workers=2, **CLUSTER)
    sandbox.fault(target="create", kind="status", status=503)
    refs = queue_async(first.url, 5)
    assert first.proc is not None
    workers = first.worker_pids()
    kill([first.proc.pid, *workers])
    first.proc.wait()
    sandbox.clear_faults()
    assert sandbox.ticket_count() == 0
    # A new arbiter on the same SQLite file: its workers' deliverers find the backlog.
    second = make_gunicorn(workers=2, **CLUSTER)
    for ref in refs:
        done = settled(second.url, ref)
        assert done.status_code == 200 and done.json()["status"] == "created", done.text
    assert sandbox.ticket_count() == 5
    assert len({settled(second.url, ref).json()["zoho_ticket_id"] for ref in refs}) == 5


def test_two_masters_sharing_redis_deliver_each_create_once(
    make_gunicorn: GunicornStarter, sandbox: Sandbox, redis_url: str
) -> None:
    state = redis_db(redis_url, 9)
    env = {**CLUSTER, "GATEWAY_STATE_URL": state, "GATEWAY_DELIVERY_CONCURRENCY": "2"}
    one, two = make_gunicorn(workers=2, **env), make_gunicorn(workers=2, **env)
    sandbox.fault(target="create", kind="status", status=503)
    refs = queue_async(one.url, 6) + [
        keyed_post(
            two.url,
            {"subject": f"Other {i}", "description": "x", "requester_email": "joe@example.com"},
            key=f"o-{i}",
            Prefer="respond-async, wait=0",
        ).json()["request_ref"]
        for i in range(6)
    ]
    # A keyed repeat on the other master follows the same item.
    repeat = keyed_post(
        two.url,
        {"subject": "Queued 0", "description": "ticket 0", "requester_email": "jane@example.com"},
        key="queued-0",
        Prefer="respond-async",
    )
    assert repeat.status_code == 202 and repeat.json()["request_ref"] == refs[0], repeat.text
    sandbox.clear_faults()
    for n, ref in enumerate(refs):
        done = settled((one, two)[n % 2].url, ref)
        assert done.status_code == 200 and done.json()["status"] == "created", done.text
    assert sandbox.ticket_count() == 12
    ready = keyed_get(one.url, "/readyz").json()["queue"]
    assert ready["durability"]["backend"] == "redis" and "appendonly" in (ready["warning"] or "")
