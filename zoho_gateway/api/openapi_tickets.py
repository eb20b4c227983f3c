"""The OpenAPI paths of the client contract's core: create a ticket, read it, read a create's outcome."""

from __future__ import annotations

from apispec import APISpec

from ..policies.outbox import REF
from .openapi_attachments import _TICKET_FORM
from .openapi_operations import _TICKET_ID, _add, _answer, _header
from .openapi_responses import CACHE_HEADERS, LIMIT_HEADERS, STRING, json_content
from .schemas import TICKET_CREATED_EXAMPLE, TICKET_IN_EXAMPLES, TICKET_OUT_EXAMPLE
from .schemas_lifecycle import FULL_TICKET_EXAMPLE

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
_VIEW = {
    "name": "view",
    "in": "query",
    "required": False,
    "description": "`full`: the full view (`FullTicket`) instead of the five fields",
    "schema": {"type": "string", "enum": ["full"]},
    "example": "full",
}


def add_ticket_paths(spec: APISpec) -> None:
    """Declare ``POST /requests``, ``GET /requests/{ticket_id}`` and ``GET /requests/{request_ref}`` on ``spec``."""
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
