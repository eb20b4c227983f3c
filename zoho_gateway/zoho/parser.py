"""Pure parser: judges every ServiceDesk Plus answer by its body and simplifies the ticket entity.

One function, :func:`judge`, maps (HTTP status, body) to the decoded JSON or to a typed
:mod:`zoho_gateway.errors` exception; :func:`simplify` turns the 70-field entity into the 5-field ticket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from ..errors import (
    GatewayError,
    TicketNotFound,
    ZohoAuthFailed,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
    ZohoRateLimited,
    ZohoRejected,
    ZohoUnavailable,
)
from .model import Ticket

#: What a call does; it decides what a failure means.
#:
#: - reads: ``get`` (one request), ``list`` (requests), ``notes``, ``attachments`` (a request's), ``meta``
#:   (a pick list);
#: - writes that add something: ``create``, ``note``, ``upload``. Sent twice, they add it twice, so one that
#:   may have arrived ends with "it may exist" (ZohoOutcomeUnknown) and is never re-sent;
#: - writes that set values: ``update``, ``close``, ``resolution``. Sent twice, Zoho ends the same, so
#:   their failures read like a read's (a 5xx is ZohoBadResponse, no answer ZohoTimeout).
Operation = Literal[
    "create", "get", "list", "update", "close", "resolution", "note", "notes", "upload", "attachments", "meta"
]

#: Writes that add something each time they arrive (see ``Operation``).
ADDING = frozenset({"create", "note", "upload"})
#: Every write: a refused value is the client's to fix (ZohoRejected).
WRITES = ADDING | {"update", "close", "resolution"}
#: Calls on one request (``/requests/{id}...``): a 404 or 4007 is about that request (TicketNotFound).
PER_TICKET = frozenset({"get", "update", "close", "resolution", "note", "notes", "upload", "attachments"})

#: What an adding write's caller is told when Zoho may have done it.
UNKNOWN_OUTCOMES: dict[str, str] = {
    "create": "the ticket may or may not have been created",
    "note": "the note may or may not have been added; look at the ticket's notes before adding it again",
    "upload": "the files may or may not have been attached; list the ticket's attachments before sending them again",
}


class TokenRejected(Exception):
    """Zoho refused the access token: SDP's 401; Desk's INVALID_OAUTH, or a 401 without a known errorCode.

    Handled by :class:`.calling.Caller` (refresh, retry once), for both clients.
    """


#: SDP detail codes that mean "a value the client supplied was refused": the client can fix these.
CLIENT_VALUE_CODES = frozenset({4001, 4003, 4008, 4009, 4012, 4014, 4016, 4021})
#: SDP detail codes that mean our credentials lack a permission or licence: an operator must act.
PERMISSION_CODES = frozenset({4002, 4022, 7001})

#: Statuses a proxy in front of Zoho (SDP or Desk) answers when it lost or stopped waiting for Zoho's answer
#: (bad gateway, gateway time-out): after a create was sent, they say nothing about whether it was stored.
PROXY_GAVE_UP = frozenset({502, 504})
#: SDP's "Internal error": the server failed while handling the call, possibly after storing the ticket.
INTERNAL_ERROR_CODE = 4004

#: The longest text of Zoho's (a message, a field name) passed on to a client, SDP's or Desk's.
MAX_ZOHO_MESSAGE = 300

#: Told to a create's caller when Zoho may hold the ticket; the queue settles it by searching Zoho.
UNKNOWN_OUTCOME = UNKNOWN_OUTCOMES["create"]


def parse_retry_after(value: str | None, *, default: int = 1, cap: int = 60) -> int:
    """Seconds from a ``Retry-After`` header (delta-seconds form); ``default`` when absent or unparsable."""
    if value:
        try:
            return max(1, min(cap, int(float(value.strip()))))  # 0 would tell clients to hammer us
        except ValueError:
            pass
    return default


def decode_body(body: bytes) -> Any:
    """The JSON of an answer body, or None when it is not JSON (SDP's and Desk's judges alike)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _status_entries(envelope: Any) -> list[Mapping[str, Any]]:
    """``response_status`` is an object for single entities and a list for list calls."""
    if isinstance(envelope, Mapping):
        return [envelope]
    if isinstance(envelope, list):
        return [e for e in envelope if isinstance(e, Mapping)]
    return []


def _failed(entries: list[Mapping[str, Any]]) -> bool:
    for entry in entries:
        status = str(entry.get("status", "")).lower()
        code = entry.get("status_code")
        if status == "failed" or (isinstance(code, int) and code >= 4000):
            return True
    return False


