"""Client API keys: held as SHA-256 digests, compared in constant time, known in logs by name only."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiKey:
    """A client API key, held only as a digest. ``name`` is what logs show."""

    name: str
    digest: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, name: str, key: str) -> ApiKey:
        """The entry for ``key``; the key itself is not kept."""
        return cls(name, digest_key(key))


def digest_key(key: str) -> bytes:
    """The digest kept in memory instead of the key itself."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def find_key_name(presented: str, keys: Iterable[ApiKey]) -> str | None:
    """The name of the key matching ``presented``, or None.

    Compares against every key with ``hmac.compare_digest`` and never stops early, so timing tells
    nothing about which key or how much of it matched.
    """
    candidate = digest_key(presented)
    found: str | None = None
    for key in keys:
        if hmac.compare_digest(candidate, key.digest):
            found = key.name
    return found
