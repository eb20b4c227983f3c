"""The ticket read cache (TTL, single-flight in a process and across gunicorn workers), ETags, and /metrics.

Real sockets only: gateways in a thread (werkzeug) or under gunicorn, calling the Zoho sandbox that runs in
this process. What reached Zoho is read from the sandbox's counters (``get_calls`` counts every GET that
arrived, failed ones included). No timing assertions: counts and behaviour only. ``pytest -s`` prints the
measured numbers; the module prints a summary at the end.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import TICKET, burst, create, get
from tests.measured import Measurements
from tests.servers import GunicornGateway, GunicornStarter, Sandbox, Starter

TECHNICIAN = {"name": "Ada Lovelace", "email_id": "ada@example.com"}
UNKNOWN_ID = "999999999"
#: Longer than the 2 s TTL used below, so that every local and shared copy has lapsed.
PAST_TTL = 2.2

report = Measurements("cache-metrics")
_summary = report.summary_fixture()


# --- helpers -------------------------------------------------------------------------------------------


def get_calls(sandbox: Sandbox) -> int:
    """Every GET of a ticket that reached the sandbox (faulted and failed ones included)."""
    return int(sandbox.stats()["get_calls"])


def start_gunicorns(make_gunicorn: GunicornStarter, *specs: dict[str, Any]) -> list[GunicornGateway]:
    """Start several gunicorns at once (their boots overlap), then wait until each is healthy."""
    servers = [make_gunicorn(wait=False, **spec) for spec in specs]
    for server in servers:
        server.wait_healthy()
    return servers


# --- 1. TTL --------------------------------------------------------------------------------------------


def test_cache_ttl_bounds_upstream_gets_and_staleness(sandbox: Sandbox, make_gateway: Starter) -> None:
    uncached = make_gateway()  # TTL 0 (base_env): creates here prime no cache of the gateway under test
    cached = make_gateway(GATEWAY_CACHE_TTL="2")
    ticket_id = create(uncached.url)
    before = get_calls(sandbox)

    first = [get(cached.url, ticket_id) for _ in range(10)]
    assert {r.status_code for r in first} == {200}
    assert get_calls(sandbox) - before == 1, "ten reads within the TTL must cost one upstream GET"

    # An agent assigns the ticket in Zoho; within the TTL the gateway may still answer the old copy.
    sandbox.patch_ticket(ticket_id, technician=TECHNICIAN)
    within = get(cached.url, ticket_id)
    assert within.json()["technician_assigned"] == "Unassigned"
    assert get_calls(sandbox) - before == 1

    time.sleep(PAST_TTL)
    after = get(cached.url, ticket_id)
    assert after.status_code == 200
    assert after.json()["technician_assigned"] == TECHNICIAN["name"]
    assert after.json()["technician_contact_email"] == TECHNICIAN["email_id"]
    assert get_calls(sandbox) - before == 2, "the first read after the TTL goes upstream once"
    assert get(cached.url, ticket_id).status_code == 200
    assert get_calls(sandbox) - before == 2

    # TTL 0: no cache at all, every read goes upstream.
    base = get_calls(sandbox)
    for _ in range(5):
        answer = get(uncached.url, ticket_id)
        assert answer.status_code == 200
        assert answer.json()["technician_assigned"] == TECHNICIAN["name"]
    assert get_calls(sandbox) - base == 5
    report("ttl", reads_within_ttl=11, upstream_gets_within_ttl=1, ttl0_reads=5, ttl0_upstream_gets=5)


# --- 2. single-flight in one process, errors not cached ------------------------------------------------


def test_single_flight_in_one_process(sandbox: Sandbox, make_gateway: Starter) -> None:
    uncached = make_gateway()
    cached = make_gateway(GATEWAY_CACHE_TTL="2")
    ticket_id = create(uncached.url)
    assert get(cached.url, UNKNOWN_ID).status_code == 404  # mints the token: the burst below measures reads only
    before = get_calls(sandbox)

    sandbox.fault(target="get", kind="delay", seconds=0.5, times=1)
    answers = burst(lambda _i: get(cached.url, ticket_id), total=50, threads=50)
    upstream = get_calls(sandbox) - before
    report("single-flight, one process", client_gets=50, upstream_gets=upstream)
    assert [r.status_code for r in answers] == [200] * 50
    assert len({r.content for r in answers}) == 1
    assert answers[0].json()["ticket_id"] == ticket_id
    assert len({r.headers["ETag"] for r in answers}) == 1
    assert upstream == 1

    # Errors are never cached: an unknown id asked twice goes upstream twice.
    before = get_calls(sandbox)
    for _ in range(2):
        missing = get(cached.url, UNKNOWN_ID)
        assert missing.status_code == 404
        assert missing.json()["details"]["code"] == "ticket_not_found"
    assert get_calls(sandbox) - before == 2

    # The leader's upstream failure reaches its followers (one upstream call), and is not cached.
    other_id = create(uncached.url)
    sandbox.settings(latency_ms=600)  # keeps the leader's GET in flight while the followers arrive
    sandbox.fault(target="get", kind="status", status=500, times=1)
    before = get_calls(sandbox)
    failed = burst(lambda _i: get(cached.url, other_id), total=20, threads=20)
    upstream = get_calls(sandbox) - before
    sandbox.settings(latency_ms=0)
    report("leader failure", client_gets=20, upstream_gets=upstream, statuses=sorted({r.status_code for r in failed}))
    assert [r.status_code for r in failed] == [502] * 20
    assert {r.json()["details"]["code"] for r in failed} == {"zoho_bad_response"}
    assert len({r.json()["details"]["request_id"] for r in failed}) == 20, "each follower keeps its own request id"
    assert upstream == 1
    recovered = get(cached.url, other_id)
    assert recovered.status_code == 200
    assert recovered.json()["ticket_id"] == other_id
    assert get_calls(sandbox) - before == 2


# --- 3. single-flight across gunicorn workers ----------------------------------------------------------


def test_single_flight_across_workers(
    sandbox: Sandbox, make_gateway: Starter, make_gunicorn: GunicornStarter
) -> None:
    server = make_gunicorn(workers=4, GATEWAY_CACHE_TTL="5")
    ticket_id = create(make_gateway().url)  # created elsewhere, so no worker has it cached
    assert get(server.url, UNKNOWN_ID).status_code == 404  # token minted and stored before the burst
    sandbox.fault(target="get", kind="delay", seconds=0.3)  # every upstream GET is slow, until cleared
    before = get_calls(sandbox)
    answers = burst(lambda _i: get(server.url, ticket_id), total=100, threads=64)
    upstream = get_calls(sandbox) - before
    sandbox.clear_faults()
    report("single-flight, 4 gunicorn workers", client_gets=100, upstream_gets=upstream)
    assert [r.status_code for r in answers] == [200] * 100
    assert len({r.content for r in answers}) == 1
    assert upstream <= 2, f"{upstream} upstream GETs for one ticket across 4 workers"


# --- 4. one hundred pollers ----------------------------------------------------------------------------


def test_hundred_pollers_cost_few_upstream_gets(sandbox: Sandbox, make_gunicorn: GunicornStarter) -> None:
    server = make_gunicorn(workers=4, GATEWAY_CACHE_TTL="2")
    ticket_id = create(server.url)
    before = get_calls(sandbox)
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    gate = threading.Event()
    duration = 4.0

    def poll() -> None:
        seen: dict[int, int] = {}
        with requests.Session() as http:
            gate.wait()
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                status = http.get(f"{server.url}/requests/{ticket_id}", timeout=15).status_code
                seen[status] = seen.get(status, 0) + 1
        with lock:
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=poll) for _ in range(100)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    client_gets = sum(statuses.values())
    upstream = get_calls(sandbox) - before
    ratio = upstream / client_gets
    report("100 pollers, 4 s, TTL 2", client_gets=client_gets, upstream_gets=upstream, ratio=f"{ratio:.5f}")
    assert statuses == {200: client_gets}
    assert client_gets >= 100
    assert ratio <= 0.01


# --- 5. ETag / If-None-Match -------------------------------------------------------------------------


def test_etag_and_conditional_get(sandbox: Sandbox, make_gateway: Starter) -> None:
    cached = make_gateway(GATEWAY_CACHE_TTL="2")
    uncached = make_gateway()
    ticket_id = create(cached.url)

    first = get(cached.url, ticket_id)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    assert first.headers["Cache-Control"] == "private, max-age=2"

    not_modified = get(cached.url, ticket_id, {"If-None-Match": etag, "X-Request-ID": "etag-check-1"})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert not_modified.headers["X-Request-ID"] == "etag-check-1"
    assert not_modified.headers["Cache-Control"] == "private, max-age=2"

    for header in (f"W/{etag}", f'"not-it", {etag}', f'W/"x", W/{etag}', "*"):
        assert get(cached.url, ticket_id, {"If-None-Match": header}).status_code == 304, header
    for header in ('"not-it"', f'"{etag.strip(chr(34))}x"', '"a", "b"'):
        answer = get(cached.url, ticket_id, {"If-None-Match": header})
        assert answer.status_code == 200, header
        assert answer.headers["ETag"] == etag

    # With the cache off the answer says so, and the ETag (derived from the content) is the same.
    plain = get(uncached.url, ticket_id)
    assert plain.headers["Cache-Control"] == "no-cache"
    assert plain.headers["ETag"] == etag
    assert get(uncached.url, ticket_id, {"If-None-Match": etag}).status_code == 304

    # The ticket changes: the old ETag no longer matches, a full answer with a new ETag comes back.
    sandbox.patch_ticket(ticket_id, technician=TECHNICIAN)
    changed = get(uncached.url, ticket_id, {"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["technician_assigned"] == TECHNICIAN["name"]
    assert changed.headers["ETag"] != etag
    assert get(uncached.url, ticket_id, {"If-None-Match": changed.headers["ETag"]}).status_code == 304


# --- 6. a create primes the cache with the fresh ticket --------------------------------------------------


def test_create_primes_the_cache_with_the_fresh_ticket(sandbox: Sandbox, make_gateway: Starter) -> None:
    cached = make_gateway(GATEWAY_CACHE_TTL="2")
    before = sandbox.stats()
    ticket_id = create(cached.url)
    fresh = get(cached.url, ticket_id)
    after = sandbox.stats()
    assert fresh.status_code == 200
    assert fresh.json() == {
        "ticket_id": ticket_id,
        "status": "Open",
        "technician_assigned": "Unassigned",
        "technician_contact_email": None,
        "technician_comments": None,
    }
    assert after["create_calls"] - before["create_calls"] == 1
    assert after["get_calls"] - before["get_calls"] == 0, "the create's answer should serve the first poll"

    sandbox.patch_ticket(ticket_id, technician=TECHNICIAN, status="In Progress", resolution="Replaced the token")
    time.sleep(PAST_TTL)
    later = get(cached.url, ticket_id)
    assert later.json() == {
        "ticket_id": ticket_id,
        "status": "In Progress",
        "technician_assigned": TECHNICIAN["name"],
        "technician_contact_email": TECHNICIAN["email_id"],
        "technician_comments": "Replaced the token",
    }
    assert sandbox.stats()["get_calls"] - before["get_calls"] == 1


# --- 7. /metrics across gunicorn workers ------------------------------------------------------------------

MAIN_KEY = "main-key-0123456789abcdef"
OPS_KEY = "ops-key-0123456789abcdef"
KEYS = f"main={MAIN_KEY},ops[admin]={OPS_KEY}"  # /metrics needs the admin scope


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    answer = requests.get(f"{url}/metrics", headers={"X-API-Key": OPS_KEY}, timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return found


def value(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for have, v in metrics.get(name, []) if all(have.get(k) == want for k, want in labels.items()))


def test_metrics_sum_across_workers(
    sandbox: Sandbox, make_gateway: Starter, make_gunicorn: GunicornStarter, tmp_path: Path
) -> None:
    main, limited = start_gunicorns(
        make_gunicorn,
        {"workers": 4, "GATEWAY_CACHE_TTL": "2", "GATEWAY_API_KEYS": KEYS},
        {
            "workers": 2,
            "GATEWAY_API_KEYS": KEYS,
            "GATEWAY_RATE_LIMIT": "3/minute",
            "GATEWAY_STATE_URL": f"sqlite:///{tmp_path}/limited.db",
        },
    )
    auth = {"Authorization": f"Bearer {MAIN_KEY}"}
    cold_id = create(make_gateway().url)  # a ticket main's cache has never seen
    sandbox_before = sandbox.stats()

    # /metrics is not public: with keys configured it needs one, like every non-probe route.
    assert requests.get(f"{main.url}/metrics", timeout=15).status_code == 401

    ids = [create(main.url, headers=auth) for _ in range(3)]
    idem = {**auth, "Idempotency-Key": "metrics-test-key-1"}
    first = requests.post(f"{main.url}/requests", json=TICKET, headers=idem, timeout=15)
    replay = requests.post(f"{main.url}/requests", json=TICKET, headers=idem, timeout=15)
    assert first.status_code == replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
    invalid = requests.post(f"{main.url}/requests", json={"subject": "x"}, headers=auth, timeout=15)
    assert invalid.status_code == 422

    hot = [get(main.url, ids[0], auth) for _ in range(5)]  # primed by the create: all cache hits
    assert [r.status_code for r in hot] == [200] * 5
    assert get(main.url, ids[0], {**auth, "If-None-Match": hot[0].headers["ETag"]}).status_code == 304
    assert get(main.url, UNKNOWN_ID, auth).status_code == 404
    sandbox.fault(target="get", kind="status", status=503, times=1)
    assert get(main.url, cold_id, auth).status_code == 200  # 503, retried, 200
    assert get(main.url, cold_id, auth).status_code == 200  # now cached
    assert get(main.url, ids[1]).status_code == 401  # no key: refused before any upstream call
    sandbox_after = sandbox.stats()

    metrics = scrape(main.url)
    requests_total = "gateway_requests_total"
    post = {"route": "/requests", "method": "POST"}
    read = {"route": "/requests/<ticket_id>", "method": "GET"}
    assert value(metrics, requests_total, **post, status="201") == 5
    assert value(metrics, requests_total, **post, status="422") == 1
    assert value(metrics, requests_total, **post) == 6
    assert value(metrics, requests_total, **read, status="200") == 7
    assert value(metrics, requests_total, **read, status="304") == 1
    assert value(metrics, requests_total, **read, status="404") == 1
    assert value(metrics, requests_total, **read, status="401") == 1
    assert value(metrics, requests_total, **read) == 10
    assert value(metrics, requests_total, route="/metrics", status="401") == 1

    upstream = "gateway_upstream_calls_total"
    assert value(metrics, upstream, operation="create", outcome="201") == 4
    assert (
        value(metrics, upstream, operation="create") == sandbox_after["create_calls"] - sandbox_before["create_calls"]
    )
    assert value(metrics, upstream, operation="get", outcome="200") == 1
    assert value(metrics, upstream, operation="get", outcome="404") == 1
    assert value(metrics, upstream, operation="get", outcome="503") == 1
    assert value(metrics, upstream, operation="get") == sandbox_after["get_calls"] - sandbox_before["get_calls"] == 3
    assert value(metrics, "gateway_upstream_retries_total", operation="get") == 1
    assert value(metrics, "gateway_upstream_retries_total") == 1
    assert value(metrics, "gateway_token_mints_total", outcome="minted") == 1
    assert value(metrics, "gateway_token_mints_total") == 1
    hits = value(metrics, "gateway_cache_total", result="hit")
    misses = value(metrics, "gateway_cache_total", result="miss")
    assert (hits, misses) == (7, 2)  # hits: 5 primed + a 304 + the cold ticket's second read
    assert value(metrics, "gateway_idempotent_replays_total") == 1
    assert value(metrics, "gateway_rate_limited_total") == 0
    assert value(metrics, "gateway_request_seconds_count", route="/requests") == 6
    assert value(metrics, "gateway_request_seconds_count", route="/requests/<ticket_id>") == 10
    assert value(metrics, "gateway_request_seconds_bucket", route="/requests", le="+Inf") == 6
    assert value(metrics, "gateway_upstream_seconds_count", operation="get") == 3
    assert value(metrics, "gateway_upstream_seconds_bucket", operation="create", le="+Inf") == 4
    # Each process that counted something left its own file: the totals above are sums over these.
    multiproc = Path(main.env["PROMETHEUS_MULTIPROC_DIR"])
    pids = {path.stem.rsplit("_", 1)[-1] for path in multiproc.glob("counter_*.db")}
    counting_workers = pids & {str(pid) for pid in main.worker_pids()}
    report(
        "metrics, 4 workers",
        requests_posts=6,
        requests_gets=10,
        cache_hits=int(hits),
        cache_misses=int(misses),
        upstream_gets=3,
        worker_pids=len(main.worker_pids()),
        workers_that_counted=f"{len(counting_workers)}/4",
    )

    # The rate limit, on a gunicorn of its own (3 per minute per client): refusals are counted.
    statuses = [
        requests.post(f"{limited.url}/requests", json={"subject": "x"}, headers=auth, timeout=15).status_code
        for _ in range(6)
    ]
    refused = statuses.count(429)
    assert set(statuses) <= {422, 429}
    assert refused >= 1  # 3 when no minute boundary falls inside the loop
    limited_metrics = scrape(limited.url)  # another client: its own budget
    assert value(limited_metrics, "gateway_rate_limited_total") == refused
    assert value(limited_metrics, requests_total, route="/requests", method="POST", status="429") == refused
    assert value(limited_metrics, requests_total, route="/requests", method="POST", status="422") == 6 - refused
    report("rate limit 3/minute", sent=6, refused=refused)


def test_age_header_says_how_old_a_cached_answer_is(sandbox: Sandbox, make_gateway: Starter) -> None:
    gateway = make_gateway(GATEWAY_CACHE_TTL="3")
    ticket_id = create(gateway.url)
    time.sleep(1.2)
    answer = get(gateway.url, ticket_id)
    assert answer.status_code == 200
    # Primed by the create 1.2 s ago: a client cache may keep it only for what is left of max-age.
    assert answer.headers["Cache-Control"] == "private, max-age=3"
    assert 1 <= int(answer.headers["Age"]) <= 3


def test_metrics_scrapes_do_not_count_against_the_rate_limit(sandbox: Sandbox, make_gateway: Starter) -> None:
    gateway = make_gateway(GATEWAY_RATE_LIMIT="2/minute")
    scrapes = [requests.get(f"{gateway.url}/metrics", timeout=5).status_code for _ in range(4)]
    assert scrapes == [200, 200, 200, 200]
    ticket_id = create(gateway.url)  # the client's budget is untouched by the scrapes
    assert get(gateway.url, ticket_id).status_code == 200
    assert get(gateway.url, ticket_id).status_code == 429


def test_a_wrong_method_on_a_real_route_is_counted_under_that_route(
    sandbox: Sandbox, make_gateway: Starter
) -> None:
    gateway = make_gateway()
    assert requests.delete(f"{gateway.url}/requests/123", timeout=5).status_code == 405
    assert requests.put(f"{gateway.url}/requests", json=TICKET, timeout=5).status_code == 405
    assert requests.get(f"{gateway.url}/nowhere", timeout=5).status_code == 404
    metrics = scrape(gateway.url)
    total = "gateway_requests_total"
    assert value(metrics, total, route="/requests/<ticket_id>", method="DELETE", status="405") == 1
    assert value(metrics, total, route="/requests", method="PUT", status="405") == 1
    # Only a path that no route knows is "unmatched".
    assert value(metrics, total, route="unmatched") == 1
    assert value(metrics, total, route="unmatched", method="GET", status="404") == 1
