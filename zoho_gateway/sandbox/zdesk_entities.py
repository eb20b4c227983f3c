"""Zoho Desk v1 records (tickets, contacts, comments, attachments, departments, agents) and their checks.

Shapes follow ZOHO-API.md §4.6 (the ticket, key for key); what §2 and §4.6 leave open is assumed here and
listed in the sandbox README section of the report (statuses and priorities are Desk's defaults).
"""

from __future__ import annotations

import calendar
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Entity = dict[str, Any]

# Desk's default statuses, each with its statusType; anything else is refused as invalid (assumed).
STATUSES: dict[str, str] = {"Open": "Open", "On Hold": "On Hold", "Escalated": "Open", "Closed": "Closed"}
PRIORITIES = ("High", "Medium", "Low")
DEPARTMENT_NAMES = ("Support", "Sales")
AGENTS: tuple[tuple[str, str, str], ...] = (
    ("Ada", "Agent", "ada.agent@sandbox.invalid"),
    ("Bo", "Support", "bo.support@sandbox.invalid"),
)
SUBJECT_MAX = 255
DESCRIPTION_MAX = 65_535
CF_KEY = re.compile(r"^cf_[a-z0-9_]{1,60}$")

# Objects a read shows only when ``include`` names them (the §4.6 sample was fetched with them).
INCLUDES: dict[str, tuple[str, ...]] = {
    "contacts": ("contact",),
    "assignee": ("assignee",),
    "departments": ("department",),
    "products": ("product",),
    "team": ("team",),
    "isRead": ("isRead",),
    "skills": ("skillsInfo",),
}
GATED_KEYS = frozenset(key for keys in INCLUDES.values() for key in keys)

CREATE_KEYS = frozenset(
    {
        "subject",
        "description",
        "departmentId",
        "contactId",
        "contact",
        "email",
        "phone",
        "status",
        "assigneeId",
        "category",
        "subCategory",
        "resolution",
        "dueDate",
        "priority",
        "language",
        "productId",
        "channel",
        "classification",
        "cf",
        "customFields",
        "uploads",
    }
)
UPDATE_KEYS = CREATE_KEYS - {"contact", "uploads"}
CHANNELS = ("Phone", "Email", "Web", "Twitter", "Facebook", "Chat", "Forums", "Feedback Widget")


class DeskInputError(ValueError):
    """A refused body: the field (a name, shown as a JSON pointer), missing|invalid|duplicate, a message."""

    def __init__(self, field_name: str, error_type: str = "invalid", message: str = "") -> None:
        super().__init__(message or f"{field_name} is {error_type}")
        self.field_name = field_name
        self.error_type = error_type
        self.message = message


def desk_id(kind: str, key: str) -> str:
    """A 17-digit Desk-looking id, the same for the same (kind, key) in every run."""
    return f"97709{zlib.crc32(f'{kind}:{key}'.encode()):012d}"


def iso(epoch_ms: int) -> str:
    """Desk's timestamps: ISO 8601 UTC with milliseconds, e.g. ``2022-06-27T17:12:35.000Z``."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def iso_to_ms(text: str) -> int | None:
    """Epoch ms of ``iso`` output (also without the milliseconds); None when it is not such a timestamp."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))?Z", text.strip())
    if match is None:
        return None
    try:
        seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    return seconds * 1000 + int((match.group(2) or "0").ljust(3, "0"))


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- catalogs ----------------------------------------------------------------------------------------


def departments(org_id: str) -> list[Entity]:
    """The portal's departments (the first is the default one)."""
    return [
        {
            "id": desk_id("department", f"{org_id}:{name}"),
            "name": name,
            "isDefault": index == 0,
            "isEnabled": True,
            "description": None,
            "nameInCustomerPortal": name,
            "isVisibleInCustomerPortal": True,
        }
        for index, name in enumerate(DEPARTMENT_NAMES)
    ]


def agent_object(
    first_name: str | None, last_name: str | None, email: str | None, agent_id: str | None = None
) -> Entity:
    """The ``assignee`` shape of §4.6."""
    return {
        "photoURL": None,
        "firstName": first_name,
        "lastName": last_name,
        "id": agent_id or desk_id("agent", email or f"{first_name} {last_name}"),
        "email": email,
    }


