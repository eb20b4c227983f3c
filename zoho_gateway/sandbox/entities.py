"""Builds SDP v3 ``request`` entities and their sub-objects in the exact shape SDP Cloud returns."""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Entity = dict[str, Any]

PHOTO_URL = "https://contacts.zoho.com/file?exp=10&ID=-1&t=user&height=60&width=60"

# name -> colour, as SDP shows them in the priority picker.
PRIORITIES: dict[str, str] = {
    "Low": "#666666",
    "Medium": "#ff9900",
    "Normal": "#00cc66",
    "High": "#ff0000",
    "Urgent": "#990000",
}

# name -> (internal_name, colour, in_progress, stop_timer)
STATUSES: dict[str, tuple[str, str, bool, bool]] = {
    "Open": ("Open", "#0066ff", True, False),
    "On Hold": ("Onhold", "#ff9900", True, True),
    "In Progress": ("In Progress", "#33cc33", True, False),
    "Resolved": ("Resolved", "#00ff66", False, True),
    "Closed": ("Closed", "#006600", False, True),
    "Canceled": ("Canceled", "#999999", False, True),
}

CATEGORIES = (
    "Hardware",
    "Software",
    "Network",
    "Internet",
    "Printers",
    "General",
    "Operating System",
    "User Administration",
)

DEPARTMENTS = ("IT Services", "Sales", "Finance", "Human Resources", "Engineering", "Administration")

# SDP's default closure codes (Admin > Closure Codes); a close may name one.
CLOSURE_CODES = ("Success", "Failed", "Canceled", "Postponed", "Unable to Reproduce", "Rejected")

# Statuses that end a request; moving out of one of them is a reopen.
FINISHED_STATUSES = frozenset({"Resolved", "Closed", "Canceled"})

# Hours from creation to due_by_time per priority, standing in for SDP's SLAs (none: the default SLA).
DUE_HOURS: dict[str | None, int] = {"Urgent": 4, "High": 8, "Medium": 24, "Normal": 24, "Low": 72, None: 24}

# Lookup fields whose names must come from a fixed list; every other lookup accepts any name.
CATALOGS: dict[str, tuple[str, ...]] = {
    "priority": tuple(PRIORITIES),
    "status": tuple(STATUSES),
    "category": CATEGORIES,
    "department": DEPARTMENTS,
    "closure_code": CLOSURE_CODES,
}

API_USER_NAME = "Sandbox API User"
API_USER_EMAIL = "sdp-api@sandbox.invalid"


class UnknownLookup(ValueError):
    """A lookup field named a value the tenant does not have."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"Value given for {field_name} is not valid")
        self.field_name = field_name


def stable_id(kind: str, key: str) -> str:
    """An 18-digit SDP-looking id that is the same for the same (kind, key) in every run."""
    digest = zlib.crc32(f"{kind}:{key.lower()}".encode()) % 1_000_000
    return f"123640000000{digest:06d}"


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds (SDP's datetime ``value``)."""
    return int(time.time() * 1000)


def datetime_value(epoch_ms: int) -> dict[str, str]:
    """SDP's datetime object: a display string plus epoch milliseconds as a string."""
    display = time.strftime("%b %d, %Y %I:%M %p", time.gmtime(epoch_ms / 1000))
    return {"display_value": display, "value": str(epoch_ms)}


def _canonical(field_name: str, name: str) -> str:
    for known in CATALOGS[field_name]:
        if known.lower() == name.strip().lower():
            return known
    raise UnknownLookup(field_name)


def _by_id(field_name: str, item_id: str) -> str:
    for known in CATALOGS[field_name]:
        if stable_id(field_name, known) == item_id:
            return known
    raise UnknownLookup(field_name)


def catalog_object(field_name: str, ref: Mapping[str, Any]) -> Entity:
    """Resolve ``{"name": ...}`` or ``{"id": ...}`` for priority/status/category/department.

    Raises UnknownLookup when the name or id is not in the catalog.
    """
    name = ref.get("name")
    if isinstance(name, str) and name.strip():
        canonical = _canonical(field_name, name)
    elif isinstance(ref.get("id"), (str, int)) and not isinstance(ref.get("id"), bool):
        canonical = _by_id(field_name, str(ref["id"]))
    else:
        raise UnknownLookup(field_name)
    item_id = stable_id(field_name, canonical)
    if field_name == "priority":
        return {"color": PRIORITIES[canonical], "name": canonical, "id": item_id}
    if field_name == "status":
        return status_object(canonical)
    return {"name": canonical, "id": item_id}


def status_object(name: str) -> Entity:
    """The status sub-object for a known status name."""
    internal_name, color, in_progress, stop_timer = STATUSES[name]
    return {
        "in_progress": in_progress,
        "internal_name": internal_name,
        "stop_timer": stop_timer,
        "color": color,
        "name": name,
        "id": stable_id("status", name),
    }


