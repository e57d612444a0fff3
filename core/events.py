"""Events: everything a shard says, one fixed-width record of integers each.

Every backend emits the same ``Event`` tuples, in the same order, for the same
commands; ``seq`` and ``index`` position each event in the shard's stream, so
a consumer that has seen ``(seq, index)`` drops it on replay.

Field use by kind (unused fields are 0):

============ =================================================================
ACCEPTED     order_id, account, side, price (limit, 0 for market), quantity
             (lots, 0 for a buy by quote amount), leaves = quantity
REJECTED     the command's account, symbol, side, price, quantity; order_id
             (the would-be id for a new order, the target for cancel/amend);
             reason
TRADE        order_id/account/side: the taker (aggressor); price; quantity;
             leaves: the taker's open quantity after; maker_order_id,
             maker_account, maker_leaves; taker_fee and maker_fee, each in
             the asset its payer receives (buyer: base, seller: quote)
CANCELLED    order_id, account, side, price, quantity removed, leaves after
             (non-zero only for a self-trade decrement), reason
EXPIRED      as CANCELLED, for a GTD order whose time passed
AMENDED      order_id, account, side, price (new), quantity = leaves (new)
TRIGGERED    a stop order that became live: order_id, account, side, price,
             quantity, leaves (stop_price is not repeated)
BOOK         side, price, quantity = the level's new total (0: level gone)
DEPOSITED    account, symbol = asset id, quantity = amount
WITHDRAWN    as DEPOSITED
============ =================================================================
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class EventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    TRADE = 3
    CANCELLED = 4
    EXPIRED = 5
    AMENDED = 6
    TRIGGERED = 7
    BOOK = 8
    DEPOSITED = 9
    WITHDRAWN = 10


class Reason(IntEnum):
    """Why a command was rejected or an order cancelled: one enum for both."""

    NONE = 0
    # Rejections
    UNKNOWN_SYMBOL = 1
    UNKNOWN_ORDER = 2
    INVALID_ACCOUNT = 3
    INVALID_SIDE = 4
    INVALID_ORDER_TYPE = 5
    INVALID_TIME_IN_FORCE = 6
    INVALID_STP = 7
    INVALID_POST_ONLY = 8
    INVALID_QUANTITY = 9
    INVALID_PRICE = 10
    INVALID_STOP_PRICE = 11
    INVALID_EXPIRE_TIME = 12
    PRICE_OUT_OF_BAND = 13
    INSUFFICIENT_FUNDS = 14
    POST_ONLY_WOULD_TRADE = 15
    NOT_AMENDABLE = 16
    UNKNOWN_ASSET = 17
    INVALID_AMOUNT = 18
    UNKNOWN_COMMAND = 19
    # Cancellations (INSUFFICIENT_FUNDS, PRICE_OUT_OF_BAND and
    # POST_ONLY_WOULD_TRADE also end orders: a market order that ran out of
    # budget or reached the band; a stop that triggered into a bad state)
    USER = 32
    MASS_CANCEL = 33
    IMMEDIATE_OR_CANCEL = 34
    FILL_OR_KILL = 35
    SELF_TRADE = 36


class Event(NamedTuple):
    kind: int
    seq: int
    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the spec calls it index
    symbol: int
    order_id: int = 0
    account: int = 0
    side: int = 0
    price: int = 0
    quantity: int = 0
    leaves: int = 0
    maker_order_id: int = 0
    maker_account: int = 0
    maker_leaves: int = 0
    taker_fee: int = 0
    maker_fee: int = 0
    reason: int = 0


EVENT_FIELDS: tuple[str, ...] = Event._fields


def describe(event: Event) -> str:
    """A one-line human reading of an event, for logs and test failures."""
    kind = EventKind(event.kind).name
    parts = [f"{kind} seq={event.seq}.{event.index}"]
    for name in EVENT_FIELDS[3:]:
        value = getattr(event, name)
        if value:
            parts.append(f"{name}={Reason(value).name if name == 'reason' else value}")
    return " ".join(parts)
