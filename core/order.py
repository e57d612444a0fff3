"""A live order: resting in a book, or a stop waiting for its trigger."""

from __future__ import annotations


class Order:
    """Mutable state of one live order.

    ``leaves`` is the open quantity in lots (0 for a buy by quote amount, whose
    size is its ``hold``). ``hold`` is what the order has reserved of the asset
    it pays with: quote for a buy, base for a sell. An order whose ``leaves``
    is 0 while it still sits in a level's queue is dead and skipped; the queue
    drops it lazily, so a cancel is O(1).
    """

    __slots__ = (
        "order_id", "account", "symbol", "side", "order_type", "time_in_force", "price",
        "quantity", "leaves", "quote_quantity", "stop_price", "expire_time", "post_only",
        "stp", "hold", "triggered",
    )

    order_id: int
    account: int
    symbol: int
    side: int
    order_type: int
    time_in_force: int
    price: int
    quantity: int
    leaves: int
    quote_quantity: int
    stop_price: int
    expire_time: int
    post_only: int
    stp: int
    hold: int
    triggered: int

    def fields(self) -> tuple[int, ...]:
        """The order as the snapshot records it (see ``core.snapshot.ORDER_FIELDS``)."""
        return (
            self.order_id, self.account, self.symbol, self.side, self.order_type,
            self.time_in_force, self.price, self.quantity, self.leaves, self.quote_quantity,
            self.stop_price, self.expire_time, self.post_only, self.stp, self.hold, self.triggered,
        )

    @staticmethod
    def from_fields(f: tuple[int, ...]) -> Order:
        order = make_order(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[9], f[10], f[11], f[12], f[13], f[14])
        order.leaves = f[8]
        order.triggered = f[15]
        return order


def make_order(
    order_id: int, account: int, symbol: int, side: int, order_type: int, time_in_force: int, price: int,
    quantity: int, quote_quantity: int, stop_price: int, expire_time: int, post_only: int, stp: int, hold: int,
) -> Order:
    """A new live order with all of ``quantity`` open.

    A function rather than ``__init__`` so the compiled backend can build an
    order without packing its fields into a Python argument tuple.
    """
    order = Order.__new__(Order)
    order.order_id = order_id
    order.account = account
    order.symbol = symbol
    order.side = side
    order.order_type = order_type
    order.time_in_force = time_in_force
    order.price = price
    order.quantity = quantity
    order.leaves = quantity
    order.quote_quantity = quote_quantity
    order.stop_price = stop_price
    order.expire_time = expire_time
    order.post_only = post_only
    order.stp = stp
    order.hold = hold
    order.triggered = 0
    return order
