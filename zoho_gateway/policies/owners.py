"""Which create owns each Zoho ticket: ``ticket id -> request_ref``, for searches by content.

Without a reference field, a lost create is searched for by its content (requester, subject, description,
time window). An identical create of the same requester made moments before matches too: its ticket is
that create's, not this one's. Taking it would settle this create with another's ticket, and this ticket
would never be sent: lost. So every create that settles ``created`` records its ticket here, and a search
drops the candidates another create owns before deciding (one left: ours; none: send again; more:
needs_review).

- A create's own answer is the truth: ``record`` overwrites (and says when a search had taken the ticket).
- A search only claims a ticket nobody owns (``claim``, set-if-absent), so two creates searching at once
  never both take one ticket; the one that loses searches again, and sends again if nothing is left.

The records live in the portal's share of the shared store (ticket ids are per portal).
"""

from __future__ import annotations

import logging

from ..state.base import Store

log = logging.getLogger("zoho_gateway.outbox")


class TicketOwners:
    """``ticket id -> request_ref`` in ``store``, each kept ``ttl`` seconds. Every method may raise
    ``StoreUnavailable``.

    ``ttl`` must outlast every search that may list the ticket: an item is searched for until its maximum
    age (again after an operator's retry, within its retention), with a window reaching back before its send.
    """

    PREFIX = "outbox:owner:"

    def __init__(self, store: Store, *, ttl: float) -> None:
        self._store = store
        self._ttl = ttl

    def owner(self, ticket_id: str) -> str | None:
        raw = self._store.get(self.PREFIX + ticket_id)
        return raw.decode() if raw is not None else None

    def record(self, ticket_id: str, ref: str) -> None:
        """Zoho answered ``ref``'s create with ``ticket_id``: it is ``ref``'s, whatever a search concluded."""
        previous = self.owner(ticket_id)
        self._store.set(self.PREFIX + ticket_id, ref.encode(), ttl=self._ttl)
        if previous not in (None, ref):
            log.error(
                "a search settled another create with this create's ticket; that create needs review",
                extra={
                    "event": "outbox_ticket_taken",
                    "zoho_ticket_id": ticket_id,
                    "request_ref": ref,
                    "taken_by": previous,
                },
            )

    def claim(self, ticket_id: str, ref: str) -> bool:
        """Take ``ticket_id`` for ``ref`` (a search found it) unless another create owns it."""
        if self._store.add(self.PREFIX + ticket_id, ref.encode(), ttl=self._ttl):
            return True
        return self.owner(ticket_id) == ref

    def not_others(self, found: list[str], ref: str) -> list[str]:
        """``found`` without the tickets another create owns."""
        return [ticket_id for ticket_id in found if self.owner(ticket_id) in (None, ref)]
