"""The outbox: every create as a durable item, written at each recovery point before the Zoho call it guards.

An item is one create, named by its ``request_ref``, and moves through::

    queued ──▶ sending ──▶ created                       (settled)
      ▲           ├──────▶ failed                        (settled: refused, or transient past the max age)
      │           └──────▶ unknown ──find──▶ created | needs_review (settled) | queued (Zoho holds none)

``sending`` is written before the create is sent and ``unknown`` before Zoho is searched, so whoever
holds the item next (this request, a deliverer, or one after a crash) knows whether a send may have
reached Zoho, and searches before it sends again. Every state change is one audit line
(``event: outbox``) carrying ``request_ref`` and the id of the request that accepted it.

Items live in the durable queue (``state.queue``) beside the shared state. A request that accepted an
item holds it by keeping it at rest with its due time pushed past the longest call it may make
(``RequestHold``); a deliverer holds it by a lease (``ClaimHold``). Both write through the queue's
conditional ``update``, so a holder that lost the item (a deliverer took it over) can never write again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from ..errors import GatewayError
from ..state.queue import Claimed, Queue, QueueItem, QueueItemExists, QueueStats
from ..zoho.model import NewTicket

log = logging.getLogger("zoho_gateway.outbox")

State = Literal["queued", "sending", "unknown", "created", "failed", "needs_review"]
STATES: tuple[State, ...] = ("queued", "sending", "unknown", "created", "failed", "needs_review")
PENDING: frozenset[str] = frozenset({"queued", "sending", "unknown"})
#: States in which a send may have reached Zoho: search before sending again.
MAYBE_SENT: frozenset[str] = frozenset({"sending", "unknown"})

#: A request reference: at most 40 of [A-Za-z0-9_-], never all digits (so never a ticket id). Opaque to
#: clients; the gateway issues and recognises only its own shape, ``rq_`` and random characters, so that
#: any other non-numeric id stays a 400 ``invalid_ticket_id`` as before references existed.
REF = re.compile(r"rq_[A-Za-z0-9_-]{1,37}")


def new_ref() -> str:
    """A fresh reference: ``rq_`` and 24 URL-safe random characters (144 bits); opaque to clients."""
    return f"rq_{secrets.token_urlsafe(18)}"


def iso(at: float | None) -> str | None:
    """``at`` (epoch seconds) as an RFC 3339 UTC timestamp with milliseconds, or None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def failure_record(error: GatewayError) -> dict[str, Any]:
    """What a client would have been answered for ``error``: enough to render it again, exactly."""
    return {
        "status": error.status,
        "code": error.code,
        "summary": error.summary,
        "message": error.message,
        "retry_after": error.retry_after,
        "fields": error.fields,
        "extra": error.extra,
    }


def _error_class(code: str) -> type[GatewayError] | None:
    """The GatewayError subclass whose stable code is ``code``."""
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def failure_of(record: Mapping[str, Any]) -> GatewayError:
    """The error ``failure_record`` wrote, rebuilt so that it renders exactly as the first answer did."""
    cls = _error_class(str(record["code"])) or GatewayError
    error = cls(
        str(record["message"]),
        retry_after=record.get("retry_after"),
        fields=record.get("fields"),
        **dict(record.get("extra") or {}),
    )
    # The stored facts win over the class's: the replay repeats what the client was first told.
    error.status, error.code, error.summary = int(record["status"]), str(record["code"]), str(record["summary"])
    return error


