"""Pure builders of SDP v3 ``list_info`` and ``search_criteria`` dicts, and the text matching that goes with them.

No I/O: every function takes plain values and returns plain dicts that :meth:`ServiceDeskClient.list_requests`
serialises with ``json.dumps`` (client text is a JSON string value, never spliced into a query by hand).
Field names and conditions are SDP's (ZOHO-API.md §1.5): ``{"field", "condition", "value"}`` or
``"values": [...]``, siblings joined by ``logical_operator``.

Assumed of SDP Cloud where the documents are silent (the sandbox behaves so; none verified against Zoho):

- ``requester.email_id``, ``subject``, ``status.name``, ``display_id`` and ``udf_fields.<udf>`` are searchable
  paths (``created_time`` and ``last_updated_time`` sortable ones), and
  ``is`` compares the whole value (case may be ignored) with no wildcard characters;
- ``created_time`` ``between`` takes two epoch-ms strings, both ends included, on Zoho's clock;
- a list without ``filter_by`` covers every request the OAuth user may see, whatever its status;
- ``row_count`` up to 100 is served; ``start_index`` counts from 1; ``has_more_rows`` marks a next page;
- list rows may leave ``description`` out (it is then read per candidate) and may hold it as HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

#: The largest page SDP is known to serve (sources disagree on 100 vs 1000: 100 is safe for both).
MAX_ROW_COUNT = 100

#: SDP's search field paths for the fields the gateway searches on.
REQUESTER_EMAIL = "requester.email_id"
SUBJECT = "subject"
DESCRIPTION = "description"
STATUS = "status.name"
CREATED_TIME = "created_time"
UPDATED_TIME = "last_updated_time"
DISPLAY_ID = "display_id"

#: The client's sort keys -> (SDP sort field, sort order).
SORTS: dict[str, tuple[str, str]] = {
    "created_at": (CREATED_TIME, "asc"),
    "-created_at": (CREATED_TIME, "desc"),
    "updated_at": (UPDATED_TIME, "asc"),
    "-updated_at": (UPDATED_TIME, "desc"),
}

#: A UDF name as SDP spells it: ``udf_sline_1`` (single line), ``udf_char1`` (older builds), ``udf_long_2``.
UDF_NAME = re.compile(r"^udf_[a-z]+_?[0-9]+$")

Criterion = dict[str, Any]


def criterion(field: str, condition: str, value: str) -> Criterion:
    """One criterion on one value: ``{"field": ..., "condition": ..., "value": ...}``."""
    return {"field": field, "condition": condition, "value": value}


def created_between(start_ms: int, end_ms: int) -> Criterion:
    """``created_time`` within [start_ms, end_ms] (epoch milliseconds, both ends included).

    SDP's datetimes are epoch-ms strings, and its documented example passes the bounds as strings.
    """
    return {"field": CREATED_TIME, "condition": "between", "values": [str(start_ms), str(end_ms)]}


def udf_field(name: str) -> str:
    """The search path of the UDF ``name`` (``udf_sline_1`` -> ``udf_fields.udf_sline_1``); ValueError if malformed."""
    if not UDF_NAME.match(name):
        raise ValueError(f"not an SDP UDF name: {name!r}")
    return f"udf_fields.{name}"


def all_of(criteria: Sequence[Criterion]) -> list[Criterion]:
    """The criteria joined by AND, as SDP's top-level list form: each after the first says ``AND``.

    The operator is written out rather than left to a default, since SDP documents no default.
    """
    return [item if i == 0 else {**item, "logical_operator": "AND"} for i, item in enumerate(criteria)]


def any_of(criteria: Sequence[Criterion]) -> Criterion:
    """The criteria joined by OR, grouped as one criterion (the first, with the others as ``children``).

    SDP applies operators left to right without precedence, so an OR group must be nested to combine
    with ANDs around it.
    """
    if not criteria:
        raise ValueError("any_of needs at least one criterion")
    first, *rest = criteria
    if not rest:
        return dict(first)
    return {**first, "children": [{**item, "logical_operator": "OR"} for item in rest]}


def list_info(
    criteria: Sequence[Criterion] | None = None,
    *,
    start_index: int = 1,
    row_count: int = MAX_ROW_COUNT,
    sort_field: str = CREATED_TIME,
    sort_order: str = "asc",
) -> dict[str, Any]:
    """A ``list_info`` for one page (``start_index`` counts from 1; the next page starts at ``+ row_count``).

    Sorting by ``created_time`` ascending keeps pages stable while tickets are being created: new ones
    land after the last page instead of shifting the others.
    """
    if not 1 <= row_count <= MAX_ROW_COUNT:
        raise ValueError(f"row_count must be 1..{MAX_ROW_COUNT}")
    if start_index < 1:
        raise ValueError("start_index counts from 1")
    info: dict[str, Any] = {
        "row_count": row_count,
        "start_index": start_index,
        "sort_field": sort_field,
        "sort_order": sort_order,
    }
    if criteria:
        info["search_criteria"] = all_of(criteria)
    return info


def by_reference(field: str, ref: str) -> list[Criterion]:
    """Tickets whose UDF ``field`` (``udf_sline_1``) holds exactly ``ref``."""
    return [criterion(udf_field(field), "is", ref)]


def by_content(requester_email: str, subject: str, start_ms: int, end_ms: int) -> list[Criterion]:
    """Tickets of ``requester_email`` with subject ``subject``, created within [start_ms, end_ms].

    The description is left out of the query: SDP may store it as HTML, so it is compared afterwards
    with :func:`same_text`.
    """
    return [
        criterion(REQUESTER_EMAIL, "is", requester_email),
        criterion(SUBJECT, "is", subject),
        created_between(start_ms, end_ms),
    ]


def for_listing(
    *, requester_email: str | None = None, status: str | None = None, text: str | None = None
) -> list[Criterion]:
    """Criteria for a client's ticket list: by requester, by status name, and ``text`` in subject or description.

    Absent filters are left out; no filter at all gives no criteria (every ticket).
    """
    criteria: list[Criterion] = []
    if requester_email:
        criteria.append(criterion(REQUESTER_EMAIL, "is", requester_email))
    if status:
        criteria.append(criterion(STATUS, "is", status))
    if text:
        criteria.append(any_of([criterion(SUBJECT, "contains", text), criterion(DESCRIPTION, "contains", text)]))
    return criteria


def for_query(
    *,
    requester_email: str | None = None,
    status: str | None = None,
    subject_text: str | None = None,
    display_id: str | None = None,
) -> list[Criterion]:
    """Criteria for a client's search (all ANDed): requester ``is``, status name ``is``, subject ``contains``
    ``subject_text``, display id ``is``. Absent (None or empty) filters are left out; none gives no criteria."""
    criteria: list[Criterion] = []
    if requester_email:
        criteria.append(criterion(REQUESTER_EMAIL, "is", requester_email))
    if status:
        criteria.append(criterion(STATUS, "is", status))
    if subject_text:
        criteria.append(criterion(SUBJECT, "contains", subject_text))
    if display_id:
        criteria.append(criterion(DISPLAY_ID, "is", display_id))
    return criteria


def page_of(criteria: Sequence[Criterion], *, page: int, per_page: int, sort: str) -> dict[str, Any]:
    """The ``list_info`` of page ``page`` (from 1) of ``per_page`` rows (1..100), ordered by the client's
    ``sort`` key (see ``SORTS``). ValueError for a page, size or key out of range."""
    if page < 1:
        raise ValueError("page counts from 1")
    if sort not in SORTS:
        raise ValueError(f"unknown sort key: {sort!r}")
    sort_field, sort_order = SORTS[sort]
    return list_info(
        criteria,
        start_index=(page - 1) * per_page + 1,
        row_count=per_page,
        sort_field=sort_field,
        sort_order=sort_order,
    )


def paging(start_index: int, row_count: int = MAX_ROW_COUNT) -> dict[str, Any]:
    """A ``list_info`` that only pages (for lists that are not requests: notes, attachments, pick lists)."""
    if not 1 <= row_count <= MAX_ROW_COUNT:
        raise ValueError(f"row_count must be 1..{MAX_ROW_COUNT}")
    if start_index < 1:
        raise ValueError("start_index counts from 1")
    return {"row_count": row_count, "start_index": start_index}


# ---- comparing what was sent with what Zoho stored -------------------------------------------------------------

_TAG = re.compile(r"<[^>]*>")


def _spaces(text: str) -> str:
    return " ".join(text.split())


def text_forms(text: str) -> frozenset[str]:
    """The readings of ``text`` that the same description may take in Zoho, whitespace collapsed.

    As sent (plain text), and as HTML read as text: SDP may store a plain description wrapped in HTML
    (``<div>``, ``<br>`` for line breaks, ``&lt;`` for ``<``). Tags are removed before entities are
    decoded, so an escaped ``&lt;b&gt;`` stays text.
    """
    plain = _spaces(text)
    as_html = _spaces(html.unescape(_TAG.sub(" ", text)))
    return frozenset({plain, as_html})


def same_text(sent: str, stored: str) -> bool:
    """Whether ``stored`` (Zoho's description, plain or HTML) is the description ``sent`` (plain text)."""
    return not text_forms(sent).isdisjoint(text_forms(stored))


def same_field(stored: Any, sent: str) -> bool:
    """Equal ignoring case, runs of spaces and HTML escaping, as loosely as the helpdesk's search may compare
    (SDP's ``is``, Desk's search); a field Zoho left out (or null) cannot disprove the match its criterion made."""
    if not isinstance(stored, str):
        return True
    forms = {form.casefold() for form in text_forms(stored)}
    return not forms.isdisjoint(form.casefold() for form in text_forms(sent))
