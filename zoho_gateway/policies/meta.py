"""Pick lists (priorities, statuses, categories, departments) for frontends' dropdowns, read from Zoho and
kept ``ttl`` seconds in the shared store, so that every worker and host reads Zoho once per list per TTL.

A read is served from this process's copy, then from the store, then from Zoho; one caller per list goes
to Zoho at a time (a lock within the process, a short claim in the store across processes, as the
ticket cache does). Nothing the gateway does changes a pick list, so copies are only aged out, never
invalidated. Errors are never kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, cast

from ..state.base import Store, StoreUnavailable
from ..zoho.model import PickKind, PickValue
from ..zoho.service import HelpdeskService

log = logging.getLogger("zoho_gateway.meta")

#: How often a process waiting for another process's read looks at the store (seconds).
POLL_INTERVAL = 0.02


class PickLists:
    """``values(kind)``: the service's ``pick_values`` at most ``ttl`` seconds old (``ttl`` 0: always Zoho).

    Raises what the service raises.
    """

    def __init__(self, service: HelpdeskService, store: Store, *, ttl: float, fetch_timeout: float) -> None:
        self._service = service
        self._store = store
        self.ttl = ttl
        self._fetch_timeout = fetch_timeout
        self._local: dict[str, tuple[float, list[PickValue]]] = {}
        self._locks = {kind: threading.Lock() for kind in ("priorities", "statuses", "categories", "departments")}

    def values(self, kind: PickKind) -> list[PickValue]:
        """Every value of the pick list ``kind``, in Zoho's order."""
        if self.ttl <= 0:
            return self._service.pick_values(kind)
        found = self._fresh_local(kind)
        if found is not None:
            return found
        with self._locks[kind]:  # one reader per list in this process; the others then find its copy
            found = self._fresh_local(kind)
            if found is not None:
                return found
            return self._from_store_or_load(kind)

    def _fresh_local(self, kind: str) -> list[PickValue] | None:
        entry = self._local.get(kind)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def _from_store_or_load(self, kind: PickKind) -> list[PickValue]:
        key, claim = f"meta:{kind}", f"fill:meta:{kind}"
        claimed = False
        try:
            found = self._get_shared(key)
            if found is None:
                claimed = self._store.add(claim, b"1", ttl=self._fetch_timeout + 1)
                found = self._get_shared(key) if claimed else self._wait_for_other_process(key, claim)
            if found is not None:
                remaining, values = found
                self._local[kind] = (time.monotonic() + remaining, values)
                return values
        except StoreUnavailable:
            pass  # without the store, read from Zoho
        try:
            values = self._service.pick_values(kind)
            self._keep(kind, key, values)
        finally:
            if claimed:
                try:
                    self._store.delete(claim)
                except StoreUnavailable:
                    pass
        return values

    def _keep(self, kind: str, key: str, values: list[PickValue]) -> None:
        self._local[kind] = (time.monotonic() + self.ttl, values)
        record = json.dumps({"exp": time.time() + self.ttl, "items": values}).encode()
        try:
            self._store.set(key, record, ttl=self.ttl)
        except StoreUnavailable:
            log.warning("shared state unavailable; pick list kept in this process only", extra={"kind": kind})

    def _get_shared(self, key: str) -> tuple[float, list[PickValue]] | None:
        raw = self._store.get(key)
        if raw is None:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            remaining = min(float(data["exp"]) - time.time(), self.ttl)
            return (remaining, cast(list[PickValue], data["items"])) if remaining > 0 else None
        except (ValueError, KeyError, TypeError):
            return None

    def _wait_for_other_process(self, key: str, claim: str) -> tuple[float, list[PickValue]] | None:
        deadline = time.monotonic() + self._fetch_timeout
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            found = self._get_shared(key)
            if found is not None:
                return found
            if self._store.get(claim) is None:
                return self._get_shared(key)  # the other read ended (maybe in an error): our turn
        return None
