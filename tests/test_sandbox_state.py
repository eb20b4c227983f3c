"""The sandbox's state file (tickets and tokens survive a restart) and its consent shortcut, over real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.helpers import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    TIMEOUT,
    Served,
    free_port,
    mint,
    sdp_create,
    sdp_get,
    stats,
)
from tests.servers import REPO, Sandbox
from zoho_gateway.sandbox import SandboxServer, SandboxSettings
from zoho_gateway.sandbox.persistence import StateFileError


def exchange(sandbox: Served, code: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "code": code,
    }
    return requests.post(f"{sandbox.url}/oauth/v2/token", data=form, timeout=TIMEOUT)


# ---- the state file ---------------------------------------------------------------------------------


def test_tickets_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "var" / "sandbox-world.json"
    with SandboxServer(state_file=state_file) as first:
        assert first.state_file == str(state_file)
        token = mint(first)
        ticket_id = sdp_create(first, token, {"subject": "Keep me", "udf_fields": {"udf_sline_1": "ref-1"}}).json()[
            "request"
        ]["id"]
        assert state_file.exists() and oct(state_file.stat().st_mode & 0o777) == "0o600"

    with SandboxServer(state_file=state_file) as second:
        # The token minted before the restart is still valid, and the ticket still answers.
        answer = sdp_get(second, token, ticket_id)
        assert answer.status_code == 200, answer.text
        assert answer.json()["request"]["subject"] == "Keep me"
        assert answer.json()["request"]["udf_fields"] == {"udf_sline_1": "ref-1"}
        # The id sequence continues instead of reusing the first ticket's id.
        again = sdp_create(second, token, {"subject": "Next"}).json()["request"]
        assert int(again["id"]) > int(ticket_id) and again["display_id"] == "102"
        assert stats(second)["tickets"] == 2 and stats(second)["creates"] == 1  # counters start afresh


def test_expired_tokens_are_not_restored(tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with SandboxServer(SandboxSettings(token_ttl=1), state_file=state_file) as first:
        token = mint(first)
    time.sleep(1.1)
    with SandboxServer(state_file=state_file) as second:
        assert sdp_get(second, token, "1").status_code == 401
        assert stats(second)["active_tokens"] == 0


def test_every_change_is_on_disk_before_it_is_answered(tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with SandboxServer(state_file=state_file) as running:
        token = mint(running)
        for number in range(3):
            sdp_create(running, token, {"subject": f"Ticket {number}"})
            saved = json.loads(state_file.read_text())
            assert [t["subject"] for t in saved["desk"]["tickets"]] == [f"Ticket {n}" for n in range(number + 1)]
        assert list(saved["access_tokens"]) == [token]
        assert not [p for p in tmp_path.iterdir() if p.name != "world.json"]  # no temporary files left


def test_reset_empties_the_state_file_too(tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with SandboxServer(state_file=state_file) as running:
        sdp_create(running, mint(running))
        requests.post(f"{running.url}/_sandbox/reset", timeout=TIMEOUT).raise_for_status()
    assert json.loads(state_file.read_text())["desk"]["tickets"] == []


def test_memory_by_default_and_state_file_is_not_a_live_setting(
    sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    assert sandbox_server.state_file is None
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=TIMEOUT).json() == {"state_file": None}
    refused = requests.post(f"{sandbox.url}/_sandbox/settings", json={"state_file": "/tmp/x"}, timeout=TIMEOUT)
    assert refused.status_code == 400 and "state_file" in refused.text


def test_state_file_from_environment() -> None:
    settings = SandboxSettings.from_env({"SANDBOX_STATE_FILE": "var/w.json"})
    assert settings.state_file == "var/w.json"
    assert SandboxSettings.from_env({"SANDBOX_STATE_FILE": " "}).state_file is None


@pytest.mark.parametrize("content", ["{not json", '{"version": 99}', '{"version": 1, "desk": {"tickets": 5}}'])
def test_damaged_state_file_refuses_to_start(tmp_path: Path, content: str) -> None:
    state_file = tmp_path / "world.json"
    state_file.write_text(content)
    with pytest.raises(StateFileError, match="world.json"):
        SandboxServer(state_file=state_file)


def test_command_line_keeps_tickets_across_restarts(tmp_path: Path) -> None:
    """``python -m zoho_gateway.sandbox`` uses a state file by default; here one under tmp_path."""
    state_file = tmp_path / "cli-world.json"

    def run() -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        env = {**os.environ, "SANDBOX_STATE_FILE": str(state_file)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoho_gateway.sandbox", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}/_sandbox/stats", timeout=0.5)
                return proc, url
            except requests.ConnectionError:
                time.sleep(0.05)
        proc.kill()
        raise AssertionError(proc.communicate()[0])

    proc, url = run()
    try:
        assert requests.get(f"{url}/_sandbox/state", timeout=TIMEOUT).json() == {"state_file": str(state_file)}
        code = requests.post(f"{url}/_sandbox/codes", timeout=TIMEOUT).json()["code"]
        form = {
            "grant_type": "authorization_code",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
            "code": code,
        }
        token = requests.post(f"{url}/oauth/v2/token", data=form, timeout=TIMEOUT).json()["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        body = {"input_data": json.dumps({"request": {"subject": "Across restarts"}})}
        ticket_id = requests.post(f"{url}/api/v3/requests", data=body, headers=headers, timeout=TIMEOUT).json()[
            "request"
        ]["id"]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert str(state_file) in output

    proc, url = run()
    try:
        answer = requests.get(f"{url}/api/v3/requests/{ticket_id}", headers=headers, timeout=TIMEOUT)
        assert answer.status_code == 200 and answer.json()["request"]["subject"] == "Across restarts"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


# ---- the consent shortcut ---------------------------------------------------------------------------


def test_consent_url_redirects_with_a_single_use_code(sandbox: Sandbox) -> None:
    query = {
        "response_type": "code",
        "client_id": "sandbox-client-id",
        "scope": "SDPOnDemand.requests.ALL",
        "redirect_uri": "http://localhost:8000/callback?x=1",
        "access_type": "offline",
        "prompt": "consent",
        "state": "opaque-42",
    }
    answer = requests.get(f"{sandbox.url}/oauth/v2/auth", params=query, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("http", "localhost:8000", "/callback")
    params = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert params["x"] == "1" and params["state"] == "opaque-42" and params["location"] == "us"
    assert params["accounts-server"] == sandbox.url

    first = exchange(sandbox, params["code"])
    assert first.json()["refresh_token"] == "sandbox-refresh-token"
    assert exchange(sandbox, params["code"]).json() == {"error": "invalid_code"}
    assert stats(sandbox)["code_grants"] == 1


def test_consent_without_redirect_uri_answers_the_code_as_json(sandbox: Sandbox) -> None:
    query = {"response_type": "code", "client_id": "sandbox-client-id", "scope": "SDPOnDemand.requests.ALL"}
    answer = requests.get(f"{sandbox.url}/oauth/v2/auth", params=query, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert exchange(sandbox, answer.json()["code"]).status_code == 200


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"response_type": "token", "client_id": "sandbox-client-id"}, "unsupported_response_type"),
        ({"response_type": "code", "client_id": "someone-else"}, "invalid_client"),
        (
            {"response_type": "code", "client_id": "sandbox-client-id", "redirect_uri": "javascript:x"},
            "invalid_redirect_uri",
        ),
    ],
)
def test_consent_errors_never_redirect(sandbox: Sandbox, query: dict[str, str], error: str) -> None:
    answer = requests.get(f"{sandbox.url}/oauth/v2/auth", params=query, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 400 and answer.json() == {"error": error}


def test_ticket_count(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    assert requests.get(f"{sandbox.url}/_sandbox/tickets/count", timeout=TIMEOUT).json() == {"count": 0}
    sdp_create(sandbox, token)
    sdp_create(sandbox, token)
    assert requests.get(f"{sandbox.url}/_sandbox/tickets/count", timeout=TIMEOUT).json() == {"count": 2}


def test_concurrent_changes_all_reach_the_file(tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with SandboxServer(state_file=state_file) as running:
        token = mint(running)
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = set(
                pool.map(lambda n: sdp_create(running, token, {"subject": f"T{n}"}).json()["request"]["id"], range(40))
            )
    saved = json.loads(state_file.read_text())
    assert {t["id"] for t in saved["desk"]["tickets"]} == ids and saved["desk"]["sequence"] == 40
