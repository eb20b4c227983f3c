"""CPU per upstream call, in-process: urllib3 (the transport before) against requests (the transport now).

``.venv/bin/python -m bench.transport_cost`` starts a small keep-alive HTTP server in a child process (so
that its CPU is not counted), then calls it from this process with each client in turn, interleaved over
several rounds, and prints the median CPU microseconds (``time.process_time``) and wall microseconds per
call. The clients:

- ``urllib3``: a pooled ``urllib3.PoolManager``, exactly as ``zoho/transport.py`` used it before;
- ``requests/env-per-call``: a plain ``requests.Session`` (``trust_env=True``, so requests reads the proxy
  variables, ``NO_PROXY`` and ``~/.netrc`` on every call) with the same adapter settings;
- ``requests/Transport``: the gateway's ``Transport`` (the environment resolved once per origin, each
  request prepared by the Transport and sent through the session's adapter, without ``Session.request``).

``--env corporate`` adds what a host behind an egress proxy has (``HTTPS_PROXY``, ``HTTP_PROXY`` and a
``NO_PROXY`` list that covers the server), so that every call still goes direct but has to be matched.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter

from zoho_gateway.zoho.transport import Transport

#: About the size of a ServiceDesk Plus GET answer (the real sample in ZOHO-API.md §4.1 is ~2 KB).
BODY = json.dumps(
    {
        "request": {"id": "123640000000251013", "subject": "x" * 200, "fields": ["y" * 40] * 30},
        "response_status": {"status_code": 2000, "status": "success"},
    }
).encode()
FORM = urlencode({"input_data": json.dumps({"request": {"subject": "VPN down", "description": "z" * 300}})}).encode()
HEADERS = {"Authorization": "Zoho-oauthtoken 1000.bench.token", "Accept": "application/vnd.manageengine.sdp.v3+json"}
CORPORATE = {
    "HTTPS_PROXY": "http://proxy.corp.invalid:3128",
    "HTTP_PROXY": "http://proxy.corp.invalid:3128",
    "NO_PROXY": "localhost,.corp.invalid,.internal,10.0.0.0/8,192.168.0.0/16,172.16.0.0/12,127.0.0.1",
}

Call = Callable[[str, str, bytes | None], int]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body, written apart, wait out a delayed ACK (~40 ms)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return None


def serve() -> None:
    """Child process: serve on a free loopback port, print it, run until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    print(server.server_port, flush=True)
    server.serve_forever()


def urllib3_client() -> Call:
    """The transport before: one PoolManager, retries off, redirects off, body preloaded."""
    pool = urllib3.PoolManager(num_pools=8, maxsize=32, block=False, retries=False)
    timeout = urllib3.Timeout(connect=3.0, read=10.0)

    def call(method: str, url: str, body: bytes | None) -> int:
        answer = pool.request(
            method, url, headers=dict(HEADERS), body=body, timeout=timeout, redirect=False, preload_content=True
        )
        _ = answer.data, answer.headers
        return answer.status

    return call


def requests_per_call_client() -> Call:
    """requests as most code uses it: the environment re-read by requests on every call."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0, pool_block=False)
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    def call(method: str, url: str, body: bytes | None) -> int:
        answer = session.request(method, url, headers=HEADERS, data=body, timeout=(3.0, 10.0), allow_redirects=False)
        _ = answer.content
        return answer.status_code

    return call


def transport_client() -> Call:
    """The gateway's Transport."""
    transport = Transport(connect_timeout=3.0, read_timeout=10.0, maxsize=32)

    def call(method: str, url: str, body: bytes | None) -> int:
        return transport.request(method, url, headers=HEADERS, body=body).status

    return call


def measure(call: Call, method: str, url: str, body: bytes | None, calls: int) -> tuple[float, float]:
    """CPU and wall microseconds per call over ``calls`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        if call(method, url, body) != 200:
            raise RuntimeError("the bench server did not answer 200")
    return (time.process_time() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transport_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per client per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is shown (default 5)")
    parser.add_argument("--env", choices=["bare", "corporate"], default="bare", help="proxy environment (default bare)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
        "no_proxy",
    ):
        os.environ.pop(name, None)
    if args.env == "corporate":
        os.environ.update(CORPORATE)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.transport_cost", "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        url = f"http://127.0.0.1:{int(child.stdout.readline())}/api/v3/requests"
        clients = {
            "urllib3": urllib3_client(),
            "requests/env-per-call": requests_per_call_client(),
            "requests/Transport": transport_client(),
        }
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for call in clients.values():  # warm every pool and cache before anything is counted
            measure(call, "GET", f"{url}/1", None, 200)
        for _ in range(args.rounds):
            for name, call in clients.items():
                for method, target, body in (("GET", f"{url}/1", None), ("POST", url, FORM)):
                    results.setdefault((name, method), []).append(measure(call, method, target, body, args.calls))
    finally:
        child.kill()
        child.wait()
    print(f"env={args.env} calls={args.calls} rounds={args.rounds} (median of rounds, microseconds per call)")
    print(f"{'client':24} {'method':6} {'cpu us':>8} {'wall us':>8}")
    for (name, method), runs in results.items():
        cpu = statistics.median(run[0] for run in runs)
        wall = statistics.median(run[1] for run in runs)
        print(f"{name:24} {method:6} {cpu:8.1f} {wall:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
