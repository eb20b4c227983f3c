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


def decode_input_data(raw: str | None) -> Mapping[str, Any]:
    """The ``request`` object inside ``input_data``; raises SdpInputError (4000) when absent or not JSON."""
    if raw is None or not raw.strip():
        raise SdpInputError(4000, "input_data is required")
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise SdpInputError(4000, "input_data is not valid JSON") from exc
    if not isinstance(decoded, Mapping):
        raise SdpInputError(4000, "input_data must be a JSON object")
    request = decoded.get("request")
    if not isinstance(request, Mapping):
        raise SdpInputError(4000, "input_data must contain a 'request' object")
    return request


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
