"""The OpenAPI 3 document at ``/openapi.json``, and the ``/docs`` page rendered from it (``api/docs.py``).

Schemas come from the marshmallow schemas (apispec); each operation's error responses from the error tree
(``api/openapi_responses.py``). Here: every route's parameters, request body and examples, and successes.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app
from marshmallow import Schema, fields

from .. import errors as e
from ..policies.outbox import REF
from . import docs
from .openapi_portals import add_portal_paths
from .openapi_responses import (
    CACHE_HEADERS,
    ECHOED_ID,
    LIMIT_HEADERS,
    OPERATION_ERRORS,
    RETRY_AFTER,
    STRING,
    error_responses,
    json_content,
)
from .schemas import (
    ATTACHMENT_EXAMPLE,
    TICKET_CREATED_EXAMPLE,
    TICKET_ID,
    TICKET_IN_EXAMPLES,
    TICKET_OUT_EXAMPLE,
    NameRef,
    TicketCreated,
    TicketIn,
    TicketOut,
    _not_blank,
)
from .schemas import AttachmentList as AttachmentListSchema
from .schemas_docs import ErrorBody, ErrorDetails, Health, Index, Readiness, TokenStatus
from .schemas_lifecycle import (
    CHANGES_IN_EXAMPLES,
    CLOSE_IN_EXAMPLE,
    FULL_TICKET_EXAMPLE,
    NOTE_IN_EXAMPLE,
    NOTES_EXAMPLE,
    PICK_LIST_EXAMPLE,
    TICKET_LIST_EXAMPLE,
    CloseIn,
    FindQuery,
    FullTicketOut,
    NoteCreated,
    NoteIn,
    NotesOut,
    PickListOut,
    TicketChangesIn,
    TicketListOut,
)
from .uploads import MAX_FILES

bp = Blueprint("docs", __name__)

#: The documented schemas by their name in the document.
_SCHEMAS: dict[str, type[Schema]] = {
    "TicketIn": TicketIn,
    "TicketCreated": TicketCreated,
    "Ticket": TicketOut,
    "ErrorDetails": ErrorDetails,
    "Error": ErrorBody,
    "Health": Health,
    "Readiness": Readiness,
    "TokenStatus": TokenStatus,
    "Index": Index,
    "TicketList": TicketListOut,
    "FullTicket": FullTicketOut,
    "TicketChanges": TicketChangesIn,
    "NoteIn": NoteIn,
    "NoteCreated": NoteCreated,
    "Notes": NotesOut,
    "CloseIn": CloseIn,
    "PickList": PickListOut,
}
_OPENAPI_KEY = "zoho_gateway_openapi"
_PAGE_KEY = "zoho_gateway_docs_page"

_SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def _header(name: str, description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An optional request header, as an OpenAPI parameter."""
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema, **more}


#: Every request reads it (the access hooks), so every operation lists it. Not constrained in the schema:
#: an id outside the pattern is replaced, not refused, so no value of it is "invalid input".
_REQUEST_ID = _header(
    "X-Request-ID",
    "Your id for this request, kept when it is 1-128 of `A-Z a-z 0-9 . _ -` (else replaced); echoed in the "
    "`X-Request-ID` answer header and in `details.request_id`",
    STRING,
    example="order-4711.retry-1",
)
_IDEMPOTENCY_KEY = _header(
    "Idempotency-Key",
    "Makes re-sending safe: one ticket per (API key, Idempotency-Key) for 24 h; repeats replay the first answer "
    "with `Idempotent-Replayed: true`. 1-255 printable characters, e.g. a UUID",
    {"type": "string", "minLength": 1, "maxLength": 255},
    example="7d1c0f7e-3b0a-4d43-9a4e-1f7b9e0c2a11",
)
_PREFER = _header(
    "Prefer",
    "`respond-async` (RFC 7240): the ticket is stored durably first; you get 201 if Zoho creates it within "
    "`wait=N` seconds (default 5), else 202 with `Preference-Applied: respond-async` and `Location: "
    "/requests/<request_ref>` to poll. Zoho outages then queue the ticket instead of failing it",
    STRING,
    example="respond-async, wait=5",
)
_IF_NONE_MATCH = _header(
    "If-None-Match", "The `ETag` of an earlier answer (or a list, or `*`): 304 without a body when unchanged", STRING
)
_TICKET_ID = {
    "name": "ticket_id",
    "in": "path",
    "required": True,
    "description": "The `zoho_ticket_id` of the create's answer",
    "schema": {"type": "string", "pattern": f"^{TICKET_ID.pattern}$"},
    "example": TICKET_OUT_EXAMPLE["ticket_id"],
}


