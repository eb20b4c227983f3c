"""The ``zoho`` commands end to end, as ``./dev zoho`` runs them: ``flask --app app:cli_app zoho ...`` in a subprocess,
against a real sandbox on a real socket, beside the gateway that ``./dev run`` (app.py) starts.

Each command runs from a scratch directory with a scrubbed environment, so neither the developer's ``.env``
nor the repo's ``var/`` takes part.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.helpers import TICKET, base_env, free_port, wait_for
from tests.servers import REPO, Sandbox, wait_healthy
from zoho_gateway.config import SANDBOX_STATE_URL

#: Prefixes of the variables that could steer the gateway or the sandbox: none leak in from the test runner.
SCRUBBED = ("ZOHO_", "GATEWAY_", "SANDBOX_", "PROMETHEUS_", "FLASK_", "HOST", "PORT")

Run = Callable[..., subprocess.CompletedProcess[str]]


def scrubbed_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(SCRUBBED)}
    # The state file is the default one, relative to the working directory (tmp_path) as under ./dev.
    env["GATEWAY_LOG_FILE"] = str(tmp_path / "gateway.log")
    env.update(settings)
    return env


@pytest.fixture
def zoho(tmp_path: Path) -> Run:
    """``zoho(*args, **settings)``: run one command the way ``./dev zoho`` does; returns the finished process."""

    def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "flask", "--app", f"{REPO / 'app.py'}:cli_app", "zoho", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=scrubbed_env(tmp_path, **settings), capture_output=True, text=True, timeout=60
        )

    return run


def sandbox_port(sandbox: Sandbox) -> str:
    return sandbox.url.rsplit(":", 1)[1]


def assert_fails_cleanly(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith(("Error:", "zoho-gateway:"))]
    assert len(errors) == 1, done.stderr[-2000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def token_status(zoho: Run, **settings: str) -> dict[str, object]:
    done = zoho("token", "status", **settings)
    assert done.returncode == 0, done.stderr[-2000:]
    status: dict[str, object] = json.loads(done.stdout)
    return status


@pytest.fixture
def dev_run(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``./dev run`` as a new user starts it (app.py, sandbox mode because no credential is set), serving on a
    free port, its simulator on another (SANDBOX_PORT). Yields (the gateway's URL, SANDBOX_PORT)."""
    port, simulator = free_port(), str(free_port())
    env = scrubbed_env(tmp_path, PORT=str(port), SANDBOX_PORT=simulator)
    log = open(tmp_path / "dev-run.stderr", "wb")  # noqa: SIM115 - closed after the process ends
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=tmp_path, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 20, "app.py", tmp_path / "dev-run.stderr")
        yield url, simulator
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_the_cli_uses_the_simulator_and_the_state_of_dev_run(dev_run: tuple[str, str], zoho: Run) -> None:
    gateway, port = dev_run
    same = {"SANDBOX_PORT": port}  # what .env or the shell gives both commands; nothing else is shared

    created = requests.post(f"{gateway}/requests", json=TICKET, timeout=10)
    assert created.status_code == 201, created.text
    status = token_status(zoho, **same)
    assert (status["mode"], status["token_held"]) == ("sandbox", True)  # the token the gateway minted

    refreshed = zoho("token", "refresh", **same)
    assert refreshed.returncode == 0, refreshed.stderr[-2000:]
    after = token_status(zoho, **same)
    assert after["fingerprint"] != status["fingerprint"]
    # The gateway serves with the token the CLI minted, without minting one of its own.
    assert requests.get(f"{gateway}/requests/{created.json()['zoho_ticket_id']}", timeout=10).status_code == 200
    assert token_status(zoho, **same)["fingerprint"] == after["fingerprint"]

    # The consent URL is the simulator's; it approves at once and redirects with a code exchange-code accepts.
    consent = zoho("auth-url", **same)
    assert consent.returncode == 0 and consent.stdout.startswith(f"http://127.0.0.1:{port}/oauth/v2/auth?")
    redirect = requests.get(consent.stdout.strip(), allow_redirects=False, timeout=10)
    assert redirect.status_code == 302, redirect.text
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    exchanged = zoho("exchange-code", code, **same)
    assert exchanged.returncode == 0, exchanged.stderr[-2000:]
    assert exchanged.stdout.strip() == "sandbox-refresh-token"

    forgotten = zoho("token", "forget", **same)
    assert forgotten.returncode == 0, forgotten.stderr[-2000:]
    assert token_status(zoho, **same)["token_held"] is False


