"""The Redis Streams log (services.log.redis_streams) against the machine's Redis: the Log invariants."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from services.log.base import LogClosed, LogError, LogTruncated
from services.log.redis_streams import (
    LogUnavailable,
    RedisStreamLog,
    check_durability,
    durability_problem,
    id_of,
    position_of,
)

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once

MakeLog = Callable[..., RedisStreamLog]


def payloads(count: int, start: int = 0) -> list[bytes]:
    return [f"record-{i:06d}".encode() for i in range(start, start + count)]


@pytest.fixture
def key(unique_prefix: str) -> str:
    return f"{unique_prefix}commands"


@pytest.fixture
def make_log(redis_url: str, key: str, unique_prefix: str) -> Iterator[MakeLog]:
    """``make_log(**options)``: a log on this test's key (as many instances as wanted, as other
    processes would open); all closed, and the test's keys deleted, afterwards."""
    logs: list[RedisStreamLog] = []

    def make(**options: int) -> RedisStreamLog:
        options.setdefault("block_ms", 200)
        log = RedisStreamLog(redis_url, key, **options)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()
    client = redis.Redis.from_url(redis_url)
    try:
        doomed = list(client.scan_iter(match=f"{unique_prefix}*"))
        if doomed:
            client.delete(*doomed)
    finally:
        client.close()


# -- positions ------------------------------------------------------------------------------


def test_a_stream_id_maps_to_an_int64_position_that_keeps_the_id_order() -> None:
    assert position_of("1700000000000-5") == 1700000000000 << 20 | 5
    assert position_of(b"1700000000000-5") == position_of("1700000000000-5")
    assert id_of(position_of("1700000000000-5")) == "1700000000000-5"
    assert position_of("1-0") > position_of("0-1048575")  # the next millisecond beats any sequence
    # "the position after p" is the smallest id after p's, also across a millisecond boundary
    assert id_of(position_of("7-1048575") + 1) == "8-0"
    assert id_of(0) == "0-0"
    # fits a signed int64 until 2**43 ms (the year 2248)
    assert position_of(f"{2**43 - 1}-{2**20 - 1}") == 2**63 - 1
    with pytest.raises(LogError, match="sequence number"):
        position_of("1700000000000-1048576")
    with pytest.raises(LogError):
        position_of("garbage")


# -- append and read ------------------------------------------------------------------------


def test_appended_records_read_back_in_order_with_increasing_positions(make_log: MakeLog) -> None:
    log = make_log()
    assert log.last_position == 0
    assert log.first_position == 1
    assert list(log.read()) == []
    records = [b"first", b"", b"\x00" * 1000, bytes(range(256)), b"last"]

    async def main() -> list[list[int]]:
        try:
            return [await log.append(records[:3]), await log.append(records[3:4]), await log.append(records[4:])]
        finally:
            await log.aclose()

    calls = asyncio.run(main())
    positions = [p for call in calls for p in call]
    assert [len(c) for c in calls] == [3, 1, 1]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(p > 0 for p in positions)

    reader = make_log()
    assert list(reader.read()) == list(zip(positions, records, strict=True))
    assert reader.last_position == positions[-1]
    assert reader.first_position == positions[0]


def test_concurrent_appends_are_group_committed_and_never_interleaved(make_log: MakeLog) -> None:
    log = make_log()
    tasks, calls_per_task, per_call = 16, 12, 3

    async def writer(task: int) -> list[tuple[list[int], list[bytes]]]:
        out = []
        for call in range(calls_per_task):
            records = [f"t{task}-c{call}-r{i}".encode() for i in range(per_call)]
            out.append((await log.append(records), records))
        return out

    async def main() -> list[tuple[list[int], list[bytes]]]:
        try:
            results = await asyncio.gather(*(writer(t) for t in range(tasks)))
        finally:
            await log.aclose()
        return [call for calls in results for call in calls]

    calls = asyncio.run(main())
    stored = list(make_log().read())
    assert len(stored) == tasks * calls_per_task * per_call
    index = {position: i for i, (position, _) in enumerate(stored)}
    for positions, records in calls:
        places = [index[p] for p in positions]
        assert places == list(range(places[0], places[0] + per_call)), "a call's records were interleaved"
        assert [stored[i][1] for i in places] == records
    assert [p for p, _ in stored] == sorted(index)
    assert log.metrics.records == len(stored)
    assert log.metrics.batches < tasks * calls_per_task, "concurrent appends were not group committed"
    assert log.metrics.largest_batch > per_call


