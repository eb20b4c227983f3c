"""Readers of one environment variable each, and the ConfigError every setting fails with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A missing or malformed setting. The message is one line that names the setting."""


#: Connections to Zoho per process when GATEWAY_THREADS is unset: the development server starts a thread per
#: connection, so the pool is sized for a busy developer rather than to a thread count.
DEFAULT_THREADS = 32

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


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
