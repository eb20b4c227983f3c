"""RedisStore: the shared-state interface on Redis, shared by every process on every host."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from zoho_gateway.state.base import Store, StoreUnavailable, poll_for_lock

#: Seconds to open a TCP connection, and to wait for any answer. Short on purpose: every request
#: may touch the store, and a dead Redis must fail fast (StoreUnavailable) rather than hang workers.
CONNECT_TIMEOUT = 0.5
SOCKET_TIMEOUT = 1.0

#: Seconds a pooled connection may sit idle before it is PINGed on next use, which catches peers
#: that vanished without closing the socket (a failover, a NAT that forgot us).
HEALTH_CHECK_INTERVAL = 15

# Run as one script so that "did the counter exist?" and "increment it" cannot be split by another
# client: the expiry is set exactly once, by whoever created the counter (a fixed window).
# ARGV[2] is the ttl in milliseconds, or "" for a counter that never expires.
_INCR_SCRIPT = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

# Compare-and-delete: a holder whose lease lapsed (and was taken by another) must not free the
# new holder's lock. A plain GET then DEL from the client would leave that window open.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def _millis(seconds: float, what: str) -> int:
    """Whole milliseconds for PX/PEXPIRE, rounded up so an entry never lives shorter than asked."""
    if seconds <= 0:
        raise ValueError(f"{what} must be positive seconds")
    return max(1, math.ceil(seconds * 1000))


#: Seconds the store fails fast after a connection failure before it tries Redis again.
BREAKER_COOLDOWN = 2.0


class Breaker:
    """One Redis client behind a short circuit breaker; shared by ``RedisStore`` and ``RedisQueue``.

    After a connection failure, calls answer StoreUnavailable at once for ``BREAKER_COOLDOWN`` seconds (a
    probe, i.e. ``ping``, still tries): otherwise every request would wait out the connect time-out while
    Redis is down. Callers already treat StoreUnavailable as "go on without". ``name`` is how its messages
    call the client's user.
    """

    def __init__(self, client: redis.Redis, name: str) -> None:
        self._client = client
        self._name = name
        self._down_until = 0.0

    @contextmanager
    def guard(self, action: str, *, probe: bool = False) -> Iterator[redis.Redis]:
        """Yield the client; turn any Redis failure into ``StoreUnavailable`` naming only the error class."""
        if not probe and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"{self._name} could not {action}: unavailable (recent failure)")
        try:
            yield self._client
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._down_until = time.monotonic() + BREAKER_COOLDOWN
            raise StoreUnavailable(f"{self._name} could not {action}: {type(exc).__name__}") from exc
        except redis.RedisError as exc:
            # Only the error class: Redis messages may echo arguments, and arguments are values or records.
            raise StoreUnavailable(f"{self._name} could not {action}: {type(exc).__name__}") from exc
        else:
            if probe:
                self._down_until = 0.0


class RedisStore(Store):
    """A store on one Redis database, keys under ``namespace`` (data under ``kv:``, locks under ``lock:``).

    The connection pool is thread-safe and fork-safe (redis-py rebuilds it in a child process).
    Commands are never retried automatically: INCRBY and SET NX are not idempotent, and a retry
    after a lost reply could count twice or report a won claim as lost. Stale pooled connections
    are still replaced, because redis-py checks each one when it leaves the pool.
    """

    backend = "redis"
    shared_across_processes = True

    def __init__(
        self,
        url: str,
        namespace: str = "zgw:",
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        self._pool = redis.ConnectionPool.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            health_check_interval=HEALTH_CHECK_INTERVAL,
            retry=Retry(NoBackoff(), 0),
        )
        self._client = redis.Redis(connection_pool=self._pool)
        self._breaker = Breaker(self._client, "Redis state store")
        self._kv_prefix = f"{namespace}kv:"
        self._lock_prefix = f"{namespace}lock:"
        # Scripts are sent by SHA and loaded on first NOSCRIPT, so a Redis restart is handled.
        self._incr_script = self._client.register_script(_INCR_SCRIPT)
        self._release_script = self._client.register_script(_RELEASE_SCRIPT)

    def get(self, key: str) -> bytes | None:
        with self._breaker.guard("read a key") as client:
            value = client.get(self._kv_prefix + key)
        # The pool is not created with decode_responses, so Redis answers bytes (or nil).
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else _millis(ttl, "ttl")
        with self._breaker.guard("write a key") as client:
            client.set(self._kv_prefix + key, value, px=px)

    def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = None if ttl is None else _millis(ttl, "ttl")
        with self._breaker.guard("claim a key") as client:
            # SET NX answers OK when it wrote and nil when the key exists (expired keys do not).
            return bool(client.set(self._kv_prefix + key, value, nx=True, px=px))

    def delete(self, key: str) -> None:
        with self._breaker.guard("delete a key") as client:
            client.delete(self._kv_prefix + key)

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        px = "" if ttl is None else str(_millis(ttl, "ttl"))
        with self._breaker.guard("increment a counter"):
            try:
                return int(self._incr_script(keys=[self._kv_prefix + key], args=[amount, px]))
            except redis.ResponseError as exc:
                # Same contract as the other backends: a non-integer value is a caller bug, not an
                # outage. Anything else Redis refused is left to the guard.
                if "not an integer" in str(exc):
                    raise ValueError("value is not an integer counter") from None
                raise

    def acquire_lock(self, name: str, lease: float, wait: float) -> str | None:
        lease_ms = _millis(lease, "lease")

        def take(owner: str) -> bool:
            with self._breaker.guard("take a lock") as client:
                # The lease is set in the same command as the claim, so a holder that dies right
                # after taking the lock still lets it lapse.
                return bool(client.set(self._lock_prefix + name, owner, nx=True, px=lease_ms))

        return poll_for_lock(take, wait)

    def release_lock(self, name: str, owner: str) -> None:
        with self._breaker.guard("release a lock"):
            self._release_script(keys=[self._lock_prefix + name], args=[owner])

    def ping(self) -> None:
        with self._breaker.guard("answer a ping", probe=True) as client:
            client.ping()

    def close(self) -> None:
        """Disconnect the pool; it reconnects lazily if the store is used again."""
        self._pool.disconnect()
