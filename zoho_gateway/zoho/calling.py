"""One authenticated, retried Zoho call, shared by the ServiceDesk Plus and Desk clients.

Each client says what it sends (its headers), how an answer is judged (its ``judge``) and what an
unanswered call means (its transport-error mapping); :class:`Caller` owns the rest, written once: a refused
token's replacement (at most one mint per call) and the retry loop (the policy's rule, ``Retry-After``,
the time budget, the observer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..errors import ZohoAuthFailed
from .multipart import MultipartStream
from .parser import TokenRejected, parse_retry_after
from .retry import RetryPolicy
from .token_held import Renewal
from .token_record import fingerprint
from .transport import NotSent, Response, Transport, TransportError

log = logging.getLogger("zoho_gateway.zoho")

#: Called after every upstream attempt: (operation, outcome, seconds). Outcome is an HTTP status as a string,
#: "not_sent", "no_answer" or "retry". Used for metrics; must not raise.
CallObserver = Callable[[str, str, float], None]

#: A body sent as it is read: called once per attempt, it gives a fresh stream (files rewound).
StreamBody = Callable[[], MultipartStream]

Op = TypeVar("Op", bound=str)
T = TypeVar("T")

#: How a client judges an answer: (HTTP status, body, operation, Retry-After) to a result, or raises
#: ``TokenRejected`` (replace the token) or a :class:`GatewayError`.
Judge = Callable[[int, bytes, Op, str | None], T]
#: How a client names a call that got no answer (``error`` is None only if no attempt was made).
Unanswered = Callable[[Op, TransportError | None], Exception]


class TokenSource(Protocol):
    """What a client needs of ``TokenManager``: a token now, and another after Zoho refused one."""

    def current(self) -> Renewal: ...

    def replace(self, rejected: str) -> Renewal: ...


@dataclass(frozen=True)
class Voice:
    """What a client's log lines and its last error call the service (SDP and Desk each say it their way)."""

    #: logged when a token that was not minted for this call is refused and replaced
    replacing: str
    #: logged before each re-send
    retrying: str
    #: ZohoAuthFailed's message when a token minted for this very call is refused
    refused_fresh: str


class Caller:
    """Thread-safe: holds no state of its own between calls."""

    def __init__(
        self,
        *,
        transport: Transport,
        tokens: TokenSource,
        policy: RetryPolicy,
        observe: CallObserver | None,
        voice: Voice,
    ) -> None:
        self._transport = transport
        self._tokens = tokens
        self._policy = policy
        self._observe = observe
        self._voice = voice

    def call(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | StreamBody | None,
        operation: Op,
        *,
        judge: Judge[Op, T],
        unanswered: Unanswered[Op],
        rule: str | None = None,
    ) -> T:
        """Send with a valid token and judge the answer; when Zoho refuses the token, replace it and re-send.

        ``headers`` go out after ``Authorization`` on every attempt; ``rule`` is the method the retry policy
        judges by (``method`` if None). At most one mint per call: a token another worker stored may have been
        revoked with the one that failed, so it is dropped in turn and one mint tried (ZohoTokenUnavailable or
        ZohoTokenThrottled, 503, when that fails). Zoho refusing a token minted for this very call raises
        ZohoAuthFailed (502): the credentials, scopes or data centre are wrong, and another token would be
        refused too.
        """
        # Tokens one call may try: its own, another worker's from the store, one another thread minted
        # meanwhile, and its own mint. Beyond that every token is being refused: a 502, never a loop.
        tries = 4
        renewal = self._tokens.current()
        for _ in range(tries):
            sent = {"Authorization": f"Zoho-oauthtoken {renewal.token}", **headers}
            answer = self._send(method, url, sent, body, operation, rule or method, unanswered)
            try:
                return judge(answer.status, answer.body, operation, answer.headers.get("Retry-After"))
            except TokenRejected:
                if renewal.minted:
                    break
                log.info(self._voice.replacing, extra={"token_fp": fingerprint(renewal.token)})
                renewal = self._tokens.replace(renewal.token)
        raise ZohoAuthFailed(self._voice.refused_fresh)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | StreamBody | None,
        operation: Op,
        rule: str,
        unanswered: Unanswered[Op],
    ) -> Response:
        """Send with the retry policy. Returns the last answer (any status) or raises ``unanswered``'s error."""
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
                        self._voice.retrying,
                        extra={"operation": operation, "attempt": attempt, "outcome": status or type(error).__name__},
                    )
                    self._notify(operation, "retry", 0.0)
                    time.sleep(pause)
                    continue
            if answer is not None:
                return answer
            raise unanswered(operation, error)

    def _notify(self, operation: str, outcome: str, seconds: float) -> None:
        if self._observe is not None:
            self._observe(operation, outcome, seconds)
