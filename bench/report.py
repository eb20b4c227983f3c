"""The figures of one bench run as Markdown tables: every scenario, then the targets met or missed."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .wrk import WrkResult

#: Targets of the issue: gateway-added p50 over direct, throughput vs direct, upstream GETs per polled GET, RSS.
MAX_ADDED_P50_MS = 2.0
MIN_THROUGHPUT_RATIO = 0.9
MAX_UPSTREAM_PER_POLL = 0.01
MAX_WORKER_RSS_MB = 80.0

#: Scenarios served by the gateway (their proxy workers are gunicorn's).
GATEWAY_SCENARIOS = frozenset("cdfh")


@dataclass(frozen=True)
class Outcome:
    """One measured scenario. ``upstream`` is sandbox API calls (delta of ``api_calls``) per wrk request;
    the CPU figures are microseconds of CPU (user + system) per wrk request, of the sandbox's worker and of
    the proxy's workers (nginx or the gateway). ``inner_p50_ms`` is the gateway's own median ``duration_ms``
    (time inside Flask, the upstream call included) from its access log."""

    key: str
    label: str
    connections: int
    wrk: WrkResult
    upstream: float
    sandbox_cpu_us: float
    proxy_cpu_us: float | None = None
    worker_rss_mb: tuple[float, ...] = field(default=())
    inner_p50_ms: float | None = None


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    met: bool


def combine(runs: Sequence[Outcome]) -> Outcome:
    """One scenario over several rounds: the median of each figure, errors summed, the largest RSS per worker."""
    first = runs[0]
    if len(runs) == 1:
        return first

    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    w = [o.wrk for o in runs]
    inner = [o.inner_p50_ms for o in runs if o.inner_p50_ms is not None]
    proxy = [o.proxy_cpu_us for o in runs if o.proxy_cpu_us is not None]
    rss = [o.worker_rss_mb for o in runs if o.worker_rss_mb]
    return replace(
        first,
        wrk=replace(
            w[0],
            requests=sum(x.requests for x in w),
            seconds=sum(x.seconds for x in w),
            rps=med([x.rps for x in w]),
            p50_ms=med([x.p50_ms for x in w]),
            p90_ms=med([x.p90_ms for x in w]),
            p99_ms=med([x.p99_ms for x in w]),
            max_ms=max(x.max_ms for x in w),
            non2xx=sum(x.non2xx for x in w),
            socket_errors=sum(x.socket_errors for x in w),
            raw="\n".join(x.raw for x in w),
        ),
        upstream=med([o.upstream for o in runs]),
        sandbox_cpu_us=med([o.sandbox_cpu_us for o in runs]),
        proxy_cpu_us=med(proxy) if proxy else None,
        worker_rss_mb=tuple(max(values) for values in zip(*rss, strict=False)) if rss else (),
        inner_p50_ms=med(inner) if inner else None,
    )


def _fmt_rss(rss: Sequence[float]) -> str:
    return " / ".join(f"{mb:.1f}" for mb in rss) if rss else "-"


def scenario_table(outcomes: Sequence[Outcome]) -> str:
    """One row per scenario, in run order."""
    lines = [
        "| scenario | conns | req/s | p50 ms | p90 ms | p99 ms | errors | upstream calls / call "
        "| in-gateway p50 ms | CPU µs / call: sandbox, proxy | RSS per worker MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        w = o.wrk
        proxy = f"{o.proxy_cpu_us:,.0f}" if o.proxy_cpu_us is not None else "-"
        inner = f"{o.inner_p50_ms:.2f}" if o.inner_p50_ms is not None else "-"
        lines.append(
            f"| ({o.key}) {o.label} | {o.connections} | {w.rps:,.0f} | {w.p50_ms:.2f} | {w.p90_ms:.2f} | "
            f"{w.p99_ms:.2f} | {w.errors} | {o.upstream:.4f} | {inner} | {o.sandbox_cpu_us:,.0f}, {proxy} | "
            f"{_fmt_rss(o.worker_rss_mb)} |"
        )
    return "\n".join(lines)


def targets(by_key: dict[str, Outcome]) -> list[Target]:
    """The issue's targets, for the scenarios that ran (a, c, d; errors and RSS over every run)."""
    found: list[Target] = []
    direct, nginx, gateway, polled = (by_key.get(k) for k in ("a", "b", "c", "d"))
    if direct is not None and gateway is not None:
        added = gateway.wrk.p50_ms - direct.wrk.p50_ms
        ratio = gateway.wrk.rps / direct.wrk.rps if direct.wrk.rps else 0.0
        anchor = ""
        if nginx is not None:
            anchor = (
                f" (nginx: {nginx.wrk.p50_ms - direct.wrk.p50_ms:+.2f} ms, "
                f"{nginx.wrk.rps / direct.wrk.rps if direct.wrk.rps else 0.0:.3f} x)"
            )
        found.append(
            Target(
                "gateway-added p50, (c) - (a)",
                f"<= {MAX_ADDED_P50_MS:g} ms",
                f"{added:+.2f} ms{anchor}",
                added <= MAX_ADDED_P50_MS,
            )
        )
        found.append(
            Target(
                "throughput, (c) / (a)",
                f">= {MIN_THROUGHPUT_RATIO:g} x",
                f"{ratio:.3f} x",
                ratio >= MIN_THROUGHPUT_RATIO,
            )
        )
    light_direct, light_gateway = by_key.get("g"), by_key.get("h")
    if light_direct is not None and light_gateway is not None:
        added = light_gateway.wrk.p50_ms - light_direct.wrk.p50_ms
        ratio = light_gateway.wrk.rps / light_direct.wrk.rps if light_direct.wrk.rps else 0.0
        found.append(
            Target(
                f"same at light load ({light_gateway.connections} conns), (h) vs (g)",
                f"<= {MAX_ADDED_P50_MS:g} ms, >= {MIN_THROUGHPUT_RATIO:g} x",
                f"{added:+.2f} ms, {ratio:.3f} x",
                added <= MAX_ADDED_P50_MS and ratio >= MIN_THROUGHPUT_RATIO,
            )
        )
    if polled is not None:
        found.append(
            Target(
                "upstream GETs per client GET, (d)",
                f"<= {MAX_UPSTREAM_PER_POLL:g}",
                f"{polled.upstream:.4f}",
                polled.upstream <= MAX_UPSTREAM_PER_POLL,
            )
        )
    outcomes = list(by_key.values())
    if outcomes:
        errors = sum(o.wrk.errors for o in outcomes)
        found.append(Target("errors, every run", "0", str(errors), errors == 0))
    rss = [mb for o in outcomes if o.key in GATEWAY_SCENARIOS for mb in o.worker_rss_mb]
    if rss:
        found.append(
            Target(
                "RSS per gateway worker, max",
                f"<= {MAX_WORKER_RSS_MB:g} MB",
                f"{max(rss):.1f} MB",
                max(rss) <= MAX_WORKER_RSS_MB,
            )
        )
    return found


def targets_table(found: Sequence[Target]) -> str:
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {t.goal} | {t.measured} | {'yes' if t.met else 'NO'} |" for t in found]
    return "\n".join(lines)
