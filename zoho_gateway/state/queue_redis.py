"""RedisQueue: the durable queue on Redis, as sorted sets moved by Lua scripts (the visibility-timeout pattern).

Why not Streams with a consumer group? They fit a log that every item passes through once, in
arrival order. This queue needs three things they lack: a due time per item, changed at every
back-off (a stream cannot delay an entry; re-adding it gives it a new ID, losing its put order);
leases checked against the queue's clock (XAUTOCLAIM measures idle time on the server, and any
XCLAIM resets it, so tests could only sleep leases out); and a report-back that only the current
holder may make (XACK does not check the consumer, so the owner check would need a script anyway).
Sorted sets claimed by one script give all three, in O(log n) per claim, and are what Sidekiq's
scheduled set and BullMQ's delayed/wait/active sets do.

Keys, under ``<namespace>{queue}:`` (one hash tag, so every key of the queue lives in one cluster slot):

- ``item:<ref>``  hash: record, position, put_at, due_at, owner ('' at rest), lease_until, claims, settled_at
- ``delayed``     pending items at rest, scored by due time
- ``ready``       pending items that are claimable, scored by position (put order): the claim pops the lowest
- ``leased``      claimed items, scored by lease end
- ``pending``     every pending item, scored by position (stats, operator listing)
- ``all``         every item, scored by position (operator listing)
- ``settled``     settled items, scored by settle time (prune)
- ``position``    the put counter
- ``wake``        a short list of tokens; idle deliverers BLPOP it, and every put, release or settle pushes one

The claim script first moves what became claimable (due items from ``delayed``, lapsed ones from
``leased``) into ``ready``, then pops the oldest. Everything one call changes is changed by one script,
so Redis runs it as one step: no claimer ever sees a half-moved item.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from zoho_gateway.state.queue import (
    Claimed,
    Clock,
    Durability,
    Outlook,
    Queue,
    QueueItem,
    QueueItemExists,
    QueueStats,
    check_cap,
    check_lease,
    check_limit,
    check_ref,
    check_update,
    new_holder,
)
from zoho_gateway.state.redis import CONNECT_TIMEOUT, HEALTH_CHECK_INTERVAL, SOCKET_TIMEOUT, Breaker

#: Longest single BLPOP in ``wait``; a longer wait is several. Bounds how long a blocked connection can
#: outlive a Redis that vanished without closing it (its socket timeout is this plus SOCKET_TIMEOUT).
MAX_BLOCK = 10.0

#: Shortest BLPOP: Redis reads a timeout of 0 as "forever", and one under a millisecond rounds to it.
_MIN_BLOCK = 0.01

#: Wake tokens kept when nobody is waiting: enough to wake every idle deliverer of a cluster after a
#: burst of puts, few enough that a queue nobody serves does not grow a list.
WAKE_TOKENS = 64

#: Items one claim moves into ``ready`` from each of ``delayed`` and ``leased``; bounds the script's run
#: time after an outage. Put order is exact as long as fewer items than this fall due between claims.
PROMOTE_BATCH = 1000

#: Settled items one prune script deletes before handing Redis back to other clients.
PRUNE_BATCH = 500

_PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local position = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'position', position, 'put_at', ARGV[3],
           'due_at', ARGV[4], 'owner', '', 'claims', 0)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], position, ARGV[1])
redis.call('ZADD', KEYS[5], position, ARGV[1])
redis.call('LPUSH', KEYS[6], '1')
redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[5]) - 1)
return position
"""

# KEYS: ready, delayed, leased. ARGV: now, owner, lease_until, item key prefix, promote batch, in-flight cap
# ('' for none). What ``leased`` holds above ``now`` is exactly the live leases.
# Item keys are built from the prefix rather than declared: which item is claimed is decided here.
_CLAIM = """
local function promote(from)
    local refs = redis.call('ZRANGEBYSCORE', from, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
    for _, ref in ipairs(refs) do
        local position = redis.call('HGET', ARGV[4] .. ref, 'position')
        if position then redis.call('ZADD', KEYS[1], position, ref) end
        redis.call('ZREM', from, ref)
    end
end
if ARGV[6] ~= '' and redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf') >= tonumber(ARGV[6]) then
    return false
end
promote(KEYS[2])
promote(KEYS[3])
local top = redis.call('ZPOPMIN', KEYS[1])
if #top == 0 then return false end
local ref = top[1]
local key = ARGV[4] .. ref
local previous = redis.call('HGET', key, 'owner')
local claims = redis.call('HINCRBY', key, 'claims', 1)
redis.call('HSET', key, 'owner', ARGV[2], 'lease_until', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[3], ref)
local lapsed = 0
if previous ~= '' then lapsed = 1 end
return {ref, redis.call('HGET', key, 'record'), claims, lapsed, redis.call('HGET', key, 'put_at')}
"""

