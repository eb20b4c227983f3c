"""The price of cross-process invalidation on a local cache hit (issue 11 §9): a hit of ``TicketCache.get``
now reads the ticket's generation from the shared store. Times one hit on each backend, and the store read
alone, against the hit without that read (the ``memory://`` store, one process).

    .venv/bin/python -m bench.cache_hit_cost [--redis redis://127.0.0.1:6379/0] [--n 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable

from zoho_gateway.metrics import Metrics
from zoho_gateway.policies.cache import TicketCache
from zoho_gateway.state import Store, open_store
from zoho_gateway.zoho.model import FullTicket, Ticket

TICKET: Ticket = {
    "ticket_id": "1",
    "status": "Open",
    "technician_assigned": "Unassigned",
    "technician_contact_email": None,
    "technician_comments": None,
}


class _Service:
    """Only ``get``: a hit never calls it, a miss is the first call."""

    def get(self, ticket_id: str) -> Ticket:
        return TICKET

    def get_full(self, ticket_id: str) -> FullTicket:
        raise NotImplementedError


def _per_call(call: Callable[[], object], n: int) -> float:
    """Median of 5 runs of ``n`` calls, microseconds per call."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            call()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return sorted(runs)[2]


def measure(store: Store, n: int) -> tuple[float, float]:
    """(µs per local hit, µs per bare store read of the generation key)."""
    cache = TicketCache(_Service(), store, ttl=3600, fetch_timeout=1, metrics=Metrics())  # type: ignore[arg-type]
    cache.get("1")  # the miss that fills the local copy
    return _per_call(lambda: cache.get("1"), n), _per_call(lambda: store.get("gen:1"), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--redis", help="a Redis URL to measure as well")
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        urls = ["memory://", f"sqlite:///{directory}/state.db"] + ([args.redis] if args.redis else [])
        for url in urls:
            store = open_store(url)
            hit, read = measure(store, args.n)
            print(f"{url.split('://')[0]:7} local hit {hit:6.1f} us   of which the generation read {read:6.1f} us")
            store.close()


if __name__ == "__main__":
    main()
