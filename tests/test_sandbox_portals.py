"""The sandbox serves several portals at once: each with its own tickets, faults, counters, settings and
OAuth account (or one shared account), over real sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.helpers import (
    SANDBOX_CLIENT_ID,
    SANDBOX_REFRESH_TOKEN,
    TIMEOUT,
    control,
    mint,
    sdp_create,
    sdp_get,
    sdp_headers,
    token_call,
)
from tests.servers import REPO, Sandbox
from zoho_gateway.sandbox import SandboxServer, SandboxSettings
from zoho_gateway.sandbox.settings import SettingsError


class At:
    """A base URL (``Served``), e.g. a portal's ``/t/<name>``, for the SDP helpers of tests.helpers."""

    def __init__(self, url: str) -> None:
        self.url = url


def declare(sandbox: Sandbox | SandboxServer, **spec: Any) -> dict[str, Any]:
    answer = requests.post(f"{sandbox.url}/_sandbox/portals", json=spec, timeout=TIMEOUT)
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


def portal_mint(portal: dict[str, Any]) -> requests.Response:
    """A refresh-token grant at the portal's accounts URL with its account's credentials."""
    form = {
        "grant_type": "refresh_token",
        "client_id": portal["client_id"],
        "client_secret": portal["client_secret"],
        "refresh_token": portal["refresh_token"],
    }
    return requests.post(f"{portal['accounts_url']}/oauth/v2/token", data=form, timeout=TIMEOUT)


def portal_token(portal: dict[str, Any]) -> str:
    answer = portal_mint(portal)
    assert "access_token" in answer.json(), answer.text
    token: str = answer.json()["access_token"]
    return token


def tenant(
    sandbox: Sandbox | SandboxServer, name: str, method: str, path: str, payload: Any = None
) -> requests.Response:
    """A call to ``/_sandbox/t/<name>/<path>``."""
    return requests.request(method, f"{sandbox.url}/_sandbox/t/{name}/{path}", json=payload, timeout=TIMEOUT)


def count(sandbox: Sandbox | SandboxServer, name: str) -> int:
    number: int = tenant(sandbox, name, "GET", "tickets/count").json()["count"]
    return number


def desk_headers(token: str, org_id: str) -> dict[str, str]:
    return {"Authorization": f"Zoho-oauthtoken {token}", "orgId": org_id}


def desk_create(portal: dict[str, Any], token: str, subject: str) -> requests.Response:
    body = {"subject": subject, "departmentId": portal["department_id"], "contact": {"email": "pat@example.com"}}
    return requests.post(
        f"{portal['base_url']}/api/v1/tickets",
        json=body,
        headers=desk_headers(token, portal["org_id"]),
        timeout=TIMEOUT,
    )