_REQUEST_REF = {
    "name": "request_ref",
    "in": "path",
    "required": True,
    "description": "The `request_ref` of a 202 answer (never all digits, so never a ticket id)",
    "schema": {"type": "string", "pattern": f"^{REF.pattern}$"},
    "example": "rq_3kT9vQ2mXbY7LpN4cR8sWd1A",
}
_STATES = ["queued", "sending", "unknown", "created", "failed", "needs_review"]
#: ``POST /requests``'s 202 body (inline: the outbox's answer shapes are the policy's, not marshmallow's).
_ACCEPTED = {
    "type": "object",
    "required": ["message", "request_ref", "status"],
    "additionalProperties": False,
    "properties": {
        "message": STRING,
        "request_ref": {"type": "string", "pattern": f"^{REF.pattern}$"},
        "status": {"type": "string", "enum": _STATES},
        "attachments": {
            "allOf": [{"$ref": "#/components/schemas/CreatedAttachments"}],
            "description": "Only for a form with `file` parts: none attached, each failed with `ticket_pending`",
        },
    },
}
#: ``GET /requests/{request_ref}``'s body.
_REQUEST_STATUS = {
    "type": "object",
    "required": ["request_ref", "status", "zoho_ticket_id", "attempts", "accepted_at", "last_error"],
    "additionalProperties": False,
    "properties": {
        "request_ref": {"type": "string", "pattern": f"^{REF.pattern}$"},
        "status": {"type": "string", "enum": _STATES},
        "zoho_ticket_id": {"type": "string", "nullable": True, "description": "Once `created`"},
        "attempts": {"type": "integer", "minimum": 0, "description": "Creates sent to Zoho so far"},
        "accepted_at": {"type": "string", "description": "RFC 3339, UTC"},
        "last_error": {
            "type": "object",
            "nullable": True,
            "description": "The latest failure: for `failed`, the code and message a synchronous create got",
            "required": ["code", "message"],
            "properties": {"code": STRING, "message": STRING, "fields": {"type": "object"}},
        },
    },
}
_REQUEST_STATUS_EXAMPLE = {
    "request_ref": "rq_3kT9vQ2mXbY7LpN4cR8sWd1A",
    "status": "created",
    "zoho_ticket_id": TICKET_OUT_EXAMPLE["ticket_id"],
    "attempts": 2,
    "accepted_at": "2026-11-29T08:00:00.000Z",
    "last_error": {"code": "zoho_unavailable", "message": "Zoho is temporarily unavailable"},
}
_POLL = {"Retry-After": {"description": "Seconds to wait before polling again", "schema": {"type": "integer"}}}


def _inline_schema_attributes(_converter: Any, field: fields.Field[Any], **_: Any) -> dict[str, Any]:
    """apispec attribute function: what the marshmallow field's own validators cannot tell apispec.

    A ``NameRef`` is a string or ``{"name": string}``; a field checked by ``_not_blank`` needs a non-space.
    """
    if isinstance(field, NameRef):
        name = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
        named = {"type": "object", "properties": {"name": name}, "required": ["name"], "additionalProperties": False}
        return {"oneOf": [name, named], "nullable": True}
    if _not_blank in field.validators:
        return {"pattern": r"\S"}
    return {}


def _answer(description: str, content: dict[str, Any] | None = None, **headers: Any) -> dict[str, Any]:
    """A response: ``X-Request-ID`` (every answer has it) and ``headers``, and the body's ``content``."""
    answer = {"description": description, "headers": {**ECHOED_ID, **headers}}
    return {**answer, "content": content} if content else answer