# KEYS: item, ready, delayed, leased, pending, settled, all, wake.
# ARGV: ref, record, owner ('' for an operator), mode, now, due_at, lease_until, wake tokens.
_UPDATE = """
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local current = redis.call('HGET', key, 'owner')
if current ~= ARGV[3] then return 0 end
local settled = redis.call('HEXISTS', key, 'settled_at') == 1
local mode = ARGV[4]
if settled and mode == 'reschedule' then return 0 end
redis.call('HSET', key, 'record', ARGV[2])
if mode == 'settle' and not settled then
    redis.call('HSET', key, 'owner', '', 'settled_at', ARGV[5])
    redis.call('HDEL', key, 'lease_until')
    for i = 2, 5 do redis.call('ZREM', KEYS[i], ARGV[1]) end
    redis.call('ZADD', KEYS[6], ARGV[5], ARGV[1])
    redis.call('LPUSH', KEYS[8], '1')
    redis.call('LTRIM', KEYS[8], 0, tonumber(ARGV[8]) - 1)
elseif mode == 'reschedule' then
    redis.call('HSET', key, 'owner', '', 'due_at', ARGV[6])
    redis.call('HDEL', key, 'lease_until')
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[4], ARGV[1])
    redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
    redis.call('LPUSH', KEYS[8], '1')
    redis.call('LTRIM', KEYS[8], 0, tonumber(ARGV[8]) - 1)
elseif mode == 'renew' and current ~= '' then
    redis.call('HSET', key, 'lease_until', ARGV[7])
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
end
return 1
"""

# KEYS: item, ready, delayed, leased, pending, settled, all. ARGV: ref.
_DELETE = """
local existed = redis.call('DEL', KEYS[1])
for i = 2, 7 do redis.call('ZREM', KEYS[i], ARGV[1]) end
return existed
"""

# KEYS: settled, all. ARGV: settled before (exclusive), item key prefix, batch.
_PRUNE = """
local refs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, ref in ipairs(refs) do
    redis.call('DEL', ARGV[2] .. ref)
    redis.call('ZREM', KEYS[1], ref)
    redis.call('ZREM', KEYS[2], ref)
end
return #refs
"""

# KEYS: pending, leased. ARGV: item key prefix, now. The counts and the oldest put time from one snapshot.
_STATS = """
local count = redis.call('ZCARD', KEYS[1])
if count == 0 then return {0, 0} end
local in_flight = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf')
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
return {count, in_flight, redis.call('HGET', ARGV[1] .. oldest, 'put_at')}
"""

