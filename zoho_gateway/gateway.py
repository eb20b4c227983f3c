"""The runtime objects: everything a running gateway holds, one bundle per portal.

A ``Gateway`` is one portal's bundle (its ticket service, read cache, idempotent creates, outbox, and its
account's OAuth client and token cache), with the parts every portal shares referenced from it: the store,
the transport, metrics, the rate limiter, the config, the create queue and its deliverers. Portals on one
Zoho account (accounts URL, client id, refresh token) share one ``TokenManager`` and so one token and one
mint budget (Zoho allows about 10 mints per 10 minutes and about 15 live tokens per refresh token: minting
per portal would let one portal silently revoke another's token); accounts share nothing, so one that is
throttled or revoked never touches another.

Built once per process by ``create_app``; the default portal's bundle is kept in
``app.extensions["zoho_gateway"]`` (never a module global, so tests can run several gateways side by
side), and ``current_gateway()`` is the bundle of the calling request's portal (``api/access.py`` picks
it) or of the ``flask zoho --portal NAME`` command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import Config, ConfigError
from .metrics import Metrics
from .policies.cache import TicketCache
from .policies.creates import QueuedCreates
from .policies.delivery import Deliveries, Engine, Pause, Tickets
from .policies.idempotency import IdempotentCreates
from .policies.meta import PickLists
from .policies.outbox import Outbox
from .policies.owners import TicketOwners
from .policies.ratelimit import RateLimiter
from .policies.routing import PortalEngines
from .policies.writes import KeyedWrites, TicketWrites
from .portals import Account, Portal, Portals, portals_of
from .state import Queue, Store, StoreUnavailable, open_queue, open_store
from .state.prefixed import prefixed
from .state.sealing import Sealer, SealError
from .zoho.client import ServiceDeskClient
from .zoho.desk.service import DeskService
from .zoho.oauth import ZohoOAuth
from .zoho.retry import RetryPolicy
from .zoho.service import HelpdeskService
from .zoho.tickets import TicketService
from .zoho.tokens import TokenManager, TokenSettings, read_stored_token
from .zoho.transport import Transport

log = logging.getLogger("zoho_gateway")

#: Where create_app keeps the default portal's Gateway.
EXTENSION_KEY = "zoho_gateway"
#: Where ``flask.g`` holds the Gateway of the calling request's portal (or of the CLI's ``--portal``).
PORTAL_KEY = "zoho_gateway_portal"
#: The longest ``Prefer: wait=N`` honoured (seconds); a longer wait is cut to it.
MAX_PREFER_WAIT = 60.0


@dataclass
class Gateway:
    """One portal's bundle; ``portals`` reaches every portal's (``bundle(name)``)."""

    config: Config
    #: This portal's share of the shared store (its keys under the portal's prefix).
    store: Store
    transport: Transport
    #: Its account's OAuth client and token cache, shared with the other portals on that account.
    oauth: ZohoOAuth
    tokens: TokenManager
    #: The ServiceDesk Plus client (None for a Zoho Desk portal).
    zoho: ServiceDeskClient | None
    tickets: HelpdeskService
    metrics: Metrics
    #: Creates, at most once per Idempotency-Key, through the cache (so a create primes it).
    idempotency: IdempotentCreates
    limiter: RateLimiter | None
    #: Reads, from the cache in front of ``tickets``.
    cache: TicketCache
    #: Every create of every portal as a durable item (``GET /requests/<request_ref>``, the CLI's ``queue``).
    queue: Queue
    #: This portal's view of the queue: it stamps and finds this portal's items.
    outbox: Outbox
    #: This process's deliverers (every portal's items): ``delivery.start()`` after the fork.
    delivery: Deliveries
    #: Update, note, close, reopen (issue 11): keyed replay, and the cache invalidated on every write.
    writes: TicketWrites
    #: The pick lists (GET /meta/...), kept GATEWAY_META_TTL in the shared store.
    pick_lists: PickLists
    portal: Portal
    account: Account
    #: Every portal's bundle, by name, in the portals' order (shared by all bundles).
    portals: PortalGateways = field(repr=False)

    def bundle(self, name: str) -> Gateway | None:
        """The bundle of the portal ``name``, or None."""
        return self.portals.bundles.get(name)

    def close(self) -> None:
        """Stop and close what every portal shares (any bundle closes all)."""
        self.portals.close()


@dataclass
class PortalGateways:
    """Every portal's bundle and the parts they share, closed once."""

    definition: Portals
    shared_store: Store
    transports: list[Transport]
    bundles: dict[str, Gateway] = field(default_factory=dict)

    @property
    def default(self) -> Gateway:
        return self.bundles[self.definition.default]

    def close(self) -> None:
        if not self.bundles:
            return
        first = next(iter(self.bundles.values()))
        first.delivery.stop()
        for transport in self.transports:
            transport.close()
        self.shared_store.close()
        first.queue.close()


def current_gateway() -> Gateway:
    """The calling request's portal's bundle (inside a request or CLI command); the default portal's otherwise."""
    from flask import current_app, g  # local: only api/ and cli.py, which run inside Flask, call this

    chosen: Gateway | None = g.get(PORTAL_KEY)
    if chosen is not None:
        return chosen
    gateway: Gateway = current_app.extensions[EXTENSION_KEY]
    return gateway


