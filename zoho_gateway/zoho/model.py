"""The ticket as the gateway's layers pass it around: no Zoho field names, no HTTP.

``NewTicket`` is what a validated ``POST /requests`` body becomes; ``Ticket`` is what a client reads.
Policies (cache, idempotency) and views speak these types; only ``zoho/`` turns them into Zoho's wire format.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class NameRef(TypedDict):
    """A pick-list value by name, as Zoho's lookups take it: ``{"name": "High"}``."""

    name: str


class NewTicket(TypedDict):
    """A validated ticket to create. Optional lookups are absent or None when the client sent none."""

    subject: str
    description: str
    requester_email: str
    priority: NotRequired[NameRef | None]
    department: NotRequired[NameRef | None]
    category: NotRequired[NameRef | None]
    status: NotRequired[NameRef | None]


class Ticket(TypedDict):
    """The ticket as clients see it (the seed contract's five fields)."""

    ticket_id: str
    status: str | None
    technician_assigned: str
    technician_contact_email: str | None
    technician_comments: str | None
