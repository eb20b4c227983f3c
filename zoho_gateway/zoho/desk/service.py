"""``DeskService``: tickets in one Zoho Desk portal behind the ``HelpdeskService`` interface.

The one place that knows the order of Desk calls (contact, then ticket; PATCH, then the full view). Speaks
the gateway's types (``zoho.model``) and raises only ``zoho_gateway.errors`` exceptions; an operation Desk
does not have raises ``NotSupportedByService`` (501).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ...errors import (
    GatewayError,
    NotSupportedByService,
    TicketNotFound,
    ZohoAuthFailed,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
    ZohoRejected,
    ZohoUnavailable,
)
from ..calling import CallObserver, TokenSource
from ..model import (
    Attachment,
    FullTicket,
    NameRef,
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
from ..retry import RetryPolicy
from ..search import same_field, same_text, text_forms
from ..service import MAX_LIST_PAGES, MAX_PAGES, HelpdeskService, created_window_ms, is_refusal
from ..transport import Transport
from . import wire
from .client import DeskClient
from .judge import Operation

log = logging.getLogger("zoho_gateway.zoho")

#: Desk's largest ``limit``; pages read at most per reconciliation search and per list of a ticket's items:
#: ``MAX_PAGES`` and ``MAX_LIST_PAGES``, as for SDP (``zoho.service``).
PAGE = 100
#: What the full view reads along with the ticket; the seed view needs only the assignee.
FULL_INCLUDE = "contacts,assignee,departments"
#: A Desk custom field's API name (``cf_gateway_ref``).
CUSTOM_FIELD = re.compile(r"^cf_[a-z0-9_]{1,60}$")


class DeskService:
    """Tickets in one Zoho Desk portal. Thread-safe (the client is; no state is kept between calls).

    ``department_id`` is the department new tickets go to unless the client names another. ``ref_field``
    names a Desk custom field (``cf_gateway_ref``, single line) that holds each create's reference, or None:
    then a create is found again by its content.
    """

    def __init__(
        self,
        *,
        base_url: str,
        org_id: str,
        department_id: str,
        tokens: TokenSource,
        transport: Transport,
        policy: RetryPolicy,
        ref_field: str | None = None,
        observe: CallObserver | None = None,
    ) -> None:
        if ref_field is not None and not CUSTOM_FIELD.match(ref_field):
            raise ValueError(
                f"a Zoho Desk ref_field is a custom field's API name like cf_gateway_ref, not {ref_field!r}"
            )
        if not department_id.strip():
            raise ValueError("a Zoho Desk portal needs its default department_id")
        self._client = DeskClient(
            base_url=base_url, org_id=org_id, transport=transport, tokens=tokens, policy=policy, observe=observe
        )
        self._department_id = department_id.strip()
        self._ref_field = ref_field

    @property
    def ref_field(self) -> str | None:
        """The custom field that holds create references, or None (find_created then matches by content)."""
        return self._ref_field

    # ---- create, read, reconcile --------------------------------------------------------------------------

    def create(self, ticket: NewTicket, *, ref: str | None = None) -> tuple[str, Ticket]:
        """Find or create the requester's contact, then create the ticket; its id and seed view.

        The error contract is ``TicketService.create``'s. Everything before the ticket's POST (the contact
        search and create, the department's id) creates no ticket: its failures are refusals (ZohoRejected,
        ZohoAuthFailed, a 4xx ZohoBadResponse) or else ZohoUnavailable, never "it may exist". The POST itself:
        ZohoUnavailable (nothing sent, 503, 429, no token); ZohoOutcomeUnknown (no answer, a 5xx other than
        503, a 2xx without a ticket): settle it with :meth:`find_created`; refusals as above (Desk refusing the
        ``ref_field`` is a ZohoBadResponse: the operator's setting, not the client's value).
        """
        with _nothing_created():
            contact_id = self._contact_for(ticket["requester_email"])
            department_id = self._department_for(ticket.get("department"))
        custom = {self._ref_field: ref} if self._ref_field is not None and ref is not None else None
        body = wire.create_body(ticket, department_id=department_id, contact_id=contact_id, custom_fields=custom)
        try:
            record = self._client.call("POST", self._client.url("tickets"), "create", body)
        except ZohoRejected as exc:
            if custom is not None and any(name.startswith("cf") for name in (exc.fields or {})):
                raise ZohoBadResponse(
                    f"Zoho Desk refused the reference field {self._ref_field}: check that tickets have this "
                    "single-line custom field",
                    upstream_status=422,
                    zoho_codes=exc.extra.get("zoho_codes", []),
                ) from exc
            raise
        if not isinstance(record, Mapping) or not isinstance(record.get("id"), (str, int)):
            raise ZohoOutcomeUnknown(
                "Zoho Desk answered without the ticket: the ticket may or may not have been created"
            )
        if wire.needs_assignee(record):
            record = self._with_assignee(record)
        simplified = wire.ticket(record)
        return simplified["ticket_id"], simplified

    def get(self, ticket_id: str) -> Ticket:
        """The seed view of ``ticket_id``: one GET with ``include=assignee``."""
        return wire.ticket(self._read(ticket_id, "assignee"))

    def find_created(self, ticket: NewTicket, *, ref: str, sent_at: float) -> list[str]:
        """The ids of the Desk tickets a create of ``ticket`` with reference ``ref`` may have made.

        With a ``ref_field``: a search ``customField1=<field>:<ref>``, kept when the field is exactly ``ref``.
        Without: a search by the requester's ``email``, the ``subject`` and ``createdTimeRange`` (from
        ``WINDOW_BEFORE_SEND`` before ``sent_at`` to ``CLOCK_SKEW`` after now), kept when the email and subject
        are the same and the description (read per candidate: lists do not carry it) is the same text.
        ``[]``: no such ticket; two or more: ambiguous. Raises as a read (ZohoUnavailable, ZohoTimeout,
        ZohoAuthFailed, ZohoBadResponse, also past ``MAX_PAGES`` pages with fewer than two matches).
        """
        if self._ref_field is not None:
            field = self._ref_field
            params: dict[str, str | int] = {"customField1": f"{field}:{ref}"}
            found = self._search(params, lambda row: _holds_ref(row, field, ref))
        else:
            start_ms, end_ms = created_window_ms(sent_at)
            params = {
                "email": ticket["requester_email"],
                "subject": ticket["subject"],
                "createdTimeRange": f"{wire.iso_ms(start_ms)},{wire.iso_ms(end_ms)}",
            }
            found = self._search(params, lambda row: self._same_content(row, ticket))
        log.info(
            "searched Zoho Desk for a create",
            extra={"request_ref": ref, "search": "reference" if self._ref_field else "content", "found": len(found)},
        )
        return found

    # ---- the lifecycle --------------------------------------------------------------------------------------

    def find(self, query: TicketQuery) -> TicketPage:
        """One page: ``/tickets/search`` when a filter is given (its ``count`` says whether more follow), else
        ``/tickets`` (one row more than asked, or a one-row probe past a full page of 100, says it)."""
        given = {
            "email": query.get("requester_email"),
            "status": query.get("status"),
            "subject": query.get("q"),
            "ticketNumber": query.get("display_id"),
        }
        filters = {param: value for param, value in given.items() if value}
        start = (query["page"] - 1) * query["per_page"]
        base: dict[str, str | int] = {"include": "assignee", "sortBy": wire.SORTS[query["sort"]], **filters}
        keep = _matches(filters)
        if filters:
            data = self._client.call(
                "GET",
                self._client.url("tickets", "search", params={**base, "from": start, "limit": query["per_page"]}),
                "list",
            )
            items = wire.rows(data, "tickets")
            total = wire.count(data)
            more = total is not None and start + len(items) < total
        else:
            asked = min(query["per_page"] + 1, PAGE)
            data = self._client.call(
                "GET", self._client.url("tickets", params={**base, "from": start, "limit": asked}), "list"
            )
            items = wire.rows(data, "tickets")
            more = len(items) > query["per_page"]
            items = items[: query["per_page"]]
            if not more and len(items) == asked:  # a full page of Desk's largest size: look one row further
                probe = self._client.url("tickets", params={**base, "from": start + asked, "limit": 1})
                more = bool(wire.rows(self._client.call("GET", probe, "list"), "tickets"))
        return TicketPage(items=[wire.summary(row) for row in items if keep(row)], has_more=more)

    def get_full(self, ticket_id: str) -> FullTicket:
        """The full view: one GET with ``include=contacts,assignee,departments``."""
        return wire.full_ticket(self._read(ticket_id, FULL_INCLUDE))

    def update(self, ticket_id: str, changes: TicketChanges) -> FullTicket:
        """PATCH the fields given (a department by name is resolved to its id first), then read the full view.

        No changes: nothing is sent. Retried like a read (it sets values); ZohoTimeout when no answer came
        (sending it again is safe). A department name Desk does not have is ZohoRejected (``department``).
        """
        if not changes:
            return self.get_full(ticket_id)
        department = changes.get("department")
        department_id = self._department_for(department) if department is not None else None
        body = wire.update_body(changes, department_id=department_id)
        self._client.call("PATCH", self._client.url("tickets", ticket_id), "update", body)
        return self.get_full(ticket_id)

    def add_note(self, ticket_id: str, text: str, *, show_to_requester: bool = False) -> str:
        """A comment (``isPublic`` = ``show_to_requester``, plain text); its id. Sent once: ZohoOutcomeUnknown
        when no answer came (look at :meth:`list_notes` before adding it again)."""
        body = wire.comment_body(text, show_to_requester=show_to_requester)
        record = self._client.call("POST", self._client.url("tickets", ticket_id, "comments"), "note", body)
        return _added(record, "comment")

    def list_notes(self, ticket_id: str) -> list[Note]:
        """Every comment of ``ticket_id``, oldest first (``sortBy=commentedTime``), 100 a page."""
        return [wire.note(item) for item in self._children(ticket_id, "comments", "notes", "commentedTime")]

    def close(self, ticket_id: str, *, comments: str | None = None, resolution: str | None = None) -> FullTicket:
        """PATCH ``status: Closed`` (and ``resolution``, Desk's plain ticket field, when given); the full view.

        Desk has no closure comments: ``comments`` become a private comment, added only if the ticket holds no
        comment of the same text already, so a close sent again does not add it twice. When Desk refuses the
        PATCH, the ticket is read: if it is closed already and no resolution was asked for, that is success.
        """
        try:
            self._client.call("PATCH", self._client.url("tickets", ticket_id), "close", wire.close_body(resolution))
        except (ZohoRejected, ZohoBadResponse) as exc:
            if not is_refusal(exc) or resolution is not None:
                raise
            current = self._read(ticket_id, FULL_INCLUDE)
            if str(current.get("status", "")).lower() != "closed":
                raise
            log.info("close of a closed Desk ticket taken as done", extra={"ticket_id": ticket_id})
        if comments is not None and comments.strip():
            existing = {" ".join(note["text"].split()) for note in self.list_notes(ticket_id)}
            if not any(form in existing for form in text_forms(comments)):
                self.add_note(ticket_id, comments, show_to_requester=False)
        return self.get_full(ticket_id)

    def reopen(self, ticket_id: str) -> FullTicket:
        """PATCH ``status: Open`` (idempotent); the full view."""
        return self.update(ticket_id, {"status": {"name": "Open"}})

    def attach(self, ticket_id: str, uploads: Sequence[Upload]) -> list[Attachment]:
        """Attach each file, one streamed multipart call per file (Desk takes one file a call), in order.

        Not all-or-nothing as the interface hopes: when file k fails, files 1..k-1 are attached; the error
        raised then carries their ids in ``attached`` (``details.attached``). Each call is sent once
        (ZohoOutcomeUnknown when no answer came).
        """
        made: list[Attachment] = []
        url = self._client.url("tickets", ticket_id, "attachments")
        for upload in uploads:
            try:
                record = self._client.upload(url, upload)
                if not isinstance(record, Mapping) or record.get("id") in (None, ""):
                    raise ZohoOutcomeUnknown(
                        "Zoho Desk answered without the attachment: the file may or may not have been attached"
                    )
                made.append(wire.attachment(record))
            except ZohoRejected as exc:
                exc.fields = {"file": [m for messages in (exc.fields or {}).values() for m in messages]}
                _note_attached(exc, made)
                raise
            except GatewayError as exc:
                _note_attached(exc, made)
                raise
        return made

    def list_attachments(self, ticket_id: str) -> list[Attachment]:
        """Every attachment of ``ticket_id``, oldest first, 100 a page."""
        return [
            wire.attachment(item) for item in self._children(ticket_id, "attachments", "attachments", "createdTime")
        ]

    def pick_values(self, kind: PickKind) -> list[PickValue]:
        """Departments (``/departments``). Desk's API has no list of priorities, statuses or categories:
        NotSupportedByService (501)."""
        if kind != "departments":
            raise NotSupportedByService(f"Zoho Desk has no API list of {kind}")
        values: list[PickValue] = []
        for item in self._departments():
            value = wire.pick_value(item)
            if value is not None:
                values.append(value)
        return values

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _read(self, ticket_id: str, include: str) -> Mapping[str, Any]:
        record = self._client.call("GET", self._client.url("tickets", ticket_id, params={"include": include}), "get")
        if not isinstance(record, Mapping):
            raise ZohoBadResponse("Zoho Desk answered a ticket read without the ticket")
        return record

    def _with_assignee(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """The created ticket with its assignee's name (an assignment rule may have set one); the create's own
        answer if that read fails: the ticket exists, and a failed read must not say otherwise."""
        try:
            return self._read(str(record["id"]), "assignee")
        except GatewayError:
            log.warning("created Desk ticket read back without its assignee", extra={"ticket_id": str(record["id"])})
            return record

    def _contact_for(self, email: str) -> str:
        """The id of the contact with ``email``: found by a search, or created (searched again if Desk refuses
        the create because another call created it meanwhile)."""
        found = self._find_contact(email)
        if found is not None:
            return found
        try:
            record = self._client.call("POST", self._client.url("contacts"), "contact_create", wire.contact_body(email))
        except ZohoRejected:
            found = self._find_contact(email)  # a concurrent create of the same address, refused as a duplicate
            if found is None:
                raise
            return found
        if not isinstance(record, Mapping):
            raise ZohoUnavailable(
                "Zoho Desk answered a contact create without the contact; no ticket was created", retry_after=5
            )
        return wire.record_id(record, "contact")

    def _find_contact(self, email: str) -> str | None:
        data = self._client.call(
            "GET", self._client.url("contacts", "search", params={"email": email, "limit": 10}), "contacts"
        )
        wanted = email.strip().casefold()
        for row in wire.rows(data, "contacts"):
            if str(row.get("email") or "").strip().casefold() == wanted:
                return wire.record_id(row, "contact")
        return None

    def _departments(self) -> list[Mapping[str, Any]]:
        """Every department, 100 a page (up to ``MAX_LIST_PAGES`` pages)."""
        found: list[Mapping[str, Any]] = []
        for page in range(MAX_LIST_PAGES):
            url = self._client.url("departments", params={"from": page * PAGE, "limit": PAGE})
            items = wire.rows(self._client.call("GET", url, "meta"), "departments")
            found.extend(items)
            if len(items) < PAGE:
                return found
        log.warning("list cut at its page limit", extra={"list": "departments", "pages": MAX_LIST_PAGES})
        return found

    def _department_for(self, department: NameRef | None) -> str:
        """The portal's default department, or the id of the one named (ZohoRejected ``department`` if none)."""
        if department is None:
            return self._department_id
        wanted = department["name"].strip().casefold()
        for item in self._departments():
            if str(item.get("name") or "").strip().casefold() == wanted and item.get("id") not in (None, ""):
                return str(item["id"])
        raise ZohoRejected(
            f"Zoho Desk has no department named {department['name']!r}",
            fields={"department": [f"no department named {department['name']!r}"]},
        )

    def _children(self, ticket_id: str, kind: str, operation: Operation, sort: str) -> Iterator[Mapping[str, Any]]:
        """The items of every page of ``/tickets/{id}/<kind>``, up to ``MAX_LIST_PAGES`` pages."""
        for page in range(MAX_LIST_PAGES):
            params: dict[str, str | int] = {"from": page * PAGE, "limit": PAGE, "sortBy": sort}
            items = wire.rows(
                self._client.call("GET", self._client.url("tickets", ticket_id, kind, params=params), operation), kind
            )
            yield from items
            if len(items) < PAGE:
                return
        log.warning("list cut at its page limit", extra={"list": kind, "pages": MAX_LIST_PAGES})

    def _search(self, params: dict[str, str | int], keep: Callable[[Mapping[str, Any]], bool]) -> list[str]:
        """The ids of the tickets the search finds that ``keep`` accepts, oldest first."""
        found: list[str] = []
        for page in range(MAX_PAGES):
            query: dict[str, str | int] = {**params, "from": page * PAGE, "limit": PAGE, "sortBy": "createdTime"}
            data = self._client.call("GET", self._client.url("tickets", "search", params=query), "list")
            items = wire.rows(data, "tickets")
            for row in items:
                ticket_id = wire.record_id(row, "ticket")
                if ticket_id not in found and keep(row):
                    found.append(ticket_id)
            total = wire.count(data)
            if len(items) < PAGE or (total is not None and (page + 1) * PAGE >= total):
                return found
        if len(found) >= 2:
            return found
        log.warning("reconciliation search has too many candidates", extra={"pages": MAX_PAGES})
        raise ZohoBadResponse(f"Zoho Desk holds more than {MAX_PAGES * PAGE} candidate tickets")

    def _same_content(self, row: Mapping[str, Any], ticket: NewTicket) -> bool:
        """Whether the row is ``ticket``: email and subject checked again (Desk's subject search matches a part),
        then the description, read in full when the row lacks it."""
        if not same_field(row.get("email"), ticket["requester_email"]):
            return False
        if not same_field(row.get("subject"), ticket["subject"]):
            return False
        description = row.get("description")
        if not isinstance(description, str):
            try:
                description = self._read(wire.record_id(row, "ticket"), "assignee").get("description")
            except TicketNotFound:
                return False
        return same_text(ticket["description"], description if isinstance(description, str) else "")


class _nothing_created:
    """Within it (the calls before a create's POST), every failure says "no ticket was created": refusals stay
    as they are, anything else (no answer, a server error, nonsense) becomes ZohoUnavailable."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, GatewayError):
            return
        if isinstance(exc, (ZohoUnavailable, ZohoRejected, ZohoAuthFailed)):
            return
        if isinstance(exc, ZohoBadResponse) and is_refusal(exc):
            return
        raise ZohoUnavailable(
            f"Zoho Desk failed before the ticket was sent ({exc.code}); no ticket was created", retry_after=5
        ) from exc


def _added(record: Any, what: str) -> str:
    if not isinstance(record, Mapping) or record.get("id") in (None, ""):
        raise ZohoOutcomeUnknown(f"Zoho Desk answered without the {what}: it may or may not have been added")
    return wire.record_id(record, what)


def _note_attached(exc: GatewayError, made: list[Attachment]) -> None:
    if made:
        exc.extra["attached"] = [item["attachment_id"] for item in made]


def _matches(filters: Mapping[str, str]) -> Callable[[Mapping[str, Any]], bool]:
    """The filters checked on each row as data: Desk reads ``*`` in a search value as a wildcard and a comma in
    ``status`` as a list, so a row it returned for such a reading is dropped here."""

    def keep(row: Mapping[str, Any]) -> bool:
        for param, value in filters.items():
            stored = row.get(param)
            if stored is None:
                continue  # a field the row does not carry cannot disprove the match Desk made
            text, probe = str(stored).casefold(), value.casefold()
            if param == "subject":
                if probe not in text:
                    return False
            elif text != probe:
                return False
        return True

    return keep


def _holds_ref(row: Mapping[str, Any], field: str, ref: str) -> bool:
    """Whether the row's custom field is exactly ``ref``; a row without ``cf`` is trusted to match."""
    custom = row.get("cf")
    if not isinstance(custom, Mapping) or field not in custom:
        return True
    return str(custom[field]) == ref


def _conforms(service: DeskService) -> HelpdeskService:
    """Makes mypy check that DeskService implements the HelpdeskService protocol."""
    return service