@pytest.fixture
def three(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Two more SDP portals (hr on its own account, it2 on the default one) and a Desk portal."""
    return {
        "default": requests.get(f"{sandbox.url}/_sandbox/portals/default", timeout=TIMEOUT).json(),
        "hr": declare(sandbox, name="hr", service="sdp"),
        "it2": declare(sandbox, name="it2", service="sdp", account="default"),
        "support": declare(sandbox, name="support", service="desk", org_id="700000001"),
    }


# ---- declaring portals -----------------------------------------------------------------------------------


def test_a_declared_portal_describes_its_urls_and_credentials(sandbox: Sandbox) -> None:
    answer = requests.post(f"{sandbox.url}/_sandbox/portals", json={"name": "hr", "service": "sdp"}, timeout=TIMEOUT)
    assert answer.status_code == 201, answer.text
    hr = answer.json()
    assert hr["base_url"] == f"{sandbox.url}/t/hr" and hr["api_path"] == "/t/hr/api/v3"
    assert hr["accounts_url"] == f"{sandbox.url}/a/hr" and hr["account"] == "hr"
    assert (hr["client_id"], hr["client_secret"], hr["refresh_token"]) == (
        "sandbox-hr-client-id",
        "sandbox-hr-client-secret",
        "sandbox-hr-refresh-token",
    )
    assert hr["control_url"] == f"{sandbox.url}/_sandbox/t/hr"

    # The same declaration again is answered 200; another one under the same name is a conflict.
    again = requests.post(f"{sandbox.url}/_sandbox/portals", json={"name": "hr", "service": "sdp"}, timeout=TIMEOUT)
    assert again.status_code == 200 and again.json() == hr
    clash = requests.post(f"{sandbox.url}/_sandbox/portals", json={"name": "hr", "service": "desk"}, timeout=TIMEOUT)
    assert clash.status_code == 409, clash.text

    support = declare(sandbox, name="support", service="desk")
    assert support["api_path"] == "/t/support/api/v1" and support["org_id"].isdigit()
    assert support["department_id"] == support["departments"][0]["id"]
    names = [p["name"] for p in requests.get(f"{sandbox.url}/_sandbox/portals", timeout=TIMEOUT).json()["portals"]]
    assert names == ["default", "hr", "support"]

    deleted = requests.delete(f"{sandbox.url}/_sandbox/portals/hr", timeout=TIMEOUT)
    assert deleted.status_code == 200
    assert requests.get(f"{sandbox.url}/_sandbox/portals/hr", timeout=TIMEOUT).status_code == 404
    assert requests.delete(f"{sandbox.url}/_sandbox/portals/default", timeout=TIMEOUT).status_code == 400


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "HR", "service": "sdp"},
        {"name": "default", "service": "sdp"},
        {"name": "hr", "service": "jira"},
        {"name": "hr", "service": "sdp", "account": "no spaces"},
        {"name": "hr", "service": "desk", "org_id": "abc"},
        {"name": "hr", "colour": "blue"},
    ],
)
def test_a_bad_declaration_is_refused(sandbox: Sandbox, spec: dict[str, Any]) -> None:
    answer = requests.post(f"{sandbox.url}/_sandbox/portals", json=spec, timeout=TIMEOUT)
    assert answer.status_code == 400, answer.text
    assert "error" in answer.json()


def test_two_desk_portals_cannot_share_an_org_id(sandbox: Sandbox) -> None:
    declare(sandbox, name="support", service="desk", org_id="700000001")
    answer = requests.post(
        f"{sandbox.url}/_sandbox/portals", json={"name": "sales", "service": "desk", "org_id": "700000001"}, timeout=5
    )
    assert answer.status_code == 409, answer.text


def test_an_account_may_be_declared_with_its_own_credentials(sandbox: Sandbox) -> None:
    creds = {"client_id": "1000.HRCLIENT", "client_secret": "hr-secret", "refresh_token": "1000.hr.refresh"}
    created = requests.post(f"{sandbox.url}/_sandbox/accounts", json={"name": "people", **creds}, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    hr = declare(sandbox, name="hr", service="sdp", account="people")
    assert (hr["client_id"], hr["client_secret"], hr["refresh_token"]) == tuple(creds.values())
    assert hr["accounts_url"] == f"{sandbox.url}/a/people"
    assert portal_mint(hr).status_code == 200 and "access_token" in portal_mint(hr).json()
    # Two accounts never share a refresh token: sharing one means naming the same account.
    clash = requests.post(
        f"{sandbox.url}/_sandbox/accounts", json={"name": "other", "refresh_token": "1000.hr.refresh"}, timeout=5
    )
    assert clash.status_code == 409, clash.text


# ---- isolation ---------------------------------------------------------------------------------------------


def test_each_portals_tickets_land_only_in_its_own_zoho(sandbox: Sandbox, three: dict[str, dict[str, Any]]) -> None:
    default_token, hr_token = mint(sandbox), portal_token(three["hr"])
    created = {
        "default": sdp_create(sandbox, default_token, {"subject": "IT: printer"}).json()["request"],
        "hr": sdp_create(At(three["hr"]["base_url"]), hr_token, {"subject": "HR: leave"}).json()["request"],
        "it2": sdp_create(At(three["it2"]["base_url"]), default_token, {"subject": "IT2: vpn"}).json()["request"],
    }
    desk_answer = desk_create(three["support"], portal_token(three["support"]), "Support: refund")
    assert desk_answer.status_code == 200, desk_answer.text

    assert {name: count(sandbox, name) for name in three} == {"default": 1, "hr": 1, "it2": 1, "support": 1}
    assert sandbox.ticket_count() == 1  # /_sandbox/tickets/count is still the default portal's
    for name, entity in created.items():
        listed = tenant(sandbox, name, "GET", "tickets").json()["tickets"]
        assert [row["subject"] for row in listed] == [entity["subject"]]
        # Every portal numbers its own requests from 101, but ids come from a range of its own...
        assert entity["display_id"] == "101"
    assert len({entity["id"] for entity in created.values()} | {desk_answer.json()["id"]}) == 4
    # ...so an id from one portal is unknown in every other.
    assert sdp_get(sandbox, default_token, created["hr"]["id"]).status_code == 404
    assert sdp_get(At(three["hr"]["base_url"]), hr_token, created["default"]["id"]).status_code == 404
    assert sdp_get(At(three["it2"]["base_url"]), default_token, created["it2"]["id"]).json()["request"]["subject"] == (
        "IT2: vpn"
    )
    # The portal path form /t/<name>/app/<portal>/api/v3 works too.
    answer = requests.get(
        f"{three['hr']['base_url']}/app/hrdesk/api/v3/requests/{created['hr']['id']}",
        headers=sdp_headers(hr_token),
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200 and answer.json()["request"]["subject"] == "HR: leave"


def test_a_token_works_only_on_the_portals_of_its_account(sandbox: Sandbox, three: dict[str, dict[str, Any]]) -> None:
    default_token, hr_token = mint(sandbox), portal_token(three["hr"])
    hr, it2 = At(three["hr"]["base_url"]), At(three["it2"]["base_url"])
    assert sdp_create(hr, default_token, {"subject": "x"}).status_code == 401
    assert sdp_create(sandbox, hr_token, {"subject": "x"}).status_code == 401
    assert sdp_create(it2, hr_token, {"subject": "x"}).status_code == 401
    assert sdp_create(it2, default_token, {"subject": "x"}).status_code == 201  # it2 is on the default account
    # The default account's credentials mean nothing to hr's token endpoint, and the other way round.
    wrong = requests.post(
        f"{three['hr']['accounts_url']}/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": "sandbox-client-secret",
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
        timeout=TIMEOUT,
    )
    assert wrong.json() == {"error": "invalid_client"}
    assert token_call(sandbox, refresh_token="sandbox-hr-refresh-token").json() == {"error": "invalid_code"}
    assert tenant(sandbox, "hr", "GET", "stats").json()["unauthorized"] == 1
    assert tenant(sandbox, "it2", "GET", "stats").json()["unauthorized"] == 1


def test_portals_on_one_account_share_its_tokens_and_mint_budget(
    sandbox: Sandbox, three: dict[str, dict[str, Any]]
) -> None:
    # it2 shares the default account: its settings cell for account fields is the default one.
    assert tenant(sandbox, "it2", "POST", "settings", {"token_limit": 2}).json()["token_limit"] == 2
    assert control(sandbox, "GET", "settings").json()["token_limit"] == 2
    assert portal_mint(three["it2"]).status_code == 200
    assert portal_mint(three["default"]).status_code == 200
    throttled = token_call(sandbox)
    assert throttled.json()["error"] == "Access Denied"
    # Both portals see the same account counters; hr's account has its own budget and mints on.
    for name in ("default", "it2"):
        stats = tenant(sandbox, name, "GET", "stats").json()
        assert (stats["mints"], stats["throttled"], stats["active_tokens"]) == (2, 1, 2), (name, stats)
    account = requests.get(f"{sandbox.url}/_sandbox/a/default/stats", timeout=TIMEOUT).json()
    assert (account["mints"], account["throttled"]) == (2, 1)
    assert portal_mint(three["hr"]).status_code == 200
    assert tenant(sandbox, "hr", "GET", "stats").json()["mints"] == 1


def test_a_throttled_portal_leaves_the_others_serving(sandbox: Sandbox, three: dict[str, dict[str, Any]]) -> None:
    hr_token = portal_token(three["hr"])
    # Throttle hr's account (a token fault queued on the portal goes to its account), for good.
    queued = tenant(sandbox, "hr", "POST", "faults", {"target": "token", "kind": "throttle"})
    assert queued.status_code == 201, queued.text
    for _ in range(3):
        answer = portal_mint(three["hr"])
        assert answer.json()["error"] == "Access Denied", answer.text
    # hr's API still serves the token it holds; everything else mints and serves as usual.
    assert sdp_create(At(three["hr"]["base_url"]), hr_token, {"subject": "still here"}).status_code == 201
    assert sdp_create(sandbox, mint(sandbox), {"subject": "IT"}).status_code == 201
    assert desk_create(three["support"], portal_token(three["support"]), "Support").status_code == 200
    assert tenant(sandbox, "hr", "GET", "stats").json()["throttled"] == 0  # a fault, not the window
    assert tenant(sandbox, "hr", "GET", "stats").json()["token_failures"] == 3
    assert control(sandbox, "GET", "stats").json()["token_failures"] == 0
    # The fault shows on hr's list (and its account's), never on the default's.
    assert [f["target"] for f in tenant(sandbox, "hr", "GET", "faults").json()["faults"]] == ["token"]
    assert control(sandbox, "GET", "faults").json()["faults"] == []

    # Zoho's own window, per refresh token: hr's account at its limit leaves the default account minting.
    tenant(sandbox, "hr", "DELETE", "faults")
    requests.post(f"{sandbox.url}/_sandbox/a/hr/settings", json={"token_limit": 1}, timeout=TIMEOUT)
    requests.post(f"{sandbox.url}/_sandbox/a/hr/reset", timeout=TIMEOUT)  # restores token_limit too
    requests.post(f"{sandbox.url}/_sandbox/a/hr/settings", json={"token_limit": 1}, timeout=TIMEOUT)
    assert portal_mint(three["hr"]).status_code == 200
    assert portal_mint(three["hr"]).json()["error"] == "Access Denied"
    assert "access_token" in token_call(sandbox).json()


def test_a_revoked_account_leaves_the_others_minting(sandbox: Sandbox, three: dict[str, dict[str, Any]]) -> None:
    assert requests.post(f"{sandbox.url}/_sandbox/a/hr/refresh_tokens/revoke", timeout=TIMEOUT).status_code == 200
    assert portal_mint(three["hr"]).json() == {"error": "invalid_code"}
    assert "access_token" in portal_mint(three["support"]).json()
    assert "access_token" in token_call(sandbox).json()
    assert tenant(sandbox, "hr", "GET", "stats").json()["refresh_token_revoked"] is True
    assert control(sandbox, "GET", "stats").json()["refresh_token_revoked"] is False
    requests.post(f"{sandbox.url}/_sandbox/a/hr/refresh_tokens/restore", timeout=TIMEOUT)
    assert "access_token" in portal_mint(three["hr"]).json()


def test_faults_counters_and_settings_are_per_portal(sandbox: Sandbox, three: dict[str, dict[str, Any]]) -> None:
    hr = At(three["hr"]["base_url"])
    default_token, hr_token = mint(sandbox), portal_token(three["hr"])
    assert tenant(sandbox, "hr", "POST", "faults", {"target": "create", "kind": "status", "status": 503, "times": 1}).ok
    assert tenant(sandbox, "hr", "POST", "settings", {"create_http_status": 200, "token_ttl": 120}).ok

    assert sdp_create(sandbox, default_token, {"subject": "fine"}).status_code == 201
    assert sdp_create(hr, hr_token, {"subject": "lost"}).status_code == 503
    assert sdp_create(hr, hr_token, {"subject": "kept"}).status_code == 200  # hr's own create status
    assert portal_mint(three["hr"]).json()["expires_in"] == 120  # hr's account's ttl
    assert token_call(sandbox).json()["expires_in"] == 3600

    default_stats, hr_stats = control(sandbox, "GET", "stats").json(), tenant(sandbox, "hr", "GET", "stats").json()
    assert (default_stats["create_calls"], default_stats["creates"], default_stats["faults_fired"]) == (1, 1, 0)
    assert (hr_stats["create_calls"], hr_stats["creates"], hr_stats["faults_fired"]) == (2, 1, 1)
    assert (hr_stats["portal"], hr_stats["service"], hr_stats["account"]) == ("hr", "sdp", "hr")
    assert "portal" not in default_stats
    assert control(sandbox, "GET", "settings").json()["create_http_status"] == 201
    assert tenant(sandbox, "hr", "GET", "settings").json()["token_ttl"] == 120
    assert requests.get(f"{sandbox.url}/_sandbox/a/hr/settings", timeout=TIMEOUT).json()["token_ttl"] == 120
    refused = tenant(sandbox, "hr", "POST", "settings", {"latency_ms": 0, "token_ttl": "soon"})
    assert refused.status_code == 400 and tenant(sandbox, "hr", "GET", "settings").json()["token_ttl"] == 120


def test_resetting_a_portal_leaves_the_others(sandbox: Sandbox, three: dict[str, dict[str, Any]]) -> None:
    default_token, hr_token = mint(sandbox), portal_token(three["hr"])
    hr = At(three["hr"]["base_url"])
    sdp_create(sandbox, default_token, {"subject": "IT"})
    sdp_create(hr, hr_token, {"subject": "HR"})
    assert tenant(sandbox, "hr", "POST", "reset").status_code == 200
    assert (count(sandbox, "hr"), count(sandbox, "default")) == (0, 1)
    # The portal's reset leaves its account alone: the token still works and ids start again.
    again = sdp_create(hr, hr_token, {"subject": "HR again"}).json()["request"]
    assert again["display_id"] == "101"

    # The world's reset forgets every ticket and removes the portals declared since the start.
    sandbox.reset()
    assert sandbox.ticket_count() == 0
    gone = requests.get(f"{three['hr']['base_url']}/api/v3/requests/1", headers=sdp_headers(hr_token), timeout=5)
    assert gone.status_code == 404 and gone.json()["response_status"]["messages"][0]["status_code"] == 4007
    assert tenant(sandbox, "hr", "GET", "stats").status_code == 404
    assert requests.get(f"{sandbox.url}/a/hr/oauth/v2/token", timeout=TIMEOUT).status_code in (404, 405)


def test_unknown_portals_and_wrong_services_answer_404_in_the_paths_format(
    sandbox: Sandbox, three: dict[str, dict[str, Any]]
) -> None:
    token = mint(sandbox)
    for url in (f"{sandbox.url}/t/nope/api/v3/requests", f"{sandbox.url}/t/support/api/v3/requests"):
        answer = requests.get(url, headers=sdp_headers(token), timeout=TIMEOUT)
        assert answer.status_code == 404, url
        assert answer.json()["response_status"]["messages"][0]["status_code"] == 4007
    for url in (f"{sandbox.url}/t/nope/api/v1/tickets", f"{sandbox.url}/t/hr/api/v1/tickets"):
        answer = requests.get(url, headers=desk_headers(token, "1"), timeout=TIMEOUT)
        assert answer.status_code == 404 and answer.json()["errorCode"] == "URL_NOT_FOUND", url
    missing = requests.post(f"{sandbox.url}/a/nope/oauth/v2/token", data={"grant_type": "refresh_token"}, timeout=5)
    assert missing.status_code == 404
    assert tenant(sandbox, "nope", "GET", "stats").status_code == 404


def test_t_default_is_the_default_portal(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    created = sdp_create(At(f"{sandbox.url}/t/default"), token, {"subject": "same"}).json()["request"]
    assert sdp_get(sandbox, token, created["id"]).json()["request"]["subject"] == "same"
    assert tenant(sandbox, "default", "GET", "tickets/count").json() == {"count": 1}
    assert requests.post(
        f"{sandbox.url}/a/default/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": "sandbox-client-secret",
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
        timeout=TIMEOUT,
    ).json()["access_token"]
    assert control(sandbox, "GET", "stats").json()["mints"] == 2


def test_an_accounts_consent_and_code_grant_stay_on_that_account(
    sandbox: Sandbox, three: dict[str, dict[str, Any]]
) -> None:
    hr = three["hr"]
    consent = requests.get(
        f"{hr['accounts_url']}/oauth/v2/auth",
        params={"response_type": "code", "client_id": hr["client_id"], "redirect_uri": "http://localhost/cb"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert consent.status_code == 302
    query = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert query["accounts-server"] == [hr["accounts_url"]]
    form = {
        "grant_type": "authorization_code",
        "client_id": hr["client_id"],
        "client_secret": hr["client_secret"],
        "code": query["code"][0],
    }
    granted = requests.post(f"{hr['accounts_url']}/oauth/v2/token", data=form, timeout=TIMEOUT).json()
    assert granted["refresh_token"] == hr["refresh_token"]
    # The code was hr's: the default account never issued it.
    code = requests.post(f"{sandbox.url}/_sandbox/a/hr/codes", timeout=TIMEOUT).json()["code"]
    elsewhere = requests.post(
        f"{sandbox.url}/oauth/v2/token",
        data={**form, "client_id": SANDBOX_CLIENT_ID, "client_secret": "sandbox-client-secret", "code": code},
        timeout=TIMEOUT,
    )
    assert elsewhere.json() == {"error": "invalid_code"}


# ---- portals declared at start, and the state file ----------------------------------------------------------


def test_portals_declared_at_start_survive_a_reset() -> None:
    settings = SandboxSettings(portals=("hr:sdp", "support:desk", "it2:sdp:default"))
    with SandboxServer(settings) as running:
        names = [p["name"] for p in requests.get(f"{running.url}/_sandbox/portals", timeout=5).json()["portals"]]
        assert names == ["default", "hr", "support", "it2"]
        declare(running, name="extra", service="sdp")
        requests.post(f"{running.url}/_sandbox/reset", timeout=TIMEOUT).raise_for_status()
        names = [p["name"] for p in requests.get(f"{running.url}/_sandbox/portals", timeout=5).json()["portals"]]
        assert names == ["default", "hr", "support", "it2"]
        assert settings.as_dict()["portals"] == ["hr:sdp", "support:desk", "it2:sdp:default"]


@pytest.mark.parametrize("portals", [("hr",), ("hr:jira",), ("Bad:sdp",), ("default:sdp",)])
def test_a_bad_startup_portal_stops_the_start(portals: tuple[str, ...]) -> None:
    with pytest.raises(SettingsError):
        SandboxServer(SandboxSettings(portals=portals))


def test_sandbox_portals_from_the_environment() -> None:
    settings = SandboxSettings.from_env({"SANDBOX_PORTALS": " hr:sdp , support:desk ,"})
    assert settings.portals == ("hr:sdp", "support:desk")
    with pytest.raises(SettingsError):
        settings.updated({"portals": ["x:sdp"]})


def test_the_state_file_keeps_every_portal_its_tickets_and_tokens(tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with SandboxServer(state_file=state_file) as first:
        requests.post(
            f"{first.url}/_sandbox/accounts", json={"name": "people", "client_id": "1000.PEOPLE"}, timeout=TIMEOUT
        ).raise_for_status()
        hr = declare(first, name="hr", service="sdp", account="people")
        support = declare(first, name="support", service="desk")
        hr_token, support_token = portal_token(hr), portal_token(support)
        hr_ticket = sdp_create(At(hr["base_url"]), hr_token, {"subject": "HR kept"}).json()["request"]
        desk_ticket = desk_create(support, support_token, "Desk kept").json()
        saved = json.loads(state_file.read_text())
        assert set(saved["portals"]) == {"hr", "support"} and set(saved["accounts"]) == {"people", "support"}

    with SandboxServer(state_file=state_file) as second:
        hr2 = requests.get(f"{second.url}/_sandbox/portals/hr", timeout=TIMEOUT).json()
        assert hr2["client_id"] == "1000.PEOPLE" and hr2["account"] == "people"
        hr_at = At(f"{second.url}/t/hr")
        answer = sdp_get(hr_at, hr_token, hr_ticket["id"])
        assert answer.status_code == 200 and answer.json()["request"]["subject"] == "HR kept"
        assert sdp_create(hr_at, hr_token, {"subject": "next"}).json()["request"]["display_id"] == "102"
        read = requests.get(
            f"{second.url}/t/support/api/v1/tickets/{desk_ticket['id']}",
            headers=desk_headers(support_token, support["org_id"]),
            timeout=TIMEOUT,
        )
        assert read.status_code == 200 and read.json()["subject"] == "Desk kept"
        assert tenant(second, "support", "GET", "stats").json()["contacts"] == 1
        # A reset of the world forgets the declared portals in the file too.
        requests.post(f"{second.url}/_sandbox/reset", timeout=TIMEOUT).raise_for_status()
        assert json.loads(state_file.read_text())["portals"] == {}


def test_the_command_line_serves_the_portals_it_is_given(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoho_gateway.sandbox", "--port", "0", "--memory"]
        + ["--portal", "hr:sdp", "--portal", "support:desk"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        url = lines[0].split()[-1]
        assert "portal hr (sdp)" in lines[4] and f"{url}/t/hr" in lines[4]
        assert "portal support (desk)" in lines[5] and "orgId=" in lines[5] and "departmentId=" in lines[5]
        names = [p["name"] for p in requests.get(f"{url}/_sandbox/portals", timeout=TIMEOUT).json()["portals"]]
        assert names == ["default", "hr", "support"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_an_sdp_portals_attachment_urls_are_under_its_path(sandbox: Sandbox, three: dict[str, dict[str, Any]]) -> None:
    token = portal_token(three["hr"])
    ticket = sdp_create(At(three["hr"]["base_url"]), token, {"subject": "with a file"}).json()["request"]
    answer = requests.post(
        f"{three['hr']['base_url']}/api/v3/requests/{ticket['id']}/_uploads",
        headers=sdp_headers(token),
        data={"addtoattachment": "true"},
        files={"filename": ("a.txt", b"hello", "text/plain")},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["files"][0]["content_url"].startswith(f"/t/hr/api/v3/requests/{ticket['id']}/attachments/")


def test_an_accounts_token_cap_drops_its_oldest_token_for_every_portal_on_it(
    sandbox: Sandbox, three: dict[str, dict[str, Any]]
) -> None:
    # Zoho keeps about 15 live tokens per refresh token; with a cap of 2 the third mint drops the first, so two
    # portals that mint separately on one account can invalidate each other's token.
    requests.post(f"{sandbox.url}/_sandbox/a/default/settings", json={"token_cap": 2}, timeout=TIMEOUT)
    first, second, third = portal_token(three["default"]), portal_token(three["it2"]), portal_token(three["it2"])
    assert sdp_create(sandbox, first, {"subject": "x"}).status_code == 401
    assert sdp_create(sandbox, second, {"subject": "x"}).status_code == 201
    assert sdp_create(At(three["it2"]["base_url"]), third, {"subject": "x"}).status_code == 201
    assert tenant(sandbox, "it2", "GET", "stats").json()["active_tokens"] == 2
    # Another account's tokens are not counted against it.
    hr_token = portal_token(three["hr"])
    portal_token(three["default"])
    assert sdp_create(At(three["hr"]["base_url"]), hr_token, {"subject": "x"}).status_code == 201
    assert control(sandbox, "GET", "settings").json()["token_cap"] == 2