def agents() -> list[Entity]:
    return [agent_object(first, last, email) for first, last, email in AGENTS]


# ---- contacts ----------------------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], key: str, limit: int = 255, required: bool = False) -> str | None:
    value = payload.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and required):
        if required:
            raise DeskInputError(key, "missing")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise DeskInputError(key, "invalid", f"{key} must be a string of at most {limit} characters")
    return value


def _email(payload: Mapping[str, Any], key: str = "email", prefix: str = "") -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value.strip()):
        raise DeskInputError(prefix + key, "invalid", "Invalid email address")
    return value.strip()


@dataclass(frozen=True)
class NewContact:
    last_name: str
    first_name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None


CONTACT_KEYS = frozenset({"lastName", "firstName", "email", "phone", "mobile", "accountId", "description", "type"})


def parse_contact(payload: object, prefix: str = "") -> NewContact:
    """A ``POST /contacts`` body, or the ``contact`` object of a ticket create (``prefix`` "contact/").

    ``lastName`` is required by ``/contacts``; inside a ticket, ``lastName`` or ``email`` is enough (the
    last name then comes from the address), as §2 quotes the create-ticket doc.
    """
    if not isinstance(payload, Mapping):
        raise DeskInputError(prefix.rstrip("/") or "contact", "invalid", "must be a JSON object")
    for key in payload:
        if key not in CONTACT_KEYS:
            raise DeskInputError(prefix + str(key), "invalid", f"An extra parameter '{key}' is found")
    email = _email(payload, prefix=prefix)
    last_name = payload.get("lastName")
    if last_name is None or (isinstance(last_name, str) and not last_name.strip()):
        if not prefix or email is None:
            raise DeskInputError(prefix + "lastName", "missing")
        last_name = email.split("@", 1)[0]
    if not isinstance(last_name, str) or len(last_name) > 80:
        raise DeskInputError(prefix + "lastName", "invalid")
    first_name = payload.get("firstName")
    if first_name is not None and (not isinstance(first_name, str) or len(first_name) > 80):
        raise DeskInputError(prefix + "firstName", "invalid")
    phone, mobile = payload.get("phone"), payload.get("mobile")
    for key, value in (("phone", phone), ("mobile", mobile)):
        if value is not None and not isinstance(value, str):
            raise DeskInputError(prefix + key, "invalid")
    return NewContact(last_name=last_name.strip(), first_name=first_name, email=email, phone=phone, mobile=mobile)


def build_contact(contact_id: str, new: NewContact, created_ms: int, portal: str) -> Entity:
    """A contact as ``/contacts`` answers it."""
    return {
        "id": contact_id,
        "firstName": new.first_name,
        "lastName": new.last_name,
        "email": new.email,
        "secondaryEmail": None,
        "phone": new.phone,
        "mobile": new.mobile,
        "type": None,
        "ownerId": None,
        "accountId": None,
        "isSpam": False,
        "createdTime": iso(created_ms),
        "modifiedTime": iso(created_ms),
        "webUrl": f"https://desk.zoho.com/support/{portal}/ShowHomePage.do#Contacts/dv/{contact_id}",
    }


def contact_in_ticket(contact: Mapping[str, Any]) -> Entity:
    """The ``contact`` object inside a ticket (§4.6)."""
    return {
        "firstName": contact["firstName"],
        "lastName": contact["lastName"],
        "phone": contact["phone"],
        "mobile": contact["mobile"],
        "id": contact["id"],
        "isSpam": False,
        "type": None,
        "email": contact["email"],
        "account": None,
    }


# ---- tickets -----------------------------------------------------------------------------------------


@dataclass
class NewTicket:
    """A checked create body; ``contact_id``/``contact`` are resolved by the view (it owns the stores)."""

    subject: str
    department: Entity
    contact_id: str | None = None
    contact: NewContact | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def _status(value: object) -> str:
    if isinstance(value, str):
        for known in STATUSES:
            if known.lower() == value.strip().lower():
                return known
    raise DeskInputError("status", "invalid", f"Status '{value}' does not exist")


