"""How the OpenAPI document declares one operation (``_add``), its answers and headers, and the shared parameters."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from .openapi_responses import ECHOED_ID, OPERATION_ERRORS, STRING, error_responses
from .schemas import TICKET_ID, TICKET_OUT_EXAMPLE

_SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def _header(name: str, description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An optional request header, as an OpenAPI parameter."""
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema, **more}


#: Every request reads it (the access hooks), so every operation lists it. Not constrained in the schema:
#: an id outside the pattern is replaced, not refused, so no value of it is "invalid input".
_REQUEST_ID = _header(
    "X-Request-ID",
    "Your id for this request, kept when it is 1-128 of `A-Z a-z 0-9 . _ -` (else replaced); echoed in the "
    "`X-Request-ID` answer header and in `details.request_id`",
    STRING,
    example="order-4711.retry-1",
)
_TICKET_ID = {
    "name": "ticket_id",
    "in": "path",
    "required": True,
    "description": "The `zoho_ticket_id` of the create's answer",
    "schema": {"type": "string", "pattern": f"^{TICKET_ID.pattern}$"},
    "example": TICKET_OUT_EXAMPLE["ticket_id"],
}


def _answer(description: str, content: dict[str, Any] | None = None, **headers: Any) -> dict[str, Any]:
    """A response: ``X-Request-ID`` (every answer has it) and ``headers``, and the body's ``content``."""
    answer = {"description": description, "headers": {**ECHOED_ID, **headers}}
    return {**answer, "content": content} if content else answer


def _add(
    spec: APISpec,
    path: str,
    operation_id: str,
    summary: str,
    description: str,
    *,
    method: str = "get",
    tags: list[str],
    responses: dict[str, Any],
    security: list[dict[str, list[str]]] = _SECURED,
    parameters: tuple[dict[str, Any], ...] = (),
    **parts: Any,
) -> None:
    """One operation on ``spec``; its error responses come from ``OPERATION_ERRORS`` (none for a public one)."""
    responses = dict(responses)
    if operation_id in OPERATION_ERRORS:
        rate_limited = operation_id != "getMetrics"  # the scrape is never counted (api/access.py)
        responses.update(error_responses(OPERATION_ERRORS[operation_id], rate_limited=rate_limited))
    operation = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": tags,
        "security": security,
        "parameters": [*parameters, _REQUEST_ID],
        **parts,
        "responses": responses,
    }
    spec.path(path, operations={method: operation})
