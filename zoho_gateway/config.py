"""Settings: read once from the environment into an immutable object that fails fast, naming the setting.

``load_config`` is a list of small readers, one per concern (Zoho endpoints, credentials, client keys,
CORS, state, logging, server). The ``read_*`` helpers are public so that the entries outside the
package (``gunicorn.conf.py``, ``app.py``) parse the same variables the same way. Every reader raises
ConfigError with one line that names the variable and never contains a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .apikeys import DEFAULT_SCOPES as DEFAULT_KEY_SCOPES
from .apikeys import SCOPES as KEY_SCOPES
from .apikeys import ApiKey

if TYPE_CHECKING:
    from .portals import Portals


class ConfigError(Exception):
    """A missing or malformed setting. The message is one line that names the setting."""


#: Zoho data centres: accounts (OAuth) server and ServiceDesk Plus Cloud API root.
DATA_CENTRES: dict[str, tuple[str, str]] = {
    "com": ("https://accounts.zoho.com", "https://sdpondemand.manageengine.com"),
    "eu": ("https://accounts.zoho.eu", "https://sdpondemand.manageengine.eu"),
    "in": ("https://accounts.zoho.in", "https://sdpondemand.manageengine.in"),
    "com.au": ("https://accounts.zoho.com.au", "https://servicedeskplus.net.au"),
    "jp": ("https://accounts.zoho.jp", "https://servicedeskplus.jp"),
    "ca": ("https://accounts.zohocloud.ca", "https://servicedeskplus.ca"),
    "sa": ("https://accounts.zoho.sa", "https://servicedeskplus.sa"),
    "uk": ("https://accounts.zoho.uk", "https://servicedeskplus.uk"),
    "com.cn": ("https://accounts.zoho.com.cn", "https://servicedeskplus.cn"),
}

#: OAuth scopes the consent URL asks for: create and read requests.
DEFAULT_SCOPES = "SDPOnDemand.requests.ALL"

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
DEFAULT_STATE_URL = "sqlite:///var/state.db"

#: Connections to Zoho per process when GATEWAY_THREADS is unset: the development server starts a thread per
#: connection, so the pool is sized for a busy developer rather than to a thread count.
DEFAULT_THREADS = 32
DEFAULT_LOGGING_INI = str(Path(__file__).resolve().parent.parent / "logging.ini")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: What may be attached unless GATEWAY_ATTACHMENT_TYPES says otherwise: images, PDF, plain text, the
#: Office Open XML and OpenDocument formats, zip. Not the legacy Office formats (one OLE2 container whose
#: bytes do not tell a .doc from an .xls, and the usual carrier of macros) nor the macro-enabled ones.
DEFAULT_ATTACHMENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/zip",
    }
)
#: A media type as GATEWAY_ATTACHMENT_TYPES names one: ``type/subtype``, lower case (RFC 6838 characters).
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")

#: The variables whose presence means "a real Zoho client is configured" to the development entries.
ZOHO_CREDENTIALS = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN")


@dataclass(frozen=True)
class Config:
    """Every setting of the gateway. Secrets are excluded from ``repr``."""

    sandbox: bool
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    dc: str
    accounts_url: str
    api_base_url: str
    scopes: str
    timeout: float
    connect_timeout: float
    token_refresh_margin: float
    state_url: str
    state_key: str | None = field(repr=False)
    api_keys: tuple[ApiKey, ...] = field(repr=False)
    cors_origins: tuple[str, ...]
    cache_ttl: float
    idempotency_ttl: float
    rate_limit: str | None
    log_file: str
    logging_ini: str
    metrics_dir: str | None
    ca_bundle: str | None
    threads: int
    host: str
    port: int
    sandbox_port: int
    max_body_bytes: int = 1024 * 1024
    #: Seconds the pick lists (GET /meta/...) are kept in the shared store; 0 reads Zoho every time.
    meta_ttl: float = 600.0
    token_backoff_throttled: float = 60.0
    token_backoff_invalid: float = 60.0
    token_backoff_unreachable: float = 10.0
    retry_budget: float = 4.0
    ref_field: str | None = None
    #: Creates through the outbox (issue 10): "prefer" honours ``Prefer: respond-async``; "always" applies it to all.
    queue_creates: str = "prefer"
    delivery_concurrency: int = 4
    delivery_max_age: float = 24 * 3600.0
    #: Deliverer loops per gateway process (0: none; then run ``flask zoho deliver``).
    deliverers: int = 2
    #: Seconds a deliverer's claim (and a request's hold on its item) lasts; None: computed from the time-outs.
    delivery_lease: float | None = None
    #: Seconds a create without ``Prefer`` may spend settling an unknown outcome before answering 202.
    create_budget: float = 20.0
    #: Seconds after a send whose answer was lost before Zoho is searched for the ticket.
    reconcile_delay: float = 2.0
    #: Bytes one attached file may have (issue 11: ``GATEWAY_MAX_ATTACHMENT_BYTES``).
    max_attachment_bytes: int = 10 * 1024 * 1024
    #: The file types, judged from the bytes, that may be attached (``GATEWAY_ATTACHMENT_TYPES``).
    attachment_types: frozenset[str] = field(default_factory=lambda: DEFAULT_ATTACHMENT_TYPES)
    #: The portals of ``GATEWAY_PORTALS_FILE``; None: the ZOHO_* variables' one portal (``portals.portals_of``).
    portals: Portals | None = field(default=None, repr=False)

    @property
    def anonymous(self) -> bool:
        """True when clients need no API key (sandbox without keys, or explicitly allowed)."""
        return not self.api_keys

    @property
    def sandbox_url(self) -> str:
        """Where the development simulator listens (``SANDBOX_PORT``); sandbox mode's default Zoho URLs."""
        return f"http://{SANDBOX_HOST}:{self.sandbox_port}"


