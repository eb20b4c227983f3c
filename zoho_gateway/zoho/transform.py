"""Pure transform: the client's flat, validated ticket -> ServiceDesk Plus v3 ``input_data``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .model import NewTicket

#: Flat lookup fields the client may send, each becoming ``{"name": ...}`` in the request entity.
LOOKUP_FIELDS = ("priority", "department", "category", "status")


def to_request_entity(ticket: NewTicket, *, udf_fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build ``{"request": {...}}`` from a validated flat ticket.

    ``ticket`` has ``subject``, ``description``, ``requester_email`` and optionally the lookup fields,
    each already normalised to ``{"name": str}``. Absent optional fields are left out, never sent empty.
    ``udf_fields`` (``{"udf_sline_1": "ref"}``), when given and not empty, becomes the entity's ``udf_fields``.
    """
    request: dict[str, Any] = {
        "subject": ticket["subject"],
        "description": ticket["description"],
        "requester": {"email_id": ticket["requester_email"]},
    }
    for name, value in (
        ("priority", ticket.get("priority")),
        ("department", ticket.get("department")),
        ("category", ticket.get("category")),
        ("status", ticket.get("status")),
    ):
        if value is not None:
            request[name] = {"name": value["name"]}
    if udf_fields:
        request["udf_fields"] = dict(udf_fields)
    return {"request": request}


def to_input_data(ticket: NewTicket, *, udf_fields: Mapping[str, str] | None = None) -> str:
    """The ``input_data`` form value: compact JSON of :func:`to_request_entity`, non-ASCII kept as is."""
    return json.dumps(to_request_entity(ticket, udf_fields=udf_fields), ensure_ascii=False, separators=(",", ":"))
