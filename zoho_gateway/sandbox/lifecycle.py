"""The simulated SDP v3 calls that change a request after its creation: update, close, notes, resolution, uploads.

Every call goes through ``sdp.begin`` (counted, delayed, fault-injected, token-checked) like create/get,
and every write can be hit by an after-commit fault (the change is stored, the answer is lost).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import IO, Any

from flask import Blueprint, Response, request
from werkzeug.datastructures import FileStorage

from . import wire
from .entities import (
    Entity,
    attachment_object,
    datetime_value,
    due_by,
    note_object,
    now_ms,
    public,
    resolution_object,
    set_resolution,
    set_status,
    set_technician,
    status_object,
)
from .faults import Fault, after_commit
from .sdp import begin, input_data
from .search import parse_list_info
from .tenancy import Portal
from .validation import SdpInputError, decode_input_data, parse_closure_info, parse_note, parse_resolution, parse_update
from .world import current_portal

# Registered twice by the app factory, like ``sdp.bp``.
bp = Blueprint("sandbox_lifecycle", __name__)

_CHUNK = 64 * 1024


class _AlreadyClosed(SdpInputError):
    """Closing a closed request. Assumed to be refused, as SDP refuses most no-op state changes."""

    def __init__(self) -> None:
        super().__init__(4000, "Request is already closed")


def _failure(exc: SdpInputError) -> Response:
    return wire.sdp_failure(400, exc.status_code, exc.message, exc.field)


def _answer(world: Portal, fault: Fault | None, success: Response) -> Response:
    """The success answer, unless an after-commit fault loses it."""
    lost = after_commit(fault, world, request.environ)
    return lost if lost is not None else success


def _known(ticket_id: str, world: Portal) -> bool:
    return ticket_id.isdigit() and world.desk.has_ticket(ticket_id)


def apply_update(entity: Entity, changes: dict[str, Any], at_ms: int) -> None:
    """Apply checked ``parse_update`` changes to a stored request, stamping ``last_updated_time``."""
    for key, value in changes.items():
        if key == "status":
            set_status(entity, value, at_ms)
        elif key == "technician":
            set_technician(entity, value, at_ms)
        elif key == "resolution":
            set_resolution(entity, value, at_ms)
        elif key == "udf_fields":
            entity["udf_fields"] = {**entity["udf_fields"], **value}
        elif key == "priority":
            entity["priority"] = value
            # SDP's SLA (here: the priority) sets the due time, counted from creation.
            entity["due_by_time"] = due_by(value, int(entity["created_time"]["value"]))
        else:
            entity[key] = value
    entity["last_updated_time"] = datetime_value(at_ms)


@bp.put("/requests/<ticket_id>")
def update_request(ticket_id: str, portal: str | None = None) -> Response:
    """Edit a request with ``input_data={"request": {...}}``; answers 200 with the whole entity.

    A status of Open (or another unfinished status) on a finished request reopens it; a status of Closed
    with ``closure_info`` closes it like ``/close``. 4007 (404) for an unknown id; 4000/4001/4012 (400)
    for a bad body, with nothing changed.
    """
    world = current_portal("sdp")
    answer, fault = begin(world, "update")
    if answer is not None:
        return answer
    if not _known(ticket_id, world):
        return wire.sdp_not_found()
    try:
        changes = parse_update(decode_input_data(input_data()))
    except SdpInputError as exc:
        return _failure(exc)
    at_ms = now_ms()
    updated = world.desk.update_ticket(ticket_id, lambda entity: apply_update(entity, changes, at_ms))
    if updated is None:
        return wire.sdp_not_found()
    world.bump("updates")
    return _answer(world, fault, wire.sdp_entity("request", updated))


@bp.put("/requests/<ticket_id>/close")
def close_request(ticket_id: str, portal: str | None = None) -> Response:
    """Close a request: ``input_data={"request": {"closure_info": {...}}}`` (input_data itself optional).

    Sets the status to Closed, stamps completed/resolved times and stores ``closure_info``. Closing a
    request that is already Closed answers 400 with 4000 "Request is already closed" (an assumption:
    ZOHO-API.md does not say) and changes nothing. Answers 200 with the entity and a success message.
    """
    world = current_portal("sdp")
    answer, fault = begin(world, "close")
    if answer is not None:
        return answer
    if not _known(ticket_id, world):
        return wire.sdp_not_found()
    try:
        raw = input_data()
        body = decode_input_data(raw) if raw is not None and raw.strip() else {}
        extra = sorted(set(body) - {"closure_info"})
        if extra:
            raise SdpInputError(4001, "EXTRA_KEY_FOUND_IN_JSON", extra[0])
        closure = parse_closure_info(body.get("closure_info", {}))
    except SdpInputError as exc:
        return _failure(exc)
    at_ms = now_ms()

    def close(entity: Entity) -> None:
        if entity["status"]["name"] == "Closed":
            raise _AlreadyClosed
        set_status(entity, status_object("Closed"), at_ms)
        entity["closure_info"] = closure

    try:
        closed = world.desk.update_ticket(ticket_id, close)
    except _AlreadyClosed as exc:
        return _failure(exc)
    if closed is None:
        return wire.sdp_not_found()
    world.bump("closes")
    body_out = {
        "request": closed,
        "response_status": {
            "status_code": 2000,
            "messages": [{"status_code": 2000, "type": "success", "message": "Request(s) closed successfully"}],
            "status": "success",
        },
    }
    return _answer(world, fault, wire.json_response(body_out))


# ---- notes -----------------------------------------------------------------------------------------


@bp.post("/requests/<ticket_id>/notes")
def add_note(ticket_id: str, portal: str | None = None) -> Response:
    """Add a note: ``input_data={"request_note": {"description", "show_to_requester", ...}}``.

    Answers ``create_http_status`` with ``{"request_note": {...}}``; the request gets ``has_notes``.
    """
    world = current_portal("sdp")
    answer, fault = begin(world, "note")
    if answer is not None:
        return answer
    if not _known(ticket_id, world):
        return wire.sdp_not_found()
    try:
        description, flags = parse_note(decode_input_data(input_data(), "request_note"))
    except SdpInputError as exc:
        return _failure(exc)
    at_ms = now_ms()

    def touch(entity: Entity, _items: list[Entity]) -> None:
        entity["has_notes"] = True
        entity["last_updated_time"] = datetime_value(at_ms)

    added = world.desk.add_children(
        "notes", ticket_id, [lambda note_id: note_object(note_id, description, flags, at_ms)], touch
    )
    if added is None:
        return wire.sdp_not_found()
    world.bump("notes_added")
    return _answer(world, fault, wire.sdp_entity("request_note", added[0], world.settings.create_http_status))


@bp.get("/requests/<ticket_id>/notes")
def list_notes(ticket_id: str, portal: str | None = None) -> Response:
    """The request's notes, oldest first, as a list (``request_notes``), paged by list_info."""
    return _list_children(ticket_id, "notes", "request_notes")


