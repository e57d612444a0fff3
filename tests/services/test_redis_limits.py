"""Gateway state shared through Redis: rate-limit buckets (ratelimit_redis) and client order id claims."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis

from services.gateway.order_id_claims import ClaimsUnavailable, RedisClientOrderIds
from services.gateway.ratelimit import InMemoryRateLimiter, Limit, retry_after
from services.gateway.ratelimit_redis import RateLimiterUnavailable, RedisRateLimiter

UNREACHABLE = "redis://127.0.0.1:1/0"
T = TypeVar("T")


@pytest.fixture
def cleanup(redis_url: str, unique_prefix: str) -> Iterator[None]:
    """Delete this test's keys afterwards."""
    yield
    client = redis.Redis.from_url(redis_url)
    try:
        doomed = list(client.scan_iter(match=f"{unique_prefix}*"))
        if doomed:
            client.delete(*doomed)
    finally:
        client.close()


def run_with_limiters(redis_url: str, prefix: str, body: Callable[[RedisRateLimiter, RedisRateLimiter], Awaitable[T]]) -> T:
    """Run ``body(a, b)`` with two limiters on the same prefix, as two gateway processes would have."""

    async def main() -> T:
        a, b = RedisRateLimiter(redis_url, prefix), RedisRateLimiter(redis_url, prefix)
        try:
            return await body(a, b)
        finally:
            await a.aclose()
            await b.aclose()

    return asyncio.run(main())


# -- rate limits ------------------------------------------------------------------------------


def test_two_limiters_share_one_bucket(redis_url: str, unique_prefix: str, cleanup: None) -> None:
    limit = Limit(burst=3, rate=0.001)  # no refill to speak of during the test

    async def body(a: RedisRateLimiter, b: RedisRateLimiter) -> list[float]:
        return [await a.take("ip:1", limit), await b.take("ip:1", limit), await a.take("ip:1", limit),
                await b.take("ip:1", limit), await a.take("ip:1", limit), await b.take("ip:2", limit)]

    waits = run_with_limiters(redis_url, unique_prefix, body)
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] > 0 and waits[4] > 0  # the bucket is empty for both
    assert waits[5] == 0.0  # another key, another bucket


def test_a_refused_take_spends_nothing_and_says_when_to_come_back(
    redis_url: str, unique_prefix: str, cleanup: None
) -> None:
    limit = Limit(burst=2, rate=0.5)  # a token every 2 s

    async def body(a: RedisRateLimiter, b: RedisRateLimiter) -> list[float]:
        return [await a.take("acct:7", limit, 2), await a.take("acct:7", limit), await b.take("acct:7", limit),
                await a.take("acct:7", limit), await b.take("acct:7", limit, cost=5)]

    waits = run_with_limiters(redis_url, unique_prefix, body)
    assert waits[0] == 0.0
    for wait in waits[1:4]:  # hammering does not dig deeper: each says ~2 s, not 4, 6, ...
        assert 1.8 < wait <= 2.0
    assert 3.8 < waits[4] <= 4.0  # more than the burst: the time to refill the whole bucket
    assert retry_after(waits[1]) == "2"


def test_a_bucket_refills_at_its_rate_on_the_servers_clock(redis_url: str, unique_prefix: str, cleanup: None) -> None:
    limit = Limit(burst=1, rate=20)  # a token every 50 ms

    async def body(a: RedisRateLimiter, b: RedisRateLimiter) -> tuple[float, float, float]:
        first, refused = await a.take("k", limit), await b.take("k", limit)
        await asyncio.sleep(refused + 0.01)
        return first, refused, await b.take("k", limit)

    first, refused, later = run_with_limiters(redis_url, unique_prefix, body)
    assert first == 0.0
    assert 0.0 < refused <= 0.05
    assert later == 0.0


def test_decisions_match_the_in_memory_limiter(redis_url: str, unique_prefix: str, cleanup: None) -> None:
    limit = Limit(burst=5, rate=1e-4)
    costs = [1, 2, 1, 3, 1, 1, 0.5, 4, 0.5, 1]
    memory = InMemoryRateLimiter()
    expected = [memory.take("k", limit, c) == 0.0 for c in costs]

    async def body(a: RedisRateLimiter, b: RedisRateLimiter) -> list[bool]:
        return [await (a if i % 2 else b).take("k", limit, c) == 0.0 for i, c in enumerate(costs)]

    assert run_with_limiters(redis_url, unique_prefix, body) == expected


def test_a_bucket_key_expires_once_it_would_be_full_again(redis_url: str, unique_prefix: str, cleanup: None) -> None:
    limit = Limit(burst=10, rate=5)  # 3 tokens taken: full again in 0.6 s

    async def body(a: RedisRateLimiter, b: RedisRateLimiter) -> int:
        await a.take("idle", limit, 3)
        return int(await a.client.pttl(unique_prefix + "idle"))

    pttl = run_with_limiters(redis_url, unique_prefix, body)
    assert 600 <= pttl <= 600 + 1000 + 5  # the refill time plus a second's margin


def test_an_unreachable_redis_raises_rate_limiter_unavailable() -> None:
    async def main() -> None:
        limiter = RedisRateLimiter(UNREACHABLE, "x:")
        try:
            await limiter.take("k", Limit(1, 1))
        finally:
            await limiter.aclose()

    started = time.monotonic()
    with pytest.raises(RateLimiterUnavailable, match=r"127\.0\.0\.1:1 is unreachable"):
        asyncio.run(main())
    assert time.monotonic() - started < 3


# -- client order id claims --------------------------------------------------------------------