def use_portal(gateway: Gateway) -> None:
    """Make ``gateway`` what ``current_gateway()`` returns for the rest of this request or command."""
    from flask import g

    setattr(g, PORTAL_KEY, gateway)


def _check_sealer(store: Store, sealer: Sealer) -> None:
    """Fail the start, not every request, when GATEWAY_STATE_KEY cannot open the stored token."""
    try:
        read_stored_token(store, sealer)
    except StoreUnavailable:
        log.warning("shared state unreachable at start-up; the stored token was not checked")
    except SealError as exc:
        raise ConfigError(f"GATEWAY_STATE_KEY: {exc} (fix the key, or run 'flask zoho token forget')") from None


@dataclass(frozen=True)
class _Shared:
    """What build_gateway hands each portal's builder."""

    config: Config
    store: Store
    sealer: Sealer
    metrics: Metrics
    queue: Queue
    limiter: RateLimiter | None
    #: Seconds a request's hold and a deliverer's lease last.
    hold: float
    #: The mint lock's lease.
    lease: float
    transport_for: Callable[[float], Transport]


def _token_manager(shared: _Shared, account: Account) -> tuple[ZohoOAuth, TokenManager]:
    """An account's OAuth client and token cache, its store keys under the account's prefix."""
    config = shared.config
    store = prefixed(shared.store, account.namespace)
    _check_sealer(store, shared.sealer)
    oauth = ZohoOAuth(
        shared.transport_for(config.timeout),
        accounts_url=account.accounts_url,
        client_id=account.client_id,
        client_secret=account.client_secret,
    )
    tokens = TokenManager(
        oauth=oauth,
        refresh_token=account.refresh_token,
        store=store,
        sealer=shared.sealer,
        settings=TokenSettings(
            refresh_margin=config.token_refresh_margin,
            lock_lease=shared.lease,
            # Waiters give up a little after one try's time, never hanging a client.
            lock_wait=config.timeout + 2,
            backoff_throttled=config.token_backoff_throttled,
            backoff_invalid=config.token_backoff_invalid,
            backoff_unreachable=config.token_backoff_unreachable,
        ),
        on_mint=shared.metrics.token_mint,
    )
    return oauth, tokens


def _service(
    shared: _Shared, portal: Portal, tokens: TokenManager
) -> tuple[ServiceDeskClient | None, HelpdeskService, Transport]:
    """The portal's ticket service: ServiceDesk Plus or Zoho Desk, with the portal's time-out."""
    config = shared.config
    transport = shared.transport_for(portal.timeout or config.timeout)
    policy = RetryPolicy(budget=config.retry_budget)
    if portal.service == "desk":
        assert portal.org_id is not None and portal.department_id is not None  # portals.py checked
        desk = DeskService(
            base_url=portal.api_base_url,
            org_id=portal.org_id,
            department_id=portal.department_id,
            tokens=tokens,
            transport=transport,
            policy=policy,
            ref_field=portal.ref_field,
            observe=shared.metrics.upstream_call,
        )
        return None, desk, transport
    client = ServiceDeskClient(
        base_url=portal.api_base_url,
        transport=transport,
        tokens=tokens,
        policy=policy,
        observe=shared.metrics.upstream_call,
    )
    return client, TicketService(client, ref_field=portal.ref_field), transport


