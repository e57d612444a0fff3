"""The vocabulary of the scenario tables.

Units are chosen so that the tables read as plain arithmetic:

* BTC-USD (instrument 7): BTC has 2 decimals and a lot is 0.01 BTC, so one lot
  is one BTC unit (``base_per_lot == 1``); a tick is 1 USD and USD has 2
  decimals, so ``quote_per_tick_lot == 1``: 10 lots at price 100 cost 1000 USD
  units. Fees, bands and limits vary per scenario: ``btc_usd(maker_fee_bps=10)``.
* ETH-USD (instrument 8): a lot is 0.05 ETH = 500 ETH units and a tick-lot is
  5 USD units, for the scenarios that check the unit multipliers.

Commands take their sequence number first: an order's id *is* that number,
so a table can say ``maker=11`` for the order placed by the command ``11``.
The command's time defaults to its sequence number (``t=`` overrides it).

Expected events are rows with only the fields that matter; every field a row
does not name must be 0 in the actual event, except ``seq``/``index`` (taken
from the step and the row's position) and ``symbol`` (the scenario's main
instrument unless given). ``rejected(reason)`` takes the echoed fields from the
command it answers, per ``core.events``: account, symbol, side, price,
quantity, and the would-be order id (new order) or target (cancel, amend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.commands import (
    Command,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from core.commands import amend as _amend
from core.commands import cancel as _cancel
from core.commands import deposit as _deposit
from core.commands import mass_cancel as _mass_cancel
from core.commands import new_order as _new_order
from core.commands import tick as _tick
from core.commands import withdraw as _withdraw
from core.events import EventKind, Reason
from core.instrument import FEE_ACCOUNT, Asset, Instrument, make_instrument

# --- Accounts, assets, instruments ------------------------------------------
ALICE, BOB, CAROL, DAVE = 21, 22, 23, 24
FEES = FEE_ACCOUNT
TRADERS = (ALICE, BOB, CAROL, DAVE)

BTC, USD, ETH = 1, 2, 3
BTC_ASSET = Asset(BTC, "BTC", 2)
USD_ASSET = Asset(USD, "USD", 2)
ETH_ASSET = Asset(ETH, "ETH", 4)

BTC_USD, ETH_USD = 7, 8

BUY, SELL = int(Side.BUY), int(Side.SELL)
BID, ASK = BUY, SELL  # for BOOK rows: the side of the level

LIMIT, MARKET, STOP_LIMIT, STOP_MARKET = (int(t) for t in OrderType)
GTC, IOC, FOK, GTD = (int(t) for t in TimeInForce)
STP_NONE = int(SelfTradePrevention.NONE)
CANCEL_NEWEST = int(SelfTradePrevention.CANCEL_NEWEST)
CANCEL_OLDEST = int(SelfTradePrevention.CANCEL_OLDEST)
CANCEL_BOTH = int(SelfTradePrevention.CANCEL_BOTH)
DECREMENT = int(SelfTradePrevention.DECREMENT)

R = Reason

DEFAULT_FUNDS: dict[int, dict[int, int]] = {
    ALICE: {USD: 100_000, BTC: 1_000},
    BOB: {USD: 100_000, BTC: 1_000},
    CAROL: {USD: 100_000, BTC: 1_000},
    DAVE: {USD: 100_000, BTC: 1_000},
}
FIRST_SCENARIO_SEQ = 10
"""Funding deposits use sequence numbers below this; scenario commands start here."""


def btc_usd(**limits: int) -> Instrument:
    """BTC-USD: base_per_lot 1, quote_per_tick_lot 1 (see the module doc)."""
    return make_instrument(BTC_USD, "BTC-USD", BTC_ASSET, USD_ASSET, "1", "0.01", **limits)


def eth_usd(**limits: int) -> Instrument:
    """ETH-USD: base_per_lot 500, quote_per_tick_lot 5."""
    return make_instrument(ETH_USD, "ETH-USD", ETH_ASSET, USD_ASSET, "1", "0.05", **limits)


# --- Commands -----------------------------------------------------------------
def _t(seq: int, t: int | None) -> int:
    return seq if t is None else t


def order(seq: int, acct: int, side: int, *, t: int | None = None, symbol: int = BTC_USD, **fields: Any) -> Command:
    """A raw new order: any field combination, valid or not (``new_order`` keywords)."""
    return _new_order(seq, _t(seq, t), acct, symbol, side, **fields)


def buy(seq: int, acct: int, qty: int, price: int, *, tif: int = GTC, expire: int = 0, post_only: bool = False,
        stp: int = STP_NONE, t: int | None = None, symbol: int = BTC_USD) -> Command:
    """Limit buy."""
    return _new_order(seq, _t(seq, t), acct, symbol, BUY, qty, price, LIMIT, tif, 0, 0, expire, post_only, stp)


def sell(seq: int, acct: int, qty: int, price: int, *, tif: int = GTC, expire: int = 0, post_only: bool = False,
         stp: int = STP_NONE, t: int | None = None, symbol: int = BTC_USD) -> Command:
    """Limit sell."""
    return _new_order(seq, _t(seq, t), acct, symbol, SELL, qty, price, LIMIT, tif, 0, 0, expire, post_only, stp)


def market_buy(seq: int, acct: int, qty: int, *, tif: int = IOC, stp: int = STP_NONE, t: int | None = None,
               symbol: int = BTC_USD) -> Command:
    """Market buy of a base quantity."""
    return _new_order(seq, _t(seq, t), acct, symbol, BUY, qty, 0, MARKET, tif, stp=stp)


def market_sell(seq: int, acct: int, qty: int, *, tif: int = IOC, stp: int = STP_NONE, t: int | None = None,
                symbol: int = BTC_USD) -> Command:
    return _new_order(seq, _t(seq, t), acct, symbol, SELL, qty, 0, MARKET, tif, stp=stp)


def market_buy_quote(seq: int, acct: int, quote: int, *, stp: int = STP_NONE, t: int | None = None,
                     symbol: int = BTC_USD) -> Command:
    """Market buy spending up to ``quote`` units of the quote asset."""
    return _new_order(seq, _t(seq, t), acct, symbol, BUY, 0, 0, MARKET, IOC, quote_quantity=quote, stp=stp)


def stop_limit_buy(seq: int, acct: int, qty: int, price: int, stop: int, *, tif: int = GTC, expire: int = 0,
                   post_only: bool = False, stp: int = STP_NONE, t: int | None = None, symbol: int = BTC_USD) -> Command:
    return _new_order(seq, _t(seq, t), acct, symbol, BUY, qty, price, STOP_LIMIT, tif, 0, stop, expire, post_only, stp)


def stop_limit_sell(seq: int, acct: int, qty: int, price: int, stop: int, *, tif: int = GTC, expire: int = 0,
                    post_only: bool = False, stp: int = STP_NONE, t: int | None = None,
                    symbol: int = BTC_USD) -> Command:
    return _new_order(seq, _t(seq, t), acct, symbol, SELL, qty, price, STOP_LIMIT, tif, 0, stop, expire, post_only, stp)


def stop_market_buy(seq: int, acct: int, qty: int, stop: int, *, quote: int = 0, tif: int = IOC,
                    stp: int = STP_NONE, t: int | None = None, symbol: int = BTC_USD) -> Command:
    return _new_order(seq, _t(seq, t), acct, symbol, BUY, qty, 0, STOP_MARKET, tif, quote, stop, stp=stp)


def stop_market_sell(seq: int, acct: int, qty: int, stop: int, *, tif: int = IOC, stp: int = STP_NONE,
                     t: int | None = None, symbol: int = BTC_USD) -> Command:
    return _new_order(seq, _t(seq, t), acct, symbol, SELL, qty, 0, STOP_MARKET, tif, 0, stop, stp=stp)


def cancel(seq: int, acct: int, order_id: int, *, t: int | None = None) -> Command:
    return _cancel(seq, _t(seq, t), acct, order_id)


def amend(seq: int, acct: int, order_id: int, *, price: int = 0, qty: int = 0, t: int | None = None) -> Command:
    return _amend(seq, _t(seq, t), acct, order_id, price, qty)


def mass_cancel(seq: int, acct: int, symbol: int = 0, *, t: int | None = None) -> Command:
    return _mass_cancel(seq, _t(seq, t), acct, symbol)


def tick(seq: int, t: int | None = None) -> Command:
    return _tick(seq, _t(seq, t))


def deposit(seq: int, acct: int, asset: int, amount: int, *, t: int | None = None) -> Command:
    return _deposit(seq, _t(seq, t), acct, asset, amount)


def withdraw(seq: int, acct: int, asset: int, amount: int, *, t: int | None = None) -> Command:
    return _withdraw(seq, _t(seq, t), acct, asset, amount)


def raw_command(seq: int, kind: int, **fields: Any) -> Command:
    """A command of any kind number, for the unknown-command rows."""
    return Command(kind, seq, fields.pop("time", seq), **fields)


# --- Expected events ---------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """An expected event: its kind and the fields that are not zero."""

    kind: int
    fields: dict[str, int]


def _row(kind: EventKind, **fields: int | None) -> Row:
    return Row(int(kind), {k: int(v) for k, v in fields.items() if v is not None})


def accepted(id: int, acct: int, side: int, price: int, qty: int, *, symbol: int | None = None) -> Row:
    """ACCEPTED: leaves is the quantity (0 for a buy by quote amount)."""
    return _row(EventKind.ACCEPTED, order_id=id, account=acct, side=side, price=price, quantity=qty, leaves=qty,
                symbol=symbol)


def rejected(reason: Reason, **echo: int) -> Row:
    """REJECTED; fields not given are echoed from the command (see the module doc)."""
    return _row(EventKind.REJECTED, reason=reason, **echo)


def trade(*, taker: int, acct: int, side: int, price: int, qty: int, leaves: int, maker: int, maker_acct: int,
          maker_leaves: int, taker_fee: int = 0, maker_fee: int = 0, symbol: int | None = None) -> Row:
    """TRADE: order_id/account/side are the taker's."""
    return _row(EventKind.TRADE, order_id=taker, account=acct, side=side, price=price, quantity=qty, leaves=leaves,
                maker_order_id=maker, maker_account=maker_acct, maker_leaves=maker_leaves, taker_fee=taker_fee,
                maker_fee=maker_fee, symbol=symbol)