def _priority(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        for known in PRIORITIES:
            if known.lower() == value.strip().lower():
                return known
    raise DeskInputError("priority", "invalid", f"Priority '{value}' does not exist")


def _department(value: object, org_id: str) -> Entity:
    for department in departments(org_id):
        if str(value) == department["id"]:
            return {"name": department["name"], "id": department["id"]}
    raise DeskInputError("departmentId", "invalid", "Department does not exist")


def _agent(value: object) -> Entity | None:
    if value is None:
        return None
    for agent in agents():
        if str(value) == agent["id"]:
            return agent
    raise DeskInputError("assigneeId", "invalid", "Agent does not exist")


def _custom_fields(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise DeskInputError("cf", "invalid", "cf must be an object")
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not CF_KEY.match(key):
            raise DeskInputError(f"cf/{key}", "invalid", f"Custom field '{key}' does not exist")
        if isinstance(item, (Mapping, list)) or (isinstance(item, str) and len(item) > 255):
            raise DeskInputError(f"cf/{key}", "invalid")
        clean[key] = item
    return clean


def _common(payload: Mapping[str, Any], org_id: str) -> dict[str, Any]:
    """The optional fields of a create or an update, checked; key -> stored value."""
    out: dict[str, Any] = {}
    if "description" in payload:
        out["description"] = _text(payload, "description", DESCRIPTION_MAX)
    if "status" in payload:
        out["status"] = _status(payload["status"])
    if "priority" in payload:
        out["priority"] = _priority(payload["priority"])
    for key in ("category", "subCategory", "classification", "language", "phone", "productId"):
        if key in payload:
            out[key] = _text(payload, key, 120)
    if "resolution" in payload:
        out["resolution"] = _text(payload, "resolution", DESCRIPTION_MAX)
    if "email" in payload:
        out["email"] = _email(payload)
    if "channel" in payload:
        channel = payload["channel"]
        if channel is not None and channel not in CHANNELS:
            raise DeskInputError("channel", "invalid", f"Channel '{channel}' does not exist")
        out["channel"] = channel
    if "dueDate" in payload:
        due = payload["dueDate"]
        if due is not None and (not isinstance(due, str) or iso_to_ms(due) is None):
            raise DeskInputError("dueDate", "invalid", "dueDate must be an ISO date-time like 2024-01-01T10:00:00.000Z")
        out["dueDate"] = due
    if "assigneeId" in payload:
        out["assignee"] = _agent(payload["assigneeId"])
    if "departmentId" in payload:
        out["department"] = _department(payload["departmentId"], org_id)
    for key in ("cf", "customFields"):
        if key in payload and payload[key] is not None:
            out.setdefault("cf", {}).update(_custom_fields(payload[key]))
    return out


def _extra(payload: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in payload:
        if key not in allowed:
            raise DeskInputError(str(key), "invalid", f"An extra parameter '{key}' is found")


def parse_create(payload: object, org_id: str) -> NewTicket:
    """Check a ``POST /tickets`` body: unknown keys, then subject, departmentId, contactId|contact, values."""
    if not isinstance(payload, Mapping):
        raise DeskInputError("body", "invalid", "The request body must be a JSON object")
    _extra(payload, CREATE_KEYS)
    subject = _text(payload, "subject", SUBJECT_MAX, required=True)
    assert subject is not None
    if payload.get("departmentId") in (None, ""):
        raise DeskInputError("departmentId", "missing")
    fields = _common(payload, org_id)
    department = fields.pop("department")
    contact_id, contact = payload.get("contactId"), payload.get("contact")
    if contact_id in (None, "") and contact is None:
        raise DeskInputError("contactId", "missing", "Either contactId or contact is required")
    new = NewTicket(subject=subject, department=department, fields=fields)
    if contact_id not in (None, ""):
        if not isinstance(contact_id, (str, int)) or isinstance(contact_id, bool):
            raise DeskInputError("contactId", "invalid")
        new.contact_id = str(contact_id)
    else:
        new.contact = parse_contact(contact, prefix="contact/")
    return new


def parse_update(payload: object, org_id: str) -> dict[str, Any]:
    """Check a ``PATCH /tickets/{id}`` body into stored key -> value (``contactId`` left for the view)."""
    if not isinstance(payload, Mapping):
        raise DeskInputError("body", "invalid", "The request body must be a JSON object")
    _extra(payload, UPDATE_KEYS)
    changes = _common(payload, org_id)
    if "subject" in payload:
        changes["subject"] = _text(payload, "subject", SUBJECT_MAX, required=True)
    if "status" in payload and payload["status"] is None:
        raise DeskInputError("status", "invalid")
    if "contactId" in payload:
        contact_id = payload["contactId"]
        if not isinstance(contact_id, (str, int)) or isinstance(contact_id, bool) or contact_id == "":
            raise DeskInputError("contactId", "invalid")
        changes["contactId"] = str(contact_id)
    return changes


def build_ticket(
    ticket_id: str, number: str, new: NewTicket, contact: Mapping[str, Any], created_ms: int, portal: str
) -> Entity:
    """A complete Desk ticket, key for key in the order of the §4.6 sample (``comments`` excepted)."""
    created = iso(created_ms)
    fields = new.fields
    status = fields.get("status", "Open")
    assignee = fields.get("assignee")
    return {
        "modifiedTime": created,
        "subCategory": fields.get("subCategory"),
        "statusType": STATUSES[status],
        "subject": new.subject,
        "dueDate": fields.get("dueDate"),
        "departmentId": new.department["id"],
        "channel": fields.get("channel") or "Web",
        "onholdTime": created if status == "On Hold" else None,
        "language": fields.get("language"),
        "source": {"appName": None, "extId": None, "permalink": None, "type": "SYSTEM", "appPhotoURL": None},
        "resolution": fields.get("resolution"),
        "sharedDepartments": [],
        "closedTime": created if status == "Closed" else None,
        "approvalCount": "0",
        "isOverDue": False,
        "isTrashed": False,
        "contact": contact_in_ticket(contact),
        "createdTime": created,
        "id": ticket_id,
        "isResponseOverdue": False,
        "customerResponseTime": created,
        "productId": fields.get("productId"),
        "contactId": contact["id"],
        "threadCount": "1",
        "secondaryContacts": [],
        "priority": fields.get("priority"),
        "classification": fields.get("classification"),
        "commentCount": "0",
        "taskCount": "0",
        "accountId": None,
        "phone": fields.get("phone", contact.get("phone")),
        "webUrl": f"https://desk.zoho.com/support/{portal}/ShowHomePage.do#Cases/dv/{ticket_id}",
        "assignee": assignee,
        "isSpam": False,
        "status": status,
        "entitySkills": [],
        "ticketNumber": number,
        "sentiment": None,
        "customFields": {},
        "isArchived": False,
        "skillsInfo": [],
        "isRead": False,
        "description": fields.get("description"),
        "timeEntryCount": "0",
        "channelRelatedInfo": None,
        "responseDueDate": None,
        "isDeleted": False,
        "modifiedBy": desk_id("agent", "api"),
        "department": dict(new.department),
        "followerCount": "0",
        "email": fields.get("email") or contact.get("email"),
        "layoutDetails": {"id": desk_id("layout", portal), "layoutName": "Standard"},
        "channelCode": None,
        "product": None,
        "isFollowing": False,
        "cf": dict(fields.get("cf", {})),
        "slaId": None,
        "team": None,
        "layoutId": desk_id("layout", portal),
        "assigneeId": None if assignee is None else assignee["id"],
        "createdBy": desk_id("agent", "api"),
        "teamId": None,
        "contractId": None,
        "tagCount": "0",
        "attachmentCount": "0",
        "isEscalated": status == "Escalated",
        "category": fields.get("category"),
    }


def set_status(ticket: Entity, status: str, at_ms: int) -> None:
    """Move to ``status``: Closed stamps ``closedTime``, leaving Closed clears it (a reopen)."""
    ticket["status"] = status
    ticket["statusType"] = STATUSES[status]
    ticket["isEscalated"] = status == "Escalated"
    ticket["closedTime"] = iso(at_ms) if status == "Closed" else None
    ticket["onholdTime"] = iso(at_ms) if status == "On Hold" else None


def set_assignee(ticket: Entity, assignee: Entity | None) -> None:
    ticket["assignee"] = assignee
    ticket["assigneeId"] = None if assignee is None else assignee["id"]


def apply_update(ticket: Entity, changes: Mapping[str, Any], at_ms: int, contact: Mapping[str, Any] | None) -> None:
    """Apply ``parse_update`` output (``contact``: the new contact when ``contactId`` changed)."""
    for key, value in changes.items():
        if key == "status":
            set_status(ticket, value, at_ms)
        elif key == "assignee":
            set_assignee(ticket, value)
        elif key == "department":
            ticket["department"] = dict(value)
            ticket["departmentId"] = value["id"]
        elif key == "cf":
            ticket["cf"] = {**ticket["cf"], **value}
        elif key == "contactId":
            assert contact is not None
            ticket["contactId"] = contact["id"]
            ticket["contact"] = contact_in_ticket(contact)
        else:
            ticket[key] = value
    ticket["modifiedTime"] = iso(at_ms)


def view(ticket: Mapping[str, Any], include: str | None) -> Entity:
    """A ticket as a read answers it: the related objects only when ``include`` names them."""
    wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
    shown: set[str] = set()
    for name in wanted:
        shown.update(INCLUDES.get(name, ()))
    return {key: value for key, value in ticket.items() if key not in GATED_KEYS or key in shown}


def check_include(include: str | None) -> None:
    """Refuse an ``include`` value Desk does not know (422 INVALID_DATA naming include)."""
    for part in (include or "").split(","):
        if part.strip() and part.strip() not in INCLUDES:
            raise DeskInputError("include", "invalid", f"'{part.strip()}' is not a valid include value")


LIST_KEYS = (
    "id",
    "ticketNumber",
    "subject",
    "status",
    "statusType",
    "priority",
    "channel",
    "createdTime",
    "modifiedTime",
    "closedTime",
    "dueDate",
    "responseDueDate",
    "customerResponseTime",
    "departmentId",
    "contactId",
    "assigneeId",
    "email",
    "phone",
    "category",
    "commentCount",
    "threadCount",
    "attachmentCount",
    "isSpam",
    "webUrl",
    "cf",
)


def list_item(ticket: Mapping[str, Any], include: str | None) -> Entity:
    """A ticket as lists and searches show it: the list keys plus what ``include`` asks for."""
    item = {key: ticket.get(key) for key in LIST_KEYS}
    full = view(ticket, include)
    item.update({key: full[key] for key in GATED_KEYS if key in full})
    return item


# ---- comments and attachments ------------------------------------------------------------------------


def parse_comment(payload: object) -> tuple[str, bool, str]:
    """(content, isPublic, contentType) of a comment; content is required, isPublic defaults to false."""
    if not isinstance(payload, Mapping):
        raise DeskInputError("body", "invalid", "The request body must be a JSON object")
    _extra(payload, frozenset({"content", "isPublic", "contentType", "attachmentIds"}))
    content = _text(payload, "content", DESCRIPTION_MAX, required=True)
    assert content is not None
    is_public = payload.get("isPublic", False)
    if is_public in ("true", "false"):
        is_public = is_public == "true"
    if not isinstance(is_public, bool):
        raise DeskInputError("isPublic", "invalid")
    content_type = payload.get("contentType", "html")
    if content_type not in ("html", "plainText"):
        raise DeskInputError("contentType", "invalid")
    return content, is_public, str(content_type)


def api_agent() -> Entity:
    """The agent the OAuth client acts as: the commenter and creator of what the API adds."""
    return {
        "id": desk_id("agent", "api"),
        "firstName": "Sandbox",
        "lastName": "API User",
        "name": "Sandbox API User",
        "photoURL": None,
        "type": "AGENT",
        "email": "desk-api@sandbox.invalid",
    }


def comment_object(comment_id: str, content: str, is_public: bool, content_type: str, at_ms: int) -> Entity:
    return {
        "id": comment_id,
        "content": content,
        "contentType": content_type,
        "isPublic": is_public,
        "commentedTime": iso(at_ms),
        "modifiedTime": None,
        "commenterId": desk_id("agent", "api"),
        "commenter": api_agent(),
        "attachments": [],
        "impersonatedUser": None,
    }


def attachment_object(
    attachment_id: str, ticket_id: str, name: str, size: int, sha256: str, is_public: bool, at_ms: int, prefix: str
) -> Entity:
    """A ticket attachment; ``_sha256`` is the sandbox's own (never sent)."""
    return {
        "id": attachment_id,
        "name": name,
        "size": str(size),
        "creator": api_agent(),
        "createdTime": iso(at_ms),
        "isPublic": is_public,
        "href": f"{prefix}/api/v1/tickets/{ticket_id}/attachments/{attachment_id}/content",
        "_sha256": sha256,
    }


# ---- the control API ---------------------------------------------------------------------------------


def summary(ticket: Mapping[str, Any]) -> Entity:
    """A Desk ticket in ``/_sandbox/.../tickets`` (the SDP summary's keys, plus ticketNumber)."""
    return {
        "id": ticket["id"],
        "display_id": ticket["ticketNumber"],
        "ticketNumber": ticket["ticketNumber"],
        "subject": ticket["subject"],
        "requester_email": ticket.get("email"),
        "status": ticket["status"],
    }


def _control_assignee(value: object) -> Entity | None:
    """An assignee from the control API: null, Desk's ``{firstName, lastName, email}`` or SDP's ``{name, email_id}``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("assignee must be null or an object")
    first, last, email = value.get("firstName"), value.get("lastName"), value.get("email") or value.get("email_id")
    if value.get("name") and not (first or last):
        first, _, last = str(value["name"]).partition(" ")
    if not (first or last or email):
        raise ValueError("assignee needs firstName, lastName, email (or name, email_id)")
    return agent_object(first or None, last or None, email, None if value.get("id") is None else str(value["id"]))


def control_patch(payload: Mapping[str, Any]) -> tuple[Callable[[Entity], None], str | None]:
    """A ticket edit as an agent would make it in Desk: assignee (or technician), resolution, status, createdTime.

    Returns (the change to apply, None), or (a no-op, the problem).
    """
    allowed = {"assignee", "technician", "resolution", "status", "createdTime", "created_time"}
    unknown = sorted(set(payload) - allowed)
    if unknown:
        return _no_change, f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
    changes: dict[str, Any] = {}
    try:
        for key in ("assignee", "technician"):
            if key in payload:
                changes["assignee"] = _control_assignee(payload[key])
        if "resolution" in payload:
            resolution = payload["resolution"]
            if resolution is not None and not isinstance(resolution, str):
                raise ValueError("resolution must be a string or null")
            changes["resolution"] = resolution
        if "status" in payload:
            changes["status"] = _status(payload["status"])
        for key in ("createdTime", "created_time"):
            if key in payload:
                changes["createdTime"] = _control_time(payload[key])
    except (ValueError, DeskInputError) as exc:
        return _no_change, str(exc)
    at_ms = now_ms()

    def apply(ticket: Entity) -> None:
        for key, value in changes.items():
            if key == "assignee":
                set_assignee(ticket, value)
            elif key == "status":
                set_status(ticket, value, at_ms)
            elif key == "createdTime":
                ticket["createdTime"] = iso(value)
            else:
                ticket[key] = value
        ticket["modifiedTime"] = iso(at_ms)

    return apply, None


def _no_change(_ticket: Entity) -> None:
    return None


def _control_time(raw: object) -> int:
    """Epoch ms (a number or digits) or an ISO date-time, for back-dating ``createdTime``."""
    created: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        created = raw
    elif isinstance(raw, str):
        created = int(raw) if raw.isdigit() else iso_to_ms(raw)
    if created is None or created < 0:
        raise ValueError("createdTime must be epoch milliseconds or an ISO date-time")
    return created
