"""Rate limits: token buckets per key (an IP, an account), behind a small interface.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second. A request takes ``cost`` tokens (1 for most; register and login cost
more of their IP's bucket, since each is an Argon2 hash); when the bucket
has fewer, the request is refused with the seconds until it would have
enough (the ``Retry-After`` of the 429) and takes nothing, so a client that
keeps hammering does not dig itself deeper.

Policy (``control.config.RateLimits``): every request spends from its IP's
bucket; every authenticated request also spends from its account's bucket,
so many accounts behind one address and many addresses of one account are
both bounded. WebSocket order placement spends from the account's bucket too.

``RateLimiter`` is the interface; ``InMemoryRateLimiter`` keeps the buckets
in this process (bounded: the least recently used key is forgotten first, as
if full). A Redis implementation (one Lua script per take) can replace it for
several gateway processes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Limit:
    burst: float
    rate: float  # tokens per second

    def __post_init__(self) -> None:
        if self.burst <= 0 or self.rate <= 0:
            raise ValueError("a rate limit needs a positive burst and rate")


class RateLimiter(Protocol):
    def take(self, key: str, limit: Limit, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of ``key``'s bucket: 0.0 if allowed, else the seconds to wait."""
        ...


class InMemoryRateLimiter:
    """Token buckets in a dict. Thread-safe."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> float:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (limit.burst, now))
            tokens = min(limit.burst, tokens + (now - at) * limit.rate)
            if tokens >= cost:
                tokens -= cost
                wait = 0.0
            else:
                wait = (min(cost, limit.burst) - tokens) / limit.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
