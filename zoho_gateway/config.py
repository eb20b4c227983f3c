"""Settings: read once from the environment into an immutable object that fails fast, naming the setting.

``load_config`` is a list of small readers, one per concern (Zoho endpoints, credentials, client keys,
CORS, state, logging, server): ``config_readers`` reads one variable each, ``config_concerns`` one concern
each, ``config_keys`` the client API keys, and ``config_development`` holds sandbox mode's defaults and
``development_env``. Their public names are re-exported here, where the rest of the code imports them. The
``read_*`` helpers are public so that the entries outside the package (``gunicorn.conf.py``, ``app.py``)
parse the same variables the same way. Every reader raises ConfigError with one line that names the
variable and never contains a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .apikeys import ApiKey
from .config_concerns import (
    DATA_CENTRES,
    DEFAULT_ATTACHMENT_TYPES,
    _read_attachments,
    _read_ca_bundle,
    _read_cors_origins,
    _read_credentials,
    _read_delivery,
    _read_endpoints,
    _read_rate_limit,
    _read_ref_field,
    _read_timeouts,
)
from .config_development import (
    DEFAULT_SANDBOX_PORT,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_HOST,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_STATE_URL,
    ZOHO_CREDENTIALS,
    development_env,
)
from .config_keys import _read_api_keys, parse_api_keys
from .config_readers import (
    DEFAULT_THREADS,
    ConfigError,
    _raw,
    read_directory,
    read_file,
    read_flag,
    read_host,
    read_int,
    read_port,
    read_seconds,
    read_threads,
    read_url,
)

if TYPE_CHECKING:
    from .portals import Portals

__all__ = [
    "DATA_CENTRES",
    "DEFAULT_ATTACHMENT_TYPES",
    "DEFAULT_LOGGING_INI",
    "DEFAULT_SANDBOX_PORT",
    "DEFAULT_SCOPES",
    "DEFAULT_STATE_URL",
    "DEFAULT_THREADS",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_HOST",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_STATE_URL",
    "ZOHO_CREDENTIALS",
    "Config",
    "ConfigError",
    "development_env",
    "load_config",
    "parse_api_keys",
    "read_directory",
    "read_file",
    "read_flag",
    "read_host",
    "read_int",
    "read_port",
    "read_seconds",
    "read_threads",
    "read_url",
]

#: OAuth scopes the consent URL asks for: create and read requests.
DEFAULT_SCOPES = "SDPOnDemand.requests.ALL"
DEFAULT_STATE_URL = "sqlite:///var/state.db"
DEFAULT_LOGGING_INI = str(Path(__file__).resolve().parent.parent / "logging.ini")


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
