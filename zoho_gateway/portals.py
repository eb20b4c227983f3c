"""The portals: which helpdesks one gateway serves, on which Zoho accounts, and which client key may call which.

``GATEWAY_PORTALS_FILE`` names a TOML file (read with ``tomllib``)::

    [portals.it]                      # one table per helpdesk; the first is the gateway's default portal
    service = "sdp"                   # "sdp" (ServiceDesk Plus v3) or "desk" (Zoho Desk v1)
    client_id = "1000.XXXX"           # the Zoho OAuth client and its refresh token: the portal's account
    client_secret = "${IT_CLIENT_SECRET}"
    refresh_token = "${IT_REFRESH_TOKEN}"
    dc = "eu"                         # or both accounts_url and api_base_url
    # org_id, department_id           # Zoho Desk: the organisation and the default department
    # ref_field, timeout, cache_ttl   # optional, as ZOHO_REF_FIELD, ZOHO_TIMEOUT, GATEWAY_CACHE_TTL

    [keys.helpdesk-bot]
    key = "${BOT_KEY}"                # the client key (at least 16 characters)
    portals = ["it", "hr"]            # the portals it may call; the first is its default (``/requests``)
    scopes = ["tickets:create", "tickets:read"]   # optional: all but admin

Any string may be written ``"${NAME}"`` (the variable's value, which must be set) or ``"${NAME:-fallback}"``.
Without the file the ``ZOHO_*`` variables define one portal named ``default``, exactly as before portals
existed, and its state keeps the store keys it always had. Every mistake stops the start with one line that
names the place (``GATEWAY_PORTALS_FILE portals.hr.dc: ...``) and never a secret.

An *account* is what Zoho mints tokens for: (accounts URL, client id, refresh token). Portals that share one
share its ``TokenManager`` and its store keys (one mint budget); see :mod:`zoho_gateway.gateway`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .apikeys import DEFAULT_SCOPES, SCOPES, ApiKey

if TYPE_CHECKING:
    from .config import Config

#: The one portal of a gateway configured without a portals file.
DEFAULT_PORTAL = "default"
SERVICES = ("sdp", "desk")
#: Zoho Desk's API roots per data centre (ZOHO-API.md §2); other centres name api_base_url themselves.
DESK_DATA_CENTRES: dict[str, str] = {
    "com": "https://desk.zoho.com",
    "eu": "https://desk.zoho.eu",
    "in": "https://desk.zoho.in",
    "com.au": "https://desk.zoho.com.au",
    "jp": "https://desk.zoho.jp",
    "ca": "https://desk.zohocloud.ca",
    "com.cn": "https://desk.zoho.com.cn",
}
#: A portal's or key's name: it appears in URLs (``/portals/<name>``), store keys and logs.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
#: ``${NAME}`` or ``${NAME:-fallback}``, the whole value.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<fallback>[^}]*))?\}")
_PORTAL_FIELDS = frozenset(
    {
        "service",
        "client_id",
        "client_secret",
        "refresh_token",
        "dc",
        "accounts_url",
        "api_base_url",
        "org_id",
        "department_id",
        "ref_field",
        "timeout",
        "cache_ttl",
    }
)
_KEY_FIELDS = frozenset({"key", "portals", "scopes"})
#: Values that are secrets: never echoed in an error line.
_SECRETS = frozenset({"client_secret", "refresh_token", "key"})


@dataclass(frozen=True)
class Account:
    """A Zoho OAuth account: the token endpoint, the client and its refresh token. Secrets are not in ``repr``.

    ``namespace`` prefixes its token's keys in the shared store: empty for the portal of the ``ZOHO_*``
    variables (the keys of before portals existed), a digest of the triple otherwise, so that two portals
    on one account find one token and one back-off, and two accounts never meet.
    """

    accounts_url: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    namespace: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        """What Zoho mints per: (accounts URL, client id, refresh token)."""
        return (self.accounts_url, self.client_id, self.refresh_token)


@dataclass(frozen=True)
class Portal:
    """One helpdesk: its service, where it is, its account, and its own knobs (None: the gateway's)."""

    name: str
    service: str
    account: Account
    api_base_url: str
    dc: str | None = None
    org_id: str | None = None
    department_id: str | None = None
    ref_field: str | None = None
    timeout: float | None = None
    cache_ttl: float | None = None
    #: Prefixes this portal's keys in the shared store (read cache, idempotency records, delivery pause).
    namespace: str = ""


@dataclass(frozen=True)
class Portals:
    """Every portal, in the file's order, the default one, and which portals each client key may call."""

    portals: tuple[Portal, ...]
    default: str
    #: key name -> the portals it may call, its default first. A key not listed may call the default portal only.
    key_portals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str | None = None

    def get(self, name: str) -> Portal | None:
        for portal in self.portals:
            if portal.name == name:
                return portal
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(portal.name for portal in self.portals)

    def allowed(self, key_name: str | None) -> tuple[str, ...]:
        """The portals a key may call, its default first; None (no keys configured): every portal."""
        if key_name is None:
            return (self.default, *(name for name in self.names if name != self.default))
        return tuple(self.key_portals.get(key_name, (self.default,)))

    def sharing(self, account: Account) -> tuple[str, ...]:
        """The portals on ``account``."""
        return tuple(p.name for p in self.portals if p.account.identity == account.identity)


def portals_of(config: Config) -> Portals:
    """The config's portals: the file's, or the one ``default`` portal of the ``ZOHO_*`` variables."""
    if config.portals is not None:
        return config.portals
    account = Account(config.accounts_url, config.client_id, config.client_secret, config.refresh_token)
    portal = Portal(DEFAULT_PORTAL, "sdp", account, config.api_base_url, dc=config.dc, ref_field=config.ref_field)
    return Portals((portal,), DEFAULT_PORTAL)


# --- reading the file ---------------------------------------------------------------------------------------


class _Place:
    """Where in the file a value is, for the one error line: ``GATEWAY_PORTALS_FILE portals.hr.dc: ...``."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __truediv__(self, part: str) -> _Place:
        return _Place(*self.parts, part)

    def error(self, problem: str) -> Exception:
        from .config import ConfigError

        where = ".".join(self.parts)
        return ConfigError(f"GATEWAY_PORTALS_FILE {where}: {problem}" if where else f"GATEWAY_PORTALS_FILE: {problem}")


def _expand(value: Any, place: _Place, env: Mapping[str, str], secret: bool) -> Any:
    """``"${NAME}"`` or ``"${NAME:-fallback}"`` replaced by the variable (a string only; the whole value)."""
    if not isinstance(value, str):
        return value
    found = _VARIABLE.fullmatch(value.strip())
    if found is None:
        if "${" in value:
            shown = "" if secret else f", got {value[:60]!r}"
            raise place.error(f'write a variable as the whole value, "${{NAME}}" or "${{NAME:-fallback}}"{shown}')
        return value
    raw = env.get(found["name"], "").strip()
    if raw:
        return raw
    if found["fallback"] is not None:
        return found["fallback"]
    raise place.error(f"the variable {found['name']} is not set")


def _text(table: Mapping[str, Any], name: str, place: _Place, env: Mapping[str, str], required: bool = True) -> str:
    value = _expand(table.get(name), place / name, env, name in _SECRETS)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise (place / name).error("is required")
        return ""
    if not isinstance(value, str):
        raise (place / name).error(f"must be a string, got {type(value).__name__}")
    return value.strip()


def _url(table: Mapping[str, Any], name: str, place: _Place, env: Mapping[str, str]) -> str:
    raw = _text(table, name, place, env)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise (place / name).error(f"must be an http(s) URL like https://host[/path], got {raw[:80]!r}")
    return raw.rstrip("/")


def _seconds(
    table: Mapping[str, Any], name: str, place: _Place, env: Mapping[str, str], minimum: float
) -> float | None:
    value = _expand(table.get(name), place / name, env, False)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise (place / name).error(f"must be a number of seconds, got {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value < float("inf"):
        raise (place / name).error(f"must be a number of seconds of at least {minimum:g}")
    return float(value)


def _table(value: Any, place: _Place) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise place.error(f"must be a table ([{'.'.join(place.parts)}]), got {type(value).__name__}")
    return value


def _unknown(table: Mapping[str, Any], known: frozenset[str], place: _Place) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise (place / unknown[0]).error(f"unknown setting (known: {', '.join(sorted(known))})")


def _endpoints(
    table: Mapping[str, Any], service: str, place: _Place, env: Mapping[str, str]
) -> tuple[str | None, str, str]:
    """(dc, accounts_url, api_base_url): a data centre, or both URLs (which then win)."""
    from .config import DATA_CENTRES

    has_urls = "accounts_url" in table or "api_base_url" in table
    if has_urls:
        if "dc" in table:
            raise (place / "dc").error("give either dc or both accounts_url and api_base_url, not both")
        return None, _url(table, "accounts_url", place, env), _url(table, "api_base_url", place, env)
    if "dc" not in table:
        raise place.error("give dc, or both accounts_url and api_base_url")
    dc = _text(table, "dc", place, env).lower()
    centres = DESK_DATA_CENTRES if service == "desk" else {name: urls[1] for name, urls in DATA_CENTRES.items()}
    if dc not in centres:
        raise (place / "dc").error(f"must be one of {', '.join(centres)} for {service}, got {dc[:20]!r}")
    return dc, DATA_CENTRES[dc][0], centres[dc]


def _account_namespace(accounts_url: str, client_id: str, refresh_token: str) -> str:
    digest = hashlib.sha256("\0".join((accounts_url, client_id, refresh_token)).encode()).hexdigest()[:16]
    return f"acct:{digest}:"


def _portal(name: str, table: Mapping[str, Any], place: _Place, env: Mapping[str, str]) -> Portal:
    from .config_concerns import _UDF_NAME

    _unknown(table, _PORTAL_FIELDS, place)
    service = _text(table, "service", place, env).lower()
    if service not in SERVICES:
        raise (place / "service").error(f"must be sdp or desk, got {service[:20]!r}")
    dc, accounts_url, api_base_url = _endpoints(table, service, place, env)
    client_id = _text(table, "client_id", place, env)
    client_secret = _text(table, "client_secret", place, env)
    refresh_token = _text(table, "refresh_token", place, env)
    namespace = _account_namespace(accounts_url, client_id, refresh_token)
    account = Account(accounts_url, client_id, client_secret, refresh_token, namespace)
    org_id = department_id = None
    ref_field = _text(table, "ref_field", place, env, required=False) or None
    if service == "desk":
        org_id = _text(table, "org_id", place, env)
        department_id = _text(table, "department_id", place, env)
        for what, value in (("org_id", org_id), ("department_id", department_id)):
            if not value.isdigit():
                raise (place / what).error(f"must be Zoho Desk's id (digits), got {value[:30]!r}")
        if ref_field is not None and not re.fullmatch(r"cf_[a-z0-9_]{1,60}", ref_field):
            raise (place / "ref_field").error(f"must name a Desk custom field like cf_gateway_ref, got {ref_field!r}")
    else:
        for what in ("org_id", "department_id"):
            if what in table:
                raise (place / what).error('belongs to Zoho Desk portals (service = "desk") only')
        if ref_field is not None and not _UDF_NAME.match(ref_field):
            raise (place / "ref_field").error(f"must name an SDP UDF like udf_sline_1, got {ref_field!r}")
    return Portal(
        name=name,
        service=service,
        account=account,
        api_base_url=api_base_url,
        dc=dc,
        org_id=org_id,
        department_id=department_id,
        ref_field=ref_field,
        timeout=_seconds(table, "timeout", place, env, 0.1),
        cache_ttl=_seconds(table, "cache_ttl", place, env, 0.0),
        namespace=f"portal:{name}:",
    )


def _key(
    name: str, table: Mapping[str, Any], place: _Place, env: Mapping[str, str], portals: tuple[str, ...]
) -> tuple[ApiKey, tuple[str, ...]]:
    _unknown(table, _KEY_FIELDS, place)
    secret = _text(table, "key", place, env)
    if len(secret) < 16:
        raise (place / "key").error("is shorter than 16 characters")
    listed = table.get("portals")
    if not isinstance(listed, list) or not listed or not all(isinstance(p, str) for p in listed):
        raise (place / "portals").error("must be a non-empty list of portal names, its default first")
    for portal in listed:
        if portal not in portals:
            raise (place / "portals").error(f"names an unknown portal {portal[:40]!r} (known: {', '.join(portals)})")
    scopes = DEFAULT_SCOPES
    if "scopes" in table:
        raw = table["scopes"]
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            raise (place / "scopes").error(f"must be a non-empty list of scopes (known: {', '.join(SCOPES)})")
        for scope in raw:
            if scope not in SCOPES:
                raise (place / "scopes").error(f"unknown scope {scope[:40]!r} (known: {', '.join(SCOPES)})")
        scopes = frozenset(raw)
    return ApiKey.from_secret(name, secret, scopes), tuple(dict.fromkeys(listed))


def read_portals_file(path: str, env: Mapping[str, str]) -> tuple[Portals, tuple[ApiKey, ...]]:
    """The portals and client keys of the file at ``path``. Raises ConfigError, one line naming the place."""
    root = _Place()
    try:
        with open(path, "rb") as fh:
            document = tomllib.load(fh)
    except OSError as exc:
        raise root.error(f"cannot be read ({exc.strerror}): {path!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise root.error(f"is not valid TOML ({' '.join(str(exc).split())[:160]}): {path!r}") from None
    _unknown(document, frozenset({"portals", "keys"}), root)
    tables = _table(document.get("portals", {}), root / "portals")
    if not tables:
        raise root.error(f"defines no portal; add a [portals.<name>] table: {path!r}")
    portals: list[Portal] = []
    for name, table in tables.items():
        place = root / "portals" / name
        if not NAME.fullmatch(name):
            raise place.error("a portal's name is 1 to 40 of a-z, 0-9, - and _, starting with a letter or digit")
        portals.append(_portal(name, _table(table, place), place, env))
    names = tuple(p.name for p in portals)
    keys: list[ApiKey] = []
    key_portals: dict[str, tuple[str, ...]] = {}
    for name, table in _table(document.get("keys", {}), root / "keys").items():
        place = root / "keys" / name
        key, allowed = _key(name, _table(table, place), place, env, names)
        keys.append(key)
        key_portals[name] = allowed
    return Portals(tuple(portals), names[0], key_portals, path), tuple(keys)


def with_portals(config: Config, env: Mapping[str, str], *, for_cli: bool = False) -> Config:
    """``config`` with the portals of ``GATEWAY_PORTALS_FILE`` and its keys added to ``api_keys``; unchanged
    without the file. Raises ConfigError (one line naming the place)."""
    from .config import ConfigError, read_flag

    path = env.get("GATEWAY_PORTALS_FILE", "").strip()
    if not path:
        return config
    portals, keys = read_portals_file(path, env)
    names = [key.name for key in (*config.api_keys, *keys)]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"GATEWAY_PORTALS_FILE keys.{duplicate}: a key of that name is in GATEWAY_API_KEYS too")
    api_keys = (*config.api_keys, *keys)
    if not api_keys and not (config.sandbox or for_cli or read_flag(env, "GATEWAY_ALLOW_ANONYMOUS")):
        raise ConfigError(
            "GATEWAY_PORTALS_FILE defines no [keys.<name>] and GATEWAY_API_KEYS is empty: clients need keys "
            "(or set GATEWAY_ALLOW_ANONYMOUS=1 to serve without keys)"
        )
    return dataclasses.replace(config, portals=portals, api_keys=api_keys)
