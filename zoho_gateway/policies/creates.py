"""A create as a request sees it: accepted into the outbox first, then settled within the request's time.

- Without ``Prefer: respond-async``: the outcome is settled within ``budget`` seconds when it can be (a
  lost answer is searched for, and the ticket sent again only when Zoho holds none); an outage or a
  refusal is answered as it always was (503, 422, 502). Not settled in time: pending, for a 202.
- With it (or ``GATEWAY_QUEUE_CREATES=always``): the item is durable before anything else; Zoho is tried
  for up to ``wait`` seconds; an outage leaves it queued for the deliverers. A refusal is still answered
  at once.
- The queue cannot be written (its store is down): a create without ``Prefer`` and without an
  Idempotency-Key goes straight to Zoho, as creates did before the queue (201, or the error; a lost answer
  is 504 ``zoho_outcome_unknown``, for nobody can search for it later). With ``Prefer`` (or
  ``GATEWAY_QUEUE_CREATES=always``) durability cannot be promised, and a keyed create needs its records in
  that store: both 503 ``state_unavailable``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import GatewayError, StateUnavailable, ZohoOutcomeUnknown
from ..state.base import StoreUnavailable
from ..zoho.model import NewTicket
from .delivery import Engine, Step
from .outbox import Item, failure_of

log = logging.getLogger("zoho_gateway.outbox")

#: Steps one request may take (send, search, send again...) whatever its time budget.
MAX_REQUEST_STEPS = 6


@dataclass(frozen=True)
class Accepted:
    """What the request learnt: the item as it stands, and the error to answer with, if any.

    ``failure`` comes with a ``failed`` item: Zoho refused the ticket, or (without ``Prefer``) Zoho was
    unavailable. Either way Zoho created nothing, so an Idempotency-Key may be used again.
    """

    item: Item | None
    failure: GatewayError | None = None
    #: a direct create's ticket (the queue could not be written): no item, no reference
    ticket_id: str | None = None


class QueuedCreates:
    """``create``: accept, then settle what can be settled in time. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        budget: float,
        always_async: bool,
        direct: Callable[[NewTicket], str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        #: a create straight to Zoho, for when the queue cannot be written (None: 503 then, as with Prefer)
        self._direct = direct
        #: whether the queue is known down (creates go direct): logged once when it goes, once when it is back
        self._queue_down = False
        self._down_lock = threading.Lock()
        self._outbox = engine.outbox
        self._budget = budget
        self.always_async = always_async
        self._clock = clock
        self._sleep = sleep

    def create(
        self,
        ticket: NewTicket,
        *,
        client: str,
        request_id: str,
        idempotency_key: str | None,
        respond_async: bool,
        wait: float,
    ) -> Accepted:
        """Accept ``ticket`` durably, then try to settle it (see the module docstring).

        Raises StateUnavailable (503) when the outbox cannot store it and the create may not go direct (see the
        module docstring): nothing was sent to Zoho. A direct create raises what Zoho's answer makes of it.
        """
        respond_async = respond_async or self.always_async
        try:
            item, hold = self._outbox.accept(
                ticket,
                client=client,
                request_id=request_id,
                idempotency_key=idempotency_key,
                respond_async=respond_async,
            )
        except StoreUnavailable:
            if respond_async or idempotency_key is not None or self._direct is None:
                raise StateUnavailable(
                    "The create queue is unavailable; nothing was sent to Zoho", retry_after=5
                ) from None
            return self._create_directly(ticket)
        self._queue_up()
        now = self._clock()
        deadline = now + (wait if respond_async else self._budget)
        try:
            paused_until = self._engine.pause.until() if respond_async else 0.0
            if respond_async and (wait <= 0 or paused_until > now):
                # Asked not to wait, or Zoho is known to be down: queue without trying.
                self._outbox.write(item, item, max(now, paused_until), hold)
                return Accepted(item)
            step = Step(item, now, held=True)
            for _ in range(MAX_REQUEST_STEPS):
                if not step.held:
                    break
                pause = step.next_at - self._clock()
                if pause > 0:
                    self._sleep(pause)
                step = self._engine.advance(step.item, hold, keep_until=deadline, fail_outages=not respond_async)
            else:
                if step.held:
                    self._outbox.write(step.item, step.item, self._clock(), hold)
        except StoreUnavailable:
            raise StateUnavailable(
                "The create queue became unavailable; the create is settled later", retry_after=5
            ) from None
        item = step.item
        if item.state == "failed" and item.failure is not None:
            return Accepted(item, failure_of(item.failure))
        return Accepted(item)

    def _create_directly(self, ticket: NewTicket) -> Accepted:
        """The pre-queue create: one send, its answer or its error. Raises the GatewayError a create got then."""
        assert self._direct is not None
        with self._down_lock:
            first, self._queue_down = not self._queue_down, True
        if first:
            log.error(
                "create queue unavailable: creates without Prefer go straight to Zoho, a lost answer is not settled",
                extra={"event": "outbox_bypassed"},
            )
        try:
            return Accepted(None, ticket_id=self._direct(ticket))
        except ZohoOutcomeUnknown as exc:
            raise ZohoOutcomeUnknown(
                "Zoho did not answer the create and the create queue is unavailable, so the gateway cannot search "
                "for it later: the ticket may or may not exist; look for it before sending it again"
            ) from exc

    def _queue_up(self) -> None:
        if self._queue_down:
            with self._down_lock:
                was_down, self._queue_down = self._queue_down, False
            if was_down:
                log.warning("create queue available again: creates are queued", extra={"event": "outbox_restored"})
