"""The canonical shard state: one byte layout every backend writes and reads.

A snapshot is a sequence of little-endian signed 64-bit integers:

    MAGIC, VERSION, seq, time, asset_slots,
    account count, then per account (ascending id, only accounts holding
        something): id, available[asset_slots], held[asset_slots],
    book count, then per book (ascending instrument id):
        symbol, last_price,
        bid level count, per level best first: order count, orders...
        ask level count, likewise,
        buy stop count, orders in trigger order; sell stop count, orders,

where an order is the ``ORDER_FIELDS`` integers. A level's price is its
orders' price. Because the layout is canonical, a snapshot from one backend
restores into any other, and ``state_hash()`` (BLAKE2b-128 of the snapshot)
is equal across backends exactly when their states are.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAGIC = 0x3150414E53414952  # b"RIASNAP1" read as a little-endian integer
VERSION = 1

ORDER_FIELDS: tuple[str, ...] = (
    "order_id", "account", "symbol", "side", "order_type", "time_in_force", "price", "quantity",
    "leaves", "quote_quantity", "stop_price", "expire_time", "post_only", "stp", "hold", "triggered",
)
ORDER_WIDTH = len(ORDER_FIELDS)

OrderFields = tuple[int, ...]


@dataclass
class AccountState:
    account_id: int
    available: list[int]
    held: list[int]


@dataclass
class BookState:
    symbol: int
    last_price: int
    bids: list[list[OrderFields]] = field(default_factory=list)
    asks: list[list[OrderFields]] = field(default_factory=list)
    buy_stops: list[OrderFields] = field(default_factory=list)
    sell_stops: list[OrderFields] = field(default_factory=list)


@dataclass
class ShardState:
    seq: int
    time: int
    asset_slots: int
    accounts: list[AccountState] = field(default_factory=list)
    books: list[BookState] = field(default_factory=list)


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this version can read."""


def encode(state: ShardState) -> bytes:
    words: list[int] = [MAGIC, VERSION, state.seq, state.time, state.asset_slots, len(state.accounts)]
    for acc in state.accounts:
        words.append(acc.account_id)
        words.extend(acc.available)
        words.extend(acc.held)
    words.append(len(state.books))
    for book in state.books:
        words.append(book.symbol)
        words.append(book.last_price)
        for levels in (book.bids, book.asks):
            words.append(len(levels))
            for orders in levels:
                words.append(len(orders))
                for order in orders:
                    words.extend(order)
        for stops in (book.buy_stops, book.sell_stops):
            words.append(len(stops))
            for order in stops:
                words.extend(order)
    return struct.pack(f"<{len(words)}q", *words)


def decode(data: bytes) -> ShardState:
    if len(data) % 8 or len(data) < 48:
        raise SnapshotError("snapshot length is not a whole number of 64-bit words")
    words = struct.unpack(f"<{len(data) // 8}q", data)
    if words[0] != MAGIC or words[1] != VERSION:
        raise SnapshotError("not a Rialto snapshot of this version")
    at = 2

    def take(n: int) -> tuple[int, ...]:
        nonlocal at
        if at + n > len(words):
            raise SnapshotError("snapshot is truncated")
        chunk = words[at:at + n]
        at += n
        return chunk

    seq, time, slots, n_accounts = take(4)
    state = ShardState(seq=seq, time=time, asset_slots=slots)
    for _ in range(n_accounts):
        (account_id,) = take(1)
        state.accounts.append(AccountState(account_id, list(take(slots)), list(take(slots))))
    (n_books,) = take(1)
    for _ in range(n_books):
        symbol, last_price = take(2)
        book = BookState(symbol, last_price)
        for levels in (book.bids, book.asks):
            (n_levels,) = take(1)
            for _ in range(n_levels):
                (n_orders,) = take(1)
                levels.append([take(ORDER_WIDTH) for _ in range(n_orders)])
        for stops in (book.buy_stops, book.sell_stops):
            (n_stops,) = take(1)
            stops.extend(take(ORDER_WIDTH) for _ in range(n_stops))
        state.books.append(book)
    if at != len(words):
        raise SnapshotError("snapshot has trailing data")
    return state
