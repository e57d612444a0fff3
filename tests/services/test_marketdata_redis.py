"""Market data across processes (local profile): publisher replicas, Redis pub/sub, gateway feeds.

An engine shard runs over file journals as in production; the publisher
reads only its event log and snapshots; each ``RedisMarketFeed`` stands for
one gateway process (its own Redis connections and its own ``Hub``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio

from core.commands import Command, CommandKind, OrderType, Side, TimeInForce, cancel, deposit, new_order
from core.engine import open_engine
from core.events import EventKind
from core.instrument import Asset, make_instrument
from services.intake.intake import Intake
from services.log.journal import Journal
from services.marketdata.hub import Hub, Subscription
from services.marketdata.publisher import (
    MarketDataPublisher,
    ReplicaDiverged,
    ShardReplica,
    ShardSource,
    book_key,
    md_channel,
    trades_key,
)
from services.marketdata.subscriber import RedisMarketFeed
from services.matcher.records import Outcome, encode_outcome
from services.matcher.shard import EngineShard
from services.matcher.snapshots import DiskSnapshotStore

BTC = Asset(1, "BTC", 8)
USD = Asset(2, "USD", 8)
BTC_USD = make_instrument(1, "BTC-USD", BTC, USD, "0.01", "0.0001", taker_fee_bps=10, maker_fee_bps=5)
ACCOUNTS = (1, 2, 3, 4)
QUEUE = 100_000  # test subscriptions must never be cut off as lagging


@pytest.fixture
def prefix(redis_url: str, unique_prefix: str) -> Iterator[str]:
    yield unique_prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{unique_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class Venue:
    """One engine shard over journals, fed like the gateway feeds it (Intake), every outcome recorded."""

    def __init__(self, data: Path, seed: int = 7) -> None:
        self.data = data
        self.shard = EngineShard(open_engine("python", [BTC_USD]), Journal(data / "commands"),
                                 Journal(data / "events"), DiskSnapshotStore(data / "snapshots"))
        self.shard.recover()
        self.intake = Intake(self.shard.command_log)
        self.shard.subscribe(self.intake.on_outcome)
        self.outcomes: list[Outcome] = []
        self.shard.subscribe(self.outcomes.append)
        self.rng = random.Random(seed)
        self.open_orders: list[tuple[int, int]] = []  # (account, order id)
        self.runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.runner = asyncio.create_task(self.shard.run())

    async def stop(self) -> None:
        await self.shard.flush()
        assert self.runner is not None
        self.runner.cancel()
        self.shard.command_log.close()
        self.shard.event_log.close()

    def source(self) -> ShardSource:
        return ShardSource(self.shard.event_log, DiskSnapshotStore(self.data / "snapshots"),
                           partial(open_engine, "python", [BTC_USD]), [BTC_USD])

    async def fund(self) -> None:
        for account in ACCOUNTS:
            await self.intake.submit(deposit(0, 0, account, USD.id, 10**15))
            await self.intake.submit(deposit(0, 0, account, BTC.id, 10**13))

    def _command(self) -> Command:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15 and self.open_orders:
            account, order_id = self.open_orders.pop(rng.randrange(len(self.open_orders)))
            return cancel(0, 0, account, order_id)
        account = rng.choice(ACCOUNTS)
        side = rng.choice((Side.BUY, Side.SELL))
        if roll < 0.25:
            return new_order(0, 0, account, 1, side, quantity=rng.randint(1, 30), order_type=OrderType.MARKET,
                             time_in_force=TimeInForce.IOC)
        offset = rng.randint(-12, 12)  # prices cross often: trades, and levels come and go
        price = 100_00 + (offset if side == Side.SELL else -offset)
        return new_order(0, 0, account, 1, side, quantity=rng.randint(1, 50), price=price)

    async def trade(self, commands: int, burst: int = 10) -> None:
        """Random orders, in concurrent bursts so the shard and the publisher see batches."""
        for start in range(0, commands, burst):
            outcomes = await asyncio.gather(*(self.intake.submit(self._command())
                                              for _ in range(min(burst, commands - start))))
            for outcome in outcomes:
                if outcome.command.kind == CommandKind.NEW_ORDER:
                    for event in outcome.events:
                        if event.kind == int(EventKind.ACCEPTED):
                            self.open_orders.append((event.account, event.order_id))

    def depth(self) -> dict[str, list[list[str]]]:
        bids, asks = self.shard.engine.depth(BTC_USD.id, 1_000)
        fmt_p, fmt_q = BTC_USD.format_price, BTC_USD.format_quantity
        return {"bids": [[fmt_p(p), fmt_q(q)] for p, q, _ in bids],
                "asks": [[fmt_p(p), fmt_q(q)] for p, q, _ in asks]}


def frames(subscription: Subscription) -> list[dict[str, Any]]:
    out = []
    while not subscription.queue.empty():
        out.append(msgspec.json.decode(subscription.queue.get_nowait()))
    return out


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def settled(venue: Venue, publisher: MarketDataPublisher, *feeds: RedisMarketFeed) -> None:
    """Wait until the publisher applied and sent everything, and every feed has received it."""
    await venue.shard.flush()
    await eventually(lambda: publisher.replicas[0].engine.sequence == venue.shard.seq)
    # The round in flight may have flushed before the last outcome; the one after it has not.
    cycles = publisher.hub.cycles
    await eventually(lambda: publisher.hub.cycles >= cycles + 2)
    # Pub/sub keeps order per connection: once a marker sent now arrives, so has every earlier frame.
    markers = []
    for feed in feeds:
        marker = feed.hub.connect()
        feed.hub.subscribe(marker, ("test", "marker"))
        markers.append(marker)
    await publisher.redis.publish(md_channel(publisher.prefix, ("test", "marker")), b"{}")
    await eventually(lambda: all(not marker.queue.empty() for marker in markers))


def book_stream(received: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The snapshot and the deltas after it, with ``u`` checked consecutive (no gap, no duplicate)."""
    books = [f for f in received if f["type"] in ("book_snapshot", "book")]
    assert books and books[0]["type"] == "book_snapshot"
    snapshot, deltas = books[0], books[1:]
    assert all(f["type"] == "book" for f in deltas)
    assert [f["u"] for f in deltas] == list(range(snapshot["u"] + 1, snapshot["u"] + 1 + len(deltas)))
    return snapshot, deltas


