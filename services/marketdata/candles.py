"""Candles (OHLCV) built from trades, by the command time that made them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

INTERVALS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600}
_NS = 1_000_000_000


@dataclass(slots=True)
class Candle:
    start: int  # bucket start, ns since the epoch
    open: int
    high: int
    low: int
    close: int
    volume: int  # lots
    quote_volume: int  # quote units
    trades: int


class CandleSeries:
    """The most recent candles of one symbol and interval."""

    def __init__(self, interval: str, keep: int = 1_000) -> None:
        self.interval = interval
        self.width = INTERVALS[interval] * _NS
        self.candles: deque[Candle] = deque(maxlen=keep)

    def add_trade(self, time_ns: int, price: int, quantity: int, quote_amount: int) -> Candle:
        start = time_ns - time_ns % self.width
        last = self.candles[-1] if self.candles else None
        if last is None or start > last.start:
            last = Candle(start, price, price, price, price, 0, 0, 0)
            self.candles.append(last)
        # A trade stamped before the newest bucket (clock skew between
        # gateways) is counted in the newest bucket rather than rewriting history.
        last.high = max(last.high, price)
        last.low = min(last.low, price)
        last.close = price
        last.volume += quantity
        last.quote_volume += quote_amount
        last.trades += 1
        return last

    def recent(self, limit: int = 500, since: int = 0) -> list[Candle]:
        out = [c for c in self.candles if c.start >= since]
        return out[-limit:]
