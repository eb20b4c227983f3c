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

#: Scenarios served by the gateway (their proxy workers are gunicorn's), by the letter their keys start with.
GATEWAY_SCENARIOS = frozenset("cdfhs")
#: The issue's bound for the slow-clients scenario: a normal request answered within this many seconds.
SLOW_CLIENTS_ANSWER_S = 2.0


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
    #: Slow-clients scenarios only: connections held open, and one normal GET sent before wrk started
    #: (its HTTP status, None when it had no answer, and how long it took).
    #: Gateway and nginx scenarios: the wrk connections each worker held halfway through the run, most first.
    conns_per_worker: tuple[int, ...] = field(default=())
    slow_held: int | None = None
    probe_status: int | None = None
    probe_seconds: float | None = None


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
        # The median round's spread (the round whose req/s is the median), since the spread moves req/s.
        conns_per_worker=_median_round(runs).conns_per_worker,
        inner_p50_ms=med(inner) if inner else None,
        # The worst round: the fewest connections held, the slowest probe (an unanswered one is the worst).
        slow_held=min((o.slow_held for o in runs if o.slow_held is not None), default=None),
        probe_status=_worst_probe(runs).probe_status,
        probe_seconds=_worst_probe(runs).probe_seconds,
    )


def _median_round(runs: Sequence[Outcome]) -> Outcome:
    ordered = sorted(runs, key=lambda o: o.wrk.rps)
    return ordered[(len(ordered) - 1) // 2]


def _worst_probe(runs: Sequence[Outcome]) -> Outcome:
    return max(runs, key=lambda o: (o.probe_status is None, o.probe_seconds or 0.0))


def _fmt_conns(conns: Sequence[int]) -> str:
    return " / ".join(str(n) for n in conns) if conns else "-"


def _fmt_rss(rss: Sequence[float]) -> str:
    return " / ".join(f"{mb:.1f}" for mb in rss) if rss else "-"


def scenario_table(outcomes: Sequence[Outcome]) -> str:
    """One row per scenario, in run order."""
    lines = [
        "| scenario | conns | req/s | p50 ms | p90 ms | p99 ms | errors | upstream calls / call "
        "| in-gateway p50 ms | CPU µs / call: sandbox, proxy | wrk connections per worker | RSS per worker MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for o in outcomes:
        if o.slow_held is not None:
            continue  # in slow_clients_table
        w = o.wrk
        proxy = f"{o.proxy_cpu_us:,.0f}" if o.proxy_cpu_us is not None else "-"
        inner = f"{o.inner_p50_ms:.2f}" if o.inner_p50_ms is not None else "-"
        lines.append(
            f"| ({o.key}) {o.label} | {o.connections} | {w.rps:,.0f} | {w.p50_ms:.2f} | {w.p90_ms:.2f} | "
            f"{w.p99_ms:.2f} | {w.errors} | {o.upstream:.4f} | {inner} | {o.sandbox_cpu_us:,.0f}, {proxy} | "
            f"{_fmt_conns(o.conns_per_worker)} | {_fmt_rss(o.worker_rss_mb)} |"
        )
    return "\n".join(lines)


def targets(by_key: dict[str, Outcome], variants: Sequence[tuple[str, str]] = (("", ""),)) -> list[Target]:
    """The issue's targets, for the scenarios that ran, for each gateway variant ``(key, label)``: ``c.<key>``
    against ``a``, ``h.<key>`` against ``g``, ``d.<key>``, ``s.<key>``; errors (slow-clients runs apart) and RSS
    over every run. A variant key "" reads the plain keys ``c``, ``h``, ``d`` and ``s``."""
    found: list[Target] = []
    direct, nginx, light_direct = by_key.get("a"), by_key.get("b"), by_key.get("g")
    for vkey, vlabel in variants:
        suffix = f".{vkey}" if vkey else ""
        name = f" {vlabel}" if vlabel else ""
        gateway, light_gateway = by_key.get(f"c{suffix}"), by_key.get(f"h{suffix}")
        polled, slow = by_key.get(f"d{suffix}"), by_key.get(f"s{suffix}")
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
                    f"gateway{name}: added p50, (c{suffix}) - (a)",
                    f"<= {MAX_ADDED_P50_MS:g} ms",
                    f"{added:+.2f} ms{anchor}",
                    added <= MAX_ADDED_P50_MS,
                )
            )
            found.append(
                Target(
                    f"gateway{name}: throughput, (c{suffix}) / (a)",
                    f">= {MIN_THROUGHPUT_RATIO:g} x",
                    f"{ratio:.3f} x",
                    ratio >= MIN_THROUGHPUT_RATIO,
                )
            )
        if light_direct is not None and light_gateway is not None:
            added = light_gateway.wrk.p50_ms - light_direct.wrk.p50_ms
            ratio = light_gateway.wrk.rps / light_direct.wrk.rps if light_direct.wrk.rps else 0.0
            found.append(
                Target(
                    f"gateway{name}: same at light load ({light_gateway.connections} conns), (h{suffix}) vs (g)",
                    f"<= {MAX_ADDED_P50_MS:g} ms, >= {MIN_THROUGHPUT_RATIO:g} x",
                    f"{added:+.2f} ms, {ratio:.3f} x",
                    added <= MAX_ADDED_P50_MS and ratio >= MIN_THROUGHPUT_RATIO,
                )
            )
        if polled is not None:
            found.append(
                Target(
                    f"gateway{name}: upstream GETs per client GET, (d{suffix})",
                    f"<= {MAX_UPSTREAM_PER_POLL:g}",
                    f"{polled.upstream:.4f}",
                    polled.upstream <= MAX_UPSTREAM_PER_POLL,
                )
            )
        if slow is not None:
            answered = slow.probe_status == 200 and (slow.probe_seconds or 0.0) <= SLOW_CLIENTS_ANSWER_S
            probe = f"{slow.probe_seconds:.2f} s" if slow.probe_status is not None else "no answer"
            found.append(
                Target(
                    f"gateway{name}: with {slow.slow_held} slow clients held, (s{suffix})",
                    f"a GET answered within {SLOW_CLIENTS_ANSWER_S:g} s, no wrk errors",
                    f"GET in {probe}; wrk {slow.wrk.rps:,.0f} req/s, {slow.wrk.errors} errors",
                    answered and slow.wrk.errors == 0 and slow.wrk.requests > 0,
                )
            )
    outcomes = [o for o in by_key.values() if o.slow_held is None]
    if outcomes:
        errors = sum(o.wrk.errors for o in outcomes)
        found.append(Target("errors, every run without slow clients", "0", str(errors), errors == 0))
    rss = [mb for o in by_key.values() if o.key[0] in GATEWAY_SCENARIOS for mb in o.worker_rss_mb]
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


