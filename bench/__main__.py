"""``python -m bench`` (``./dev bench``): direct, nginx and gateway side by side against the sandbox, with wrk."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from . import report, wrk
from .servers import Servers, Service, cpu_seconds, create_ticket, http, mint_token, rss_mb, sandbox_stats

RESULTS = Path(__file__).resolve().parent / "results"
ACCEPT = "application/vnd.manageengine.sdp.v3+json"
SCENARIOS = "agbchedf"
CPUS = os.cpu_count() or 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./dev bench",
        description=(
            "Side by side, in one run: (a) direct GETs to the Zoho sandbox, (b) through nginx, (c) through the "
            "gateway with its read cache off, (d) through the gateway with defaults, 100 connections polling one "
            "ticket, (e) direct creates, (f) creates through the gateway; (g) and (h) are (a) and (c) at light load."
        ),
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load before each (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for a, b, c, e, f (default 32)")
    parser.add_argument("--poll-connections", type=int, default=100, help="wrk connections for d (default 100)")
    parser.add_argument(
        "--light-connections", type=int, default=8, help="wrk connections for the light-load runs g, h (default 8)"
    )
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--latency-ms", type=int, default=20, help="the sandbox's added latency per call (default 20)")
    parser.add_argument("--sandbox-threads", type=int, default=64, help="sandbox gunicorn threads, 1 worker")
    parser.add_argument(
        "--workers",
        type=int,
        default=CPUS + 1,
        help=f"gateway WEB_CONCURRENCY (default cores + 1 = {CPUS + 1}: measured better than cores on 2 cores)",
    )
    parser.add_argument("--threads", type=int, default=16, help="gateway GATEWAY_THREADS per worker (default 16)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="run every scenario this many times, interleaved; medians shown (default 3)",
    )
    parser.add_argument("--only", default=SCENARIOS, help=f"scenarios to run, a subset of {SCENARIOS!r}")
    parser.add_argument("--quick", action="store_true", help="smoke run: one round of 2 s per scenario, 1 s warm-up")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, state, nginx.conf)")
    return parser


def _command(args: argparse.Namespace) -> str:
    """The ``./dev bench`` command line that reproduces this run, every option explicit."""
    argv = [
        "./dev",
        "bench",
        "--duration",
        f"{args.duration:g}",
        "--warmup",
        f"{args.warmup:g}",
        "--connections",
        str(args.connections),
        "--poll-connections",
        str(args.poll_connections),
        "--light-connections",
        str(args.light_connections),
        "--wrk-threads",
        str(args.wrk_threads),
        "--latency-ms",
        str(args.latency_ms),
        "--sandbox-threads",
        str(args.sandbox_threads),
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--rounds",
        str(args.rounds),
    ]
    if args.only != SCENARIOS:
        argv += ["--only", args.only]
    return shlex.join(argv)


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


def _plain(outcome: report.Outcome) -> dict[str, object]:
    """An outcome as JSON-ready data, without wrk's raw text."""
    return {**asdict(outcome), "wrk": {k: v for k, v in asdict(outcome.wrk).items() if k != "raw"}}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


