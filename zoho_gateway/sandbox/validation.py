"""Checks a create call's ``input_data`` the way SDP v3 does and turns it into resolved entity parts."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .entities import (
    CATALOGS,
    NewRequest,
    UnknownLookup,
    catalog_object,
    closure_info_object,
    named_object,
    technician_object,
    user_object,
)

ALLOWED_KEYS = frozenset(
    {
        "subject",
        "description",
        "requester",
        "priority",
        "department",
        "category",
        "subcategory",
        "status",
        "urgency",
        "impact",
        "level",
        "mode",
        "request_type",
        "group",
        "site",
        "technician",
        "template",
        "item",
        "udf_fields",
        "email_ids_to_notify",
    }
)

FREE_LOOKUPS = (
    "subcategory",
    "urgency",
    "impact",
    "level",
    "mode",
    "request_type",
    "group",
    "site",
    "template",
    "item",
)


# UDF keys as SDP names them: udf_sline_1 (single line), udf_char1 (older builds), udf_long_2, udf_date_3, ...
UDF_KEY = re.compile(r"^udf_[a-z]+_?[0-9]+$")
UDF_SLINE_MAX = 250


class SdpInputError(ValueError):
    """A rejected input: SDP's detail ``status_code``, the offending ``field`` (if any) and the message."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field


def _invalid(field: str) -> SdpInputError:
    return SdpInputError(4001, f"Value given for {field} is not valid", field)


def _reference(field: str, value: object) -> Mapping[str, Any]:
    """A lookup must be an object carrying a non-empty name or id."""
    if not isinstance(value, Mapping):
        raise _invalid(field)
    name, ref_id = value.get("name"), value.get("id")
    has_name = isinstance(name, str) and bool(name.strip())
    has_id = isinstance(ref_id, (str, int)) and not isinstance(ref_id, bool) and str(ref_id).strip() != ""
    if not (has_name or has_id or (field in ("requester", "technician") and value.get("email_id"))):
        raise _invalid(field)
    return value


