"""The simulated SDP v3 lists of values to pick from: priorities, statuses, categories, departments, closure codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from . import wire
from .entities import CATALOGS, Entity, catalog_object
from .sdp import begin
from .search import parse_list_info
from .validation import SdpInputError
from .world import current_portal

# Registered twice by the app factory, like ``sdp.bp``.
bp = Blueprint("sandbox_meta", __name__)

# URL segment (also the list's key in the answer) -> the catalog it lists.
LISTS: dict[str, str] = {
    "priorities": "priority",
    "statuses": "status",
    "categories": "category",
    "departments": "department",
    "closure_codes": "closure_code",
}


def catalog(field: str) -> list[Entity]:
    """Every value of a catalog as SDP shows it (``{id, name}``; priorities add colour, statuses more)."""
    return [catalog_object(field, {"name": name}) for name in CATALOGS[field]]


def _list(key: str) -> Response:
    world = current_portal("sdp")
    answer, _ = begin(world, "meta")
    if answer is not None:
        return answer
    try:
        query = parse_list_info(request.args.get("input_data"))
    except SdpInputError as exc:
        return wire.sdp_failure(400, exc.status_code, exc.message, exc.field)
    every = catalog(LISTS[key])
    page = every[query.start_index - 1 : query.start_index - 1 + query.row_count]
    list_info: dict[str, Any] = {
        "has_more_rows": query.start_index - 1 + len(page) < len(every),
        "start_index": query.start_index,
        "row_count": len(page),
    }
    if query.get_total_count:
        list_info["total_count"] = len(every)
    return wire.sdp_list(key, page, list_info)


def _view(key: str) -> Callable[..., Response]:
    def view(portal: str | None = None) -> Response:
        return _list(key)

    view.__doc__ = f"The {key} list, as SDP's list envelope of ``{{id, name}}`` objects, paged by list_info."
    return view


for _key in LISTS:
    bp.add_url_rule(f"/{_key}", endpoint=_key, view_func=_view(_key), methods=["GET"])
