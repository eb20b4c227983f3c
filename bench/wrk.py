"""Run wrk (bounded in time, loopback only) and parse its text output into numbers."""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

WRK = "/usr/bin/wrk"
SCRIPTS = Path(__file__).resolve().parent

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"


class WrkError(RuntimeError):
    """wrk failed to run or printed something this parser does not understand."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. Latencies in milliseconds; ``non2xx`` counts wrk's "Non-2xx or 3xx responses"."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    raw: str

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(raw: str) -> WrkResult:
    """Numbers from wrk's ``--latency`` output. Raises WrkError when a required line is missing."""

    def need(pattern: str) -> re.Match[str]:
        found = re.search(pattern, raw, re.MULTILINE)
        if found is None:
            raise WrkError(f"wrk output has no line matching {pattern!r}:\n{raw}")
        return found

    percentiles = {
        int(m.group(1)): _ms(m.group(2), m.group(3))
        for m in re.finditer(rf"^\s+(50|75|90|99)%\s+{_DURATION}\s*$", raw, re.MULTILINE)
    }
    if 50 not in percentiles or 99 not in percentiles:
        raise WrkError(f"wrk output has no latency distribution (was --latency given?):\n{raw}")
    total = need(rf"^\s+(\d+) requests in {_DURATION},")
    latency = need(rf"^\s+Latency\s+\S+\s+\S+\s+{_DURATION}")
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", raw)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", raw)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1000,
        rps=float(need(r"^Requests/sec:\s+([0-9.]+)").group(1)),
        p50_ms=percentiles[50],
        p90_ms=percentiles.get(90, percentiles[99]),
        p99_ms=percentiles[99],
        max_ms=_ms(latency.group(1), latency.group(2)),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        raw=raw,
    )


def run(
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 2,
    headers: tuple[str, ...] = (),
    script: str | None = None,
    script_args: tuple[str, ...] = (),
    timeout_s: float = 5.0,
) -> WrkResult:
    """``wrk --latency`` against ``url`` (127.0.0.1 only) for ``seconds``; killed if it overruns by 30 s."""
    if urllib.parse.urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"wrk only runs against 127.0.0.1, not {url}")
    argv = [
        WRK,
        "--latency",
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        f"{timeout_s:g}s",
    ]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(SCRIPTS / script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk overran its {seconds:g}s run by 30s") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)