def _add(
    spec: APISpec,
    path: str,
    operation_id: str,
    summary: str,
    description: str,
    *,
    method: str = "get",
    tags: list[str],
    responses: dict[str, Any],
    security: list[dict[str, list[str]]] = _SECURED,
    parameters: tuple[dict[str, Any], ...] = (),
    **parts: Any,
) -> None:
    """One operation on ``spec``; its error responses come from ``OPERATION_ERRORS`` (none for a public one)."""
    responses = dict(responses)
    if operation_id in OPERATION_ERRORS:
        rate_limited = operation_id != "getMetrics"  # the scrape is never counted (api/access.py)
        responses.update(error_responses(OPERATION_ERRORS[operation_id], rate_limited=rate_limited))
    operation = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": tags,
        "security": security,
        "parameters": [*parameters, _REQUEST_ID],
        **parts,
        "responses": responses,
    }
    spec.path(path, operations={method: operation})


def _paths(spec: APISpec) -> None:
    created = _answer(
        "Created (or, with `Idempotent-Replayed: true`, the first answer replayed)",
        json_content("TicketCreated", example=TICKET_CREATED_EXAMPLE),
        Location={
            "description": "The new ticket: `/requests/<zoho_ticket_id>`",
            "schema": {"type": "string", "pattern": "/requests/[0-9]{1,20}$"},
        },
        **{"Idempotent-Replayed": {"description": "`true` on a replay", "schema": {"enum": ["true"], **STRING}}},
        **LIMIT_HEADERS,
    )
    ref_location = {
        "description": "Where to poll: `/requests/<request_ref>`",
        "required": True,
        "schema": {"type": "string", "pattern": "/requests/rq_[A-Za-z0-9_-]{1,37}$"},
    }
    accepted = _answer(
        "Accepted, not yet created: the outcome was not settled in time (Zoho's answer was lost and it is being "
        "looked for, or with `Prefer: respond-async`, Zoho was slow or unavailable). Poll `Location`",
        json_content(
            _ACCEPTED,
            example={
                "message": "Ticket accepted; Zoho has not confirmed it yet. Poll Location for the outcome",
                "request_ref": "rq_3kT9vQ2mXbY7LpN4cR8sWd1A",
                "status": "queued",
            },
        ),
        Location=ref_location,
        **{
            "Preference-Applied": {
                "description": "`respond-async` when the create was queued as `Prefer` asked",
                "schema": {"enum": ["respond-async"], **STRING},
            },
            "Idempotent-Replayed": {"description": "`true` on a replay", "schema": {"enum": ["true"], **STRING}},
        },
        **_POLL,
        **LIMIT_HEADERS,
    )
    _add(
        spec,
        "/requests",
        "createTicket",
        "Create a ticket",
        "Creates one ServiceDesk Plus request. With an `Idempotency-Key`, at most one ticket per key: re-send the "
        "same request with the same key after a network error or a 5xx; a repeat follows the first create's "
        "outcome (201 once created, 202 while pending, the failure once failed). Every create is stored before "
        "Zoho is called; an answer Zoho lost is looked for in Zoho, never re-sent blindly. 202 when the outcome "
        "is not settled in time, or with `Prefer: respond-async`; poll `/requests/<request_ref>`. "
        "As `multipart/form-data`, a `ticket` part (this JSON) and `file` parts (a page's form with a screenshot, in "
        "one call): the files are checked first (413, 415: nothing created), then the ticket created, then the files "
        "attached; an upload that fails after the create is in the 201's `attachments.failed`, never an error.",
        method="post",
        tags=["tickets"],
        parameters=(_IDEMPOTENCY_KEY, _PREFER),
        responses={"201": created, "202": accepted},
        requestBody={
            "required": True,
            "content": {**json_content("TicketIn", examples=TICKET_IN_EXAMPLES), **_TICKET_FORM},
        },
    )
    _add(
        spec,
        "/requests/{ticket_id}",
        "getTicket",
        "Read a ticket's status",
        "The ticket in five fields, at most `GATEWAY_CACHE_TTL` seconds old (see `Age`). With `?view=full`, the "
        "full view (`FullTicket`) under the same rules: its own cache entry and `ETag` (send that one in "
        "`If-Match` to `PATCH`). Needs `tickets:read`.",
        tags=["tickets"],
        parameters=(_TICKET_ID, _VIEW, _IF_NONE_MATCH),
        responses={
            "200": _answer(
                "The ticket: `Ticket`, or `FullTicket` with `?view=full`",
                json_content(
                    {"oneOf": [{"$ref": "#/components/schemas/Ticket"}, {"$ref": "#/components/schemas/FullTicket"}]},
                    examples={
                        "default": {"summary": "The default view", "value": TICKET_OUT_EXAMPLE},
                        "full": {"summary": "?view=full", "value": FULL_TICKET_EXAMPLE},
                    },
                ),
                **CACHE_HEADERS,
                **LIMIT_HEADERS,
            ),
            "304": _answer(
                "Not modified: `If-None-Match` matched the current `ETag` (no body)",
                None,
                **CACHE_HEADERS,
                **LIMIT_HEADERS,
            ),
        },
    )
    _add(
        spec,
        "/requests/{request_ref}",
        "getRequestStatus",
        "Read a create's outcome",
        "The outcome of a create answered 202, for the API key that made it (others get 404). 202 while pending "
        "(`queued`, `sending`, `unknown`), 200 once `created` (with `Location: /requests/<zoho_ticket_id>`), "
        "`failed` (`last_error` holds the code and message a synchronous create got) or `needs_review` (several "
        "Zoho tickets match; an operator decides). Kept at least `GATEWAY_IDEMPOTENCY_TTL` after it settles. "
        "This path shares its route with `GET /requests/{ticket_id}`: a value that is not a reference is read "
        "as a ticket id.",
        tags=["tickets"],
        parameters=(_REQUEST_REF,),
        responses={
            "200": _answer(
                "Settled: `created`, `failed` or `needs_review`",
                json_content(_REQUEST_STATUS, example=_REQUEST_STATUS_EXAMPLE),
                Location={
                    "description": "When `created`: the ticket, `/requests/<zoho_ticket_id>`",
                    "schema": {"type": "string", "pattern": "/requests/[0-9]{1,20}$"},
                },
                **LIMIT_HEADERS,
            ),
            "202": _answer(
                "Pending: `queued`, `sending` or `unknown`; poll again after `Retry-After`",
                json_content(
                    _REQUEST_STATUS, example={**_REQUEST_STATUS_EXAMPLE, "status": "queued", "zoho_ticket_id": None}
                ),
                **_POLL,
                **LIMIT_HEADERS,
            ),
        },
    )
    _lifecycle_paths(spec)
    _add(
        spec,
        "/token/status",
        "getTokenStatus",
        "The Zoho access token's state",
        "For operators: whether a token is held, when it expires, recent mints, any back-off. Never the token. "
        "Needs `admin`.",
        tags=["operators"],
        responses={"200": _answer("The token's state", json_content("TokenStatus"), **LIMIT_HEADERS)},
    )
    _add(
        spec,
        "/metrics",
        "getMetrics",
        "Prometheus metrics",
        "Summed over every worker. Never rate-limited. Needs `admin`.",
        tags=["operators"],
        responses={"200": _answer("Prometheus text format", {"text/plain": {"schema": STRING}})},
    )
    public: dict[str, Any] = {"security": []}
    _add(
        spec,
        "/healthz",
        "getHealth",
        "Liveness",
        "Answers without calling Zoho or the shared state.",
        tags=["probes"],
        responses={"200": _answer("OK", json_content("Health"))},
        **public,
    )
    _add(
        spec,
        "/readyz",
        "getReadiness",
        "Readiness",
        "Ready when a Zoho token is held or can be minted and the shared state answers. Never calls Zoho.",
        tags=["probes"],
        responses={
            "200": _answer("Ready", json_content("Readiness")),
            "503": _answer("Not ready; the body says why", json_content("Readiness"), **RETRY_AFTER),
        },
        **public,
    )
    to_docs = {"description": "`/docs`", "required": True, "schema": {"type": "string", "enum": ["/docs"]}}
    _add(
        spec,
        "/",
        "getIndex",
        "Where the docs are",
        "Redirects a browser to `/docs`; the body names the docs for clients that do not follow redirects.",
        tags=["docs"],
        responses={"302": _answer("See `/docs`", json_content("Index"), Location=to_docs)},
        **public,
    )
    _add(
        spec,
        "/openapi.json",
        "getOpenAPI",
        "This description",
        "OpenAPI 3.0, JSON.",
        tags=["docs"],
        responses={"200": _answer("OK", {"application/json": {"schema": {"type": "object"}}})},
        **public,
    )
    _add(
        spec,
        "/docs",
        "getDocs",
        "This description, readable",
        "One HTML page; no script, no CDN.",
        tags=["docs"],
        responses={"200": _answer("OK", {"text/html": {"schema": STRING}})},
        **public,
    )


