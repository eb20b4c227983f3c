"""Issue 10 over real sockets, one gateway in this process: unknown outcomes reconciled, creates queued
through outages, keyed repeats that follow the settled outcome, ``GET /requests/<request_ref>``, the CLI.

Tickets are counted in the sandbox (``/_sandbox/tickets/count``). Waits poll the gateway for a state,
never assert on a duration.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import (
    REF_FIELD,
    REPO,
    TICKET,
    api_key,
    keyed_get,
    keyed_post,
    keys_env,
    mint,
    outbox_records,
    sdp_create,
    settled,
)
from tests.servers import Sandbox, Starter
from zoho_gateway.policies.outbox import REF

KEYS = keys_env("alice", "bob")
#: Settles fast: no pause before searching, short leases, one Zoho call of at most 2 s.
FAST = {"GATEWAY_API_KEYS": KEYS, "GATEWAY_RECONCILE_DELAY": "0", "ZOHO_TIMEOUT": "1.5"}
#: ``TICKET`` as SDP's wire format has it, for a ticket made in the sandbox without the gateway.
SDP_TICKET = {
    "subject": TICKET["subject"],
    "description": TICKET["description"],
    "requester": {"email_id": TICKET["requester_email"]},
}


# --- synchronous creates --------------------------------------------------------------------------------


def test_a_create_that_goes_well_is_201_with_location_and_a_settled_item(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(**FAST)
    answer = keyed_post(gateway.url)
    assert answer.status_code == 201, answer.text
    ticket_id = answer.json()["zoho_ticket_id"]
    assert answer.json() == {"message": "Ticket created successfully", "zoho_ticket_id": ticket_id}
    assert answer.headers["Location"] == f"/requests/{ticket_id}"
    [record] = outbox_records(gateway)
    assert (record["state"], record["zoho_ticket_id"], record["attempts"]) == ("created", ticket_id, 1)
    assert REF.fullmatch(record["ref"]) and not record["ref"].isdigit() and len(record["ref"]) <= 40
    assert record["request_id"] == answer.headers["X-Request-ID"] and record["client"] == "alice"


@pytest.mark.parametrize("ref_field", [REF_FIELD, None], ids=["with-ref-field", "by-content"])
@pytest.mark.parametrize("kind", ["hang_after_commit", "reset_after_commit", "status_after_commit"])
def test_an_unknown_outcome_is_reconciled_into_the_one_ticket(
    make_gateway: Starter, sandbox: Sandbox, ref_field: str | None, kind: str
) -> None:
    env = {**FAST, **({"ZOHO_REF_FIELD": ref_field} if ref_field else {})}
    gateway = make_gateway(**env)
    sandbox.fault(target="create", kind=kind, seconds=3, status=500, times=1)
    answer = keyed_post(gateway.url)
    assert answer.status_code == 201, answer.text
    assert sandbox.ticket_count() == 1
    [stored] = sandbox.tickets()
    assert answer.json()["zoho_ticket_id"] == str(stored["id"])
    [record] = outbox_records(gateway)
    assert (record["state"], record["attempts"]) == ("created", 1)
    assert sandbox.stats()["create_calls"] == 1  # never sent again


def test_an_unknown_outcome_of_a_create_that_never_landed_is_sent_again_once(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(**FAST, ZOHO_REF_FIELD=REF_FIELD)
    # A 500 before the commit: Zoho may have stored it as far as the gateway can tell; the search says no.
    sandbox.fault(target="create", kind="status", status=500, times=1)
    answer = keyed_post(gateway.url)
    assert answer.status_code == 201, answer.text
    assert sandbox.ticket_count() == 1
    [record] = outbox_records(gateway)
    assert (record["state"], record["attempts"]) == ("created", 2)


def test_an_identical_create_whose_answer_is_lost_before_it_landed_gets_its_own_ticket(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    """A content search for the second create finds the first's ticket (same requester and text, moments
    before); it is the first create's, settled as its ticket, so it is not the second's: sent again."""
    gateway = make_gateway(**FAST)
    first = keyed_post(gateway.url)
    assert first.status_code == 201, first.text
    # The connection dropped before the sandbox stored anything: the gateway cannot know, so it searches.
    sandbox.fault(target="create", kind="reset_connection", times=1)
    second = keyed_post(gateway.url)
    assert second.status_code == 201, second.text
    assert sandbox.ticket_count() == 2
    ids = {first.json()["zoho_ticket_id"], second.json()["zoho_ticket_id"]}
    assert ids == {str(stored["id"]) for stored in sandbox.tickets()}
    records = {record["zoho_ticket_id"]: record for record in outbox_records(gateway)}
    assert set(records) == ids and all(record["state"] == "created" for record in records.values())
    assert records[second.json()["zoho_ticket_id"]]["attempts"] == 2  # searched (none of its own), sent again


def test_an_ambiguous_match_is_needs_review_and_202(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST)
    # The same ticket, made outside the gateway moments before (the requester's e-mail, a person at the desk):
    # no create of the gateway owns it, so a content search cannot tell it from the one that follows.
    made = sdp_create(sandbox, mint(sandbox), SDP_TICKET)
    assert made.status_code == 201, made.text
    sandbox.fault(target="create", kind="hang_after_commit", seconds=3, times=1)
    answer = keyed_post(gateway.url)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "needs_review" and answer.headers["Location"] == f"/requests/{body['request_ref']}"
    assert "Preference-Applied" not in answer.headers
    status = keyed_get(gateway.url, answer.headers["Location"])
    assert status.status_code == 200 and status.json()["status"] == "needs_review"
    assert status.json()["last_error"]["code"] == "ambiguous_match"
    assert sandbox.ticket_count() == 2  # never a third
    listed = gateway.app.test_cli_runner().invoke(args=["zoho", "queue", "list", "--state", "needs_review"])
    assert listed.exit_code == 0 and body["request_ref"] in listed.output, listed.output


def test_an_outage_without_prefer_is_503_and_nothing_is_delivered_later(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(**FAST)
    sandbox.fault(target="create", kind="status", status=503, retry_after="1")
    answer = keyed_post(gateway.url, key="k-outage")
    assert answer.status_code == 503 and answer.json()["details"]["code"] == "zoho_unavailable", answer.text
    sandbox.clear_faults()
    [record] = outbox_records(gateway)
    assert record["state"] == "failed" and record["last_error"]["code"] == "zoho_unavailable"
    assert gateway.gateway.queue.stats().pending == 0
    # The key was freed: the same request now creates the ticket.
    again = keyed_post(gateway.url, key="k-outage")
    assert again.status_code == 201 and sandbox.ticket_count() == 1


# --- Prefer: respond-async --------------------------------------------------------------------------------


def test_respond_async_when_zoho_answers_at_once_is_201(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST)
    answer = keyed_post(gateway.url, Prefer="respond-async, wait=5")
    assert answer.status_code == 201 and "Preference-Applied" not in answer.headers, answer.text


@pytest.mark.parametrize(
    "fault",
    [{"target": "create", "kind": "status", "status": 503}, {"target": "token", "kind": "status", "status": 503}],
    ids=["zoho-503", "token-down"],
)
def test_respond_async_during_an_outage_is_202_then_delivered_once(
    make_gateway: Starter, sandbox: Sandbox, fault: dict[str, Any]
) -> None:
    gateway = make_gateway(**FAST, ZOHO_TOKEN_UNREACHABLE_BACKOFF="0.5")
    sandbox.fault(**fault)
    answer = keyed_post(gateway.url, Prefer="respond-async")
    assert answer.status_code == 202, answer.text
    assert answer.headers["Preference-Applied"] == "respond-async"
    body = answer.json()
    assert set(body) == {"message", "request_ref", "status"} and body["status"] == "queued"
    location = answer.headers["Location"]
    assert location == f"/requests/{body['request_ref']}"
    pending = keyed_get(gateway.url, location)
    assert pending.status_code == 202 and pending.json()["status"] == "queued"
    assert pending.json()["last_error"]["code"].startswith("zoho_")
    assert sandbox.ticket_count() == 0
    sandbox.clear_faults()
    done = settled(gateway.url, body["request_ref"])
    assert done.status_code == 200 and done.json()["status"] == "created", done.text
    ticket_id = done.json()["zoho_ticket_id"]
    assert done.headers["Location"] == f"/requests/{ticket_id}"
    assert set(done.json()) == {"request_ref", "status", "zoho_ticket_id", "attempts", "accepted_at", "last_error"}
    assert sandbox.ticket_count() == 1


def test_queue_creates_always_applies_respond_async(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST, GATEWAY_QUEUE_CREATES="always", GATEWAY_DELIVERERS="0")
    sandbox.fault(target="create", kind="status", status=503, retry_after="1")
    answer = keyed_post(gateway.url)
    assert answer.status_code == 202 and answer.headers["Preference-Applied"] == "respond-async", answer.text


def test_wait_zero_queues_without_calling_zoho(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST, GATEWAY_DELIVERERS="0")
    answer = keyed_post(gateway.url, Prefer='respond-async; x=1, wait="0"')
    assert answer.status_code == 202, answer.text
    assert sandbox.stats()["create_calls"] == 0
    # An operator's deliverer (flask zoho deliver) takes it from there.
    deliverer = gateway.gateway.delivery.start(loops=1)
    assert deliverer is not None
    assert settled(gateway.url, answer.json()["request_ref"]).json()["status"] == "created"
    assert sandbox.ticket_count() == 1


def test_a_permanent_refusal_ends_failed_with_the_synchronous_code(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST)
    bad = {**TICKET, "priority": "Not a priority"}
    sync = keyed_post(gateway.url, bad)
    assert sync.status_code == 422, sync.text
    sandbox.fault(target="create", kind="status", status=503, retry_after="1")
    queued = keyed_post(gateway.url, bad, Prefer="respond-async")
    assert queued.status_code == 202, queued.text
    sandbox.clear_faults()
    done = settled(gateway.url, queued.json()["request_ref"])
    assert done.status_code == 200 and done.json()["status"] == "failed", done.text
    error = done.json()["last_error"]
    assert error["code"] == sync.json()["details"]["code"] == "zoho_rejected_value"
    assert error["message"] == sync.json()["details"]["message"]
    assert sandbox.ticket_count() == 0


# --- keyed repeats ----------------------------------------------------------------------------------------


def test_keyed_repeats_follow_the_settled_outcome(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST)
    sandbox.fault(target="create", kind="status", status=503, retry_after="1")
    first = keyed_post(gateway.url, key="order-1", Prefer="respond-async")
    assert first.status_code == 202, first.text
    ref = first.json()["request_ref"]
    repeat = keyed_post(gateway.url, key="order-1", Prefer="respond-async")
    assert repeat.status_code == 202 and repeat.headers["Idempotent-Replayed"] == "true"
    assert repeat.json()["request_ref"] == ref and repeat.headers["Location"] == f"/requests/{ref}"
    plain = keyed_post(gateway.url, key="order-1")  # a repeat without Prefer follows the same item
    assert plain.status_code == 202 and plain.json()["request_ref"] == ref
    sandbox.clear_faults()
    ticket_id = settled(gateway.url, ref).json()["zoho_ticket_id"]
    later = keyed_post(gateway.url, key="order-1")
    assert later.status_code == 201 and later.headers["Idempotent-Replayed"] == "true", later.text
    assert later.json()["zoho_ticket_id"] == ticket_id and later.headers["Location"] == f"/requests/{ticket_id}"
    assert sandbox.ticket_count() == 1


def test_a_keyed_repeat_of_a_failed_create_replays_the_failure(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST)
    bad = {**TICKET, "priority": "Not a priority"}
    sandbox.fault(target="create", kind="status", status=503, retry_after="1")
    first = keyed_post(gateway.url, bad, key="order-2", Prefer="respond-async")
    assert first.status_code == 202
    sandbox.clear_faults()
    assert settled(gateway.url, first.json()["request_ref"]).json()["status"] == "failed"
    repeat = keyed_post(gateway.url, bad, key="order-2")
    assert repeat.status_code == 422 and repeat.headers["Idempotent-Replayed"] == "true", repeat.text
    assert repeat.json()["details"]["code"] == "zoho_rejected_value"


def test_a_keyed_unknown_outcome_replays_the_one_ticket(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST, ZOHO_REF_FIELD=REF_FIELD)
    sandbox.fault(target="create", kind="hang_after_commit", seconds=3, times=1)
    first = keyed_post(gateway.url, key="order-3")
    assert first.status_code == 201, first.text
    again = keyed_post(gateway.url, key="order-3")
    assert again.status_code == 201 and again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert sandbox.ticket_count() == 1


# --- GET /requests/<request_ref> ---------------------------------------------------------------------------


def test_a_reference_is_visible_to_its_api_key_only(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST, GATEWAY_DELIVERERS="0")
    answer = keyed_post(gateway.url, Prefer="respond-async, wait=0")
    ref = answer.json()["request_ref"]
    mine = keyed_get(gateway.url, f"/requests/{ref}")
    assert mine.status_code == 202 and mine.json()["request_ref"] == ref and mine.headers["Cache-Control"] == "no-store"
    theirs = keyed_get(gateway.url, f"/requests/{ref}", client="bob")
    assert theirs.status_code == 404 and theirs.json()["details"]["code"] == "request_not_found"
    unknown = keyed_get(gateway.url, "/requests/rq_never-issued")
    assert unknown.status_code == 404 and unknown.json()["details"]["code"] == "request_not_found"
    assert keyed_get(gateway.url, "/requests/not%20a%20ref").status_code == 400
    assert keyed_get(gateway.url, f"/requests/{'a' * 41}").status_code == 400


# --- operators ----------------------------------------------------------------------------------------------


def test_cli_lists_shows_retries_and_drops(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST, GATEWAY_DELIVERERS="0")
    refs = [keyed_post(gateway.url, Prefer="respond-async, wait=0").json()["request_ref"] for _ in range(2)]
    cli = gateway.app.test_cli_runner()
    listed = cli.invoke(args=["zoho", "queue", "list"])
    assert listed.exit_code == 0 and all(ref in listed.output for ref in refs), listed.output
    shown = cli.invoke(args=["zoho", "queue", "show", refs[0]])
    assert shown.exit_code == 0 and json.loads(shown.output)["status"] == "queued", shown.output
    dropped = cli.invoke(args=["zoho", "queue", "drop", refs[1]])
    assert dropped.exit_code == 0, dropped.output
    gone = keyed_get(gateway.url, f"/requests/{refs[1]}")
    assert gone.status_code == 200 and gone.json()["last_error"]["code"] == "request_dropped"
    retried = cli.invoke(args=["zoho", "queue", "retry", refs[1]])
    assert retried.exit_code == 0, retried.output
    assert keyed_get(gateway.url, f"/requests/{refs[1]}").json()["status"] == "queued"
    assert cli.invoke(args=["zoho", "queue", "show", "rq_nope"]).exit_code != 0
    gateway.gateway.delivery.start(loops=1)
    assert all(settled(gateway.url, ref).json()["status"] == "created" for ref in refs)
    assert sandbox.ticket_count() == 2


def test_readyz_stays_ready_with_a_backlog_and_metrics_count_it(make_gateway: Starter, sandbox: Sandbox) -> None:
    # /metrics needs the admin scope: an operator's key beside the clients'
    keys = f"{KEYS},ops[admin]={api_key('ops')}"
    gateway = make_gateway(**{**FAST, "GATEWAY_API_KEYS": keys}, GATEWAY_DELIVERERS="0")
    for _ in range(3):
        assert keyed_post(gateway.url, Prefer="respond-async, wait=0").status_code == 202
    ready = requests.get(f"{gateway.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    queue = ready.json()["queue"]
    assert queue["pending"] == 3 and queue["durability"]["backend"] == "memory" and queue["warning"]
    metrics = keyed_get(gateway.url, "/metrics", "ops").text
    assert "gateway_outbox_pending 3.0" in metrics
    assert "gateway_outbox_oldest_pending_seconds" in metrics


def test_an_item_failing_past_the_max_age_ends_failed_with_its_last_error(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(**FAST, GATEWAY_DELIVERY_MAX_AGE="1")
    sandbox.fault(target="create", kind="status", status=503, retry_after="1")
    answer = keyed_post(gateway.url, Prefer="respond-async")
    assert answer.status_code == 202
    done = settled(gateway.url, answer.json()["request_ref"])
    assert done.status_code == 200 and done.json()["status"] == "failed", done.text
    assert done.json()["last_error"]["code"] == "zoho_unavailable" and done.json()["attempts"] >= 2
    assert sandbox.ticket_count() == 0


def test_settled_items_are_pruned_after_their_retention(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(**FAST, GATEWAY_IDEMPOTENCY_TTL="60", GATEWAY_DELIVERERS="0")
    assert keyed_post(gateway.url).status_code == 201
    pending = keyed_post(gateway.url, Prefer="respond-async, wait=0").json()["request_ref"]
    outbox = gateway.gateway.outbox
    assert outbox.prune() == 0  # settled a moment ago: kept
    later = dataclasses.replace(outbox, clock=lambda: time.time() + 61)
    assert later.prune() == 1
    [left] = outbox_records(gateway)
    assert left["ref"] == pending  # a pending item is never pruned


def test_the_sync_path_on_redis(make_gateway: Starter, sandbox: Sandbox, redis_url: str) -> None:
    gateway = make_gateway(**FAST, GATEWAY_STATE_URL=f"{redis_url.rsplit('/', 1)[0]}/8", ZOHO_REF_FIELD=REF_FIELD)
    sandbox.fault(target="create", kind="hang_after_commit", seconds=3, times=1)
    assert keyed_post(gateway.url).status_code == 201
    assert keyed_post(gateway.url, Prefer="respond-async").status_code == 201
    assert sandbox.ticket_count() == 2


def test_flask_zoho_deliver_runs_as_its_own_process(make_gateway: Starter, sandbox: Sandbox, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    gateway = make_gateway(**FAST, GATEWAY_STATE_URL=state, GATEWAY_DELIVERERS="0")
    ref = keyed_post(gateway.url, Prefer="respond-async, wait=0").json()["request_ref"]
    env = {
        **os.environ,
        "GATEWAY_SANDBOX": "1",
        "ZOHO_ACCOUNTS_URL": sandbox.url,
        "ZOHO_API_BASE_URL": sandbox.url,
        "GATEWAY_STATE_URL": state,
        "GATEWAY_LOG_FILE": str(tmp_path / "deliver.log"),
        "GATEWAY_RECONCILE_DELAY": "0",
    }
    flask = Path(sys.executable).parent / "flask"
    proc = subprocess.Popen(
        [str(flask), "--app", "wsgi", "zoho", "deliver", "--loops", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        done = settled(gateway.url, ref)
        assert done.status_code == 200 and done.json()["status"] == "created", done.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert b"deliverer stopped" in err
    assert sandbox.ticket_count() == 1


def test_an_unknown_outcome_not_settled_in_time_is_202_and_settled_in_the_background(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(**FAST, GATEWAY_CREATE_BUDGET="0.5", ZOHO_REF_FIELD=REF_FIELD)
    sandbox.fault(target="create", kind="hang_after_commit", seconds=3, times=1)
    first = keyed_post(gateway.url, key="slow-1")
    assert first.status_code == 202 and "Preference-Applied" not in first.headers, first.text
    assert first.json()["status"] == "unknown"
    ref = first.json()["request_ref"]
    done = settled(gateway.url, ref)
    assert done.status_code == 200 and done.json()["status"] == "created", done.text
    again = keyed_post(gateway.url, key="slow-1")
    assert again.status_code == 201 and again.json()["zoho_ticket_id"] == done.json()["zoho_ticket_id"]
    assert sandbox.ticket_count() == 1 and sandbox.stats()["create_calls"] == 1


def test_every_state_change_is_one_audit_line_with_the_ref_and_request_id(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(**FAST)
    sandbox.fault(target="create", kind="reset_after_commit", times=1)
    answer = keyed_post(gateway.url, **{"X-Request-ID": "audit-me-1"})
    assert answer.status_code == 201
    [record] = outbox_records(gateway)
    lines = [json.loads(line) for line in Path(gateway.gateway.config.log_file).read_text().splitlines() if line]
    audit = [line for line in lines if line.get("event") == "outbox" and line.get("request_ref") == record["ref"]]
    assert [(a["from_state"], a["to_state"]) for a in audit] == [
        ("accepted", "queued"),
        ("queued", "sending"),
        ("sending", "unknown"),
        ("unknown", "created"),
    ]
    assert {a["request_id"] for a in audit} == {"audit-me-1"}


def test_prefer_parsing() -> None:
    from zoho_gateway.api.tickets import parse_prefer

    assert parse_prefer([]) == (False, 5.0)
    assert parse_prefer(["respond-async"]) == (True, 5.0)
    assert parse_prefer(["Respond-Async, wait=12"]) == (True, 12.0)
    assert parse_prefer(["wait=3", "respond-async;foo=bar"]) == (True, 3.0)
    assert parse_prefer(['respond-async, wait="0"']) == (True, 0.0)
    assert parse_prefer(["respond-async, wait=-1", "wait=x"]) == (True, 5.0)  # not understood: ignored
    assert parse_prefer(["respond-async, wait=9999"]) == (True, 60.0)
    assert parse_prefer(["return=minimal"]) == (False, 5.0)


def test_what_a_failed_create_says_about_zoho() -> None:
    from zoho_gateway import errors as e
    from zoho_gateway.policies.delivery import judge_create_error

    assert judge_create_error(e.ZohoUnavailable()) == "not_sent"
    assert judge_create_error(e.ZohoTokenThrottled()) == "not_sent"
    assert judge_create_error(e.ZohoRateLimited()) == "not_sent"
    assert judge_create_error(e.ZohoOutcomeUnknown()) == "maybe"
    assert judge_create_error(e.ZohoTimeout()) == "maybe"
    assert judge_create_error(e.ZohoBadResponse(upstream_status=500)) == "maybe"
    assert judge_create_error(e.ZohoBadResponse(upstream_status=400)) == "refused"
    assert judge_create_error(e.ZohoRejected()) == "refused"
    assert judge_create_error(e.ZohoAuthFailed()) == "refused"


def test_backoff_is_exponential_capped_and_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoho_gateway.policies import delivery

    monkeypatch.setattr(delivery, "jitter", lambda value: value)  # pinned: the top of each draw
    assert [delivery.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert delivery.backoff(30) == delivery.BACKOFF_CAP == 300.0
    assert delivery.backoff(1, retry_after=20) == 20.0
    assert delivery.backoff(1, retry_after=3600) == 300.0
    monkeypatch.undo()
    assert all(0.5 <= delivery.backoff(1) <= 1.0 for _ in range(100))
