"""The runtime object: everything a running gateway holds (store, transport, token cache, Zoho client).

Built once per process by ``create_app`` and kept in ``app.extensions["zoho_gateway"]``; never a
module global, so tests can run several gateways side by side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .config import Config, ConfigError
from .metrics import Metrics
from .policies.cache import TicketCache
from .policies.creates import QueuedCreates
from .policies.delivery import Deliveries, Engine, Pause, Tickets
from .policies.idempotency import IdempotentCreates
from .policies.meta import PickLists
from .policies.outbox import Outbox
from .policies.ratelimit import RateLimiter
from .policies.writes import KeyedWrites, TicketWrites
from .state import Queue, Store, StoreUnavailable, open_queue, open_store
from .state.sealing import Sealer, SealError
from .zoho.client import ServiceDeskClient
from .zoho.oauth import ZohoOAuth
from .zoho.retry import RetryPolicy
from .zoho.tickets import TicketService
from .zoho.tokens import TokenManager, TokenSettings, read_stored_token
from .zoho.transport import Transport

log = logging.getLogger("zoho_gateway")

#: Where create_app keeps the Gateway.
EXTENSION_KEY = "zoho_gateway"
#: The longest ``Prefer: wait=N`` honoured (seconds); a longer wait is cut to it.
MAX_PREFER_WAIT = 60.0


@dataclass
class Gateway:
    config: Config
    store: Store
    transport: Transport
    oauth: ZohoOAuth
    tokens: TokenManager
    zoho: ServiceDeskClient
    tickets: TicketService
    metrics: Metrics
    #: Creates, at most once per Idempotency-Key, through the cache (so a create primes it).
    idempotency: IdempotentCreates
    limiter: RateLimiter | None
    #: Reads, from the cache in front of ``tickets``.
    cache: TicketCache
    #: Every create as a durable item (``GET /requests/<request_ref>``, the CLI's ``queue`` commands).
    queue: Queue
    outbox: Outbox
    #: This process's deliverers: ``delivery.start()`` after the fork (gunicorn's post_worker_init, or lazily).
    delivery: Deliveries
    #: Update, note, close, reopen (issue 11): keyed replay, and the cache invalidated on every write.
    writes: TicketWrites
    #: The pick lists (GET /meta/...), kept GATEWAY_META_TTL in the shared store.
    pick_lists: PickLists

    def close(self) -> None:
        self.delivery.stop()
        self.transport.close()
        self.store.close()
        self.queue.close()


def current_gateway() -> Gateway:
    """The running gateway of the current Flask app (inside a request or CLI command)."""
    from flask import current_app  # local: only api/ and cli.py, which run inside Flask, call this

    gateway: Gateway = current_app.extensions[EXTENSION_KEY]
    return gateway


def _check_sealer(store: Store, sealer: Sealer) -> None:
    """Fail the start, not every request, when GATEWAY_STATE_KEY cannot open the stored token."""
    try:
        read_stored_token(store, sealer)
    except StoreUnavailable:
        log.warning("shared state unreachable at start-up; the stored token was not checked")
    except SealError as exc:
        raise ConfigError(f"GATEWAY_STATE_KEY: {exc} (fix the key, or run 'flask zoho token forget')") from None


def build_gateway(config: Config) -> Gateway:
    """Wire every part from ``config``. Raises ConfigError for a bad state URL or key."""
    try:
        store = open_store(config.state_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        sealer = Sealer(config.state_key)
    except ValueError:
        raise ConfigError("GATEWAY_STATE_KEY must be a Fernet key (32 url-safe base64 bytes; see README)") from None
    _check_sealer(store, sealer)
    threads = config.threads
    transport = Transport(
        connect_timeout=config.connect_timeout,
        read_timeout=config.timeout,
        maxsize=max(threads, 4),
        origins=(config.accounts_url, config.api_base_url),
        ca_bundle=config.ca_bundle,
    )
    metrics = Metrics()
    oauth = ZohoOAuth(
        transport, accounts_url=config.accounts_url, client_id=config.client_id, client_secret=config.client_secret
    )
    # The mint lock's lease outlives the slowest mint (three tries, each up to the time-outs), so it never lapses
    # under a live holder; waiters give up a little after one try's time, never hanging a client.
    lease = 3 * (config.connect_timeout + config.timeout) + 2
    tokens = TokenManager(
        oauth=oauth,
        refresh_token=config.refresh_token,
        store=store,
        sealer=sealer,
        settings=TokenSettings(
            refresh_margin=config.token_refresh_margin,
            lock_lease=lease,
            lock_wait=config.timeout + 2,
            backoff_throttled=config.token_backoff_throttled,
            backoff_invalid=config.token_backoff_invalid,
            backoff_unreachable=config.token_backoff_unreachable,
        ),
        on_mint=metrics.token_mint,
    )
    client = ServiceDeskClient(
        base_url=config.api_base_url,
        transport=transport,
        tokens=tokens,
        policy=RetryPolicy(budget=config.retry_budget),
        observe=metrics.upstream_call,
    )
    tickets = TicketService(client, ref_field=config.ref_field)
    cache = TicketCache(
        tickets, store, ttl=config.cache_ttl, fetch_timeout=config.timeout + config.retry_budget, metrics=metrics
    )
    queue = open_queue(config.state_url)
    # A request's hold on its item, and a deliverer's lease, outlive the slowest call to Zoho (a token mint,
    # then a send with its retries), so that nobody takes an item over while a send may still be in flight.
    calls = config.connect_timeout + config.timeout
    safe_hold = lease + 2 * calls + config.retry_budget + 10
    hold = config.delivery_lease or safe_hold
    if hold < safe_hold:
        log.warning(
            "GATEWAY_DELIVERY_LEASE is shorter than the longest call to Zoho (%.0f s): a deliverer still sending "
            "may be taken over, and a ticket created twice; leave it unset outside tests",
            safe_hold,
        )
    outbox = Outbox(queue, retention=config.idempotency_ttl, horizon=hold)
    engine = Engine(
        outbox,
        Tickets(create=cache.create, find_created=tickets.find_created),
        Pause(store),
        metrics,
        max_age=config.delivery_max_age,
        reconcile_delay=config.reconcile_delay,
    )
    creates = QueuedCreates(engine, budget=config.create_budget, always_async=config.queue_creates == "always")
    # A claim outlives the slowest create (a request's budget, then its last call), so a live request never
    # loses its key; a pending create's record outlives the deliverers' maximum age.
    idempotency = IdempotentCreates(
        creates,
        outbox,
        store,
        ttl=config.idempotency_ttl,
        in_flight_ttl=max(config.create_budget, MAX_PREFER_WAIT) + hold + 10,
        pending_ttl=config.idempotency_ttl + config.delivery_max_age + hold,
        metrics=metrics,
    )
    metrics.watch_outbox(queue.stats)
    delivery = Deliveries(
        engine, loops=config.deliverers, max_in_flight=config.delivery_concurrency, lease=hold
    )
    limiter = RateLimiter(store, config.rate_limit) if config.rate_limit else None
    # A write's claim on its Idempotency-Key outlives its slowest call (a token mint, then the write's retries).
    writes = TicketWrites(tickets, cache, KeyedWrites(store, ttl=config.idempotency_ttl, in_flight_ttl=hold))
    pick_lists = PickLists(tickets, store, ttl=config.meta_ttl, fetch_timeout=config.timeout + config.retry_budget)
    return Gateway(
        config,
        store,
        transport,
        oauth,
        tokens,
        client,
        tickets,
        metrics,
        idempotency,
        limiter,
        cache,
        queue,
        outbox,
        delivery,
        writes=writes,
        pick_lists=pick_lists,
    )
