"""Fills (one per side of a trade), the public tape, and fees in the asset each side receives."""

from __future__ import annotations

from decimal import Decimal

from .streams import assert_matches_engine
from .venue import BTC_USD, BUY, ETH_USD, SELL, AnyStore, Venue


def test_a_trade_gives_a_maker_fill_and_a_taker_fill_with_fees_in_the_received_asset(
    venue: Venue, store: AnyStore,
) -> None:
    maker = venue.order(2, BTC_USD, SELL, "0.4", "50000")
    taker = venue.order(1, BTC_USD, BUY, "0.4", "50000")
    venue.sync(store)

    (taker_fill,) = store.list_fills(1)
    (maker_fill,) = store.list_fills(2)
    assert (taker_fill.order_id, taker_fill.side, taker_fill.liquidity) == (taker, "buy", "taker")
    assert (maker_fill.order_id, maker_fill.side, maker_fill.liquidity) == (maker, "sell", "maker")
    assert (taker_fill.price, taker_fill.quantity) == ("50000.00", "0.4000")
    assert (taker_fill.trade_seq, taker_fill.trade_index) == (maker_fill.trade_seq, maker_fill.trade_index)
    assert taker_fill.trade_seq == taker
    # The buyer (taker, 20 bps) pays in base; the seller (maker, 10 bps) in quote.
    assert (taker_fill.fee, taker_fill.fee_asset) == ("0.00080000", "BTC")
    assert (maker_fill.fee, maker_fill.fee_asset) == ("20.000000", "USD")
    assert taker_fill.time == venue.time

    balances = {(b.account, b.asset): b for b in store.balances(1) + store.balances(2) + store.balances(0)}
    assert balances[(1, "BTC")].total == "100.39920000"
    assert balances[(1, "USD")].total == "980000.000000"
    assert balances[(2, "BTC")].total == "99.60000000"
    assert balances[(2, "USD")].total == "1019980.000000"
    assert (balances[(0, "BTC")].total, balances[(0, "USD")].total) == ("0.00080000", "20.000000")
    assert_matches_engine(venue, store, 3)


def test_a_sell_taker_pays_its_fee_in_quote_and_the_buy_maker_in_base(venue: Venue, store: AnyStore) -> None:
    venue.order(2, ETH_USD, BUY, "2", "2000")
    venue.order(1, ETH_USD, SELL, "2", "2000")
    venue.sync(store)
    (taker_fill,) = store.list_fills(1)
    (maker_fill,) = store.list_fills(2)
    assert (taker_fill.fee, taker_fill.fee_asset) == ("10.000000", "USD")  # 25 bps of 4000 USD
    assert (maker_fill.fee, maker_fill.fee_asset) == ("0.00100000", "ETH")  # 5 bps of 2 ETH
    assert_matches_engine(venue, store, 3)


def test_a_taker_sweeping_levels_gets_one_fill_per_maker(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    venue.order(3, BTC_USD, SELL, "0.2", "50000")
    venue.order(2, BTC_USD, SELL, "0.3", "50100")
    venue.order(1, BTC_USD, BUY, "0.5", "50100")
    venue.sync(store)
    fills = store.list_fills(1)
    assert [(f.price, f.quantity) for f in fills] == [("50100.00", "0.2000"), ("50000.00", "0.2000"), ("50000.00", "0.1000")]
    assert sum(Decimal(f.fee) for f in fills) == Decimal("0.001")
    assert [f.quantity for f in store.list_fills(2)] == ["0.2000", "0.1000"]
    assert [f.quantity for f in store.list_fills(1, limit=1)] == ["0.2000"]
    assert_matches_engine(venue, store, 3)


def test_fills_filter_by_symbol(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    venue.order(1, BTC_USD, BUY, "0.1", "50000")
    venue.order(2, ETH_USD, SELL, "1", "2000")
    venue.order(1, ETH_USD, BUY, "1", "2000")
    venue.sync(store)
    assert [f.symbol for f in store.list_fills(1)] == ["ETH-USD", "BTC-USD"]
    assert [f.symbol for f in store.list_fills(1, symbol="BTC-USD")] == ["BTC-USD"]


def test_the_tape_records_each_trade_with_its_aggressor_side_newest_first(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    venue.order(1, BTC_USD, BUY, "0.1", "50000")
    venue.order(2, BTC_USD, BUY, "0.2", "49000")
    venue.order(1, BTC_USD, SELL, "0.2", "49000")
    venue.sync(store)
    tape = store.list_trades("BTC-USD")
    assert [(t.price, t.quantity, t.aggressor_side) for t in tape] == [
        ("49000.00", "0.2000", "sell"), ("50000.00", "0.1000", "buy"),
    ]
    assert store.list_trades(ETH_USD.id) == []


def test_an_orders_fills_are_listed_oldest_first_and_only_for_its_account(venue: Venue, store: AnyStore) -> None:
    first_ask = venue.order(2, BTC_USD, SELL, "0.1", "50000")
    venue.order(3, BTC_USD, SELL, "0.2", "50000")
    venue.order(2, BTC_USD, SELL, "0.3", "50100")
    taker = venue.order(1, BTC_USD, BUY, "0.5", "50100")
    own = venue.order(2, BTC_USD, BUY, "0.1", "50100")  # trades with account 2's own ask (no STP)
    venue.sync(store)

    fills = store.list_order_fills(1, taker)
    assert [(f.price, f.quantity, f.liquidity) for f in fills] == [
        ("50000.00", "0.1000", "taker"), ("50000.00", "0.2000", "taker"), ("50100.00", "0.2000", "taker"),
    ]
    assert all(f.order_id == taker and f.account == 1 and f.trade_seq == taker for f in fills)
    assert [f.trade_index for f in fills] == sorted(f.trade_index for f in fills)
    (maker_fill,) = store.list_order_fills(2, first_ask)
    assert (maker_fill.quantity, maker_fill.liquidity, maker_fill.trade_seq) == ("0.1000", "maker", taker)
    (own_fill,) = store.list_order_fills(2, own)  # its side only, not the maker side of the same trade
    assert (own_fill.order_id, own_fill.side, own_fill.liquidity) == (own, "buy", "taker")
    assert store.list_order_fills(2, taker) == []  # another account's order
    assert store.list_order_fills(1, 10**9) == []
