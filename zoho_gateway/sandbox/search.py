"""SDP v3 ``list_info`` for ``GET /requests``: paging, sorting and ``search_criteria``, checked like SDP.

``search_criteria`` is one criterion or a list of them. A criterion is ``{"field", "condition", "value"}``
(or ``"values": [...]``), may carry ``"logical_operator": "AND" | "OR"`` joining it to what precedes it,
and may carry ``"children": [...]``, criteria grouped with it. Where ZOHO-API.md §1.5 is silent, this
module assumes (and the sandbox's README section says):

- operators apply left to right, without AND-before-OR precedence; group with ``children`` instead;
  a missing ``logical_operator`` means AND; the first criterion's operator is ignored;
- text comparisons ignore case; ``is`` on ``description`` also matches the text with its HTML removed;
- ``greater than`` / ``lesser than`` / ``between`` (both ends included) compare numbers, so they suit
  ``created_time`` (epoch-ms strings), ``display_id`` and ``id``;
- ``values`` with ``is``/``contains``/``starts with`` match any of them; with ``is not``/``not contains``
  none of them;
- ``udf_sline_1`` means ``udf_fields.udf_sline_1``; a ticket without that UDF has it null.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .entities import ENTITY_KEYS, Entity
from .validation import SdpInputError

MAX_ROW_COUNT = 100
DEFAULT_ROW_COUNT = 10

LIST_INFO_KEYS = frozenset(
    {
        "row_count",
        "start_index",
        "sort_field",
        "sort_order",
        "get_total_count",
        "search_criteria",
        "search_fields",
        "filter_by",
        "fields_required",
        "page",
    }
)

# Every spelling SDP documents, mapped to one name.
CONDITIONS: dict[str, str] = {
    "is": "is",
    "=": "is",
    "eq": "is",
    "is not": "is not",
    "!=": "is not",
    "neq": "is not",
    "greater than": "greater than",
    "gt": "greater than",
    "greater or equal": "greater or equal",
    "gte": "greater or equal",
    "lesser than": "lesser than",
    "lt": "lesser than",
    "lesser or equal": "lesser or equal",
    "lte": "lesser or equal",
    "between": "between",
    "not between": "not between",
    "starts with": "starts with",
    "ends with": "ends with",
    "contains": "contains",
    "not contains": "not contains",
}

_ORDERING: dict[str, Callable[[float, float], bool]] = {
    "greater than": lambda a, b: a > b,
    "greater or equal": lambda a, b: a >= b,
    "lesser than": lambda a, b: a < b,
    "lesser or equal": lambda a, b: a <= b,
}
_TEXT: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda text, probe: probe in text,
    "starts with": lambda text, probe: text.startswith(probe),
    "ends with": lambda text, probe: text.endswith(probe),
}
_TAG = re.compile(r"<[^>]*>")

Predicate = Callable[[Entity], bool]


def _invalid(message: str, field_name: str = "search_criteria") -> SdpInputError:
    return SdpInputError(4001, message, field_name)


@dataclass(frozen=True)
class ListQuery:
    """A checked ``list_info``: which page, in which order, of which tickets."""

    start_index: int = 1
    row_count: int = DEFAULT_ROW_COUNT
    sort_field: str | None = None
    descending: bool = False
    get_total_count: bool = False
    predicate: Predicate | None = None
    echo: dict[str, Any] = field(default_factory=dict)

    def choose(self, tickets: list[Entity]) -> list[Entity]:
        """The matching tickets in the requested order (creation order when no ``sort_field``)."""
        chosen = [ticket for ticket in tickets if self.predicate is None or self.predicate(ticket)]
        if self.sort_field is not None:
            path = _path(self.sort_field)
            present = [t for t in chosen if _resolve(t, path) is not None]
            missing = [t for t in chosen if _resolve(t, path) is None]
            present.sort(key=lambda ticket: _sort_key(_resolve(ticket, path)), reverse=self.descending)
            chosen = present + missing  # nulls last in either order
        return chosen


# ---- fields ----------------------------------------------------------------------------------------


def _path(field_name: str) -> list[str]:
    """The entity path of a search field; raises SdpInputError for a field requests do not have."""
    parts = field_name.strip().split(".")
    if parts[0].startswith("udf_") and parts[0] != "udf_fields":
        parts = ["udf_fields", *parts]
    if parts[0] not in ENTITY_KEYS or any(not part for part in parts):
        raise _invalid(f"Invalid field: {field_name}", "field")
    if parts[0] == "udf_fields" and (len(parts) != 2 or not parts[1].startswith("udf_")):
        raise _invalid(f"Invalid field: {field_name}", "field")
    return parts


def _resolve(entity: Entity, path: Sequence[str]) -> Any:
    """The value at ``path``; a datetime gives its epoch-ms ``value``, a lookup object its ``name``."""
    value: Any = entity
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, Mapping):
        if "display_value" in value and "value" in value:
            return value["value"]
        if "name" in value:
            return value["name"]
        return None
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _sort_key(value: Any) -> tuple[int, float, str]:
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, _text(value) or "")


def _texts(entity: Entity, path: Sequence[str]) -> list[str]:
    """The field's text, plus for HTML descriptions the readable text, lower-cased."""
    text = _text(_resolve(entity, path))
    if text is None:
        return []
    if path[0] == "description" and ("<" in text or "&" in text):
        return [text, " ".join(html.unescape(_TAG.sub(" ", text)).split())]
    return [text]


