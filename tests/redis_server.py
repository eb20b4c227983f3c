"""A real redis-server for the test session, exported as the ``redis_url`` fixture.

conftest.py makes the fixture available to every module: a test names ``redis_url`` and imports nothing
(importing it into a module would define a second fixture under the same name). ``redis_db`` gives a test a
database of its own on that server; ``start_redis_server`` starts another one. The server keeps nothing on disk
and dies with the session.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from tests.helpers import free_port

#: Seconds to wait for a fresh server to answer PING.
_START_TIMEOUT = 10.0


def redis_db(url: str, db: int) -> str:
    """The session server's URL (``redis_url``) on database ``db``, emptied."""
    target = f"{url.rsplit('/', 1)[0]}/{db}"
    client = redis.Redis.from_url(target)
    client.flushdb()
    client.close()
    return target


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(binary: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server on a free port; try again if another process grabbed the port first."""
    for _ in range(3):
        # redis-server cannot be told "port 0" and report back, so borrow a free port from the kernel.
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if answers_ping(port):
                return proc, port
            time.sleep(0.02)
        proc.kill()
        proc.wait()
    pytest.fail("redis-server did not start answering PING on a free local port", pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a redis-server started for this session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not on PATH; install it (apt-get install -y redis-server) to run Redis tests",
            pytrace=False,
        )
    proc, port = start_redis_server(binary)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()
