"""GATEWAY_PORTALS_FILE: the portals and keys it defines, and one line naming the place for every mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import GunicornGateway
from zoho_gateway.config import ConfigError, load_config
from zoho_gateway.portals import DEFAULT_PORTAL, portals_of

SDP = """
[portals.it]
service = "sdp"
dc = "eu"
client_id = "1000.it"
client_secret = "${IT_SECRET}"
refresh_token = "${IT_REFRESH:-1000.fallback}"
"""
DESK = """
[portals.support]
service = "desk"
accounts_url = "https://accounts.example.test"
api_base_url = "https://desk.example.test"
client_id = "1000.it"
client_secret = "${IT_SECRET}"
refresh_token = "${IT_REFRESH:-1000.fallback}"
org_id = "123"
department_id = "456"
"""
KEYS = """
[keys.bot]
key = "bot-key-0123456789abc"
portals = ["support", "it"]
scopes = ["tickets:read"]
"""


def load(tmp_path: Path, text: str, **env: str) -> object:
    path = tmp_path / "portals.toml"
    path.write_text(text)
    settings = {"GATEWAY_PORTALS_FILE": str(path), "GATEWAY_STATE_URL": "memory://", "IT_SECRET": "s3cr3t", **env}
    return load_config(settings)


def test_a_file_defines_portals_accounts_and_keys(tmp_path: Path) -> None:
    config = load(tmp_path, SDP + DESK + KEYS)
    portals = portals_of(config)  # type: ignore[arg-type]
    assert portals.names == ("it", "support") and portals.default == "it"
    it, support = portals.portals
    assert (it.account.accounts_url, it.api_base_url) == (
        "https://accounts.zoho.eu",
        "https://sdpondemand.manageengine.eu",
    )
    assert it.account.client_secret == "s3cr3t" and it.account.refresh_token == "1000.fallback"
    assert (support.service, support.org_id, support.department_id) == ("desk", "123", "456")
    # Another accounts URL is another account, even with the same client and refresh token.
    assert it.account.namespace != support.account.namespace and it.account.namespace.startswith("acct:")
    assert "s3cr3t" not in repr(portals)
    assert portals.allowed("bot") == ("support", "it") and portals.allowed("someone") == ("it",)
    assert [(key.name, key.scopes) for key in config.api_keys] == [("bot", frozenset({"tickets:read"}))]  # type: ignore[attr-defined]


def test_without_a_file_the_zoho_variables_define_the_default_portal(tmp_path: Path) -> None:
    config = load_config({"GATEWAY_SANDBOX": "1", "GATEWAY_STATE_URL": "memory://"})
    portals = portals_of(config)
    assert portals.names == (DEFAULT_PORTAL,) and portals.source is None
    (portal,) = portals.portals
    # The store keys of before portals existed: no prefix.
    assert (portal.namespace, portal.account.namespace) == ("", "")
    assert portal.account.identity == (config.accounts_url, config.client_id, config.refresh_token)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("[portals.it\n", {}, "GATEWAY_PORTALS_FILE: is not valid TOML"),
        ("", {}, "GATEWAY_PORTALS_FILE: defines no portal"),
        (SDP.replace('dc = "eu"', 'dc = "mars"'), {}, "GATEWAY_PORTALS_FILE portals.it.dc: must be one of"),
        (SDP.replace('dc = "eu"', ""), {}, "GATEWAY_PORTALS_FILE portals.it: give dc, or both"),
        (SDP.replace('service = "sdp"', 'service = "jira"'), {}, "portals.it.service: must be sdp or desk"),
        (SDP.replace('client_id = "1000.it"', ""), {}, "portals.it.client_id: is required"),
        (SDP, {"IT_SECRET": ""}, "portals.it.client_secret: the variable IT_SECRET is not set"),
        (SDP + "colour = 'red'\n", {}, "portals.it.colour: unknown setting"),
        (SDP + "timeout = -1\n", {}, "portals.it.timeout: must be a number of seconds of at least 0.1"),
        (SDP + 'ref_field = "custom"\n', {}, "portals.it.ref_field: must name an SDP UDF"),
        (SDP + 'org_id = "1"\n', {}, "portals.it.org_id: belongs to Zoho Desk portals"),
        (DESK.replace('org_id = "123"', 'org_id = "acme"'), {}, "portals.support.org_id: must be Zoho Desk's id"),
        (DESK.replace('department_id = "456"', ""), {}, "portals.support.department_id: is required"),
        (SDP.replace("[portals.it]", "[portals.IT]"), {}, "portals.IT: a portal's name is 1 to 40 of"),
        (SDP + KEYS, {}, "keys.bot.portals: names an unknown portal 'support' (known: it)"),
        (SDP + KEYS.replace('"tickets:read"', '"tickets:burn"'), {}, "keys.bot.portals"),
        (SDP + DESK + KEYS.replace('"tickets:read"', '"tickets:burn"'), {}, "keys.bot.scopes: unknown scope"),
        (SDP + DESK + KEYS.replace("bot-key-0123456789abc", "short"), {}, "keys.bot.key: is shorter than 16"),
        (SDP + "[keys.bot]\nkey = 'bot-key-0123456789abc'\n", {}, "keys.bot.portals: must be a non-empty list"),
        (SDP + DESK + KEYS, {"GATEWAY_API_KEYS": "bot=another-key-0123456789"}, "keys.bot: a key of that name"),
        ("[portal.it]\n", {}, "GATEWAY_PORTALS_FILE portal: unknown setting"),
    ],
)
def test_a_malformed_file_stops_the_start_with_one_line_naming_the_place(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text, **env)
    message = str(raised.value)
    assert expected in message and "\n" not in message, message
    assert "s3cr3t" not in message and "0123456789abc" not in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^GATEWAY_PORTALS_FILE: cannot be read \(No such file"):
        load_config({"GATEWAY_PORTALS_FILE": str(tmp_path / "nope.toml"), "GATEWAY_STATE_URL": "memory://"})


def test_outside_sandbox_mode_a_file_without_keys_needs_gateway_api_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="defines no \\[keys.<name>\\] and GATEWAY_API_KEYS is empty"):
        load(tmp_path, SDP)
    # The file replaces the ZOHO_* credentials: none is required beside it.
    assert load(tmp_path, SDP, GATEWAY_API_KEYS="alice=alice-key-0123456789") is not None


def test_the_example_file_loads() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "portals.sandbox.toml"
    config = load_config(
        {"GATEWAY_PORTALS_FILE": str(example), "GATEWAY_SANDBOX": "1", "GATEWAY_STATE_URL": "memory://"}
    )
    portals = portals_of(config)
    assert portals.names == ("it", "hr", "support")
    assert [p.service for p in portals.portals] == ["sdp", "sdp", "desk"]
    # IT and Support share one account (one token); HR has its own.
    assert portals.sharing(portals.portals[0].account) == ("it", "support")


def test_gunicorn_refuses_to_start_with_one_line_naming_the_place(
    tmp_path: Path, make_gunicorn: Callable[..., GunicornGateway]
) -> None:
    path = tmp_path / "portals.toml"
    path.write_text(SDP.replace('dc = "eu"', 'dc = "mars"'))
    server = make_gunicorn(workers=1, wait=False, GATEWAY_PORTALS_FILE=str(path), IT_SECRET="s3cr3t")
    assert server.proc is not None
    assert server.proc.wait(timeout=30) != 0
    lines = [line for line in server.stderr_file.read_text().splitlines() if "zoho-gateway" in line]
    assert lines == [
        "zoho-gateway: configuration error: GATEWAY_PORTALS_FILE portals.it.dc: must be one of "
        "com, eu, in, com.au, jp, ca, sa, uk, com.cn for sdp, got 'mars'"
    ], server.stderr_file.read_text()[-2000:]
