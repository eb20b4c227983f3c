"""Delivery: moving an outbox item one Zoho call forward, and the deliverers that do it in the background.

``Engine.advance`` is the one rule for what to do with an item, used alike by the request that accepted
it and by a deliverer that claimed it:

- ``queued``: write ``sending`` (the recovery point), then create. Created: settled. Refused: ``failed``
  with the error a synchronous create gets. Not sent (Zoho unreachable, 503/429, no token): queued again
  after a back-off. No usable answer: ``unknown``.
- ``sending`` or ``unknown``: a send may have reached Zoho, so never send blindly: search
  (``find_created``), at least ``reconcile_delay`` after the send. One ticket: ``created``; none: queued
  to be sent again; several: ``needs_review``; the search failing: unknown, searched again later.

Back-off is exponential, jittered, capped at ``BACKOFF_CAP``, never shorter than Zoho's ``Retry-After``
or the shared token back-off (both arrive as the error's ``retry_after``). An outage also pauses every
deliverer of the cluster (``Pause``), so a backlog does not knock on a Zoho that is down. An item that
keeps failing for ``max_age`` ends ``failed`` with its last error (``needs_review`` if a send may have
reached Zoho): nothing stays pending forever.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ..context import request_id
from ..errors import GatewayError, ZohoAuthFailed, ZohoBadResponse, ZohoRejected, ZohoUnavailable
from ..metrics import Metrics
from ..state.base import Store, StoreUnavailable
from ..state.queue import Claimed
from ..zoho.model import NewTicket, Ticket
from .outbox import MAYBE_SENT, ClaimHold, Hold, Item, Outbox, failure_record, short_error
from .owners import TicketOwners

log = logging.getLogger("zoho_gateway.delivery")

#: The first back-off after a transient failure, and the ceiling (the issue's "about 5 minutes").
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
#: Steps one claim may take (search, send, search...) before the item is let go for others' turn.
MAX_STEPS = 4

Verdict = Literal["not_sent", "maybe", "refused"]


class TicketMaker(Protocol):
    """What delivery needs of the ticket service."""

    def create(self, ticket: NewTicket, *, ref: str | None = None) -> tuple[str, Ticket]: ...

    def find_created(self, ticket: NewTicket, *, ref: str, sent_at: float) -> list[str]: ...


@dataclass(frozen=True)
class Tickets:
    """A ``TicketMaker`` from two callables: creates through the read cache (which keeps the new ticket for
    the first polls), searches through the ticket service."""

    create: Callable[..., tuple[str, Ticket]]
    find_created: Callable[..., list[str]]


def judge_create_error(error: GatewayError) -> Verdict:
    """What a failed create says about Zoho's tickets (``TicketService.create``'s contract)."""
    if isinstance(error, ZohoUnavailable):
        # Never connected, Zoho answered 503/429, or no token: nothing was created; send again later.
        return "not_sent"
    if isinstance(error, (ZohoRejected, ZohoAuthFailed)):
        # Zoho refused the ticket's values, or our credentials: it created nothing.
        return "refused"
    if isinstance(error, ZohoBadResponse):
        status = error.extra.get("upstream_status")
        if isinstance(status, int) and 400 <= status < 500:
            return "refused"  # a 4xx refusal: nothing was created
    # ZohoOutcomeUnknown, and anything else we cannot read: the ticket may exist.
    return "maybe"


def jitter(value: float) -> float:
    """A uniform draw in [value/2, value], in its own function so that tests can pin it."""
    return value / 2 + random.random() * value / 2


def backoff(failures: int, retry_after: float | None = None) -> float:
    """Seconds to wait after ``failures`` transient failures in a row, never less than ``retry_after``."""
    delay = jitter(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, failures - 1)))
    return min(BACKOFF_CAP, max(delay, retry_after or 0.0))


class Pause:
    """A cluster-wide pause of the deliverers after an outage, in the shared store (best effort).

    Every transient failure lengthens it (the exponent grows with the failures in a row, cluster-wide);
    any created ticket ends it. Requests with ``Prefer: respond-async`` queue at once while it runs.
    """

    KEY = "outbox:pause"

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def _read(self) -> tuple[int, float]:
        try:
            raw = self._store.get(self.KEY)
        except StoreUnavailable:
            return 0, 0.0
        if raw is None:
            return 0, 0.0
        try:
            data = json.loads(raw)
            return int(data["n"]), float(data["until"])
        except (ValueError, KeyError, TypeError):
            return 0, 0.0

    def until(self) -> float:
        """When the pause ends (0 when none runs)."""
        return self._read()[1]

    def note(self, retry_after: float | None) -> float:
        """One more failure: returns when the pause now ends.

        A failure after the pause ended lengthens the next one (one step of the exponent); failures while
        it runs (the other deliverers' sends of the same round) only make it honour their ``Retry-After``.
        The record expires a minute after the pause ends, so a later outage starts again from the first step.
        """
        failures, until = self._read()
        now = self._clock()
        if now >= until:
            failures += 1
            until = now + backoff(failures, retry_after)
        else:
            until = max(until, now + (retry_after or 0.0))
        try:
            self._store.set(self.KEY, json.dumps({"n": failures, "until": until}).encode(), ttl=until - now + 60)
        except StoreUnavailable:
            pass
        return until

    def clear(self) -> None:
        try:
            if self._store.get(self.KEY) is not None:
                self._store.delete(self.KEY)
        except StoreUnavailable:
            pass


@dataclass(frozen=True)
class Step:
    """An item after one step. ``held``: the holder still holds it (written as a recovery point) and may
    take the next step at ``next_at``; otherwise it was settled, released (due at ``next_at``) or lost."""

    item: Item
    next_at: float
    held: bool


class Engine:
    """``advance``: one Zoho call's worth of progress on an item (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        tickets: TicketMaker,
        pause: Pause,
        metrics: Metrics,
        *,
        max_age: float,
        reconcile_delay: float,
        owners: TicketOwners | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        #: which create owns each created ticket, so that a search never settles one create with another's
        #: ticket (``policies.owners``); None: not recorded (tests of the engine alone)
        self._owners = owners
        self._tickets = tickets
        self.pause = pause
        self._metrics = metrics
        self._max_age = max_age
        self._reconcile_delay = reconcile_delay
        self._clock = clock

    def advance(self, item: Item, hold: Hold, *, keep_until: float, fail_outages: bool = False) -> Step:
        """Search or send once, and write the result through ``hold``.

        ``keep_until``: the holder goes on with the next step if it is due by then (the item is then
        written and kept); otherwise the item is released, due when its next step is. ``fail_outages``
        (a create without ``Prefer``): an outage settles the item ``failed`` (the client is answered 503,
        as before queuing existed) instead of queuing it, and so does a refusal of our credentials.
        Raises StoreUnavailable when a recovery point cannot be written (no call to Zoho is then made).
        """
        if item.state in MAYBE_SENT:
            return self._reconcile(item, hold, keep_until)
        if item.state == "queued":
            return self._send(item, hold, keep_until, fail_outages)
        return Step(item, self._clock(), held=False)

    # --- the two calls --------------------------------------------------------------------------

    def _send(self, item: Item, hold: Hold, keep_until: float, fail_outages: bool) -> Step:
        now = self._clock()
        sending = dataclasses.replace(item, state="sending", attempts=item.attempts + 1, sent_at=now)
        if not self.outbox.write(item, sending, "keep", hold):
            return Step(item, now, held=False)
        try:
            ticket_id, _ = self._tickets.create(item.ticket, ref=item.ref)
        except GatewayError as exc:
            verdict = judge_create_error(exc)
            if verdict == "refused" and isinstance(exc, ZohoAuthFailed) and not fail_outages:
                # Our credentials, not the ticket: an operator fixes them and the queued ticket still goes.
                verdict = "not_sent"
            self._metrics.delivery(verdict)
            if verdict == "not_sent" and not fail_outages:
                # Provably not created: back to queued (the audit line says so), sent again after the back-off.
                not_sent = dataclasses.replace(sending, state="queued")
                return self._transient(not_sent, hold, exc, keep_until=float("-inf"), before=sending)
            if verdict == "maybe":
                unknown = dataclasses.replace(sending, state="unknown", last_error=short_error(exc))
                # Searched no sooner than reconcile_delay after the send ended: Zoho may still be storing it.
                return self._finish(sending, unknown, hold, self._clock() + self._reconcile_delay, keep_until)
            return self._finish(sending, self._failed(sending, exc), hold, self._clock(), keep_until)
        self._metrics.delivery("created")
        self.pause.clear()
        created = dataclasses.replace(sending, state="created", zoho_ticket_id=ticket_id, settled_at=self._clock())
        if self._owners is not None:
            try:
                self._owners.record(ticket_id, item.ref)
            except StoreUnavailable:
                # Settled only once its ticket is recorded (else a later identical create's search could take
                # it): the item stays "sending", and a deliverer finds the ticket by searching and claims it.
                log.error(
                    "outbox ticket owner not recorded; a deliverer will reconcile", extra={"request_ref": item.ref}
                )
                return Step(created, self._clock(), held=False)
        return self._finish(sending, created, hold, self._clock(), keep_until)

    def _reconcile(self, item: Item, hold: Hold, keep_until: float) -> Step:
        now = self._clock()
        if item.state == "sending":
            # Its holder is gone (crashed, or its lease lapsed): the send may have reached Zoho.
            after = dataclasses.replace(item, state="unknown")
            not_before = (item.sent_at or now) + self._reconcile_delay
            return self._finish(item, after, hold, max(now, not_before), keep_until)
        not_before = (item.sent_at or item.accepted_at) + self._reconcile_delay
        if now < not_before:
            return self._finish(item, item, hold, not_before, keep_until)
        try:
            found = self._tickets.find_created(item.ticket, ref=item.ref, sent_at=item.sent_at or item.accepted_at)
        except GatewayError as exc:
            self._metrics.reconciliation("error")
            return self._transient(item, hold, exc, keep_until=keep_until)
        if self._owners is not None:
            # A ticket another create settled as its own is not this one's (an identical create moments before).
            ours = self._owners.not_others(found, item.ref)
            if len(ours) < len(found):
                log.info(
                    "search candidates owned by other creates dropped",
                    extra={
                        "event": "outbox_candidates_owned",
                        "request_ref": item.ref,
                        "dropped": len(found) - len(ours),
                    },
                )
            found = ours
            if len(found) == 1 and not self._owners.claim(found[0], item.ref):
                # Another create took it between the two reads: search again, which drops it.
                return self._finish(item, item, hold, self._clock(), keep_until)
        now = self._clock()
        if len(found) == 1:
            self._metrics.reconciliation("found")
            self.pause.clear()
            after = dataclasses.replace(item, state="created", zoho_ticket_id=found[0], transient=0, settled_at=now)
        elif not found:
            # Zoho holds no such ticket: the send never landed, so sending again makes exactly one.
            self._metrics.reconciliation("none")
            after = dataclasses.replace(item, state="queued", transient=0)
        else:
            self._metrics.reconciliation("ambiguous")
            log.warning(
                "several Zoho tickets match one create; a person must decide",
                extra={"event": "outbox_ambiguous", "request_ref": item.ref, "candidates": found},
            )
            after = dataclasses.replace(
                item,
                state="needs_review",
                candidates=tuple(found),
                last_error={
                    "code": "ambiguous_match",
                    "message": f"Zoho holds {len(found)} tickets that match this create; an operator must decide",
                },
                settled_at=now,
            )
        return self._finish(item, after, hold, now, keep_until)

    # --- outcomes ---------------------------------------------------------------------------------

    def _failed(self, item: Item, error: GatewayError) -> Item:
        return dataclasses.replace(
            item,
            state="failed",
            last_error=short_error(error),
            failure=failure_record(error),
            settled_at=self._clock(),
        )

    def _transient(
        self, item: Item, hold: Hold, error: GatewayError, *, keep_until: float, before: Item | None = None
    ) -> Step:
        """Zoho could not be asked (outage, no token, search failed): back off, or give up past the max age."""
        now = self._clock()
        failures = item.transient + 1
        retry_after = float(error.retry_after) if error.retry_after else None
        if isinstance(error, ZohoUnavailable):
            # Zoho (or its token endpoint) is down for everyone: the cluster-wide pause paces every item, so
            # that the oldest goes first when it ends.
            next_at = self.pause.note(retry_after)
        else:
            # This item's search could not be done (an unusable answer, too many candidates): its own back-off.
            next_at = now + backoff(failures, retry_after)
        after = dataclasses.replace(item, transient=failures, last_error=short_error(error))
        if now - item.accepted_at >= self._max_age:
            log.warning(
                "outbox item given up after the maximum age",
                extra={"event": "outbox_expired", "request_ref": item.ref, "error_code": error.code},
            )
            if item.state in MAYBE_SENT:
                # A send may have reached Zoho: "failed" could be a lie; a person looks.
                after = dataclasses.replace(after, state="needs_review", settled_at=now)
            else:
                after = self._failed(after, error)
        return self._finish(before or item, after, hold, next_at, keep_until)

    def _finish(self, before: Item, after: Item, hold: Hold, next_at: float, keep_until: float) -> Step:
        if not after.pending:
            try:
                self.outbox.write(before, after, "settle", hold)
            except StoreUnavailable:
                # The outcome stands (a created ticket exists); the item stays "sending" and a deliverer
                # finds the ticket by searching. The caller still answers with what it learnt.
                log.error("outbox settle not written; a deliverer will reconcile", extra={"request_ref": after.ref})
            return Step(after, next_at, held=False)
        if next_at <= keep_until:
            return Step(after, next_at, held=self.outbox.write(before, after, "keep", hold))
        self.outbox.write(before, after, next_at, hold)
        return Step(after, next_at, held=False)


class Paused(Protocol):
    """What the deliverers read of a pause: when it ends (0 when none runs)."""

    def until(self) -> float: ...


class Advancing(Protocol):
    """What the deliverers drive: an ``Engine``, or one that routes each item to its portal's engine
    (``policies.routing``)."""

    @property
    def outbox(self) -> Outbox: ...

    @property
    def pause(self) -> Paused: ...

    def advance(self, item: Item, hold: Hold, *, keep_until: float, fail_outages: bool = False) -> Step: ...


class Deliverer:
    """Background loops (threads; greenlets under gevent) that claim due items and advance them.

    ``max_in_flight`` caps claims held across the cluster (``GATEWAY_DELIVERY_CONCURRENCY``): each loop
    makes one Zoho call at a time under a claim, so that is the cap on deliveries in flight. ``lease``
    must outlast the longest call (a claim that lapses is taken over and searched before any re-send).
    """

    def __init__(
        self,
        engine: Advancing,
        *,
        loops: int,
        max_in_flight: int,
        lease: float,
        idle_wait: float = 1.0,
        label: str | None = None,
    ) -> None:
        self._engine = engine
        self._outbox = engine.outbox
        self._loops = loops
        self._cap = max_in_flight
        self._lease = lease
        self._idle_wait = idle_wait
        self.label = label or f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Deliverer:
        for number in range(self._loops):
            thread = threading.Thread(target=self._run, name=f"deliverer-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("deliverers started", extra={"event": "deliverers_started", "loops": self._loops, "label": self.label})
        return self

    def stop(self, timeout: float = 0.0) -> None:
        """Ask the loops to stop after their current item (an idle one within ``idle_wait``); wait up to
        ``timeout`` seconds in all for them to end."""
        self._stop.set()
        give_up = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, give_up - time.monotonic()))
        self._threads = []

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.run_once():
                    self._outbox.queue.wait(self._idle_wait, max_in_flight=self._cap)
            except StoreUnavailable as exc:
                log.warning("outbox unavailable; deliverer waits", extra={"event": "deliverer_idle", "error": str(exc)})
                self._stop.wait(2.0)
            except Exception:  # a background loop must outlive a bug in one item: log it with its traceback
                log.exception("deliverer failed on an item", extra={"event": "deliverer_error"})
                self._stop.wait(2.0)

    def run_once(self) -> bool:
        """Claim one due item and advance it; False when nothing was claimable (or a pause runs)."""
        self._outbox.prune(every=300.0)
        wait = self._engine.pause.until() - time.time()
        if wait > 0:
            self._stop.wait(min(wait, 5.0))
            return True
        claimed = self._outbox.queue.claim(self.label, lease=self._lease, max_in_flight=self._cap)
        if claimed is None:
            return False
        self.deliver(claimed)
        return True

    def deliver(self, claimed: Claimed) -> Item:
        """Advance a claimed item until it settles, waits, or has had ``MAX_STEPS`` calls."""
        item = Item.from_bytes(claimed.record)
        token = request_id.set(item.request_id)
        try:
            if claimed.lapsed:
                log.warning(
                    "a deliverer's lease lapsed; searching before any re-send",
                    extra={"event": "outbox_lapsed", "request_ref": item.ref, "state": item.state},
                )
            hold = ClaimHold(self._outbox.queue, claimed, self._lease)
            for _ in range(MAX_STEPS):
                step = self._engine.advance(item, hold, keep_until=time.time())
                item = step.item
                if not step.held:
                    return item
            self._outbox.write(item, item, time.time(), hold)
            return item
        finally:
            request_id.reset(token)


