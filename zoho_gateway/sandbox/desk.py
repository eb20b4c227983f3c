"""The simulated ServiceDesk's memory: requests with their notes and attachments, and the id sequences."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Entity = dict[str, Any]

# Ticket ids look like SDP's 18-digit ids and grow with every create; display ids are the human numbers.
_TICKET_ID_BASE = 123_640_000_000_250_000
_TICKET_ID_STEP = 1_013
_DISPLAY_ID_BASE = 100
# Notes and attachments get ids from their own sequence, in another range so they never equal a ticket id.
_CHILD_ID_BASE = 123_640_000_000_900_000
_CHILD_ID_STEP = 7

CHILD_KINDS = ("notes", "attachments")


@dataclass(frozen=True)
class IdScheme:
    """How a store numbers its records: ``base + n * step`` for the n-th record, ``display_base + n`` for
    its human number, and ``child_base + n * step`` for its children (another range, so never equal)."""

    base: int = _TICKET_ID_BASE
    step: int = _TICKET_ID_STEP
    display_base: int = _DISPLAY_ID_BASE
    child_base: int = _CHILD_ID_BASE
    child_step: int = _CHILD_ID_STEP


class Desk:
    """The stored requests (or, with other ``child_kinds`` and ``ids``, Zoho Desk tickets or contacts).

    Every method is atomic and safe to call from any thread. Entities handed out are deep copies: callers
    may mutate them freely. ``on_change`` is called (outside the lock) after every change, so the world
    can persist it before the change is answered.
    """

    def __init__(
        self,
        on_change: Callable[[], None],
        *,
        child_kinds: Sequence[str] = CHILD_KINDS,
        ids: IdScheme | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._on_change = on_change
        self._ids = ids or IdScheme()
        self._child_kinds = tuple(child_kinds)
        self._tickets: dict[str, Entity] = {}
        self._children: dict[str, dict[str, list[Entity]]] = {kind: {} for kind in self._child_kinds}
        self._sequence = 0
        self._child_sequence = 0

    def clear(self) -> None:
        """Forget every request and restart the id sequences (does not call ``on_change``)."""
        with self._lock:
            self._tickets.clear()
            for store in self._children.values():
                store.clear()
            self._sequence = 0
            self._child_sequence = 0

    # ---- requests ----------------------------------------------------------------------------------------

    def store_ticket(self, build: Callable[[str, str], Entity]) -> Entity:
        """Allocate the next (id, display_id), store ``build(id, display_id)`` and return a copy."""
        with self._lock:
            self._sequence += 1
            ticket_id = str(self._ids.base + self._sequence * self._ids.step)
            entity = build(ticket_id, str(self._ids.display_base + self._sequence))
            self._tickets[ticket_id] = entity
            result = copy.deepcopy(entity)
        self._on_change()
        return result

    def get_ticket(self, ticket_id: str) -> Entity | None:
        """A copy of the stored ticket, or None."""
        with self._lock:
            entity = self._tickets.get(ticket_id)
            return None if entity is None else copy.deepcopy(entity)

    def has_ticket(self, ticket_id: str) -> bool:
        """Whether a ticket with this id exists."""
        with self._lock:
            return ticket_id in self._tickets

    def update_ticket(self, ticket_id: str, change: Callable[[Entity], None]) -> Entity | None:
        """Apply ``change`` to the stored ticket in place; a copy of the result, or None if unknown.

        ``change`` may raise to refuse the change; it must then leave the entity untouched.
        """
        with self._lock:
            entity = self._tickets.get(ticket_id)
            if entity is None:
                return None
            change(entity)
            result = copy.deepcopy(entity)
        self._on_change()
        return result

    def list_tickets(self, start_index: int = 1, row_count: int | None = None) -> tuple[list[Entity], int]:
        """Copies of stored tickets in creation order (1-based ``start_index``), plus the total count."""
        with self._lock:
            every = list(self._tickets.values())
            end = None if row_count is None else start_index - 1 + row_count
            page = every[max(start_index - 1, 0) : end]
            return [copy.deepcopy(entity) for entity in page], len(every)

    def select_tickets(
        self, choose: Callable[[list[Entity]], list[Entity]], start_index: int, row_count: int
    ) -> tuple[list[Entity], int]:
        """Run ``choose`` (filter and order; it must not mutate) over the stored tickets in creation order.

        Returns copies of one page of its result (1-based ``start_index``) and the result's full length.
        Only the page is copied, so a search over thousands of tickets stays cheap.
        """
        with self._lock:
            chosen = choose(list(self._tickets.values()))
            page = chosen[max(start_index - 1, 0) : start_index - 1 + row_count]
            return [copy.deepcopy(entity) for entity in page], len(chosen)

    def ticket_count(self) -> int:
        """How many tickets are stored."""
        with self._lock:
            return len(self._tickets)

    # ---- notes and attachments -----------------------------------------------------------------------------

    def _child_id_locked(self) -> str:
        self._child_sequence += 1
        return str(self._ids.child_base + self._child_sequence * self._ids.child_step)

    def child_id(self) -> str:
        """A fresh id from the notes/attachments sequence."""
        with self._lock:
            return self._child_id_locked()

    def add_children(
        self,
        kind: str,
        ticket_id: str,
        builds: Sequence[Callable[[str], Entity]],
        touch: Callable[[Entity, list[Entity]], None],
    ) -> list[Entity] | None:
        """Add notes or attachments (``kind``: "notes" | "attachments") to a ticket, one per builder.

        Each item is ``build(new_id)``; ``touch(ticket, items)`` then updates the ticket itself (has_notes,
        last_updated_time, ...). Returns copies of the new items, or None when the ticket is unknown.
        """
        with self._lock:
            entity = self._tickets.get(ticket_id)
            if entity is None:
                return None
            items = [build(self._child_id_locked()) for build in builds]
            self._children[kind].setdefault(ticket_id, []).extend(items)
            touch(entity, items)
            result = copy.deepcopy(items)
        self._on_change()
        return result

    def children(self, kind: str, ticket_id: str) -> list[Entity] | None:
        """Copies of a ticket's notes or attachments, oldest first; None when the ticket is unknown."""
        with self._lock:
            if ticket_id not in self._tickets:
                return None
            return copy.deepcopy(self._children[kind].get(ticket_id, []))

    # ---- persistence -----------------------------------------------------------------------------------------

    def dump_json(self) -> str:
        """Everything as one JSON object, serialised under the lock so that no change interleaves."""
        with self._lock:
            document = {
                "sequence": self._sequence,
                "child_sequence": self._child_sequence,
                "tickets": list(self._tickets.values()),
                **self._children,
            }
            return json.dumps(document, separators=(",", ":"))

    def load(self, document: Mapping[str, Any]) -> None:
        """Adopt ``dump_json`` output (decoded); raises KeyError, TypeError or ValueError when it is malformed."""
        tickets = {str(entity["id"]): dict(entity) for entity in document["tickets"]}
        children = {
            kind: {str(key): list(value) for key, value in dict(document.get(kind, {})).items()}
            for kind in self._child_kinds
        }
        sequence, child_sequence = int(document["sequence"]), int(document.get("child_sequence", 0))
        with self._lock:
            self._tickets, self._children = tickets, children
            self._sequence, self._child_sequence = sequence, child_sequence