def _messages(entries: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for entry in entries:
        messages = entry.get("messages")
        if isinstance(messages, list):
            found.extend(m for m in messages if isinstance(m, Mapping))
    return found


def zoho_text(value: Any) -> str:
    """A value of Zoho's as text, cut to ``MAX_ZOHO_MESSAGE``; "" for None (SDP's and Desk's judges alike)."""
    return str(value)[:MAX_ZOHO_MESSAGE] if value is not None else ""


def _failure(http_status: int, messages: list[Mapping[str, Any]], operation: Operation) -> GatewayError:
    codes = [m.get("status_code") for m in messages]
    zoho_codes = [c for c in codes if isinstance(c, int)]
    # "Not found" is about the ticket only on a read; on a create, 4007 ("Invalid URL") means our base URL is wrong.
    # On a read the id is the only input, so 4001 ("the id given does not exist") is not found too.
    if operation == "get" and (4007 in zoho_codes or 4001 in zoho_codes or http_status == 404):
        return TicketNotFound("No ticket with that id exists in Zoho")
    if operation in PER_TICKET and (4007 in zoho_codes or http_status == 404):
        # The id is in the path: "invalid URL" is that request being unknown.
        return TicketNotFound("No ticket with that id exists in Zoho")
    if 4015 in zoho_codes or http_status == 429:
        return ZohoRateLimited("Zoho is rate-limiting API calls; retry later", retry_after=5)
    if any(c in PERMISSION_CODES for c in zoho_codes) or http_status == 403:
        return ZohoAuthFailed("Zoho refused the gateway's permissions for this operation", zoho_codes=zoho_codes)
    rejected = [m for m in messages if m.get("status_code") in CLIENT_VALUE_CODES]
    if rejected and operation in WRITES:
        fields: dict[str, list[str]] = {}
        for m in rejected:
            field = zoho_text(m.get("field")) or "_ticket"
            fields.setdefault(field, []).append(zoho_text(m.get("message")) or f"Zoho code {m.get('status_code')}")
        first = rejected[0]
        return ZohoRejected(
            f"Zoho rejected the ticket: {zoho_text(first.get('message')) or 'invalid value'}",
            fields=fields,
            zoho_codes=zoho_codes,
        )
    if operation in ADDING and (http_status >= 500 or INTERNAL_ERROR_CODE in zoho_codes):
        # A 5xx (or SDP's "internal error") after the write was sent says nothing about whether it was
        # stored before the failure: a proxy's 502/504, or SDP failing after its commit.
        return ZohoOutcomeUnknown(
            f"Zoho failed with a server error after the call was sent: {UNKNOWN_OUTCOMES[operation]}",
            upstream_status=http_status,
            zoho_codes=zoho_codes,
        )
    if http_status >= 500:
        return ZohoBadResponse("Zoho failed with a server error", upstream_status=http_status, zoho_codes=zoho_codes)
    return ZohoBadResponse("Zoho refused the call", upstream_status=http_status, zoho_codes=zoho_codes)


def judge(http_status: int, body: bytes, operation: Operation, retry_after: str | None = None) -> dict[str, Any]:
    """Decide from the status and the body whether a ServiceDesk Plus answer is a success.

    Returns the decoded JSON object on success. Raises ``TokenRejected`` on HTTP 401 and a
    :class:`GatewayError` subclass otherwise. For every operation: ``ZohoRateLimited`` (429, 4015) and
    ``ZohoUnavailable`` (503): nothing was done, retry later; ``ZohoAuthFailed`` (403, 4002);
    ``ZohoBadResponse`` (a refusal we cannot attribute to a value: Zoho will refuse it again).

    Calls on one request (``PER_TICKET``): ``TicketNotFound`` for 4007 or a 404 (and 4001 on a ``get``).
    Reads and value-setting writes: ``ZohoUnavailable`` on 504 too, ``ZohoBadResponse`` for anything
    unusable (not JSON, a 5xx, no envelope).

    Every write: ``ZohoRejected`` (a client value refused). Adding writes (``create``, ``note``, ``upload``):
    ``ZohoOutcomeUnknown`` whenever the write may have been stored: a 502 or 504 whatever the body (a
    proxy's), another 5xx other than 503 unless SDP's envelope names a refusal (a value, a permission, the
    rate limit), SDP's 4004 "internal error", and a 2xx answer that cannot be read (not JSON, no envelope).
    A 4xx, 1xx or 3xx never stores anything.
    """
    if http_status == 401:
        raise TokenRejected()
    data = decode_body(body)
    if http_status == 429:
        raise ZohoRateLimited(
            "Zoho is rate-limiting API calls; retry later", retry_after=parse_retry_after(retry_after, default=5)
        )
    if http_status in PROXY_GAVE_UP and operation in ADDING:
        # A proxy before SDP lost SDP's answer, or gave up waiting for it: SDP may have stored the write,
        # and the body is the proxy's, so it cannot say otherwise.
        raise ZohoOutcomeUnknown(
            f"Zoho's front end answered {http_status} after the call was sent: {UNKNOWN_OUTCOMES[operation]}",
            upstream_status=http_status,
        )
    if http_status in (503, 504):
        # Zoho (or a proxy before it) is overloaded or timed out: whatever the body says, retry later. A 503
        # is refused before any work is done, so it means the same for a create.
        raise ZohoUnavailable("Zoho is temporarily unavailable", retry_after=parse_retry_after(retry_after, default=5))
    if operation in ADDING and http_status == 408:
        # A proxy's "request timeout": it never received the whole request, so it passed nothing on.
        raise ZohoUnavailable("Zoho's proxy timed out receiving the call; nothing was done", retry_after=5)
    if not isinstance(data, Mapping):
        if http_status == 404 and operation in PER_TICKET:
            raise TicketNotFound("No ticket with that id exists in Zoho")
        if operation in ADDING and (200 <= http_status < 300 or http_status >= 500):
            raise ZohoOutcomeUnknown(
                f"Zoho answered with a body that is not JSON: {UNKNOWN_OUTCOMES[operation]}",
                upstream_status=http_status,
            )
        raise ZohoBadResponse("Zoho answered with a body that is not JSON", upstream_status=http_status)
    entries = _status_entries(data.get("response_status"))
    if _failed(entries) or http_status >= 300:
        raise _failure(http_status, _messages(entries), operation)
    if not entries:
        if operation in ADDING:
            raise ZohoOutcomeUnknown(
                f"Zoho answered without a response_status: {UNKNOWN_OUTCOMES[operation]}",
                upstream_status=http_status,
            )
        raise ZohoBadResponse("Zoho answered without a response_status", upstream_status=http_status)
    return dict(data)


def request_entity(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``request`` entity of a judged answer; ZohoBadResponse when it is missing or has no id."""
    entity = answer.get("request")
    if not isinstance(entity, Mapping) or not isinstance(entity.get("id"), (str, int)):
        raise ZohoBadResponse("Zoho answered without a request entity")
    return entity


def created_entity(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``request`` entity of a judged create answer; ZohoOutcomeUnknown when it is missing or has no id.

    Zoho said "success" but did not say what it stored: the ticket may well exist.
    """
    try:
        return request_entity(answer)
    except ZohoBadResponse:
        raise ZohoOutcomeUnknown(f"Zoho answered the create without a request entity: {UNKNOWN_OUTCOME}") from None


def request_list(answer: Mapping[str, Any], row_count: int) -> tuple[list[Mapping[str, Any]], bool]:
    """The ``requests`` of a judged list answer, and whether more pages follow.

    ``row_count`` is the page size asked for. More pages follow when ``list_info.has_more_rows`` says so;
    if Zoho leaves it out, when the page is full (a short page is the last one). Raises ZohoBadResponse
    when ``requests`` is not a list of objects each with an id: a page that cannot be read cannot prove
    that a ticket is absent.
    """
    entities = answer.get("requests")
    if not isinstance(entities, list) or not all(
        isinstance(e, Mapping) and isinstance(e.get("id"), (str, int)) for e in entities
    ):
        raise ZohoBadResponse("Zoho answered a list without a list of requests")
    info = answer.get("list_info")
    more = info.get("has_more_rows") if isinstance(info, Mapping) else None
    if not isinstance(more, bool):
        more = len(entities) >= row_count
    return list(entities), more


def entity_of(answer: Mapping[str, Any], *keys: str) -> Mapping[str, Any] | None:
    """The entity under the first of ``keys`` that holds an object with an id, or None (a write's answer
    need not echo what it changed)."""
    for key in keys:
        entity = answer.get(key)
        if isinstance(entity, Mapping) and isinstance(entity.get("id"), (str, int)):
            return entity
    return None


def entity_list(
    answer: Mapping[str, Any], keys: tuple[str, ...], row_count: int
) -> tuple[list[Mapping[str, Any]], bool]:
    """The items of a judged list answer under the first of ``keys`` present, and whether more pages follow.

    More follow when ``list_info.has_more_rows`` says so, else when the page is full (as :func:`request_list`).
    No key at all is an empty list (SDP may leave out an empty list); anything but a list of objects is
    ZohoBadResponse.
    """
    items: Any = []
    for key in keys:
        if key in answer:
            items = answer[key]
            break
    if items is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise ZohoBadResponse(f"Zoho answered a list without a list of {keys[0]}")
    info = answer.get("list_info")
    more = info.get("has_more_rows") if isinstance(info, Mapping) else None
    if not isinstance(more, bool):
        more = len(items) >= row_count
    return list(items), more


def _name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        name = value.get("name")
        return str(name) if name is not None else None
    return None


def simplify(entity: Mapping[str, Any]) -> Ticket:
    """The 5-field client view of an SDP request entity (pure; tolerant of nulls and missing keys)."""
    technician = entity.get("technician")
    if not isinstance(technician, Mapping):
        technician = {}
    resolution = entity.get("resolution")
    comments = resolution.get("content") if isinstance(resolution, Mapping) else None
    email = technician.get("email_id")
    return Ticket(
        ticket_id=str(entity["id"]),
        status=_name(entity.get("status")),
        technician_assigned=_name(technician) or "Unassigned",
        technician_contact_email=str(email) if email else None,
        technician_comments=str(comments) if comments else None,
    )
