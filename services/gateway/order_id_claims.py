"""Client order ids unique per account across several gateway processes (the local profile).

A client retries a request whose answer it did not get; the retry carries the
same ``client_order_id`` and may reach another gateway process. Exactly one
request per (account, client_order_id) may enter the command log; every
other gets that one's answer. Protocol:

1. ``claim``: ``SET <prefix><account>:<id> pending NX EX ttl``. True: this
   request won and goes on to the log.
2. The winner, once its command is durable and answered, stores the answer
   with ``store_result`` (status and body, same ttl), so duplicates can
   replay it byte for byte.
3. A loser calls ``result``: it polls until the winner stored the answer
   (then returns it) or the timeout passes or the claim vanished (``None``:
   the gateway answers "in progress, retry").
4. A winner that failed before anything entered the log calls ``release``,
   so the client's retry can claim again. It removes only a claim still
   ``pending``: a stored result is never released.

The ttl (a day by default) bounds how long an id stays taken and its answer
replayable; it must outlive any client's retry window.

No automatic retries (a client built from a URL fails fast with
``ClaimsUnavailable``): a ``SET NX`` whose reply was lost may have won, and a
silent retry would then report "taken" for this very request. Either way
such a claim stays ``pending`` until its ttl, and duplicates get ``None``
(answer "in progress, retry"): it never lets a second order in.

Polling rather than pub/sub: a duplicate is rare (a retry racing its
original), the wait is short, and a poll every few ms costs less than a
subscription per request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.log.redis_streams import async_client_options

__all__ = ["ClaimsUnavailable", "RedisClientOrderIds"]

PENDING = b"pending"
_RESULT = b"result:"  # then "<status>:" then the body
_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_POLL_FIRST, _POLL_MAX = 0.002, 0.025  # seconds: start quick (the winner is usually nearly done), back off

# Delete the claim only if it is still pending (never a stored result).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ClaimsUnavailable(RuntimeError):
    """The claims' Redis cannot be reached: the order cannot be checked for duplicates (a 503)."""


class RedisClientOrderIds:
    """Claims of client order ids in Redis. ``url_or_client``: a ``redis://`` URL or a ``redis.asyncio.Redis``."""

    def __init__(self, url_or_client: str | redis.asyncio.Redis, prefix: str, ttl_seconds: int = 86_400) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if isinstance(url_or_client, str):
            self.client = redis.asyncio.Redis.from_url(
                url_or_client, socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 0),
                **async_client_options(),
            )
            self._own = True
        else:
            self.client = url_or_client
            self._own = False
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self._release: Any = self.client.register_script(_RELEASE)

    def key(self, account: int, client_order_id: str) -> str:
        # The account is an integer (no ':'), so the key is unambiguous whatever the id holds.
        return f"{self.prefix}{int(account)}:{client_order_id}"

    async def claim(self, account: int, client_order_id: str) -> bool:
        """Take the id for this request: True if it was free (this request goes on), False if taken."""
        won = await self._call(self.client.set, self.key(account, client_order_id), PENDING, nx=True,
                               ex=self.ttl_seconds)
        return bool(won)

    async def store_result(self, account: int, client_order_id: str, status: int, body: bytes) -> bool:
        """Record the winner's answer for duplicates to replay. False if the claim had vanished
        (expired): nothing is stored then, as a new claim may be under way."""
        value = b"%s%d:%s" % (_RESULT, status, body)
        stored = await self._call(self.client.set, self.key(account, client_order_id), value, xx=True,
                                  ex=self.ttl_seconds)
        return bool(stored)

    async def result(self, account: int, client_order_id: str, timeout: float) -> tuple[int, bytes] | None:
        """The winner's ``(status, body)`` once stored; None if ``timeout`` seconds pass first or the
        claim vanished (released or expired)."""
        key = self.key(account, client_order_id)
        deadline = time.monotonic() + timeout
        pause = _POLL_FIRST
        while True:
            value = await self._call(self.client.get, key)
            if value is None:
                return None
            if value.startswith(_RESULT):
                status, _, body = value[len(_RESULT):].partition(b":")
                return int(status), body
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _POLL_MAX)

    async def release(self, account: int, client_order_id: str) -> None:
        """Give up a claim whose request failed before reaching the log, so a retry can claim it."""
        await self._call(self._release, keys=[self.key(account, client_order_id)], args=[PENDING])

    async def aclose(self) -> None:
        """Close the client if this object made it."""
        if self._own:
            await self.client.aclose()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except _DOWN as exc:
            kw = self.client.connection_pool.connection_kwargs
            where = kw.get("path") or f"{kw.get('host', '?')}:{kw.get('port', '?')}"
            raise ClaimsUnavailable(f"client order id claims: Redis at {where} is unreachable: {exc}") from exc