@dataclass(frozen=True)
class Item:
    """One create. ``failure`` is the full error a client gets for a failed item; ``last_error`` its short form."""

    ref: str
    state: State
    ticket: NewTicket
    client: str
    accepted_at: float
    request_id: str
    idempotency_key: str | None = None
    respond_async: bool = False
    #: creates sent to Zoho (a search is not counted)
    attempts: int = 0
    #: when the latest create was sent (an earlier one was found absent by a search before this one was sent)
    sent_at: float | None = None
    zoho_ticket_id: str | None = None
    last_error: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    #: ids Zoho matched when more than one did (needs_review)
    candidates: tuple[str, ...] = ()
    #: consecutive transient failures (sends not sent, searches that could not be done): the back-off exponent
    transient: int = 0
    settled_at: float | None = None
    #: the portal it is for (issue 12); None: the gateway's default portal (and every item of before portals)
    portal: str | None = None

    @property
    def pending(self) -> bool:
        return self.state in PENDING

    def to_bytes(self) -> bytes:
        data = dataclasses.asdict(self)
        data["candidates"] = list(self.candidates)
        return json.dumps({"v": 1, **data}, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Item:
        data = json.loads(raw)
        data.pop("v", None)
        data["candidates"] = tuple(data.get("candidates") or ())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def public(self) -> dict[str, Any]:
        """``GET /requests/<request_ref>``'s body."""
        return {
            "request_ref": self.ref,
            "status": self.state,
            "zoho_ticket_id": self.zoho_ticket_id,
            "attempts": self.attempts,
            "accepted_at": iso(self.accepted_at),
            "last_error": self.last_error,
        }

    def operator_view(self) -> dict[str, Any]:
        """What ``flask zoho queue show`` prints: everything but the ticket's text."""
        return {
            **self.public(),
            "client": self.client,
            "request_id": self.request_id,
            "idempotency_key": self.idempotency_key,
            "respond_async": self.respond_async,
            "sent_at": iso(self.sent_at),
            "settled_at": iso(self.settled_at),
            "candidates": list(self.candidates),
            "portal": self.portal,
            "subject": self.ticket.get("subject"),
            "requester_email": self.ticket.get("requester_email"),
        }


def short_error(error: GatewayError) -> dict[str, Any]:
    """``last_error``: the code and message a synchronous create would have answered (and its fields)."""
    short: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields:
        short["fields"] = error.fields
    return short


class Hold(Protocol):
    """A holder's three ways to write its item; each False when the item is no longer this holder's."""

    def keep(self, item: Item) -> bool:
        """Write a recovery point and keep holding (before a call to Zoho)."""

    def release(self, item: Item, due_at: float) -> bool:
        """Write and let the item go, claimable from ``due_at``."""

    def settle(self, item: Item) -> bool:
        """Write the final state."""


@dataclass
class RequestHold:
    """The accepting request's hold: the item stays at rest, due only after the longest call it may make.

    ``horizon`` must outlast any one call to Zoho (token mint included): a deliverer may take the item
    once it is due, and must not while this request may still be sending.
    """

    queue: Queue
    ref: str
    horizon: float
    clock: Callable[[], float] = time.time

    def keep(self, item: Item) -> bool:
        return self.queue.update(self.ref, item.to_bytes(), owner=None, due_at=self.clock() + self.horizon)

    def release(self, item: Item, due_at: float) -> bool:
        return self.queue.update(self.ref, item.to_bytes(), owner=None, due_at=due_at)

    def settle(self, item: Item) -> bool:
        return self.queue.update(self.ref, item.to_bytes(), owner=None, settled=True)


@dataclass
class ClaimHold:
    """A deliverer's hold: its claim, renewed to ``lease`` seconds at every recovery point."""

    queue: Queue
    claimed: Claimed
    lease: float

    def keep(self, item: Item) -> bool:
        return self.queue.update(item.ref, item.to_bytes(), owner=self.claimed.owner, lease=self.lease)

    def release(self, item: Item, due_at: float) -> bool:
        return self.queue.update(item.ref, item.to_bytes(), owner=self.claimed.owner, due_at=due_at)

    def settle(self, item: Item) -> bool:
        return self.queue.update(item.ref, item.to_bytes(), owner=self.claimed.owner, settled=True)


@dataclass
class Outbox:
    """The items, their audit trail and the operators' actions, over one durable queue.

    ``retention``: seconds a settled item stays readable (at least the idempotency TTL); ``horizon``: a
    request's hold (see ``RequestHold``). Every method may raise ``StoreUnavailable``.

    Several portals share one queue, each through its own ``Outbox``: ``portal`` is stamped on the items it
    accepts, and ``lookup`` finds only those (and, for the default portal, ``owns_unlabelled``, the items
    stamped with no portal). ``items`` and the operators' actions see every portal's.
    """

    queue: Queue
    retention: float
    horizon: float
    clock: Callable[[], float] = time.time
    portal: str | None = None
    owns_unlabelled: bool = True
    _pruned_at: float = field(default=0.0, repr=False)

    def accept(
        self,
        ticket: NewTicket,
        *,
        client: str,
        request_id: str,
        idempotency_key: str | None,
        respond_async: bool,
    ) -> tuple[Item, RequestHold]:
        """Store a new ``queued`` item, held by the calling request; durable (as the queue says) on return."""
        now = self.clock()
        for _ in range(3):
            item = Item(
                ref=new_ref(),
                state="queued",
                ticket=ticket,
                client=client,
                accepted_at=now,
                request_id=request_id,
                idempotency_key=idempotency_key,
                respond_async=respond_async,
                portal=self.portal,
            )
            try:
                self.queue.put(item.ref, item.to_bytes(), due_at=now + self.horizon)
            except QueueItemExists:
                continue  # 144 random bits collided, or a put whose reply was lost landed: take another ref
            audit(None, item)
            return item, RequestHold(self.queue, item.ref, self.horizon, self.clock)
        raise RuntimeError("no fresh request reference after three tries")

    def write(self, before: Item, after: Item, how: Literal["keep", "settle"] | float, hold: Hold) -> bool:
        """Write ``after`` through ``hold`` (keep, settle, or release due at the float), and audit a state change."""
        if how == "keep":
            done = hold.keep(after)
        elif how == "settle":
            done = hold.settle(after)
        else:
            done = hold.release(after, float(how))
        if done:
            audit(before, after)
        else:
            log.warning(
                "outbox item no longer held; write dropped",
                extra={"event": "outbox_lost", "request_ref": after.ref, "request_id": after.request_id},
            )
        return done

    def get(self, ref: str) -> Item | None:
        raw = self.queue.get(ref) if REF.fullmatch(ref) else None
        return Item.from_bytes(raw) if raw is not None else None

    def lookup(self, ref: str, client: str) -> Item | None:
        """The item if ``client`` (the API key's name) accepted it for this portal; None otherwise, so others
        cannot probe refs."""
        item = self.get(ref)
        return item if item is not None and item.client == client and self.holds(item) else None

    def holds(self, item: Item) -> bool:
        """Whether ``item`` is for this outbox's portal."""
        return item.portal == self.portal or (item.portal is None and self.owns_unlabelled)

    def items(self, *, pending_only: bool, limit: int, after: int | None = None) -> list[tuple[QueueItem, Item]]:
        return [
            (q, Item.from_bytes(q.record))
            for q in self.queue.list_items(pending_only=pending_only, limit=limit, after=after)
        ]

    def stats(self) -> QueueStats:
        return self.queue.stats()

    def prune(self, *, every: float = 0.0) -> int:
        """Delete items settled more than ``retention`` ago; at most once per ``every`` seconds in this process."""
        now = self.clock()
        if now - self._pruned_at < every:
            return 0
        self._pruned_at = now
        pruned = self.queue.prune(now - self.retention)
        if pruned:
            log.info("pruned settled outbox items", extra={"event": "outbox_pruned", "count": pruned})
        return pruned

    # --- operators ---------------------------------------------------------------------------------

    def retry(self, ref: str) -> Item | None:
        """Make an item due now: a failed one is queued to be sent again, one in review is searched for again.

        None when the item is absent or held (a deliverer is on it right now: try again shortly).
        """
        item = self.get(ref)
        if item is None:
            return None
        state: State = item.state
        if item.state == "failed":
            state = "queued"
        elif item.state == "needs_review":
            state = "unknown"
        now = self.clock()
        after = dataclasses.replace(
            item, state=state, settled_at=None, transient=0, accepted_at=item.accepted_at, candidates=()
        )
        if not item.pending:
            # A settled item is never rescheduled by the queue: put it again under the same reference.
            self.queue.delete(ref)
            # The max age counts from the retry, so the operator's retry gets its full time.
            after = dataclasses.replace(after, accepted_at=now)
            self.queue.put(ref, after.to_bytes(), due_at=now)
        elif not self.queue.update(ref, after.to_bytes(), owner=None, due_at=now):
            return None
        audit(item, after, actor="operator")
        return after

    def drop(self, ref: str) -> Item | None:
        """Settle a pending item as failed (``request_dropped``) so nothing more is sent; None when absent or held."""
        from ..errors import RequestDropped

        item = self.get(ref)
        if item is None or not item.pending:
            return item
        error = RequestDropped(
            "An operator dropped this request before Zoho created it"
            + (" (a send may have reached Zoho: look for the ticket)" if item.state in MAYBE_SENT else "")
        )
        after = dataclasses.replace(
            item, state="failed", last_error=short_error(error), failure=failure_record(error), settled_at=self.clock()
        )
        if not self.queue.update(ref, after.to_bytes(), owner=None, settled=True):
            return None
        audit(item, after, actor="operator")
        return after


def audit(before: Item | None, after: Item, *, actor: str = "gateway") -> None:
    """One line per state change: ``request_ref``, the accepting request's id, from and to."""
    if before is not None and before.state == after.state:
        return
    error = after.last_error or {}
    log.info(
        "outbox %s: %s -> %s",
        after.ref,
        before.state if before is not None else "accepted",
        after.state,
        extra={
            "event": "outbox",
            "request_ref": after.ref,
            "request_id": after.request_id,
            "from_state": before.state if before is not None else "accepted",
            "to_state": after.state,
            "attempts": after.attempts,
            "zoho_ticket_id": after.zoho_ticket_id,
            "error_code": error.get("code"),
            "client": after.client,
            "actor": actor,
        },
    )
