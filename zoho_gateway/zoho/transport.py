"""HTTP transport toward Zoho: one ``requests.Session``, ``(connect, read)`` time-outs, two typed failures.

``requests`` because deployments sit behind corporate egress proxies and private CAs: it honours
``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` and a CA bundle (``REQUESTS_CA_BUNDLE`` or
``CURL_CA_BUNDLE``, read by the config), which a bare urllib3 pool does not. The proxy variables are
resolved once per origin, not on every call as a default ``Session`` does (see ``Transport``): that
look-up is CPU on every client request's hot path (bench/transport_cost.py).

Every library error becomes one of two of ours, which say the one fact retrying needs: did the request
leave the machine or not? (``zoho/retry.py`` re-sends a POST only on ``NotSent``.)
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Protocol
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies


class TransportError(Exception):
    """Base: no HTTP answer was received. Messages name the host, never a header, body or proxy URL."""


class NotSent(TransportError):
    """The connection could not be made: the request provably never left, so any call may be re-sent."""


class NoAnswer(TransportError):
    """The request may have arrived but no (complete) answer came: a read time-out or a dropped connection."""


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer, whatever its status. ``headers`` is case-insensitive; ``elapsed`` is in seconds."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    elapsed: float


class Transport:
    """Pooled HTTP client; ``maxsize`` is connections kept per host (size it to the threads).

    Thread-safe: the session is never changed after construction (no cookies kept, proxies passed per
    call), and urllib3's pools are thread-safe.

    Proxies follow requests' environment rules (``trust_env``: the ``*_PROXY`` variables of this process,
    ``NO_PROXY`` with hosts, domain suffixes, CIDRs and ports), resolved once per origin (scheme, host,
    port): at construction for ``origins``, on first use for any other. A changed variable therefore needs
    a restart, like every other setting. ``ca_bundle`` (a file or directory) replaces certifi's CAs.
    Two ``trust_env`` effects are deliberately left out: ``~/.netrc`` (requests would let it replace our
    ``Authorization`` header) and cookies (every call stands alone, as Zoho's OAuth API expects; a shared
    jar would also be state shared by all threads).
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        maxsize: int = 32,
        origins: Iterable[str] = (),
        ca_bundle: str | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        session = requests.Session()
        # We pass what the environment says explicitly on each call (self._proxies_for), so requests has
        # nothing left to look up per call: no os.environ scan, no NO_PROXY parsing, no ~/.netrc read.
        session.trust_env = False
        session.verify = ca_bundle or True
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # max_retries=0: retrying is the caller's decision (zoho/retry.py), never the library's; it also
        # keeps a read error from being retried inside urllib3. pool_block=False: past maxsize, a burst
        # opens extra connections instead of queueing behind the pool.
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=maxsize, max_retries=0, pool_block=False)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        self._verify: bool | str = session.verify
        #: The session's default headers (User-Agent, Accept-Encoding, Accept, Connection), which every call sends.
        self._default_headers = dict(session.headers)
        self._proxies: dict[str, dict[str, str]] = {}
        self._proxies_lock = threading.Lock()
        for origin in origins:
            self._proxies_for(origin)

    def _proxies_for(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        found = self._proxies.get(origin)
        if found is None:
            with self._proxies_lock:
                # requests' own rule (proxy variables, NO_PROXY with hosts, suffixes, CIDRs and ports), once.
                found = self._proxies.setdefault(origin, dict(get_environ_proxies(origin)))
        return found

    def proxy_for(self, url: str) -> str | None:
        """The proxy URL that calls to ``url`` go through, or None for a direct connection."""
        return requests.utils.select_proxy(url, self._proxies_for(url))

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send one request. Raises ``NotSent`` or ``NoAnswer``; any HTTP status is a ``Response``.

        ``timeout`` replaces the read time-out for this call; the connect time-out stays.
        """

        def prepare() -> requests.PreparedRequest:
            # What Session.request does, less what this session never has: no environment (trust_env is off),
            # no cookies (the jar accepts none), no hooks, no auth of its own, no redirects followed. Its
            # generic merging of those settings, through typing-Protocol isinstance checks, was ~100 µs of CPU
            # per call (bench/transport_cost.py), on every client request's path. The session's default
            # headers are merged as it would: prepare_headers keys them case-insensitively, so a header of
            # ours replaces the default of the same name (in its place, under our spelling).
            prepared = requests.PreparedRequest()
            prepared.prepare_method(method)
            prepared.prepare_url(url, None)
            prepared.prepare_headers({**self._default_headers, **headers})
            prepared.prepare_body(body, None)
            prepared.prepare_auth(None, url)  # credentials in the URL, as Session.request honours them
            return prepared

        return self._exchange(url, timeout, prepare)

    def send_stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Readable,
        length: int,
        timeout: float | None = None,
    ) -> Response:
        """Send one request whose body is read from ``body`` in chunks as it goes out (never held whole).

        ``length`` (bytes ``body`` will give) is sent as ``Content-Length``. Failures map as for
        :meth:`request`: ``NotSent`` only when no connection was made (``body`` then is unread),
        ``NoAnswer`` once any of it may have left. Time-outs are the same ``(connect, read)`` pair; the read
        time-out also bounds each wait to write a chunk.
        """

        def prepare() -> requests.PreparedRequest:
            prepared = requests.PreparedRequest()
            prepared.prepare_method(method)
            prepared.prepare_url(url, None)
            prepared.prepare_headers({**self._default_headers, **headers, "Content-Length": str(length)})
            # A body with ``read`` is handed to urllib3 as is, which sends it in blocks as it reads them.
            prepared.body = body
            prepared.prepare_auth(None, url)
            return prepared

        return self._exchange(url, timeout, prepare)

    def _exchange(self, url: str, timeout: float | None, prepare: Callable[[], requests.PreparedRequest]) -> Response:
        """Prepare, send and read the whole answer, for :meth:`request` and :meth:`send_stream`: a failure
        while preparing or sending maps as theirs do (``NotSent`` or ``NoAnswer``)."""
        started = time.perf_counter()
        try:
            prepared = prepare()
            answer = self._session.get_adapter(prepared.url or url).send(
                prepared,
                timeout=(self.connect_timeout, self.read_timeout if timeout is None else timeout),
                verify=self._verify,
                proxies=self._proxies_for(url),
            )
            content = answer.content
        except requests.RequestException as exc:
            # The failed request (our Authorization header, the token endpoint's client secret) stays with
            # requests' exception; drop it so no error reporter that walks the cause can find a secret.
            exc.request = None
            raise _mapped(exc, urlsplit(url).hostname or "?") from exc
        except urllib3.exceptions.HTTPError as exc:
            # requests' adapter re-raises the urllib3 errors it has no name for unwrapped (``else: raise``).
            raise NoAnswer(f"connection to {urlsplit(url).hostname} broke before an answer") from exc
        return Response(answer.status_code, content, answer.headers, time.perf_counter() - started)

    def close(self) -> None:
        self._session.close()


class Readable(Protocol):
    """A body :meth:`Transport.send_stream` reads from: ``read(size)`` gives at most ``size`` bytes, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


#: Raised while a request is prepared or an adapter chosen: before any connection is attempted.
_UNUSABLE_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


def _mapped(exc: requests.RequestException, host: str) -> TransportError:
    """``NotSent`` only for what provably happened before a byte of the request left; else ``NoAnswer``."""
    if isinstance(exc, requests.ConnectTimeout):
        # The TCP connect did not complete in time (a TLS handshake that stalls is a ReadTimeout: below).
        return NotSent(f"cannot connect to {host} in time")
    if isinstance(exc, requests.exceptions.ProxyError):
        # urllib3 raises ProxyError only while no connection to the proxy exists yet. A proxy that refuses
        # the CONNECT tunnel, or answers 502 to a forwarded call, is not a ProxyError (NoAnswer or a Response).
        return NotSent(f"cannot reach the proxy for {host}")
    if isinstance(exc, requests.exceptions.SSLError):
        if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in _wrapped(exc)):
            # We refused the server's certificate: that happens inside our handshake, before our Finished
            # message, so no application data can have been sent.
            return NotSent(f"cannot connect to {host}: its TLS certificate was not accepted")
        # Any other TLS error may come after the request was written (TLS 1.3 reports a server-side
        # handshake failure late; a corrupted record breaks a reply): it may have arrived.
        return NoAnswer(f"TLS with {host} failed")
    if isinstance(exc, requests.ConnectionError):
        if any(isinstance(cause, urllib3.exceptions.NewConnectionError) for cause in _wrapped(exc)):
            # Refused, unreachable, DNS failure (NameResolutionError is a NewConnectionError): no connection.
            return NotSent(f"cannot connect to {host}")
        # Reset, aborted, or closed before a complete answer: the request may have been read and acted on.
        return NoAnswer(f"connection to {host} broke before an answer")
    if isinstance(exc, requests.Timeout):
        return NoAnswer(f"no answer from {host} in time")
    if isinstance(exc, _UNUSABLE_URL):
        return NotSent(f"cannot send to {host}: the URL is not usable")
    # ChunkedEncodingError, ContentDecodingError, InvalidHeader in the answer, ...: an answer started but
    # cannot be read, so the request did arrive.
    return NoAnswer(f"no usable answer from {host}")


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it explicitly wraps: requests' ``args[0]``, urllib3's ``reason`` and
    ``original_error``. Never ``__context__``: an earlier, unrelated error must not decide the outcome."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "reason", None) or getattr(current, "original_error", None)
        if not isinstance(inner, BaseException) and current.args and isinstance(current.args[0], BaseException):
            inner = current.args[0]
        current = inner if isinstance(inner, BaseException) else None
