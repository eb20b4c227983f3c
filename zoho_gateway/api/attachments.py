"""``POST /requests/<ticket_id>/attachments`` and ``GET /requests/<ticket_id>/attachments``: files on a ticket.

Files arrive as ``multipart/form-data`` and are read by ``api/uploads.py`` (streamed to temporary files,
capped, typed from their bytes, names made safe) before anything is sent to Zoho; the ticket service then
streams them to Zoho in one call. ``attach_after_create`` does the same for ``POST /requests`` with files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response

from ..errors import GatewayError, InvalidMultipart, InvalidTicketId
from ..gateway import current_gateway
from ..zoho.model import Attachment
from .access import annotate
from .schemas import TICKET_ID
from .scopes import requires
from .uploads import Form, Received, read_form

bp = Blueprint("attachments", __name__)

#: The ``code`` of a file not attached because the create answered 202 (the ticket does not exist yet).
TICKET_PENDING = "ticket_pending"


def _json_response(body: Any, status: int) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _check_id(ticket_id: str) -> None:
    if not TICKET_ID.fullmatch(ticket_id):
        raise InvalidTicketId("Ticket ids are digits only (at most 20)")


def read_files(*, texts: dict[str, int] | None = None) -> Form:
    """This request's form, read with the configured caps and allowed types (see ``uploads.read_form``)."""
    config = current_gateway().config
    return read_form(
        max_file_bytes=config.max_attachment_bytes, allowed_types=config.attachment_types, texts=texts or {}
    )


def _invalidate(ticket_id: str) -> None:
    """Drop the ticket's cached reads after a write (issue 11 §9: ``has_attachments`` in the full view
    changes), on every worker and host."""
    current_gateway().cache.invalidate(ticket_id)


def _items(attached: Sequence[Attachment], files: Sequence[Received]) -> list[dict[str, Any]]:
    """What Zoho made of each file, in order; what the gateway measured fills what Zoho leaves out."""
    return [
        {
            "attachment_id": made["attachment_id"],
            "name": made["name"] or sent.name,
            "size": made["size"] if made["size"] is not None else sent.size,
            "content_type": made["content_type"] or sent.content_type,
        }
        for made, sent in zip(attached, files, strict=False)
    ]


def _attach(ticket_id: str, files: Sequence[Received]) -> list[dict[str, Any]]:
    """Send ``files`` to the ticket in one call; raises what the ticket service raises."""
    try:
        attached = current_gateway().tickets.attach(ticket_id, [received.upload() for received in files])
    finally:
        _invalidate(ticket_id)  # also after a failure: an upload that got no answer may have been attached
    return _items(attached, files)


@bp.post("/requests/<ticket_id>/attachments")
@requires("tickets:write")
def add_attachments(ticket_id: str) -> Response:
    """Attach the form's ``file`` parts to the ticket: 201 ``{"items": [...]}``, one item per file, in order.

    Every file is read and checked (size, type, name) before anything reaches Zoho; then all go in one
    upload, attached all or none. Never re-sent once it may have arrived (504 ``zoho_outcome_unknown``:
    list the attachments before sending again).
    """
    _check_id(ticket_id)
    with read_files() as form:
        if not form.files:
            raise InvalidMultipart("The form has no 'file' part; send one or more")
        annotate(zoho_ticket_id=ticket_id, files=len(form.files), file_bytes=sum(f.size for f in form.files))
        items = _attach(ticket_id, form.files)
    response = _json_response({"items": items}, 201)
    response.headers["Location"] = f"/requests/{ticket_id}/attachments"
    return response


@bp.get("/requests/<ticket_id>/attachments")
@requires("tickets:read")
def list_attachments(ticket_id: str) -> Response:
    """The ticket's attachments, ``200 {"items": [...]}``, as Zoho lists them now (never cached)."""
    _check_id(ticket_id)
    items = current_gateway().tickets.list_attachments(ticket_id)
    response = _json_response({"items": items}, 200)
    response.headers["Cache-Control"] = "no-cache"
    return response


def attach_after_create(ticket_id: str, form: Form, *, replayed: bool = False) -> dict[str, Any]:
    """The ``attachments`` of a multipart create's 201: ``{"items", "failed"}``. The ticket exists whatever
    happens here, so a failed upload is reported per file (``name``, ``code``, ``message``), never raised.

    A replay (same Idempotency-Key) attaches only the files the ticket does not already have (by name and
    size): a client re-sending after a lost answer gets each file once, and the ones that failed the first time.
    """
    items: list[dict[str, Any]] = []
    files = list(form.files)
    try:
        if replayed and files:
            held = {(a["name"], a["size"]): a for a in current_gateway().tickets.list_attachments(ticket_id)}
            items = [dict(held[(f.name, f.size)]) for f in files if (f.name, f.size) in held]
            files = [f for f in files if (f.name, f.size) not in held]
        if files:
            items += _attach(ticket_id, files)
    except GatewayError as error:
        annotate(attachments_failed=error.code)
        failed = [{"name": f.name, "code": error.code, "message": error.message} for f in files]
        return {"items": items, "failed": failed}
    return {"items": items, "failed": []}


def not_attached_while_pending(form: Form) -> dict[str, Any]:
    """The ``attachments`` of a multipart create answered 202: the ticket does not exist yet, so none is."""
    message = "The ticket is not created yet; attach the file to it once the create's outcome is created"
    return {"items": [], "failed": [{"name": f.name, "code": TICKET_PENDING, "message": message} for f in form.files]}
