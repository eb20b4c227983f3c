"""CPU per request of the stack alone, beside the gateway: ``python -m bench.floor``.

For each worker class (gevent, gthread), on one sandbox (20 ms per call) and under the same wrk load, the
apps of ``bench/floor_app.py`` (a bare WSGI function that sleeps, a Flask route that sleeps, a Flask route
that forwards with ``requests``) and the gateway itself (read cache off), each in gunicorn with the same
worker and thread counts. CPU per call is the gunicorn workers' (``/proc/<pid>/task/*/schedstat``) over
the measured run; the rounds interleave every app, and the medians are printed with the command.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import wrk
from .floor_app import KINDS
from .servers import Servers, Service, cpu_seconds, create_ticket, mint_token


@dataclass(frozen=True)
class Row:
    kind: str
    worker_class: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per app (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--threads", type=int, default=16, help="gthread threads per worker (default 16)")
    parser.add_argument("--latency-ms", type=int, default=20, help="sandbox latency, and the sleep (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians shown (default 3)")
    parser.add_argument("--worker-classes", default="gevent,gthread", help="default gevent,gthread")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    classes = [c.strip() for c in args.worker_classes.split(",") if c.strip()]
    command = shlex.join(["python", "-m", "bench.floor", *(argv if argv is not None else sys.argv[1:])])
    workdir = Path(tempfile.mkdtemp(prefix="zgw-floor-"))
    rows: dict[tuple[str, str], list[Row]] = {}
    try:
        with Servers(workdir) as servers:
            sandbox = servers.sandbox(latency_ms=args.latency_ms)
            token = mint_token(sandbox)
            ticket = create_ticket(sandbox, token)
            env = {"FLOOR_LATENCY_MS": str(args.latency_ms), "FLOOR_UPSTREAM": sandbox.url, "FLOOR_TOKEN": token}
            apps: dict[tuple[str, str], Service] = {}
            for worker_class in classes:
                for kind in KINDS:
                    apps[(kind, worker_class)] = servers.gunicorn_app(
                        f"{kind}-{worker_class}",
                        f"bench.floor_app:create('{kind}')",
                        worker_class=worker_class,
                        workers=args.workers,
                        threads=args.threads,
                        env=env,
                        ready_path=f"/requests/{ticket}",
                    )
                apps[("gateway", worker_class)] = servers.gateway(
                    f"gateway-{worker_class}",
                    sandbox,
                    workers=args.workers,
                    threads=args.threads,
                    cache_ttl=0,
                    worker_class=worker_class,
                )
            for _ in range(args.rounds):
                for (kind, worker_class), service in apps.items():
                    url = f"{service.url}/requests/{ticket}"
                    if args.warmup > 0:
                        wrk.run(url, seconds=args.warmup, connections=args.connections)
                    pids = service.worker_pids()
                    before = cpu_seconds(pids)
                    result = wrk.run(url, seconds=args.duration, connections=args.connections)
                    cpu = (cpu_seconds(pids) - before) * 1e6 / result.requests if result.requests else 0.0
                    row = Row(kind, worker_class, result.rps, result.p50_ms, result.p99_ms, result.errors, cpu)
                    rows.setdefault((kind, worker_class), []).append(row)
                    print(
                        f"floor: {kind:15} {worker_class:8} {row.rps:7,.0f} req/s p50 {row.p50_ms:6.2f} ms "
                        f"CPU {row.cpu_us:6,.0f} µs/call",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"bench.floor {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, medians of {args.rounds} interleaved rounds")
    print("| app | worker class | req/s | p50 ms | p99 ms | errors | CPU µs / call (gunicorn workers) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (kind, worker_class), runs in rows.items():
        med = {f: statistics.median(getattr(r, f) for r in runs) for f in ("rps", "p50_ms", "p99_ms", "cpu_us")}
        print(
            f"| {kind} | {worker_class} | {med['rps']:,.0f} | {med['p50_ms']:.2f} | {med['p99_ms']:.2f} | "
            f"{sum(r.errors for r in runs)} | {med['cpu_us']:,.0f} |"
        )
    print(f"\nreproduce: {command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
