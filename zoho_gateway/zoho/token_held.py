"""This process's copy of the token (the cache's level 1), and what a caller is handed."""

from __future__ import annotations

from dataclasses import dataclass, field

from .token_record import StoredToken
from .token_settings import Clock


@dataclass(frozen=True)
class Renewal:
    """A token to send, and whether it was minted for this very call.

    Zoho refusing a token that was ``minted`` for the call means the credentials or scopes are wrong; refusing
    any other may only mean that it was revoked or replaced meanwhile.
    """

    token: str = field(repr=False)
    minted: bool


@dataclass(frozen=True)
class HeldToken:
    """This process's copy. ``refresh_at``/``expires_at`` are monotonic, so wall-clock jumps never move them.

    ``served`` is built once, so that the lock-free hot path hands it out without allocating.
    """

    served: Renewal
    refresh_at: float
    expires_at: float

    @property
    def token(self) -> str:
        return self.served.token


def hold(stored: StoredToken, refresh_margin: float, clock: Clock) -> HeldToken:
    """Turn the shared record (wall-clock times) into this process's copy (monotonic times)."""
    remaining = stored.expires_at - clock.wall()
    now = clock.mono()
    # The margin never exceeds half a lifetime, so short-lived tokens are still used before renewal.
    margin = min(refresh_margin, stored.lifetime / 2) if stored.lifetime > 0 else refresh_margin
    return HeldToken(Renewal(stored.token, minted=False), now + remaining - margin, now + remaining)