# --- readers for one variable each -------------------------------------------------------------------------


def _raw(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def read_flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); unset or empty gives ``default``."""
    raw = _raw(env, name).lower()
    if not raw:
        return default
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    raise ConfigError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


def read_seconds(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    """A finite number of seconds, at least ``minimum``; unset or empty gives ``default``."""
    raw = _raw(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not minimum <= value < float("inf"):  # NaN fails every comparison
        raise ConfigError(f"{name} must be a number of seconds of at least {minimum:g}, got {raw!r}")
    return value


def read_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number within ``[minimum, maximum]``; unset or empty gives ``default``."""
    raw = _raw(env, name)
    if not raw:
        return default
    top = "" if maximum is None else f" and at most {maximum}"
    # isdigit() also accepts other scripts' digits and superscripts; int() then fails on some of them.
    value = int(raw) if raw.isascii() and raw.isdigit() else None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be a whole number of at least {minimum}{top}, got {raw!r}")
    return value


def read_port(env: Mapping[str, str], name: str, default: int) -> int:
    """A TCP port, 1 to 65535."""
    return read_int(env, name, default, minimum=1, maximum=65535)


def read_host(env: Mapping[str, str], default: str, name: str = "HOST") -> str:
    """An interface to listen on: a host name or an IP address, without scheme or port."""
    raw = _raw(env, name) or default
    if any(c.isspace() or c in "/?#@" for c in raw) or raw.count(":") == 1:
        raise ConfigError(f"{name} must be a host name or IP address like 127.0.0.1 (no scheme or port), got {raw!r}")
    return raw


def read_threads(env: Mapping[str, str], default: int = DEFAULT_THREADS) -> int:
    """``GATEWAY_THREADS``: threads serving requests in one process (gunicorn), and Zoho connections per process."""
    return read_int(env, "GATEWAY_THREADS", default, minimum=1, maximum=1024)


def read_url(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) URL with a host, without a trailing slash."""
    raw = _raw(env, name) or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL like https://host[/path], got {raw!r}")
    return raw.rstrip("/")


def read_file(env: Mapping[str, str], name: str, default: str) -> str:
    """The path of a file that exists."""
    raw = _raw(env, name) or default
    if not os.path.isfile(raw):
        raise ConfigError(f"{name} must name an existing file, got {raw!r}")
    return raw


def read_directory(env: Mapping[str, str], name: str) -> str | None:
    """The path of a directory that exists, or None when unset."""
    raw = _raw(env, name)
    if raw and not os.path.isdir(raw):
        raise ConfigError(f"{name} must name an existing directory, got {raw!r}")
    return raw or None


# --- readers for one concern each ---------------------------------------------------------------------------


def _read_ca_bundle(env: Mapping[str, str]) -> str | None:
    """The CA certificates to trust for Zoho, under requests' own names (REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE).

    Checked here because requests only finds a wrong path at the first call, which would then fail every call.
    """
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        raw = _raw(env, name)
        if raw and not os.path.exists(raw):
            raise ConfigError(f"{name} must name an existing CA bundle file or directory, got {raw!r}")
        if raw:
            return raw
    return None


def _read_endpoints(env: Mapping[str, str], sandbox: bool, sandbox_url: str) -> tuple[str, str, str]:
    """(dc, accounts_url, api_base_url). Sandbox mode points both URLs at the local simulator unless set."""
    dc = _raw(env, "ZOHO_DC").lower() or "com"
    if dc not in DATA_CENTRES:
        raise ConfigError(f"ZOHO_DC must be one of {', '.join(DATA_CENTRES)}, got {dc!r}")
    accounts, api = (sandbox_url, sandbox_url) if sandbox else DATA_CENTRES[dc]
    return dc, read_url(env, "ZOHO_ACCOUNTS_URL", accounts), read_url(env, "ZOHO_API_BASE_URL", api)


#: A UDF name as SDP spells it: udf_sline_1 (single line), udf_char1 (older builds), udf_long_2, ...
_UDF_NAME = re.compile(r"^udf_[a-z]+_?[0-9]+$")


def _read_ref_field(env: Mapping[str, str]) -> str | None:
    """ZOHO_REF_FIELD: the SDP UDF that holds each create's gateway reference, or None (match by content)."""
    raw = _raw(env, "ZOHO_REF_FIELD")
    if not raw:
        return None
    if not _UDF_NAME.match(raw):
        raise ConfigError(f"ZOHO_REF_FIELD must name an SDP UDF like udf_sline_1, got {raw!r}")
    return raw