def named_object(field_name: str, ref: Mapping[str, Any]) -> Entity:
    """A free lookup (urgency, level, mode, group, ...): any name is accepted; a bare id keeps a null name."""
    name = ref.get("name")
    if isinstance(name, str) and name.strip():
        entity: Entity = {"name": name.strip(), "id": stable_id(field_name, name.strip())}
    else:
        entity = {"name": None, "id": str(ref.get("id"))}
    if field_name == "group":
        return {"site": None, "deleted": False, **entity}
    return entity


def _name_from_email(email: str) -> str:
    local = email.split("@", 1)[0]
    words = [word for word in local.replace("_", ".").replace("-", ".").split(".") if word]
    return " ".join(word.capitalize() for word in words) or email


def user_object(
    *, name: str | None, email_id: str | None, user_id: str | None = None, is_technician: bool = False
) -> Entity:
    """The requester / created_by shape. Missing name or id are derived from what is known."""
    if name is None:
        name = _name_from_email(email_id) if email_id else f"User {user_id}"
    if user_id is None:
        user_id = stable_id("user", email_id or name)
    return {
        "email_id": email_id,
        "is_technician": is_technician,
        "sms_mail": None,
        "phone": None,
        "name": name,
        "mobile": None,
        "id": user_id,
        "photo_url": PHOTO_URL,
        "is_vip_user": False,
        "department": None,
    }


def technician_object(*, name: str | None, email_id: str | None, tech_id: str | None = None) -> Entity:
    """The technician shape (different keys from a requester: cost_per_hour, sms_mail_id)."""
    if name is None:
        name = _name_from_email(email_id) if email_id else f"Technician {tech_id}"
    return {
        "email_id": email_id,
        "cost_per_hour": "0",
        "phone": None,
        "name": name,
        "mobile": None,
        "id": tech_id or stable_id("technician", email_id or name),
        "photo_url": PHOTO_URL,
        "sms_mail_id": None,
    }


def api_user() -> Entity:
    """The account the OAuth client acts as; it becomes ``created_by`` (and requester if none is given)."""
    return user_object(name=API_USER_NAME, email_id=API_USER_EMAIL, is_technician=True)


def resolution_object(content: str, epoch_ms: int) -> Entity:
    """A resolution as it appears inside a request."""
    return {"content": content, "submitted_on": datetime_value(epoch_ms), "submitted_by": api_user()}


@dataclass
class NewRequest:
    """The resolved fields of a create call; anything left None is null in the entity."""

    subject: str
    description: str | None = None
    requester: Entity | None = None
    technician: Entity | None = None
    status: Entity | None = None
    lookups: dict[str, Entity] = field(default_factory=dict)
    udf_fields: dict[str, Any] = field(default_factory=dict)
    email_ids_to_notify: list[str] = field(default_factory=list)


def build_request(ticket_id: str, display_id: str, new: NewRequest, created_ms: int) -> Entity:
    """A complete SDP v3 request entity (the 62 keys of a real GET, in the same order)."""
    created = datetime_value(created_ms)
    lookups = new.lookups
    assigned = datetime_value(created_ms) if new.technician is not None else None
    return {
        "subject": new.subject,
        "resolution": None,
        "linked_to_request": None,
        "mode": lookups.get("mode"),
        "lifecycle": None,
        "is_read": False,
        "cancellation_requested": False,
        "is_trashed": False,
        "id": ticket_id,
        "assigned_time": assigned,
        "group": lookups.get("group"),
        "requester": new.requester if new.requester is not None else api_user(),
        "email_to": [],
        "created_time": created,
        "item": lookups.get("item"),
        "cancel_flag_comments": None,
        "level": lookups.get("level"),
        "approval_status": None,
        "impact": lookups.get("impact"),
        "sla": None,
        "resolved_time": None,
        "priority": lookups.get("priority"),
        "created_by": api_user(),
        "first_response_due_by_time": None,
        "is_escalated": False,
        "last_updated_time": dict(created),
        "has_notes": False,
        "udf_fields": dict(new.udf_fields),
        "impact_details": None,
        "subcategory": lookups.get("subcategory"),
        "deleted_time": None,
        "email_cc": [],
        "status": new.status if new.status is not None else status_object("Open"),
        "template": lookups.get("template") or named_object("template", {"name": "Default Request"}),
        "email_ids_to_notify": list(new.email_ids_to_notify),
        "attachments": [],
        "request_type": lookups.get("request_type") or named_object("request_type", {"name": "Incident"}),
        "display_id": display_id,
        "time_elapsed": "0",
        "notification_status": None,
        "description": new.description,
        "responded_time": None,
        "is_service_request": False,
        "urgency": lookups.get("urgency"),
        "has_request_initiated_change": False,
        "department": lookups.get("department"),
        "is_reopened": False,
        "has_draft": False,
        "has_attachments": False,
        "has_linked_requests": False,
        "is_overdue": False,
        "technician": new.technician,
        "has_problem": False,
        "due_by_time": due_by(lookups.get("priority"), created_ms),
        "is_fcr": False,
        "has_project": False,
        "site": lookups.get("site"),
        "is_first_response_overdue": False,
        "completed_time": None,
        "unreplied_count": 0,
        "email_bcc": [],
        "category": lookups.get("category"),
    }


