"""Client API keys: the ``name[scope+scope]=key`` entries of GATEWAY_API_KEYS and GATEWAY_API_KEYS_FILE."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .apikeys import DEFAULT_SCOPES as DEFAULT_KEY_SCOPES
from .apikeys import SCOPES as KEY_SCOPES
from .apikeys import ApiKey
from .config_readers import ConfigError, _raw, read_flag

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
