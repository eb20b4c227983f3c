"""OpenAPI response pieces: the headers answers carry, and each operation's error responses, generated
from the error tree (``zoho_gateway.errors``): statuses, codes, summaries, meanings and ``Retry-After``
come from the error classes, never from text written here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import errors as e

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
REQUEST_ID_EXAMPLE = "5f1f2c75cefd486aa8fe4de4967dada8"

#: Any call that reaches Zoho may fail in these ways (the ticket service's contract, ``zoho/tickets.py``).
_ZOHO_ERRORS = (
    e.ZohoBadResponse,
    e.ZohoAuthFailed,
    e.ZohoUnavailable,
    e.ZohoRateLimited,
    e.ZohoTokenUnavailable,
    e.ZohoTokenThrottled,
)
#: What each operation (``operationId``) can answer besides success: what its view and the code it calls
#: raise, plus the access hooks (401 on keyed routes, 429 on rate-limited ones). Not listed anywhere: 405
#: (a route's other methods, not an operation's) and the last-resort 500 ``internal_error`` (a bug, not a
#: contract); both are in the error table of ``/docs`` and the README.
OPERATION_ERRORS: dict[str, tuple[type[e.GatewayError], ...]] = {
    "createTicket": (
        e.BadRequest,  # Werkzeug's: the body stopped before its Content-Length
        e.InvalidJSON,
        e.InvalidHeader,  # Idempotency-Key
        e.Unauthorized,
        e.Forbidden,  # the key lacks tickets:create
        e.IdempotencyKeyInFlight,
        e.PayloadTooLarge,
        e.UnsupportedMediaType,
        e.InvalidTicket,
        e.IdempotencyKeyReused,
        e.ZohoRejected,  # only a create sends values Zoho can refuse
        e.RateLimited,
        *_ZOHO_ERRORS,
        e.StateUnavailable,  # idempotency records or the create queue unreadable
        e.ZohoOutcomeUnknown,  # the create queue's store down (a direct create), or replayed from before the queue
        e.RequestDropped,  # a keyed repeat of a create an operator dropped
    ),
    "getTicket": (
        e.InvalidTicketId,
        e.Unauthorized,
        e.Forbidden,  # the key lacks tickets:read
        e.RouteNotFound,  # an id holding an encoded "/" (%2F) matches no route
        e.TicketNotFound,
        e.InvalidTicket,  # a view other than ?view=full
        e.RateLimited,
        *_ZOHO_ERRORS,
        e.ZohoTimeout,
    ),
    # The route of getTicket: a value that is not a reference is read as a ticket id, with its failures.
    "getRequestStatus": (
        e.InvalidTicketId,
        e.Unauthorized,
        e.Forbidden,
        e.RouteNotFound,
        e.TicketNotFound,
        e.RequestNotFound,
        e.RateLimited,
        *_ZOHO_ERRORS,
        e.StateUnavailable,  # the create queue unreadable
        e.ZohoTimeout,
    ),
    "getTokenStatus": (e.Unauthorized, e.Forbidden, e.RateLimited, e.StateUnavailable),
    "getMetrics": (e.Unauthorized, e.Forbidden),
}
#: The ticket lifecycle (issue 11). A write with an ``Idempotency-Key`` reads and writes its record in the
#: shared state (``state_unavailable``), and may meet the same key in flight (409) or used for another write.
_KEYED_WRITE = (e.InvalidHeader, e.IdempotencyKeyInFlight, e.IdempotencyKeyReused, e.StateUnavailable)
#: A JSON body: what reading it can refuse.
_JSON_BODY = (e.BadRequest, e.InvalidJSON, e.PayloadTooLarge, e.UnsupportedMediaType, e.InvalidTicket)
#: A route with a ticket id in its path.
_PER_TICKET = (e.InvalidTicketId, e.RouteNotFound, e.TicketNotFound)
OPERATION_ERRORS.update(
    {
        "findTickets": (e.Unauthorized, e.Forbidden, e.InvalidTicket, e.RateLimited, *_ZOHO_ERRORS, e.ZohoTimeout),
        "updateTicket": (
            *_JSON_BODY,
            *_PER_TICKET,
            *_KEYED_WRITE,
            e.Unauthorized,
            e.Forbidden,
            e.PreconditionFailed,
            e.ZohoRejected,
            e.RateLimited,
            *_ZOHO_ERRORS,
            e.ZohoTimeout,  # no answer to the update: it may have applied; sending it again is safe
        ),
        "addNote": (
            *_JSON_BODY,
            *_PER_TICKET,
            *_KEYED_WRITE,
            e.Unauthorized,
            e.Forbidden,
            e.ZohoRejected,
            e.RateLimited,
            *_ZOHO_ERRORS,
            e.ZohoTimeout,
            e.ZohoOutcomeUnknown,  # the note was sent, no answer came: it may exist (list the notes)
        ),
        "listNotes": (*_PER_TICKET, e.Unauthorized, e.Forbidden, e.RateLimited, *_ZOHO_ERRORS, e.ZohoTimeout),
        "closeTicket": (
            *_JSON_BODY,
            *_PER_TICKET,
            *_KEYED_WRITE,
            e.Unauthorized,
            e.Forbidden,
            e.ZohoRejected,  # a closure rule of the portal
            e.RateLimited,
            *_ZOHO_ERRORS,
            e.ZohoTimeout,
        ),
        "reopenTicket": (
            *_PER_TICKET,
            *_KEYED_WRITE,
            e.Unauthorized,
            e.Forbidden,
            e.ZohoRejected,
            e.RateLimited,
            *_ZOHO_ERRORS,
            e.ZohoTimeout,
        ),
        **{
            # 501: a Zoho Desk portal has no API list of priorities, statuses or categories (departments it has).
            f"get{kind.title()}": (
                e.Unauthorized,
                e.Forbidden,
                e.RateLimited,
                *_ZOHO_ERRORS,
                e.ZohoTimeout,
                *((e.NotSupportedByService,) if kind != "departments" else ()),
            )
            for kind in ("priorities", "statuses", "categories", "departments")
        },
    }
)
#: The portals' operator routes (issue 12; api/openapi_portals.py documents them and the /portals/{portal} mirror
#: of every ticket route, whose errors add these two).
PORTAL_ERRORS = (e.PortalNotFound, e.Forbidden)  # an unknown portal; a portal the key may not use
OPERATION_ERRORS.update(
    {
        "getPortalTokenStatus": (e.Unauthorized, *PORTAL_ERRORS, e.RateLimited, e.StateUnavailable),
        "validatePortalToken": (e.Unauthorized, *PORTAL_ERRORS, e.RateLimited),
    }
)

#: Attachments (issue 11 §6): what reading a ``multipart/form-data`` body can refuse (``api/uploads.py``).
_FORM_BODY = (e.BadRequest, e.InvalidMultipart, e.AttachmentTooLarge, e.MultipartRequired, e.UnsupportedAttachmentType)
OPERATION_ERRORS.update(
    {
        "addAttachments": (
            *_FORM_BODY,
            e.InvalidTicketId,
            e.Unauthorized,
            e.Forbidden,  # the key lacks tickets:write
            e.RouteNotFound,
            e.TicketNotFound,
            e.ZohoRejected,  # a file Zoho refuses
            e.RateLimited,
            *_ZOHO_ERRORS,
            e.ZohoOutcomeUnknown,  # sent, no answer: the files may be attached (list them before sending again)
        ),
        "listAttachments": (
            e.InvalidTicketId,
            e.Unauthorized,
            e.Forbidden,  # the key lacks tickets:read
            e.RouteNotFound,
            e.TicketNotFound,
            e.RateLimited,
            *_ZOHO_ERRORS,
            e.ZohoTimeout,
        ),
    }
)
#: ``POST /requests`` as a form: the form's own refusals, and ``Prefer: respond-async`` with it.
OPERATION_ERRORS["createTicket"] += (
    e.InvalidMultipart,
    e.AttachmentTooLarge,
    e.UnsupportedAttachmentType,
    e.AsyncCreateWithFiles,
)

# --- response headers ------------------------------------------------------------------------------------

ECHOED_ID = {
    "X-Request-ID": {
        "description": "The request id (yours if valid, else generated)",
        "required": True,
        "schema": STRING,
    }
}
LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed per window (when a limit is set)", "schema": INTEGER},
    "RateLimit-Remaining": {"description": "Requests left in this window", "schema": INTEGER},
    "RateLimit-Reset": {"description": "Seconds until the window resets", "schema": INTEGER},
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}
}
CACHE_HEADERS = {
    "ETag": {
        "description": "Send it back in `If-None-Match` to get 304 when unchanged",
        "required": True,
        "schema": STRING,
    },
    "Cache-Control": {"description": "How long the answer may be reused", "required": True, "schema": STRING},
    "Age": {"description": "Seconds the answer has been cached (when the cache is on)", "schema": INTEGER},
}


def json_content(schema: str | dict[str, Any], **example: Any) -> dict[str, Any]:
    """A ``content`` object for ``application/json``: a component's name or an inline schema, and examples."""
    ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    return {"application/json": {"schema": ref, **example}}


