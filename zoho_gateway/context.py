"""Per-request context shared by the layers without passing it around: the request id (a ContextVar)."""

from __future__ import annotations

from contextvars import ContextVar

#: The current request's id; "-" outside a request. Set by api/, read by the log formatter.
request_id: ContextVar[str] = ContextVar("request_id", default="-")
