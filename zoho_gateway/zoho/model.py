"""The ticket as the gateway's layers pass it around: no Zoho field names, no HTTP.

``NewTicket`` is what a validated ``POST /requests`` body becomes; ``Ticket`` is what a client reads.
Policies (cache, idempotency) and views speak these types; only ``zoho/`` turns them into Zoho's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Literal, NotRequired, TypedDict


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


# --- the ticket lifecycle (issue 11) ---------------------------------------------------------
# Times are ISO 8601 UTC strings with milliseconds, ``2020-06-24T12:05:00.533Z``, or None when Zoho
# holds none. Ids are strings of digits. Texts are plain text: Zoho's HTML is made safe and readable.

#: The orders a list may come in: oldest or newest first, by creation or by last change.
SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at"]

#: The pick lists :meth:`HelpdeskService.pick_values` reads.
PickKind = Literal["priorities", "statuses", "categories", "departments"]


class TicketQuery(TypedDict):
    """A validated search. Filters that are absent or None are not applied; those given are ANDed.

    ``requester_email`` and ``status`` (a status name) match whole values, ``q`` is text the subject
    contains, ``display_id`` the human ticket number (digits). ``page`` counts from 1; ``per_page`` is
    1..100.
    """

    requester_email: NotRequired[str | None]
    status: NotRequired[str | None]
    q: NotRequired[str | None]
    display_id: NotRequired[str | None]
    page: int
    per_page: int
    sort: SortKey


class TicketSummary(TypedDict):
    """One row of a list. ``technician_assigned`` is "Unassigned" when none, as in :class:`Ticket`."""

    ticket_id: str
    display_id: str | None
    subject: str | None
    status: str | None
    technician_assigned: str
    created_at: str | None
    updated_at: str | None


class TicketPage(TypedDict):
    """One page of a search, in the order asked; ``has_more`` says whether a next page exists."""

    items: list[TicketSummary]
    has_more: bool


class Person(TypedDict):
    """Someone as Zoho names them; either part may be unknown."""

    name: str | None
    email: str | None


class FullTicket(TypedDict):
    """The full view: the seed contract's five fields and what a helpdesk page shows.

    ``description`` and ``resolution`` are plain text. ``technician_comments`` is the seed view's (the
    resolution as Zoho stores it); ``resolution`` is that text read as plain text (the same unless Zoho
    holds HTML).
    ``priority``, ``category`` and ``department`` are names or None.
    """

    ticket_id: str
    status: str | None
    technician_assigned: str
    technician_contact_email: str | None
    technician_comments: str | None
    display_id: str | None
    subject: str | None
    description: str | None
    requester: Person
    priority: str | None
    category: str | None
    department: str | None
    created_at: str | None
    updated_at: str | None
    due_by: str | None
    resolution: str | None
    has_attachments: bool


class TicketChanges(TypedDict, total=False):
    """A validated update: only the fields given change (validated as for a create)."""

    subject: str
    description: str
    priority: NameRef
    category: NameRef
    department: NameRef
    status: NameRef


class Note(TypedDict):
    """A note on a ticket. ``text`` is plain text; ``author`` is the writer's name, if Zoho says."""

    note_id: str
    text: str
    show_to_requester: bool
    created_at: str | None
    author: str | None


class Attachment(TypedDict):
    """A file attached to a ticket. ``size`` in bytes, when Zoho says."""

    attachment_id: str
    name: str
    size: int | None
    content_type: str | None


@dataclass(frozen=True)
class Upload:
    """A file to attach, already checked by the caller (name sanitised, type and size allowed).

    ``stream`` is a readable binary file object positioned at the file's start; it is read in chunks,
    never whole, and not closed. ``size`` is its length in bytes from that position.
    """

    name: str
    content_type: str
    stream: BinaryIO
    size: int


class PickValue(TypedDict):
    """A value of a pick list: the ``name`` a ticket takes, and Zoho's id of it."""

    name: str
    id: str
