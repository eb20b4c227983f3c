"""Client API keys and their scopes: held as SHA-256 digests, compared in constant time, known in logs by name only."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Every scope a key may hold, and what it opens (api/scopes.py says which route needs which).
SCOPES: dict[str, str] = {
    "tickets:create": "create tickets (POST /requests) and poll their outcome",
    "tickets:read": "read one ticket (GET /requests/<id>, its notes, its attachments)",
    "tickets:list": "find tickets (GET /requests) and read the pick lists (GET /meta/...)",
    "tickets:write": "change a ticket: update, note, close, reopen, attach",
    "admin": "operator routes: /token/status and /metrics",
}
#: A key configured without scopes (``name=key``, as before scopes existed) holds these: all but ``admin``.
DEFAULT_SCOPES = frozenset(SCOPES) - {"admin"}
#: What a request holds when the gateway runs without keys (sandbox, GATEWAY_ALLOW_ANONYMOUS): everything,
#: as before scopes existed (the operator routes were open without keys then too).
ANONYMOUS_SCOPES = frozenset(SCOPES)


@dataclass(frozen=True)
class ApiKey:
    """A client API key, held only as a digest. ``name`` is what logs show; ``scopes`` what it may do."""

    name: str
    digest: bytes = field(repr=False)
    scopes: frozenset[str] = DEFAULT_SCOPES

    @classmethod
    def from_secret(cls, name: str, key: str, scopes: frozenset[str] = DEFAULT_SCOPES) -> ApiKey:
        """The entry for ``key``; the key itself is not kept."""
        return cls(name, digest_key(key), scopes)


def digest_key(key: str) -> bytes:
    """The digest kept in memory instead of the key itself."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def find_key(presented: str, keys: Iterable[ApiKey]) -> ApiKey | None:
    """The key matching ``presented``, or None.

    Compares against every key with ``hmac.compare_digest`` and never stops early, so timing tells
    nothing about which key or how much of it matched.
    """
    candidate = digest_key(presented)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(candidate, key.digest):
            found = key
    return found


def find_key_name(presented: str, keys: Iterable[ApiKey]) -> str | None:
    """The name of the key matching ``presented``, or None (see :func:`find_key`)."""
    key = find_key(presented, keys)
    return key.name if key is not None else None