def cancelled(id: int, acct: int, side: int, price: int, qty: int, reason: Reason, *, leaves: int = 0,
              symbol: int | None = None) -> Row:
    """CANCELLED: ``qty`` removed, ``leaves`` left (non-zero only for a self-trade decrement)."""
    return _row(EventKind.CANCELLED, order_id=id, account=acct, side=side, price=price, quantity=qty, leaves=leaves,
                reason=reason, symbol=symbol)


def expired(id: int, acct: int, side: int, price: int, qty: int, *, symbol: int | None = None) -> Row:
    return _row(EventKind.EXPIRED, order_id=id, account=acct, side=side, price=price, quantity=qty, symbol=symbol)


def amended(id: int, acct: int, side: int, price: int, qty: int, *, symbol: int | None = None) -> Row:
    """AMENDED: the new price and the new open quantity (also in ``leaves``)."""
    return _row(EventKind.AMENDED, order_id=id, account=acct, side=side, price=price, quantity=qty, leaves=qty,
                symbol=symbol)


def triggered(id: int, acct: int, side: int, price: int, qty: int, *, symbol: int | None = None) -> Row:
    """TRIGGERED: the stop's limit price (0 for a stop-market) and quantity; leaves (= quantity) as the engine sends it."""
    return _row(EventKind.TRIGGERED, order_id=id, account=acct, side=side, price=price, quantity=qty, leaves=qty,
                symbol=symbol)


