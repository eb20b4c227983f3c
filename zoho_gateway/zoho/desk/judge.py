"""Pure judge of Zoho Desk v1 answers: (HTTP status, body, operation) to the decoded JSON or a typed error.

Desk answers a failure with ``{"errorCode", "message"}`` (validation failures add ``errors: [{fieldName,
errorType, errorMessage}]``, or ``fieldName``/``errorType`` at the top). The ``errorCode`` decides first
(ZOHO-API.md §2: Desk has been seen answering 403 with ``INVALID_OAUTH``), the HTTP status second, through
one table each (:data:`ERROR_CODES`, :func:`verdict_for_status`). No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ...errors import (
    GatewayError,
    TicketNotFound,
    ZohoAuthFailed,
    ZohoBadResponse,
    ZohoOutcomeUnknown,
    ZohoRateLimited,
    ZohoRejected,
    ZohoUnavailable,
)
from ..parser import PROXY_GAVE_UP, TokenRejected, decode_body, parse_retry_after, zoho_text

#: What a call does; it decides what a failure means (as for SDP, ``zoho.parser.Operation``).
#:
#: - reads: ``get``, ``list`` (tickets, also searched), ``notes`` (comments), ``attachments``, ``meta``
#:   (departments), ``contacts`` (a contact searched by the requester's email);
#: - writes that add something: ``create``, ``note`` (a comment), ``upload``, ``contact_create``. One that
#:   may have arrived ends with "it may exist" (ZohoOutcomeUnknown) and is never re-sent;
#: - writes that set values: ``update``, ``close`` (PATCH). Sent twice, Desk ends the same.
Operation = Literal[
    "create", "get", "list", "update", "close", "note", "notes", "upload", "attachments", "meta", "contacts",
    "contact_create",
]  # fmt: skip

ADDING = frozenset({"create", "note", "upload", "contact_create"})
WRITES = ADDING | {"update", "close"}
#: Calls on one ticket (``/tickets/{id}...``): a "not found" is about that ticket (TicketNotFound).
PER_TICKET = frozenset({"get", "update", "close", "note", "notes", "upload", "attachments"})
#: Calls whose refused values are the client's to fix (ZohoRejected): the writes, and the contact search
#: (its one value is the requester's email).
CLIENT_VALUES = WRITES | {"contacts"}

#: What an adding write's caller is told when Desk may have done it.
UNKNOWN_OUTCOMES: dict[str, str] = {
    "create": "the ticket may or may not have been created",
    "note": "the note may or may not have been added; look at the ticket's notes before adding it again",
    "upload": "the file may or may not have been attached; list the ticket's attachments before sending it again",
    "contact_create": "the contact may or may not have been created",
}

#: What an answer means, whatever its HTTP status:
#: ``token`` the access token is refused (replace it once); ``auth`` credentials, scopes, org or licence are
#: wrong; ``not_found`` an unknown id or URL; ``rejected`` a value refused; ``rate_limited`` too many calls;
#: ``server`` Desk failed; ``refused`` any other refusal.
Verdict = Literal["token", "auth", "not_found", "rejected", "rate_limited", "server", "refused"]

#: Desk's errorCode -> verdict (ZOHO-API.md §2; TOO_MANY_REQUESTS and RESOURCE_NOT_FOUND are assumed names).
ERROR_CODES: dict[str, Verdict] = {
    "INVALID_OAUTH": "token",
    "UNAUTHORIZED": "auth",  # no usable Authorization header: we always send one, so it is our setup
    "OAUTH_ORG_MISMATCH": "auth",  # the token's organisation is not the portal's org_id
    "SCOPE_MISMATCH": "auth",
    "FORBIDDEN": "auth",
    "LICENSE_ACCESS_LIMITED": "auth",
    "URL_NOT_FOUND": "not_found",
    "RESOURCE_NOT_FOUND": "not_found",
    "INVALID_DATA": "rejected",
    "UNPROCESSABLE_ENTITY": "rejected",
    "PAYLOAD_TOO_LARGE": "rejected",
    "TOO_MANY_REQUESTS": "rate_limited",
    "INTERNAL_SERVER_ERROR": "server",
    "METHOD_NOT_ALLOWED": "refused",
}

#: Verdicts an errorCode may give a 5xx answer: Desk naming a refusal rather than a failure.
REFUSALS_ON_5XX = frozenset({"token", "auth", "rejected", "rate_limited"})

#: Desk's field (the first segment of ``fieldName``, a JSON pointer) -> the client's field name.
FIELD_NAMES: dict[str, str] = {
    "subject": "subject",
    "description": "description",
    "priority": "priority",
    "status": "status",
    "category": "category",
    "departmentId": "department",
    "contactId": "requester_email",
    "contact": "requester_email",
    "email": "requester_email",
    "lastName": "requester_email",  # a contact made from the requester's email
    "content": "text",
    "isPublic": "show_to_requester",
    "resolution": "resolution",
    "file": "file",
}


def verdict_for_status(status: int) -> Verdict:
    """What an HTTP status means when Desk names no errorCode we know."""
    if status == 401:
        return "token"
    if status == 403:
        return "auth"
    if status in (404, 410):
        return "not_found"
    if status in (413, 422):
        return "rejected"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server"
    return "refused"


def error_code(data: Any) -> str | None:
    """Desk's ``errorCode`` of a decoded body, or None."""
    code = data.get("errorCode") if isinstance(data, Mapping) else None
    return code if isinstance(code, str) and code else None


