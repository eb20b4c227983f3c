"""The ticket service: the one place that knows the order transform ▸ client ▸ parser.

Views and policies call it through :class:`.service.HelpdeskService` (``create``, ``get``, ``find_created``
and the lifecycle: find, full view, update, notes, close, reopen, attachments, pick lists) with the
gateway's own types (``zoho.model``) and never see Zoho's field names. Every method raises only
``zoho_gateway.errors`` exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import TicketNotFound, ZohoBadResponse, ZohoRejected
from . import entities, search
from .client import ServiceDeskClient
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
from .parser import simplify
from .service import MAX_LIST_PAGES, MAX_PAGES, HelpdeskService, created_window_ms, is_refusal
from .transform import close_input_data, note_input_data, resolution_input_data, to_input_data, update_input_data

log = logging.getLogger("zoho_gateway.zoho")

#: SDP's field names in a refusal -> the client's, per call (the others are the same in both).
NOTE_FIELDS = {"description": "text"}
CLOSE_FIELDS = {"closure_comments": "comments", "closure_info": "comments", "content": "resolution"}
UPLOAD_FIELDS = {"filename": "file"}

#: Whether a row of the search results is the ticket sought.
Check = Callable[[Mapping[str, Any]], bool]


class TicketService:
    """Tickets in one ServiceDesk Plus portal. Thread-safe (the client is).

    ``ref_field`` names the SDP UDF (``udf_sline_1``) that holds the gateway's reference of each create,
    or None when the portal has none: then a create is found again by its content.
    """

    #: Rows asked for per page of a ticket's notes or attachments and of pick lists (SDP's most).
    list_page_size = search.MAX_ROW_COUNT

    def __init__(self, client: ServiceDeskClient, *, ref_field: str | None = None) -> None:
        if ref_field is not None:
            search.udf_field(ref_field)  # ValueError now rather than a refused search later
        self._client = client
        self._ref_field = ref_field

    @property
    def ref_field(self) -> str | None:
        """The UDF that holds create references, or None (find_created then matches by content)."""
        return self._ref_field

    def create(self, ticket: NewTicket, *, ref: str | None = None) -> tuple[str, Ticket]:
        """Create ``ticket`` in Zoho; its id and the ticket as Zoho now holds it.

        With a ``ref_field`` configured and ``ref`` given, ``ref`` is written into that UDF, so that
        :meth:`find_created` can find this very ticket. Never re-sends a create that may have arrived.
        Raises, by what the caller may do next:

        - nothing was created, safe to send again: ``ZohoUnavailable`` and its subclasses
          (``ZohoRateLimited``, ``ZohoTokenUnavailable``, ``ZohoTokenThrottled``): the connection was never
          made, Zoho answered 503 or 429, or no access token could be had;
        - the ticket may exist: ``ZohoOutcomeUnknown``: sent and no answer (read time-out, connection
          reset), a 5xx other than 503 after sending (500, 502, 504, SDP's 4004), or a 2xx answer that
          cannot be read (not JSON, no envelope, no entity). Settle it with :meth:`find_created`;
        - refused for good: ``ZohoRejected`` (a value of the ticket), ``ZohoAuthFailed`` (credentials,
          scopes, permissions), ``ZohoBadResponse`` (any other refusal, a 4xx; also Zoho refusing the
          reference field itself, which is the operator's setting, not the client's value).
        """
        udf = {self._ref_field: ref} if self._ref_field is not None and ref is not None else None
        try:
            entity = self._client.create_request(to_input_data(ticket, udf_fields=udf))
        except ZohoRejected as exc:
            if udf is not None and _blames(exc, self._ref_field):
                # The portal has no such UDF, or it does not take text: every create would fail the same way,
                # and the client can do nothing about it.
                # SDP answers a refused value with HTTP 400 (ZOHO-API.md §1.6); saying so marks it a 4xx
                # refusal for callers, which never expect a ticket from it.
                raise ZohoBadResponse(
                    f"Zoho refused the reference field ZOHO_REF_FIELD={self._ref_field}: check that requests "
                    "have this single-line UDF",
                    upstream_status=400,
                    zoho_codes=exc.extra.get("zoho_codes", []),
                ) from exc
            raise
        simplified = simplify(entity)
        return simplified["ticket_id"], simplified

    def get(self, ticket_id: str) -> Ticket:
        """The ticket with id ``ticket_id`` (digits, validated by the caller). Raises TicketNotFound and the above."""
        return simplify(self._client.get_request(ticket_id))

    def find_created(self, ticket: NewTicket, *, ref: str, sent_at: float) -> list[str]:
        """The ids of the Zoho tickets that a create of ``ticket`` with reference ``ref`` may have made.

        ``sent_at`` is the wall-clock time (``time.time()``) of the first send. ``[]`` means Zoho holds no
        such ticket, so a create may be sent again; one id is the ticket; two or more are ambiguous and
        must not be guessed. Call it once the send has ended (answer, error or time-out): a create Zoho is
        still processing may land after the search.

        With a ``ref_field``: the tickets whose field is exactly ``ref``. Without: the tickets of the same
        requester with the same subject, created from ``WINDOW_BEFORE_SEND`` before ``sent_at`` to
        ``CLOCK_SKEW`` after now, whose description is the same text (Zoho may store it as HTML).

        Raises ZohoUnavailable, ZohoTimeout, ZohoAuthFailed or ZohoBadResponse when the search cannot be
        done, or not completely (more than ``MAX_PAGES`` pages with fewer than two matches): the outcome
        then stays unknown.
        """
        if self._ref_field is not None:
            field = self._ref_field
            found = self._search(search.by_reference(field, ref), lambda entity: _holds_ref(entity, field, ref))
        else:
            start_ms, end_ms = created_window_ms(sent_at)
            criteria = search.by_content(ticket["requester_email"], ticket["subject"], start_ms, end_ms)
            found = self._search(criteria, lambda entity: self._same_content(entity, ticket))
        log.info(
            "searched Zoho for a create",
            extra={"request_ref": ref, "search": "reference" if self._ref_field else "content", "found": len(found)},
        )
        return found

    # ---- the lifecycle (see HelpdeskService for the contract of each) ---------------------------------

    def find(self, query: TicketQuery) -> TicketPage:
        """One page of the tickets matching ``query``: one list call, its ``has_more_rows`` as ``has_more``."""
        criteria = search.for_query(
            requester_email=query.get("requester_email"),
            status=query.get("status"),
            subject_text=query.get("q"),
            display_id=query.get("display_id"),
        )
        info = search.page_of(criteria, page=query["page"], per_page=query["per_page"], sort=query["sort"])
        rows, more = self._client.list_requests(info)
        return TicketPage(items=[entities.summary(row) for row in rows], has_more=more)

    def get_full(self, ticket_id: str) -> FullTicket:
        """The full view of ``ticket_id`` (one GET)."""
        return entities.full_ticket(self._client.get_request(ticket_id))

    def update(self, ticket_id: str, changes: TicketChanges) -> FullTicket:
        """PUT the changed fields; the full view of the entity Zoho answers (read again if it answers none).

        No changes: nothing is sent, the ticket is read. Retried like a read when no answer comes (it sets
        values); ZohoTimeout when none came at all: the update may be applied, and sending it again is safe.
        """
        if not changes:
            return self.get_full(ticket_id)
        entity = self._client.update_request(ticket_id, update_input_data(changes))
        return entities.full_ticket(entity if entity is not None else self._client.get_request(ticket_id))

    def add_note(self, ticket_id: str, text: str, *, show_to_requester: bool = False) -> str:
        """POST the note (sent once: never re-sent after it may have arrived); its id.

        ZohoOutcomeUnknown when no answer came: look at :meth:`list_notes` before adding it again.
        """
        with _renamed(NOTE_FIELDS):
            note = self._client.add_note(ticket_id, note_input_data(text, show_to_requester=show_to_requester))
        return entities.note(note)["note_id"]

    def list_notes(self, ticket_id: str) -> list[Note]:
        """Every note of ``ticket_id``, as Zoho orders them, read 100 a page."""
        return [entities.note(item) for item in self._children(ticket_id, "notes")]

    def close(self, ticket_id: str, *, comments: str | None = None, resolution: str | None = None) -> FullTicket:
        """Close ``ticket_id``: first its resolution (when given), then the close call with ``comments``.

        The resolution goes first so that a portal whose closure rules ask for one can close, and so that
        it is set on a ticket that is already closed too. When Zoho refuses the close, the ticket is read:
        if it is closed (already, or by an earlier attempt whose answer was lost) that is success, and its
        full view is returned; otherwise the refusal is raised (ZohoRejected for a value or closure rule,
        ZohoBadResponse for another refusal). If the close fails after the resolution was set, the
        resolution stays: sending the close again is safe.
        """
        if resolution is not None:
            with _renamed(CLOSE_FIELDS):
                self._client.set_resolution(ticket_id, resolution_input_data(resolution))
        try:
            with _renamed(CLOSE_FIELDS):
                entity = self._client.close_request(ticket_id, close_input_data(comments))
        except (ZohoRejected, ZohoBadResponse) as exc:
            if not is_refusal(exc):
                raise
            current = self._client.get_request(ticket_id)
            if not entities.is_closed(current):
                raise
            log.info("close of a closed ticket taken as done", extra={"ticket_id": ticket_id})
            return entities.full_ticket(current)
        if entity is None or (resolution is not None and not isinstance(entity.get("resolution"), Mapping)):
            entity = self._client.get_request(ticket_id)  # the answer does not show all that was done
        return entities.full_ticket(entity)

    def reopen(self, ticket_id: str) -> FullTicket:
        """Set the status to Open (an update: idempotent); the full view."""
        return self.update(ticket_id, {"status": {"name": "Open"}})

    def attach(self, ticket_id: str, uploads: Sequence[Upload]) -> list[Attachment]:
        """Upload every file in one streamed multipart call (sent once); the attachments Zoho made.

        No uploads: nothing is sent. ZohoOutcomeUnknown when no answer came: look at
        :meth:`list_attachments` before sending the files again.
        """
        if not uploads:
            return []
        with _renamed(UPLOAD_FIELDS):
            files = self._client.upload(ticket_id, uploads)
        return [entities.attachment(item) for item in files]

    def list_attachments(self, ticket_id: str) -> list[Attachment]:
        """Every attachment of ``ticket_id``, read 100 a page."""
        return [entities.attachment(item) for item in self._children(ticket_id, "attachments")]

    def pick_values(self, kind: PickKind) -> list[PickValue]:
        """Every value of the pick list, all pages (SDP serves 10 a page unless asked for more: 100 are)."""
        values: list[PickValue] = []
        for item in self._pages(lambda info: self._client.list_values(kind, info), kind):
            value = entities.pick_value(item)
            if value is not None:
                values.append(value)
        return values

    def _children(self, ticket_id: str, kind: str) -> Iterator[Mapping[str, Any]]:
        return self._pages(lambda info: self._client.list_children(ticket_id, kind, info), kind)

    def _pages(
        self, read: Callable[[dict[str, Any]], tuple[list[Mapping[str, Any]], bool]], what: str
    ) -> Iterator[Mapping[str, Any]]:
        """The items of every page ``read`` gives, up to ``MAX_LIST_PAGES`` pages."""
        start = 1
        for _ in range(MAX_LIST_PAGES):
            items, more = read(search.paging(start, self.list_page_size))
            yield from items
            if not more or not items:
                return
            start += self.list_page_size
        log.warning("list cut at its page limit", extra={"list": what, "pages": MAX_LIST_PAGES})

    def _search(self, criteria: list[search.Criterion], keep: Check) -> list[str]:
        """The ids of the tickets matching ``criteria`` that ``keep`` accepts, in creation order."""
        found: list[str] = []
        start = 1
        for _ in range(MAX_PAGES):
            info = search.list_info(criteria, start_index=start, row_count=search.MAX_ROW_COUNT)
            entities, more = self._client.list_requests(info)
            for entity in entities:
                ticket_id = str(entity["id"])
                if ticket_id not in found and keep(entity):
                    found.append(ticket_id)
            if not more:
                return found
            start += search.MAX_ROW_COUNT
        if len(found) >= 2:
            return found  # ambiguous whatever the remaining pages hold
        log.warning("reconciliation search has too many candidates", extra={"pages": MAX_PAGES})
        raise ZohoBadResponse(f"Zoho holds more than {MAX_PAGES * search.MAX_ROW_COUNT} candidate tickets")

    def _same_content(self, entity: Mapping[str, Any], ticket: NewTicket) -> bool:
        """Whether ``entity`` (a list row) is ``ticket``: requester, subject and description.

        Zoho's criteria already chose requester, subject and time; they are checked again where the row
        carries them, in case Zoho ignored a criterion it does not support. The description is not a
        criterion: rows that lack it (list views may trim it) are read in full.
        """
        if not search.same_field(_requester_email(entity), ticket["requester_email"]):
            return False
        if not search.same_field(entity.get("subject"), ticket["subject"]):
            return False
        description = entity.get("description")
        if not isinstance(description, str):
            try:
                description = self._client.get_request(str(entity["id"])).get("description")
            except TicketNotFound:
                return False  # deleted since the search listed it: it is not there to be the ticket
        return search.same_text(ticket["description"], description if isinstance(description, str) else "")


class _renamed:
    """Within it, a ZohoRejected names the client's fields (``{"description": "text"}``) instead of SDP's."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = names

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, ZohoRejected) and exc.fields:
            fields: dict[str, list[str]] = {}
            for name, messages in exc.fields.items():
                fields.setdefault(self._names.get(name, name), []).extend(messages)
            exc.fields = fields


def _conforms(service: TicketService) -> HelpdeskService:
    """Makes mypy check that TicketService implements the HelpdeskService protocol."""
    return service


def _blames(exc: ZohoRejected, field: str | None) -> bool:
    """Whether Zoho's refusal names the reference UDF: ``udf_sline_1``, ``udf_fields.udf_sline_1`` or ``udf_fields``."""
    names = {"udf_fields", f"{field}", f"udf_fields.{field}"}
    return any(name in names for name in exc.fields or {})


def _requester_email(entity: Mapping[str, Any]) -> Any:
    requester = entity.get("requester")
    return requester.get("email_id") if isinstance(requester, Mapping) else None


def _holds_ref(entity: Mapping[str, Any], field: str, ref: str) -> bool:
    """Whether the row's UDF holds exactly ``ref`` (SDP's ``is`` may ignore case; references do not).

    The UDF is read from ``udf_fields`` or, since SDP build 15200, from the top level; a row that carries
    neither is trusted to match the criterion that chose it.
    """
    udf = entity.get("udf_fields")
    value = udf.get(field) if isinstance(udf, Mapping) and field in udf else entity.get(field)
    return value is None or str(value) == ref