def level(side: int, price: int, total: int, *, symbol: int | None = None) -> Row:
    """BOOK: the level's new total open quantity (0: the level is gone)."""
    return _row(EventKind.BOOK, side=side, price=price, quantity=total, symbol=symbol)


def deposited(acct: int, asset: int, amount: int) -> Row:
    return _row(EventKind.DEPOSITED, account=acct, symbol=asset, quantity=amount)


def withdrawn(acct: int, asset: int, amount: int) -> Row:
    return _row(EventKind.WITHDRAWN, account=acct, symbol=asset, quantity=amount)


# --- Book state --------------------------------------------------------------
LevelSpec = tuple[int, tuple[tuple[int, int], ...]]


def parse_level(text: str) -> LevelSpec:
    """``"101: 11x5 12x3"``: price 101, order 11 with 5 open lots, then order 12 with 3."""
    price_text, _, orders_text = text.partition(":")
    orders = []
    for token in orders_text.split():
        order_id, _, leaves = token.partition("x")
        orders.append((int(order_id), int(leaves)))
    if not orders:
        raise ValueError(f"a level needs at least one order: {text!r}")
    return int(price_text), tuple(orders)


@dataclass(frozen=True)
class Book:
    """One instrument's book: levels best first, each ``"price: IDxLEAVES ..."`` in
    queue order; waiting stops by id in trigger order."""

    bids: tuple[str, ...] = ()
    asks: tuple[str, ...] = ()
    buy_stops: tuple[int, ...] = ()
    sell_stops: tuple[int, ...] = ()

    def levels(self) -> tuple[list[LevelSpec], list[LevelSpec]]:
        return [parse_level(t) for t in self.bids], [parse_level(t) for t in self.asks]