def test_read_ranges_are_inclusive_and_end_at_the_last_position_at_the_call(make_log: MakeLog) -> None:
    log = make_log(read_batch=3)  # several XRANGE chunks per read
    records = payloads(10)
    positions = log.append_sync(records[:4]) + log.append_sync(records[4:])
    pairs = list(zip(positions, records, strict=True))

    assert list(log.read()) == pairs
    assert list(log.read(positions[2], positions[6])) == pairs[2:7]
    assert list(log.read(positions[3])) == pairs[3:]
    assert list(log.read(positions[3] + 1)) == pairs[4:]  # "after p" is p + 1, though positions are not consecutive
    assert list(log.read(positions[5], positions[5])) == [pairs[5]]
    assert list(log.read(positions[6], positions[5])) == []
    assert list(log.read(0, 0)) == []

    replay = log.read(positions[1])  # bound now: what is appended later is not part of this read
    later = log.append_sync([b"later"])
    assert list(replay) == pairs[1:]
    assert list(log.read(positions[-1])) == [pairs[-1], (later[0], b"later")]


def test_append_sync_and_append_share_one_order(make_log: MakeLog) -> None:
    log = make_log()
    first = log.append_sync([b"a", b"b"])

    async def main() -> list[int]:
        try:
            return await log.append([b"c"])
        finally:
            await log.aclose()

    second = asyncio.run(main())
    third = make_log().append_sync([b"d"])
    assert first[0] < first[1] < second[0] < third[0]
    assert list(make_log().read()) == list(zip(first + second + third, [b"a", b"b", b"c", b"d"], strict=True))
    assert log.metrics.records == 3 and log.metrics.batches == 2


def test_a_second_instance_on_the_same_key_sees_what_the_first_appended(make_log: MakeLog) -> None:
    one, two = make_log(), make_log()  # as two processes would
    mine = one.append_sync([b"from one"])
    assert two.last_position == mine[0]
    assert list(two.read()) == [(mine[0], b"from one")]
    theirs = two.append_sync([b"from two"])
    assert theirs[0] > mine[0]
    assert list(one.read(mine[0] + 1)) == [(theirs[0], b"from two")]

    async def follow() -> list[tuple[int, bytes]]:
        seen = []
        async for item in one.tail(0):
            seen.append(item)
            if len(seen) == 3:
                break
        return seen

    async def main() -> list[tuple[int, bytes]]:
        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        late = await asyncio.to_thread(two.append_sync, [b"late"])
        seen = await asyncio.wait_for(follower, 5)  # a hang guard only
        assert seen[-1] == (late[0], b"late")
        await one.aclose()
        return seen

    assert [r for _, r in asyncio.run(main())] == [b"from one", b"from two", b"late"]


def test_an_append_after_close_is_refused(make_log: MakeLog) -> None:
    log = make_log()
    log.close()
    with pytest.raises(LogClosed):
        log.append_sync([b"x"])
    with pytest.raises(LogClosed):
        asyncio.run(log.append([b"x"]))


# -- tail and wait_for ----------------------------------------------------------------------