class Deliveries:
    """This process's deliverers, started at most once per process (after a fork, in the child)."""

    def __init__(self, engine: Advancing, *, loops: int, max_in_flight: int, lease: float) -> None:
        self.engine = engine
        self._loops = loops
        self._cap = max_in_flight
        self.lease = lease
        self._pid = 0
        self._deliverer: Deliverer | None = None
        self._lock = threading.Lock()

    def start(self, loops: int | None = None) -> Deliverer | None:
        """Start this process's deliverers unless running; cheap when already started (or configured to none).

        ``loops`` (the CLI's ``deliver``, tests) starts that many even where the configuration says none.
        """
        if self._pid == os.getpid() and (loops is None or self._deliverer is not None):
            return self._deliverer
        with self._lock:
            if self._pid != os.getpid() or (loops is not None and self._deliverer is None):
                count = self._loops if loops is None else loops
                self._deliverer = None
                if count:
                    self._deliverer = Deliverer(
                        self.engine, loops=count, max_in_flight=self._cap, lease=self.lease
                    ).start()
                self._pid = os.getpid()
            return self._deliverer

    def stop(self, wait: float = 0.0) -> None:
        """Stop this process's deliverers, waiting up to ``wait`` seconds for the item in hand."""
        if self._deliverer is not None and self._pid == os.getpid():
            self._deliverer.stop(wait)
        self._deliverer = None
        self._pid = 0