def _person_fields(field: str, ref: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    name, email, ref_id = ref.get("name"), ref.get("email_id"), ref.get("id")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise _invalid(field)
    return (
        name.strip() if isinstance(name, str) and name.strip() else None,
        email.strip() if isinstance(email, str) else None,
        str(ref_id) if ref_id is not None else None,
    )


def decode_input_data(raw: str | None, key: str = "request") -> Mapping[str, Any]:
    """The ``key`` object inside ``input_data``; raises SdpInputError (4000) when absent or not JSON."""
    if raw is None or not raw.strip():
        raise SdpInputError(4000, "input_data is required")
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise SdpInputError(4000, "input_data is not valid JSON") from exc
    if not isinstance(decoded, Mapping):
        raise SdpInputError(4000, "input_data must be a JSON object")
    inner = decoded.get(key)
    if not isinstance(inner, Mapping):
        raise SdpInputError(4000, f"input_data must contain a '{key}' object")
    return inner


def parse_new_request(request: Mapping[str, Any]) -> NewRequest:
    """Validate a create payload in SDP's order: unknown keys, then the mandatory subject, then values."""
    for key in request:
        if key not in ALLOWED_KEYS:
            raise SdpInputError(4001, "EXTRA_KEY_FOUND_IN_JSON", key)

    subject = request.get("subject")
    if subject is None or (isinstance(subject, str) and not subject.strip()):
        raise SdpInputError(4012, "Value for the mandatory field subject is not provided", "subject")
    if not isinstance(subject, str):
        raise _invalid("subject")
    new = NewRequest(subject=subject)

    description = request.get("description")
    if description is not None and not isinstance(description, str):
        raise _invalid("description")
    new.description = description

    if request.get("requester") is not None:
        name, email, ref_id = _person_fields("requester", _reference("requester", request["requester"]))
        new.requester = user_object(name=name, email_id=email, user_id=ref_id)
    if request.get("technician") is not None:
        name, email, ref_id = _person_fields("technician", _reference("technician", request["technician"]))
        new.technician = technician_object(name=name, email_id=email, tech_id=ref_id)

    for field in CATALOGS:
        if request.get(field) is None:
            continue
        try:
            resolved = catalog_object(field, _reference(field, request[field]))
        except UnknownLookup as exc:
            raise _invalid(exc.field_name) from exc
        if field == "status":
            new.status = resolved
        else:
            new.lookups[field] = resolved
    for field in FREE_LOOKUPS:
        if request.get(field) is not None:
            new.lookups[field] = named_object(field, _reference(field, request[field]))

    if request.get("udf_fields") is not None:
        new.udf_fields = parse_udf_fields(request["udf_fields"])
    emails = request.get("email_ids_to_notify")
    if emails is not None:
        if not isinstance(emails, list) or not all(isinstance(email, str) for email in emails):
            raise _invalid("email_ids_to_notify")
        new.email_ids_to_notify = list(emails)
    return new


def parse_udf_fields(udf_fields: object) -> dict[str, Any]:
    """Check ``udf_fields``: keys shaped like ``udf_sline_1`` / ``udf_char1``, scalar values.

    Any such key is accepted (a real tenant accepts only the UDFs it defines); a single-line value is at
    most 250 characters. Raises SdpInputError 4001 naming ``udf_fields`` or the offending key.
    """
    if not isinstance(udf_fields, Mapping):
        raise _invalid("udf_fields")
    clean: dict[str, Any] = {}
    for key, value in udf_fields.items():
        if not isinstance(key, str) or not UDF_KEY.match(key):
            raise SdpInputError(4001, "EXTRA_KEY_FOUND_IN_JSON", str(key))
        if isinstance(value, (Mapping, list)):
            raise _invalid(key)
        if key.startswith("udf_sline") and isinstance(value, str) and len(value) > UDF_SLINE_MAX:
            raise _invalid(key)
        clean[key] = value
    return clean


# An update takes what a create takes, plus the resolution and the closure details.
UPDATE_KEYS = ALLOWED_KEYS | {"resolution", "closure_info", "status_change_comments", "update_reason"}
CLOSURE_KEYS = frozenset({"requester_ack_resolution", "requester_ack_comments", "closure_comments", "closure_code"})
NOTE_KEYS = frozenset(
    {"description", "show_to_requester", "notify_technician", "mark_first_response", "add_to_linked_requests"}
)
NOTE_MAX = 65_535


def _optional_text(field: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _invalid(field)
    return value


def _flag(field: str, value: object) -> bool:
    """SDP booleans arrive as JSON booleans or as the strings "true"/"false"."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _invalid(field)


def _lookup(field: str, value: object) -> dict[str, Any]:
    try:
        return catalog_object(field, _reference(field, value))
    except UnknownLookup as exc:
        raise _invalid(exc.field_name) from exc


def parse_closure_info(info: object) -> dict[str, Any]:
    """Check ``closure_info`` (every key optional); raises SdpInputError 4001 naming the bad key."""
    if not isinstance(info, Mapping):
        raise _invalid("closure_info")
    for key in info:
        if key not in CLOSURE_KEYS:
            raise SdpInputError(4001, "EXTRA_KEY_FOUND_IN_JSON", key)
    code = info.get("closure_code")
    return closure_info_object(
        ack=_flag("requester_ack_resolution", info.get("requester_ack_resolution", False)),
        ack_comments=_optional_text("requester_ack_comments", info.get("requester_ack_comments")),
        comments=_optional_text("closure_comments", info.get("closure_comments")),
        code=None if code is None else _lookup("closure_code", code),
    )


def _resolution_text(value: object) -> str | None:
    """``{"content": "..."}`` (or null to clear) as the resolution's text."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"content", "add_to_linked_requests"}:
        raise _invalid("resolution")
    return _optional_text("resolution", value.get("content"))


def parse_resolution(resolution: Mapping[str, Any]) -> str:
    """The ``resolution`` object of ``/resolutions``: non-empty ``content`` (4012 when missing)."""
    content = _resolution_text(resolution)
    if content is None or not content.strip():
        raise SdpInputError(4012, "Value for the mandatory field content is not provided", "content")
    return content


def parse_update(request: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an update: entity key -> new value, for the keys given (null clears a lookup).

    ``udf_fields`` is merged into the stored ones, ``resolution`` is the text (or None), ``closure_info``
    the checked object. ``status_change_comments`` and ``update_reason`` are accepted and not kept.
    Raises SdpInputError like a create: 4001 for unknown keys and bad values, 4012 for an empty subject.
    """
    for key in request:
        if key not in UPDATE_KEYS:
            raise SdpInputError(4001, "EXTRA_KEY_FOUND_IN_JSON", key)
    changes: dict[str, Any] = {}
    if "subject" in request:
        subject = request["subject"]
        if subject is None or (isinstance(subject, str) and not subject.strip()):
            raise SdpInputError(4012, "Value for the mandatory field subject is not provided", "subject")
        if not isinstance(subject, str):
            raise _invalid("subject")
        changes["subject"] = subject
    if "description" in request:
        changes["description"] = _optional_text("description", request["description"])
    if "requester" in request:
        name, email, ref_id = _person_fields("requester", _reference("requester", request["requester"]))
        changes["requester"] = user_object(name=name, email_id=email, user_id=ref_id)
    if "technician" in request:
        technician = request["technician"]
        if technician is not None:
            name, email, ref_id = _person_fields("technician", _reference("technician", technician))
            technician = technician_object(name=name, email_id=email, tech_id=ref_id)
        changes["technician"] = technician
    for field in CATALOGS:
        if field in request:
            if request[field] is None and field == "status":
                raise _invalid("status")
            changes[field] = None if request[field] is None else _lookup(field, request[field])
    for field in FREE_LOOKUPS:
        if field in request:
            value = request[field]
            changes[field] = None if value is None else named_object(field, _reference(field, value))
    if "udf_fields" in request:
        changes["udf_fields"] = parse_udf_fields(request["udf_fields"])
    if "email_ids_to_notify" in request:
        emails = request["email_ids_to_notify"]
        if not isinstance(emails, list) or not all(isinstance(email, str) for email in emails):
            raise _invalid("email_ids_to_notify")
        changes["email_ids_to_notify"] = list(emails)
    if "resolution" in request:
        changes["resolution"] = _resolution_text(request["resolution"])
    if "closure_info" in request:
        changes["closure_info"] = parse_closure_info(request["closure_info"])
    for key in ("status_change_comments", "update_reason"):
        _optional_text(key, request.get(key))
    return changes


def parse_note(note: Mapping[str, Any]) -> tuple[str, dict[str, bool]]:
    """A ``request_note``: its description (1-65,535 characters, 4012 when missing) and its flags."""
    for key in note:
        if key not in NOTE_KEYS:
            raise SdpInputError(4001, "EXTRA_KEY_FOUND_IN_JSON", key)
    description = note.get("description")
    if description is None or (isinstance(description, str) and not description.strip()):
        raise SdpInputError(4012, "Value for the mandatory field description is not provided", "description")
    if not isinstance(description, str) or len(description) > NOTE_MAX:
        raise _invalid("description")
    flags = {key: _flag(key, note[key]) for key in NOTE_KEYS - {"description"} if key in note}
    return description, flags