def _read_credentials(env: Mapping[str, str], sandbox: bool, for_cli: bool) -> tuple[str, str, str]:
    """(client_id, client_secret, refresh_token); the simulator's fake ones fill the gaps in sandbox mode."""
    if sandbox:
        return (
            _raw(env, "ZOHO_CLIENT_ID") or SANDBOX_CLIENT_ID,
            _raw(env, "ZOHO_CLIENT_SECRET") or SANDBOX_CLIENT_SECRET,
            _raw(env, "ZOHO_REFRESH_TOKEN") or SANDBOX_REFRESH_TOKEN,
        )
    # The CLI's exchange-code exists to produce the refresh token, so it may be missing there. A portals
    # file gives every portal its own credentials (portals.py), so none is needed here then.
    required: tuple[str, ...] = ZOHO_CREDENTIALS[:2] if for_cli else ZOHO_CREDENTIALS
    if _raw(env, "GATEWAY_PORTALS_FILE"):
        required = ()
    for name in required:
        if not _raw(env, name):
            hint = "get one with './dev zoho exchange-code CODE --write-env'" if name == "ZOHO_REFRESH_TOKEN" else ""
            raise ConfigError(
                f"{name} is required ({hint + ', ' if hint else ''}"
                "or set GATEWAY_SANDBOX=1 / run './dev run --sandbox' to use the built-in Zoho simulator)"
            )
    client_id, client_secret, refresh_token = (_raw(env, name) for name in ZOHO_CREDENTIALS)
    return client_id, client_secret, refresh_token


#: ``name[scope+scope]=key``: scopes ride on the name side, before the first ``=``, so no key character
#: (anything but a comma or a line break) can be read as one.
_SCOPED_NAME = re.compile(r"(?P<name>[^\[\]]+?)\s*\[(?P<scopes>[^\[\]]*)\]")


def _scopes_of(name_part: str, source: str) -> tuple[str, frozenset[str]]:
    """The key's name and scopes from the part before ``=``: ``alice`` (every scope but admin) or
    ``alice[tickets:create+tickets:read]`` (exactly those; ``+`` or spaces between them)."""
    if "[" not in name_part and "]" not in name_part:
        return name_part, DEFAULT_KEY_SCOPES
    found = _SCOPED_NAME.fullmatch(name_part)
    if found is None:
        raise ConfigError(f"{source}: write a key's scopes as name[scope+scope]=key; the entry {name_part!r} is not")
    name = found["name"].strip()
    scopes = found["scopes"].replace("+", " ").split()
    if not scopes:
        raise ConfigError(f"{source}: the key named {name!r} has no scope between its brackets")
    for scope in scopes:
        if scope not in KEY_SCOPES:
            raise ConfigError(
                f"{source}: the key named {name!r} has an unknown scope {scope[:40]!r} (known: {', '.join(KEY_SCOPES)})"
            )
    return name, frozenset(scopes)


def parse_api_keys(spec: str, source: str) -> list[tuple[str, str, frozenset[str]]]:
    """Parse ``name=key`` or ``name[scope+scope]=key`` entries separated by commas or newlines.

    Raises ConfigError naming ``source`` (and the key's name or the bad scope, never the key).
    """
    entries: list[tuple[str, str, frozenset[str]]] = []
    for item in spec.replace("\n", ",").split(","):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        name, sep, key = item.partition("=")
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            # Never echo the item: it may be a key.
            raise ConfigError(f"{source} must be name=key pairs; one entry has no name or no key")
        name, scopes = _scopes_of(name, source)
        if len(key) < 16:
            raise ConfigError(f"{source}: the key named {name!r} is shorter than 16 characters")
        entries.append((name, key, scopes))
    return entries


