"""Prometheus metrics (prometheus-client), correct across gunicorn workers in multiprocess mode.

Multiprocess mode is on when ``PROMETHEUS_MULTIPROC_DIR`` is set before the first import of
prometheus_client (gunicorn.conf.py does it; prometheus-client reads it itself); each worker then writes
its own mmap files and ``/metrics`` aggregates them from ``Metrics.multiprocess_dir`` (the Config's
``metrics_dir``). Without it (development server, tests in one process) the object's own registry is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .state.base import StoreUnavailable
from .state.queue import QueueStats

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
        self.deliveries = Counter(
            "gateway_outbox_deliveries_total",
            "Creates sent from the outbox, by outcome (created, not_sent, maybe, refused)",
            ["outcome"],
            registry=reg,
        )
        self.reconciliations = Counter(
            "gateway_outbox_reconciliations_total",
            "Searches for a create whose answer was lost, by outcome (found, none, ambiguous, error)",
            ["outcome"],
            registry=reg,
        )
        #: Read at each scrape: the queue is shared, so its depth is the store's, not a sum over workers.
        self._outbox_stats: Callable[[], QueueStats] | None = None

    def watch_outbox(self, stats: Callable[[], QueueStats]) -> None:
        """Report the outbox's depth, in-flight count and oldest pending age on every scrape."""
        self._outbox_stats = stats
        self._registry.register(_OutboxCollector(self))

    def delivery(self, outcome: str) -> None:
        self.deliveries.labels(outcome).inc()

    def reconciliation(self, outcome: str) -> None:
        self.reconciliations.labels(outcome).inc()

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
            if self._outbox_stats is not None:
                registry.register(_OutboxCollector(self))
            return generate_latest(registry)
        return generate_latest(self._registry)


class _OutboxCollector(Collector):
    """Gauges read from the shared queue at scrape time (absent when the store cannot be read)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        read = self._metrics._outbox_stats
        if read is None:
            return
        try:
            stats = read()
        except StoreUnavailable:  # a scrape must not fail because the store is down; the gauges are left out
            return
        yield GaugeMetricFamily("gateway_outbox_pending", "Creates not yet settled", value=stats.pending)
        yield GaugeMetricFamily(
            "gateway_outbox_in_flight", "Pending creates claimed by a deliverer", value=stats.in_flight
        )
        oldest = stats.oldest_pending_put_at
        age = max(0.0, time.time() - oldest) if oldest is not None else 0.0
        yield GaugeMetricFamily("gateway_outbox_oldest_pending_seconds", "Age of the oldest pending create", value=age)