_VIEW = {
    "name": "view",
    "in": "query",
    "required": False,
    "description": "`full`: the full view (`FullTicket`) instead of the five fields",
    "schema": {"type": "string", "enum": ["full"]},
    "example": "full",
}
_IF_MATCH = _header(
    "If-Match",
    "The `ETag` of `GET /requests/<ticket_id>?view=full` (or of an earlier update's answer), or `*`: the update is "
    "made only if the ticket still has it, else 412 `precondition_failed`",
    STRING,
    example='"5f1f2c75cefd486aa8fe"',
)
_WRITE_KEY = _header(
    "Idempotency-Key",
    "Makes re-sending safe: a repeat with the same key (same API key, same write) within 24 h replays the first "
    "answer with `Idempotent-Replayed: true` and changes nothing. 1-255 printable characters, e.g. a UUID",
    {"type": "string", "minLength": 1, "maxLength": 255},
    example="0b9f3c1e-6a2d-4f8e-9c47-2d1e5b7a9f30",
)
_REPLAYED = {"Idempotent-Replayed": {"description": "`true` on a replay", "schema": {"enum": ["true"], **STRING}}}
_FULL_ETAG = {
    "ETag": {
        "description": "The full view's `ETag`, for the next `If-Match`",
        "required": True,
        "schema": STRING,
    }
}
_NEXT = {
    "Link": {
        "description": 'RFC 8288 `<...>; rel="next"`: the next page (your other parameters kept), when `has_more`',
        "schema": STRING,
    }
}
_PICK_LISTS = {
    "priorities": "Priorities",
    "statuses": "Statuses",
    "categories": "Categories",
    "departments": "Departments",
}


