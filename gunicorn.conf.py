"""gunicorn settings, read automatically by ``gunicorn wsgi:app`` from the repo root.

gevent workers by default: the gateway faces browsers and bots directly, and a thread-per-connection
worker (gthread) lets a few hundred clients that send half a request header and wait tie up every
thread, so that nobody else is answered. A gevent worker parks a greenlet, not a thread, per slow
connection; it was also the faster of the two in BENCHMARKS.md. ``GUNICORN_WORKER_CLASS=gthread``
switches back. Every number can be overridden from the environment.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import NoReturn

# The settings readers load nothing that gevent must patch (no socket, ssl or threading), so they may come first.
from zoho_gateway.config import ConfigError, read_int, read_threads


def _fail(problem: str) -> NoReturn:
    """Stop with one line naming the setting. Exit code 4 is gunicorn's "app failed to load"."""
    print(f"zoho-gateway: configuration error: {problem}", file=sys.stderr)
    raise SystemExit(4)


worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "").strip() or "gevent"
if worker_class not in ("gevent", "gthread"):
    _fail(f"GUNICORN_WORKER_CLASS must be gevent or gthread, got {worker_class!r}")
if worker_class == "gevent":
    # Patch before the app is preloaded: locks, events and sockets the app creates in the master must
    # be gevent's, or a greenlet blocking on a real lock held by another greenlet would hang the worker.
    from gevent import monkey

    monkey.patch_all()

_cpus = os.cpu_count() or 1

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}")
# One process per core plus one (at least 2, so a crash never leaves nobody serving): the best of the
# counts measured on 2 cores (BENCHMARKS.md), since a process also waits on Zoho while holding no CPU.
try:
    workers = read_int(os.environ, "WEB_CONCURRENCY", _cpus + 1, minimum=1)
    # gthread: threads per worker. gevent: connections per worker (slow ones included) before it stops accepting.
    threads = read_threads(os.environ, 16)
    worker_connections = read_int(os.environ, "GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1)
    # Worker silent this long is killed; longer than the slowest legitimate call (retries included).
    timeout = read_int(os.environ, "GUNICORN_TIMEOUT", 60, minimum=1)
except ConfigError as exc:
    _fail(str(exc))
# How many calls to Zoho one worker may have in flight at once, which sizes its connection pool to Zoho.
os.environ["GATEWAY_THREADS"] = str(threads if worker_class == "gthread" else min(worker_connections, 64))
graceful_timeout = 20
keepalive = 5
# Our JSON access line (zoho_gateway.access) replaces gunicorn's.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "warning")
# Safe with every state backend: SQLite and Redis connections are opened per process after the fork,
# the Zoho connection pool makes no connection before the first call, and prometheus-client keys its
# files by pid. It loads the app (and checks the configuration) once, in the master.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"

# prometheus-client multiprocess mode must be set up before prometheus_client is imported.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="zgw-metrics-")
else:
    # Files of a previous run would be summed into this one's counters. This file is read once, in the
    # master, before the app is preloaded, so nothing of this run is there yet.
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]


def post_worker_init(worker: object) -> None:
    """Start the worker's deliverers of queued creates (issue 10) after the fork, in the worker: greenlets
    under gevent. The preloaded app is shared; each worker's ``Deliveries`` starts its own (keyed by pid)."""
    gateway = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("zoho_gateway")
    if gateway is not None:
        gateway.delivery.start()


def worker_exit(server: object, worker: object) -> None:
    """Let the deliverers finish the item in hand (briefly); an unfinished send is searched for by the next holder."""
    gateway = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("zoho_gateway")
    if gateway is not None:
        gateway.delivery.stop(wait=2.0)


if worker_class == "gevent":
    from gevent import sleep as _yield_to_other_greenlets

    def post_request(worker: object, req: object, environ: object, resp: object) -> None:
        """Let every other ready connection run before this keep-alive connection's next request.

        gevent switches greenlets only when one would block. A client that sends its next request as soon
        as it has the answer (a polling bot, wrk) finds it already waiting in the socket, so without this
        one greenlet serves request after request while the worker's other connections wait: with the read
        cache on (no upstream call to block on), 100 polling connections saw p90 634 ms and p99 1.95 s, and
        p90 49 ms and p99 134 ms with this yield (BENCHMARKS.md).
        """
        _yield_to_other_greenlets(0)
