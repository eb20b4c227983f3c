"""A real redis-server for the test session, exported as the ``redis_url`` fixture.

Import the fixture into a test module (``from tests.redis_server import redis_url  # noqa: F401``).
The server keeps nothing on disk and dies with the session.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

#: Seconds to wait for a fresh server to answer PING.
_START_TIMEOUT = 10.0


def _free_port() -> int:
    # redis-server cannot be told "port 0" and report back, so borrow a free port from the kernel.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _start(binary: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server on a free port; try again if another process grabbed the port first."""
    for _ in range(3):
        port = _free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers_ping(port):
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
    proc, port = _start(binary)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()
