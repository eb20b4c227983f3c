"""Delivery across portals: one durable queue for every portal, each item advanced by its own portal's engine.

The deliverers (``delivery.Deliverer``) claim the oldest due item whatever its portal; ``PortalEngines``
hands it to the engine of the portal it was accepted for (``Item.portal``), so a queued create reaches its
own Zoho. Each portal keeps its own outage pause: an item whose portal is paused is put back, due when that
pause ends, without a call; the deliverers sit idle only while every portal is paused.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping

from ..errors import PortalNotFound
from .delivery import BACKOFF_CAP, Engine, Step
from .outbox import Hold, Item, Outbox, failure_record, short_error

log = logging.getLogger("zoho_gateway.delivery")


class EveryPortalPaused:
    """The deliverers' pause: until the earliest end of the portals' pauses while all run, else 0."""

    def __init__(self, engines: Mapping[str, Engine], clock: Callable[[], float] = time.time) -> None:
        self._engines = engines
        self._clock = clock

    def until(self) -> float:
        ends = [engine.pause.until() for engine in self._engines.values()]
        now = self._clock()
        return min(ends) if ends and all(end > now for end in ends) else 0.0


class PortalEngines:
    """An ``Advancing`` (see ``delivery``) over the portals' engines, keyed by portal name.

    ``default`` takes the items stamped with no portal (accepted by the default portal, or before portals
    existed). An item for a portal that no longer exists (removed from the portals file) waits, and fails
    with ``portal_not_found`` after ``max_age`` like any item that cannot be delivered.
    """

    def __init__(
        self,
        engines: Mapping[str, Engine],
        *,
        default: str,
        outbox: Outbox,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engines = engines  # filled by the caller as the portals are built
        self._default = default
        self._outbox = outbox
        self._max_age = max_age
        self._clock = clock
        self._pause = EveryPortalPaused(self._engines, clock)

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    @property
    def pause(self) -> EveryPortalPaused:
        return self._pause

    def engine_for(self, item: Item) -> Engine | None:
        return self._engines.get(item.portal or self._default)

    def advance(self, item: Item, hold: Hold, *, keep_until: float, fail_outages: bool = False) -> Step:
        engine = self.engine_for(item)
        now = self._clock()
        if engine is None:
            return self._orphan(item, hold, now)
        paused_until = engine.pause.until()
        if paused_until > now:
            # Its Zoho is down: back in the queue until its pause ends, no call made.
            self._outbox.write(item, item, paused_until, hold)
            return Step(item, paused_until, held=False)
        return engine.advance(item, hold, keep_until=keep_until, fail_outages=fail_outages)

    def _orphan(self, item: Item, hold: Hold, now: float) -> Step:
        log.error(
            "queued create for a portal this gateway does not serve",
            extra={"event": "outbox_orphan", "request_ref": item.ref, "portal": item.portal},
        )
        if now - item.accepted_at < self._max_age:
            self._outbox.write(item, item, now + BACKOFF_CAP, hold)
            return Step(item, now + BACKOFF_CAP, held=False)
        error = PortalNotFound(f"The portal {item.portal!r} is no longer served; the create was not delivered")
        failed = dataclasses.replace(
            item, state="failed", last_error=short_error(error), failure=failure_record(error), settled_at=now
        )
        self._outbox.write(item, failed, "settle", hold)
        return Step(failed, now, held=False)
