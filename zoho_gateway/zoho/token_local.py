"""Minting without the shared store: each process on its own, as late and as rarely as it can."""

from __future__ import annotations

import math

from .oauth import TokenError, ZohoOAuth
from .token_audit import MintAudit
from .token_backoff import Backoff, kind_of
from .token_record import StoredToken
from .token_settings import Clock, TokenSettings


class LocalMinting:
    """The storm guard of degraded mode. Without the store there is no cluster-wide single flight, so a
    process mints only ``local_mint_lead`` before its token expires and at most once per
    ``local_mint_interval``, to stay well inside Zoho's mint limit until the store is back. A refusal
    starts a back-off of this process only. Not thread-safe: the manager calls it under its lock.
    """

    def __init__(
        self, oauth: ZohoOAuth, refresh_token: str, settings: TokenSettings, clock: Clock, audit: MintAudit
    ) -> None:
        self._oauth = oauth
        self._refresh_token = refresh_token
        self._settings = settings
        self._clock = clock
        self._audit = audit
        self._backoff: Backoff | None = None
        self._last_mint = -math.inf

    @property
    def backoff(self) -> Backoff | None:
        """This process's own back-off while it runs, else None."""
        backoff = self._backoff
        return backoff if backoff is not None and backoff.until > self._clock.wall() else None

    def due(self, expires_at: float | None) -> bool:
        """Whether to mint now, for a copy expiring at ``expires_at`` (monotonic; None: no copy held)."""
        now = self._clock.mono()
        if expires_at is not None and now < expires_at - self._settings.local_mint_lead:
            return False
        return self.backoff is None and now - self._last_mint >= self._settings.local_mint_interval

    def mint(self) -> StoredToken | Backoff:
        """One try at the token endpoint: the new token, or the back-off that Zoho's refusal starts."""
        self._last_mint = self._clock.mono()
        try:
            minted = self._oauth.refresh(self._refresh_token)
        except TokenError as exc:
            kind = kind_of(exc)
            seconds = self._settings.backoff_for(kind)
            self._backoff = Backoff(self._clock.wall() + seconds, kind, exc.reason)
            self._audit.refused(self._backoff, seconds, shared=False)
            return self._backoff
        self._audit.minted("shared state unavailable", minted.expires_in, shared=False)
        now = self._clock.wall()
        return StoredToken(minted.access_token, now, now + minted.expires_in, encrypted=False)

    def forget(self) -> None:
        """End this process's back-off (an operator said so)."""
        self._backoff = None