def apply_book(snapshot: dict[str, Any], deltas: list[dict[str, Any]]) -> dict[str, list[list[str]]]:
    bids = {p: q for p, q in snapshot["bids"]}
    asks = {p: q for p, q in snapshot["asks"]}
    for delta in deltas:
        for levels, changes in ((bids, delta["bids"]), (asks, delta["asks"])):
            for price, quantity in changes:
                if Decimal(quantity):
                    levels[price] = quantity
                else:
                    levels.pop(price, None)
    return {"bids": [[p, bids[p]] for p in sorted(bids, key=Decimal, reverse=True)],
            "asks": [[p, asks[p]] for p in sorted(asks, key=Decimal)]}


async def open_feed(redis_url: str, prefix: str) -> tuple[RedisMarketFeed, Hub]:
    hub = Hub(queue_depth=QUEUE)
    feed = RedisMarketFeed(redis_url, prefix, [BTC_USD], hub)
    await feed.start()
    return feed, hub


def test_replica_catches_up_and_two_gateways_get_consecutive_book_deltas_and_the_same_trades(
        tmp_path: Path, redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        venue = Venue(tmp_path)
        venue.start()
        await venue.fund()
        await venue.trade(150)
        snapshot = await venue.shard.snapshot()
        await venue.trade(100)  # history after the snapshot: the replica must replay it
        await venue.shard.flush()

        publisher = MarketDataPublisher([venue.source()], redis_url, prefix, interval=0.002)
        await publisher.start()
        replica = publisher.replicas[0]
        # (a) snapshot + event log = the shard, exactly
        assert replica.snapshot_seq == snapshot.seq < replica.engine.sequence == venue.shard.seq
        assert replica.engine.state_hash() == venue.shard.engine.state_hash()

        (feed1, hub1), (feed2, hub2) = await open_feed(redis_url, prefix), await open_feed(redis_url, prefix)
        book = hub1.connect()
        hub1.subscribe(book, ("trades", "BTC-USD"))  # a subscription may hold several channels
        await feed1.subscribe_book(book, "BTC-USD", 1000)
        tape2 = hub2.connect()
        hub2.subscribe(tape2, ("trades", "BTC-USD"))
        first_new = len(venue.outcomes)

        runner = asyncio.create_task(publisher.run())
        await venue.trade(300)
        await settled(venue, publisher, feed1, feed2)

        assert replica.engine.state_hash() == venue.shard.engine.state_hash()
        received = frames(book)
        snap, deltas = book_stream(received)
        assert snap["seq"] == venue.outcomes[first_new - 1].seq  # the state the publisher started from
        assert len(deltas) > 5
        assert apply_book(snap, deltas) == venue.depth()
        # The stored snapshot is the same book, at the last delta's u.
        stored = await feed2.book_snapshot("BTC-USD", 1000)
        assert stored["u"] == deltas[-1]["u"]
        assert {"bids": stored["bids"], "asks": stored["asks"]} == venue.depth()

        # (c) both gateways got every trade since the publisher started, once, in order
        expected = [(e.seq, e.index) for o in venue.outcomes[first_new:] for e in o.events
                    if e.kind == int(EventKind.TRADE)]
        assert len(expected) > 20
        for tape in ([f for f in received if f["type"] == "trades"], frames(tape2)):
            assert [(t["seq"], t["index"]) for f in tape for t in f["trades"]] == expected
        latest = await feed1.latest_trades("BTC-USD", 1000)
        assert [(t["seq"], t["index"]) for t in latest] == expected

        publisher.stop()
        await runner
        for feed in (feed1, feed2):
            await feed.close()
        await publisher.close()
        await venue.stop()

    asyncio.run(scenario())


def test_orders_and_balances_frames_reach_only_their_account_with_the_replicas_balances(
        tmp_path: Path, redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        venue = Venue(tmp_path, seed=11)
        venue.start()
        await venue.fund()
        await venue.trade(50)
        await venue.shard.flush()
        publisher = MarketDataPublisher([venue.source()], redis_url, prefix, interval=0.002)
        await publisher.start()
        feed, hub = await open_feed(redis_url, prefix)
        mine = {account: hub.connect() for account in (1, 2)}
        for account, subscription in mine.items():
            hub.subscribe(subscription, ("orders", str(account)))
            hub.subscribe(subscription, ("balances", str(account)))
        first_new = len(venue.outcomes)
        runner = asyncio.create_task(publisher.run())
        await venue.trade(200)
        await settled(venue, publisher, feed)

        for account, subscription in mine.items():
            received = frames(subscription)
            events = [f for f in received if f["type"] == "order_event"]
            expected = [(e.seq, e.index) for o in venue.outcomes[first_new:] for e in o.events
                        if e.kind in {int(k) for k in (EventKind.ACCEPTED, EventKind.REJECTED, EventKind.TRADE,
                                                       EventKind.CANCELLED, EventKind.EXPIRED, EventKind.AMENDED,
                                                       EventKind.TRIGGERED)}
                        and (e.account == account or (e.kind == int(EventKind.TRADE) and e.maker_account == account))]
            # A self-trade is one event for both sides: the account's channel carries it twice.
            assert sorted({(f["seq"], f["index"]) for f in events}) == sorted(set(expected))
            balances = [f for f in received if f["type"] == "balances"]
            assert balances
            engine = venue.shard.engine
            assert balances[-1]["balances"] == [
                {"asset": asset.code, "available": asset.format(engine.balance(account, asset.id)[0]),
                 "held": asset.format(engine.balance(account, asset.id)[1])}
                for asset in (BTC, USD)
            ]
        publisher.stop()
        await runner
        await feed.close()
        await publisher.close()
        await venue.stop()

    asyncio.run(scenario())


def test_subscribers_joining_mid_stream_get_the_snapshot_then_every_later_delta_once(
        tmp_path: Path, redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        venue = Venue(tmp_path, seed=23)
        venue.start()
        await venue.fund()
        await venue.trade(40)
        await venue.shard.flush()
        publisher = MarketDataPublisher([venue.source()], redis_url, prefix, interval=0.001)
        runner = asyncio.create_task(publisher.run())
        feeds = [await open_feed(redis_url, prefix) for _ in range(2)]
        flow = asyncio.create_task(venue.trade(400, burst=4))
        joined: list[Subscription] = []
        while not flow.done():  # join over and over while frames are in flight, from both gateways
            feed, hub = feeds[len(joined) % 2]
            subscription = hub.connect()
            await feed.subscribe_book(subscription, "BTC-USD", 1000)
            joined.append(subscription)
            await asyncio.sleep(0.003)
        await flow
        await settled(venue, publisher, *(feed for feed, _ in feeds))

        assert len(joined) > 10
        final = venue.depth()
        for subscription in joined:
            snapshot, deltas = book_stream(frames(subscription))
            assert apply_book(snapshot, deltas) == final
        publisher.stop()
        await runner
        for feed, _ in feeds:
            await feed.close()
        await publisher.close()
        await venue.stop()

    asyncio.run(scenario())


def _book_frame(u: int) -> bytes:
    return msgspec.json.encode({"type": "book", "symbol": "BTC-USD", "u": u, "seq": u, "bids": [], "asks": []})


@pytest.mark.parametrize("stream_ahead", [True, False], ids=["stream-ahead-of-read", "stream-behind-read"])
def test_subscribe_book_lines_up_the_stream_with_the_snapshot_whichever_arrives_first(
        redis_url: str, prefix: str, stream_ahead: bool) -> None:
    """Frames ``u`` 4..7 around a snapshot at ``u`` 5: the client gets the snapshot, then 6, 7 only."""

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.set(book_key(prefix, "BTC-USD"), msgspec.json.encode(
            {"type": "book_snapshot", "symbol": "BTC-USD", "u": 5, "seq": 5, "bids": [], "asks": []}))
        hub = Hub(queue_depth=QUEUE)
        feed = RedisMarketFeed(redis_url, prefix, [BTC_USD], hub)  # frames injected, no pub/sub needed
        raw = md_channel(prefix, ("book", "BTC-USD")).encode()
        subscription = hub.connect()
        joining = asyncio.create_task(feed.subscribe_book(subscription, "BTC-USD", 10))
        await asyncio.sleep(0)  # subscribe_book is now holding, its read in flight
        for u in (4, 5, 6) if stream_ahead else (4,):
            feed.on_frame(raw, _book_frame(u))
        await joining
        for u in (7,) if stream_ahead else (5, 6, 7):
            feed.on_frame(raw, _book_frame(u))
        received = frames(subscription)
        assert [(f["type"], f["u"]) for f in received] == [("book_snapshot", 5), ("book", 6), ("book", 7)]
        assert not feed._waiting and subscription.held is None
        await feed.close()
        await client.aclose()

    asyncio.run(scenario())


def test_publisher_restart_keeps_u_increasing_and_the_trades_list_capped(
        tmp_path: Path, redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        venue = Venue(tmp_path, seed=5)
        venue.start()
        await venue.fund()
        feed, _ = await open_feed(redis_url, prefix)

        async def publish_while(trade: int) -> None:
            publisher = MarketDataPublisher([venue.source()], redis_url, prefix, interval=0.002, trades_kept=10)
            runner = asyncio.create_task(publisher.run())
            await venue.trade(trade)
            await settled(venue, publisher, feed)
            assert publisher.replicas[0].engine.state_hash() == venue.shard.engine.state_hash()
            publisher.stop()
            await runner
            await publisher.close()

        await publish_while(150)
        first = await feed.book_snapshot("BTC-USD", 1000)
        await publish_while(0)  # a restart with no change in between: clients may go on with the same u
        assert await feed.book_snapshot("BTC-USD", 1000) == first
        await venue.trade(40)  # changes nobody published: the next u must jump, so followers resubscribe
        await venue.shard.flush()
        await publish_while(0)
        after = await feed.book_snapshot("BTC-USD", 1000)
        assert after["u"] == first["u"] + 1
        assert {"bids": after["bids"], "asks": after["asks"]} == venue.depth()
        client = redis.asyncio.Redis.from_url(redis_url)
        assert await client.llen(trades_key(prefix, "BTC-USD")) == 10
        await client.aclose()
        await feed.close()
        await venue.stop()

    asyncio.run(scenario())


def test_the_replica_stops_loudly_on_a_gap_or_a_different_outcome_and_skips_what_it_has(tmp_path: Path) -> None:
    async def history() -> list[Outcome]:
        venue = Venue(tmp_path, seed=3)
        venue.start()
        await venue.fund()
        await venue.trade(30)
        await venue.stop()
        return venue.outcomes

    outcomes = asyncio.run(history())
    source = ShardSource(Journal(tmp_path / "unused"), DiskSnapshotStore(tmp_path / "none"),
                         partial(open_engine, "python", [BTC_USD]), [BTC_USD])
    try:
        replica = ShardReplica(source)
        for position, outcome in enumerate(outcomes[:20], start=1):
            assert replica.apply(position, encode_outcome(outcome)) == outcome
        assert replica.apply(21, encode_outcome(outcomes[19])) is None  # written twice: skipped
        with pytest.raises(ReplicaDiverged, match="gap"):
            replica.apply(22, encode_outcome(outcomes[21]))
        trade = next(o for o in outcomes[20:] if any(e.kind == int(EventKind.TRADE) for e in o.events))
        replica = ShardReplica(source)
        for outcome in outcomes:
            if outcome is trade:
                break
            replica.apply(outcome.seq, encode_outcome(outcome))
        forged = Outcome(trade.position, trade.command, None,
                         [e._replace(price=e.price + 1) if e.kind == int(EventKind.TRADE) else e
                          for e in trade.events])
        with pytest.raises(ReplicaDiverged, match="did not reproduce"):
            replica.apply(trade.seq, encode_outcome(forged))
    finally:
        source.event_log.close()
