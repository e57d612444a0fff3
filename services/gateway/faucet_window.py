"""The faucet's hourly cap per account and asset: a sliding window of what it gave.

``InMemoryFaucetWindow`` serves one gateway process (embedded profile: a
restart forgets the window). ``RedisFaucetWindow`` is shared by every gateway
worker of a local venue and survives their restarts: one sorted set per
(account, asset) of grants scored by time, trimmed and summed by one Lua
script, so two workers cannot both grant the last of the hour's allowance.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from typing import Any, Protocol

import redis.asyncio as aioredis

WINDOW = 3600.0


class FaucetWindow(Protocol):
    async def reserve(self, account: int, code: str, amount: int, cap: int) -> tuple[float, Any]:
        """Record a grant of ``amount`` if the hour's total stays within ``cap``.

        Returns ``(0.0, grant)`` when recorded, else ``(seconds until enough frees up, None)``.
        """
        ...

    async def cancel(self, account: int, code: str, grant: Any) -> None:
        """Forget a recorded grant (the deposit was refused or failed)."""
        ...


class InMemoryFaucetWindow:
    def __init__(self) -> None:
        self._grants: dict[tuple[int, str], deque[tuple[float, int]]] = {}

    async def reserve(self, account: int, code: str, amount: int, cap: int) -> tuple[float, Any]:
        now = time.monotonic()
        window = self._grants.setdefault((account, code), deque())
        while window and window[0][0] <= now - WINDOW:
            window.popleft()
        if sum(a for _, a in window) + amount > cap:
            return (WINDOW - (now - window[0][0]) if window else WINDOW), None
        grant = (now, amount)
        window.append(grant)
        return 0.0, grant

    async def cancel(self, account: int, code: str, grant: Any) -> None:
        window = self._grants.get((account, code))
        if window is not None and grant in window:
            window.remove(grant)


_RESERVE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - window)
local total = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  total = total + tonumber(string.match(member, '^(%d+):'))
end
local amount = tonumber(ARGV[1])
if total + amount > tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if oldest[2] then return tostring(window - (t - tonumber(oldest[2]))) end
  return tostring(window)
end
redis.call('ZADD', KEYS[1], t, ARGV[1] .. ':' .. ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 60)
return '0'
"""


class RedisFaucetWindow:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._reserve = client.register_script(_RESERVE)

    def _key(self, account: int, code: str) -> str:
        return f"{self.prefix}{account}:{code}"

    async def reserve(self, account: int, code: str, amount: int, cap: int) -> tuple[float, Any]:
        # Amounts are whole units (at most 2**62): exact in Lua's doubles only below 2**53, which the
        # faucet's caps are far from.
        grant = f"{amount}:{secrets.token_hex(6)}"
        wait = float(await self._reserve(keys=[self._key(account, code)],
                                         args=[amount, cap, WINDOW, grant.split(":", 1)[1]]))
        return (wait, None) if wait > 0 else (0.0, grant)

    async def cancel(self, account: int, code: str, grant: Any) -> None:
        await self.client.zrem(self._key(account, code), grant)