# ---- criteria --------------------------------------------------------------------------------------


def _values(criterion: Mapping[str, Any]) -> list[Any]:
    if "values" in criterion:
        values = criterion["values"]
        if not isinstance(values, list) or not values:
            raise _invalid("values must be a non-empty list", "values")
    elif "value" in criterion:
        values = criterion["value"] if isinstance(criterion["value"], list) else [criterion["value"]]
    else:
        raise _invalid("value or values is required", "value")
    if any(isinstance(value, (Mapping, list)) for value in values):
        raise _invalid("values must be strings, numbers, booleans or null", "value")
    return list(values)


def _numbers(values: list[Any], count: int | None) -> list[float]:
    numbers = [_number(value) for value in values]
    if (count is not None and len(numbers) != count) or any(number is None for number in numbers):
        wanted = "a number" if count == 1 else f"{count} numbers"
        raise _invalid(f"this condition needs {wanted} as value(s)", "values")
    return [number for number in numbers if number is not None]


def _leaf(criterion: Mapping[str, Any]) -> Predicate:
    raw_field, raw_condition = criterion.get("field"), criterion.get("condition")
    if not isinstance(raw_field, str) or not raw_field.strip():
        raise _invalid("field is required in every criterion", "field")
    if not isinstance(raw_condition, str) or raw_condition.strip().lower() not in CONDITIONS:
        raise _invalid(f"Invalid condition: {raw_condition}", "condition")
    path = _path(raw_field)
    condition = CONDITIONS[raw_condition.strip().lower()]
    values = _values(criterion)

    if condition in _ORDERING:
        (bound,) = _numbers(values, 1)
        compare = _ORDERING[condition]

        def ordered(entity: Entity) -> bool:
            number = _number(_resolve(entity, path))
            return number is not None and compare(number, bound)

        return ordered
    if condition in ("between", "not between"):
        low, high = sorted(_numbers(values, 2))
        inside = condition == "between"

        def ranged(entity: Entity) -> bool:
            number = _number(_resolve(entity, path))
            return number is not None and (low <= number <= high) == inside

        return ranged
    probes = [_text(value) for value in values]
    if condition in ("is", "is not"):
        wanted = condition == "is"

        def equal(entity: Entity) -> bool:
            texts: list[str | None] = list(_texts(entity, path)) or [None]
            return any(text == probe for text in texts for probe in probes) == wanted

        return equal
    negate = condition == "not contains"
    test = _TEXT["contains" if negate else condition]
    needles = [probe for probe in probes if probe is not None]

    def textual(entity: Entity) -> bool:
        found = any(test(text, needle) for text in _texts(entity, path) for needle in needles)
        return found != negate

    return textual


def _operator(criterion: Mapping[str, Any]) -> str:
    raw = criterion.get("logical_operator", "AND")
    if not isinstance(raw, str) or raw.strip().upper() not in ("AND", "OR"):
        raise _invalid(f"Invalid logical_operator: {raw}", "logical_operator")
    return raw.strip().upper()