def _error_example(error: type[e.GatewayError]) -> dict[str, Any]:
    details: dict[str, Any] = {"code": error.code, "message": error.summary, "request_id": REQUEST_ID_EXAMPLE}
    if error is e.InvalidTicket:
        details["message"] = "Invalid fields: requester_email"
        details["fields"] = {"requester_email": ["Not a valid email address."]}
    if error is e.Forbidden:
        details["message"] = "This API key lacks the scope 'tickets:write' that this route needs"
        details["scope"] = "tickets:write"
    if error.retry_after_header:
        details["retry_after"] = 5
    return {"error": error.summary, "details": details}


def error_responses(operation_errors: Iterable[type[e.GatewayError]], *, rate_limited: bool) -> dict[str, Any]:
    """The OpenAPI error responses of one operation, a status each, from its error classes.

    Each names its codes in the description (one ``- `code`: meaning`` line each), pins ``error`` and
    ``details.code`` to them in the schema (so a response validator checks them), and gives one example per
    code. ``rate_limited``: the ``RateLimit-*`` headers may come (on everything after the key check).
    """
    by_status: dict[int, list[type[e.GatewayError]]] = {}
    for error in operation_errors:
        by_status.setdefault(error.status, []).append(error)
    responses: dict[str, Any] = {}
    for status, group in sorted(by_status.items()):
        headers: dict[str, Any] = dict(ECHOED_ID)
        if any(error.retry_after_header for error in group):
            headers.update(RETRY_AFTER)
        if status == 401:
            headers["WWW-Authenticate"] = {
                "description": '`Bearer realm="zoho-gateway"`',
                "required": True,
                "schema": {"type": "string", "enum": ['Bearer realm="zoho-gateway"']},
            }
        elif rate_limited:
            headers.update(LIMIT_HEADERS)
        pinned = {
            "type": "object",
            "properties": {
                "error": {"type": "string", "enum": sorted({error.summary for error in group})},
                "details": {
                    "type": "object",
                    "properties": {"code": {"type": "string", "enum": [x.code for x in group]}},
                },
            },
        }
        examples = {error.code: {"summary": error.meaning, "value": _error_example(error)} for error in group}
        responses[str(status)] = {
            "description": "\n".join(f"- `{error.code}`: {error.meaning}" for error in group),
            "headers": headers,
            "content": json_content({"allOf": [{"$ref": "#/components/schemas/Error"}, pinned]}, examples=examples),
        }
    return responses
