"""Candles per symbol and interval, bucketed by the command's time."""

from __future__ import annotations

from .venue import BTC_USD, BUY, HOUR, MINUTE, SECOND, SELL, T0, AnyStore, Venue


def _trade(venue: Venue, at: int, price: str, quantity: str) -> None:
    venue.at(at)
    venue.order(2, BTC_USD, SELL, quantity, price)
    venue.order(1, BTC_USD, BUY, quantity, price)


def _ohlc(store: AnyStore, interval: str, **kwargs: int) -> list[tuple[int, str, str, str, str, str, int]]:
    return [
        (c.start, c.open, c.high, c.low, c.close, c.volume, c.trade_count)
        for c in store.list_candles("BTC-USD", interval, **kwargs)
    ]


def test_candles_bucket_trades_by_interval_across_boundaries(venue: Venue, store: AnyStore) -> None:
    _trade(venue, T0 + 10 * SECOND, "100", "0.1")
    _trade(venue, T0 + 50 * SECOND, "120", "0.2")
    _trade(venue, T0 + MINUTE + 10 * SECOND, "90", "0.1")  # next minute
    _trade(venue, T0 + 5 * MINUTE, "110", "0.3")  # next 5 minutes, exactly on the boundary
    _trade(venue, T0 + HOUR - 1, "105", "0.1")  # the last nanosecond of the first hour
    _trade(venue, T0 + HOUR, "130", "0.1")  # next hour
    venue.sync(store)

    assert _ohlc(store, "1m") == [
        (T0, "100.00", "120.00", "100.00", "120.00", "0.3000", 2),
        (T0 + MINUTE, "90.00", "90.00", "90.00", "90.00", "0.1000", 1),
        (T0 + 5 * MINUTE, "110.00", "110.00", "110.00", "110.00", "0.3000", 1),
        (T0 + 59 * MINUTE, "105.00", "105.00", "105.00", "105.00", "0.1000", 1),
        (T0 + HOUR, "130.00", "130.00", "130.00", "130.00", "0.1000", 1),
    ]
    assert _ohlc(store, "5m") == [
        (T0, "100.00", "120.00", "90.00", "90.00", "0.4000", 3),
        (T0 + 5 * MINUTE, "110.00", "110.00", "110.00", "110.00", "0.3000", 1),
        (T0 + 55 * MINUTE, "105.00", "105.00", "105.00", "105.00", "0.1000", 1),
        (T0 + HOUR, "130.00", "130.00", "130.00", "130.00", "0.1000", 1),
    ]
    assert _ohlc(store, "1h") == [
        (T0, "100.00", "120.00", "90.00", "105.00", "0.8000", 5),
        (T0 + HOUR, "130.00", "130.00", "130.00", "130.00", "0.1000", 1),
    ]
    (first,) = store.list_candles("BTC-USD", "1h", limit=1, since=T0)
    # 0.1 x 100 + 0.2 x 120 + 0.1 x 90 + 0.3 x 110 + 0.1 x 105 = 86.5 USD
    assert first.quote_volume == "86.500000"


def test_a_candle_built_over_several_batches_equals_one_built_in_one(venue: Venue, store: AnyStore) -> None:
    _trade(venue, T0 + 1 * SECOND, "100", "0.1")
    venue.sync(store)
    _trade(venue, T0 + 2 * SECOND, "95", "0.1")
    venue.sync(store)
    _trade(venue, T0 + 3 * SECOND, "101", "0.1")
    _trade(venue, T0 + 4 * SECOND, "99", "0.1")
    venue.sync(store)
    assert _ohlc(store, "1m") == [(T0, "100.00", "101.00", "95.00", "99.00", "0.4000", 4)]


def test_candles_since_start_at_the_bucket_holding_it_and_limit_keeps_the_latest(
    venue: Venue, store: AnyStore,
) -> None:
    for minute in range(5):
        _trade(venue, T0 + minute * MINUTE + SECOND, str(100 + minute), "0.1")
    venue.sync(store)
    assert [c[0] for c in _ohlc(store, "1m", since=T0 + 2 * MINUTE + 30 * SECOND)] == [
        T0 + 2 * MINUTE, T0 + 3 * MINUTE, T0 + 4 * MINUTE,
    ]
    assert [c[0] for c in _ohlc(store, "1m", since=T0, limit=2)] == [T0, T0 + MINUTE]
    assert [c[0] for c in _ohlc(store, "1m", limit=2)] == [T0 + 3 * MINUTE, T0 + 4 * MINUTE]
    assert store.list_candles("ETH-USD", "1m") == []
