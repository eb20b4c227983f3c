"""The gateway's exception tree: every failure a client can see, with its HTTP status and stable code.

Knows nothing of Flask or ``requests``: ``zoho/`` raises these, ``api/`` renders them.
Messages never contain tokens, secrets or API keys.

This tree is the one list of error codes: the OpenAPI document, ``/docs`` and the README's table
(:func:`markdown_table`) are generated from it. A new failure a client can see is a new class here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error the gateway answers with; itself the last-resort 500.

    ``status``, ``code``, ``summary`` (the body's ``error``), ``meaning`` (one line for the docs) and
    ``retry_after_header`` (whether answers of this class may carry ``Retry-After``) are class attributes:
    the stable contract. ``message`` is for people; ``retry_after`` (seconds) becomes a ``Retry-After``
    header; ``extra`` is merged into ``details``.
    """

    status: int = 500
    code: str = "internal_error"
    summary: str = "Internal error"
    meaning: ClassVar[str] = "the gateway failed unexpectedly (a bug); quote `details.request_id` to us"
    retry_after_header: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        fields: dict[str, list[str]] | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or self.summary
        self.retry_after = retry_after
        self.fields = fields
        self.extra = extra
        super().__init__(self.message)

    def details(self) -> dict[str, Any]:
        """The ``details`` object of the error body (``request_id`` is added by the renderer)."""
        details: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            details["fields"] = self.fields
        if self.retry_after is not None:
            details["retry_after"] = self.retry_after
        details.update(self.extra)
        return details


# --- the client's mistakes (4xx) -------------------------------------------------------------


class BadRequest(GatewayError):
    """Werkzeug's own 400 (for example a body that stops before its Content-Length)."""

    status, code, summary = 400, "bad_request", "Bad request"
    meaning = "the HTTP request itself is malformed (for example the body ended early)"


class InvalidJSON(BadRequest):
    code, summary = "invalid_json", "Request body is not valid JSON"
    meaning = "the body is not one JSON object (empty, malformed, not UTF-8, or a key given twice)"


class InvalidTicketId(BadRequest):
    code, summary = "invalid_ticket_id", "Invalid ticket id"
    meaning = "the ticket id is not 1–20 digits"


class InvalidHeader(BadRequest):
    code, summary = "invalid_header", "Invalid request header"
    meaning = "a header is malformed (`Idempotency-Key`: 1–255 printable characters)"


class Unauthorized(GatewayError):
    status, code, summary = 401, "unauthorized", "Missing or invalid API key"
    meaning = "missing or wrong API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`)"


class Forbidden(GatewayError):
    status, code, summary = 403, "forbidden", "The API key may not do this"
    meaning = (
        "your API key is valid but lacks the scope this route needs (`details.scope` names it), "
        "or may not use this portal (`details.portal`)"
    )


class RouteNotFound(GatewayError):
    status, code, summary = 404, "not_found", "No such route"
    meaning = "no such route"


class TicketNotFound(GatewayError):
    status, code, summary = 404, "ticket_not_found", "Ticket not found"
    meaning = "no such ticket in Zoho"


class RequestNotFound(GatewayError):
    status, code, summary = 404, "request_not_found", "Request reference not found"
    meaning = "no create with this `request_ref` was accepted for your API key (or it was pruned)"


class MethodNotAllowed(GatewayError):
    status, code, summary = 405, "method_not_allowed", "Method not allowed"
    meaning = "the route exists but not with this method; see the `Allow` header"


class IdempotencyKeyInFlight(GatewayError):
    status, code, summary = 409, "idempotency_key_in_flight", "A request with this Idempotency-Key is in progress"
    meaning = "the first request with this `Idempotency-Key` is still running; retry after `Retry-After`"
    retry_after_header = True


class RequestDropped(GatewayError):
    status, code, summary = 410, "request_dropped", "An operator dropped this create before Zoho created it"
    meaning = "an operator dropped this queued create: no ticket was created; send it again with a new key"