def slow_clients_table(outcomes: Sequence[Outcome]) -> str:
    """One row per slow-clients scenario; empty when none ran."""
    rows = [o for o in outcomes if o.slow_held is not None]
    if not rows:
        return ""
    lines = [
        "| scenario | slow clients held | a GET sent after they connected | wrk conns | req/s | p50 ms | p99 ms "
        "| errors (wrk) | CPU µs / call: gateway |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in rows:
        w = o.wrk
        probe = f"{o.probe_status} in {o.probe_seconds:.2f} s" if o.probe_status is not None else "no answer in 10 s"
        proxy = f"{o.proxy_cpu_us:,.0f}" if o.proxy_cpu_us is not None and w.requests else "-"
        p50, p99 = (f"{w.p50_ms:.2f}", f"{w.p99_ms:.2f}") if w.requests else ("-", "-")
        lines.append(
            f"| ({o.key}) {o.label} | {o.slow_held} | {probe} | {o.connections} | {w.rps:,.0f} | "
            f"{p50} | {p99} | {w.errors} | {proxy} |"
        )
    return "\n".join(lines)


def targets_table(found: Sequence[Target]) -> str:
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {t.goal} | {t.measured} | {'yes' if t.met else 'NO'} |" for t in found]
    return "\n".join(lines)