def test_tail_replays_then_follows_each_record_once_and_ends_on_close(make_log: MakeLog) -> None:
    log = make_log(read_batch=4)
    old = log.append_sync(payloads(6))

    async def main() -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]], float]:
        seen: list[tuple[int, bytes]] = []

        async def consume() -> None:
            async for item in log.tail(old[2]):
                seen.append(item)

        consumer = asyncio.create_task(consume())
        expected = list(zip(old[2:], payloads(6)[2:], strict=True))
        for start in range(6, 30, 4):
            records = payloads(4, start)
            expected += zip(await log.append(records), records, strict=True)
            await asyncio.sleep(0.005)
        deadline = time.monotonic() + 5
        while len(seen) < len(expected) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # time for a duplicate to show up
        closed_at = time.monotonic()
        await log.aclose()
        await asyncio.wait_for(consumer, 5)  # the tail ends: a hang guard only
        return seen, expected, time.monotonic() - closed_at

    seen, expected, ended_after = asyncio.run(main())
    assert seen == expected
    assert ended_after < 1.0


def test_a_blocked_tail_ends_within_block_ms_of_a_close_from_another_thread(make_log: MakeLog) -> None:
    log = make_log(block_ms=300)

    async def main() -> float:
        async def consume() -> list[tuple[int, bytes]]:
            return [item async for item in log.tail(0)]

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.1)  # blocked in XREAD by now
        closed_at = time.monotonic()
        await asyncio.to_thread(log.close)
        assert await asyncio.wait_for(consumer, 5) == []
        return time.monotonic() - closed_at

    assert asyncio.run(main()) < 0.3 + 0.5


def test_wait_for_returns_once_any_instance_appended_the_position(make_log: MakeLog) -> None:
    log, other = make_log(), make_log()
    (first,) = other.append_sync([b"a"])

    async def main() -> None:
        assert await log.wait_for(0)
        assert await log.wait_for(first)
        waiter = asyncio.create_task(log.wait_for(first + 1))
        await asyncio.sleep(0.3)  # past one block_ms: still waiting
        assert not waiter.done()
        await asyncio.to_thread(other.append_sync, [b"b"])
        assert await asyncio.wait_for(waiter, 5)
        blocked = asyncio.create_task(log.wait_for(log.last_position + 1))
        await asyncio.sleep(0.05)
        await log.aclose()
        assert await asyncio.wait_for(blocked, 5) is False
        assert await log.wait_for(first + 10**9) is False

    asyncio.run(main())


# -- truncation -----------------------------------------------------------------------------


def test_truncate_before_keeps_the_position_and_after_and_reads_below_it_raise(make_log: MakeLog) -> None:
    log = make_log()
    positions = log.append_sync(payloads(10))
    assert [p for p, _ in log.read(positions[0] - 1)] == positions  # a log never truncated never raises

    log.truncate_before(positions[4])
    kept = list(zip(positions[4:], payloads(10)[4:], strict=True))
    assert list(log.read()) == kept
    assert list(log.read(positions[4])) == kept
    assert log.first_position == positions[4]
    assert log.last_position == positions[-1]
    with pytest.raises(LogTruncated):
        log.read(positions[3])  # raised at the call

    async def tail_from(position: int) -> None:
        tailer = make_log()
        try:
            async for _ in tailer.tail(position):
                break
        finally:
            await tailer.aclose()

    with pytest.raises(LogTruncated):
        asyncio.run(tail_from(positions[1]))

    reopened = make_log()  # the floor survives: another process, or a restart, sees it
    with pytest.raises(LogTruncated):
        reopened.read(positions[3])
    reopened.truncate_before(positions[2])  # the floor never goes down
    with pytest.raises(LogTruncated):
        reopened.read(positions[3])
    assert list(reopened.read()) == kept

    reopened.truncate_before(positions[-1] + 10**9)  # past the end: the last entry stays
    assert list(reopened.read()) == [kept[-1]]
    assert reopened.last_position == positions[-1]
    after = reopened.append_sync([b"after"])
    assert list(reopened.read()) == [kept[-1], (after[0], b"after")]


# -- durability -----------------------------------------------------------------------------


def test_check_durability_accepts_the_test_redis(redis_url: str) -> None:
    check_durability(redis_url)
    check_durability(redis_url, "everysec")
    client = redis.Redis.from_url(redis_url)
    try:
        check_durability(client, "always")
    finally:
        client.close()


