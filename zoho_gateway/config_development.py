"""Sandbox mode's defaults (the simulator's fake client, where it listens, its state) and ``development_env``."""

from __future__ import annotations

from collections.abc import Mapping

from .config_readers import _raw, read_flag

#: The simulator's fake OAuth client, used in sandbox mode when no credential is set. They equal the
#: defaults of ``sandbox.SandboxSettings`` (a test checks it); they are copied, not imported, because
#: production code imports nothing from ``sandbox/``.
SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
SANDBOX_REFRESH_TOKEN = "sandbox-refresh-token"

#: Where the development simulator listens (``./dev run``), and so where sandbox mode points by default:
#: the gateway and the ``./dev zoho`` commands meet the same simulator without recording anything.
SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8001
#: Sandbox mode keeps its tokens apart from real Zoho's, in a file both dev entries share.
SANDBOX_STATE_URL = "sqlite:///var/sandbox-state.db"

#: The variables whose presence means "a real Zoho client is configured" to the development entries.
ZOHO_CREDENTIALS = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN")


def development_env(env: Mapping[str, str], *, force_sandbox: bool = False) -> tuple[bool, dict[str, str]]:
    """(sandbox, settings) for the development entries, ``./dev run`` (app.py) and ``./dev zoho``.

    Both decide sandbox mode by this one rule, so that the CLI talks to the simulator and the state file
    of the gateway that ``./dev run`` started: ``force_sandbox`` (``--sandbox``) or ``GATEWAY_SANDBOX=1``
    choose it, ``GATEWAY_SANDBOX=0`` refuses it, and otherwise it is chosen when none of ZOHO_CLIENT_ID,
    ZOHO_CLIENT_SECRET or ZOHO_REFRESH_TOKEN is set (a client id alone already means "real Zoho", so
    that ``./dev zoho exchange-code`` reaches Zoho before a refresh token exists).

    In sandbox mode the Zoho credentials and URLs are dropped from the returned settings: a ``.env`` made
    for real Zoho must not send its client to the simulator (which refuses it) nor the fake one to Zoho.
    """
    settings = dict(env)
    raw = _raw(env, "GATEWAY_SANDBOX")
    if force_sandbox:
        sandbox = True
    elif raw:
        sandbox = read_flag(env, "GATEWAY_SANDBOX")
    else:
        sandbox = not any(_raw(env, name) for name in ZOHO_CREDENTIALS)
    if sandbox:
        for name in (*ZOHO_CREDENTIALS, "ZOHO_ACCOUNTS_URL", "ZOHO_API_BASE_URL"):
            settings.pop(name, None)
        settings["GATEWAY_SANDBOX"] = "1"
    return sandbox, settings
