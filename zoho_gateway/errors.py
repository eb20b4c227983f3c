"""The gateway's exception tree: every failure a client can see, with its HTTP status and stable code.

Knows nothing of Flask or ``requests``: ``zoho/`` raises these, ``api/`` renders them.
Messages never contain tokens, secrets or API keys.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway answers with.

    ``status`` and ``code`` are class attributes (the stable contract); ``message`` is for people;
    ``retry_after`` (seconds) becomes a ``Retry-After`` header; ``extra`` is merged into ``details``.
    """

    status: int = 500
    code: str = "internal_error"
    summary: str = "Internal error"

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
    status, code, summary = 400, "bad_request", "Bad request"


class InvalidJSON(BadRequest):
    code, summary = "invalid_json", "Request body is not valid JSON"


class InvalidTicketId(BadRequest):
    code, summary = "invalid_ticket_id", "Invalid ticket id"


class InvalidHeader(BadRequest):
    code, summary = "invalid_header", "Invalid request header"


class Unauthorized(GatewayError):
    status, code, summary = 401, "unauthorized", "Missing or invalid API key"


class Forbidden(GatewayError):
    status, code, summary = 403, "forbidden", "Forbidden"


class RouteNotFound(GatewayError):
    status, code, summary = 404, "not_found", "No such route"


class TicketNotFound(GatewayError):
    status, code, summary = 404, "ticket_not_found", "Ticket not found"


class MethodNotAllowed(GatewayError):
    status, code, summary = 405, "method_not_allowed", "Method not allowed"


class IdempotencyKeyInFlight(GatewayError):
    status, code, summary = 409, "idempotency_key_in_flight", "A request with this Idempotency-Key is in progress"


class PayloadTooLarge(GatewayError):
    status, code, summary = 413, "payload_too_large", "Request body is too large"


class UnsupportedMediaType(GatewayError):
    status, code, summary = 415, "unsupported_media_type", "Content-Type must be application/json"


class InvalidTicket(GatewayError):
    status, code, summary = 422, "validation_failed", "Invalid ticket fields"


class IdempotencyKeyReused(GatewayError):
    status, code, summary = 422, "idempotency_key_reused", "Idempotency-Key was used with a different body"


class ZohoRejected(GatewayError):
    """Zoho refused a value the client supplied (SDP 4001/4012 with a field): the client can fix it."""

    status, code, summary = 422, "zoho_rejected_value", "Zoho rejected a value in the ticket"


class RateLimited(GatewayError):
    status, code, summary = 429, "rate_limited", "Too many requests"


# --- Zoho's (or our credentials') failures (5xx) ---------------------------------------------


class ZohoBadResponse(GatewayError):
    """Zoho answered something we cannot use (HTML, garbage, an unknown failure, a 5xx)."""

    status, code, summary = 502, "zoho_bad_response", "Zoho answered with an unusable response"


class ZohoAuthFailed(GatewayError):
    """Zoho refused our credentials or permissions (a second 401, a 403): an operator must act."""

    status, code, summary = 502, "zoho_auth_failed", "Zoho refused the gateway's credentials or permissions"


class ZohoUnavailable(GatewayError):
    """Zoho could not be reached, or said it is overloaded; retrying later may work."""

    status, code, summary = 503, "zoho_unavailable", "Zoho is unavailable"


class ZohoRateLimited(ZohoUnavailable):
    code, summary = "zoho_rate_limited", "Zoho is rate-limiting the gateway"


class ZohoTokenUnavailable(ZohoUnavailable):
    """No usable access token: the token endpoint is down or refuses our credentials."""

    code, summary = "zoho_token_unavailable", "Zoho access token unavailable"


class ZohoTokenThrottled(ZohoTokenUnavailable):
    """Zoho's token endpoint throttles us and no valid token is left."""

    code, summary = "zoho_token_throttled", "Zoho is throttling access-token requests"


class StateUnavailable(GatewayError):
    status, code, summary = 503, "state_unavailable", "The gateway's shared state is unavailable"


class ZohoTimeout(GatewayError):
    status, code, summary = 504, "zoho_timeout", "Zoho did not answer in time"


class ZohoOutcomeUnknown(ZohoTimeout):
    """A create was sent but no answer came: the ticket may or may not exist."""

    code, summary = "zoho_outcome_unknown", "Zoho did not answer; the ticket may or may not have been created"