def _combine(parts: list[tuple[str, Predicate]]) -> Predicate:
    """Join (operator, predicate) pairs left to right; the first operator is ignored."""

    def joined(entity: Entity) -> bool:
        result = parts[0][1](entity)
        for operator, predicate in parts[1:]:
            result = (result or predicate(entity)) if operator == "OR" else (result and predicate(entity))
        return result

    return joined


def _criterion(criterion: object, depth: int) -> Predicate:
    if depth > 10:
        raise _invalid("search_criteria is nested too deeply")
    if not isinstance(criterion, Mapping):
        raise _invalid("every criterion must be a JSON object")
    children = criterion.get("children")
    parts: list[tuple[str, Predicate]] = []
    if "field" in criterion or "condition" in criterion or children is None:
        parts.append(("AND", _leaf(criterion)))
    if children is not None:
        if not isinstance(children, list) or not children:
            raise _invalid("children must be a non-empty list", "children")
        parts.extend((_operator(child), _criterion(child, depth + 1)) for child in children)
    return _combine(parts)


def parse_criteria(raw: object) -> Predicate:
    """A predicate for ``search_criteria`` (an object or a list); raises SdpInputError (4001) if malformed."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise _invalid("search_criteria must not be empty")
    return _combine([(_operator(item) if isinstance(item, Mapping) else "AND", _criterion(item, 0)) for item in items])


def _search_fields(raw: object) -> Predicate:
    """``search_fields``: ``{"field": "text", ...}``, every field must contain its text."""
    if not isinstance(raw, Mapping) or not raw:
        raise _invalid("search_fields must be an object of field: text", "search_fields")
    criteria = [{"field": name, "condition": "contains", "value": value} for name, value in raw.items()]
    return parse_criteria(criteria)


# ---- list_info -------------------------------------------------------------------------------------


def _positive(info: Mapping[str, Any], key: str, default: int) -> int:
    value = info.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SdpInputError(4001, f"Value given for {key} is not valid", key)
    return value


def parse_list_info(raw: str | None) -> ListQuery:
    """Check ``input_data={"list_info": {...}}`` (absent: the first 10 in creation order).

    Raises SdpInputError: 4000 when input_data is not a JSON object, 4001 naming the key for an unknown
    key or a bad value. ``row_count`` above 100 is cut to 100.
    """
    if raw is None or not raw.strip():
        return ListQuery()
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise SdpInputError(4000, "input_data is not valid JSON") from exc
    info = decoded.get("list_info", {}) if isinstance(decoded, Mapping) else None
    if not isinstance(info, Mapping):
        raise SdpInputError(4000, "list_info must be a JSON object")
    for key in info:
        if key not in LIST_INFO_KEYS:
            raise SdpInputError(4001, "EXTRA_KEY_FOUND_IN_JSON", key)

    start_index = _positive(info, "start_index", 1)
    row_count = min(_positive(info, "row_count", DEFAULT_ROW_COUNT), MAX_ROW_COUNT)
    sort_field = info.get("sort_field")
    if sort_field is not None:
        if not isinstance(sort_field, str):
            raise SdpInputError(4001, "Value given for sort_field is not valid", "sort_field")
        _path(sort_field)
    sort_order = info.get("sort_order", "asc")
    if not isinstance(sort_order, str) or sort_order.lower() not in ("asc", "desc"):
        raise SdpInputError(4001, "Value given for sort_order is not valid", "sort_order")
    total = info.get("get_total_count", False)
    if total not in (True, False, "true", "false"):
        raise SdpInputError(4001, "Value given for get_total_count is not valid", "get_total_count")

    predicates: list[tuple[str, Predicate]] = []
    if info.get("search_criteria") is not None:
        predicates.append(("AND", parse_criteria(info["search_criteria"])))
    if info.get("search_fields") is not None:
        predicates.append(("AND", _search_fields(info["search_fields"])))
    echo = {key: info[key] for key in ("sort_field", "sort_order", "search_criteria", "search_fields") if key in info}
    return ListQuery(
        start_index=start_index,
        row_count=row_count,
        sort_field=sort_field,
        descending=sort_order.lower() == "desc",
        get_total_count=total in (True, "true"),
        predicate=_combine(predicates) if predicates else None,
        echo=echo,
    )
