"""The OpenAPI paths of attachments (issue 11 §6), and ``POST /requests`` as a ``multipart/form-data`` form."""

from __future__ import annotations

import json

from apispec import APISpec

from .openapi_operations import _TICKET_ID, _add, _answer
from .openapi_responses import LIMIT_HEADERS, json_content
from .schemas import ATTACHMENT_EXAMPLE, TICKET_IN_EXAMPLES
from .schemas import AttachmentList as AttachmentListSchema
from .uploads import MAX_FILES

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


def add_attachment_paths(spec: APISpec) -> None:
    """Declare ``POST`` and ``GET /requests/{ticket_id}/attachments`` and the ``AttachmentList`` schema on ``spec``."""
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
