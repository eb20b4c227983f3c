"""``python -m bench.queue_drain``: queued creates through a Zoho outage, drained under worker kills (issue 10).

The three conditions of the issue at once, against ``gunicorn wsgi:app`` (the repo's gunicorn.conf.py:
gevent, deliverers in every worker) and the Zoho sandbox, each in its own process:

1. Zoho is down for ``--outage`` seconds (60): every SDP call and every token call is answered 503, as a
   load balancer in front of a Zoho whose application is down answers. Meanwhile ``--clients`` threads (50)
   send ``--tickets`` keyed creates (1,000) with ``Idempotency-Key`` and ``Prefer: respond-async``; every
   answer must be 201 or 202 (any other is recorded; a dropped connection is sent again with the same key).
2. Zoho comes back; every gunicorn worker is SIGKILLed every ``--kill-every`` seconds (5) until the
   backlog has drained (gunicorn starts new ones).
3. Throughout, ``--lost`` (20 %) of the creates that reach Zoho commit and then lose their answer
   (``--lost-kind``, default ``reset_after_commit``: the connection is closed without an answer).

Measured: the drain time (Zoho's return to the last item settled, from ``/readyz``'s pending count polled
every ``--poll`` s), the peak of create calls in flight at the sandbox (its ``create_in_flight_peak``,
for the outage and for the drain separately), the tickets in the sandbox (must equal ``--tickets``, each
subject exactly once), how each request_ref ended, create calls, searches and reconciliations.

The gateway and the sandbox are served from a ``git archive`` of ``--rev`` (default HEAD; ``worktree``: this
tree as it is), so that other work in progress in the tree is not what is measured.

Bounded: every phase has a deadline (``--drain-limit`` for the drain); every process started is stopped
by pid (its own session), also on SIGTERM or Ctrl-C; the working directory is removed unless ``--keep``.
Loopback only. Exit status 1 if a ticket is lost, doubled or misattributed, or an answer was not 201/202.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .baseline import checkout
from .servers import HOST, REPO, ServerError, Servers, Service, clean_env, free_port
from .servers import http as loopback

API_KEY = "queue-drain-bench-key-0123456789abcdef"
#: For /metrics, where keys have scopes (``name[admin]=key``) and it needs ``admin``.
OPS_KEY = "queue-drain-bench-ops-0123456789abcdef"
REF_FIELD = "udf_sline_1"
#: Outage faults first in the sandbox's queue, so that a lost-answer fault never fires while Zoho is down.
OUTAGE_FAULTS = (
    {"target": "api", "kind": "status", "status": 503},
    {"target": "token", "kind": "status", "status": 503},
)
LOST_KINDS = ("reset_after_commit", "status_after_commit", "hang_after_commit")
#: The value of each label in a metric's name: ``x{operation="create",outcome="201"}`` -> create, 201.
LABEL_VALUE = re.compile(r'="([^"]*)"')


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the gateway's and the sandbox's processes ------------------------------------------------------


class DrainServers(Servers):
    """``Servers`` plus the sandbox and the gateway served from ``root`` (a checkout of a revision, or the
    working tree), and a redis-server."""

    def __init__(self, workdir: Path, root: Path) -> None:
        super().__init__(workdir)
        self.root = root

    def zoho(self, latency_ms: int, threads: int = 64) -> Service:
        """The sandbox as ``Servers.sandbox`` serves it (gunicorn gthread, 1 worker), from ``root``."""
        port = free_port()
        conf = self.workdir / "sandbox.gunicorn.conf.py"
        conf.write_text("# the sandbox runs with gunicorn's defaults plus its command line\n")
        argv = [sys.executable, "-m", "gunicorn", "zoho_gateway.sandbox:create_sandbox_app()", "--config", str(conf)]
        argv += ["--bind", f"{HOST}:{port}", "--worker-class", "gthread", "--workers", "1", "--threads", str(threads)]
        argv += ["--keep-alive", "30", "--log-level", "warning"]
        env = clean_env(SANDBOX_LATENCY_MS=str(latency_ms))
        return self._spawn("sandbox", argv, env, f"http://{HOST}:{port}", "/_sandbox/stats", cwd=self.root)

    def redis(self) -> Service:
        """A redis-server with the append-only file on (``appendfsync everysec``), in the working directory."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not on PATH (apt-get install redis-server)")
        port = free_port()
        data = self.workdir / "redis"
        data.mkdir(exist_ok=True)
        argv = [binary, "--port", str(port), "--bind", HOST, "--dir", str(data), "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        log = self.workdir / "redis.out"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, env=clean_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        service = Service("redis", f"redis://{HOST}:{port}/0", proc, log)
        self._started.append(service)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerError(f"redis-server exited with {proc.returncode}:\n{service.tail()}")
            try:
                with socket.create_connection((HOST, port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return service
            except OSError:
                pass
            time.sleep(0.05)
        raise ServerError("redis-server did not answer PING")

    def scoped_keys(self) -> bool:
        """Whether the served revision knows key scopes (``/metrics`` then needs an ``admin`` key)."""
        try:
            return '"admin":' in (self.root / "zoho_gateway" / "apikeys.py").read_text()
        except OSError:
            return False

    def queue_gateway(self, sandbox: Service, state_url: str, env: dict[str, str], workers: int | None) -> Service:
        """``gunicorn wsgi:app`` from the repo (its gunicorn.conf.py) in sandbox mode, with ``env`` on top."""
        port = free_port()
        state = self.workdir / "gateway"
        state.mkdir(exist_ok=True)
        settings = {
            "GATEWAY_SANDBOX": "1",
            "ZOHO_ACCOUNTS_URL": sandbox.url,
            "ZOHO_API_BASE_URL": sandbox.url,
            "GATEWAY_STATE_URL": state_url,
            "GATEWAY_LOG_FILE": str(state / "gw.log"),
            "GATEWAY_API_KEYS": f"bench={API_KEY}" + (f",ops[admin]={OPS_KEY}" if self.scoped_keys() else ""),
            "GUNICORN_BIND": f"{HOST}:{port}",
            "PROMETHEUS_MULTIPROC_DIR": str(state / "metrics"),
            **env,
        }
        if workers is not None:
            settings["WEB_CONCURRENCY"] = str(workers)
        argv = [sys.executable, "-m", "gunicorn", "wsgi:app"]
        service = self._spawn(
            "gateway", argv, clean_env(**settings), f"http://{HOST}:{port}", "/healthz", cwd=self.root
        )
        service.extra["log_file"] = str(state / "gw.log")
        return service


def sandbox_call(sandbox: Service, method: str, path: str, payload: object = None) -> Any:
    """A control API call with a JSON body; the decoded answer. ServerError unless 2xx."""
    conn = http.client.HTTPConnection(HOST, int(sandbox.url.rsplit(":", 1)[1]), timeout=10)
    try:
        body = None if payload is None else json.dumps(payload)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        raw = answer.read()
    finally:
        conn.close()
    if not 200 <= answer.status < 300:
        raise ServerError(f"sandbox {method} {path}: HTTP {answer.status} {raw[:200]!r}")
    return json.loads(raw) if raw else None


# --- clients ------------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection to the gateway, opened again after any failure."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self._port = int(url.rsplit(":", 1)[1])
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, Any]:
        """(status, decoded JSON or None); raises OSError/HTTPException when the connection fails."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(HOST, self._port, timeout=self._timeout)
        sent = {"Authorization": f"Bearer {API_KEY}", **headers}
        if body is not None:
            sent["Content-Type"] = "application/json"
        try:
            self._conn.request(method, path, body=body, headers=sent)
            answer = self._conn.getresponse()
            raw = answer.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if answer.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            return answer.status, json.loads(raw) if raw else None
        except ValueError:
            return answer.status, raw[:200].decode("utf-8", "replace")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Sent:
    """What the clients learnt: refs of 202s, ticket ids of 201s, anything else."""

    refs: dict[int, str] = field(default_factory=dict)
    created: dict[int, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    others: list[str] = field(default_factory=list)
    resent: int = 0
    unsent: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def subject(run: str, number: int) -> str:
    return f"Queued drain {run} #{number}"


def send_creates(url: str, run: str, tickets: int, clients: int, deadline: float) -> Sent:
    """``tickets`` keyed respond-async creates from ``clients`` threads, each ticket's key its number."""
    sent = Sent()
    numbers = iter(range(tickets))
    take = threading.Lock()

    def one(client: Client, number: int) -> None:
        body = json.dumps(
            {
                "subject": subject(run, number),
                "description": f"Ticket {number} of the queue-drain benchmark, run {run}.",
                "requester_email": f"user{number % 97}@example.com",
            }
        ).encode()
        for _attempt in range(6):
            if time.monotonic() > deadline:
                break
            try:
                status, answer = client.call(
                    "POST", "/requests", body, **{"Idempotency-Key": f"{run}-{number}", "Prefer": "respond-async"}
                )
            except (OSError, http.client.HTTPException):
                # No answer (a killed worker): the same key again is what the key is for.
                with sent.lock:
                    sent.resent += 1
                time.sleep(0.5)
                continue
            with sent.lock:
                sent.statuses[status] += 1
                if status == 202 and isinstance(answer, dict):
                    sent.refs[number] = str(answer["request_ref"])
                elif status == 201 and isinstance(answer, dict):
                    sent.created[number] = str(answer["zoho_ticket_id"])
                else:
                    sent.others.append(f"#{number}: HTTP {status} {str(answer)[:160]}")
            return
        with sent.lock:
            sent.unsent.append(number)

    def loop() -> None:
        client = Client(url)
        try:
            while True:
                with take:
                    number = next(numbers, None)
                if number is None:
                    return
                one(client, number)
        finally:
            client.close()

    threads = [threading.Thread(target=loop, name=f"client-{n}", daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 5)
    return sent


# --- the drain ------------------------------------------------------------------------------------


class Killer(threading.Thread):
    """SIGKILLs every worker of ``gateway`` every ``every`` seconds until stopped; counts what it killed."""

    def __init__(self, gateway: Service, every: float) -> None:
        super().__init__(name="killer", daemon=True)
        self._gateway = gateway
        self._every = every
        self._halt = threading.Event()
        self.rounds = 0
        self.killed = 0

    def run(self) -> None:
        while not self._halt.wait(self._every):
            pids = self._gateway.worker_pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.killed += 1
                except ProcessLookupError:
                    pass
            self.rounds += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def pending(gateway: Service) -> int | None:
    """The outbox's pending count from ``/readyz`` (None when no worker answered)."""
    try:
        _, body = loopback("GET", f"{gateway.url}/readyz", timeout=5)
    except (OSError, http.client.HTTPException):
        return None
    if isinstance(body, dict) and isinstance(body.get("queue"), dict):
        value = body["queue"].get("pending")
        return value if isinstance(value, int) else None
    return None


Samples = list[tuple[float, int]]


def wait_drained(gateway: Service, since: float, limit: float, poll: float) -> tuple[float | None, Samples]:
    """Seconds from ``since`` (monotonic) until ``/readyz`` shows nothing pending; None past ``limit``.
    Also the pending count sampled about once a second, as (seconds since ``since``, pending)."""
    samples: Samples = []
    last_sample = -1.0
    while True:
        now = time.monotonic()
        if now - since > limit:
            return None, samples
        count = pending(gateway)
        if count is not None:
            if now - last_sample >= 1.0:
                samples.append((round(now - since, 1), count))
                last_sample = now
            if count == 0:
                return now - since, samples
        time.sleep(poll)


def longest_stall(samples: Samples) -> float:
    """The longest stretch, in seconds, over which the pending count did not fall (between samples)."""
    longest, since, last = 0.0, None, None
    for at, count in samples:
        if last is None or count < last:
            since, last = at, count
        elif since is not None:
            longest = max(longest, at - since)
    return round(longest, 1)


def outcomes(gateway: Service, refs: dict[int, str]) -> tuple[Counter[str], dict[int, str]]:
    """Each ref's final status (``GET /requests/<ref>``) and the ticket ids of the created ones."""
    client = Client(gateway.url)
    states: Counter[str] = Counter()
    ids: dict[int, str] = {}
    try:
        for number, ref in sorted(refs.items()):
            for _ in range(10):
                try:
                    status, body = client.call("GET", f"/requests/{ref}")
                    break
                except (OSError, http.client.HTTPException):
                    time.sleep(0.5)
            else:
                states["unreadable"] += 1
                continue
            state = body.get("status") if isinstance(body, dict) else f"HTTP {status}"
            states[str(state)] += 1
            if state == "created" and isinstance(body, dict):
                ids[number] = str(body["zoho_ticket_id"])
    finally:
        client.close()
    return states, ids


def metric_totals(gateway: Service, key: str) -> dict[str, float]:
    """The outbox counters of ``/metrics`` (summed over every worker, the killed ones included)."""
    conn = http.client.HTTPConnection(HOST, int(gateway.url.rsplit(":", 1)[1]), timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
        answer = conn.getresponse()
        text = answer.read().decode()
        if answer.status != 200:
            say(f"/metrics answered HTTP {answer.status}: no deliveries or reconciliations to report")
    finally:
        conn.close()
    totals: dict[str, float] = {}
    names = "outbox_deliveries|outbox_reconciliations|upstream_calls|upstream_retries"
    pattern = re.compile(rf"^gateway_({names})_total\{{([^}}]*)\}} ([0-9.e+]+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            name = f"{match.group(1)}{{{match.group(2)}}}"
            totals[name] = totals.get(name, 0.0) + float(match.group(3))
    return totals


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"nproc": str(os.cpu_count() or 0), "model": model}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"


# --- the run --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.queue_drain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=None, help="keyed creates to send (default 1000; quick 200)")
    parser.add_argument("--clients", type=int, default=50, help="client threads (default 50)")
    parser.add_argument("--outage", type=float, default=None, help="seconds Zoho is down (default 60; quick 15)")
    parser.add_argument(
        "--kill-every", type=float, default=5.0, help="seconds between worker kills; 0: none (default 5)"
    )
    parser.add_argument("--lost", type=float, default=0.2, help="share of creates whose answer is lost (0.2)")
    parser.add_argument("--lost-kind", choices=LOST_KINDS, default="reset_after_commit", help="how it is lost")
    parser.add_argument("--hang-seconds", type=float, default=15.0, help="hang_after_commit's hang (default 15)")
    parser.add_argument("--latency-ms", type=int, default=100, help="sandbox latency of every SDP call (100)")
    parser.add_argument("--concurrency", type=int, default=4, help="GATEWAY_DELIVERY_CONCURRENCY (default 4)")
    parser.add_argument("--workers", type=int, default=None, help="WEB_CONCURRENCY (default: gunicorn.conf.py's)")
    parser.add_argument("--lease", type=float, default=None, help="GATEWAY_DELIVERY_LEASE (default: the safe one)")
    parser.add_argument("--ref-field", action="store_true", help=f"ZOHO_REF_FIELD={REF_FIELD} (default: by content)")
    parser.add_argument("--state", choices=("sqlite", "redis"), default="sqlite", help="state store (default sqlite)")
    parser.add_argument("--drain-limit", type=float, default=2400.0, help="give up on the drain after (2400 s)")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between /readyz polls (0.25)")
    parser.add_argument("--quick", action="store_true", help="a sanity run: 200 tickets, 15 s outage")
    parser.add_argument(
        "--rev",
        default="HEAD",
        help="git revision to serve (gateway and sandbox), unpacked apart; 'worktree': this tree (default HEAD)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, state)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return parser


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    tickets = args.tickets if args.tickets is not None else (200 if args.quick else 1000)
    outage = args.outage if args.outage is not None else (15.0 if args.quick else 60.0)
    run_id = time.strftime("qd%H%M%S")
    load_before = uptime()
    workdir = Path(tempfile.mkdtemp(prefix="zgw-queue-drain-"))
    say(f"working directory {workdir}; {load_before}")
    figures: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench.queue_drain", *argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": machine(),
        "load_before": load_before,
        "tickets": tickets,
        "clients": args.clients,
        "outage_s": outage,
        "kill_every_s": args.kill_every,
        "lost": args.lost,
        "lost_kind": args.lost_kind,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "state": args.state,
        "ref_field": REF_FIELD if args.ref_field else None,
    }
    failures: list[str] = []
    try:
        if args.rev == "worktree":
            root, figures["revision"] = REPO, "working tree"
        else:
            tree = checkout(args.rev, workdir)
            root, figures["revision"] = tree.root, f"{tree.short} ({tree.subject[:60]})"
        say(f"serving {figures['revision']}")
        servers = DrainServers(workdir, root)
        with servers:
            sandbox = servers.zoho(latency_ms=args.latency_ms)
            if args.state == "redis":
                state_url = f"{servers.redis().url.rsplit('/', 1)[0]}/0"
            else:
                state_url = f"sqlite:///{workdir / 'gateway-state.db'}"
            env = {"GATEWAY_DELIVERY_CONCURRENCY": str(args.concurrency)}
            if args.lease is not None:
                env["GATEWAY_DELIVERY_LEASE"] = f"{args.lease:g}"
            if args.ref_field:
                env["ZOHO_REF_FIELD"] = REF_FIELD
            gateway = servers.queue_gateway(sandbox, state_url, env, args.workers)
            expected = args.workers or (os.cpu_count() or 1) + 1
            give_up = time.monotonic() + 30
            while len(gateway.worker_pids()) < expected and time.monotonic() < give_up:
                time.sleep(0.1)
            figures["workers"] = len(gateway.worker_pids())
            # A gateway in service holds a token before Zoho goes down: one read mints it (the id is unknown: 404).
            warm = Client(gateway.url)
            status, body = warm.call("GET", "/requests/1")
            warm.close()
            if status != 404:
                raise ServerError(f"the warm-up read answered HTTP {status} {body!r}, not Zoho's 404")
            lost = {"target": "create", "kind": args.lost_kind, "probability": args.lost}
            if args.lost_kind == "status_after_commit":
                lost["status"] = 502
            if args.lost_kind == "hang_after_commit":
                lost["seconds"] = args.hang_seconds

            # 1. Zoho down; the clients queue their tickets.
            for fault in OUTAGE_FAULTS:
                sandbox_call(sandbox, "POST", "/_sandbox/faults", fault)
            sandbox_call(sandbox, "POST", "/_sandbox/faults", lost)
            down_at = time.monotonic()
            say(f"Zoho down for {outage:g} s; {args.clients} clients send {tickets} keyed respond-async creates")
            sent = send_creates(gateway.url, run_id, tickets, args.clients, deadline=down_at + outage + 300)
            figures["clients_s"] = round(time.monotonic() - down_at, 1)
            say(f"clients done in {figures['clients_s']} s: {dict(sent.statuses)}")
            if time.monotonic() < down_at + outage:
                time.sleep(down_at + outage - time.monotonic())
            else:
                failures.append("the clients outlasted the outage: some creates were sent with Zoho back")

            # 2. Zoho back (the lost-answer fault stays); every worker killed every few seconds.
            sandbox_call(sandbox, "DELETE", "/_sandbox/faults")
            sandbox_call(sandbox, "POST", "/_sandbox/faults", lost)
            back_at = time.monotonic()
            at_return_stats = sandbox_call(sandbox, "GET", "/_sandbox/stats")
            fired_at_return = int(at_return_stats["faults_fired"])
            figures["create_calls_outage"] = at_return_stats["create_calls"]
            outage_peak = sandbox_call(sandbox, "POST", "/_sandbox/stats/peaks")["peaks"]["create"]
            at_return = pending(gateway)
            kills = f"killing every worker every {args.kill_every:g} s" if args.kill_every > 0 else "no kills"
            say(f"Zoho back; {at_return} pending; {kills}")
            killer = Killer(gateway, args.kill_every)
            if args.kill_every > 0:
                killer.start()
            try:
                drain, samples = wait_drained(gateway, back_at, args.drain_limit, args.poll)
            finally:
                if args.kill_every > 0:
                    killer.stop()
            say(f"drained in {drain} s" if drain is not None else "NOT drained within the limit")
            if drain is None:
                failures.append(f"the backlog did not drain within {args.drain_limit:g} s")
            # Let the last workers come back before reading the outcomes.
            give_up = time.monotonic() + 30
            while pending(gateway) is None and time.monotonic() < give_up:
                time.sleep(0.2)

            # 3. What happened.
            stats = sandbox_call(sandbox, "GET", "/_sandbox/stats")
            listed = sandbox_call(sandbox, "GET", "/_sandbox/tickets")
            stored = listed["tickets"] if isinstance(listed, dict) else listed
            states, ids = outcomes(gateway, sent.refs)
            totals = metric_totals(gateway, OPS_KEY if servers.scoped_keys() else API_KEY)
            log_file = Path(gateway.extra["log_file"])
            log_text = log_file.read_text(errors="replace") if log_file.exists() else ""
            figures["lapsed_claims"] = log_text.count('"outbox_lapsed"')
            figures["error_lines"] = sum(
                1
                for line in log_text.splitlines()
                if '"levelname": "ERROR"' in line and '"name": "zoho_gateway.access"' not in line
            )
            figures["longest_stall_s"] = longest_stall(samples)
            figures["gateway_log_lines"] = log_text.count("\n")

            subjects = Counter(str(t.get("subject")) for t in stored)
            ours = {subject(run_id, n) for n in range(tickets)}
            doubled = sorted(s for s, n in subjects.items() if n > 1)
            missing = sorted(ours - set(subjects))
            foreign = sorted(set(subjects) - ours)
            by_subject = {str(t.get("subject")): str(t.get("id")) for t in stored}
            wrong_ids = [n for n, tid in {**ids, **sent.created}.items() if by_subject.get(subject(run_id, n)) != tid]
            figures.update(
                {
                    "answers": {str(k): v for k, v in sorted(sent.statuses.items())},
                    "answers_other": sent.others[:20],
                    "client_resends": sent.resent,
                    "unsent": len(sent.unsent),
                    "pending_at_return": at_return,
                    "drain_s": None if drain is None else round(drain, 1),
                    "pending_samples": samples,
                    "kill_rounds": killer.rounds,
                    "workers_killed": killer.killed,
                    "peak_in_flight_outage": outage_peak,
                    "peak_in_flight_drain": stats.get("create_in_flight_peak"),
                    "sandbox_tickets": stats.get("tickets"),
                    "doubled_subjects": doubled[:20],
                    "doubled_count": sum(subjects[s] - 1 for s in doubled),
                    "missing_count": len(missing),
                    "missing": missing[:20],
                    "foreign_count": len(foreign),
                    "refs_by_status": dict(states),
                    "created_at_once_201": len(sent.created),
                    "ids_not_matching_ticket": wrong_ids[:20],
                    "create_calls": stats.get("create_calls"),
                    "creates_committed": stats.get("creates"),
                    "list_calls": stats.get("list_calls"),
                    "lost_answers": int(stats.get("faults_fired", 0)) - fired_at_return,
                    "token_calls": stats.get("token_calls"),
                    "metrics": totals,
                }
            )
            if stats.get("tickets") != tickets or doubled or missing:
                failures.append(
                    f"Zoho holds {stats.get('tickets')} tickets for {tickets} creates "
                    f"({len(missing)} missing, {figures['doubled_count']} doubled)"
                )
            if sent.others or sent.unsent:
                failures.append(f"{len(sent.others)} answers other than 201/202, {len(sent.unsent)} never answered")
            if wrong_ids:
                failures.append(f"{len(wrong_ids)} refs name another ticket than the one with their subject")
    finally:
        figures["load_after"] = uptime()
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    figures["failures"] = failures
    print(table(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if failures else 0


def table(f: dict[str, Any]) -> str:
    m = f.get("metrics", {})
    every = f["kill_every_s"]
    kills = f"all {f.get('workers')} workers SIGKILLed every {every:g} s" if every > 0 else "no worker kills"

    def metric(prefix: str) -> str:
        labelled = sorted((k, v) for k, v in m.items() if k.startswith(prefix))
        parts = [f"{LABEL_VALUE.findall(k)[-1]} {v:g}" for k, v in labelled]
        return ", ".join(parts) or "-"

    rows = [
        ("date", f["date"]),
        ("revision", f.get("revision")),
        ("machine", f"{f['machine']['nproc']} cores, {f['machine']['model']}"),
        ("load before", f["load_before"].split("load average:")[-1].strip()),
        ("load after", f.get("load_after", "").split("load average:")[-1].strip()),
        (
            "scenario",
            f"{f['tickets']} tickets, {f['clients']} clients, Zoho down {f['outage_s']:g} s, {kills}, "
            f"{f['lost']:.0%} {f['lost_kind']}, "
            f"latency {f['latency_ms']} ms, concurrency {f['concurrency']}, {f['state']}, "
            f"ref field {f['ref_field'] or 'none (content match)'}",
        ),
        ("client answers", f"{f.get('answers')} in {f.get('clients_s')} s; resent {f.get('client_resends')}"),
        ("pending at Zoho's return", f.get("pending_at_return")),
        ("drain time (Zoho back -> last settled)", f"{f.get('drain_s')} s"),
        ("kill rounds / workers killed", f"{f.get('kill_rounds')} / {f.get('workers_killed')}"),
        ("peak creates in flight at Zoho, outage", f.get("peak_in_flight_outage")),
        ("peak creates in flight at Zoho, drain", f.get("peak_in_flight_drain")),
        (
            "tickets in Zoho",
            f"{f.get('sandbox_tickets')} (missing {f.get('missing_count')}, doubled {f.get('doubled_count')})",
        ),
        ("refs by status", f.get("refs_by_status")),
        (
            "create calls / committed / answers lost",
            f"{f.get('create_calls')} ({f.get('create_calls_outage')} in the outage) / {f.get('creates_committed')}"
            f" / {f.get('lost_answers')}",
        ),
        ("search (list) calls", f.get("list_calls")),
        ("creates as the gateway saw them", metric('upstream_calls{operation="create"') or "-"),
        ("deliveries", metric("outbox_deliveries")),
        ("reconciliations", metric("outbox_reconciliations")),
        ("longest stretch with no item settled", f"{f.get('longest_stall_s')} s"),
        ("lapsed claims taken over", f.get("lapsed_claims")),
        ("gateway ERROR lines (not access)", f.get("error_lines")),
        ("failures", "; ".join(f.get("failures", [])) or "none"),
        ("command", f["command"]),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    os.chdir(REPO)
    # SIGTERM, and SIGINT even where a shell started us in the background with it ignored, stop the run
    # through its clean-up: every process it started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return run(args, argv)
    except KeyboardInterrupt as exc:
        say(f"interrupted ({exc}); everything started was stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
