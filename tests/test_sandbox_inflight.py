"""The sandbox's gauge of create calls in flight (``create_in_flight``, ``create_in_flight_peak``) over real
sockets: it counts the whole handling of a create (latency, a fault, a hang after the commit), keeps its
peak until ``POST /_sandbox/stats/peaks`` or a reset, and leaves every counter as it was.

Creates are held in flight with a ``delay`` fault (or ``hang_after_commit``), and the waits poll the gauge.
"""

from __future__ import annotations

import threading

import requests

from tests.helpers import TIMEOUT, control, fault, mint, sdp_create, stats, wait_for
from tests.servers import Sandbox


def _in_background(sandbox: Sandbox, token: str, n: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=sdp_create, args=(sandbox, token), daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads


def test_creates_held_in_flight_are_gauged_and_their_peak_kept(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    before = stats(sandbox)
    assert (before["create_in_flight"], before["create_in_flight_peak"]) == (0, 0)
    fault(sandbox, target="create", kind="delay", seconds=1.5, times=3)
    threads = _in_background(sandbox, token, 3)
    assert wait_for(lambda: stats(sandbox)["create_in_flight"] == 3, timeout=TIMEOUT)
    for thread in threads:
        thread.join(TIMEOUT)
    after = stats(sandbox)
    assert (after["create_in_flight"], after["create_in_flight_peak"]) == (0, 3)
    # The counters are untouched: three calls, three tickets.
    assert (after["create_calls"], after["creates"], after["tickets"]) == (3, 3, 3)
    # A later single create leaves the peak at 3.
    assert sdp_create(sandbox, token).status_code == 201
    assert stats(sandbox)["create_in_flight_peak"] == 3


def test_a_create_that_commits_then_hangs_is_in_flight_until_it_answers(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="hang_after_commit", seconds=1.5, times=1)
    [thread] = _in_background(sandbox, token, 1)
    assert wait_for(lambda: stats(sandbox)["tickets"] == 1, timeout=TIMEOUT)
    assert stats(sandbox)["create_in_flight"] == 1  # committed, answer not yet sent
    thread.join(TIMEOUT)
    assert stats(sandbox)["create_in_flight"] == 0


def test_a_lost_answer_and_a_refused_create_leave_nothing_in_flight(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="reset_after_commit", times=1)
    try:
        sdp_create(sandbox, token)
    except requests.ConnectionError:
        pass
    fault(sandbox, target="create", kind="status", status=503, times=1)
    assert sdp_create(sandbox, token).status_code == 503
    assert sdp_create(sandbox, "not-a-token").status_code == 401
    now = stats(sandbox)
    assert (now["create_in_flight"], now["create_in_flight_peak"]) == (0, 1)
    assert (now["create_calls"], now["creates"]) == (3, 1)


def test_resetting_the_peaks_starts_them_from_the_calls_in_flight(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="delay", seconds=1.5, times=2)
    threads = _in_background(sandbox, token, 2)
    assert wait_for(lambda: stats(sandbox)["create_in_flight"] == 2, timeout=TIMEOUT)
    answer = control(sandbox, "POST", "stats/peaks")
    assert answer.status_code == 200 and answer.json() == {"peaks": {"create": 2}}
    for thread in threads:
        thread.join(TIMEOUT)
    # Started again from the two in flight at the reset; they ended since.
    assert control(sandbox, "POST", "stats/peaks").json() == {"peaks": {"create": 2}}
    assert stats(sandbox)["create_in_flight_peak"] == 0
    assert stats(sandbox)["create_calls"] == 2


def test_a_sandbox_reset_keeps_the_calls_in_flight(sandbox: Sandbox) -> None:
    token = mint(sandbox)
    fault(sandbox, target="create", kind="delay", seconds=1.5, times=1)
    [thread] = _in_background(sandbox, token, 1)
    assert wait_for(lambda: stats(sandbox)["create_in_flight"] == 1, timeout=TIMEOUT)
    # The reset cuts the delay short and zeroes the counters; the call still ends (answered 503), and the
    # gauge comes back to 0, never below. The peak starts from that call if it had not ended by the reset.
    sandbox.reset()
    thread.join(TIMEOUT)
    now = stats(sandbox)
    assert (now["create_in_flight"], now["create_calls"]) == (0, 0)
    assert now["create_in_flight_peak"] in (0, 1)