@bp.get("/requests/<ticket_id>/notes/<note_id>")
def get_note(ticket_id: str, note_id: str, portal: str | None = None) -> Response:
    """One note; 4007 (404) when the request or the note is unknown."""
    world = current_portal("sdp")
    answer, _ = begin(world, "notes")
    if answer is not None:
        return answer
    notes = world.desk.children("notes", ticket_id) if ticket_id.isdigit() else None
    for note in notes or []:
        if note["id"] == note_id:
            return wire.sdp_entity("request_note", note)
    return wire.sdp_not_found()


def _paging() -> tuple[int, int]:
    """start_index and row_count from an optional ``list_info`` (SDP's defaults: 1 and 10, at most 100)."""
    query = parse_list_info(request.args.get("input_data"))
    return query.start_index, query.row_count


def _list_children(ticket_id: str, kind: str, key: str) -> Response:
    world = current_portal("sdp")
    answer, _ = begin(world, "notes" if kind == "notes" else "attachments")
    if answer is not None:
        return answer
    try:
        start_index, row_count = _paging()
    except SdpInputError as exc:
        return _failure(exc)
    items = world.desk.children(kind, ticket_id) if ticket_id.isdigit() else None
    if items is None:
        return wire.sdp_not_found()
    page = [public(item) for item in items[start_index - 1 : start_index - 1 + row_count]]
    list_info = {
        "has_more_rows": start_index - 1 + len(page) < len(items),
        "start_index": start_index,
        "row_count": len(page),
    }
    return wire.sdp_list(key, page, list_info)


# ---- resolution ------------------------------------------------------------------------------------


@bp.route("/requests/<ticket_id>/resolutions", methods=["POST", "PUT"])
def set_request_resolution(ticket_id: str, portal: str | None = None) -> Response:
    """Add or replace the request's one resolution: ``input_data={"resolution": {"content": "..."}}``.

    Answers 200 with ``{"resolution": {content, submitted_by, submitted_on, resolution_attachments}}``.
    The same text then shows as ``request.resolution.content``.
    """
    world = current_portal("sdp")
    answer, fault = begin(world, "resolution")
    if answer is not None:
        return answer
    if not _known(ticket_id, world):
        return wire.sdp_not_found()
    try:
        content = parse_resolution(decode_input_data(input_data(), "resolution"))
    except SdpInputError as exc:
        return _failure(exc)
    at_ms = now_ms()
    updated = world.desk.update_ticket(ticket_id, lambda entity: set_resolution(entity, content, at_ms))
    if updated is None:
        return wire.sdp_not_found()
    return _answer(world, fault, wire.sdp_entity("resolution", _resolution_body(updated)))


