"""A symbol's book as market data sees it: price levels and an update counter.

It is built from the engine's BOOK events (price level, new total) and can be
seeded from the engine's depth. ``update_id`` counts the updates published
for the symbol; a subscriber that receives an update whose id is not its
last one plus one has missed something and resubscribes for a snapshot.
"""

from __future__ import annotations

from core.commands import Side

_BUY = int(Side.BUY)


class BookView:
    def __init__(self, symbol: int) -> None:
        self.symbol = symbol
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.update_id = 0
        self.seq = 0  # the engine sequence the view reflects

    def seed(self, bids: list[tuple[int, int, int]], asks: list[tuple[int, int, int]], seq: int) -> None:
        self.bids = {price: total for price, total, _ in bids}
        self.asks = {price: total for price, total, _ in asks}
        self.seq = seq

    def apply(self, side: int, price: int, total: int) -> None:
        levels = self.bids if side == _BUY else self.asks
        if total:
            levels[price] = total
        else:
            levels.pop(price, None)

    def depth(self, levels: int = 50) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = sorted(self.bids.items(), reverse=True)[:levels]
        asks = sorted(self.asks.items())[:levels]
        return bids, asks

    def best(self) -> tuple[int, int]:
        return (max(self.bids) if self.bids else 0, min(self.asks) if self.asks else 0)