def _lifecycle_paths(spec: APISpec) -> None:
    """The ticket lifecycle (issue 11): find, update, notes, close, reopen, pick lists."""
    full = json_content("FullTicket", example=FULL_TICKET_EXAMPLE)
    _add(
        spec,
        "/requests",
        "findTickets",
        "Find tickets",
        "One page of the tickets matching every filter given, newest first unless `sort` says otherwise; "
        '`has_more` and a `Link: <...>; rel="next"` header when more exist. Needs `tickets:list`.',
        tags=["tickets"],
        parameters=({"in": "query", "schema": FindQuery},),
        responses={
            "200": _answer(
                "One page", json_content("TicketList", example=TICKET_LIST_EXAMPLE), **_NEXT, **LIMIT_HEADERS
            )
        },
    )
    _add(
        spec,
        "/requests/{ticket_id}",
        "updateTicket",
        "Change a ticket",
        "Changes the fields given (at least one; validated as for a create) and answers with the full view. "
        "`If-Match` makes it conditional. Needs `tickets:write`.",
        method="patch",
        tags=["tickets"],
        parameters=(_TICKET_ID, _IF_MATCH, _WRITE_KEY),
        requestBody={"required": True, "content": json_content("TicketChanges", examples=CHANGES_IN_EXAMPLES)},
        responses={"200": _answer("Changed: the full view", full, **_FULL_ETAG, **_REPLAYED, **LIMIT_HEADERS)},
    )
    _add(
        spec,
        "/requests/{ticket_id}/notes",
        "addNote",
        "Add a note",
        "A note on the ticket, private unless `show_to_requester`. Zoho does not deduplicate notes: send an "
        "`Idempotency-Key` so that a re-send replays instead of adding a second note. Needs `tickets:write`.",
        method="post",
        tags=["tickets"],
        parameters=(_TICKET_ID, _WRITE_KEY),
        requestBody={
            "required": True,
            "content": json_content(
                "NoteIn", examples={"private": {"summary": "A private note", "value": NOTE_IN_EXAMPLE}}
            ),
        },
        responses={
            "201": _answer(
                "Added (or, with `Idempotent-Replayed: true`, the first answer replayed)",
                json_content("NoteCreated", example={"note_id": "123640000000262001"}),
                **_REPLAYED,
                **LIMIT_HEADERS,
            )
        },
    )
    _add(
        spec,
        "/requests/{ticket_id}/notes",
        "listNotes",
        "List a ticket's notes",
        "Every note, oldest first, as plain text. Needs `tickets:read`.",
        tags=["tickets"],
        parameters=(_TICKET_ID,),
        responses={"200": _answer("The notes", json_content("Notes", example=NOTES_EXAMPLE), **LIMIT_HEADERS)},
    )
    _add(
        spec,
        "/requests/{ticket_id}/close",
        "closeTicket",
        "Close a ticket",
        "Closes the ticket; `resolution` becomes its resolution text (so `technician_comments` shows it), "
        "`comments` the closing comments. Closing a closed ticket is 200. The body may be left out. Needs "
        "`tickets:write`.",
        method="post",
        tags=["tickets"],
        parameters=(_TICKET_ID, _WRITE_KEY),
        requestBody={
            "required": False,
            "content": json_content(
                "CloseIn", examples={"resolved": {"summary": "With a resolution", "value": CLOSE_IN_EXAMPLE}}
            ),
        },
        responses={"200": _answer("Closed: the full view", full, **_FULL_ETAG, **_REPLAYED, **LIMIT_HEADERS)},
    )
    _add(
        spec,
        "/requests/{ticket_id}/reopen",
        "reopenTicket",
        "Reopen a ticket",
        "Sets the status to Open; no body. Reopening an open ticket is 200. Needs `tickets:write`.",
        method="post",
        tags=["tickets"],
        parameters=(_TICKET_ID, _WRITE_KEY),
        responses={
            "200": _answer(
                "Reopened: the full view",
                json_content("FullTicket", example={**FULL_TICKET_EXAMPLE, "status": "Open"}),
                **_FULL_ETAG,
                **_REPLAYED,
                **LIMIT_HEADERS,
            )
        },
    )
    for kind, title in _PICK_LISTS.items():
        _add(
            spec,
            f"/meta/{kind}",
            f"get{title}",
            f"{title} to pick from",
            f"Every value of Zoho's {kind} list, for a dropdown; read from Zoho at most `GATEWAY_META_TTL` "
            "seconds ago (default 600). Needs `tickets:read`.",
            tags=["values"],
            responses={
                "200": _answer(f"The {kind}", json_content("PickList", example=PICK_LIST_EXAMPLE), **LIMIT_HEADERS)
            },
        )