class PreconditionFailed(GatewayError):
    status, code, summary = 412, "precondition_failed", "The ticket changed since the ETag in If-Match"
    meaning = "`If-Match` names an `ETag` the ticket no longer has: read it again, then retry with the new `ETag`"


class PayloadTooLarge(GatewayError):
    status, code, summary = 413, "payload_too_large", "Request body is too large"
    meaning = "the body is over 1 MB"


class UnsupportedMediaType(GatewayError):
    status, code, summary = 415, "unsupported_media_type", "Content-Type must be application/json"
    meaning = "the `Content-Type` header is not `application/json`"


class InvalidTicket(GatewayError):
    status, code, summary = 422, "validation_failed", "Invalid ticket fields"
    meaning = "some fields are missing or invalid; `details.fields` says which and why"


class IdempotencyKeyReused(GatewayError):
    status, code, summary = 422, "idempotency_key_reused", "Idempotency-Key was used with a different body"
    meaning = "this `Idempotency-Key` was already used with another body"


class ZohoRejected(GatewayError):
    """Zoho refused a value the client supplied (SDP 4001/4012 with a field): the client can fix it."""

    status, code, summary = 422, "zoho_rejected_value", "Zoho rejected a value in the ticket"
    meaning = "Zoho refused a value (for example an unknown priority); `details.fields` names it"


class RateLimited(GatewayError):
    status, code, summary = 429, "rate_limited", "Too many requests"
    meaning = "your key's rate limit is spent; see `Retry-After` and `RateLimit-*`"
    retry_after_header = True


# --- attachments (issue 11): multipart bodies and the files in them ----------------------------


class InvalidMultipart(BadRequest):
    code, summary = "invalid_multipart", "Invalid multipart/form-data body"
    meaning = (
        "the `multipart/form-data` body is malformed (no boundary, cut short), has a part other than `file` "
        "(and `ticket` on `POST /requests`), or lacks one it needs"
    )


class AttachmentTooLarge(PayloadTooLarge):
    code, summary = "attachment_too_large", "An attached file or the form is too large"
    meaning = (
        "a file is over `GATEWAY_MAX_ATTACHMENT_BYTES` (default 10 MiB), or the form has more files or bytes than "
        "allowed; `details.limit` says which, `details.max_bytes` or `details.max_files` how much"
    )


class MultipartRequired(UnsupportedMediaType):
    code, summary = "multipart_required", "Content-Type must be multipart/form-data"
    meaning = "files are sent as `multipart/form-data` with `file` parts; the `Content-Type` header is another"


class UnsupportedAttachmentType(UnsupportedMediaType):
    code, summary = "unsupported_attachment_type", "File type not allowed"
    meaning = (
        "a file's type, judged from its bytes (not its name or claimed type), is not in `GATEWAY_ATTACHMENT_TYPES`; "
        "`details.detected_type` names it, `details.file` the file"
    )


class AsyncCreateWithFiles(GatewayError):
    status, code, summary = 422, "async_create_with_files", "Prefer: respond-async cannot carry files"
    meaning = (
        "`Prefer: respond-async` came with `file` parts: a queued create keeps no files. Create the ticket, then "
        "`POST /requests/{id}/attachments`; or send the form without `Prefer`"
    )


# --- Zoho's (or our credentials') failures (5xx) ---------------------------------------------


class ZohoBadResponse(GatewayError):
    """Zoho answered something we cannot use (HTML, garbage, an unknown failure, a 5xx)."""

    status, code, summary = 502, "zoho_bad_response", "Zoho answered with an unusable response"
    meaning = "Zoho answered something unusable (not JSON, an unknown failure, a server error)"


class ZohoAuthFailed(GatewayError):
    """Zoho refused our credentials or permissions (a second 401, a 403): an operator must act."""

    status, code, summary = 502, "zoho_auth_failed", "Zoho refused the gateway's credentials or permissions"
    meaning = "Zoho refused the gateway's credentials or permissions (operators: check scopes and portal URL)"