@bp.get("/requests/<ticket_id>/resolutions")
def get_request_resolution(ticket_id: str, portal: str | None = None) -> Response:
    """The request's resolution, or ``"resolution": null`` when it has none (assumed)."""
    world = current_portal("sdp")
    answer, _ = begin(world, "resolution")
    if answer is not None:
        return answer
    entity = world.desk.get_ticket(ticket_id) if ticket_id.isdigit() else None
    if entity is None:
        return wire.sdp_not_found()
    body = None if entity["resolution"] is None else _resolution_body(entity)
    return wire.json_response({"resolution": body, "response_status": wire.SUCCESS_STATUS})


def _resolution_body(entity: Entity) -> Entity:
    resolution = entity["resolution"] or resolution_object("", now_ms())
    return {**resolution, "resolution_attachments": []}


# ---- uploads and attachments ------------------------------------------------------------------------


def _measure(stream: IO[bytes], limit: int) -> tuple[int, str] | None:
    """(size, sha256) of a file read in chunks, or None as soon as it exceeds ``limit`` bytes."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        digest.update(chunk)
    return size, digest.hexdigest()


@bp.post("/requests/<ticket_id>/_uploads")
def upload(ticket_id: str, portal: str | None = None) -> Response:
    """Upload files (``multipart/form-data``, every file part counts, e.g. ``filename=@shot.png``).

    With ``addtoattachment=true`` the files become attachments of the request (``has_attachments``);
    without it they are only uploaded (answered, not listed). Each file is read in chunks (werkzeug spools
    big parts to disk) and only its size and SHA-256 are kept, never its bytes. Answers 200 with the list
    envelope and ``files: [{id, file_id, name, content_type, size, content_url, ...}]``; 4012 without a
    file, 4000 when a file exceeds ``max_upload_bytes``.
    """
    world = current_portal("sdp")
    answer, fault = begin(world, "upload")
    if answer is not None:
        return answer
    if not _known(ticket_id, world):
        return wire.sdp_not_found()
    files: list[FileStorage] = [storage for _, storage in request.files.items(multi=True)]
    if not files:
        return wire.sdp_failure(400, 4012, "Value for the mandatory field filename is not provided", "filename")
    limit = world.settings.max_upload_bytes
    measured: list[tuple[FileStorage, int, str]] = []
    for storage in files:
        result = _measure(storage.stream, limit)
        if result is None:
            return wire.sdp_failure(400, 4000, f"File size exceeds the limit of {limit} bytes", "filename")
        measured.append((storage, *result))
    attach = request.form.get("addtoattachment", "false").lower() == "true"
    at_ms = now_ms()
    prefix = "" if world.name == "default" else f"/t/{world.name}"
    builds = [_builder(ticket_id, storage, size, sha256, at_ms, prefix) for storage, size, sha256 in measured]

    def touch(entity: Entity, items: list[Entity]) -> None:
        if attach:
            entity["attachments"] = [*entity["attachments"], *(public(item) for item in items)]
            entity["has_attachments"] = True
            entity["last_updated_time"] = datetime_value(at_ms)

    if attach:
        stored = world.desk.add_children("attachments", ticket_id, builds, touch)
        if stored is None:
            return wire.sdp_not_found()
    else:
        # Uploaded but not attached: the files get ids and are forgotten, as nothing can refer to them here.
        stored = [build(world.desk.child_id()) for build in builds]
    world.bump("uploads")
    body = {"response_status": [dict(wire.SUCCESS_STATUS)], "files": [public(item) for item in stored]}
    return _answer(world, fault, wire.json_response(body))


def _builder(
    ticket_id: str, storage: FileStorage, size: int, sha256: str, at_ms: int, prefix: str
) -> Callable[[str], Entity]:
    name = storage.filename or "file"
    content_type = storage.mimetype or "application/octet-stream"
    return lambda attachment_id: attachment_object(
        attachment_id, ticket_id, name, content_type, size, sha256, at_ms, prefix
    )


@bp.get("/requests/<ticket_id>/attachments")
def list_attachments(ticket_id: str, portal: str | None = None) -> Response:
    """The request's attachments, oldest first (``attachments``), paged by list_info."""
    return _list_children(ticket_id, "attachments", "attachments")
