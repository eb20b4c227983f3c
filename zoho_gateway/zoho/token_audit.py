"""The mint audit: one log line per mint or refusal (with why and who), and the history ``/token/status`` shows."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from ..state.base import Store
from .token_backoff import Backoff

log = logging.getLogger("zoho_gateway.tokens")
audit = logging.getLogger("zoho_gateway.audit")

AUDIT_KEY = "token:audit"

#: The shared history is kept this long after the last event (seconds).
HISTORY_TTL = 7 * 24 * 3600.0
#: ``mints_last_hour`` counts over this window: Zoho's limit is per ten minutes, an hour shows the trend.
MINT_WINDOW = 3600.0

#: What to fix for each refusal Zoho names (ZOHO-API.md §3.2); a client of another data centre is
#: unknown to this accounts server, hence ZOHO_DC beside the client id.
CREDENTIAL_HINTS = {
    "invalid_code": "ZOHO_REFRESH_TOKEN (revoked, mistyped, or from another client or data centre)",
    "invalid_client": "ZOHO_CLIENT_ID and ZOHO_DC/ZOHO_ACCOUNTS_URL",
    "invalid_client_secret": "ZOHO_CLIENT_SECRET",
    "unauthorized_client": "ZOHO_CLIENT_ID (the client may not use refresh tokens)",
    "ZOHO_REFRESH_TOKEN is not set": "ZOHO_REFRESH_TOKEN (run 'flask zoho exchange-code')",
}
ALL_CREDENTIALS = "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN and ZOHO_DC"


class MintAudit:
    """Writes the ``token_mint`` events. With ``shared=True`` it also keeps the history in the store.

    ``on_mint`` (metrics) is called with "minted" or the refusal's kind; it must not raise.
    """

    def __init__(self, store: Store, wall: Callable[[], float], on_mint: Callable[[str], None] | None) -> None:
        self._store = store
        self._wall = wall
        self._on_mint = on_mint
        self._host = socket.gethostname()

    def minted(self, reason: str, expires_in: float, *, shared: bool) -> None:
        """A token was minted because of ``reason`` ("no stored token", "expired", ...). Raises StoreUnavailable."""
        self._event("minted", reason=reason, expires_in=expires_in, shared=shared)
        if shared:
            self._remember({"outcome": "minted", "reason": reason}, minted=True)
        self._notify("minted")

    def refused(self, backoff: Backoff, seconds: float, *, shared: bool) -> None:
        """Zoho refused a mint; ``backoff`` (``seconds`` long) follows. Raises StoreUnavailable."""
        self._event("failure", kind=backoff.kind, reason=backoff.reason, backoff_seconds=seconds, shared=shared)
        if backoff.kind == "invalid_credentials":
            log.error(
                "Zoho refused the OAuth credentials (%s): check %s; retrying in %ds",
                backoff.reason,
                CREDENTIAL_HINTS.get(backoff.reason, ALL_CREDENTIALS),
                int(seconds),
            )
        if shared:
            self._remember({"outcome": backoff.kind, "reason": backoff.reason}, minted=False)
        self._notify(backoff.kind)

    def history(self) -> tuple[dict[str, Any] | None, int]:
        """(the last event, mints in the last hour) across the cluster. Raises StoreUnavailable."""
        data = self._load()
        last = data.get("last") or None
        return (last if isinstance(last, dict) else None), len(self._recent_mints(data))

    def _identity(self) -> dict[str, Any]:
        # The pid is read per event: with gunicorn's preload_app this object is built before the fork.
        return {"pid": os.getpid(), "host": self._host}

    def _event(self, outcome: str, **fields: Any) -> None:
        level = logging.INFO if outcome == "minted" else logging.WARNING
        audit.log(
            level, "token %s", outcome, extra={"event": "token_mint", "outcome": outcome, **self._identity(), **fields}
        )

    def _notify(self, outcome: str) -> None:
        if self._on_mint is not None:
            self._on_mint(outcome)

    def _load(self) -> dict[str, Any]:
        raw = self._store.get(AUDIT_KEY)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _recent_mints(self, data: dict[str, Any]) -> list[float]:
        since = self._wall() - MINT_WINDOW
        return [t for t in data.get("mints", []) if isinstance(t, (int, float)) and t > since]

    def _remember(self, last: dict[str, Any], *, minted: bool) -> None:
        # Read-modify-write without a lock: callers hold the mint lock, the only writer of this record.
        data = self._load()
        now = self._wall()
        mints = self._recent_mints(data)
        if minted:
            mints.append(now)
        data.update(last={"at": now, **last, **self._identity()}, mints=mints)
        self._store.set(AUDIT_KEY, json.dumps(data).encode(), ttl=HISTORY_TTL)
