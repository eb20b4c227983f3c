"""The token cache's tuning knobs and its clocks, each one frozen object, so that tests can drive time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    """Where the token cache reads the time and how it pauses.

    ``wall`` dates what several processes and hosts share (the stored token's expiry, back-offs, the audit);
    ``mono`` times this process's own copy, immune to wall-clock jumps; ``sleep`` is the pause between tries
    of an unreachable token endpoint. Tests pass fakes that move only when told to.
    """

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class TokenSettings:
    """How eagerly the cache renews, how long it waits for other workers, and how long it backs off (seconds)."""

    #: Renew this long before expiry, so that no request carries a token that expires on its way to Zoho.
    #: Capped at half a token's lifetime, so that short-lived tokens are still used before renewal.
    refresh_margin: float = 300.0
    #: The cross-process mint lock lapses after this long, so a holder that dies never wedges the others.
    lock_lease: float = 30.0
    #: A process with no valid token waits this long for another's mint before answering 503.
    lock_wait: float = 10.0
    #: Cluster-wide back-off after Zoho throttles minting, refuses the credentials, or cannot be reached.
    backoff_throttled: float = 60.0
    backoff_invalid: float = 60.0
    backoff_unreachable: float = 10.0
    #: Pauses between the tries of one mint when the accounts server cannot be reached (len + 1 tries).
    unreachable_pauses: tuple[float, ...] = (0.25, 0.75)
    #: While minting is impossible, a process re-checks the shared store at most this often.
    recheck_interval: float = 2.0
    #: Without the shared store, one process mints at most once per this long (a storm guard)...
    local_mint_interval: float = 60.0
    #: ...and only this close to its token's expiry.
    local_mint_lead: float = 10.0

    def backoff_for(self, kind: str) -> float:
        """The back-off after a refusal of ``kind`` ("throttled", "invalid_credentials" or "unreachable")."""
        if kind == "throttled":
            return self.backoff_throttled
        if kind == "invalid_credentials":
            return self.backoff_invalid
        return self.backoff_unreachable