def set_technician(entity: Entity, technician: Entity | None, at_ms: int) -> None:
    """Assign (or unassign, with None) a technician."""
    entity["technician"] = technician
    entity["assigned_time"] = datetime_value(at_ms) if technician is not None else None
    entity["last_updated_time"] = datetime_value(at_ms)


def set_resolution(entity: Entity, content: str | None, at_ms: int) -> None:
    """Set (or clear, with None) the request's single resolution."""
    entity["resolution"] = resolution_object(content, at_ms) if content is not None else None
    entity["last_updated_time"] = datetime_value(at_ms)


def set_status(entity: Entity, status: Entity, at_ms: int) -> None:
    """Change the status, stamping resolved/completed times the way SDP does.

    Leaving Resolved/Closed/Canceled for an open status is a reopen: ``is_reopened`` becomes true and the
    resolved/completed times are cleared (the closure_info stays, as history).
    """
    reopened = entity["status"]["name"] in FINISHED_STATUSES and status["name"] not in FINISHED_STATUSES
    entity["status"] = status
    stamp = datetime_value(at_ms)
    if status["name"] == "Resolved":
        entity["resolved_time"] = stamp
    elif status["name"] in ("Closed", "Canceled"):
        entity["completed_time"] = stamp
        entity["resolved_time"] = entity["resolved_time"] or stamp
    elif reopened:
        entity["is_reopened"] = True
        entity["resolved_time"] = None
        entity["completed_time"] = None
    entity["last_updated_time"] = stamp


def due_by(priority: Mapping[str, Any] | None, created_ms: int) -> dict[str, str]:
    """due_by_time for a request of ``priority`` created at ``created_ms`` (see DUE_HOURS)."""
    hours = DUE_HOURS.get(None if priority is None else priority.get("name"), DUE_HOURS[None])
    return datetime_value(created_ms + hours * 3_600_000)


def closure_info_object(*, ack: bool, ack_comments: str | None, comments: str | None, code: Entity | None) -> Entity:
    """The ``closure_info`` a closed request carries."""
    return {
        "requester_ack_resolution": ack,
        "requester_ack_comments": ack_comments,
        "closure_comments": comments,
        "closure_code": code,
    }


def note_object(note_id: str, description: str, flags: Mapping[str, bool], at_ms: int) -> Entity:
    """A request note as ``/notes`` returns it."""
    return {
        "id": note_id,
        "description": description,
        "show_to_requester": flags.get("show_to_requester", False),
        "notify_technician": flags.get("notify_technician", False),
        "mark_first_response": flags.get("mark_first_response", False),
        "add_to_linked_requests": flags.get("add_to_linked_requests", False),
        "created_time": datetime_value(at_ms),
        "created_by": api_user(),
        "last_updated_time": None,
    }


def _display_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.2f} KB"
    return f"{size / (1024 * 1024):.2f} MB"


def attachment_object(
    attachment_id: str,
    ticket_id: str,
    name: str,
    content_type: str,
    size: int,
    sha256: str,
    at_ms: int,
    prefix: str = "",
) -> Entity:
    """A request attachment (``prefix``: the portal's ``/t/<name>``, if any). Keys starting with "_" are the
    sandbox's own and never sent over SDP."""
    return {
        "id": attachment_id,
        "file_id": attachment_id,
        "name": name,
        "content_type": content_type,
        "size": {"display_value": _display_size(size), "value": str(size)},
        "content_url": f"{prefix}/api/v3/requests/{ticket_id}/attachments/{attachment_id}/download",
        "attached_by": api_user(),
        "attached_on": datetime_value(at_ms),
        "_sha256": sha256,
    }


def public(item: Mapping[str, Any]) -> Entity:
    """``item`` without the sandbox's own ("_"-prefixed) keys."""
    return {key: value for key, value in item.items() if not key.startswith("_")}


# Top-level keys a request can have: the 62 of a real GET plus ``closure_info`` (present once closed).
ENTITY_KEYS = frozenset(build_request("0", "0", NewRequest(subject=""), 0)) | {"closure_info"}