def field_errors(data: Any) -> dict[str, list[str]]:
    """``fields`` for ZohoRejected: Desk's ``errors`` (or top-level ``fieldName``) keyed by the client's names."""
    entries: list[Mapping[str, Any]] = []
    if isinstance(data, Mapping):
        listed = data.get("errors")
        if isinstance(listed, list):
            entries = [item for item in listed if isinstance(item, Mapping)]
        elif data.get("fieldName") is not None:
            entries = [data]
    fields: dict[str, list[str]] = {}
    for entry in entries:
        pointer = zoho_text(entry.get("fieldName")).strip("/")
        if not pointer:
            continue
        head = pointer.split("/", 1)[0]
        name = FIELD_NAMES.get(head, pointer)
        message = (
            zoho_text(entry.get("errorMessage")) or zoho_text(entry.get("message")) or zoho_text(entry.get("errorType"))
        )
        fields.setdefault(name, []).append(message or "invalid")
    return fields


def desk_fields(data: Any) -> list[str]:
    """Desk's own field names (JSON pointers without the leading ``/``) named by a refusal."""
    names: list[str] = []
    if isinstance(data, Mapping):
        listed = data.get("errors")
        entries = listed if isinstance(listed, list) else [data]
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("fieldName") is not None:
                names.append(zoho_text(entry.get("fieldName")).strip("/"))
    return names


