"""Marshmallow schemas only the OpenAPI document uses: the error body, health, readiness, token status, index."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate


class ErrorDetails(Schema):
    """What went wrong, for programs (``code``) and people (``message``). More keys may come."""

    class Meta:
        unknown = INCLUDE  # documented as an open object: Zoho's failures add their own facts

    code = fields.String(required=True, metadata={"description": "Stable: branch on this"})
    message = fields.String(required=True, metadata={"description": "For people; may change"})
    request_id = fields.String(metadata={"description": "Quote it to us: it finds the request in our logs"})
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Per-field problems, keyed by your field names"},
    )
    retry_after = fields.Integer(metadata={"description": "Seconds to wait, as in the Retry-After header"})
    zoho_codes = fields.List(fields.Integer(), metadata={"description": "Zoho's own status codes"})
    upstream_status = fields.Integer(metadata={"description": "The HTTP status Zoho answered with"})


class ErrorBody(Schema):
    """Every error answer: ``{"error": <summary>, "details": {"code", "message", ...}}``."""

    error = fields.String(required=True)
    details = fields.Nested(ErrorDetails, required=True)


class Health(Schema):
    """``GET /healthz`` answer."""

    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class Readiness(Schema):
    """``GET /readyz`` answer: ``status`` and the facts that decided it."""

    class Meta:
        unknown = INCLUDE  # more facts may be added

    status = fields.String(required=True, validate=validate.OneOf(["ready", "not_ready"]))
    state = fields.String(validate=validate.OneOf(["ok", "unavailable"]), metadata={"description": "Shared state"})
    token = fields.String(validate=validate.OneOf(["valid", "absent"]), metadata={"description": "Access token"})
    token_backoff = fields.String(metadata={"description": "Why the token endpoint is being left alone"})


class TokenStatus(Schema):
    """``GET /token/status`` answer: the shared access token's state, never the token itself."""

    class Meta:
        unknown = INCLUDE  # an operator's view: more facts may be added

    backend = fields.String(required=True, metadata={"example": "sqlite"})
    token_held = fields.Boolean(required=True)
    expires_at = fields.String(allow_none=True, metadata={"description": "ISO 8601, UTC"})
    expires_in = fields.Integer(allow_none=True, metadata={"description": "Seconds"})
    fingerprint = fields.String(allow_none=True, metadata={"description": "Tells tokens apart without showing one"})
    mints_last_hour = fields.Integer()
    throttled = fields.Boolean()


class Index(Schema):
    """``GET /`` answer (with a redirect to ``/docs``): where to read about the API."""

    message = fields.String(required=True)
    docs = fields.String(required=True, metadata={"example": "/docs"})
    openapi = fields.String(required=True, metadata={"example": "/openapi.json"})
