"""The helpdesk service interface: what views and policies may ask of any helpdesk adapter.

``TicketService`` (ServiceDesk Plus v3) implements it today; a Zoho Desk adapter will implement the same.
Callers speak only the types of :mod:`.model` and catch only :mod:`zoho_gateway.errors` exceptions.

Errors every method may raise (as for ``create``/``get``):

- ``ZohoUnavailable`` and its subclasses (503, ``Retry-After``): Zoho could not be reached and nothing
  was sent, Zoho answered 503 or 429, or no access token could be had;
- ``ZohoTimeout`` (504): a read got no answer in time (reads and idempotent writes are retried first);
- ``ZohoOutcomeUnknown`` (504, a ``ZohoTimeout``): a write that is NOT idempotent (a note, an upload)
  was sent and got no answer, so it may have been applied. It is never re-sent: a second note or a
  second copy of a file would be the result. Idempotent writes (update, close, reopen) give ``ZohoTimeout`` instead;
- ``ZohoAuthFailed`` (502): the credentials, scopes or portal are wrong;
- ``ZohoBadResponse`` (502): Zoho answered something that cannot be read, or refused a request for a
  reason the client cannot fix.

Per-ticket methods raise ``TicketNotFound`` (404) for an id Zoho does not know. Writes raise
``ZohoRejected`` (422, ``fields`` keyed by the client's field names where Zoho names one) for a value
Zoho refuses. Ticket ids and texts are validated by the caller (ids: 1-20 digits).

Texts are plain text both ways: what a client writes reads back the same (a text that would read as HTML
is escaped for Zoho), and Zoho's HTML is read as readable plain text with no markup left.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from ..errors import GatewayError, ZohoRejected
from .model import (
    Attachment,
    FullTicket,
    NewTicket,
    Note,
    PickKind,
    PickValue,
    Ticket,
    TicketChanges,
    TicketPage,
    TicketQuery,
    Upload,
)

#: How long before ``sent_at`` (the latest send: earlier ones were searched for and found absent) a ticket of
#: that send may be stamped. Zoho stamps ``created_time`` after the send reached it, so a ticket of the send
#: looks older than it only by how far our clock runs ahead of Zoho's: under NTP, well within a second; a
#: minute tolerates a badly kept clock. A candidate older than that is another create's (an identical ticket
#: of the same requester made outside the gateway; the gateway's own are dropped by ``policies.owners``), and
#: taking it as ours would lose this create, which never reaches Zoho; leaving it out risks at worst a second
#: ticket when our clock is more than a minute ahead of Zoho's. It was 300 s, which let a ticket made up to
#: five minutes before the send stand for it. The same for SDP and Desk.
WINDOW_BEFORE_SEND = 60.0
#: How far past our "now" a ticket of that send may be stamped: Zoho's clock may run ahead of ours.
CLOCK_SKEW = 300.0
#: Pages of 100 read at most per reconciliation search: a send matches one ticket, a few at worst;
#: thousands of identical tickets within minutes is not a case to page through Zoho's rate limit for.
MAX_PAGES = 10
#: Pages read at most of a ticket's notes or attachments, or of a pick list: 5,000 items at 100 a page.
#: Past that the list is cut (and a warning logged) rather than read at any cost.
MAX_LIST_PAGES = 50


def created_window_ms(sent_at: float) -> tuple[int, int]:
    """(start, end) in epoch ms in which a ticket of the send at ``sent_at`` may be stamped: from
    ``WINDOW_BEFORE_SEND`` before ``sent_at`` to ``CLOCK_SKEW`` after now (``find_created`` by content)."""
    end_ms = int((time.time() + CLOCK_SKEW) * 1000)
    # min(): a wall clock stepped back since the send must not turn the window inside out.
    start_ms = min(int((sent_at - WINDOW_BEFORE_SEND) * 1000), end_ms)
    return start_ms, end_ms


def is_refusal(exc: GatewayError) -> bool:
    """Whether Zoho answered a refusal (a value refused, a 4xx) rather than failing or answering nonsense."""
    if isinstance(exc, ZohoRejected):
        return True
    status = exc.extra.get("upstream_status")
    return isinstance(status, int) and 400 <= status < 500


class HelpdeskService(Protocol):
    """Tickets in one helpdesk portal. Implementations are thread-safe."""

    @property
    def ref_field(self) -> str | None:
        """Where create references are stored in the helpdesk, or None (``find_created`` matches by content)."""
        ...

    def create(self, ticket: NewTicket, *, ref: str | None = None) -> tuple[str, Ticket]:
        """Create ``ticket``; its id and the ticket as the helpdesk now holds it (see ``TicketService.create``)."""
        ...

    def get(self, ticket_id: str) -> Ticket:
        """The seed view (five fields) of ``ticket_id``."""
        ...

    def find_created(self, ticket: NewTicket, *, ref: str, sent_at: float) -> list[str]:
        """The ids of the tickets a create of ``ticket`` may have made (see ``TicketService.find_created``)."""
        ...

    def find(self, query: TicketQuery) -> TicketPage:
        """One page of the tickets matching ``query``, sorted as it says.

        Client text reaches the helpdesk only as data (a JSON value in a structured query), never
        spliced into query syntax. A read: retried on time-outs and 429/502/503/504.
        """
        ...

    def get_full(self, ticket_id: str) -> FullTicket:
        """The full view of ``ticket_id``. Raises TicketNotFound."""
        ...

    def update(self, ticket_id: str, changes: TicketChanges) -> FullTicket:
        """Apply ``changes`` (only the fields given) and return the full view after them.

        Idempotent in effect: a re-send sets the same values, so a call without an answer is re-sent, and
        ends in ZohoTimeout (safe to send again) if none comes. No changes: the ticket is read, nothing
        sent. Raises TicketNotFound, ZohoRejected (an unknown priority, category, department or status
        name; a subject or description refused).
        """
        ...

    def add_note(self, ticket_id: str, text: str, *, show_to_requester: bool = False) -> str:
        """Add a note of plain ``text`` to ``ticket_id``; the new note's id.

        NOT idempotent: never re-sent once it may have arrived (ZohoOutcomeUnknown when no answer came:
        look at :meth:`list_notes` before adding it again). Raises TicketNotFound, ZohoRejected (``fields``
        naming ``text``).
        """
        ...

    def list_notes(self, ticket_id: str) -> list[Note]:
        """The notes of ``ticket_id`` in the helpdesk's order (oldest first in the sandbox), texts as plain
        text. Raises TicketNotFound."""
        ...

    def close(self, ticket_id: str, *, comments: str | None = None, resolution: str | None = None) -> FullTicket:
        """Close ``ticket_id`` and return the full view after it.

        ``resolution``, when given, becomes the ticket's resolution text (so ``technician_comments`` and
        ``resolution`` show it), also on a ticket that is already closed; it is set before the close, and
        stays set if the close then fails. ``comments`` are the closure comments (not stored when the
        ticket was closed already). Closing a closed ticket is not an error: the full view is returned.
        Idempotent in effect. Raises TicketNotFound, ZohoRejected (for example a closure rule of the portal,
        ``fields`` naming ``comments`` or ``resolution``).
        """
        ...

    def reopen(self, ticket_id: str) -> FullTicket:
        """Set ``ticket_id``'s status to Open and return the full view. Idempotent. Raises TicketNotFound."""
        ...

    def attach(self, ticket_id: str, uploads: Sequence[Upload]) -> list[Attachment]:
        """Attach ``uploads`` to ``ticket_id`` in one call; the attachments made, one per upload, in order.

        Each file is streamed from its ``stream`` in chunks, never read whole into memory; streams are read
        from where they stand and not closed. Raises as a whole: after an error no attachment of this call
        is known to exist. NOT idempotent: an upload that may have arrived is never re-sent
        (ZohoOutcomeUnknown: some or all files may then be attached; list them before sending again). It is
        re-sent only when nothing was done (no connection made, an expired token), and only if every stream
        can seek back; otherwise ZohoUnavailable. No uploads: nothing is sent, ``[]``. Raises
        TicketNotFound, ZohoRejected (a file Zoho refuses, ``fields`` naming ``file``).
        """
        ...

    def list_attachments(self, ticket_id: str) -> list[Attachment]:
        """The files attached to ``ticket_id``. Raises TicketNotFound."""
        ...

    def pick_values(self, kind: PickKind) -> list[PickValue]:
        """Every value of the pick list ``kind`` (all pages), in the helpdesk's order."""
        ...
