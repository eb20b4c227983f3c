"""Readers of one concern each (Zoho endpoints, credentials, CORS, attachments, delivery, ...) for ``load_config``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .config_development import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN, ZOHO_CREDENTIALS
from .config_readers import ConfigError, _raw, read_int, read_seconds, read_url

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