def _read_api_keys(env: Mapping[str, str], sandbox: bool, for_cli: bool) -> tuple[ApiKey, ...]:
    """``GATEWAY_API_KEYS`` plus ``GATEWAY_API_KEYS_FILE``; required unless sandbox, anonymous or the CLI."""
    entries = parse_api_keys(env.get("GATEWAY_API_KEYS", ""), "GATEWAY_API_KEYS")
    keys_file = _raw(env, "GATEWAY_API_KEYS_FILE")
    if keys_file:
        try:
            with open(keys_file, encoding="utf-8") as fh:
                entries += parse_api_keys(fh.read(), "GATEWAY_API_KEYS_FILE")
        except OSError as exc:
            raise ConfigError(f"GATEWAY_API_KEYS_FILE cannot be read: {exc.strerror}") from None
    names = [name for name, _, _ in entries]
    if len(set(names)) != len(names):
        raise ConfigError("GATEWAY_API_KEYS: key names must be unique")
    anonymous = read_flag(env, "GATEWAY_ALLOW_ANONYMOUS")
    # With a portals file, its [keys.<name>] count too: portals.with_portals checks the sum.
    if not entries and not (sandbox or anonymous or for_cli or _raw(env, "GATEWAY_PORTALS_FILE")):
        raise ConfigError(
            "GATEWAY_API_KEYS is required (name=key,...), or set GATEWAY_ALLOW_ANONYMOUS=1 to serve without keys"
        )
    return tuple(ApiKey.from_secret(name, key, scopes) for name, key, scopes in entries)


