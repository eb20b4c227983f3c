"""Pure transform: the client's flat, validated values -> ServiceDesk Plus v3 ``input_data``.

Client text goes into Zoho's JSON as string values: as given, except that text for a field Zoho reads as
HTML (a description, a note, a resolution) is escaped when it would read as HTML itself (:mod:`.text`).
Every ``input_data`` is compact JSON with non-ASCII kept as is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .model import NewTicket, TicketChanges
from .text import for_html_field

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


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def update_input_data(changes: TicketChanges) -> str:
    """``{"request": {...}}`` holding only the fields in ``changes``; the description as an HTML field,
    lookups as ``{"name"}``."""
    request: dict[str, Any] = {}
    if "subject" in changes:
        request["subject"] = changes["subject"]
    if "description" in changes:
        request["description"] = for_html_field(changes["description"])
    for name, value in (
        ("priority", changes.get("priority")),
        ("department", changes.get("department")),
        ("category", changes.get("category")),
        ("status", changes.get("status")),
    ):
        if value is not None:
            request[name] = {"name": value["name"]}
    return _dumps({"request": request})


def close_input_data(comments: str | None) -> str | None:
    """The close call's ``{"request": {"closure_info": {"closure_comments": ...}}}``, or None without comments.

    Nothing else is claimed: not ``requester_ack_resolution`` (the requester did not say so), no closure code.
    """
    if comments is None:
        return None
    return _dumps({"request": {"closure_info": {"closure_comments": comments}}})


def resolution_input_data(text: str) -> str:
    """``{"resolution": {"content": text}}``: the request's one resolution (``text`` as an HTML field)."""
    return _dumps({"resolution": {"content": for_html_field(text)}})


def note_input_data(text: str, *, show_to_requester: bool) -> str:
    """``{"request_note": {"description": text, "show_to_requester": ...}}``; SDP's other flags keep their defaults."""
    note = {"description": for_html_field(text), "show_to_requester": show_to_requester}
    return _dumps({"request_note": note})
