"""Settings: read once from the environment into an immutable object that fails fast, naming the setting."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


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


@dataclass(frozen=True)
class ApiKey:
    """A client API key, held only as a digest. ``name`` is what logs show."""

    name: str
    digest: bytes = field(repr=False)


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
    allow_anonymous: bool
    cors_origins: tuple[str, ...]
    cache_ttl: float
    idempotency_ttl: float
    rate_limit: str | None
    log_file: str
    port: int
    max_body_bytes: int = 1024 * 1024
    token_backoff_throttled: float = 60.0
    token_backoff_invalid: float = 60.0
    token_backoff_unreachable: float = 10.0
    retry_budget: float = 4.0

    @property
    def anonymous(self) -> bool:
        """True when clients need no API key (sandbox without keys, or explicitly allowed)."""
        return not self.api_keys


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < minimum or value != value:  # NaN compares unequal to itself
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL like https://host[/path], got {raw!r}")
    return raw.rstrip("/")


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_api_keys(spec: str, source: str) -> list[tuple[str, str]]:
    """Parse ``name=key`` pairs separated by commas or newlines; raises ConfigError naming ``source``."""
    pairs: list[tuple[str, str]] = []
    for item in spec.replace("\n", ",").split(","):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        name, sep, key = item.partition("=")
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            # Never echo the item: it may be a key.
            raise ConfigError(f"{source} must be name=key pairs; one entry has no name or no key")
        if len(key) < 16:
            raise ConfigError(f"{source}: the key named {name!r} is shorter than 16 characters")
        pairs.append((name, key))
    return pairs


def load_config(env: Mapping[str, str] | None = None, *, sandbox: bool | None = None, for_cli: bool = False) -> Config:
    """Build the Config from ``env`` (default: ``os.environ``). Raises ConfigError, one line, on a bad setting.

    ``for_cli``: the ``flask zoho`` commands run before a refresh token or API keys exist (that is
    what ``exchange-code`` is for), so those two are optional there.
    """
    from .api.keys import digest_key  # local import: api.keys imports ApiKey from here

    env = os.environ if env is None else env
    if sandbox is None:
        sandbox = _flag(env, "GATEWAY_SANDBOX")

    dc = env.get("ZOHO_DC", "").strip().lower() or "com"
    if dc not in DATA_CENTRES:
        raise ConfigError(f"ZOHO_DC must be one of {', '.join(DATA_CENTRES)}, got {dc!r}")
    accounts_default, api_default = DATA_CENTRES[dc]

    client_id = env.get("ZOHO_CLIENT_ID", "").strip()
    client_secret = env.get("ZOHO_CLIENT_SECRET", "").strip()
    refresh_token = env.get("ZOHO_REFRESH_TOKEN", "").strip()
    if sandbox:
        from .sandbox.settings import SandboxSettings  # the simulator's fake credentials, never real ones

        fake = SandboxSettings()
        client_id = client_id or fake.client_id
        client_secret = client_secret or fake.client_secret
        refresh_token = refresh_token or fake.refresh_token
    else:
        for name, value in (
            ("ZOHO_CLIENT_ID", client_id),
            ("ZOHO_CLIENT_SECRET", client_secret),
            ("ZOHO_REFRESH_TOKEN", "-" if for_cli else refresh_token),
        ):
            if not value:
                raise ConfigError(f"{name} is required (or run with --sandbox to use the built-in Zoho simulator)")

    timeout = _float(env, "ZOHO_TIMEOUT", 10.0, minimum=0.1)

    keys_spec = env.get("GATEWAY_API_KEYS", "")
    pairs = parse_api_keys(keys_spec, "GATEWAY_API_KEYS")
    keys_file = env.get("GATEWAY_API_KEYS_FILE", "").strip()
    if keys_file:
        try:
            with open(keys_file, encoding="utf-8") as fh:
                pairs += parse_api_keys(fh.read(), "GATEWAY_API_KEYS_FILE")
        except OSError as exc:
            raise ConfigError(f"GATEWAY_API_KEYS_FILE cannot be read: {exc.strerror}") from None
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ConfigError("GATEWAY_API_KEYS: key names must be unique")
    allow_anonymous = _flag(env, "GATEWAY_ALLOW_ANONYMOUS")
    if not pairs and not sandbox and not allow_anonymous and not for_cli:
        raise ConfigError(
            "GATEWAY_API_KEYS is required (name=key,...), or set GATEWAY_ALLOW_ANONYMOUS=1 to serve without keys"
        )

    origins = tuple(o.strip().rstrip("/") for o in env.get("GATEWAY_CORS_ORIGINS", "").split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin == "*" or parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ConfigError(
                f"GATEWAY_CORS_ORIGINS must list exact origins like https://app.example.com, got {origin!r}"
            )

    rate_limit = env.get("GATEWAY_RATE_LIMIT", "").strip() or None
    if rate_limit:
        from .policies.ratelimit import parse_rate  # local import: keeps config free of the limiter at import time

        try:
            parse_rate(rate_limit)
        except ValueError:
            raise ConfigError(f"GATEWAY_RATE_LIMIT must look like 120/minute, got {rate_limit!r}") from None

    port_raw = env.get("PORT", "").strip() or "8000"
    if not port_raw.isdigit() or not 0 < int(port_raw) < 65536:
        raise ConfigError(f"PORT must be a port number, got {port_raw!r}")

    state_key = env.get("GATEWAY_STATE_KEY", "").strip() or None

    return Config(
        sandbox=sandbox,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        dc=dc,
        accounts_url=_url(env, "ZOHO_ACCOUNTS_URL", accounts_default),
        api_base_url=_url(env, "ZOHO_API_BASE_URL", api_default),
        scopes=env.get("ZOHO_SCOPES", "").strip() or DEFAULT_SCOPES,
        timeout=timeout,
        connect_timeout=min(timeout, _float(env, "ZOHO_CONNECT_TIMEOUT", 3.05, minimum=0.05)),
        token_refresh_margin=_float(env, "ZOHO_TOKEN_REFRESH_MARGIN", 300.0),
        state_url=env.get("GATEWAY_STATE_URL", "").strip() or "sqlite:///var/state.db",
        state_key=state_key,
        api_keys=tuple(ApiKey(name, digest_key(key)) for name, key in pairs),
        allow_anonymous=allow_anonymous,
        cors_origins=origins,
        cache_ttl=_float(env, "GATEWAY_CACHE_TTL", 2.0),
        idempotency_ttl=_float(env, "GATEWAY_IDEMPOTENCY_TTL", 24 * 3600.0, minimum=1.0),
        rate_limit=rate_limit,
        log_file=env.get("GATEWAY_LOG_FILE", "").strip() or "logs/gateway.log",
        port=int(port_raw),
        token_backoff_throttled=_float(env, "ZOHO_TOKEN_THROTTLE_BACKOFF", 60.0, minimum=1.0),
        token_backoff_invalid=_float(env, "ZOHO_TOKEN_INVALID_BACKOFF", 60.0, minimum=1.0),
        token_backoff_unreachable=_float(env, "ZOHO_TOKEN_UNREACHABLE_BACKOFF", 10.0, minimum=0.5),
        retry_budget=_float(env, "ZOHO_RETRY_BUDGET", 4.0),
    )
