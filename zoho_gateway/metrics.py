"""Prometheus metrics (prometheus-client), correct across gunicorn workers in multiprocess mode.

Multiprocess mode is on when ``PROMETHEUS_MULTIPROC_DIR`` is set before the first import of
prometheus_client (gunicorn.conf.py does it; prometheus-client reads it itself); each worker then writes
its own mmap files and ``/metrics`` aggregates them from ``Metrics.multiprocess_dir`` (the Config's
``metrics_dir``). Without it (development server, tests in one process) the object's own registry is used.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The gateway's metrics. Each method is cheap and never raises."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        #: Where every worker's values are, to aggregate on a scrape; None: this process's registry only.
        self.multiprocess_dir = multiprocess_dir
        # A private registry per Metrics keeps several apps in one process (tests) from colliding;
        # in multiprocess mode the values live in files and the registry is rebuilt per scrape.
        self._registry = CollectorRegistry(auto_describe=True)
        reg = self._registry
        self.requests = Counter(
            "gateway_requests_total",
            "Client requests by route, method and status",
            ["route", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "gateway_request_seconds", "Client request latency", ["route"], buckets=LATENCY_BUCKETS, registry=reg
        )
        self.upstream = Counter(
            "gateway_upstream_calls_total",
            "Calls to Zoho by operation and outcome",
            ["operation", "outcome"],
            registry=reg,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_seconds", "Zoho call latency", ["operation"], buckets=LATENCY_BUCKETS, registry=reg
        )
        self.retries = Counter("gateway_upstream_retries_total", "Re-sent Zoho calls", ["operation"], registry=reg)
        self.mints = Counter("gateway_token_mints_total", "Token endpoint outcomes", ["outcome"], registry=reg)
        self.cache = Counter("gateway_cache_total", "Ticket read cache lookups", ["result"], registry=reg)
        self.replays = Counter(
            "gateway_idempotent_replays_total", "Answers replayed for an Idempotency-Key", registry=reg
        )
        self.rate_limited = Counter("gateway_rate_limited_total", "Requests refused by the rate limit", registry=reg)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def upstream_call(self, operation: str, outcome: str, seconds: float) -> None:
        if outcome == "retry":
            self.retries.labels(operation).inc()
            return
        self.upstream.labels(operation, outcome).inc()
        if seconds:
            self.upstream_latency.labels(operation).observe(seconds)

    def token_mint(self, outcome: str) -> None:
        self.mints.labels(outcome).inc()

    def render(self) -> bytes:
        """The exposition text: aggregated over all workers in multiprocess mode."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self._registry)
