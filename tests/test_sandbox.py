"""The Zoho sandbox, exercised over real sockets with ``requests``: OAuth, SDP v3, faults and control API."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.helpers import (
    ENTITY_KEYS,
    SDP_ACCEPT,
    TIMEOUT,
    control,
    failure,
    fault,
    mint,
    refresh_params,
    sdp_create,
    sdp_get,
    sdp_headers,
    stats,
    token_call,
)
from tests.servers import Sandbox
from zoho_gateway.sandbox import SandboxServer, SandboxSettings, create_sandbox_app

TOKEN_PATTERN = re.compile(r"^1000\.[0-9a-f]{32}\.[0-9a-f]{32}$")
THROTTLE_BODY = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
}


# Every test takes ``sandbox`` (conftest.py): the session's sandbox, reset to a blank world; the helpers that
# speak OAuth and SDP to it are in tests/helpers.py.


# ---- Zoho Accounts ----------------------------------------------------------------------------------


def test_refresh_grant_returns_zoho_token_without_refresh_token(sandbox: Sandbox) -> None:
    response = token_call(sandbox)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "api_domain", "token_type"}
    assert TOKEN_PATTERN.match(body["access_token"])
    assert body["expires_in"] == 3600
    assert body["api_domain"] == "https://www.zohoapis.com"
    assert body["token_type"] == "Bearer"


def test_refresh_grant_accepts_query_string_parameters(sandbox: Sandbox) -> None:
    response = requests.post(f"{sandbox.url}/oauth/v2/token", params=refresh_params(), timeout=TIMEOUT)

    assert response.status_code == 200
    assert TOKEN_PATTERN.match(response.json()["access_token"])


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_id": "someone-else"}, 200, "invalid_client"),
        ({"client_secret": "wrong-secret"}, 200, "invalid_client_secret"),
        ({"refresh_token": "not-the-refresh-token"}, 200, "invalid_code"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_token_errors_are_zoho_bodies(
    sandbox: Sandbox, overrides: dict[str, str], status: int, error: str
) -> None:
    response = token_call(sandbox, **overrides)

    assert response.status_code == status
    assert response.json() == {"error": error}
    counters = stats(sandbox)
    assert (counters["token_calls"], counters["token_failures"], counters["mints"]) == (1, 1, 0)


def test_earlier_tokens_stay_valid_after_a_new_mint(sandbox: Sandbox) -> None:
    first, second = mint(sandbox), mint(sandbox)

    assert first != second
    assert sdp_get(sandbox, first, "1").status_code == 404  # authorised, just no such ticket
    assert sdp_get(sandbox, second, "1").status_code == 404


def test_throttle_after_limit_then_window_frees(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "settings", {"token_window": 1})
    for _ in range(10):
        mint(sandbox)

    throttled = token_call(sandbox)
    assert throttled.status_code == 200
    assert throttled.json() == THROTTLE_BODY
    counters = stats(sandbox)
    assert (counters["mints"], counters["throttled"], counters["token_calls"]) == (10, 1, 11)

    time.sleep(1.05)
    assert TOKEN_PATTERN.match(mint(sandbox))


def test_throttle_counts_failed_attempts_per_refresh_token_and_can_answer_400(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "settings", {"throttle_http_status": 400, "token_limit": 2})
    control(sandbox, "POST", "refresh_tokens/revoke")
    assert token_call(sandbox).json() == {"error": "invalid_code"}  # an attempt: counts
    control(sandbox, "POST", "refresh_tokens/restore")
    mint(sandbox)
    assert token_call(sandbox, refresh_token="another-token").json() == {
        "error": "invalid_code"
    }  # own window

    throttled = token_call(sandbox)
    assert throttled.status_code == 400
    assert throttled.json() == THROTTLE_BODY


def test_concurrent_token_calls_mint_at_most_the_limit(sandbox: Sandbox) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        bodies = list(pool.map(lambda _: token_call(sandbox).json(), range(24)))

    assert sum("access_token" in body for body in bodies) == 10
    assert sum(body == THROTTLE_BODY for body in bodies) == 14


def test_concurrent_creates_get_distinct_ids(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(lambda _: sdp_create(sandbox, token).json()["request"]["id"], range(32)))

    assert len(set(ids)) == 32
    assert stats(sandbox)["creates"] == 32


def test_authorization_code_is_single_use(sandbox: Sandbox) -> None:
    code = control(sandbox, "POST", "codes").json()["code"]
    params = refresh_params(grant_type="authorization_code", code=code)
    del params["refresh_token"]

    first = requests.post(f"{sandbox.url}/oauth/v2/token", data=params, timeout=TIMEOUT)
    second = requests.post(f"{sandbox.url}/oauth/v2/token", data=params, timeout=TIMEOUT)

    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] == "sandbox-refresh-token"
    assert TOKEN_PATTERN.match(body["access_token"])
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert (second.status_code, second.json()) == (200, {"error": "invalid_code"})


def test_revoked_refresh_token_answers_invalid_code_until_restored(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "refresh_tokens/revoke")
    assert token_call(sandbox).json() == {"error": "invalid_code"}

    control(sandbox, "POST", "refresh_tokens/restore")
    assert TOKEN_PATTERN.match(mint(sandbox))


def test_revoke_endpoint_revokes_refresh_token_and_its_access_tokens(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    response = requests.post(
        f"{sandbox.url}/oauth/v2/token/revoke", params={"token": "sandbox-refresh-token"}, timeout=TIMEOUT
    )

    assert (response.status_code, response.json()) == (200, {"status": "success"})
    assert token_call(sandbox).json() == {"error": "invalid_code"}
    assert sdp_get(sandbox, token, "1").status_code == 401


# ---- SDP v3: create, get, list ---------------------------------------------------------------------


def test_create_then_get_round_trip_with_full_entity(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    created = sdp_create(
        sandbox,
        token,
        {
            "subject": "VPN down",
            "description": "Cannot connect since 9am",
            "requester": {"email_id": "jane.doe@example.com"},
            "priority": {"name": "High"},
            "category": {"name": "Network"},
            "department": {"name": "Sales"},
            "udf_fields": {"udf_sline_1": "x"},
        },
    )

    assert created.status_code == 201
    body = created.json()
    assert body["response_status"] == {"status_code": 2000, "status": "success"}
    entity = body["request"]
    assert set(entity) == ENTITY_KEYS and len(entity) == 62
    assert re.fullmatch(r"\d{18}", entity["id"])
    assert entity["display_id"].isdigit()
    assert entity["subject"] == "VPN down"
    assert entity["description"] == "Cannot connect since 9am"
    assert entity["requester"]["email_id"] == "jane.doe@example.com"
    assert entity["requester"]["name"] == "Jane Doe"
    assert entity["priority"]["name"] == "High" and entity["priority"]["color"].startswith("#")
    assert entity["status"]["name"] == "Open"
    assert set(entity["status"]) == {"in_progress", "internal_name", "stop_timer", "color", "name", "id"}
    assert entity["category"]["name"] == "Network"
    assert entity["department"]["name"] == "Sales"
    assert entity["technician"] is None and entity["resolution"] is None
    assert entity["udf_fields"] == {"udf_sline_1": "x"}
    assert set(entity["created_time"]) == {"display_value", "value"}
    assert entity["created_time"]["value"].isdigit()
    assert abs(int(entity["created_time"]["value"]) - time.time() * 1000) < 60_000

    fetched = sdp_get(sandbox, token, entity["id"])
    assert fetched.status_code == 200
    assert fetched.json() == {
        "request": entity,
        "response_status": {"status_code": 2000, "status": "success"},
    }
    via_portal = sdp_get(sandbox, token, entity["id"], prefix="/app/itdesk/api/v3")
    assert via_portal.json()["request"] == entity


def test_ticket_ids_increase(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    first = sdp_create(sandbox, token).json()["request"]
    second = sdp_create(sandbox, token).json()["request"]

    assert int(second["id"]) > int(first["id"])
    assert int(second["display_id"]) == int(first["display_id"]) + 1


def test_create_status_can_be_switched_to_200(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "settings", {"create_http_status": 200})

    assert sdp_create(sandbox, mint(sandbox)).status_code == 200


def test_create_accepts_input_data_in_query_string(sandbox: Sandbox) -> None:
    response = requests.post(
        f"{sandbox.url}/api/v3/requests",
        headers=sdp_headers(mint(sandbox), scheme="Bearer"),
        params={"input_data": json.dumps({"request": {"subject": "Via query"}})},
        timeout=TIMEOUT,
    )

    assert response.status_code == 201
    assert response.json()["request"]["subject"] == "Via query"


def test_extra_key_is_rejected_with_4001(sandbox: Sandbox) -> None:
    response = sdp_create(sandbox, mint(sandbox), {"subject": "x", "os": "Linux"})

    assert response.status_code == 400
    assert response.json() == failure(4001, "EXTRA_KEY_FOUND_IN_JSON", "os")


@pytest.mark.parametrize(
    "request_body", [{}, {"subject": ""}, {"subject": "   "}, {"description": "no subject"}]
)
def test_missing_subject_is_4012(sandbox: Sandbox, request_body: dict[str, Any]) -> None:
    response = sdp_create(sandbox, mint(sandbox), request_body)

    assert response.status_code == 400
    detail = response.json()["response_status"]["messages"][0]
    assert (detail["status_code"], detail["field"]) == (4012, "subject")


@pytest.mark.parametrize("field", ["priority", "status", "category", "department"])
def test_unknown_lookup_name_is_4001_with_field(sandbox: Sandbox, field: str) -> None:
    response = sdp_create(sandbox, mint(sandbox), {"subject": "x", field: {"name": "Nonexistent"}})

    assert response.status_code == 400
    assert response.json() == failure(4001, f"Value given for {field} is not valid", field)
    assert control(sandbox, "GET", "tickets").json()["count"] == 0


def test_lookup_by_id_and_case_insensitive_name(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    high = sdp_create(sandbox, token, {"subject": "x", "priority": {"name": "high"}}).json()["request"][
        "priority"
    ]
    by_id = sdp_create(sandbox, token, {"subject": "y", "priority": {"id": high["id"]}}).json()["request"][
        "priority"
    ]

    assert high["name"] == "High"
    assert by_id == high


@pytest.mark.parametrize(
    "data", [{"input_data": "{not json"}, {"input_data": json.dumps({"subject": "x"})}, {}]
)
def test_bad_input_data_is_4000(sandbox: Sandbox, data: dict[str, str]) -> None:
    response = requests.post(
        f"{sandbox.url}/api/v3/requests", headers=sdp_headers(mint(sandbox)), data=data, timeout=TIMEOUT
    )

    assert response.status_code == 400
    status = response.json()["response_status"]
    assert (status["status_code"], status["status"]) == (4000, "failed")
    assert status["messages"][0]["message"]


@pytest.mark.parametrize("ticket_id", ["123640000000999999", "abc"])
def test_unknown_id_is_4007(sandbox: Sandbox, ticket_id: str) -> None:
    response = sdp_get(sandbox, mint(sandbox), ticket_id)

    assert response.status_code == 404
    assert response.json() == {
        "response_status": {
            "messages": [{"status_code": 4007, "type": "failed", "message": "Invalid URL"}],
            "status": "failed",
        }
    }


def test_list_uses_array_envelope(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    for _ in range(3):
        sdp_create(sandbox, token)
    response = requests.get(
        f"{sandbox.url}/api/v3/requests",
        headers=sdp_headers(token),
        params={"input_data": json.dumps({"list_info": {"row_count": 2, "start_index": 1}})},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    body = response.json()
    assert body["response_status"] == [{"status_code": 2000, "status": "success"}]
    assert body["list_info"] == {"has_more_rows": True, "start_index": 1, "row_count": 2}
    assert len(body["requests"]) == 2


# ---- SDP v3: authentication --------------------------------------------------------------------------

UNAUTHORIZED = failure(4001, "Invalid OAuth token")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Zoho-oauthtoken 1000.deadbeef.deadbeef"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "justatoken"},
    ],
)
def test_missing_or_unknown_token_is_401(sandbox: Sandbox, headers: dict[str, str]) -> None:
    response = requests.get(f"{sandbox.url}/api/v3/requests/1", headers=headers, timeout=TIMEOUT)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert stats(sandbox)["unauthorized"] == 1


def test_expire_tokens_fault_makes_next_call_401(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="api", kind="expire_tokens", times=1)

    assert sdp_get(sandbox, token, "1").status_code == 401
    assert sdp_get(sandbox, mint(sandbox), "1").status_code == 404


def test_token_expires_after_ttl(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "settings", {"token_ttl": 1})
    response = token_call(sandbox)
    assert response.json()["expires_in"] == 1
    token = response.json()["access_token"]

    assert sdp_get(sandbox, token, "1").status_code == 404
    time.sleep(1.05)
    expired = sdp_get(sandbox, token, "1")
    assert (expired.status_code, expired.json()) == (401, UNAUTHORIZED)


# ---- faults --------------------------------------------------------------------------------------------


def test_delay_fault_then_normal_answer(sandbox: Sandbox) -> None:
    fault(sandbox, target="token", kind="delay", seconds=0.3, times=1)
    started = time.monotonic()

    token = mint(sandbox)

    assert time.monotonic() - started >= 0.3
    assert TOKEN_PATTERN.match(token)


def test_status_fault_with_body_and_retry_after(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="get", kind="status", status=503, body="upstream busy", retry_after=7, times=1)

    response = sdp_get(sandbox, token, "1")

    assert response.status_code == 503
    assert response.text == "upstream busy"
    assert response.headers["Retry-After"] == "7"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert sdp_get(sandbox, token, "1").status_code == 404  # consumed


def test_status_fault_json_body_gets_json_content_type(sandbox: Sandbox) -> None:
    body = json.dumps(failure(4002, "User does not have this permission"))
    fault(sandbox, target="create", kind="status", status=403, body=body, times=1)

    response = sdp_create(sandbox, mint(sandbox))

    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["response_status"]["messages"][0]["status_code"] == 4002


def test_html_fault_is_502_page(sandbox: Sandbox) -> None:
    fault(sandbox, target="api", kind="html", times=1)

    response = sdp_get(sandbox, mint(sandbox), "1")

    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text


def test_garbage_fault_is_200_non_json(sandbox: Sandbox) -> None:
    fault(sandbox, target="token", kind="garbage", times=1)

    response = token_call(sandbox)

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_rate_limit_fault_is_429_with_4015(sandbox: Sandbox) -> None:
    fault(sandbox, target="create", kind="rate_limit", times=1)

    response = sdp_create(sandbox, mint(sandbox))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json() == failure(4015, "API Rate Limit reached")
    assert control(sandbox, "GET", "tickets").json()["count"] == 0


def test_throttle_and_invalid_code_faults_on_token(sandbox: Sandbox) -> None:
    fault(sandbox, target="token", kind="throttle", times=1)
    fault(sandbox, target="token", kind="invalid_code", times=1)

    first, second = token_call(sandbox), token_call(sandbox)

    assert (first.status_code, first.json()) == (200, THROTTLE_BODY)
    assert (second.status_code, second.json()) == (200, {"error": "invalid_code"})
    assert TOKEN_PATTERN.match(mint(sandbox))
    assert stats(sandbox)["token_failures"] == 2


@pytest.mark.parametrize("target", ["token", "get"])
def test_reset_connection_fault_closes_without_answer(sandbox: Sandbox, target: str) -> None:
    token = mint(sandbox)
    fault(sandbox, target=target, kind="reset_connection", times=1)

    with pytest.raises(requests.ConnectionError):
        token_call(sandbox) if target == "token" else sdp_get(sandbox, token, "1")
    assert sdp_get(sandbox, token, "1").status_code == 404


def test_fail_after_create_stores_ticket_but_times_out(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="fail_after_create", seconds=0.5, times=1)

    with pytest.raises(requests.ReadTimeout):
        sdp_create(sandbox, token, {"subject": "Outcome unknown"}, timeout=(TIMEOUT, 0.2))

    tickets = control(sandbox, "GET", "tickets").json()
    assert tickets["count"] == 1 and tickets["tickets"][0]["subject"] == "Outcome unknown"
    assert stats(sandbox)["creates"] == 1


def test_faults_queue_in_order_and_consume_times(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="api", kind="status", status=500, times=2)
    fault(sandbox, target="get", kind="html", times=1)

    statuses = [sdp_get(sandbox, token, "1").status_code for _ in range(4)]

    assert statuses == [500, 500, 502, 404]
    assert stats(sandbox)["faults_fired"] == 3


def test_fault_without_times_lasts_until_cleared(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="get", kind="status", status=504)

    assert [sdp_get(sandbox, token, "1").status_code for _ in range(3)] == [504, 504, 504]
    assert sdp_create(sandbox, token).status_code == 201  # other targets untouched
    assert control(sandbox, "DELETE", "faults").status_code == 200
    assert sdp_get(sandbox, token, "1").status_code == 404


@pytest.mark.parametrize(
    "spec",
    [
        {"target": "nowhere", "kind": "html"},
        {"target": "get", "kind": "explode"},
        {"target": "get", "kind": "throttle"},
        {"target": "token", "kind": "fail_after_create"},
        {"target": "get", "kind": "status"},
        {"target": "get", "kind": "html", "times": 0},
    ],
)
def test_bad_fault_spec_is_rejected(sandbox: Sandbox, spec: dict[str, Any]) -> None:
    response = control(sandbox, "POST", "faults", spec)

    assert response.status_code == 400
    assert response.json()["error"]


# ---- control API ----------------------------------------------------------------------------------------


def test_stats_count_calls_and_record_headers_without_token(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    ticket_id = sdp_create(sandbox, token).json()["request"]["id"]
    sdp_get(sandbox, token, ticket_id)
    sdp_get(sandbox, token, "1")
    requests.get(f"{sandbox.url}/api/v3/requests/1", timeout=TIMEOUT)

    counters = stats(sandbox)
    assert counters["token_calls"] == counters["mints"] == 1
    assert (counters["create_calls"], counters["creates"]) == (1, 1)
    assert (counters["get_calls"], counters["gets"]) == (3, 1)
    assert counters["api_calls"] == 4
    assert counters["unauthorized"] == 1
    assert counters["last_headers"]["Authorization"] is None
    assert counters["accept_seen"][SDP_ACCEPT] == 3
    sdp_get(sandbox, token, ticket_id)
    counters = stats(sandbox)
    assert counters["last_headers"] == {
        "Accept": SDP_ACCEPT,
        "Authorization": "Zoho-oauthtoken",
        "Content-Type": None,
    }
    assert token not in json.dumps(counters)


def test_reset_clears_everything(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    sdp_create(sandbox, token)
    fault(sandbox, target="get", kind="html")
    control(sandbox, "POST", "settings", {"latency_ms": 5, "create_http_status": 200})

    assert control(sandbox, "POST", "reset").status_code == 200

    counters = stats(sandbox)
    assert (
        counters["mints"] == counters["api_calls"] == counters["tickets"] == counters["pending_faults"] == 0
    )
    assert control(sandbox, "GET", "settings").json() == SandboxSettings().as_dict()
    assert sdp_get(sandbox, token, "1").status_code == 401


def test_settings_reject_unknown_fields_and_bad_types(sandbox: Sandbox) -> None:
    assert control(sandbox, "POST", "settings", {"colour": "blue"}).status_code == 400
    assert control(sandbox, "POST", "settings", {"token_ttl": "soon"}).status_code == 400
    assert control(sandbox, "POST", "settings", {"throttle_http_status": 42}).status_code == 400
    assert control(sandbox, "GET", "settings").json()["token_ttl"] == 3600


def test_latency_applies_to_api_calls_not_token_calls(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "settings", {"latency_ms": 250})

    started = time.monotonic()
    token = mint(sandbox)
    token_elapsed = time.monotonic() - started
    sdp_get(sandbox, token, "1")
    api_elapsed = time.monotonic() - started - token_elapsed

    assert token_elapsed < 0.2
    assert api_elapsed >= 0.25


def test_patch_ticket_sets_technician_resolution_and_status(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    ticket_id = sdp_create(sandbox, token).json()["request"]["id"]

    patched = control(
        sandbox,
        "PATCH",
        f"tickets/{ticket_id}",
        {
            "technician": {"name": "Ada Tech", "email_id": "ada@example.com"},
            "resolution": "Replaced the toner",
            "status": "Resolved",
        },
    )
    assert patched.status_code == 200

    entity = sdp_get(sandbox, token, ticket_id).json()["request"]
    assert entity["technician"]["name"] == "Ada Tech"
    assert set(entity["technician"]) == {
        "email_id", "cost_per_hour", "phone", "name", "mobile", "id", "photo_url", "sms_mail_id",
    }  # fmt: skip
    assert entity["resolution"]["content"] == "Replaced the toner"
    assert entity["status"]["name"] == "Resolved" and entity["status"]["in_progress"] is False
    assert entity["resolved_time"]["value"].isdigit()

    control(sandbox, "PATCH", f"tickets/{ticket_id}", {"technician": None, "resolution": None})
    entity = sdp_get(sandbox, token, ticket_id).json()["request"]
    assert entity["technician"] is None and entity["resolution"] is None


def test_patch_ticket_rejects_unknown_ticket_and_fields(sandbox: Sandbox) -> None:
    ticket_id = sdp_create(sandbox, mint(sandbox)).json()["request"]["id"]

    assert control(sandbox, "PATCH", "tickets/123", {"status": "Closed"}).status_code == 404
    assert control(sandbox, "PATCH", f"tickets/{ticket_id}", {"subject": "x"}).status_code == 400
    assert control(sandbox, "PATCH", f"tickets/{ticket_id}", {"status": "Exploded"}).status_code == 400


def test_ticket_listing_summarises_creates(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    sdp_create(sandbox, token, {"subject": "One", "requester": {"email_id": "a@example.com"}})
    sdp_create(sandbox, token, {"subject": "Two"})

    listing = control(sandbox, "GET", "tickets").json()

    assert listing["count"] == 2
    assert [(t["subject"], t["requester_email"]) for t in listing["tickets"]] == [
        ("One", "a@example.com"),
        ("Two", "sdp-api@sandbox.invalid"),
    ]


def test_world_is_reachable_directly(sandbox: Sandbox, sandbox_server: SandboxServer) -> None:
    mint(sandbox)

    assert sandbox_server.world.stats()["mints"] == 1
    assert sandbox.url.startswith("http://127.0.0.1:")


def test_settings_from_environment() -> None:
    settings = SandboxSettings.from_env({"SANDBOX_LATENCY_MS": "20", "SANDBOX_TOKEN_TTL": "60"})

    assert (settings.latency_ms, settings.token_ttl) == (20, 60)
    assert settings.client_id == "sandbox-client-id"


def test_app_factory_is_plain_wsgi() -> None:
    client = create_sandbox_app(SandboxSettings(token_ttl=5)).test_client()

    response = client.post("/oauth/v2/token", data=refresh_params())

    assert response.status_code == 200
    assert response.get_json()["expires_in"] == 5
