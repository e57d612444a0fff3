"""Market data: what subscribers of book, trades and candles receive."""

from __future__ import annotations

import asyncio

import msgspec

from core.commands import Command, OrderType, Side, TimeInForce, deposit, new_order
from core.engine import open_engine
from core.instrument import Asset, make_instrument
from services.marketdata.feed import MarketData
from services.marketdata.hub import Hub
from services.matcher.records import Outcome

BTC = Asset(1, "BTC", 8)
USD = Asset(2, "USD", 8)
BTC_USD = make_instrument(1, "BTC-USD", BTC, USD, "0.01", "0.0001")
MINUTE = 60 * 10**9


class Venue:
    def __init__(self) -> None:
        self.engine = open_engine("python", [BTC_USD])
        self.hub = Hub(queue_depth=8)
        self.feed = MarketData([BTC_USD], self.hub, balances=self.engine.balance)
        self.seq = 0

    def send(self, make: object, *args: object, time: int = 0, **kwargs: object) -> None:
        self.seq += 1
        command: Command = make(self.seq, time, *args, **kwargs)  # type: ignore[operator]
        self.feed.on_outcome(Outcome(self.seq, command, None, self.engine.submit(command)))


def frames(subscription: object) -> list[dict[str, object]]:
    queue = subscription.queue  # type: ignore[attr-defined]
    out = []
    while not queue.empty():
        out.append(msgspec.json.decode(queue.get_nowait()))
    return out


def funded() -> Venue:
    venue = Venue()
    venue.send(deposit, 1, USD.id, 10**15)
    venue.send(deposit, 2, BTC.id, 10**13)
    return venue


def test_book_subscribers_get_one_coalesced_update_per_flush_with_consecutive_update_ids() -> None:
    venue = funded()
    sub = venue.hub.connect()
    venue.hub.subscribe(sub, ("book", "BTC-USD"))
    snapshot = venue.feed.book_snapshot("BTC-USD")
    venue.send(new_order, 1, 1, Side.BUY, quantity=10, price=100_00)
    venue.send(new_order, 1, 1, Side.BUY, quantity=5, price=100_00)
    venue.send(new_order, 2, 1, Side.SELL, quantity=3, price=101_00)
    venue.hub.flush()
    venue.send(new_order, 2, 1, Side.SELL, quantity=15, price=100_00)
    venue.hub.flush()
    first, second = frames(sub)
    assert first["u"] == snapshot["u"] + 1 and second["u"] == first["u"] + 1
    assert first["bids"] == [["100.00", "0.0015"]] and first["asks"] == [["101.00", "0.0003"]]
    assert second["bids"] == [["100.00", "0.0000"]]


def test_trades_are_batched_per_flush_and_candles_bucket_by_command_time() -> None:
    venue = funded()
    trades = venue.hub.connect()
    candles = venue.hub.connect()
    venue.hub.subscribe(trades, ("trades", "BTC-USD"))
    venue.hub.subscribe(candles, ("candles", "BTC-USD", "1m"))
    venue.send(new_order, 1, 1, Side.BUY, quantity=10, price=100_00, time=MINUTE * 5)
    venue.send(new_order, 2, 1, Side.SELL, quantity=4, order_type=OrderType.MARKET,
               time_in_force=TimeInForce.IOC, time=MINUTE * 5 + 1)
    venue.send(new_order, 2, 1, Side.SELL, quantity=6, order_type=OrderType.MARKET,
               time_in_force=TimeInForce.IOC, time=MINUTE * 6 + 1)
    venue.hub.flush()
    (tape,) = frames(trades)
    assert [t["quantity"] for t in tape["trades"]] == ["0.0004", "0.0006"]  # type: ignore[index]
    (candle,) = frames(candles)
    assert candle["candle"]["start"] == 360 and candle["candle"]["volume"] == "0.0006"  # type: ignore[index]
    series = venue.feed.candles[1]["1m"].recent()
    assert [(c.start // MINUTE, c.volume, c.trades) for c in series] == [(5, 4, 1), (6, 6, 1)]


def test_a_subscriber_that_falls_behind_is_cut_off_instead_of_slowing_the_others() -> None:
    venue = funded()
    slow, fast = venue.hub.connect(), venue.hub.connect()
    for sub in (slow, fast):
        venue.hub.subscribe(sub, ("book", "BTC-USD"))
    for i in range(12):
        venue.send(new_order, 1, 1, Side.BUY, quantity=1, price=90_00 + i)
        venue.hub.flush()
        frames(fast)
    assert slow.lagged and not fast.lagged


def test_account_channels_carry_own_order_events_and_balances() -> None:
    venue = funded()
    orders, balances = venue.hub.connect(), venue.hub.connect()
    venue.hub.subscribe(orders, ("orders", "2"))
    venue.hub.subscribe(balances, ("balances", "2"))
    venue.send(new_order, 1, 1, Side.BUY, quantity=10, price=100_00)
    venue.send(new_order, 2, 1, Side.SELL, quantity=10, price=100_00)
    venue.hub.flush()
    events = [f["event"] for f in frames(orders)]
    assert events == ["accepted", "trade"]
    (update,) = frames(balances)
    assert {b["asset"]: b["available"] for b in update["balances"]} == {  # type: ignore[union-attr]
        "BTC": "99999.99900000", "USD": "0.10000000"}


def test_the_hub_flushes_on_its_own_cadence() -> None:
    async def run() -> list[dict[str, object]]:
        venue = funded()
        sub = venue.hub.connect()
        venue.hub.subscribe(sub, ("book", "BTC-USD"))
        task = asyncio.create_task(venue.hub.run())
        venue.send(new_order, 1, 1, Side.BUY, quantity=1, price=99_00)
        frame = await asyncio.wait_for(sub.queue.get(), timeout=2)
        task.cancel()
        return [msgspec.json.decode(frame)]

    assert asyncio.run(run())[0]["bids"] == [["99.00", "0.0001"]]
