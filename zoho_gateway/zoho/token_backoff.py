"""The cluster-wide back-off: after Zoho refuses a mint, no worker anywhere calls the token endpoint until it ends."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import GatewayError, ZohoTokenThrottled, ZohoTokenUnavailable
from ..state.base import Store
from .oauth import TokenCredentialsRejected, TokenError, TokenThrottled

BACKOFF_KEY = "token:backoff"


def kind_of(exc: TokenError) -> str:
    """ "throttled", "invalid_credentials" (an operator must act) or "unreachable" (may heal by itself)."""
    if isinstance(exc, TokenThrottled):
        return "throttled"
    if isinstance(exc, TokenCredentialsRejected):
        return "invalid_credentials"
    return "unreachable"


@dataclass(frozen=True)
class Backoff:
    """No mint before ``until`` (wall clock), because Zoho refused one for ``reason`` (its error name)."""

    until: float
    kind: str
    reason: str

    def retry_after(self, now: float) -> int:
        """Whole seconds a client should wait; never 0, which clients read as "retry at once"."""
        return max(1, int(self.until - now + 0.999))

    def error(self, now: float) -> GatewayError:
        """The 503 a client gets while this back-off runs and no valid token is left."""
        retry_after = self.retry_after(now)
        if self.kind == "throttled":
            return ZohoTokenThrottled(
                "Zoho is throttling access-token requests and no valid token is left", retry_after=retry_after
            )
        if self.kind == "invalid_credentials":
            return ZohoTokenUnavailable(
                "Zoho refused the gateway's OAuth credentials; an operator must fix them", retry_after=retry_after
            )
        return ZohoTokenUnavailable("Zoho's token endpoint is unreachable", retry_after=retry_after)


def read_backoff(store: Store, now: float) -> Backoff | None:
    """The back-off in force at ``now``, or None (also for a malformed record). Raises StoreUnavailable."""
    raw = store.get(BACKOFF_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        backoff = Backoff(float(data["until"]), str(data["kind"]), str(data["reason"]))
    except (ValueError, KeyError, TypeError):
        return None
    return backoff if backoff.until > now else None


def record_backoff(store: Store, backoff: Backoff, now: float) -> None:
    """Share ``backoff`` with every process. Raises StoreUnavailable."""
    record = {"until": backoff.until, "kind": backoff.kind, "reason": backoff.reason, "since": now}
    store.set(BACKOFF_KEY, json.dumps(record).encode(), ttl=max(backoff.until - now, 0.001))


def clear_backoff(store: Store) -> None:
    """End any back-off (a mint succeeded, or an operator said so). Raises StoreUnavailable."""
    store.delete(BACKOFF_KEY)
