"""The order book of one instrument: price levels in price-time priority, and stops.

Layout
------
Each side keeps a dict ``price -> Level`` and a sorted list of *priority
keys* with the best level last: a bid's key is its price, an ask's key is
minus its price. The best level is therefore ``keys[-1]`` on both sides,
popped in O(1) when it empties; a new level is placed by bisection (a memmove
of a few hundred machine words at most for a realistic book).

A level is a FIFO queue of orders plus the running total of their open
quantity. Cancelled orders stay in the queue with ``leaves == 0`` until they
reach the front or the queue is compacted, so cancel is O(1).

Stops wait in two lists sorted so that the ones a price move reaches first
come first: buy stops by (stop price, id), sell stops by (-stop price, id).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from core.commands import Side
from core.instrument import Instrument

from .order import Order

_BUY = int(Side.BUY)


class Level:
    __slots__ = ("price", "total", "count", "orders")

    def __init__(self, price: int) -> None:
        self.price = price
        self.total = 0
        self.count = 0
        self.orders: deque[Order] = deque()

    def live_orders(self) -> list[Order]:
        return [o for o in self.orders if o.leaves]


class BookSide:
    __slots__ = ("side", "sign", "levels", "keys")

    def __init__(self, side: int) -> None:
        self.side = side
        self.sign = 1 if side == _BUY else -1
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def add(self, order: Order) -> Level:
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level(price)
            insort(self.keys, price * self.sign)
        level.orders.append(order)
        level.total += order.leaves
        level.count += 1
        return level

    def unlink(self, order: Order) -> Level:
        """Take a resting order out of its level (the level may be left empty)."""
        level = self.levels[order.price]
        level.total -= order.leaves
        level.count -= 1
        order.leaves = 0
        queue = level.orders
        while queue and not queue[0].leaves:
            queue.popleft()
        while queue and not queue[-1].leaves:
            queue.pop()
        if len(queue) > 2 * level.count + 16:
            level.orders = deque([o for o in queue if o.leaves])
        return level

    def drop_if_empty(self, level: Level) -> None:
        if level.total == 0:
            del self.levels[level.price]
            keys = self.keys
            key = level.price * self.sign
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]

    def levels_best_first(self) -> list[Level]:
        levels = self.levels
        sign = self.sign
        return [levels[key * sign] for key in reversed(self.keys)]


class OrderBook:
    __slots__ = (
        "instrument", "symbol", "bids", "asks", "last_price", "buy_stops", "sell_stops",
        "base_id", "quote_id", "base_per_lot", "quote_per_tick_lot", "min_quantity", "max_quantity",
        "max_price", "price_band_bps", "maker_fee_bps", "taker_fee_bps", "reference_price",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.id
        # The instrument's integers, copied here because the hot path reads them on every order.
        self.base_id = instrument.base.id
        self.quote_id = instrument.quote.id
        self.base_per_lot = instrument.base_per_lot
        self.quote_per_tick_lot = instrument.quote_per_tick_lot
        self.min_quantity = instrument.min_quantity
        self.max_quantity = instrument.max_quantity
        self.max_price = instrument.max_price
        self.price_band_bps = instrument.price_band_bps
        self.maker_fee_bps = instrument.maker_fee_bps
        self.taker_fee_bps = instrument.taker_fee_bps
        self.reference_price = instrument.reference_price
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        self.last_price = 0
        self.buy_stops: list[tuple[int, int]] = []
        self.sell_stops: list[tuple[int, int]] = []

    def side(self, side: int) -> BookSide:
        return self.bids if side == _BUY else self.asks

    def in_band(self, price: int) -> bool:
        band = self.price_band_bps
        reference = self.last_price or self.reference_price
        if not band or not reference:
            return True
        width = reference * band // 10_000
        return reference - width <= price <= reference + width

    def would_cross(self, side: int, price: int) -> bool:
        if side == _BUY:
            keys = self.asks.keys
            return bool(keys) and -keys[-1] <= price
        keys = self.bids.keys
        return bool(keys) and keys[-1] >= price

    # Stops --------------------------------------------------------------
    def add_stop(self, order: Order) -> None:
        if order.side == _BUY:
            insort(self.buy_stops, (order.stop_price, order.order_id))
        else:
            insort(self.sell_stops, (-order.stop_price, order.order_id))

    def remove_stop(self, order: Order) -> None:
        if order.side == _BUY:
            stops, entry = self.buy_stops, (order.stop_price, order.order_id)
        else:
            stops, entry = self.sell_stops, (-order.stop_price, order.order_id)
        del stops[bisect_left(stops, entry)]

    def pop_triggered(self) -> int:
        """Remove and return the id of the earliest-placed stop the last price reaches, or 0.

        A buy stop triggers when the last trade is at or above its stop price,
        a sell stop when it is at or below; among those reached, the order
        placed first goes first.
        """
        last = self.last_price
        best_id = 0
        best_list: list[tuple[int, int]] | None = None
        best_at = 0
        for stops, bound in ((self.buy_stops, last), (self.sell_stops, -last)):
            for at, (key, order_id) in enumerate(stops):
                if key > bound:
                    break
                if best_list is None or order_id < best_id:
                    best_id, best_list, best_at = order_id, stops, at
        if best_list is not None:
            del best_list[best_at]
        return best_id
