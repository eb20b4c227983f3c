"""The Zoho Desk v1 client: one authenticated call (orgId, token, retries), judged by :mod:`.judge`.

Owns transport concerns only: the URL, the ``orgId`` and ``Authorization: Zoho-oauthtoken`` headers, the
retry rule, a 401's token replacement (at most one mint per call) and the mapping of transport failures.
What an answer means is decided by :func:`.judge.judge`. Raises only :mod:`zoho_gateway.errors` exceptions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from ...errors import ZohoAuthFailed, ZohoOutcomeUnknown, ZohoTimeout, ZohoUnavailable
from ..model import Upload
from ..multipart import MultipartStream
from ..parser import parse_retry_after
from ..retry import RetryPolicy
from ..token_held import Renewal
from ..token_record import fingerprint
from ..transport import NoAnswer, NotSent, Response, Transport, TransportError
from .judge import ADDING, UNKNOWN_OUTCOMES, Operation, TokenRejected, judge

log = logging.getLogger("zoho_gateway.zoho")

#: Called after every upstream attempt: (operation, outcome, seconds); outcome is an HTTP status as a string,
#: "not_sent", "no_answer" or "retry" (as ``zoho.client.CallObserver``). Used for metrics; must not raise.
CallObserver = Callable[[str, str, float], None]

#: Operations that may be sent again after they may have arrived: reads, and PATCHes that set values.
IDEMPOTENT = frozenset({"get", "list", "notes", "attachments", "meta", "contacts", "update", "close"})


class TokenSource(Protocol):
    """What the client needs of ``TokenManager``: a token now, and another after Desk refused one."""

    def current(self) -> Renewal: ...

    def replace(self, rejected: str) -> Renewal: ...


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
        self._transport = transport
        self._tokens = tokens
        self._policy = policy
        self._observe = observe

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

    def _call(
        self, method: str, url: str, body: bytes | Callable[[], MultipartStream] | None, operation: Operation
    ) -> Any:
        """Send with a valid token and judge the answer; when Desk refuses the token, replace it and re-send.

        At most one mint per call, as ``ServiceDeskClient._call``: a token another worker stored may have been
        revoked with the one that failed, so it is dropped in turn and one mint tried (ZohoTokenUnavailable or
        ZohoTokenThrottled, 503, when that fails). Desk refusing a token minted for this very call raises
        ZohoAuthFailed (502): the credentials, scopes or data centre are wrong.
        """
        tries = 4  # its own token, another worker's, one another thread minted meanwhile, its own mint
        renewal = self._tokens.current()
        for _ in range(tries):
            headers = {
                "Authorization": f"Zoho-oauthtoken {renewal.token}",
                "orgId": self._org_id,
                "Accept": "application/json",
            }
            if isinstance(body, bytes):
                headers["Content-Type"] = "application/json"
            answer = self._send(method, url, headers, body, operation)
            try:
                return judge(answer.status, answer.body, operation, answer.headers.get("Retry-After"))
            except TokenRejected:
                if renewal.minted:
                    break
                log.info("Zoho Desk refused the token; replacing it", extra={"token_fp": fingerprint(renewal.token)})
                renewal = self._tokens.replace(renewal.token)
        raise ZohoAuthFailed(
            "Zoho Desk refused a freshly minted access token: check the OAuth scopes (Desk.*), the data centre "
            "and the portal's base URL"
        )

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | Callable[[], MultipartStream] | None,
        operation: Operation,
    ) -> Response:
        """Send with the retry policy. Returns the last answer (any status) or raises a mapped error.

        A PATCH that sets values is retried like a read (the policy's rule for GET), since a second arrival
        leaves the ticket as the first did; every other write only when it provably never left.
        """
        rule = "GET" if operation in IDEMPOTENT else method
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            error: TransportError | None = None
            answer: Response | None = None
            try:
                if body is None or isinstance(body, bytes):
                    answer = self._transport.request(method, url, headers=headers, body=body)
                else:
                    stream = body()
                    answer = self._transport.send_stream(
                        method,
                        url,
                        headers={**headers, "Content-Type": stream.content_type},
                        body=stream,
                        length=stream.length,
                    )
                self._notify(operation, str(answer.status), answer.elapsed)
            except TransportError as exc:
                error = exc
                self._notify(operation, "not_sent" if isinstance(exc, NotSent) else "no_answer", 0.0)
            status = answer.status if answer is not None else None
            if self._policy.may_retry(rule, error=error, status=status) and attempt < self._policy.max_attempts:
                retry_after = None
                if answer is not None and answer.headers.get("Retry-After"):
                    retry_after = float(parse_retry_after(answer.headers.get("Retry-After"), default=1))
                pause = self._policy.delay(attempt, retry_after)
                if time.monotonic() - started + pause < self._policy.budget:
                    log.info(
                        "retrying Zoho Desk call",
                        extra={"operation": operation, "attempt": attempt, "outcome": status or type(error).__name__},
                    )
                    self._notify(operation, "retry", 0.0)
                    time.sleep(pause)
                    continue
            if answer is not None:
                return answer
            raise _transport_error(operation, error)

    def _notify(self, operation: str, outcome: str, seconds: float) -> None:
        if self._observe is not None:
            self._observe(operation, outcome, seconds)


def _transport_error(operation: Operation, error: TransportError | None) -> Exception:
    """The error for a call that got no answer: only one that provably never left may be sent again."""
    if isinstance(error, NotSent):
        return ZohoUnavailable("Zoho Desk cannot be reached; nothing was sent", retry_after=5)
    if isinstance(error, NoAnswer) and operation in ADDING:
        return ZohoOutcomeUnknown(f"Zoho Desk did not answer: {UNKNOWN_OUTCOMES[operation]}")
    return ZohoTimeout("Zoho Desk did not answer in time", retry_after=5)
