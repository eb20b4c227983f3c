"""Zoho failing in every way the sandbox can fake, seen by a client over real sockets.

Zoho unreachable, its token endpoint down or refusing, time-outs, HTML, garbage, 5xx, rate limits, expired
and refused tokens. A read is retried; a create whose answer is lost (it may have arrived) is never re-sent
blindly: the gateway searches Zoho for it and sends again only when Zoho holds no such ticket (issue 10), so
the client gets the one ticket's 201, or a 202 with a ``request_ref`` when Zoho cannot even be searched in
time. Every error is the JSON error format with the right status and stable code, and a ``Retry-After``
whenever retrying later may help.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import (
    TICKET,
    assert_error,
    counters,
    delta,
    free_port,
    get,
    outbox_records,
    post,
    settled,
)
from tests.servers import Sandbox, Starter, ThreadedGateway

#: conftest's ``reused_gateway``: ZOHO_TIMEOUT=1 s and a 1.5 s retry budget, so time-outs cost a second or two.
MODULE_GATEWAY_ENV = {"ZOHO_TIMEOUT": "1", "ZOHO_RETRY_BUDGET": "1.5"}
#: A create after the warm-up ticket: another ticket, which the content search for it must not match.
OTHER_TICKET = {**TICKET, "subject": "A second printer on fire"}


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def warm(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> str:
    """A ticket created through the gateway (so a token is held); returns its id."""
    response = post(reused_gateway)
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["zoho_ticket_id"]
    return ticket_id


# ---- Zoho or its token endpoint unreachable ------------------------------------------------------


def test_zoho_unreachable_is_503_with_retry_after(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(ZOHO_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    assert_error(get(gateway, "123"), 503, "zoho_unavailable", retry_after=True)
    assert_error(post(gateway), 503, "zoho_unavailable", retry_after=True)
    assert time.monotonic() - started < 5
    stats = sandbox.stats()
    assert stats["api_calls"] == 0 and stats["tickets"] == 0
    assert stats["mints"] == 1  # the token endpoint was fine and asked once


def test_token_endpoint_unreachable_is_503_with_retry_after(
    make_gateway: Starter, sandbox: Sandbox
) -> None:
    gateway = make_gateway(ZOHO_ACCOUNTS_URL=f"http://127.0.0.1:{free_port()}")
    body = assert_error(post(gateway), 503, "zoho_token_unavailable", retry_after=True)
    assert "token" in body["details"]["message"].lower()
    # During the back-off the next request fails fast, without knocking on the dead endpoint again.
    started = time.monotonic()
    assert_error(get(gateway, "123"), 503, "zoho_token_unavailable", retry_after=True)
    assert time.monotonic() - started < 0.5
    assert sandbox.stats()["api_calls"] == 0


# ---- time-outs -----------------------------------------------------------------------------------


def test_read_timeout_on_get_is_504(reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str) -> None:
    sandbox.fault(target="get", kind="delay", seconds=5)
    before = counters(sandbox)
    started = time.monotonic()
    assert_error(get(reused_gateway, warm), 504, "zoho_timeout", retry_after=True)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.5
    calls = delta(before, sandbox).get("get_calls", 0)
    assert 1 <= calls <= 2  # a read may be tried once more within the retry budget, no more


def test_a_single_slow_read_is_retried_and_succeeds(
    reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    sandbox.fault(target="get", kind="delay", seconds=5, times=1)
    before = counters(sandbox)
    response = get(reused_gateway, warm)
    assert response.status_code == 200 and response.json()["ticket_id"] == warm
    assert delta(before, sandbox)["get_calls"] == 2


def test_create_timeout_after_zoho_stored_the_ticket_is_reconciled_into_201_and_never_resent(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    # Zoho stores the ticket, then keeps the answer 5 s: past ZOHO_TIMEOUT, so the outcome is unknown.
    sandbox.fault(target="create", kind="fail_after_create", seconds=5)
    started = time.monotonic()
    response = post(reused_gateway)
    assert response.status_code == 201, response.text
    assert time.monotonic() - started < 5  # settled by a search, not by waiting for Zoho's lost answer
    ticket_id = response.json()["zoho_ticket_id"]
    assert response.headers["Location"] == f"/requests/{ticket_id}"
    time.sleep(0.3)  # a re-send, if any, would have arrived by now
    stats = sandbox.stats()
    assert stats["create_calls"] == 1 and stats["creates"] == 1  # found by the search, never sent again
    assert stats["list_calls"] >= 1
    assert stats["tickets"] == 1 and sandbox.ticket_count() == 1
    [stored] = sandbox.tickets()
    assert str(stored["id"]) == ticket_id


def test_create_connection_dropped_is_searched_for_then_sent_once_more(
    reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    # The connection drops before Zoho stores anything; the gateway cannot know that, so it asks Zoho first.
    # (Another ticket than the warm-up one: without ZOHO_REF_FIELD, a same ticket created just before would
    # match the search.)
    sandbox.fault(target="create", kind="reset_connection", times=1)
    before = counters(sandbox)
    response = post(reused_gateway, OTHER_TICKET)
    assert response.status_code == 201, response.text
    time.sleep(0.2)
    changes = delta(before, sandbox)
    assert changes["list_calls"] == 1  # searched, found nothing...
    assert changes["create_calls"] == 2 and changes["creates"] == 1  # ...and only then sent once more
    assert sandbox.ticket_count() == 2  # the warm-up ticket and this one
    assert response.json()["zoho_ticket_id"] in {str(t["id"]) for t in sandbox.tickets()} - {warm}


def test_read_connection_dropped_once_is_retried(
    reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    sandbox.fault(target="get", kind="reset_connection", times=1)
    response = get(reused_gateway, warm)
    assert response.status_code == 200 and response.json()["ticket_id"] == warm


# ---- Zoho answering nonsense ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["html", "garbage"])
def test_html_or_garbage_is_502_on_a_read_and_a_create_is_never_resent_while_zoho_cannot_be_searched(
    kind: str, make_gateway: Starter, sandbox: Sandbox
) -> None:
    # A 1 s budget: the create is answered 202 (pending) rather than after the gateway's many tries.
    gateway = make_gateway(ZOHO_TIMEOUT="1", ZOHO_RETRY_BUDGET="1.5", GATEWAY_CREATE_BUDGET="1")
    warm = post(gateway)
    assert warm.status_code == 201, warm.text
    # Every call answered with HTML (a proxy's 502 page) or garbage with 200, searches included.
    sandbox.fault(target="api", kind=kind)
    assert_error(get(gateway, warm.json()["zoho_ticket_id"]), 502, "zoho_bad_response", retry_after=False)
    before = counters(sandbox)
    response = post(gateway, OTHER_TICKET)
    # The create's unreadable answer may follow a stored ticket: pending, never re-sent until Zoho is searched.
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"message", "request_ref", "status"} and body["status"] == "unknown"
    assert response.headers["Location"] == f"/requests/{body['request_ref']}"
    assert "Preference-Applied" not in response.headers
    assert delta(before, sandbox)["create_calls"] == 1
    assert sandbox.ticket_count() == 1
    # Zoho recovers: the background search finds no such ticket, so it is sent once more, and only once.
    sandbox.clear_faults()
    status = settled(gateway, body["request_ref"], client=None, timeout=30)
    assert status.status_code == 200 and status.json()["status"] == "created", status.text
    changes = delta(before, sandbox)
    assert changes["create_calls"] == 2 and changes["creates"] == 1
    assert sandbox.ticket_count() == 2  # the warm-up ticket and this one
    others = {str(t["id"]) for t in sandbox.tickets()} - {warm.json()["zoho_ticket_id"]}
    assert status.json()["zoho_ticket_id"] in others


@pytest.mark.parametrize(
    "body",
    [
        "Internal Server Error",
        '{"response_status": {"status_code": 4000, '
        '"messages": [{"status_code": 4004, "type": "failed"}], "status": "failed"}}',
    ],
)
def test_zoho_500_is_502_on_a_read_and_a_create_is_reconciled_into_one_ticket(
    body: str, reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    sandbox.fault(target="api", kind="status", status=500, body=body)
    assert_error(get(reused_gateway, warm), 502, "zoho_bad_response", retry_after=False)
    sandbox.clear_faults()
    # A 500 after sending does not say whether Zoho stored the ticket first (not even with a failed envelope).
    sandbox.fault(target="create", kind="status", status=500, body=body, times=1)
    before = counters(sandbox)
    response = post(reused_gateway, OTHER_TICKET)
    assert response.status_code == 201, response.text
    changes = delta(before, sandbox)
    assert changes["list_calls"] == 1  # searched, found nothing...
    assert changes["create_calls"] == 2 and changes["creates"] == 1  # ...and only then sent once more
    assert sandbox.ticket_count() == 2  # the warm-up ticket and this one
    [record] = [r for r in outbox_records(reused_gateway) if r["request_id"] == response.headers["X-Request-ID"]]
    assert record["state"] == "created" and record["attempts"] == 2
    assert record["zoho_ticket_id"] == response.json()["zoho_ticket_id"]
    assert record["last_error"]["code"] == "zoho_outcome_unknown"  # judged a possible create, not a refusal


def test_zoho_503_is_503_with_retry_after(reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str) -> None:
    sandbox.fault(
        target="api",
        kind="status",
        status=503,
        body="<html>down for maintenance</html>",
        content_type="text/html",
        retry_after="4",
    )
    body = assert_error(get(reused_gateway, warm), 503, "zoho_unavailable", retry_after=True)
    assert body["details"]["retry_after"] == 4
    assert_error(post(reused_gateway), 503, "zoho_unavailable", retry_after=True)


def test_a_single_503_on_a_read_is_retried(reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str) -> None:
    sandbox.fault(target="get", kind="status", status=503, times=1)
    assert get(reused_gateway, warm).status_code == 200


def test_zoho_429_is_503_with_zohos_retry_after(
    reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    sandbox.fault(target="create", kind="rate_limit", retry_after="7", times=1)
    before = counters(sandbox)
    body = assert_error(post(reused_gateway), 503, "zoho_rate_limited", retry_after=True)
    assert body["details"]["retry_after"] == 7
    assert delta(before, sandbox)["create_calls"] == 1
    sandbox.fault(target="get", kind="rate_limit", retry_after="1")
    assert_error(get(reused_gateway, warm), 503, "zoho_rate_limited", retry_after=True)


def test_a_single_429_on_a_read_is_retried(reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str) -> None:
    sandbox.fault(target="get", kind="rate_limit", retry_after="0", times=1)
    assert get(reused_gateway, warm).status_code == 200


# ---- 401: refresh once, retry once, never loop ---------------------------------------------------


def test_expired_token_is_refreshed_once_and_the_read_succeeds(
    reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    sandbox.fault(target="get", kind="expire_tokens", times=1)
    before = counters(sandbox)
    response = get(reused_gateway, warm)
    assert response.status_code == 200 and response.json()["ticket_id"] == warm
    changes = delta(before, sandbox)
    assert changes["mints"] == 1 and changes["token_calls"] == 1
    assert changes["get_calls"] == 2 and changes["unauthorized"] == 1
    # The new token is kept: the next call mints nothing.
    before = counters(sandbox)
    assert get(reused_gateway, warm).status_code == 200
    assert "mints" not in delta(before, sandbox)


def test_expired_token_on_create_is_refreshed_and_one_ticket_created(
    reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    sandbox.fault(target="create", kind="expire_tokens", times=1)
    before = counters(sandbox)
    assert post(reused_gateway).status_code == 201
    changes = delta(before, sandbox)
    assert changes["mints"] == 1 and changes["create_calls"] == 2 and changes["creates"] == 1
    assert sandbox.stats()["tickets"] == 2  # the warm-up ticket and this one


@pytest.mark.parametrize("operation", ["get", "create"])
def test_persistent_401_is_502_after_exactly_one_refresh(
    operation: str, reused_gateway: ThreadedGateway, sandbox: Sandbox, warm: str
) -> None:
    sandbox.fault(
        target=operation,
        kind="status",
        status=401,
        times=2,
        body={
            "response_status": {
                "status_code": 4000,
                "status": "failed",
                "messages": [{"status_code": 4001, "message": "Invalid OAuth token"}],
            }
        },
    )
    before = counters(sandbox)
    response = post(reused_gateway) if operation == "create" else get(reused_gateway, warm)
    body = assert_error(response, 502, "zoho_auth_failed", retry_after=False)
    assert "1000." not in body["details"]["message"]
    changes = delta(before, sandbox)
    assert changes["api_calls"] == 2
    assert changes["mints"] == 1 and changes["token_calls"] == 1
    assert changes.get("creates", 0) == 0
    # No loop, no lasting damage: with the fault used up, the fresh token works and nothing more is minted.
    before = counters(sandbox)
    assert get(reused_gateway, warm).status_code == 200
    assert "mints" not in delta(before, sandbox)


# ---- the token endpoint refusing -----------------------------------------------------------------


def test_token_error_in_an_http_200_is_503(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(target="token", kind="invalid_code", times=1)
    body = assert_error(post(reused_gateway), 503, "zoho_token_unavailable", retry_after=True)
    assert "credentials" in body["details"]["message"].lower()
    stats = sandbox.stats()
    assert stats["token_calls"] == 1 and stats["mints"] == 0  # refused credentials are not retried
    assert stats["api_calls"] == 0
    # The back-off holds: the next request does not ask the token endpoint again.
    assert_error(get(reused_gateway, "123"), 503, "zoho_token_unavailable", retry_after=True)
    assert sandbox.stats()["token_calls"] == 1


def test_revoked_refresh_token_is_503(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.revoke_refresh_token()
    assert_error(get(reused_gateway, "123"), 503, "zoho_token_unavailable", retry_after=True)
    assert sandbox.stats()["api_calls"] == 0


def test_token_answer_200_without_access_token_is_503(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(target="token", kind="status", status=200, body='{"foo": 1}')
    assert_error(post(reused_gateway), 503, "zoho_token_unavailable", retry_after=True)
    stats = sandbox.stats()
    assert 1 <= stats["token_calls"] <= 3 and stats["mints"] == 0
    assert stats["api_calls"] == 0 and stats["tickets"] == 0


@pytest.mark.parametrize("http_status", [200, 400])
def test_token_throttle_is_503_throttled(
    http_status: int, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    sandbox.settings(throttle_http_status=http_status)
    sandbox.fault(target="token", kind="throttle", times=1)
    assert_error(get(reused_gateway, "123"), 503, "zoho_token_throttled", retry_after=True)
    assert sandbox.stats()["token_calls"] == 1 and sandbox.stats()["api_calls"] == 0


def test_token_endpoint_html_is_503(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(target="token", kind="html")
    assert_error(get(reused_gateway, "123"), 503, "zoho_token_unavailable", retry_after=True)


def test_token_endpoint_recovers_after_forget(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(target="token", kind="garbage", times=3)
    assert_error(get(reused_gateway, "123"), 503, "zoho_token_unavailable", retry_after=True)
    reused_gateway.gateway.tokens.forget()  # what an operator's "token forget" does
    response = post(reused_gateway)
    assert response.status_code == 201, response.text
    assert json.loads(response.text)["message"] == "Ticket created successfully"
