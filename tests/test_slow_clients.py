"""Slow clients must not starve the gateway: ``gunicorn wsgi:app`` with the repo's settings keeps answering
normal requests while hundreds of connections send half a request header and wait (a slowloris)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from tests.helpers import TICKET
from tests.servers import GunicornStarter, Sandbox

#: The bound the issue sets: with 500 slow connections open, a normal request is answered within 2 s.
SLOW_CONNECTIONS = 500
ANSWER_WITHIN = 2.0


@contextmanager
def half_sent_requests(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent the start of a request header and then nothing more."""
    held: list[socket.socket] = []
    try:
        for index in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(f"GET /requests/{index} HTTP/1.1\r\nHost: gateway\r\nX-Slow: ".encode())
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()


def test_slow_connections_do_not_starve_normal_requests(
    make_gunicorn: GunicornStarter, sandbox: Sandbox
) -> None:
    server = make_gunicorn(workers=2)
    with half_sent_requests(server.port, SLOW_CONNECTIONS) as held:
        assert len(held) == SLOW_CONNECTIONS
        ready = requests.get(f"{server.url}/readyz", timeout=ANSWER_WITHIN)
        assert ready.status_code == 200
        created = requests.post(f"{server.url}/requests", json=TICKET, timeout=ANSWER_WITHIN)
        assert created.status_code == 201, created.text
        ticket_id = created.json()["zoho_ticket_id"]
        read = requests.get(f"{server.url}/requests/{ticket_id}", timeout=ANSWER_WITHIN)
        assert read.status_code == 200
        assert read.json()["ticket_id"] == ticket_id
    # And once they give up, the workers are all still there and serving.
    assert len(server.worker_pids()) == 2
    assert requests.get(f"{server.url}/requests/{ticket_id}", timeout=ANSWER_WITHIN).status_code == 200
    assert sandbox.stats()["creates"] == 1