def build_gateway(config: Config) -> Gateway:
    """Wire every portal from ``config``; the default portal's bundle. Raises ConfigError for a bad state URL
    or key."""
    definition = portals_of(config)
    try:
        store = open_store(config.state_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        sealer = Sealer(config.state_key)
    except ValueError:
        raise ConfigError("GATEWAY_STATE_KEY must be a Fernet key (32 url-safe base64 bytes; see README)") from None
    origins = [url for p in definition.portals for url in (p.account.accounts_url, p.api_base_url)]
    transports: dict[float, Transport] = {}

    def transport_for(read_timeout: float) -> Transport:
        # One connection pool per read time-out: portals with their own ``timeout`` get their own.
        if read_timeout not in transports:
            transports[read_timeout] = Transport(
                connect_timeout=min(config.connect_timeout, read_timeout),
                read_timeout=read_timeout,
                maxsize=max(config.threads, 4),
                origins=origins,
                ca_bundle=config.ca_bundle,
            )
        return transports[read_timeout]

    transport_for(config.timeout)
    # The mint lock's lease outlives the slowest mint (three tries, each up to the time-outs), so it never lapses
    # under a live holder.
    lease = 3 * (config.connect_timeout + config.timeout) + 2
    # A request's hold on its item, and a deliverer's lease, outlive the slowest call to Zoho (a token mint,
    # then a send with its retries), so that nobody takes an item over while a send may still be in flight.
    slowest = max([config.timeout, *(p.timeout or 0.0 for p in definition.portals)])
    calls = config.connect_timeout + slowest
    safe_hold = lease + 2 * calls + config.retry_budget + 10
    hold = config.delivery_lease or safe_hold
    if hold < safe_hold:
        log.warning(
            "GATEWAY_DELIVERY_LEASE is shorter than the longest call to Zoho (%.0f s): a deliverer still sending "
            "may be taken over, and a ticket created twice; leave it unset outside tests",
            safe_hold,
        )
    queue = open_queue(config.state_url)
    metrics = Metrics()
    metrics.watch_outbox(queue.stats)
    shared = _Shared(
        config=config,
        store=store,
        sealer=sealer,
        metrics=metrics,
        queue=queue,
        limiter=RateLimiter(store, config.rate_limit) if config.rate_limit else None,
        hold=hold,
        lease=lease,
        transport_for=transport_for,
    )
    engines: dict[str, Engine] = {}
    # The deliverers claim every portal's items from the one queue; each goes to its own portal's engine.
    router = PortalEngines(
        engines,
        default=definition.default,
        outbox=Outbox(queue, retention=config.idempotency_ttl, horizon=hold),
        max_age=config.delivery_max_age,
    )
    delivery = Deliveries(router, loops=config.deliverers, max_in_flight=config.delivery_concurrency, lease=hold)
    gateways = PortalGateways(definition, store, [])
    accounts: dict[tuple[str, str, str], tuple[ZohoOAuth, TokenManager]] = {}
    for portal in definition.portals:
        # Portals on one account share its token manager: one token, one mint budget, one back-off.
        if portal.account.identity not in accounts:
            accounts[portal.account.identity] = _token_manager(shared, portal.account)
        oauth, tokens = accounts[portal.account.identity]
        engine, gateway = _portal_gateway(shared, portal, oauth, tokens, delivery, gateways)
        engines[portal.name] = engine
        gateways.bundles[portal.name] = gateway
    gateways.transports[:] = list(transports.values())
    return gateways.default


def _portal_gateway(
    shared: _Shared,
    portal: Portal,
    oauth: ZohoOAuth,
    tokens: TokenManager,
    delivery: Deliveries,
    gateways: PortalGateways,
) -> tuple[Engine, Gateway]:
    """One portal's engine and bundle."""
    config = shared.config
    definition = gateways.definition
    # The portal of the ZOHO_* variables keeps the store keys of before portals existed; a file's are prefixed.
    store = prefixed(shared.store, portal.namespace)
    client, service, transport = _service(shared, portal, tokens)
    timeout = portal.timeout or config.timeout
    cache = TicketCache(
        service,
        store,
        ttl=config.cache_ttl if portal.cache_ttl is None else portal.cache_ttl,
        fetch_timeout=timeout + config.retry_budget,
        metrics=shared.metrics,
    )
    outbox = Outbox(
        shared.queue,
        retention=config.idempotency_ttl,
        horizon=shared.hold,
        # Without a portals file, items carry no portal: the queue's records stay as they were.
        portal=portal.name if definition.source is not None else None,
        owns_unlabelled=portal.name == definition.default,
    )
    engine = Engine(
        outbox,
        Tickets(create=cache.create, find_created=service.find_created),
        Pause(store),
        shared.metrics,
        max_age=config.delivery_max_age,
        reconcile_delay=config.reconcile_delay,
        # Only for searches by content (a reference field's search is exact). Kept while a search may still
        # list the ticket: items are searched for up to their maximum age, again after an operator's retry.
        owners=(
            TicketOwners(store, ttl=config.idempotency_ttl + 2 * config.delivery_max_age)
            if service.ref_field is None
            else None
        ),
    )
    creates = QueuedCreates(
        engine,
        budget=config.create_budget,
        always_async=config.queue_creates == "always",
        # When the queue's store is down, an unkeyed create without Prefer goes straight to Zoho, as before it.
        direct=lambda ticket: cache.create(ticket)[0],
    )
    # A claim outlives the slowest create (a request's budget, then its last call), so a live request never
    # loses its key; a pending create's record outlives the deliverers' maximum age.
    idempotency = IdempotentCreates(
        creates,
        outbox,
        store,
        ttl=config.idempotency_ttl,
        in_flight_ttl=max(config.create_budget, MAX_PREFER_WAIT) + shared.hold + 10,
        pending_ttl=config.idempotency_ttl + config.delivery_max_age + shared.hold,
        metrics=shared.metrics,
    )
    # A write's claim on its Idempotency-Key outlives its slowest call (a token mint, then the write's retries).
    writes = TicketWrites(service, cache, KeyedWrites(store, ttl=config.idempotency_ttl, in_flight_ttl=shared.hold))
    pick_lists = PickLists(service, store, ttl=config.meta_ttl, fetch_timeout=timeout + config.retry_budget)
    gateway = Gateway(
        config=config,
        store=store,
        transport=transport,
        oauth=oauth,
        tokens=tokens,
        zoho=client,
        tickets=service,
        metrics=shared.metrics,
        idempotency=idempotency,
        limiter=shared.limiter,
        cache=cache,
        queue=shared.queue,
        outbox=outbox,
        delivery=delivery,
        writes=writes,
        pick_lists=pick_lists,
        portal=portal,
        account=portal.account,
        portals=gateways,
    )
    return engine, gateway
