"""Pure transform: the client's flat, validated ticket -> ServiceDesk Plus v3 ``input_data``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Flat lookup fields the client may send, each becoming ``{"name": ...}`` in the request entity.
LOOKUP_FIELDS = ("priority", "department", "category", "status")


def to_request_entity(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """Build ``{"request": {...}}`` from a validated flat ticket.

    ``ticket`` has ``subject``, ``description``, ``requester_email`` and optionally the lookup fields,
    each already normalised to ``{"name": str}``. Absent optional fields are left out, never sent empty.
    """
    request: dict[str, Any] = {
        "subject": ticket["subject"],
        "description": ticket["description"],
        "requester": {"email_id": ticket["requester_email"]},
    }
    for name in LOOKUP_FIELDS:
        value = ticket.get(name)
        if value is not None:
            request[name] = {"name": value["name"]}
    return {"request": request}


def to_input_data(ticket: Mapping[str, Any]) -> str:
    """The ``input_data`` form value: compact JSON of :func:`to_request_entity`, non-ASCII kept as is."""
    return json.dumps(to_request_entity(ticket), ensure_ascii=False, separators=(",", ":"))