# --- attachments (issue 11 §6) ----------------------------------------------------------------------------

_BINARY_FILES = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "maxItems": MAX_FILES,
    "description": f"One part per file (at most {MAX_FILES}), each at most `GATEWAY_MAX_ATTACHMENT_BYTES` (10 MiB), "
    "of a type in `GATEWAY_ATTACHMENT_TYPES` judged from its bytes (default: PNG, JPEG, GIF, WebP, PDF, UTF-8 plain "
    "text, docx/xlsx/pptx, odt/ods/odp, zip); the part's file name is made safe, its claimed type ignored",
}
_FORM_EXAMPLE_NOTE = "`curl -F file=@screenshot.png -F file=@log.txt ...`"
#: ``POST /requests`` as a form.
_TICKET_FORM = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["ticket"],
            "properties": {
                "ticket": {
                    "type": "string",
                    "description": "The ticket as the JSON body (`TicketIn`), validated the same way",
                },
                "file": {**_BINARY_FILES, "minItems": 0},
            },
        },
        "encoding": {"ticket": {"contentType": "application/json"}},
        "examples": {
            "screenshot": {
                "summary": "A ticket and its screenshot: "
                "`curl -F 'ticket={...};type=application/json' -F file=@screenshot.png ...`",
                "value": {"ticket": json.dumps(TICKET_IN_EXAMPLES["minimal"]["value"]), "file": ["<PNG bytes>"]},
            }
        },
    }
}


