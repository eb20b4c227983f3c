"""What one bench run measures: the servers it starts, the scenarios on them, and one measured wrk run each.

Every gateway scenario runs once per *variant*: a worker class of this tree (gevent, gthread) or of a baseline
revision served from its own directory (``--baseline-rev``). All servers start once and stay up; the rounds
interleave every scenario, so that whatever else loads the machine spreads over all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from . import report, slow_clients, wrk
from .servers import (
    REPO,
    Servers,
    Service,
    connections_per_worker,
    cpu_seconds,
    create_ticket,
    http,
    mint_token,
    rss_mb,
    sandbox_stats,
)

ACCEPT = "application/vnd.manageengine.sdp.v3+json"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Variant:
    """One way of serving the gateway: ``key`` names it in scenario keys (``c.gevent``), ``label`` in tables."""

    key: str
    label: str
    worker_class: str
    root: Path = REPO
    #: Whether the slow-clients scenario runs on it (this tree's worker classes; a baseline adds nothing there).
    slow_clients: bool = True


@dataclass(frozen=True)
class Scenario:
    """One line of the table: what wrk loads, and which processes' CPU and memory are read around it."""

    key: str
    label: str
    url: str
    connections: int
    headers: tuple[str, ...] = ()
    script: str | None = None
    script_args: tuple[str, ...] = ()
    proxy: Service | None = None
    #: Slow clients held open on the proxy while wrk runs (the ``s`` scenarios); 0 for a plain run.
    slow: int = 0


