"""Per-client rate limits, counted in the shared store so that every worker (and host) enforces one limit.

A fixed window per client: one atomic ``incr`` per request on the same store that holds the token,
which works alike on memory, SQLite (the workers of one host) and Redis (several hosts). ``limits``
parses the rate strings; Flask-Limiter is not used because it cannot count in our SQLite store.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse

from ..state.base import Store, StoreUnavailable

log = logging.getLogger("zoho_gateway.ratelimit")


def parse_rate(spec: str) -> RateLimitItem:
    """``"120/minute"``, ``"10/second"``, ``"1000 per hour"``... Raises ValueError when unparsable."""
    return parse(spec)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers (IETF draft names)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """``hit(client)`` counts one request and says whether it is allowed. Fails open if the store is down."""

    def __init__(self, store: Store, spec: str) -> None:
        item = parse_rate(spec)
        self._store = store
        self.limit = item.amount
        self.window = item.get_expiry()

    def hit(self, client: str) -> Verdict:
        now = time.time()
        window_start = math.floor(now / self.window) * self.window
        reset = max(1, math.ceil(window_start + self.window - now))
        try:
            count = self._store.incr(f"rl:{client}:{int(window_start)}", ttl=self.window + 1)
        except StoreUnavailable:
            # Refusing every client because the counter store is down would turn a Redis outage into a
            # gateway outage; serving without a limit for a while is the lesser harm.
            log.warning("rate-limit store unavailable; request allowed uncounted")
            return Verdict(True, self.limit, self.limit, reset)
        return Verdict(count <= self.limit, self.limit, max(0, self.limit - count), reset)