def _attachment_paths(spec: APISpec) -> None:
    spec.components.schema("AttachmentList", schema=AttachmentListSchema)
    listed = json_content("AttachmentList", example={"items": [ATTACHMENT_EXAMPLE]})
    _add(
        spec,
        "/requests/{ticket_id}/attachments",
        "addAttachments",
        "Attach files to a ticket",
        "`multipart/form-data` with one or more `file` parts. Every file is read (streamed to disk, never whole in "
        "memory) and checked before anything reaches Zoho: over the size cap (counted while it streams) 413; a type "
        "not allowed, judged from the bytes whatever the name or claimed type, 415 naming the type found. Then all "
        "are sent to Zoho in one upload: attached all or none. Never re-sent once it may have arrived (504 "
        "`zoho_outcome_unknown`: list the attachments before sending again). Needs `tickets:write`.",
        method="post",
        tags=["tickets"],
        parameters=(_TICKET_ID,),
        requestBody={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"], "properties": {"file": _BINARY_FILES}},
                    "examples": {
                        "two files": {"summary": _FORM_EXAMPLE_NOTE, "value": {"file": ["<PNG bytes>", "<text>"]}}
                    },
                }
            },
        },
        responses={
            "201": _answer(
                "Attached: one item per file, in the form's order",
                listed,
                Location={
                    "description": "The ticket's attachments: `/requests/<ticket_id>/attachments`",
                    "schema": {"type": "string", "pattern": "/requests/[0-9]{1,20}/attachments$"},
                },
                **LIMIT_HEADERS,
            )
        },
    )
    _add(
        spec,
        "/requests/{ticket_id}/attachments",
        "listAttachments",
        "List a ticket's attachments",
        "The files attached to the ticket, as Zoho lists them now (never cached). Needs `tickets:read`.",
        tags=["tickets"],
        parameters=(_TICKET_ID,),
        responses={"200": _answer("The ticket's attachments", listed, **LIMIT_HEADERS)},
    )


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document as a dict (built once per app)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="zoho-gateway",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "Create and read ServiceDesk Plus tickets through a gateway that holds the Zoho "
            "credentials. Send your API key as `Authorization: Bearer <key>` or `X-API-Key: <key>` (unless the "
            "gateway runs without keys). Every error has the shape "
            '`{"error", "details": {"code", "message", "request_id", ...}}`; branch on `details.code`.'
        },
    )
    plugin.converter.add_attribute_function(_inline_schema_attributes)  # type: ignore[union-attr]
    for name, schema in _SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <API key>`"}
    )
    spec.components.security_scheme(
        "apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "`X-API-Key: <API key>`"}
    )
    spec.tag({"name": "tickets", "description": "The client contract"})
    spec.tag({"name": "values", "description": "The values a ticket's fields may take, for dropdowns"})
    spec.tag({"name": "operators", "description": "Inspection; an API key with `admin` when keys are configured"})
    spec.tag({"name": "probes", "description": "For load balancers and orchestrators; public"})
    spec.tag({"name": "docs", "description": "This description; public"})
    _paths(spec)
    _attachment_paths(spec)
    document = spec.to_dict()
    add_portal_paths(document)
    for name, schema in _SCHEMAS.items():
        # The schema's docstring (first paragraph) describes it; not Meta.description, which would make apispec
        # drop the schema's additionalProperties.
        summary = (inspect.getdoc(schema) or "").split("\n\n")[0]
        document["components"]["schemas"][name]["description"] = " ".join(summary.replace("``", "`").split())
    return document


@bp.get("/openapi.json")
def openapi() -> Response:
    """Public. The OpenAPI 3.0 document (JSON)."""
    return Response(current_app.extensions[_OPENAPI_KEY], mimetype="application/json")


@bp.get("/docs")
def page() -> Response:
    """Public. The document as one readable HTML page (no script, no CDN)."""
    return Response(current_app.extensions[_PAGE_KEY], mimetype="text/html")


def init_app(app: Flask) -> None:
    """Serve the document and the docs page, both built and serialised once, at start-up."""
    document = build_spec()
    app.extensions[_OPENAPI_KEY] = json.dumps(document)
    app.extensions[_PAGE_KEY] = docs.render(document, e.catalogue())
    app.register_blueprint(bp)