def judge(http_status: int, body: bytes, operation: Operation, retry_after: str | None = None) -> Any:
    """The decoded JSON of a Desk success (None for a 204: a search that matched nothing).

    Raises ``TokenRejected`` when the token is refused, else a :class:`GatewayError`:

    - ``ZohoRateLimited`` (TOO_MANY_REQUESTS, 429) and ``ZohoUnavailable`` (503, and 504 except after an
      adding write): nothing was done, retry later;
    - ``ZohoAuthFailed``: UNAUTHORIZED, FORBIDDEN, SCOPE_MISMATCH, OAUTH_ORG_MISMATCH, LICENSE_ACCESS_LIMITED,
      a 403, and a refusal of the ``orgId`` header;
    - ``TicketNotFound``: RESOURCE_NOT_FOUND, URL_NOT_FOUND or a 404 on a call about one ticket (elsewhere
      a ``ZohoBadResponse``: our URL is wrong);
    - ``ZohoRejected`` (``fields`` by the client's names): INVALID_DATA, UNPROCESSABLE_ENTITY, a 413 or 422
      on a write or the contact search (on other reads: ``ZohoBadResponse``, the query was ours);
    - adding writes: ``ZohoOutcomeUnknown`` for a 502 or 504 whatever the body, another 5xx unless its
      errorCode names a refusal, and a 2xx answer that is not JSON; a 408 is ``ZohoUnavailable``;
    - ``ZohoBadResponse`` (with ``upstream_status``) for anything else: a 5xx, a refusal, a 2xx not JSON.
    """
    data = decode_body(body)
    if 200 <= http_status < 300:
        if http_status == 204 or (not body.strip() and operation not in ADDING):
            return None
        if data is None:
            if operation in ADDING:
                raise ZohoOutcomeUnknown(
                    f"Zoho Desk answered {http_status} with an unreadable body: {UNKNOWN_OUTCOMES[operation]}",
                    upstream_status=http_status,
                )
            raise ZohoBadResponse("Zoho Desk answered with an unreadable body", upstream_status=http_status)
        return data
    code = error_code(data)
    if http_status in PROXY_GAVE_UP and operation in ADDING:
        # A proxy before Desk lost Desk's answer, or gave up waiting: the write may be stored, and the body
        # is the proxy's, so it cannot say otherwise.
        raise ZohoOutcomeUnknown(
            f"Zoho Desk's front end answered {http_status} after the call was sent: {UNKNOWN_OUTCOMES[operation]}",
            upstream_status=http_status,
        )
    if http_status in (503, 504):
        # Overloaded or timed out before doing the work: whatever the body says, retry later.
        raise ZohoUnavailable(
            "Zoho Desk is temporarily unavailable", retry_after=parse_retry_after(retry_after, default=5)
        )
    if operation in ADDING and http_status == 408:
        # A proxy's "request timeout": it never received the whole request, so it passed nothing on.
        raise ZohoUnavailable("Zoho Desk's proxy timed out receiving the call; nothing was done", retry_after=5)
    verdict = ERROR_CODES.get(code or "") or verdict_for_status(http_status)
    if http_status >= 500 and verdict not in REFUSALS_ON_5XX:
        verdict = "server"
    if verdict == "token":
        raise TokenRejected()
    raise _error(verdict, http_status, data, code, operation, retry_after)


def _error(
    verdict: Verdict, status: int, data: Any, code: str | None, operation: Operation, retry_after: str | None
) -> GatewayError:
    codes = [code] if code else []
    message = zoho_text(data.get("message")) if isinstance(data, Mapping) else ""
    if verdict == "rate_limited":
        return ZohoRateLimited(
            "Zoho Desk is rate-limiting API calls; retry later", retry_after=parse_retry_after(retry_after, default=5)
        )
    if verdict == "auth":
        return ZohoAuthFailed(
            f"Zoho Desk refused the gateway's credentials, scopes or org id ({code or status})", zoho_codes=codes
        )
    if verdict == "not_found":
        if operation in PER_TICKET:
            return TicketNotFound("No ticket with that id exists in Zoho")
        return ZohoBadResponse("Zoho Desk does not know the URL called", upstream_status=status, zoho_codes=codes)
    if verdict == "rejected":
        if "orgId" in desk_fields(data):
            return ZohoAuthFailed("Zoho Desk refused the org id: check the portal's org_id", zoho_codes=codes)
        if operation in CLIENT_VALUES:
            return ZohoRejected(
                f"Zoho rejected the ticket: {message or 'invalid value'}",
                fields=field_errors(data) or {"_ticket": [message or "invalid value"]},
                zoho_codes=codes,
            )
        return ZohoBadResponse("Zoho Desk refused the call", upstream_status=status, zoho_codes=codes)
    if verdict == "server":
        if operation in ADDING:
            return ZohoOutcomeUnknown(
                f"Zoho Desk failed with a server error after the call was sent: {UNKNOWN_OUTCOMES[operation]}",
                upstream_status=status,
                zoho_codes=codes,
            )
        return ZohoBadResponse("Zoho Desk failed with a server error", upstream_status=status, zoho_codes=codes)
    return ZohoBadResponse("Zoho Desk refused the call", upstream_status=status, zoho_codes=codes)