def book(*, bids: list[str] | tuple[str, ...] = (), asks: list[str] | tuple[str, ...] = (),
         buy_stops: list[int] | tuple[int, ...] = (), sell_stops: list[int] | tuple[int, ...] = ()) -> Book:
    return Book(tuple(bids), tuple(asks), tuple(buy_stops), tuple(sell_stops))


EMPTY = Book()


# --- Scenarios ---------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    command: Command
    events: tuple[Row, ...]


def step(command: Command, *events: Row) -> Step:
    """When ``command`` is submitted, then exactly ``events`` come out, in order."""
    return Step(command, events)


Balances = dict[int, dict[int, tuple[int, int]]]


@dataclass(frozen=True)
class Scenario:
    """Given funds and ``given`` commands (the book before), when ``steps`` run,
    then each step's events, ``book_after``, ``balances`` and ``last_price``."""

    name: str
    steps: tuple[Step, ...]
    given: tuple[Command, ...] = ()
    book_before: Book | None = None
    book_after: Book | dict[int, Book] | None = None
    balances: Balances | None = None
    last_price: int | None = None
    instruments: tuple[Instrument, ...] = field(default_factory=lambda: (btc_usd(),))
    funds: dict[int, dict[int, int]] = field(default_factory=lambda: DEFAULT_FUNDS)
    xfail: str | None = None

    @property
    def symbol(self) -> int:
        return self.instruments[0].id


def scenario(name: str, *, given: list[Command] | tuple[Command, ...] = (), when: list[Step] | tuple[Step, ...],
             book_before: Book | None = None, book_after: Book | dict[int, Book] | None = None,
             balances: Balances | None = None, last_price: int | None = None,
             instruments: tuple[Instrument, ...] | None = None, funds: dict[int, dict[int, int]] | None = None,
             xfail: str | None = None) -> Scenario:
    return Scenario(
        name=name, steps=tuple(when), given=tuple(given), book_before=book_before, book_after=book_after,
        balances=balances, last_price=last_price, instruments=instruments or (btc_usd(),),
        funds=DEFAULT_FUNDS if funds is None else funds, xfail=xfail,
    )

