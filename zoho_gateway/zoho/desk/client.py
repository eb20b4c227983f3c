"""The Zoho Desk v1 client: one authenticated call (orgId, token, retries), judged by :mod:`.judge`.

Owns transport concerns only: the URL, the ``orgId`` and ``Authorization: Zoho-oauthtoken`` headers, the
retry rule, a 401's token replacement (at most one mint per call) and the mapping of transport failures.
What an answer means is decided by :func:`.judge.judge`. Raises only :mod:`zoho_gateway.errors` exceptions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from ...errors import ZohoOutcomeUnknown, ZohoTimeout, ZohoUnavailable
from ..calling import Caller, CallObserver, StreamBody, TokenSource, Voice
from ..model import Upload
from ..multipart import MultipartStream
from ..retry import RetryPolicy
from ..transport import NoAnswer, NotSent, Transport, TransportError
from .judge import ADDING, UNKNOWN_OUTCOMES, Operation, judge

#: Operations that may be sent again after they may have arrived: reads, and PATCHes that set values.
IDEMPOTENT = frozenset({"get", "list", "notes", "attachments", "meta", "contacts", "update", "close"})

VOICE = Voice(
    replacing="Zoho Desk refused the token; replacing it",
    retrying="retrying Zoho Desk call",
    refused_fresh=(
        "Zoho Desk refused a freshly minted access token: check the OAuth scopes (Desk.*), the data centre "
        "and the portal's base URL"
    ),
)


class DeskClient:
    """Thread-safe. ``base_url`` is the Desk root (``https://desk.zoho.com``); ``/api/v1`` is appended."""

    def __init__(
        self,
        *,
        base_url: str,
        org_id: str,
        transport: Transport,
        tokens: TokenSource,
        policy: RetryPolicy,
        observe: CallObserver | None = None,
    ) -> None:
        if not org_id.strip():
            raise ValueError("a Zoho Desk portal needs its org_id")
        self.api_url = f"{base_url.rstrip('/')}/api/v1"
        self._org_id = org_id.strip()
        self._caller = Caller(transport=transport, tokens=tokens, policy=policy, observe=observe, voice=VOICE)

    def url(self, *parts: str, params: Mapping[str, str | int] | None = None) -> str:
        """``/api/v1/<parts...>`` (each part quoted) with ``params`` as the query string."""
        path = "/".join([self.api_url, *(quote(part, safe="") for part in parts)])
        return f"{path}?{urlencode(params)}" if params else path

    def call(self, method: str, url: str, operation: Operation, body: Mapping[str, Any] | None = None) -> Any:
        """Send (JSON ``body`` if given) and judge: the decoded JSON, or None for 204. Raises as ``judge``."""
        data = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return self._call(method, url, data, operation)

    def upload(self, url: str, upload: Upload) -> Any:
        """POST one file as the multipart part ``file``, streamed from ``upload.stream`` (never read whole).

        Never re-sent once it may have arrived (ZohoOutcomeUnknown). Re-sent only when nothing was done (no
        connection made, a 401), and then only if the stream can seek back to where it started.
        """
        start = upload.stream.tell() if upload.stream.seekable() else None
        opened = 0

        def body() -> MultipartStream:
            nonlocal opened
            opened += 1
            if opened > 1:
                if start is None:
                    raise ZohoUnavailable(
                        "Zoho refused the first send and the file cannot be read twice", retry_after=5
                    )
                upload.stream.seek(start)
            return MultipartStream([], [("file", upload.name, upload.content_type, upload.stream, upload.size)])

        return self._call("POST", url, body, "upload")

    def _call(self, method: str, url: str, body: bytes | StreamBody | None, operation: Operation) -> Any:
        """Send with a valid token and judge the answer by :func:`.judge.judge`; when Desk refuses the token,
        replace it and re-send (at most one mint per call): see :meth:`..calling.Caller.call`.

        A PATCH that sets values is retried like a read (the policy's rule for GET), since a second arrival
        leaves the ticket as the first did; every other write only when it provably never left.
        """
        headers = {"orgId": self._org_id, "Accept": "application/json"}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"
        rule = "GET" if operation in IDEMPOTENT else method
        return self._caller.call(
            method, url, headers, body, operation, judge=judge, unanswered=_transport_error, rule=rule
        )


def _transport_error(operation: Operation, error: TransportError | None) -> Exception:
    """The error for a call that got no answer: only one that provably never left may be sent again."""
    if isinstance(error, NotSent):
        return ZohoUnavailable("Zoho Desk cannot be reached; nothing was sent", retry_after=5)
    if isinstance(error, NoAnswer) and operation in ADDING:
        return ZohoOutcomeUnknown(f"Zoho Desk did not answer: {UNKNOWN_OUTCOMES[operation]}")
    return ZohoTimeout("Zoho Desk did not answer in time", retry_after=5)