@dataclass
class Bench:
    """Starts every server once, then runs the scenarios in order, ``--rounds`` times, keeping each raw output."""

    args: argparse.Namespace
    servers: Servers
    out: Path
    variants: list[Variant]
    runs: dict[str, list[report.Outcome]] = field(default_factory=dict)

    def scenarios(self) -> tuple[Service, list[Scenario]]:
        """Start the sandbox and the proxies the selected scenarios need; one ticket to read, one token."""
        args, only = self.args, set(self.args.only)
        sandbox = self.servers.sandbox(latency_ms=args.latency_ms, threads=args.sandbox_threads)
        token = mint_token(sandbox)
        ticket = create_ticket(sandbox, token)
        auth = (f"Authorization: Zoho-oauthtoken {token}", f"Accept: {ACCEPT}")
        get = f"/api/v3/requests/{ticket}"
        conns, light = args.connections, args.light_connections
        found = [
            Scenario("a", "direct to sandbox, GET", sandbox.url + get, conns, auth),
            Scenario("g", "direct to sandbox, GET, light load", sandbox.url + get, light, auth),
        ]
        if "b" in only:
            nginx = self.servers.nginx(sandbox)
            found.append(Scenario("b", "nginx -> sandbox, GET", nginx.url + get, conns, auth, proxy=nginx))
        nocache: dict[str, Service] = {}
        defaults: dict[str, Service] = {}
        for v in self.variants:
            if only & {"c", "h", "s"}:
                nocache[v.key] = self._gateway(f"gw-{v.key}-nocache", sandbox, v, ticket, cache_ttl=0)
            if only & {"d", "f"}:
                defaults[v.key] = self._gateway(f"gw-{v.key}-default", sandbox, v, ticket, cache_ttl=None)
        # In table order: each kind of scenario for every variant, side by side.
        for v in self.variants:
            if v.key in nocache:
                read = f"{nocache[v.key].url}/requests/{ticket}"
                label = f"gateway {v.label}, cache off, GET"
                found.append(Scenario(f"c.{v.key}", label, read, conns, proxy=nocache[v.key]))
        for v in self.variants:
            if v.key in nocache:
                read = f"{nocache[v.key].url}/requests/{ticket}"
                label = f"gateway {v.label}, cache off, GET, light load"
                found.append(Scenario(f"h.{v.key}", label, read, light, proxy=nocache[v.key]))
        found.append(
            Scenario(
                "e", "direct to sandbox, POST", f"{sandbox.url}/api/v3/requests", conns, (), "post.lua", ("sdp", token)
            )
        )
        for v in self.variants:
            if v.key in defaults:
                polled = f"{defaults[v.key].url}/requests/{ticket}"
                label = f"gateway {v.label}, defaults (cache 2 s), GET one ticket"
                found.append(Scenario(f"d.{v.key}", label, polled, args.poll_connections, proxy=defaults[v.key]))
        for v in self.variants:
            if v.key in defaults:
                created = f"{defaults[v.key].url}/requests"
                label = f"gateway {v.label}, defaults, POST /requests"
                found.append(Scenario(f"f.{v.key}", label, created, conns, (), "post.lua", proxy=defaults[v.key]))
        for v in self.variants:
            if v.key in nocache and v.slow_clients:
                read = f"{nocache[v.key].url}/requests/{ticket}"
                label = f"gateway {v.label}, cache off, GET, {args.slow_connections} slow clients held open"
                found.append(
                    Scenario(f"s.{v.key}", label, read, conns, proxy=nocache[v.key], slow=args.slow_connections)
                )
        return sandbox, [s for s in found if s.key[0] in only]

    def _gateway(self, name: str, sandbox: Service, variant: Variant, ticket: str, cache_ttl: float | None) -> Service:
        gateway = self.servers.gateway(
            name,
            sandbox,
            workers=self.args.workers,
            threads=self.args.threads,
            cache_ttl=cache_ttl,
            worker_class=variant.worker_class,
            root=variant.root,
        )
        # One GET before the load: the gateway answers the ticket (and mints its token now, not under load).
        status, body = http("GET", f"{gateway.url}/requests/{ticket}", timeout=30)
        if status != 200 or not isinstance(body, dict) or body.get("ticket_id") != ticket:
            raise RuntimeError(f"{gateway.name} answered HTTP {status} {body!r} for ticket {ticket}")
        return gateway

    def run(self) -> None:
        sandbox, scenarios = self.scenarios()
        for round_ in range(1, self.args.rounds + 1):
            for scenario in scenarios:
                self.runs.setdefault(scenario.key, []).append(self.measure(scenario, sandbox, round_))

    def measure(self, scenario: Scenario, sandbox: Service, round_: int) -> report.Outcome:
        """Warm up, then one measured wrk run; counters, CPU times and the access log are read right around it.
        A slow-clients scenario opens its half-sent connections after the warm-up and holds them for the run."""

        def load(seconds: float) -> wrk.WrkResult:
            return wrk.run(
                scenario.url,
                seconds=seconds,
                connections=scenario.connections,
                threads=self.args.wrk_threads,
                headers=scenario.headers,
                script=scenario.script,
                script_args=scenario.script_args,
            )

        key, proxy = scenario.key, scenario.proxy
        say(f"bench: round {round_}/{self.args.rounds} ({key}) {scenario.label}, {scenario.connections} connections")
        if self.args.warmup > 0:
            load(self.args.warmup)
        sandbox_pids = sandbox.worker_pids()
        proxy_pids = proxy.worker_pids() if proxy is not None else []
        log_file = Path(proxy.extra["log_file"]) if proxy is not None and "log_file" in proxy.extra else None
        holder: AbstractContextManager[int] = (
            slow_clients.held_open(scenario.url, scenario.slow) if scenario.slow else nullcontext(0)
        )
        with holder as held:
            # Let the workers take the slow connections in before anything is measured.
            if scenario.slow:
                time.sleep(1.0)
            probe = slow_clients.probe(scenario.url, timeout=10.0) if scenario.slow else None
            log_offset = log_file.stat().st_size if log_file is not None else 0
            before = sandbox_stats(sandbox)
            cpu_before = cpu_seconds(sandbox_pids), cpu_seconds(proxy_pids)
            spread: list[tuple[int, ...]] = []
            # Halfway through the run, how wrk's connections sit on the proxy's workers (they stay for the run).
            sampler = threading.Timer(
                self.args.duration / 2, lambda: spread.append(connections_per_worker(scenario.url, proxy_pids))
            )
            if proxy is not None:
                sampler.start()
            result = load(self.args.duration)
            if proxy is not None:
                sampler.cancel()
                sampler.join()
            cpu_after = cpu_seconds(sandbox_pids), cpu_seconds(proxy_pids)
            after = sandbox_stats(sandbox)
        per_call = 1e6 / result.requests if result.requests else 0.0
        outcome = report.Outcome(
            key,
            scenario.label,
            scenario.connections,
            result,
            upstream=(after.get("api_calls", 0) - before.get("api_calls", 0)) * per_call / 1e6,
            sandbox_cpu_us=(cpu_after[0] - cpu_before[0]) * per_call,
            proxy_cpu_us=(cpu_after[1] - cpu_before[1]) * per_call if proxy is not None else None,
            worker_rss_mb=tuple(rss_mb(pid) for pid in proxy_pids),
            conns_per_worker=spread[0] if spread else (),
            inner_p50_ms=_access_p50(log_file, log_offset) if log_file is not None else None,
            slow_held=held if scenario.slow else None,
            probe_status=probe.status if probe is not None else None,
            probe_seconds=probe.seconds if probe is not None else None,
        )
        raw = self.out / f"{key}.round{round_}.wrk.txt"
        raw.write_text(f"# ({key}) {scenario.label}\n# wrk {scenario.url}\n{result.raw}")
        extra = ""
        if probe is not None:
            extra = f", {held} slow held, probe {probe.status or 'no answer'} in {probe.seconds:.2f} s"
        say(
            f"bench:   {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"errors {result.errors}, upstream/call {outcome.upstream:.4f}{extra}"
        )
        return outcome


def _access_p50(log_file: Path, offset: int) -> float | None:
    """Median ``duration_ms`` of the gateway's JSON access lines written after ``offset`` (time inside Flask)."""
    durations: list[float] = []
    with open(log_file, "rb") as fh:
        # A rotation during the run leaves a new, shorter file: its lines are then the sample.
        fh.seek(offset if os.fstat(fh.fileno()).st_size >= offset else 0)
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == "access":
                durations.append(float(record.get("duration_ms", 0.0)))
    return statistics.median(durations) if durations else None