_ITEM_FIELDS = ("record", "position", "put_at", "due_at", "owner", "lease_until", "claims", "settled_at")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class RedisQueue(Queue):
    """The queue on one Redis database, shared by every process on every host.

    Commands are never retried automatically (a lost reply to a claim must not become a second claim);
    connection failures trip a short circuit breaker, as in ``RedisStore``. ``wait`` blocks on its own
    connection pool, whose socket timeout covers the longest BLPOP.
    """

    backend = "redis"
    shared_across_processes = True

    def __init__(
        self,
        url: str,
        namespace: str = "zgw:",
        *,
        clock: Clock = time.time,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        super().__init__(clock)
        options: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout,
            "health_check_interval": HEALTH_CHECK_INTERVAL,
            "retry": Retry(NoBackoff(), 0),
        }
        self._pool = redis.ConnectionPool.from_url(url, socket_timeout=timeout, **options)
        self._client = redis.Redis(connection_pool=self._pool)
        self._blocking_pool = redis.ConnectionPool.from_url(url, socket_timeout=MAX_BLOCK + timeout, **options)
        self._blocking = redis.Redis(connection_pool=self._blocking_pool)
        self._breaker = Breaker(self._client, "Redis queue")
        prefix = f"{namespace}{{queue}}:"
        self._item_prefix = prefix + "item:"
        self._ready, self._delayed, self._leased = prefix + "ready", prefix + "delayed", prefix + "leased"
        self._pending, self._all, self._settled = prefix + "pending", prefix + "all", prefix + "settled"
        self._position, self._wake = prefix + "position", prefix + "wake"
        # The sorted sets an item may sit in, in the order the update and delete scripts expect them.
        self._indexes = [self._ready, self._delayed, self._leased, self._pending, self._settled, self._all]
        # Sent by SHA and loaded on first NOSCRIPT, so a Redis restart is handled.
        self._put = self._client.register_script(_PUT)
        self._claim = self._client.register_script(_CLAIM)
        self._update = self._client.register_script(_UPDATE)
        self._delete = self._client.register_script(_DELETE)
        self._prune = self._client.register_script(_PRUNE)
        self._stats = self._client.register_script(_STATS)

    def _item(self, ref: str) -> str:
        return self._item_prefix + ref

    # -- the Queue interface -----------------------------------------------------------------------

    def put(self, ref: str, record: bytes, *, due_at: float | None = None) -> None:
        check_ref(ref)
        now = self._clock()
        keys = [self._item(ref), self._position, self._delayed, self._pending, self._all, self._wake]
        with self._breaker.guard("put an item"):
            added = self._put(keys=keys, args=[ref, bytes(record), now, now if due_at is None else due_at, WAKE_TOKENS])
        if not added:
            raise QueueItemExists(ref)

    def claim(self, owner: str, *, lease: float, max_in_flight: int | None = None) -> Claimed | None:
        holder = new_holder(owner)
        lease = check_lease(lease)
        cap = "" if check_cap(max_in_flight) is None else str(max_in_flight)
        now = self._clock()
        lease_until = now + lease
        keys = [self._ready, self._delayed, self._leased]
        args: list[str | float] = [now, holder, lease_until, self._item_prefix, PROMOTE_BATCH, cap]
        with self._breaker.guard("claim an item"):
            taken = self._claim(keys=keys, args=args)
        if not taken:
            return None
        ref, record, claims, lapsed, put_at = taken
        return Claimed(ref.decode(), bytes(record), holder, int(claims), bool(lapsed), float(put_at), lease_until)

    def update(
        self,
        ref: str,
        record: bytes,
        *,
        owner: str | None,
        due_at: float | None = None,
        settled: bool = False,
        lease: float | None = None,
    ) -> bool:
        check_update(owner, due_at, settled, lease)
        now = self._clock()
        if settled:
            mode = "settle"
        elif due_at is not None:
            mode = "reschedule"
        elif lease is not None:
            mode = "renew"
        else:
            mode = "replace"
        args: list[bytes | str | float] = [
            ref,
            bytes(record),
            owner or "",
            mode,
            now,
            due_at or 0.0,
            now + (lease or 0.0),
            WAKE_TOKENS,
        ]
        with self._breaker.guard("update an item"):
            return bool(self._update(keys=[self._item(ref), *self._indexes, self._wake], args=args))

    def get(self, ref: str) -> bytes | None:
        with self._breaker.guard("read an item") as client:
            value = client.hget(self._item(ref), "record")
        return value if isinstance(value, bytes) else None

    def delete(self, ref: str) -> bool:
        with self._breaker.guard("delete an item"):
            return bool(self._delete(keys=[self._item(ref), *self._indexes], args=[ref]))

    def list_items(self, *, pending_only: bool = False, limit: int = 100, after: int | None = None) -> list[QueueItem]:
        check_limit(limit)
        index = self._pending if pending_only else self._all
        low = "-inf" if after is None else f"({after}"
        with self._breaker.guard("list items") as client:
            # Without decode_responses, Redis answers bytes.
            refs = [
                ref for ref in client.zrangebyscore(index, low, "+inf", start=0, num=limit) if isinstance(ref, bytes)
            ]
            pipe = client.pipeline(transaction=False)
            for ref in refs:
                pipe.hmget(self._item_prefix + ref.decode(), _ITEM_FIELDS)
            rows = pipe.execute()
        found = []
        for ref, row in zip(refs, rows, strict=True):
            record, position, put_at, due_at, owner, lease_until, claims, settled_at = row
            if record is None:
                continue  # deleted between the two reads
            found.append(
                QueueItem(
                    ref.decode(),
                    bytes(record),
                    int(position),
                    float(put_at),
                    float(due_at),
                    owner.decode(),
                    _float(lease_until),
                    int(claims),
                    _float(settled_at),
                )
            )
        return found

    def stats(self) -> QueueStats:
        with self._breaker.guard("count items"):
            answer = self._stats(keys=[self._pending, self._leased], args=[self._item_prefix, self._clock()])
        count, in_flight = int(answer[0]), int(answer[1])
        return QueueStats(count, in_flight, _float(answer[2]) if count and len(answer) > 2 else None)

    def prune(self, settled_before: float) -> int:
        pruned = 0
        with self._breaker.guard("prune items"):
            while True:
                batch = int(
                    self._prune(keys=[self._settled, self._all], args=[settled_before, self._item_prefix, PRUNE_BATCH])
                )
                pruned += batch
                if batch < PRUNE_BATCH:
                    return pruned

    def _outlook(self, now: float) -> Outlook:
        live = f"({now!r}"
        with self._breaker.guard("look for due items") as client:
            pipe = client.pipeline(transaction=True)
            pipe.zcard(self._ready)
            pipe.zrange(self._delayed, 0, 0, withscores=True)
            pipe.zrange(self._leased, 0, 0, withscores=True)
            pipe.zcount(self._leased, live, "+inf")
            pipe.zrangebyscore(self._leased, live, "+inf", start=0, num=1, withscores=True)
            ready, delayed, leased, in_flight, next_live = pipe.execute()
        # What sits in ready is claimable now; otherwise the first due time or lease end (lapsed or not).
        soonest = float("-inf") if ready else min((float(score) for _, score in delayed + leased), default=None)
        return Outlook(soonest, int(in_flight), float(next_live[0][1]) if next_live else None)

    def _pause(self, seconds: float) -> None:
        with self._breaker.guard("wait for items"):
            # A token means a put, release or settle happened: the caller looks again rather than assume.
            self._blocking.blpop([self._wake], timeout=max(min(seconds, MAX_BLOCK), _MIN_BLOCK))

    def durability(self) -> Durability:
        settings: dict[str, str] = {}
        with self._breaker.guard("read its persistence settings") as client:
            try:
                for name in ("appendonly", "appendfsync", "save", "maxmemory-policy"):
                    settings.update({str(k): str(v) for k, v in client.config_get(name).items()})
            except redis.ResponseError:
                # Managed services rename or refuse CONFIG; then nobody here can know.
                settings = {}
        return _redis_durability(settings)

    def ping(self) -> None:
        with self._breaker.guard("answer a ping", probe=True) as client:
            client.ping()

    def close(self) -> None:
        """Disconnect both pools; they reconnect lazily if the queue is used again."""
        self._pool.disconnect()
        self._blocking_pool.disconnect()


