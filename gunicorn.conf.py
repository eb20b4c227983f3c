"""gunicorn settings, read automatically by ``gunicorn wsgi:app`` from the repo root.

gthread workers: the gateway mostly waits on Zoho, so threads carry the concurrency and processes
use the cores. Every number can be overridden from the environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_cpus = os.cpu_count() or 1

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}")
worker_class = "gthread"
# One process per core plus one (at least 2, so a crash never leaves nobody serving): the best of the
# counts measured on 2 cores (BENCHMARKS.md), since a process also waits on Zoho while holding no CPU.
workers = int(os.environ.get("WEB_CONCURRENCY", _cpus + 1))
threads = int(os.environ.get("GATEWAY_THREADS", "16"))
os.environ["GATEWAY_THREADS"] = str(threads)  # the Zoho connection pool is sized to the threads
# Worker silent this long is killed; longer than the slowest legitimate call (retries included).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
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

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