class Bench:
    """Starts every server once, then runs the scenarios in order, ``--rounds`` times, keeping each raw output."""

    def __init__(self, args: argparse.Namespace, servers: Servers, out: Path) -> None:
        self.args = args
        self.servers = servers
        self.out = out
        self.runs: dict[str, list[report.Outcome]] = {}

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
        if only & {"c", "h"}:
            gw = self.servers.gateway("gw-nocache", sandbox, workers=args.workers, threads=args.threads, cache_ttl=0)
            self._check(gw, ticket)
            found.append(Scenario("c", "gateway, cache off, GET", f"{gw.url}/requests/{ticket}", conns, proxy=gw))
            found.append(
                Scenario("h", "gateway, cache off, GET, light load", f"{gw.url}/requests/{ticket}", light, proxy=gw)
            )
        found.append(
            Scenario(
                "e", "direct to sandbox, POST", f"{sandbox.url}/api/v3/requests", conns, (), "post.lua", ("sdp", token)
            )
        )
        if only & {"d", "f"}:
            gw = self.servers.gateway("gw-default", sandbox, workers=args.workers, threads=args.threads)
            self._check(gw, ticket)
            polled = f"{gw.url}/requests/{ticket}"
            found.append(
                Scenario("d", "gateway, defaults (cache 2 s), GET one ticket", polled, args.poll_connections, proxy=gw)
            )
            found.append(
                Scenario(
                    "f", "gateway, defaults, POST /requests", f"{gw.url}/requests", conns, (), "post.lua", proxy=gw
                )
            )
        return sandbox, [s for s in found if s.key in only]

    def run(self) -> None:
        sandbox, scenarios = self.scenarios()
        for round_ in range(1, self.args.rounds + 1):
            for scenario in scenarios:
                self.runs.setdefault(scenario.key, []).append(self.measure(scenario, sandbox, round_))

    def measure(self, scenario: Scenario, sandbox: Service, round_: int) -> report.Outcome:
        """Warm up, then one measured wrk run; counters, CPU times and the access log are read right around it."""

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
        _say(f"bench: round {round_}/{self.args.rounds} ({key}) {scenario.label}, {scenario.connections} connections")
        if self.args.warmup > 0:
            load(self.args.warmup)
        sandbox_pids = sandbox.worker_pids()
        proxy_pids = proxy.worker_pids() if proxy is not None else []
        log_file = Path(proxy.extra["log_file"]) if proxy is not None and "log_file" in proxy.extra else None
        log_offset = log_file.stat().st_size if log_file is not None else 0
        before = sandbox_stats(sandbox)
        cpu_before = cpu_seconds(sandbox_pids), cpu_seconds(proxy_pids)
        result = load(self.args.duration)
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
            inner_p50_ms=_access_p50(log_file, log_offset) if log_file is not None else None,
        )
        raw = self.out / f"{key}.round{round_}.wrk.txt"
        raw.write_text(f"# ({key}) {scenario.label}\n# wrk {scenario.url}\n{result.raw}")
        _say(
            f"bench:   {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"errors {result.errors}, upstream/call {outcome.upstream:.4f}"
        )
        return outcome

    @staticmethod
    def _check(gateway: Service, ticket: str) -> None:
        """One GET before the load: the gateway answers the ticket (and mints its token now, not under load)."""
        status, body = http("GET", f"{gateway.url}/requests/{ticket}", timeout=30)
        if status != 200 or not isinstance(body, dict) or body.get("ticket_id") != ticket:
            raise RuntimeError(f"{gateway.name} answered HTTP {status} {body!r} for ticket {ticket}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = min(args.duration, 2.0), min(args.warmup, 1.0), 1
    if not set(args.only) <= set(SCENARIOS) or not args.only:
        _parser().error(f"--only takes letters of {SCENARIOS!r}")
    for tool in (wrk.WRK, "/usr/sbin/nginx"):
        if not Path(tool).exists():
            _parser().error(f"{tool} is missing (./dev bench installs the Debian packages nginx and wrk)")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="zgw-bench-"))
    command = _command(args)
    _say(f"bench: {command}\nbench: raw outputs in {out}, servers' files in {workdir}")
    try:
        with Servers(workdir) as servers:
            bench = Bench(args, servers, out)
            bench.run()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    combined = {key: report.combine(runs) for key, runs in bench.runs.items()}
    outcomes = list(combined.values())
    found = report.targets(combined)
    text = "\n\n".join(
        [
            f"zoho-gateway bench, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, sandbox latency {args.latency_ms} ms, "
            f"gateway {args.workers} workers x {args.threads} threads, {args.duration:g} s per scenario"
            + (f", median of {args.rounds} interleaved rounds" if args.rounds > 1 else ""),
            report.scenario_table(outcomes),
            report.targets_table(found),
            f"reproduce: {command}",
        ]
    )
    print(text)
    (out / "report.md").write_text(text + "\n")
    summary = {
        "command": command,
        "outcomes": [_plain(o) for o in outcomes],
        "rounds": {key: [_plain(o) for o in runs] for key, runs in bench.runs.items()},
        "targets": [asdict(t) for t in found],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    # Missed speed targets are figures to read; failed requests mean something is broken.
    return 1 if any(o.wrk.errors for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
