"""CPU per ``GET /requests/<id>`` inside one gateway process, and where it goes: the guide when wrk is too noisy.

``.venv/bin/python -m bench.app_cost [--gevent] [--root DIR]`` starts the sandbox (latency 0) in a child
process, builds the gateway app in this process exactly as ``gunicorn wsgi:app`` would (sandbox mode, read
cache off, SQLite state, the repo's ``logging.ini`` with its console line going to a file, prometheus-client
in multiprocess mode), and calls it through WSGI, one call at a time. It prints the median CPU
microseconds (``time.process_time``) per call of this process over interleaved rounds, for the whole call
and with one part at a time replaced by a no-op, so that each part's cost is the difference:

- ``full``: the whole GET, the upstream call to the sandbox included;
- ``no access line``: the access logger disabled;
- ``no metrics``: ``Metrics.request`` and ``Metrics.upstream_call`` no-ops;
- ``no upstream``: ``Transport.request`` returns a canned sandbox answer (what is left is the app's own work).

gunicorn's own share (HTTP parsing, response writing, the worker's hand-offs) is not in these figures;
``./dev bench`` measures it, end to end. ``--gevent`` patches the standard library first, as the gevent
worker does, so that the upstream socket is gevent's. ``--root`` builds the app from another checkout
(for example ``git archive 5bc0d84^``, the urllib3 transport), imported instead of this repo's package.
``--profile FILE`` writes a cProfile of extra ``full`` calls (read it with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.app_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per variant per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is shown (default 5)")
    parser.add_argument("--gevent", action="store_true", help="gevent's monkey-patching first, as its worker does")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout whose zoho_gateway is built")
    parser.add_argument("--profile", type=Path, default=None, help="also write a cProfile of full calls here")
    parser.add_argument(
        "--gc",
        choices=["default", "freeze", "off"],
        default="default",
        help="garbage collector after the warm-up: as is, gc.freeze() (what the gunicorn master does), or off",
    )
    parser.add_argument(
        "--only", default="full,no access line,no metrics,no upstream", help="comma-separated variants to run"
    )
    return parser


def _environ(path: str) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it for a bare ``GET path`` from wrk."""
    import io

    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "RAW_URI": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _call(app: WsgiApp, path: str) -> None:
    status: list[str] = []

    def start_response(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        status.append(code)
        return lambda data: None

    body = app(_environ(path), start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"GET {path} answered {status}")


def _cpu_us(app: WsgiApp, path: str, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        _call(app, path)
    return (time.process_time() - started) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.gevent:
        importlib.import_module("gevent.monkey").patch_all()
    sys.path.insert(0, str(args.root.resolve()))  # before zoho_gateway is first imported

    import logging

    from .servers import Servers, create_ticket, mint_token

    workdir = Path(tempfile.mkdtemp(prefix="zgw-app-cost-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
    (workdir / "metrics").mkdir()
    with Servers(workdir) as servers:
        sandbox = servers.sandbox(latency_ms=0, threads=8)
        ticket = create_ticket(sandbox, mint_token(sandbox))
        env = {
            "GATEWAY_SANDBOX": "1",
            "ZOHO_ACCOUNTS_URL": sandbox.url,
            "ZOHO_API_BASE_URL": sandbox.url,
            "GATEWAY_STATE_URL": f"sqlite:///{workdir / 'state.db'}",
            "GATEWAY_LOG_FILE": str(workdir / "gw.log"),
            "GATEWAY_CACHE_TTL": "0",
            "GATEWAY_THREADS": "16",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        }
        # The console access line goes where gunicorn's stderr would: a file, written for real.
        console = open(workdir / "console.log", "w")  # noqa: SIM115 - closed below, after the runs
        saved_stderr = os.dup(2)
        os.dup2(console.fileno(), 2)
        try:
            results = _measure(args, env, ticket, logging)
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            console.close()
    print(f"gevent={args.gevent} gc={args.gc} root={args.root} calls={args.calls} rounds={args.rounds}")
    print("CPU µs per GET /requests/<id> in this process (median of rounds):")
    full = statistics.median(results["full"]) if "full" in results else None
    for name, runs in results.items():
        cost = statistics.median(runs)
        part = f"  (part: {full - cost:6.1f})" if full is not None and name != "full" else ""
        print(f"  {name:16} {cost:7.1f}{part}")
    return 0


def _measure(args: argparse.Namespace, env: dict[str, str], ticket: str, logging: Any) -> dict[str, list[float]]:
    from zoho_gateway import create_app
    from zoho_gateway.gateway import EXTENSION_KEY

    app = create_app(env)
    gateway = app.extensions[EXTENSION_KEY]
    path = f"/requests/{ticket}"
    transport, metrics = gateway.transport, gateway.metrics
    real_request, real_metric, real_upstream_metric = transport.request, metrics.request, metrics.upstream_call
    for _ in range(200):  # token, pools, caches
        _call(app, path)
    canned = real_request(
        "GET", f"{gateway.config.api_base_url}/api/v3/requests/{ticket}", headers=_auth(gateway), body=None
    )
    access = logging.getLogger("zoho_gateway.access")
    if args.gc == "freeze":
        gc.collect()
        gc.freeze()
    elif args.gc == "off":
        gc.disable()

    def setup(variant: str) -> None:
        access.disabled = variant == "no access line"
        metrics.request = (lambda *a: None) if variant == "no metrics" else real_metric
        metrics.upstream_call = (lambda *a: None) if variant == "no metrics" else real_upstream_metric
        transport.request = (lambda *a, **k: canned) if variant == "no upstream" else real_request

    variants = [v.strip() for v in args.only.split(",") if v.strip()]
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for variant in variants:
            setup(variant)
            results.setdefault(variant, []).append(_cpu_us(app, path, args.calls))
    setup("full")
    if args.profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.calls):
            _call(app, path)
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    return results


def _auth(gateway: Any) -> dict[str, str]:
    renewal = gateway.tokens.current()
    return {"Authorization": f"Zoho-oauthtoken {renewal.token}", "Accept": "application/vnd.manageengine.sdp.v3+json"}


if __name__ == "__main__":
    raise SystemExit(main())
