"""The OpenAPI paths of the ticket lifecycle (issue 11): find, update, notes, close, reopen, pick lists."""

from __future__ import annotations

from apispec import APISpec

from .openapi_operations import _TICKET_ID, _add, _answer, _header
from .openapi_responses import LIMIT_HEADERS, STRING, json_content
from .schemas_lifecycle import (
    CHANGES_IN_EXAMPLES,
    CLOSE_IN_EXAMPLE,
    FULL_TICKET_EXAMPLE,
    NOTE_IN_EXAMPLE,
    NOTES_EXAMPLE,
    PICK_LIST_EXAMPLE,
    TICKET_LIST_EXAMPLE,
    FindQuery,
)

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


def add_lifecycle_paths(spec: APISpec) -> None:
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
