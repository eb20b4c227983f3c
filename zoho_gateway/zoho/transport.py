"""HTTP transport toward Zoho: one pooled urllib3 manager, ``(connect, read)`` timeouts, typed failures.

urllib3 rather than ``requests``: the gateway sits on every client call's hot path and a pooled
urllib3 call costs measurably less than a ``requests.Session`` call (see BENCHMARKS.md); we need
none of ``requests``' extras (cookies, redirects, auth plug-ins). Every urllib3 exception becomes
one of two of ours, which say what matters for retrying: did the request leave or not?
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)


class TransportError(Exception):
    """Base: no HTTP answer was received. Messages name the host, never a header or body."""


class NotSent(TransportError):
    """The connection could not be made: the request provably never left, so any call may be re-sent."""


class NoAnswer(TransportError):
    """The request may have arrived but no (complete) answer came: a read time-out or a dropped connection."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]
    elapsed: float


class Transport:
    """Thread-safe pooled HTTP client. ``maxsize`` is connections kept per host (size it to the threads)."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, maxsize: int = 32) -> None:
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        # retries=False: retrying is the caller's decision (zoho/retry.py), never urllib3's.
        # block=False: past maxsize, a burst opens extra connections instead of queueing.
        self._pool = urllib3.PoolManager(num_pools=8, maxsize=maxsize, block=False, retries=False, timeout=self.timeout)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send one request. Raises ``NotSent`` or ``NoAnswer``; any HTTP status is a ``Response``."""
        started = time.perf_counter()
        call_timeout = (
            self.timeout if timeout is None else urllib3.Timeout(connect=self.timeout.connect_timeout, read=timeout)
        )
        try:
            answer = self._pool.request(
                method,
                url,
                headers=dict(headers),
                body=body,
                timeout=call_timeout,
                redirect=False,
                preload_content=True,
            )
        except (NewConnectionError, ConnectTimeoutError, SSLError) as exc:
            # NewConnectionError covers refused connections and DNS failures; a TLS handshake failure also
            # happens before a byte of the request is sent.
            raise NotSent(f"cannot connect to {urllib3.util.parse_url(url).host}") from exc
        except ReadTimeoutError as exc:
            raise NoAnswer(f"no answer from {urllib3.util.parse_url(url).host} in time") from exc
        except (ProtocolError, HTTPError) as exc:
            raise NoAnswer(f"connection to {urllib3.util.parse_url(url).host} broke before an answer") from exc
        return Response(answer.status, answer.data, answer.headers, time.perf_counter() - started)

    def close(self) -> None:
        self._pool.clear()