def _read_cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """Exact browser origins (scheme://host[:port]); a wildcard is refused because keys travel in headers."""
    origins = tuple(o.strip().rstrip("/") for o in env.get("GATEWAY_CORS_ORIGINS", "").split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin == "*" or parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ConfigError(
                f"GATEWAY_CORS_ORIGINS must list exact origins like https://app.example.com, got {origin!r}"
            )
    return origins


def _read_attachments(env: Mapping[str, str]) -> dict[str, Any]:
    """GATEWAY_MAX_ATTACHMENT_BYTES (1 byte to 1 GiB) and GATEWAY_ATTACHMENT_TYPES (comma list of media types)."""
    raw = _raw(env, "GATEWAY_ATTACHMENT_TYPES").lower()
    types = frozenset(t.strip() for t in raw.split(",") if t.strip()) if raw else DEFAULT_ATTACHMENT_TYPES
    for media_type in sorted(types):
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise ConfigError(
                f"GATEWAY_ATTACHMENT_TYPES must list media types like image/png,application/pdf, got {media_type!r}"
            )
    return {
        "max_attachment_bytes": read_int(
            env, "GATEWAY_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024, minimum=1, maximum=1024**3
        ),
        "attachment_types": types,
    }


def _read_rate_limit(env: Mapping[str, str]) -> str | None:
    """``GATEWAY_RATE_LIMIT`` in the limits library's notation (``120/minute``), or None."""
    from limits import parse  # the notation the rate limiter itself parses

    raw = _raw(env, "GATEWAY_RATE_LIMIT")
    if not raw:
        return None
    try:
        parse(raw)
    except ValueError:
        raise ConfigError(f"GATEWAY_RATE_LIMIT must look like 120/minute, got {raw!r}") from None
    return raw


def _read_timeouts(env: Mapping[str, str]) -> tuple[float, float]:
    """(read timeout, connect timeout); connecting never waits longer than reading."""
    timeout = read_seconds(env, "ZOHO_TIMEOUT", 10.0, minimum=0.1)
    return timeout, min(timeout, read_seconds(env, "ZOHO_CONNECT_TIMEOUT", 3.05, minimum=0.05))


def _read_delivery(env: Mapping[str, str]) -> dict[str, Any]:
    """The create queue (outbox) and its deliverers: GATEWAY_QUEUE_CREATES, GATEWAY_DELIVERY_*, GATEWAY_DELIVERERS."""
    mode = _raw(env, "GATEWAY_QUEUE_CREATES").lower() or "prefer"
    if mode not in ("prefer", "always"):
        raise ConfigError(f"GATEWAY_QUEUE_CREATES must be prefer or always, got {mode!r}")
    lease = read_seconds(env, "GATEWAY_DELIVERY_LEASE", 0.0)
    if lease and lease < 1.0:
        raise ConfigError(f"GATEWAY_DELIVERY_LEASE must be at least 1 second, got {lease:g}")
    return {
        "queue_creates": mode,
        "delivery_concurrency": read_int(env, "GATEWAY_DELIVERY_CONCURRENCY", 4, minimum=1, maximum=1000),
        "delivery_max_age": read_seconds(env, "GATEWAY_DELIVERY_MAX_AGE", 24 * 3600.0, minimum=1.0),
        "deliverers": read_int(env, "GATEWAY_DELIVERERS", 2, minimum=0, maximum=64),
        "delivery_lease": lease or None,
        "create_budget": read_seconds(env, "GATEWAY_CREATE_BUDGET", 20.0),
        "reconcile_delay": read_seconds(env, "GATEWAY_RECONCILE_DELAY", 2.0),
    }


def load_config(env: Mapping[str, str] | None = None, *, sandbox: bool | None = None, for_cli: bool = False) -> Config:
    """Build the Config from ``env`` (default: ``os.environ``). Raises ConfigError, one line, on a bad setting.

    ``sandbox`` (default: ``GATEWAY_SANDBOX``) fills missing credentials with the simulator's fake ones,
    points the Zoho URLs at the development simulator unless they are set, needs no API keys and keeps
    its state apart (``SANDBOX_STATE_URL``). ``for_cli``: the ``flask zoho`` commands run before a
    refresh token or API keys exist (that is what ``exchange-code`` is for), so those two are optional there.
    """
    env = os.environ if env is None else env
    if sandbox is None:
        sandbox = read_flag(env, "GATEWAY_SANDBOX")
    sandbox_port = read_port(env, "SANDBOX_PORT", DEFAULT_SANDBOX_PORT)
    dc, accounts_url, api_base_url = _read_endpoints(env, sandbox, f"http://{SANDBOX_HOST}:{sandbox_port}")
    client_id, client_secret, refresh_token = _read_credentials(env, sandbox, for_cli)
    timeout, connect_timeout = _read_timeouts(env)
    config = Config(
        sandbox=sandbox,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        dc=dc,
        accounts_url=accounts_url,
        api_base_url=api_base_url,
        scopes=_raw(env, "ZOHO_SCOPES") or DEFAULT_SCOPES,
        timeout=timeout,
        connect_timeout=connect_timeout,
        token_refresh_margin=read_seconds(env, "ZOHO_TOKEN_REFRESH_MARGIN", 300.0),
        state_url=_raw(env, "GATEWAY_STATE_URL") or (SANDBOX_STATE_URL if sandbox else DEFAULT_STATE_URL),
        state_key=_raw(env, "GATEWAY_STATE_KEY") or None,
        api_keys=_read_api_keys(env, sandbox, for_cli),
        cors_origins=_read_cors_origins(env),
        cache_ttl=read_seconds(env, "GATEWAY_CACHE_TTL", 2.0),
        meta_ttl=read_seconds(env, "GATEWAY_META_TTL", 600.0),
        idempotency_ttl=read_seconds(env, "GATEWAY_IDEMPOTENCY_TTL", 24 * 3600.0, minimum=1.0),
        rate_limit=_read_rate_limit(env),
        log_file=_raw(env, "GATEWAY_LOG_FILE") or "logs/gateway.log",
        logging_ini=read_file(env, "GATEWAY_LOGGING_INI", DEFAULT_LOGGING_INI),
        metrics_dir=read_directory(env, "PROMETHEUS_MULTIPROC_DIR"),
        ca_bundle=_read_ca_bundle(env),
        threads=read_threads(env),
        host=read_host(env, "127.0.0.1"),
        port=read_port(env, "PORT", 8000),
        sandbox_port=sandbox_port,
        token_backoff_throttled=read_seconds(env, "ZOHO_TOKEN_THROTTLE_BACKOFF", 60.0, minimum=1.0),
        token_backoff_invalid=read_seconds(env, "ZOHO_TOKEN_INVALID_BACKOFF", 60.0, minimum=1.0),
        token_backoff_unreachable=read_seconds(env, "ZOHO_TOKEN_UNREACHABLE_BACKOFF", 10.0, minimum=0.5),
        retry_budget=read_seconds(env, "ZOHO_RETRY_BUDGET", 4.0),
        ref_field=_read_ref_field(env),
        **_read_delivery(env),
        **_read_attachments(env),
    )
    from .portals import with_portals  # here: portals.py reads this module's readers

    return with_portals(config, env, for_cli=for_cli)


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
