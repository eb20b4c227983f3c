"""API key scopes (issue 11 §8): the ``name[scope+scope]=key`` syntax, every route's declared scope, and 403
``forbidden`` naming the scope, before any upstream call, over real sockets."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.helpers import TICKET, api_key, assert_error, base_env, bearer, counters, create, delta
from tests.servers import Sandbox, Starter
from zoho_gateway import ConfigError, create_app
from zoho_gateway.api.access import PUBLIC_ENDPOINTS
from zoho_gateway.api.scopes import required_scope
from zoho_gateway.apikeys import DEFAULT_SCOPES, SCOPES, find_key
from zoho_gateway.config import parse_api_keys

pytestmark = pytest.mark.usefixtures("no_secrets_in_logs")

#: Every keyed route's scope. A new route must declare its scope (``@requires``) and be listed here.
ROUTE_SCOPES = {
    "tickets.create_ticket": "tickets:create",
    "tickets.get_ticket": "tickets:read",
    "lifecycle.find_tickets": "tickets:list",
    "lifecycle.update_ticket": "tickets:write",
    "lifecycle.add_note": "tickets:write",
    "lifecycle.list_notes": "tickets:read",
    "lifecycle.close_ticket": "tickets:write",
    "lifecycle.reopen_ticket": "tickets:write",
    "meta.pick_list": "tickets:read",
    "attachments.add_attachments": "tickets:write",
    "attachments.list_attachments": "tickets:read",
    "health.token_status": "admin",
    "health.metrics": "admin",
    "portals.token_status": "admin",
    "portals.token_validate": "admin",
}
FRONTEND = f"frontend[tickets:create+tickets:read]={api_key('frontend')}"
OPS = f"ops[admin]={api_key('ops')}"
LISTER = f"lister[ tickets:list  tickets:read ]={api_key('lister')}"  # spaces work as separators too


# ---- the syntax -------------------------------------------------------------------------------------------


def test_plain_keys_keep_every_scope_but_admin_and_scoped_keys_get_exactly_theirs() -> None:
    entries = parse_api_keys(f"alice={api_key('alice')},{FRONTEND}\n{OPS}\n{LISTER}", "GATEWAY_API_KEYS")
    scopes = {name: granted for name, _, granted in entries}
    assert scopes == {
        "alice": DEFAULT_SCOPES,
        "frontend": {"tickets:create", "tickets:read"},
        "ops": {"admin"},
        "lister": {"tickets:list", "tickets:read"},
    }
    assert set(SCOPES) - {"admin"} == DEFAULT_SCOPES
    # A key may hold any character but a comma or a line break, brackets and "=" included: scopes are read
    # only before the first "=".
    odd = "k3y[admin]=x:y+z0123456789"
    [(name, key, granted)] = parse_api_keys(f"bot={odd}", "GATEWAY_API_KEYS")
    assert (name, key, granted) == ("bot", odd, DEFAULT_SCOPES)


@pytest.mark.parametrize(
    "entry, message",
    [
        ("bot[tickets:delete]=", "unknown scope 'tickets:delete'"),
        ("bot[tickets:read+root]=", "unknown scope 'root'"),
        ("bot[]=", "has no scope between its brackets"),
        ("bot[ + ]=", "has no scope between its brackets"),
        ("bot[admin=", "name[scope+scope]=key"),
        ("bot]admin[=", "name[scope+scope]=key"),
        ("bot[admin]x=", "name[scope+scope]=key"),
    ],
)
def test_a_bad_scope_is_one_clear_line_naming_it_never_the_key(entry: str, message: str, tmp_path: Path) -> None:
    secret = api_key("bot")
    for source, env in (
        ("GATEWAY_API_KEYS", {"GATEWAY_API_KEYS": entry + secret}),
        ("GATEWAY_API_KEYS_FILE", {"GATEWAY_API_KEYS_FILE": str(tmp_path / "keys")}),
    ):
        (tmp_path / "keys").write_text(f"# operators\n{entry}{secret}\n")
        with pytest.raises(ConfigError) as refused:
            create_app(base_env("http://127.0.0.1:9", **env))
        text = str(refused.value)
        assert text.startswith(source) and message in text and "\n" not in text, text
        assert secret not in text


def test_keys_are_found_with_their_scopes() -> None:
    entries = parse_api_keys(f"{FRONTEND},{OPS}", "GATEWAY_API_KEYS")
    from zoho_gateway.apikeys import ApiKey

    keys = [ApiKey.from_secret(name, key, scopes) for name, key, scopes in entries]
    found = find_key(api_key("ops"), keys)
    assert found is not None and found.name == "ops" and found.scopes == {"admin"}
    assert find_key(api_key("nobody"), keys) is None


# ---- every route declares its scope -----------------------------------------------------------------------


def test_every_keyed_route_declares_its_scope_in_one_place(make_gateway: Starter) -> None:
    app = make_gateway().app
    declared = {
        endpoint: required_scope(view)
        for endpoint, view in app.view_functions.items()
        if endpoint not in PUBLIC_ENDPOINTS
    }
    # The /portals/<portal>/ mirror of a ticket route (issue 12) is the same view, so it needs the same scope.
    mirrored = {endpoint for endpoint in declared if endpoint.startswith("portals_")}
    assert mirrored and all(
        declared.pop(endpoint) == declared[endpoint.removeprefix("portals_")] for endpoint in mirrored
    )
    undeclared = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint not in PUBLIC_ENDPOINTS and not hasattr(view, "required_scope")
    ]
    assert undeclared == [], "declare a scope with @requires(...) (api/scopes.py) and list it in ROUTE_SCOPES"
    assert {endpoint: scope for endpoint, scope in declared.items()} == {
        endpoint: scope for endpoint, scope in ROUTE_SCOPES.items() if endpoint in declared
    }
    mine = {e for e in ROUTE_SCOPES if e.split(".")[0] in ("tickets", "lifecycle", "meta", "health")}
    assert mine <= set(declared)


# ---- over real sockets ------------------------------------------------------------------------------------


def test_a_missing_scope_is_403_naming_it_before_any_upstream_call(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_API_KEYS=f"alice={api_key('alice')},{FRONTEND},{OPS},{LISTER}")
    url = gateway.url
    ticket = create(gateway, headers=bearer("frontend"))  # a narrowed frontend key creates ...
    assert requests.get(f"{url}/requests/{ticket}", headers=bearer("frontend"), timeout=10).status_code == 200
    full = requests.get(f"{url}/requests/{ticket}?view=full", headers=bearer("frontend"), timeout=10)
    assert full.status_code == 200  # ... and reads, its own tickets and others'
    refused = [
        ("frontend", "GET", "/requests", None, "tickets:list"),
        ("frontend", "PATCH", f"/requests/{ticket}", {"status": "Open"}, "tickets:write"),
        ("frontend", "POST", f"/requests/{ticket}/notes", {"text": "hi"}, "tickets:write"),
        ("frontend", "POST", f"/requests/{ticket}/close", {}, "tickets:write"),
        ("frontend", "POST", f"/requests/{ticket}/reopen", None, "tickets:write"),
        ("frontend", "GET", "/metrics", None, "admin"),
        ("alice", "GET", "/metrics", None, "admin"),
        ("alice", "GET", "/token/status", None, "admin"),
        ("ops", "POST", "/requests", TICKET, "tickets:create"),
        ("ops", "GET", f"/requests/{ticket}", None, "tickets:read"),
        ("ops", "GET", "/meta/priorities", None, "tickets:read"),
        ("lister", "POST", "/requests", TICKET, "tickets:create"),
    ]
    before = counters(sandbox)
    for client, method, path, body, scope in refused:
        answer = requests.request(method, url + path, json=body, headers=bearer(client), timeout=10)
        error = assert_error(answer, 403, "forbidden")
        assert error["details"]["scope"] == scope, (client, path)
        assert scope in error["details"]["message"]
    assert delta(before, sandbox) == {}
    # What each key may do, it does.
    assert requests.get(f"{url}/requests?q=Printer", headers=bearer("lister"), timeout=10).status_code == 200
    assert requests.get(f"{url}/meta/statuses", headers=bearer("frontend"), timeout=10).status_code == 200
    for path in ("/metrics", "/token/status"):
        assert requests.get(url + path, headers=bearer("ops"), timeout=10).status_code == 200
    patched = requests.patch(
        f"{url}/requests/{ticket}", json={"status": "On Hold"}, headers=bearer("alice"), timeout=10
    )
    assert patched.status_code == 200
    # No key at all is still 401, before the scope is looked at.
    assert_error(requests.get(f"{url}/requests", timeout=10), 401, "unauthorized")


def test_without_keys_every_scope_is_held_admin_included(make_gateway: Starter) -> None:
    gateway = make_gateway()  # sandbox mode without keys, as ./dev run
    for path in ("/metrics", "/token/status", "/requests", "/meta/categories"):
        assert requests.get(gateway.url + path, timeout=10).status_code == 200, path
