"""``GET /meta/priorities|statuses|categories|departments`` (issue 11 §7) over real sockets: the values from
Zoho, kept GATEWAY_META_TTL in the shared store (one read of Zoho per list for every worker and host)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.helpers import TIMEOUT, assert_error, burst, counters, delta
from tests.servers import Sandbox, Starter

LISTS = ("priorities", "statuses", "categories", "departments")


@pytest.mark.parametrize("kind", LISTS)
def test_each_list_answers_names_and_ids_and_is_read_from_zoho_once(
    make_gateway: Starter, sandbox: Sandbox, kind: str
) -> None:
    gateway = make_gateway()
    before = counters(sandbox)
    answers = burst(lambda _: requests.get(f"{gateway.url}/meta/{kind}", timeout=TIMEOUT), 8)
    assert [a.status_code for a in answers] == [200] * 8
    items = answers[0].json()["items"]
    assert set(answers[0].json()) == {"items"} and items
    assert all(set(item) == {"name", "id"} and item["name"] and item["id"].isdigit() for item in items)
    assert all(a.json() == answers[0].json() for a in answers)
    assert delta(before, sandbox).get("meta_calls") == 1  # single-flight: eight concurrent readers, one read
    if kind == "priorities":
        assert [item["name"] for item in items] == ["Low", "Medium", "Normal", "High", "Urgent"]


def test_the_lists_are_shared_by_every_gunicorn_worker_and_expire(make_gunicorn: Starter, sandbox: Sandbox) -> None:
    server = make_gunicorn(workers=2, threads=4, GATEWAY_META_TTL="1")
    before = counters(sandbox)
    for _ in range(3):
        answers = burst(lambda _: requests.get(f"{server.url}/meta/statuses", timeout=TIMEOUT), 12)
        assert {a.status_code for a in answers} == {200}
    assert delta(before, sandbox).get("meta_calls") == 1  # every worker read the one shared copy
    time.sleep(1.2)
    assert requests.get(f"{server.url}/meta/statuses", timeout=TIMEOUT).status_code == 200
    assert delta(before, sandbox).get("meta_calls") == 2  # past the TTL, Zoho once more


def test_meta_failures_are_not_kept(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(ZOHO_RETRY_BUDGET="0.5")
    sandbox.fault(target="meta", kind="status", status=503)
    assert_error(
        requests.get(f"{gateway.url}/meta/departments", timeout=TIMEOUT), 503, "zoho_unavailable", retry_after=True
    )
    sandbox.clear_faults()
    sandbox.fault(target="meta", kind="garbage")
    assert_error(requests.get(f"{gateway.url}/meta/departments", timeout=TIMEOUT), 502, "zoho_bad_response")
    sandbox.clear_faults()
    assert requests.get(f"{gateway.url}/meta/departments", timeout=TIMEOUT).status_code == 200
    assert_error(requests.get(f"{gateway.url}/meta/technicians", timeout=TIMEOUT), 404, "not_found")


def test_no_ttl_reads_zoho_every_time(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_META_TTL="0")
    before = counters(sandbox)
    for _ in range(2):
        assert requests.get(f"{gateway.url}/meta/priorities", timeout=TIMEOUT).status_code == 200
    assert delta(before, sandbox).get("meta_calls") == 2
