"""Commands: the only way to change a shard's state.

Every command is one fixed-width record of integers (``Command``), so the same
shape travels through the Python API, NumPy batches, the journal and the FPGA
rings. The sequencer stamps ``seq`` (strictly increasing per shard) and
``time`` (nanoseconds since the epoch); the engine treats both as inputs, which
is what makes GTD expiry and stop triggers deterministic on replay.

A new order's id is the sequence number of the command that placed it.
Build commands with the functions below rather than by position.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class CommandKind(IntEnum):
    NEW_ORDER = 1
    CANCEL = 2
    AMEND = 3
    MASS_CANCEL = 4
    TICK = 5
    DEPOSIT = 6
    WITHDRAW = 7


class Side(IntEnum):
    BUY = 0
    SELL = 1


class OrderType(IntEnum):
    LIMIT = 0
    MARKET = 1
    STOP_LIMIT = 2
    STOP_MARKET = 3


class TimeInForce(IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2
    GTD = 3


class SelfTradePrevention(IntEnum):
    """What happens when an order would trade with its own account's order.

    The incoming (taker) order's mode decides.
    """

    NONE = 0
    CANCEL_NEWEST = 1
    CANCEL_OLDEST = 2
    CANCEL_BOTH = 3
    DECREMENT = 4


class Command(NamedTuple):
    """One engine command. Fields a kind does not use are 0.

    ``symbol`` is the instrument id, except on DEPOSIT and WITHDRAW where it is
    the asset id, and on MASS_CANCEL where 0 means every instrument.
    ``order_id`` names the target of CANCEL and AMEND. On AMEND, ``price`` and
    ``quantity`` are the new limit price and the new open quantity (0 keeps
    the current value).
    """

    kind: int
    seq: int
    time: int
    account: int = 0
    symbol: int = 0
    order_id: int = 0
    side: int = 0
    order_type: int = 0
    time_in_force: int = 0
    price: int = 0
    quantity: int = 0
    quote_quantity: int = 0
    stop_price: int = 0
    expire_time: int = 0
    post_only: int = 0
    stp: int = 0


COMMAND_FIELDS: tuple[str, ...] = Command._fields


def new_order(
    seq: int,
    time: int,
    account: int,
    symbol: int,
    side: int,
    quantity: int = 0,
    price: int = 0,
    order_type: int = OrderType.LIMIT,
    time_in_force: int = TimeInForce.GTC,
    quote_quantity: int = 0,
    stop_price: int = 0,
    expire_time: int = 0,
    post_only: bool = False,
    stp: int = SelfTradePrevention.NONE,
) -> Command:
    return Command(
        CommandKind.NEW_ORDER, seq, time, account, symbol, 0, int(side), int(order_type), int(time_in_force),
        price, quantity, quote_quantity, stop_price, expire_time, int(post_only), int(stp),
    )


def cancel(seq: int, time: int, account: int, order_id: int) -> Command:
    return Command(CommandKind.CANCEL, seq, time, account, 0, order_id)


def amend(seq: int, time: int, account: int, order_id: int, price: int = 0, quantity: int = 0) -> Command:
    return Command(CommandKind.AMEND, seq, time, account, 0, order_id, price=price, quantity=quantity)


def mass_cancel(seq: int, time: int, account: int, symbol: int = 0) -> Command:
    return Command(CommandKind.MASS_CANCEL, seq, time, account, symbol)


def tick(seq: int, time: int) -> Command:
    return Command(CommandKind.TICK, seq, time)


def deposit(seq: int, time: int, account: int, asset: int, amount: int) -> Command:
    return Command(CommandKind.DEPOSIT, seq, time, account, asset, quantity=amount)


def withdraw(seq: int, time: int, account: int, asset: int, amount: int) -> Command:
    return Command(CommandKind.WITHDRAW, seq, time, account, asset, quantity=amount)
