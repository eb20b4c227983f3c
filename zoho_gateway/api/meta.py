"""``GET /meta/priorities|statuses|categories|departments``: the values a ticket may take, for dropdowns."""

from __future__ import annotations

from flask import Blueprint, Response

from ..gateway import current_gateway
from ..zoho.model import PickKind
from .answers import json_response
from .scopes import requires

bp = Blueprint("meta", __name__)

#: The pick lists served, as their URL names them.
PICK_LISTS: tuple[PickKind, ...] = ("priorities", "statuses", "categories", "departments")


@bp.get(f"/meta/<any({', '.join(PICK_LISTS)}):kind>")
@requires("tickets:read")
def pick_list(kind: PickKind) -> Response:
    """Every value of the list, read from Zoho at most ``GATEWAY_META_TTL`` seconds ago (shared store)."""
    gateway = current_gateway()
    response = json_response({"items": gateway.pick_lists.values(kind)})
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
