"""A slowloris held open while the bench measures: connections that send half a request header, then nothing.

The same shape as ``tests/test_slow_clients.py``: each connection sends ``GET /requests/<n> HTTP/1.1``, a
``Host`` line and the start of a header, and waits. A worker that gives each connection a thread (gthread)
runs out of threads; one that parks a greenlet per connection (gevent) keeps answering.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .servers import http


@dataclass(frozen=True)
class Probe:
    """One normal GET sent while the slow connections are held: its status (None: no answer) and seconds."""

    status: int | None
    seconds: float


@contextmanager
def held_open(url: str, count: int) -> Iterator[int]:
    """``count`` half-sent requests to ``url``'s host and port, held for the ``with`` block; yields how many
    connected (a refused or timed-out connect is counted out, not raised)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"slow clients only go to 127.0.0.1:<port>, not {url}")
    held: list[socket.socket] = []
    try:
        for index in range(count):
            try:
                sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
                sock.sendall(f"GET /requests/{index} HTTP/1.1\r\nHost: gateway\r\nX-Slow: ".encode())
            except OSError:
                continue
            held.append(sock)
        yield len(held)
    finally:
        for sock in held:
            sock.close()


def probe(url: str, timeout: float) -> Probe:
    """One GET of ``url``; status None when nothing came back within ``timeout`` seconds."""
    started = time.perf_counter()
    try:
        status, _ = http("GET", url, timeout=timeout)
    except OSError:
        return Probe(None, time.perf_counter() - started)
    return Probe(status, time.perf_counter() - started)