_NEEDS = "appendonly yes with appendfsync everysec or always"


def _redis_durability(settings: dict[str, str]) -> Durability:
    """Judge what an accepted item survives from Redis's settings (empty: CONFIG refused).

    Redis appends each write to the AOF before it answers, so with ``appendonly yes`` a crash of the
    Redis process loses nothing; ``appendfsync`` decides what a power cut (or kernel crash) loses.
    Without AOF, RDB snapshots (``save``) keep only what existed at the last snapshot. Apart from
    persistence, an ``allkeys-*`` eviction policy may drop queue keys (they carry no TTL, so the
    ``volatile-*`` policies never touch them).
    """
    facts: Durability = {
        "backend": "redis",
        # The item lives in Redis, not in the gateway process that accepted it.
        "survives_process_crash": True,
        "survives_power_cut": None,
        "survives_store_restart": None,
        "loss_window": "unknown",
        "settings": settings,
        "warning": f"cannot read Redis persistence settings (CONFIG refused); queued items need {_NEEDS}",
    }
    if "appendonly" not in settings:
        return facts
    problems = []
    fsync = settings.get("appendfsync", "")
    if settings["appendonly"] == "yes":
        facts["survives_store_restart"] = True
        facts["survives_power_cut"] = fsync == "always"
        if fsync == "always":
            facts["loss_window"] = "none"
        elif fsync == "everysec":
            # Redis postpones its write by up to another second while a previous fsync is still running.
            facts["loss_window"] = (
                "up to 1 s of writes on a power cut or OS crash; none on a Redis crash unless its disk stalls"
            )
        else:
            facts["loss_window"] = "writes the OS had not flushed (often 30 s) on a power cut; none on a Redis crash"
            problems.append(f"Redis runs with appendfsync {fsync or 'unknown'}; queued items need {_NEEDS}")
    else:
        facts["survives_power_cut"] = False
        facts["survives_store_restart"] = False
        if settings.get("save"):
            facts["loss_window"] = "everything since the last RDB snapshot, on any Redis crash or power cut"
        else:
            facts["loss_window"] = "everything, on any Redis restart"
        problems.append(f"Redis runs without AOF (appendonly no); queued items need {_NEEDS}")
    policy = settings.get("maxmemory-policy", "")
    if policy.startswith("allkeys"):
        problems.append(f"Redis may evict queued items under memory pressure (maxmemory-policy {policy})")
    facts["warning"] = "; ".join(problems) or None
    return facts