class ZohoUnavailable(GatewayError):
    """Zoho could not be reached, or said it is overloaded; retrying later may work."""

    status, code, summary = 503, "zoho_unavailable", "Zoho is unavailable"
    meaning = "Zoho cannot be reached or says it is overloaded"
    retry_after_header = True


class ZohoRateLimited(ZohoUnavailable):
    code, summary = "zoho_rate_limited", "Zoho is rate-limiting the gateway"
    meaning = "Zoho is rate-limiting the gateway's calls"


class ZohoTokenUnavailable(ZohoUnavailable):
    """No usable access token: the token endpoint is down or refuses our credentials."""

    code, summary = "zoho_token_unavailable", "Zoho access token unavailable"
    meaning = "no Zoho access token: Zoho's token endpoint is down or refuses the gateway's credentials"


class ZohoTokenThrottled(ZohoTokenUnavailable):
    """Zoho's token endpoint throttles us and no valid token is left."""

    code, summary = "zoho_token_throttled", "Zoho is throttling access-token requests"
    meaning = "Zoho is throttling the gateway's token requests and no valid token is left"


class StateUnavailable(GatewayError):
    status, code, summary = 503, "state_unavailable", "The gateway's shared state is unavailable"
    meaning = "the gateway's shared state (SQLite or Redis) cannot be read"
    retry_after_header = True


class ZohoTimeout(GatewayError):
    status, code, summary = 504, "zoho_timeout", "Zoho did not answer in time"
    meaning = "Zoho did not answer a read in time"
    retry_after_header = True


class ZohoOutcomeUnknown(ZohoTimeout):
    """A write that adds something (a ticket, a note, files) was sent and no usable answer came: it may or may
    not have been done. A create's is settled by the gateway: the create queue searches Zoho before any
    re-send (policies/delivery.py), so a create is answered 201, or 202 with a ``request_ref``; this error
    reaches a client for a note or an upload, for a create made while the create queue's store was down (sent
    straight to Zoho, nobody searches for it later), or replayed from a create recorded before the queue."""

    code, summary = "zoho_outcome_unknown", "Zoho did not answer; what was sent may or may not have been added"
    meaning = (
        "a note or files were sent but Zoho never answered: they may or may not have been added; list the "
        "ticket's notes or attachments before sending them again (a re-send with the same `Idempotency-Key` "
        "replays this answer). A create whose answer was lost is settled by the gateway, which searches Zoho "
        "for it: you get `201`, or `202` with a `request_ref`; except while the gateway's state store is down, "
        "when a create without `Prefer` goes straight to Zoho and a lost answer is this error: look for the ticket "
        "before sending it again"
    )
    retry_after_header = False  # waiting changes nothing: a re-send could add it twice; look first


class NotSupportedByService(GatewayError):
    """The portal's helpdesk has no such operation (Zoho Desk has no list of priorities, for example)."""

    status, code, summary = 501, "not_supported_by_service", "The portal's helpdesk does not support this operation"
    meaning = "the portal's helpdesk (ServiceDesk Plus or Zoho Desk) has no such operation"


# --- portals (issue 12) ---------------------------------------------------------------------


class PortalNotFound(GatewayError):
    status, code, summary = 404, "portal_not_found", "No such portal"
    meaning = "no portal of that name is served (`/portals/{portal}/...`); the gateway's portals file lists them"


# --- the table of them all ----------------------------------------------------------------


def catalogue() -> list[type[GatewayError]]:
    """Every error class, by status, and within a status in the order of this module (parents first)."""

    def walk(cls: type[GatewayError]) -> list[type[GatewayError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    return sorted(walk(GatewayError), key=lambda cls: cls.status)


def markdown_table() -> str:
    """The README's error table (GitHub markdown, ending in a newline), one row per code."""
    rows = ["| status | code | meaning | `Retry-After` |", "|---|---|---|---|"]
    for cls in catalogue():
        retry = "yes" if cls.retry_after_header else ""
        rows.append(f"| {cls.status} | `{cls.code}` | {cls.meaning} | {retry} |")
    return "\n".join(rows) + "\n"
