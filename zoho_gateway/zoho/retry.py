"""The written rule for what may be re-sent to Zoho, and how long to wait in between."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .transport import NoAnswer, NotSent, TransportError

#: Statuses that say "not now" rather than "no": the same read may well succeed a moment later.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Methods whose calls the gateway makes idempotent in effect: reads, and PUTs that set values (an update,
#: a close) so that a second arrival leaves Zoho as the first did.
IDEMPOTENT_METHODS = frozenset({"GET", "PUT"})


def jitter(value: float) -> float:
    """Full jitter in its own function so that tests can pin it: a uniform draw in [value/2, value]."""
    return value / 2 + random.random() * value / 2


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before re-sending a call.

    ``budget`` caps the total time spent on one client call (attempts and sleeps); ``max_attempts``
    caps the attempts; backoff is exponential from ``base`` up to ``cap``, jittered; a ``Retry-After``
    from Zoho is honoured up to ``retry_after_cap`` seconds.
    """

    budget: float = 4.0
    max_attempts: int = 3
    base: float = 0.1
    cap: float = 1.0
    retry_after_cap: float = 2.0

    def may_retry(self, method: str, *, error: TransportError | None = None, status: int | None = None) -> bool:
        """Whether a call that ended with ``error`` or HTTP ``status`` may be sent again."""
        if isinstance(error, NotSent):
            # The connection was never made, so nothing reached Zoho: safe for every method, POST included.
            return True
        if method not in IDEMPOTENT_METHODS:
            # A POST that may have arrived is never re-sent: a second ticket, note or file is worse than an error.
            return False
        if isinstance(error, NoAnswer):
            # Reads and value-setting PUTs are idempotent: after a time-out or a dropped connection, one more
            # try at worst sets the same values again.
            return True
        return status in RETRYABLE_STATUSES

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return jitter(min(self.cap, self.base * 2 ** (attempt - 1)))
