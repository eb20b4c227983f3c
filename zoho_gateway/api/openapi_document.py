"""The OpenAPI 3 document: the schemas, security schemes and tags, and every area's paths, assembled once."""

from __future__ import annotations

import inspect
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from .openapi_attachments import add_attachment_paths
from .openapi_lifecycle import add_lifecycle_paths
from .openapi_operators import add_operator_paths
from .openapi_portals import add_portal_paths
from .openapi_tickets import add_ticket_paths
from .schemas import NameRef, TicketCreated, TicketIn, TicketOut, _not_blank
from .schemas_docs import ErrorBody, ErrorDetails, Health, Index, Readiness, TokenStatus
from .schemas_lifecycle import (
    CloseIn,
    FullTicketOut,
    NoteCreated,
    NoteIn,
    NotesOut,
    PickListOut,
    TicketChangesIn,
    TicketListOut,
)

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
    add_ticket_paths(spec)
    add_lifecycle_paths(spec)
    add_operator_paths(spec)
    add_attachment_paths(spec)
    document = spec.to_dict()
    add_portal_paths(document)
    for name, schema in _SCHEMAS.items():
        # The schema's docstring (first paragraph) describes it; not Meta.description, which would make apispec
        # drop the schema's additionalProperties.
        summary = (inspect.getdoc(schema) or "").split("\n\n")[0]
        document["components"]["schemas"][name]["description"] = " ".join(summary.replace("``", "`").split())
    return document
