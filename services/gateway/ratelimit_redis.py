"""Rate limits in Redis: the token buckets of ``services.gateway.ratelimit``, shared by every gateway process.

Same semantics as ``InMemoryRateLimiter`` (see that module): a bucket holds
up to ``burst`` tokens, refills at ``rate`` per second; a take of ``cost``
returns 0.0 if allowed, else the seconds until it would be, and a refused
take spends nothing.

One take is one round trip: a Lua script (EVALSHA; redis-py's
``register_script`` loads it again on NOSCRIPT, e.g. after a Redis restart)
reads the bucket, refills it, spends, writes it back, atomically. The clock
is the server's ``TIME``, so workers on machines with different clocks (or
a worker whose clock jumps) agree on every bucket. A bucket key expires
once it would have refilled completely: a full bucket and a missing key
mean the same, so idle keys vanish and Redis holds only active clients.

Keys: ``<prefix><key>``, a hash ``{t: tokens, at: microseconds}``.

Unlike the in-process ``RateLimiter`` protocol, ``take`` is async here (it
talks to Redis); the gateway awaits it and turns ``RateLimiterUnavailable``
into a 503.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.gateway.ratelimit import Limit
from services.log.redis_streams import async_client_options

__all__ = ["LeasedRateLimiter", "RateLimiterUnavailable", "RedisRateLimiter"]

# KEYS[1] bucket; ARGV burst, rate (tokens/s), cost. Returns the wait in seconds, as a string
# (a Lua number in a reply would be truncated to an integer).
# Times are integer microseconds: exact in a Lua double until the year 2255. Numbers written
# back are formatted by hand: Lua's own tostring keeps only 14 digits, too few for microseconds.
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
elseif now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000000)
end
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (math.min(cost, burst) - tokens) / rate
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) / rate * 1000)) + 1000)
return string.format('%.17g', wait)
"""

_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RateLimiterUnavailable(RuntimeError):
    """The rate limiter's Redis cannot be reached: the request cannot be admitted (a 503)."""


class RedisRateLimiter:
    """Token buckets in Redis. ``url_or_client``: a ``redis://`` URL or a ``redis.asyncio.Redis``.

    Built from a URL, the client fails fast (1 s timeouts, one retry): a
    gateway whose limiter is down answers 503 quickly rather than queueing.
    """

    def __init__(self, url_or_client: str | redis.asyncio.Redis, prefix: str) -> None:
        if isinstance(url_or_client, str):
            self.client = redis.asyncio.Redis.from_url(
                url_or_client, socket_connect_timeout=1.0, socket_timeout=1.0,
                retry=Retry(NoBackoff(), 1), **async_client_options(),
            )
            self._own = True
        else:
            self.client = url_or_client
            self._own = False
        self.prefix = prefix
        self._take: Any = self.client.register_script(_TAKE)

    async def take(self, key: str, limit: Limit, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of ``key``'s bucket: 0.0 if allowed, else the seconds to wait."""
        try:
            wait = await self._take(keys=[self.prefix + key], args=[repr(limit.burst), repr(limit.rate), repr(cost)])
        except _DOWN as exc:
            raise RateLimiterUnavailable(f"rate limiter Redis at {_where(self.client)} is unreachable: {exc}") from exc
        return float(wait)

    async def aclose(self) -> None:
        """Close the client if this limiter made it."""
        if self._own:
            await self.client.aclose()


def _where(client: redis.asyncio.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return str(kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}")


class LeasedRateLimiter:
    """A ``RedisRateLimiter`` that takes tokens from Redis in small leases and spends them locally.

    One Redis round trip per request per bucket cost a gateway worker more CPU than the rest of an
    order's path through it. A lease is a share of the bucket (``fraction`` of its burst, at most
    ``max_lease`` tokens, at least the request's cost), taken from the shared bucket in Redis and spent
    by this process until it is used up or ``ttl`` seconds old. So the bucket stays in Redis and is
    shared by every worker; a worker never admits a request whose tokens were not taken from it. What a
    lease leaves unspent when it expires is lost to the bucket (at most one lease per worker per
    ``ttl``): near the limit a client is slowed slightly early, never let through late. When a lease
    cannot be had, the request's own cost is asked for, so a client under its limit is never refused
    for a lease being too large.
    """

    def __init__(self, limiter: RedisRateLimiter, fraction: float = 0.05, max_lease: float = 50.0,
                 ttl: float = 0.25, max_keys: int = 100_000) -> None:
        self.limiter = limiter
        self.fraction = fraction
        self.max_lease = max_lease
        self.ttl = ttl
        self.max_keys = max_keys
        self._leases: dict[str, tuple[float, float]] = {}  # key -> (tokens left, expiry on the monotonic clock)

    async def take(self, key: str, limit: Limit, cost: float = 1.0) -> float:
        import time

        now = time.monotonic()
        tokens, expires = self._leases.get(key, (0.0, 0.0))
        if tokens >= cost and now < expires:
            self._leases[key] = (tokens - cost, expires)
            return 0.0
        lease = max(cost, min(self.max_lease, limit.burst * self.fraction))
        if lease > cost:
            wait = await self.limiter.take(key, limit, lease)
            if wait <= 0:
                if len(self._leases) >= self.max_keys:
                    self._leases.clear()  # a flood of keys: forget the leases (their tokens are spent)
                self._leases[key] = (lease - cost, now + self.ttl)
                return 0.0
        self._leases.pop(key, None)
        return await self.limiter.take(key, limit, cost)

    async def aclose(self) -> None:
        await self.limiter.aclose()