def run_with_claims(redis_url: str, prefix: str,
                    body: Callable[[RedisClientOrderIds, RedisClientOrderIds], Awaitable[T]], ttl: int = 60) -> T:
    """Run ``body(a, b)`` with two claim stores on the same prefix (two gateway processes)."""

    async def main() -> T:
        a, b = RedisClientOrderIds(redis_url, prefix, ttl), RedisClientOrderIds(redis_url, prefix, ttl)
        try:
            return await body(a, b)
        finally:
            await a.aclose()
            await b.aclose()

    return asyncio.run(main())


def test_one_of_two_concurrent_claims_wins_and_the_loser_gets_the_winners_answer(
    redis_url: str, unique_prefix: str, cleanup: None
) -> None:
    answer = (201, b'{"order_id": 42, "status": "new"}')

    async def body(a: RedisClientOrderIds, b: RedisClientOrderIds) -> tuple[list[bool], tuple[int, bytes] | None]:
        won = list(await asyncio.gather(a.claim(7, "abc"), b.claim(7, "abc")))
        winner, loser = (a, b) if won[0] else (b, a)
        waiting = asyncio.create_task(loser.result(7, "abc", timeout=5))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # still pending: the loser waits
        assert await winner.store_result(7, "abc", *answer)
        return won, await waiting

    won, replayed = run_with_claims(redis_url, unique_prefix, body)
    assert sorted(won) == [False, True]
    assert replayed == answer


def test_many_concurrent_claims_have_exactly_one_winner(redis_url: str, unique_prefix: str, cleanup: None) -> None:
    async def body(a: RedisClientOrderIds, b: RedisClientOrderIds) -> list[bool]:
        return list(await asyncio.gather(*((a if i % 2 else b).claim(9, "same") for i in range(20))))

    assert sum(run_with_claims(redis_url, unique_prefix, body)) == 1


def test_release_lets_a_retry_claim_but_never_drops_a_stored_answer(
    redis_url: str, unique_prefix: str, cleanup: None
) -> None:
    async def body(a: RedisClientOrderIds, b: RedisClientOrderIds) -> None:
        assert await a.claim(1, "retry-me")
        assert not await b.claim(1, "retry-me")
        await a.release(1, "retry-me")  # the winner failed before the log
        assert await b.result(1, "retry-me", timeout=1) is None  # nothing to wait for: the claim is gone
        assert await b.claim(1, "retry-me")  # the client's retry
        assert await b.store_result(1, "retry-me", 200, b"ok")
        await a.release(1, "retry-me")  # a late release of a finished claim does nothing
        assert await a.result(1, "retry-me", timeout=1) == (200, b"ok")
        assert not await a.claim(1, "retry-me")

    run_with_claims(redis_url, unique_prefix, body)


def test_result_times_out_while_the_winner_has_not_answered(
    redis_url: str, unique_prefix: str, cleanup: None
) -> None:
    async def body(a: RedisClientOrderIds, b: RedisClientOrderIds) -> float:
        assert await a.claim(3, "slow")
        started = time.monotonic()
        assert await b.result(3, "slow", timeout=0.1) is None
        return time.monotonic() - started

    assert 0.1 <= run_with_claims(redis_url, unique_prefix, body) < 0.5


def test_claims_are_per_account_and_expire(redis_url: str, unique_prefix: str, cleanup: None) -> None:
    async def body(a: RedisClientOrderIds, b: RedisClientOrderIds) -> None:
        assert await a.claim(1, "2:x")
        assert await b.claim(12, "x")  # "1" + "2:x" and "12" + "x" are different keys
        assert await b.claim(2, "2:x")
        assert 0 < await a.client.ttl(a.key(1, "2:x")) <= 60
        assert not await a.store_result(5, "never-claimed", 200, b"")  # no claim: nothing stored
        assert await a.result(5, "never-claimed", timeout=1) is None
        assert await a.store_result(1, "2:x", 422, b"body: with colons")
        assert await b.result(1, "2:x", timeout=1) == (422, b"body: with colons")
        assert 0 < await a.client.ttl(a.key(1, "2:x")) <= 60

    run_with_claims(redis_url, unique_prefix, body)


def test_an_unreachable_redis_raises_claims_unavailable() -> None:
    async def main() -> None:
        claims = RedisClientOrderIds(UNREACHABLE, "x:")
        try:
            await claims.claim(1, "a")
        finally:
            await claims.aclose()

    started = time.monotonic()
    with pytest.raises(ClaimsUnavailable, match="unreachable"):
        asyncio.run(main())
    assert time.monotonic() - started < 3


def test_a_leased_limiter_spends_locally_but_never_admits_more_than_the_shared_bucket_gave(
    redis_url: str, unique_prefix: str,
) -> None:
    from services.gateway.ratelimit_redis import LeasedRateLimiter

    async def scenario() -> tuple[int, int, float]:
        shared = RedisRateLimiter(redis_url, unique_prefix)
        first, second = LeasedRateLimiter(shared, fraction=0.1), LeasedRateLimiter(shared, fraction=0.1)
        limit = Limit(burst=100, rate=0.001)  # no refill to speak of during the test
        admitted = 0
        for i in range(300):
            limiter = first if i % 2 else second
            if await limiter.take("ip:1.2.3.4", limit) == 0:
                admitted += 1
        # After the leases, a plain take sees what the leases took from Redis: nothing left.
        left = await shared.take("ip:1.2.3.4", limit, 1)
        refused = 300 - admitted
        await shared.aclose()
        return admitted, refused, left

    admitted, refused, left = asyncio.run(scenario())
    assert admitted == 100 and refused == 200
    assert left > 0
