"""``python -m bench`` (``./dev bench``): direct, nginx and gateway side by side against the sandbox, with wrk.

The gateway runs in several variants in the same run: each ``--worker-classes`` of this tree, and each
``--baseline-worker-classes`` of ``--baseline-rev`` (by default the last revision before the switch from
urllib3 to requests), served from its own directory. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from . import baseline, report, wrk
from .scenarios import Bench, Variant, say
from .servers import Servers

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = "agbchedfs"
WORKER_CLASSES = ("gevent", "gthread")
#: The last revision whose transport was urllib3 (5bc0d84 switched it to requests).
DEFAULT_BASELINE = "5bc0d84^"
CPUS = os.cpu_count() or 1


def _classes(text: str) -> list[str]:
    found = [c.strip() for c in text.split(",") if c.strip()]
    for name in found:
        if name not in WORKER_CLASSES:
            raise argparse.ArgumentTypeError(f"worker classes are {', '.join(WORKER_CLASSES)}; got {name!r}")
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./dev bench",
        description=(
            "Side by side, in one run: (a) direct GETs to the Zoho sandbox, (b) through nginx, (c) through the "
            "gateway with its read cache off, (d) through the gateway with defaults, 100 connections polling one "
            "ticket, (e) direct creates, (f) creates through the gateway; (g) and (h) are (a) and (c) at light "
            "load; (s) is (c) while slow clients hold half-sent requests open. Every gateway scenario runs for "
            "each worker class, and for the baseline revision."
        ),
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load before each (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for a, b, c, e, f, s (default 32)")
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
    parser.add_argument("--threads", type=int, default=16, help="gthread: GATEWAY_THREADS per worker (default 16)")
    parser.add_argument(
        "--worker-classes",
        type=_classes,
        default=list(WORKER_CLASSES),
        help="gateway worker classes of this tree, compared side by side (default gevent,gthread)",
    )
    parser.add_argument(
        "--baseline-rev",
        default=DEFAULT_BASELINE,
        help=f"a git revision served from its own checkout beside this tree (default {DEFAULT_BASELINE}: the "
        "urllib3 transport); 'none' for no baseline",
    )
    parser.add_argument(
        "--baseline-worker-classes",
        type=_classes,
        default=["gthread"],
        help="worker classes of the baseline revision (default gthread)",
    )
    parser.add_argument(
        "--slow-connections",
        type=int,
        default=500,
        help="half-sent requests held open during (s) (default 500, as tests/test_slow_clients.py)",
    )
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
    argv = ["./dev", "bench"]
    for option, value in (
        ("--duration", f"{args.duration:g}"),
        ("--warmup", f"{args.warmup:g}"),
        ("--connections", str(args.connections)),
        ("--poll-connections", str(args.poll_connections)),
        ("--light-connections", str(args.light_connections)),
        ("--wrk-threads", str(args.wrk_threads)),
        ("--latency-ms", str(args.latency_ms)),
        ("--sandbox-threads", str(args.sandbox_threads)),
        ("--workers", str(args.workers)),
        ("--threads", str(args.threads)),
        ("--worker-classes", ",".join(args.worker_classes)),
        ("--baseline-rev", args.baseline_rev),
        ("--baseline-worker-classes", ",".join(args.baseline_worker_classes)),
        ("--slow-connections", str(args.slow_connections)),
        ("--rounds", str(args.rounds)),
    ):
        argv += [option, value]
    if args.only != SCENARIOS:
        argv += ["--only", args.only]
    return shlex.join(argv)


def _plain(outcome: report.Outcome) -> dict[str, object]:
    """An outcome as JSON-ready data, without wrk's raw text."""
    return {**asdict(outcome), "wrk": {k: v for k, v in asdict(outcome.wrk).items() if k != "raw"}}


def _variants(args: argparse.Namespace, workdir: Path) -> tuple[list[Variant], baseline.Checkout | None]:
    """This tree's worker classes, then the baseline's (checked out under ``workdir``)."""
    here = baseline.http_client(baseline.REPO)
    variants = [Variant(c, f"{c}+{here}", c) for c in args.worker_classes]
    if args.baseline_rev.lower() in ("", "none"):
        return variants, None
    base = baseline.checkout(args.baseline_rev, workdir)
    for c in args.baseline_worker_classes:
        label = f"{c}+{base.http_client} @ {base.short}"
        variants.append(Variant(f"base-{c}", label, c, root=base.root, slow_clients=False))
    return variants, base


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
    started = time.strftime("%a %b %d %H:%M:%S %Z %Y")
    load_before = os.getloadavg()
    say(f"bench: {command}\nbench: raw outputs in {out}, servers' files in {workdir}")
    try:
        variants, base = _variants(args, workdir)
        if base is not None:
            say(f"bench: baseline {base.rev} = {base.short} ({base.subject[:80]}), {base.http_client}, in {base.root}")
        with Servers(workdir) as servers:
            bench = Bench(args, servers, out, variants)
            bench.run()
    except baseline.BaselineError as exc:
        _parser().error(f"--baseline-rev: {exc}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    combined = {key: report.combine(runs) for key, runs in bench.runs.items()}
    outcomes = list(combined.values())
    found = report.targets(combined, [(v.key, v.label) for v in variants])
    header = (
        f"zoho-gateway bench, started {started}, sandbox latency {args.latency_ms} ms, gateway {args.workers} "
        f"workers (gthread: x {args.threads} threads), {args.duration:g} s per scenario"
        + (f", median of {args.rounds} interleaved rounds" if args.rounds > 1 else "")
        + f"; load average {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end"
    )
    if base is not None:
        header += f"\n\nbaseline: {base.rev} = {base.commit[:12]} \u201c{base.subject[:100]}\u201d"
    text = "\n\n".join(
        part
        for part in (
            header,
            report.scenario_table(outcomes),
            report.slow_clients_table(outcomes),
            report.targets_table(found),
            f"reproduce: {command}",
        )
        if part
    )
    print(text)
    (out / "report.md").write_text(text + "\n")
    summary = {
        "command": command,
        "started": started,
        "load_average": {"start": load_before, "end": load_after},
        "baseline": asdict(base) | {"root": str(base.root)} if base is not None else None,
        "variants": [asdict(v) | {"root": str(v.root)} for v in variants],
        "outcomes": [_plain(o) for o in outcomes],
        "rounds": {key: [_plain(o) for o in runs] for key, runs in bench.runs.items()},
        "targets": [asdict(t) for t in found],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    # Missed speed targets are figures to read; failed requests mean something is broken. Slow-clients runs are
    # apart: a worker class that starves under them is a finding of the run, not a broken bench.
    return 1 if any(o.wrk.errors for o in outcomes if o.slow_held is None) else 0


if __name__ == "__main__":
    sys.exit(main())
