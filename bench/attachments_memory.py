"""Memory of the gateway's gunicorn workers while many clients upload large attachments at once.

Starts the sandbox (its own process) and ``gunicorn wsgi:app`` with the default configuration (gevent
workers, cores + 1 of them, ``GATEWAY_MAX_ATTACHMENT_BYTES`` 10 MiB) in sandbox mode, creates one ticket per
client, then ``--rounds`` times sends ``--clients`` uploads of ``--size`` bytes each at once (``POST
/requests/<id>/attachments``, the body streamed chunked from one shared buffer, so the bench itself holds one
file). A sampler reads every worker's resident memory (``VmRSS`` of ``/proc/<pid>/status``) every 50 ms;
the table gives, per worker and in total, the memory before the first round, the most seen during the
rounds, the kernel's peak (``VmHWM``) and the memory after. Also the upload statuses, their times, and that
the sandbox received every byte.

Run: ``.venv/bin/python -m bench.attachments_memory`` (``--clients 20 --size 10485760 --rounds 2``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.servers import HOST, REPO, child_pids, clean_env, free_port

MIB = 1024 * 1024
BOUNDARY = "benchb0undary"
#: Every upload is a PNG screenshot as far as its bytes say (the gateway types files from their first bytes).
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
CHUNK = 256 * 1024


def status_kib(pid: int, field_name: str) -> int:
    """A ``/proc/<pid>/status`` memory field (``VmRSS``, ``VmHWM``) in KiB; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Sampler:
    """Reads the workers' RSS every ``interval`` seconds in a thread; keeps each worker's largest reading."""

    pids: list[int]
    interval: float = 0.05
    most: dict[int, int] = field(default_factory=dict)
    total_most: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            readings = {pid: status_kib(pid, "VmRSS") for pid in self.pids}
            for pid, kib in readings.items():
                self.most[pid] = max(self.most.get(pid, 0), kib)
            self.total_most = max(self.total_most, sum(readings.values()))
            self.samples += 1
            time.sleep(self.interval)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], what: str, log: Path, probe: str = "/healthz") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(f"{url}{probe}", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not become healthy: {log.read_text(errors='replace')[-2000:]}")


def body(payload: memoryview, name: str) -> Iterator[bytes]:
    """One ``file`` part holding ``payload``, as chunks (requests sends a generator chunked)."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    for start in range(0, len(payload), CHUNK):
        yield bytes(payload[start : start + CHUNK])
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def machine() -> str:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except (OSError, subprocess.SubprocessError):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model or platform.processor() or 'unknown'}), load average {load}"


def run(clients: int, size: int, rounds: int) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="zgw-attach-bench-"))
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox_url, gateway_url = f"http://{HOST}:{sandbox_port}", f"http://{HOST}:{gateway_port}"
    sandbox_log, gateway_log = workdir / "sandbox.log", workdir / "gateway.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with open(sandbox_log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "zoho_gateway.sandbox", "--port", str(sandbox_port), "--memory"],
                    cwd=REPO,
                    env=clean_env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        wait_healthy(sandbox_url, procs[0], "sandbox", sandbox_log, "/_sandbox/stats")
        env = clean_env(
            GATEWAY_SANDBOX="1",
            ZOHO_ACCOUNTS_URL=sandbox_url,
            ZOHO_API_BASE_URL=sandbox_url,
            GATEWAY_STATE_URL=f"sqlite:///{workdir}/state.db",
            GATEWAY_LOG_FILE=str(workdir / "gateway-access.log"),
            GUNICORN_BIND=f"{HOST}:{gateway_port}",
        )
        with open(gateway_log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "wsgi:app"],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        wait_healthy(gateway_url, procs[1], "gateway", gateway_log)
        http = requests.Session()
        ticket = {"subject": "Upload bench", "description": "bench", "requester_email": "bench@example.com"}
        tickets = []
        for _ in range(clients):
            created = http.post(f"{gateway_url}/requests", json=ticket, timeout=30)
            if created.status_code != 201:
                raise SystemExit(f"create failed: {created.status_code} {created.text}")
            tickets.append(created.json()["zoho_ticket_id"])
        payload = memoryview(PNG_HEAD + b"\x5a" * (size - len(PNG_HEAD)))
        # Every worker serves at least one warm-up upload (imports, pools, token) before "before" is read.
        deadline = time.monotonic() + 10
        workers = child_pids(procs[1].pid)
        while len(workers) < (os.cpu_count() or 1) + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = child_pids(procs[1].pid)

        def upload(i: int) -> tuple[int, float]:
            started = time.monotonic()
            answer = requests.post(
                f"{gateway_url}/requests/{tickets[i % clients]}/attachments",
                data=body(payload, f"shot-{i}.png"),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                timeout=300,
            )
            return answer.status_code, time.monotonic() - started

        small = memoryview(PNG_HEAD + b"\x00" * 1024)
        with ThreadPoolExecutor(max_workers=clients) as pool:
            warm = list(
                pool.map(
                    lambda i: (
                        requests.post(
                            f"{gateway_url}/requests/{tickets[i]}/attachments",
                            data=body(small, "warm.png"),
                            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                            timeout=60,
                        ).status_code
                    ),
                    range(clients),
                )
            )
        before = {pid: status_kib(pid, "VmRSS") for pid in workers}
        sampler = Sampler(workers)
        sampler.start()
        results: list[tuple[int, float]] = []
        started = time.monotonic()
        for _ in range(rounds):
            with ThreadPoolExecutor(max_workers=clients) as pool:
                results += list(pool.map(upload, range(clients)))
        elapsed = time.monotonic() - started
        sampler.stop()
        time.sleep(1.0)
        after = {pid: status_kib(pid, "VmRSS") for pid in workers}
        hwm = {pid: status_kib(pid, "VmHWM") for pid in workers}
        received = 0
        for ticket_id in tickets:
            stored = http.get(f"{sandbox_url}/_sandbox/tickets/{ticket_id}/attachments", timeout=30).json()
            received += sum(int(a["size"]["value"]) for a in stored["attachments"] if a["name"].startswith("shot-"))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    times = sorted(seconds for _, seconds in results)
    print(f"machine: {machine()}")
    print(
        f"{rounds} round(s) of {clients} concurrent uploads of {size / MIB:.1f} MiB, gunicorn defaults "
        f"({len(workers)} gevent workers); warm-up statuses {sorted(set(warm))}"
    )
    print(f"statuses: {statuses}; sandbox received {received / MIB:.1f} MiB of {len(results) * size / MIB:.1f} MiB")
    print(
        f"upload time: median {statistics.median(times):.2f} s, max {times[-1]:.2f} s; all in {elapsed:.1f} s "
        f"({len(results) * size / MIB / elapsed:.0f} MiB/s through the gateway); {sampler.samples} samples"
    )
    print()
    print("| worker | RSS before (MiB) | most RSS during (MiB) | peak VmHWM (MiB) | RSS after (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for n, pid in enumerate(workers, 1):
        print(f"| {n} | {mib(before[pid])} | {mib(sampler.most.get(pid, 0))} | {mib(hwm[pid])} | {mib(after[pid])} |")
    print(
        f"| all | {mib(sum(before.values()))} | {mib(sampler.total_most)} (at once) | {mib(sum(hwm.values()))} | "
        f"{mib(sum(after.values()))} |"
    )
    print()
    print(f"one file: {size / MIB:.1f} MiB; all files of a round: {clients * size / MIB:.0f} MiB")
    print(
        f"reproduce: .venv/bin/python -m bench.attachments_memory --clients {clients} --size {size} --rounds {rounds}"
    )
    summary = {
        "statuses": statuses,
        "before_kib": sum(before.values()),
        "most_kib": sampler.total_most,
        "after_kib": sum(after.values()),
    }
    print(json.dumps(summary))
    ok = statuses == {201: len(results)} and received == len(results) * size
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attachments_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="uploads sent at once (default 20)")
    parser.add_argument("--size", type=int, default=10 * MIB, help="bytes per file (default 10 MiB, the cap)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of concurrent uploads (default 2)")
    args = parser.parse_args(argv)
    return run(args.clients, args.size, args.rounds)


if __name__ == "__main__":
    raise SystemExit(main())
