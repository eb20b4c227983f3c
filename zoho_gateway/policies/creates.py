"""A create as a request sees it: accepted into the outbox first, then settled within the request's time.

- Without ``Prefer: respond-async``: the outcome is settled within ``budget`` seconds when it can be (a
  lost answer is searched for, and the ticket sent again only when Zoho holds none); an outage or a
  refusal is answered as it always was (503, 422, 502). Not settled in time: pending, for a 202.
- With it (or ``GATEWAY_QUEUE_CREATES=always``): the item is durable before anything else; Zoho is tried
  for up to ``wait`` seconds; an outage leaves it queued for the deliverers. A refusal is still answered
  at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import GatewayError, StateUnavailable
from ..state.base import StoreUnavailable
from ..zoho.model import NewTicket
from .delivery import Engine, Step
from .outbox import Item, failure_of

#: Steps one request may take (send, search, send again...) whatever its time budget.
MAX_REQUEST_STEPS = 6


@dataclass(frozen=True)
class Accepted:
    """What the request learnt: the item as it stands, and the error to answer with, if any.

    ``failure`` comes with a ``failed`` item: Zoho refused the ticket, or (without ``Prefer``) Zoho was
    unavailable. Either way Zoho created nothing, so an Idempotency-Key may be used again.
    """

    item: Item
    failure: GatewayError | None = None


class QueuedCreates:
    """``create``: accept, then settle what can be settled in time. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        budget: float,
        always_async: bool,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
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

        Raises StateUnavailable (503) when the outbox cannot store it: nothing was sent to Zoho.
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
            raise StateUnavailable("The create queue is unavailable; nothing was sent to Zoho", retry_after=5) from None
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