@pytest.mark.parametrize(
    ("config", "require", "durable"),
    [
        ({"appendonly": "yes", "appendfsync": "always"}, "always", True),
        ({"appendonly": "yes", "appendfsync": "everysec"}, "always", False),
        ({"appendonly": "no", "appendfsync": "always"}, "always", False),
        ({"appendonly": "yes", "appendfsync": "no"}, "always", False),
        ({"appendonly": "yes", "appendfsync": "everysec"}, "everysec", True),
        ({"appendonly": "yes", "appendfsync": "always"}, "everysec", True),
        ({"appendonly": "yes", "appendfsync": "no"}, "everysec", False),
        ({"appendonly": "no", "appendfsync": "everysec"}, "everysec", False),
        ({"appendonly": "no", "appendfsync": "no"}, "none", True),
        ({}, "always", False),
    ],
)
def test_durability_decision(config: dict[str, str], require: str, durable: bool) -> None:
    problem = durability_problem(config, require, "Redis at 10.0.0.5:6379")
    assert (problem is None) is durable
    if problem is not None:
        assert "Redis at 10.0.0.5:6379" in problem
        assert "appendonly yes" in problem
        assert f"appendonly={config.get('appendonly', '?')}" in problem


def test_durability_decision_says_what_to_set() -> None:
    problem = durability_problem({"appendonly": "no", "appendfsync": "everysec"}, "always", "Redis at h:1")
    assert problem is not None
    assert "appendonly=no" in problem
    assert "appendonly yes and appendfsync always" in problem
    assert "survives a Redis crash" in problem
    with pytest.raises(ValueError):
        durability_problem({}, "sometimes")


# -- Redis unreachable --------------------------------------------------------------------


def test_an_append_while_redis_is_unreachable_raises_a_clear_error() -> None:
    log = RedisStreamLog(UNREACHABLE, "t:unreachable")
    started = time.monotonic()

    async def main() -> None:
        try:
            await log.append([b"x"])
        finally:
            await log.aclose()

    with pytest.raises(LogUnavailable, match=r"127\.0\.0\.1:1 is unreachable"):
        asyncio.run(main())
    log = RedisStreamLog(UNREACHABLE, "t:unreachable")
    with pytest.raises(LogUnavailable, match="unreachable"):
        log.append_sync([b"x"])
    with pytest.raises(LogUnavailable):
        log.last_position  # noqa: B018 - the property is the call under test
    with pytest.raises(LogUnavailable):
        log.read()
    log.close()
    with pytest.raises(LogUnavailable, match="cannot check its durability"):
        check_durability(UNREACHABLE)
    assert time.monotonic() - started < 3


class _Proxy:
    """A TCP proxy to Redis that can be cut and restored on the same port: Redis going away and
    coming back, without touching the shared server."""

    def __init__(self, target_port: int = 6379) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


def test_the_log_works_again_once_redis_is_back(redis_url: str, key: str, make_log: MakeLog) -> None:
    proxy = _Proxy()

    async def main() -> tuple[list[int], list[int]]:
        await proxy.start()
        log = RedisStreamLog(f"redis://127.0.0.1:{proxy.port}/0", key)
        try:
            before = await log.append([b"before"])
            await proxy.cut()
            with pytest.raises(LogUnavailable, match="unreachable"):
                await log.append([b"while down"])
            await proxy.start()  # same port
            after = await log.append([b"after"])
            await proxy.cut()  # Redis restarts between two appends: the pooled connection is dead
            await proxy.start()
            await asyncio.sleep(0.05)  # the closed connection's EOF has arrived
            after += await log.append([b"again"])  # no failed append first: the dead connection is replaced
            return before, after
        finally:
            await log.aclose()
            await proxy.cut()

    before, after = asyncio.run(main())
    assert [r for _, r in make_log().read()] == [b"before", b"after", b"again"]
    assert before[0] < after[0] < after[1]