def test_dev_run_delivers_a_backlog_at_boot_before_any_request(tmp_path: Path) -> None:
    """A create a previous run queued is delivered as soon as ``./dev run`` starts: its deliverers start at boot,
    not on the first request (the test asks only the simulator, never the gateway)."""
    from zoho_gateway import create_app

    port, simulator = free_port(), free_port()
    simulator_url = f"http://127.0.0.1:{simulator}"
    # The previous run, without deliverers: the create waits in sandbox mode's state file.
    state_url = SANDBOX_STATE_URL.replace("sqlite:///", f"sqlite:///{tmp_path}/")
    previous = create_app(base_env(simulator_url, GATEWAY_STATE_URL=state_url, GATEWAY_DELIVERERS="0"))
    queued = previous.test_client().post("/requests", json=TICKET, headers={"Prefer": "respond-async, wait=0"})
    assert queued.status_code == 202, queued.text
    previous.extensions["zoho_gateway"].close()

    def tickets() -> int:
        try:
            count = requests.get(f"{simulator_url}/_sandbox/tickets/count", timeout=1).json()["count"]
        except requests.RequestException:
            return -1  # the simulator is not up yet
        assert isinstance(count, int)
        return count

    env = scrubbed_env(tmp_path, PORT=str(port), SANDBOX_PORT=str(simulator))
    with open(tmp_path / "dev-run.stderr", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: tickets() == 1, timeout=20)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert "deliverers started" in (tmp_path / "gateway.log").read_text()


def test_exchange_code_turns_a_sandbox_code_into_the_refresh_token(sandbox: Sandbox, zoho: Run) -> None:
    code = sandbox.http.post(f"{sandbox.url}/_sandbox/codes", timeout=5).json()["code"]
    done = zoho("exchange-code", code, SANDBOX_PORT=sandbox_port(sandbox))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "sandbox-refresh-token"
    # Codes work once: the second try is Zoho's refusal, and says so.
    again = zoho("exchange-code", code, SANDBOX_PORT=sandbox_port(sandbox))
    assert_fails_cleanly(again, "refused", "invalid_code")


def test_exchange_code_writes_a_real_refresh_token_to_env_with_mode_600(
    sandbox: Sandbox, zoho: Run, tmp_path: Path
) -> None:
    # Outside sandbox mode, with the sandbox standing in for Zoho's accounts server.
    real = {
        "ZOHO_CLIENT_ID": "sandbox-client-id",
        "ZOHO_CLIENT_SECRET": "sandbox-client-secret",
        "ZOHO_ACCOUNTS_URL": sandbox.url,
        "ZOHO_API_BASE_URL": sandbox.url,
    }
    (tmp_path / ".env").write_text("ZOHO_DC=com\nZOHO_REFRESH_TOKEN=old-one\n")
    code = sandbox.http.post(f"{sandbox.url}/_sandbox/codes", timeout=5).json()["code"]
    done = zoho("exchange-code", code, "--write-env", FLASK_SKIP_DOTENV="1", **real)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / ".env").read_text() == "ZOHO_DC=com\nZOHO_REFRESH_TOKEN=sandbox-refresh-token\n"
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert "sandbox-refresh-token" not in done.stdout + done.stderr
    # In sandbox mode the simulator's fake token is never written where real Zoho would later get it.
    fake = zoho("exchange-code", code, "--write-env", SANDBOX_PORT=sandbox_port(sandbox), FLASK_SKIP_DOTENV="1")
    assert_fails_cleanly(fake, "sandbox")


def test_an_unreachable_accounts_server_is_called_unreachable(zoho: Run) -> None:
    closed = str(free_port())
    # Sandbox mode with no simulator running: the line says where it was expected and what to start.
    for command in (("exchange-code", "1000.abc.def"), ("token", "refresh")):
        line = assert_fails_cleanly(zoho(*command, SANDBOX_PORT=closed), "unreachable", "./dev run")
        assert "refused" not in line
    # Real mode, accounts server down.
    real = {
        "ZOHO_CLIENT_ID": "a-client-id",
        "ZOHO_CLIENT_SECRET": "a-client-secret",
        "ZOHO_ACCOUNTS_URL": f"http://127.0.0.1:{closed}",
    }
    line = assert_fails_cleanly(zoho("exchange-code", "1000.abc.def", **real), "unreachable")
    assert "refused" not in line and "./dev run" not in line and "a-client-secret" not in line


def test_auth_url_outside_sandbox_mode_points_at_the_data_centre(zoho: Run) -> None:
    done = zoho("auth-url", ZOHO_CLIENT_ID="a-client-id", ZOHO_CLIENT_SECRET="a-client-secret", ZOHO_DC="eu")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("https://accounts.zoho.eu/oauth/v2/auth?")
    assert "a-client-secret" not in done.stdout + done.stderr


def test_a_bad_setting_ends_a_command_with_one_line(zoho: Run) -> None:
    assert_fails_cleanly(zoho("token", "status", ZOHO_TIMEOUT="soon"), "ZOHO_TIMEOUT")
    missing = zoho("token", "status", GATEWAY_SANDBOX="0", ZOHO_CLIENT_ID="a-client-id")
    assert missing.returncode == 2
    assert_fails_cleanly(missing, "ZOHO_CLIENT_SECRET")
