"""Login throttling against password guessing: exponential backoff per username and per client IP.

Policy (:class:`BackoffPolicy`, one for usernames and a more lenient one for IPs)
-------------------------------------------------------------------------------
* Every login attempt counts against both its username and its IP *when it
  starts* (so a burst of concurrent guesses cannot all slip through before
  the first failure is recorded). A successful login clears the username's
  count and refunds its one attempt on the IP, so people sharing an office
  NAT do not lock each other out by logging in.
* The first ``free_attempts`` attempts are not slowed down. After that, the
  k-th extra attempt must wait ``base_delay * 2**k`` seconds (capped at
  ``max_delay``) after the previous one; an attempt made earlier is refused
  with the remaining wait and is *not* counted, so hammering does not extend
  the wait but gains nothing either.
* A key that sees no attempt for ``forget_after`` seconds starts over.
* Unknown usernames are throttled exactly like real ones (nothing to learn
  from the throttle about which usernames exist).
* IPv6 clients are keyed by their /64, the block one subscriber usually holds.

Defaults: username 5 free attempts, then 1 s, 2 s, 4 s, ... up to 15 min; IP
20 free attempts, same ramp. After the ramp a username gets about 4 guesses
an hour, whatever the number of IPs the attacker has.

:class:`LoginThrottle` is the interface (a Redis implementation sharing state
across gateway processes comes later); :class:`InMemoryLoginThrottle` keeps
state in this process, bounded to ``max_entries`` keys.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BackoffPolicy:
    free_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 900.0
    forget_after: float = 3600.0

    def required_gap(self, attempts: int) -> float:
        """Seconds that must separate the next attempt from the last, after ``attempts`` counted attempts."""
        extra = attempts - self.free_attempts
        if extra < 0:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(extra, 64))


USER_POLICY = BackoffPolicy()
IP_POLICY = BackoffPolicy(free_attempts=20)


class LoginThrottle(Protocol):
    def acquire(self, username: str, ip: str | None, now: float | None = None) -> float:
        """0 and the attempt is counted, or the seconds to wait before trying again (nothing counted)."""
        ...

    def succeeded(self, username: str, ip: str | None, now: float | None = None) -> None:
        """The attempt ``acquire`` allowed ended in a successful login."""
        ...


def username_key(username: str) -> str:
    return "user:" + username.strip().lower()[:64]


def ip_key(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "ip:" + ip.strip()[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return f"ip:{addr.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((addr, 64), strict=False)}"
    return f"ip:{addr}"


class InMemoryLoginThrottle:
    """Per-process throttle state. Thread-safe."""

    def __init__(
        self,
        user_policy: BackoffPolicy = USER_POLICY,
        ip_policy: BackoffPolicy = IP_POLICY,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.user_policy = user_policy
        self.ip_policy = ip_policy
        self.max_entries = max_entries
        self.clock = clock
        # key -> (counted attempts, time of the last counted attempt); least recently touched first.
        self._state: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _keys(self, username: str, ip: str | None) -> list[tuple[str, BackoffPolicy]]:
        keys = [(username_key(username), self.user_policy)]
        if ip:
            keys.append((ip_key(ip), self.ip_policy))
        return keys

    def _get(self, key: str, policy: BackoffPolicy, now: float) -> tuple[int, float]:
        attempts, last = self._state.get(key, (0, 0.0))
        if attempts and now - last >= policy.forget_after:
            return 0, 0.0
        return attempts, last

    def acquire(self, username: str, ip: str | None, now: float | None = None) -> float:
        t = self.clock() if now is None else now
        keys = self._keys(username, ip)
        with self._lock:
            wait = 0.0
            for key, policy in keys:
                attempts, last = self._get(key, policy, t)
                wait = max(wait, last + policy.required_gap(attempts) - t)
            if wait > 0:
                return wait
            for key, policy in keys:
                attempts, _ = self._get(key, policy, t)
                self._state[key] = (attempts + 1, t)
                self._state.move_to_end(key)
            self._bound(t)
            return 0.0

    def succeeded(self, username: str, ip: str | None, now: float | None = None) -> None:
        t = self.clock() if now is None else now
        with self._lock:
            self._state.pop(username_key(username), None)
            if ip:
                key = ip_key(ip)
                attempts, last = self._get(key, self.ip_policy, t)
                if attempts <= 1:
                    self._state.pop(key, None)
                else:
                    self._state[key] = (attempts - 1, last)

    def _bound(self, now: float) -> None:
        if len(self._state) <= self.max_entries:
            return
        forget = min(self.user_policy.forget_after, self.ip_policy.forget_after)
        for key in [k for k, (_, last) in self._state.items() if now - last >= forget]:
            del self._state[key]
        # Still full of live keys (a spray of usernames): drop the least recently used tenth at once,
        # so the O(n) sweep above runs at most once per max_entries / 10 new keys.
        while len(self._state) > self.max_entries * 9 // 10:
            self._state.popitem(last=False)

    def __len__(self) -> int:
        return len(self._state)
