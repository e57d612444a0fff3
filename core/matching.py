"""The reference matching engine: one shard's deterministic state machine.

This module is the specification that runs. Every other backend (the Cython
build of this same file, the Rust crate in ``ext/``, the FPGA model) must emit
the same events in the same order for the same commands; the conformance and
differential tests hold them to it.

The pipeline for one command
----------------------------
1. Skip it if its sequence is not above the shard's (replays are idempotent).
2. Expire GTD orders whose time has come (``time`` is the command's stamp).
3. Apply the command:
   new order: validate (the first failing rule gives the reason), reserve
   funds (risk), ACCEPTED, then match or rest, or wait as a stop;
   cancel / amend / mass cancel / deposit / withdraw / tick.
4. Fire stops the last trade price has reached, earliest placed first, until
   none is left (a cascade runs inside the one command).

Determinism
-----------
Nothing here depends on hash order or wall time: dicts are only looked up,
never iterated for output, except where their order is insertion order and
then it is sorted explicitly.

Known limitations
-----------------
Mass cancel scans the shard's live orders (O(live orders)); fine for an
operator's panic button, not meant for a hot path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from heapq import heappop, heappush
from typing import Any

from core.commands import Command, CommandKind, OrderType, SelfTradePrevention, Side, TimeInForce
from core.events import Event, EventKind, Reason
from core.instrument import Instrument
from core.numbers import MAX_AMOUNT
from core.snapshot import AccountState, BookState, ShardState, decode, encode

from .book import BookSide, Level, OrderBook
from .order import Order, make_order
from .risk import Balances

# Plain ints for the hot path: an IntEnum member costs an attribute lookup.
_BUY = int(Side.BUY)
_SELL = int(Side.SELL)
_LIMIT = int(OrderType.LIMIT)
_MARKET = int(OrderType.MARKET)
_STOP_LIMIT = int(OrderType.STOP_LIMIT)
_STOP_MARKET = int(OrderType.STOP_MARKET)
_GTC = int(TimeInForce.GTC)
_IOC = int(TimeInForce.IOC)
_FOK = int(TimeInForce.FOK)
_GTD = int(TimeInForce.GTD)
_STP_NONE = int(SelfTradePrevention.NONE)
_STP_NEWEST = int(SelfTradePrevention.CANCEL_NEWEST)
_STP_OLDEST = int(SelfTradePrevention.CANCEL_OLDEST)
_STP_BOTH = int(SelfTradePrevention.CANCEL_BOTH)
_STP_DECREMENT = int(SelfTradePrevention.DECREMENT)

_NEW_ORDER = int(CommandKind.NEW_ORDER)
_CANCEL = int(CommandKind.CANCEL)
_AMEND = int(CommandKind.AMEND)
_MASS_CANCEL = int(CommandKind.MASS_CANCEL)
_TICK = int(CommandKind.TICK)
_DEPOSIT = int(CommandKind.DEPOSIT)
_WITHDRAW = int(CommandKind.WITHDRAW)

_ACCEPTED = int(EventKind.ACCEPTED)
_REJECTED = int(EventKind.REJECTED)
_TRADE = int(EventKind.TRADE)
_CANCELLED = int(EventKind.CANCELLED)
_EXPIRED = int(EventKind.EXPIRED)
_AMENDED = int(EventKind.AMENDED)
_TRIGGERED = int(EventKind.TRIGGERED)
_BOOK = int(EventKind.BOOK)
_DEPOSITED = int(EventKind.DEPOSITED)
_WITHDRAWN = int(EventKind.WITHDRAWN)

_R = Reason
_SELF_TRADE = int(Reason.SELF_TRADE)
_INSUFFICIENT_FUNDS = int(Reason.INSUFFICIENT_FUNDS)
_PRICE_OUT_OF_BAND = int(Reason.PRICE_OUT_OF_BAND)
_IMMEDIATE_OR_CANCEL = int(Reason.IMMEDIATE_OR_CANCEL)
_USER = int(Reason.USER)
_MASS = int(Reason.MASS_CANCEL)
_UNKNOWN_ORDER = int(Reason.UNKNOWN_ORDER)

# Builds an Event without running NamedTuple's Python-level __new__.
_make_event = tuple.__new__
_NO_LIMIT = -(2**63)


def _fee(amount: int, bps: int) -> int:
    """floor(amount x bps / 10000), computed so that no intermediate exceeds 2**63.

    ``amount`` is at most 2**62 and ``bps`` at most 1000, so the direct
    product would overflow a 64-bit integer in the compiled backends.
    """
    return (amount // 10_000) * bps + (amount % 10_000) * bps // 10_000


class ReferenceEngine:
    """One engine shard in pure Python. See ``core.engine.MatchingEngine``."""

    backend = "python"

    def __init__(self) -> None:
        self._instruments: dict[int, Instrument] = {}
        self._books: dict[int, OrderBook] = {}
        self._orders: dict[int, Order] = {}
        self._balances = Balances()
        self._assets: set[int] = set()
        self._expiries: list[tuple[int, int]] = []
        self._seq = 0
        self._time = 0
        self._events: list[Event] = []

    # Set-up and reads ---------------------------------------------------
    def add_instrument(self, instrument: Instrument) -> None:
        if instrument.id in self._instruments:
            raise ValueError(f"instrument id {instrument.id} is already registered")
        self._instruments[instrument.id] = instrument
        self._books[instrument.id] = OrderBook(instrument)
        for asset in (instrument.base.id, instrument.quote.id):
            self._assets.add(asset)
            self._balances.add_asset(asset)

    @property
    def sequence(self) -> int:
        return self._seq

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        """(available, held) of an asset for an account."""
        acc = self._balances.accounts.get(account)
        if acc is None or asset >= len(acc.available):
            return (0, 0)
        return (acc.available[asset], acc.held[asset])

    def depth(self, symbol: int, levels: int = 10) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """Best ``levels`` levels per side as (price, total quantity, orders), best first."""
        book = self._books[symbol]
        return (
            [(lv.price, lv.total, lv.count) for lv in book.bids.levels_best_first()[:levels]],
            [(lv.price, lv.total, lv.count) for lv in book.asks.levels_best_first()[:levels]],
        )

    def last_price(self, symbol: int) -> int:
        return self._books[symbol].last_price

    # Commands -----------------------------------------------------------
    def submit(self, command: Command) -> list[Event]:
        """Apply one command; return the events it caused, in order."""
        seq = command[1]
        events: list[Event] = []
        if seq <= self._seq:
            return events
        self._seq = seq
        if command[2] > self._time:
            self._time = command[2]
        self._events = events
        expiries = self._expiries
        if expiries and expiries[0][0] <= self._time:
            self._expire()
        kind = command[0]
        if kind == _NEW_ORDER:
            self._new_order(command)
        elif kind == _CANCEL:
            self._cancel(command)
        elif kind == _AMEND:
            self._amend(command)
        elif kind == _MASS_CANCEL:
            self._mass_cancel(command)
        elif kind == _DEPOSIT:
            self._deposit(command)
        elif kind == _WITHDRAW:
            self._withdraw(command)
        elif kind != _TICK:
            self._reject(command, command[5], int(_R.UNKNOWN_COMMAND))
        return events

    def submit_many(self, commands: Iterable[Command]) -> list[Event]:
        out: list[Event] = []
        submit = self.submit
        for command in commands:
            out.extend(submit(command))
        return out

    def submit_batch(self, commands: Any) -> Any:
        """NumPy structured array of commands in, structured array of events out."""
        from core.batch import commands_from_array, events_to_array

        return events_to_array(self.submit_many(commands_from_array(commands)))

    # Event output -------------------------------------------------------
    def _emit(
        self, kind: int, symbol: int, order_id: int, account: int, side: int, price: int,
        quantity: int, leaves: int, reason: int = 0,
    ) -> None:
        events = self._events
        events.append(_make_event(Event, (
            kind, self._seq, len(events), symbol, order_id, account, side, price, quantity, leaves,
            0, 0, 0, 0, 0, reason,
        )))

    def _emit_level(self, symbol: int, side: int, level: Level) -> None:
        events = self._events
        events.append(_make_event(Event, (
            _BOOK, self._seq, len(events), symbol, 0, 0, side, level.price, level.total, 0,
            0, 0, 0, 0, 0, 0,
        )))

    def _reject(self, c: Command, order_id: int, reason: int, symbol: int = -1) -> None:
        """REJECTED echoes the command; ``symbol`` names the instrument of a known
        target order (a cancel or amend carries none of its own)."""
        self._emit(_REJECTED, c[4] if symbol < 0 else symbol, order_id, c[3], c[6], c[9], c[10], 0, reason)

    # New orders ---------------------------------------------------------
    def _validate(
        self, book: OrderBook, account: int, side: int, otype: int, tif: int, price: int, quantity: int,
        quote_quantity: int, stop_price: int, expire_time: int, post_only: int, stp: int,
    ) -> int:
        """The reason the first failing rule gives, or 0. The order of the rules is part of the spec."""
        if account <= 0:
            return int(_R.INVALID_ACCOUNT)
        if side != _BUY and side != _SELL:
            return int(_R.INVALID_SIDE)
        if otype < _LIMIT or otype > _STOP_MARKET:
            return int(_R.INVALID_ORDER_TYPE)
        is_market = otype == _MARKET or otype == _STOP_MARKET
        if tif < _GTC or tif > _GTD or (is_market and tif != _IOC and tif != _FOK):
            return int(_R.INVALID_TIME_IN_FORCE)
        if stp < _STP_NONE or stp > _STP_DECREMENT:
            return int(_R.INVALID_STP)
        if post_only != 0 and (post_only != 1 or is_market or tif == _IOC or tif == _FOK):
            return int(_R.INVALID_POST_ONLY)
        if is_market and side == _BUY and quantity == 0 and quote_quantity > 0:
            if quote_quantity > MAX_AMOUNT:
                return int(_R.INVALID_QUANTITY)
            if tif != _IOC:
                return int(_R.INVALID_TIME_IN_FORCE)
            if stp == _STP_DECREMENT:
                return int(_R.INVALID_STP)
        elif quote_quantity != 0 or quantity < book.min_quantity or quantity > book.max_quantity:
            return int(_R.INVALID_QUANTITY)
        if is_market:
            if price != 0:
                return int(_R.INVALID_PRICE)
        elif price < 1 or price > book.max_price:
            return int(_R.INVALID_PRICE)
        if otype == _STOP_LIMIT or otype == _STOP_MARKET:
            if stop_price < 1 or stop_price > book.max_price:
                return int(_R.INVALID_STOP_PRICE)
        elif stop_price != 0:
            return int(_R.INVALID_STOP_PRICE)
        if tif == _GTD:
            if expire_time <= self._time:
                return int(_R.INVALID_EXPIRE_TIME)
        elif expire_time != 0:
            return int(_R.INVALID_EXPIRE_TIME)
        if otype == _LIMIT:
            if not book.in_band(price):
                return int(_R.PRICE_OUT_OF_BAND)
            if post_only and book.would_cross(side, price):
                return int(_R.POST_ONLY_WOULD_TRADE)
        return 0

    def _initial_hold(
        self, book: OrderBook, account: int, side: int, otype: int, price: int, quantity: int, quote_quantity: int,
    ) -> int:
        """What the order reserves on acceptance, or -1 if the account cannot pay.

        A sell reserves its base quantity; a limit buy its quantity at its
        limit; a buy by quote amount that amount; a market buy by quantity
        everything available (its budget, refunded when it ends); a stop-market
        buy by quantity nothing until it triggers.
        """
        if side == _SELL:
            asset, need = book.base_id, quantity * book.base_per_lot
        else:
            asset = book.quote_id
            if otype == _LIMIT or otype == _STOP_LIMIT:
                need = quantity * price * book.quote_per_tick_lot
            elif quote_quantity:
                need = quote_quantity
            elif otype == _MARKET:
                need = self._balances.available(account, asset)
                return need if need > 0 else -1
            else:
                return 0
        return need if need <= self._balances.available(account, asset) else -1

    def _new_order(self, c: Command) -> None:
        (_, order_id, _, account, symbol, _, side, otype, tif, price, quantity, quote_quantity,
         stop_price, expire_time, post_only, stp) = c
        book = self._books.get(symbol)
        if book is None:
            self._reject(c, order_id, int(_R.UNKNOWN_SYMBOL))
            return
        reason = self._validate(book, account, side, otype, tif, price, quantity, quote_quantity,
                                stop_price, expire_time, post_only, stp)
        if reason:
            self._reject(c, order_id, reason)
            return
        hold = self._initial_hold(book, account, side, otype, price, quantity, quote_quantity)
        if hold < 0:
            self._reject(c, order_id, _INSUFFICIENT_FUNDS)
            return
        self._balances.hold(account, book.quote_id if side == _BUY else book.base_id, hold)
        order = make_order(order_id, account, symbol, side, otype, tif, price, quantity, quote_quantity,
                      stop_price, expire_time, post_only, stp, hold)
        self._orders[order_id] = order
        self._emit(_ACCEPTED, symbol, order_id, account, side, price, quantity, quantity)
        if tif == _GTD:
            heappush(self._expiries, (expire_time, order_id))
        if otype == _STOP_LIMIT or otype == _STOP_MARKET:
            book.add_stop(order)
        else:
            self._execute(book, order)
        self._fire_stops(book)

    def _execute(self, book: OrderBook, order: Order) -> None:
        """Match a live order against the book, then rest or cancel what is left."""
        side = order.side
        otype = order.order_type
        is_market = otype == _MARKET or otype == _STOP_MARKET
        if is_market:
            limit = _NO_LIMIT
            band = book.price_band_bps
            reference = book.last_price or book.reference_price
            if band and reference:
                width = reference * band // 10_000
                limit = reference + width if side == _BUY else reference - width
        else:
            limit = order.price
        if order.time_in_force == _FOK and not self._fillable(book, order, limit):
            self._end(book, order, int(_R.FILL_OR_KILL))
            return
        opposite = book.asks if side == _BUY else book.bids
        keys = opposite.keys
        # Most orders do not cross: skip the matching loop's set-up for them.
        if keys and keys[-1] >= (limit * opposite.sign if limit != _NO_LIMIT else _NO_LIMIT):
            stopped = self._match(book, order, limit)
        else:
            stopped = 0
        if order.quantity == 0:
            # A buy by quote amount is complete once it has traded and what is
            # left cannot buy another lot, or nothing is left; one that could
            # not afford even its first lot is cancelled for want of funds.
            traded = order.hold < order.quote_quantity
            if stopped == -1:
                self._end(book, order, -1 if traded else _INSUFFICIENT_FUNDS)
            elif not stopped and not order.hold:
                self._end(book, order, -1)
            else:
                if not stopped:
                    stopped = _PRICE_OUT_OF_BAND if limit != _NO_LIMIT and book.asks.keys else _IMMEDIATE_OR_CANCEL
                self._end(book, order, stopped)
        elif order.leaves == 0:
            self._end(book, order, -1)
        elif stopped:
            self._end(book, order, stopped)
        elif is_market:
            self._end(book, order, _PRICE_OUT_OF_BAND if limit != _NO_LIMIT and opposite.keys else _IMMEDIATE_OR_CANCEL)
        elif order.time_in_force == _IOC or order.time_in_force == _FOK:
            self._end(book, order, _IMMEDIATE_OR_CANCEL)
        else:
            level = (book.bids if side == _BUY else book.asks).add(order)
            self._emit_level(book.symbol, side, level)

    def _end(self, book: OrderBook, order: Order, reason: int) -> None:
        """Finish an order that will not rest: cancel what is open (unless
        ``reason`` is -1: it is done) and return any unused hold."""
        if reason != -1:
            self._emit(_CANCELLED, book.symbol, order.order_id, order.account, order.side, order.price,
                       order.leaves, 0, reason)
        order.leaves = 0
        if order.hold:
            self._balances.release(order.account, book.quote_id if order.side == _BUY else book.base_id, order.hold)
            order.hold = 0
        del self._orders[order.order_id]

    def _fillable(self, book: OrderBook, taker: Order, limit: int) -> bool:
        """Would a fill-or-kill order fill completely right now?

        Own orders count only where they would trade (no self-trade
        prevention) or be cleared out of the way (cancel oldest); any other
        prevention mode stops the fill at them.
        """
        opposite = book.asks if taker.side == _BUY else book.bids
        sign = opposite.sign
        limit_key = limit * sign if limit != _NO_LIMIT else _NO_LIMIT
        need = taker.leaves
        budget = taker.hold if taker.side == _BUY and taker.order_type != _LIMIT and taker.order_type != _STOP_LIMIT else -1
        qpt = book.quote_per_tick_lot
        account, stp = taker.account, taker.stp
        levels = opposite.levels
        for key in reversed(opposite.keys):
            if key < limit_key:
                return False
            price = key * sign
            for maker in levels[price].orders:
                if not maker.leaves:
                    continue
                if maker.account == account and stp != _STP_NONE:
                    if stp == _STP_OLDEST:
                        continue
                    return False
                qty = maker.leaves if maker.leaves < need else need
                if budget >= 0:
                    affordable = budget // (price * qpt)
                    if affordable < qty:
                        return False
                    budget -= qty * price * qpt
                need -= qty
                if need == 0:
                    return True
        return False

    def _match(self, book: OrderBook, taker: Order, limit: int) -> int:
        """Trade ``taker`` against the opposite side up to ``limit``.

        Returns 0 when the taker is filled or nothing is left to trade within
        its limit; a reason when it must stop (self-trade prevention ended it,
        its budget cannot pay for the next lot); -1 when a buy by quote amount
        has spent its budget down to less than a lot.
        """
        side = taker.side
        opposite: BookSide = book.asks if side == _BUY else book.bids
        sign = opposite.sign
        keys = opposite.keys
        levels = opposite.levels
        limit_key = limit * sign if limit != _NO_LIMIT else _NO_LIMIT
        symbol = book.symbol
        qpt = book.quote_per_tick_lot
        bpl = book.base_per_lot
        base_id = book.base_id
        quote_id = book.quote_id
        by_quote = taker.quantity == 0
        budgeted = side == _BUY and (taker.order_type == _MARKET or taker.order_type == _STOP_MARKET)
        taker_limit_buy = side == _BUY and not budgeted
        taker_bps = book.taker_fee_bps
        maker_bps = book.maker_fee_bps
        stp = taker.stp
        taker_account = taker.account
        orders = self._orders
        balances = self._balances
        events = self._events
        seq = self._seq
        stopped = 0
        while keys and keys[-1] >= limit_key:
            price = keys[-1] * sign
            level = levels[price]
            queue = level.orders
            touched = False
            while True:
                maker = queue[0]
                if not maker.leaves:
                    queue.popleft()
                    continue
                if maker.account == taker_account and stp != _STP_NONE:
                    if stp == _STP_NEWEST:
                        stopped = _SELF_TRADE
                        break
                    touched = True
                    if stp == _STP_DECREMENT:
                        cut = maker.leaves if maker.leaves < taker.leaves else taker.leaves
                        self._decrement(book, maker, level, cut)
                        self._decrement(book, taker, None, cut)
                        if not taker.leaves or not level.total:
                            break
                        continue
                    self._decrement(book, maker, level, maker.leaves)
                    if stp == _STP_BOTH:
                        stopped = _SELF_TRADE
                        break
                    if not level.total:
                        break
                    continue
                qty = maker.leaves
                if not by_quote and taker.leaves < qty:
                    qty = taker.leaves
                notional_per_lot = price * qpt
                if budgeted:
                    affordable = taker.hold // notional_per_lot
                    if affordable < qty:
                        qty = affordable
                        if not qty:
                            stopped = -1 if by_quote else _INSUFFICIENT_FUNDS
                            break
                # Settle: the buyer pays quote from its hold and receives base;
                # each side's fee comes out of what it receives.
                notional = qty * notional_per_lot
                base_amount = qty * bpl
                if side == _BUY:
                    taker_fee = _fee(base_amount, taker_bps)
                    maker_fee = _fee(notional, maker_bps)
                    paid = qty * taker.price * qpt if taker_limit_buy else notional
                    taker.hold -= paid
                    maker.hold -= base_amount
                    balances.settle(taker_account, maker.account, base_id, quote_id, base_amount,
                                    notional, paid, taker_fee, maker_fee)
                else:
                    taker_fee = _fee(notional, taker_bps)
                    maker_fee = _fee(base_amount, maker_bps)
                    paid = qty * maker.price * qpt
                    taker.hold -= base_amount
                    maker.hold -= paid
                    balances.settle(maker.account, taker_account, base_id, quote_id, base_amount,
                                    notional, paid, maker_fee, taker_fee)
                if not by_quote:
                    taker.leaves -= qty
                maker.leaves -= qty
                level.total -= qty
                book.last_price = price
                touched = True
                events.append(_make_event(Event, (
                    _TRADE, seq, len(events), symbol, taker.order_id, taker_account, side, price, qty,
                    taker.leaves, maker.order_id, maker.account, maker.leaves, taker_fee, maker_fee, 0,
                )))
                if not maker.leaves:
                    queue.popleft()
                    level.count -= 1
                    del orders[maker.order_id]
                if not level.total or (not by_quote and not taker.leaves):
                    break
            if touched:
                self._emit_level(symbol, opposite.side, level)
                opposite.drop_if_empty(level)
            if stopped or (not by_quote and not taker.leaves):
                return stopped
        return 0

    def _decrement(self, book: OrderBook, order: Order, level: Level | None, cut: int) -> None:
        """Self-trade prevention: take ``cut`` lots off an order without a trade.

        ``level`` is the maker's level (None for the taker, which is not in
        the book). An order cut to nothing is gone.
        """
        if order.side == _SELL:
            freed = cut * book.base_per_lot
            asset = book.base_id
        elif order.order_type == _LIMIT or order.order_type == _STOP_LIMIT:
            freed = cut * order.price * book.quote_per_tick_lot
            asset = book.quote_id
        else:
            freed = 0  # a market buy's budget stays for the rest of its quantity
            asset = book.quote_id
        order.leaves -= cut
        if level is not None:
            level.total -= cut
        if order.leaves:
            order.hold -= freed
            self._balances.release(order.account, asset, freed)
        else:
            if level is not None:
                level.count -= 1
                self._balances.release(order.account, asset, order.hold)
                order.hold = 0
                del self._orders[order.order_id]
            # A taker cut to nothing is ended by the caller (its budget may remain).
        self._emit(_CANCELLED, book.symbol, order.order_id, order.account, order.side, order.price,
                   cut, order.leaves, _SELF_TRADE)

    # Stops --------------------------------------------------------------
    def _fire_stops(self, book: OrderBook) -> None:
        if not book.last_price or not (book.buy_stops or book.sell_stops):
            return
        while True:
            order_id = book.pop_triggered()
            if not order_id:
                return
            order = self._orders[order_id]
            order.triggered = 1
            self._emit(_TRIGGERED, book.symbol, order_id, order.account, order.side, order.price,
                       order.quantity, order.leaves)
            self._activate(book, order)

    def _activate(self, book: OrderBook, order: Order) -> None:
        """A triggered stop enters the market, checked against the market of now."""
        if order.order_type == _STOP_LIMIT:
            if not book.in_band(order.price):
                self._end(book, order, _PRICE_OUT_OF_BAND)
                return
            if order.post_only and book.would_cross(order.side, order.price):
                self._end(book, order, int(_R.POST_ONLY_WOULD_TRADE))
                return
        elif order.side == _BUY and order.quantity and not order.hold:
            budget = self._balances.available(order.account, book.quote_id)
            if budget <= 0:
                self._end(book, order, _INSUFFICIENT_FUNDS)
                return
            self._balances.hold(order.account, book.quote_id, budget)
            order.hold = budget
        self._execute(book, order)

    # Cancel, amend, expire ----------------------------------------------
    def _remove_live(self, order: Order, kind: int, reason: int) -> None:
        """Take a resting order or a waiting stop out of the shard, returning its hold."""
        book = self._books[order.symbol]
        leaves = order.leaves
        if order.stop_price and not order.triggered:
            book.remove_stop(order)
            self._emit(kind, order.symbol, order.order_id, order.account, order.side, order.price,
                       leaves, 0, reason)
            self._end(book, order, -1)
            return
        side = book.side(order.side)
        level = side.unlink(order)
        self._emit(kind, order.symbol, order.order_id, order.account, order.side, order.price,
                   leaves, 0, reason)
        self._emit_level(order.symbol, order.side, level)
        side.drop_if_empty(level)
        self._end(book, order, -1)

    def _cancel(self, c: Command) -> None:
        order = self._orders.get(c[5])
        if order is None or order.account != c[3]:
            self._reject(c, c[5], _UNKNOWN_ORDER)
            return
        self._remove_live(order, _CANCELLED, _USER)

    def _mass_cancel(self, c: Command) -> None:
        account, symbol = c[3], c[4]
        if symbol and symbol not in self._books:
            self._reject(c, 0, int(_R.UNKNOWN_SYMBOL))
            return
        if account <= 0:
            self._reject(c, 0, int(_R.INVALID_ACCOUNT))
            return
        doomed = sorted(
            (o for o in self._orders.values() if o.account == account and (not symbol or o.symbol == symbol)),
            key=lambda o: o.order_id,
        )
        for order in doomed:
            self._remove_live(order, _CANCELLED, _MASS)

    def _amend(self, c: Command) -> None:
        """Change a resting order's price and/or open quantity.

        A quantity decrease at the same price keeps time priority; a price
        change or an increase sends the order to the back, and a new price is
        matched like a new order (a post-only order is refused instead).
        """
        order = self._orders.get(c[5])
        if order is None or order.account != c[3]:
            self._reject(c, c[5], _UNKNOWN_ORDER)
            return
        symbol = order.symbol
        if order.stop_price and not order.triggered:
            self._reject(c, c[5], int(_R.NOT_AMENDABLE), symbol)
            return
        book = self._books[symbol]
        new_price = c[9] or order.price
        new_leaves = c[10] or order.leaves
        if c[9] < 0 or new_price > book.max_price:
            self._reject(c, c[5], int(_R.INVALID_PRICE), symbol)
            return
        if c[10] < 0 or new_leaves > book.max_quantity or (c[10] and new_leaves < book.min_quantity):
            self._reject(c, c[5], int(_R.INVALID_QUANTITY), symbol)
            return
        moved = new_price != order.price
        if moved and not book.in_band(new_price):
            self._reject(c, c[5], _PRICE_OUT_OF_BAND, symbol)
            return
        if moved and order.post_only and book.would_cross(order.side, new_price):
            self._reject(c, c[5], int(_R.POST_ONLY_WOULD_TRADE), symbol)
            return
        if order.side == _BUY:
            asset, new_hold = book.quote_id, new_leaves * new_price * book.quote_per_tick_lot
        else:
            asset, new_hold = book.base_id, new_leaves * book.base_per_lot
        extra = new_hold - order.hold
        if extra > 0 and extra > self._balances.available(order.account, asset):
            self._reject(c, c[5], _INSUFFICIENT_FUNDS, symbol)
            return
        if extra > 0:
            self._balances.hold(order.account, asset, extra)
        elif extra < 0:
            self._balances.release(order.account, asset, -extra)
        side = book.side(order.side)
        self._emit(_AMENDED, symbol, order.order_id, order.account, order.side, new_price, new_leaves, new_leaves)
        if not moved and new_leaves <= order.leaves:
            level = side.levels[order.price]
            level.total -= order.leaves - new_leaves
            order.leaves = new_leaves
            order.hold = new_hold
            self._emit_level(symbol, order.side, level)
            return
        replacement = make_order(order.order_id, order.account, symbol, order.side, order.order_type,
                            order.time_in_force, new_price, order.quantity, order.quote_quantity,
                            order.stop_price, order.expire_time, order.post_only, order.stp, new_hold)
        replacement.leaves = new_leaves
        replacement.triggered = order.triggered
        self._orders[order.order_id] = replacement
        if not moved:
            level = side.unlink(order)
            level = side.add(replacement)
            self._emit_level(symbol, order.side, level)
            return
        level = side.unlink(order)
        self._emit_level(symbol, order.side, level)
        side.drop_if_empty(level)
        self._execute(book, replacement)
        self._fire_stops(book)

    def _expire(self) -> None:
        expiries = self._expiries
        now = self._time
        orders = self._orders
        while expiries and expiries[0][0] <= now:
            expire_time, order_id = heappop(expiries)
            order = orders.get(order_id)
            if order is not None and order.expire_time == expire_time:
                self._remove_live(order, _EXPIRED, 0)

    # Funds --------------------------------------------------------------
    def _deposit(self, c: Command) -> None:
        account, asset, amount = c[3], c[4], c[10]
        if account <= 0:
            self._reject(c, 0, int(_R.INVALID_ACCOUNT))
        elif asset not in self._assets:
            self._reject(c, 0, int(_R.UNKNOWN_ASSET))
        elif amount <= 0 or self._balances.supply[asset] + amount > MAX_AMOUNT:
            self._reject(c, 0, int(_R.INVALID_AMOUNT))
        else:
            self._balances.deposit(account, asset, amount)
            self._emit(_DEPOSITED, asset, 0, account, 0, 0, amount, 0)

    def _withdraw(self, c: Command) -> None:
        account, asset, amount = c[3], c[4], c[10]
        if account < 0:
            self._reject(c, 0, int(_R.INVALID_ACCOUNT))
        elif asset not in self._assets:
            self._reject(c, 0, int(_R.UNKNOWN_ASSET))
        elif amount <= 0:
            self._reject(c, 0, int(_R.INVALID_AMOUNT))
        elif amount > self._balances.available(account, asset):
            self._reject(c, 0, _INSUFFICIENT_FUNDS)
        else:
            self._balances.withdraw(account, asset, amount)
            self._emit(_WITHDRAWN, asset, 0, account, 0, 0, amount, 0)

    # Snapshots ----------------------------------------------------------
    def state(self) -> ShardState:
        books = []
        for symbol in sorted(self._books):
            book = self._books[symbol]
            orders = self._orders
            books.append(BookState(
                symbol=symbol,
                last_price=book.last_price,
                bids=[[o.fields() for o in lv.live_orders()] for lv in book.bids.levels_best_first()],
                asks=[[o.fields() for o in lv.live_orders()] for lv in book.asks.levels_best_first()],
                buy_stops=[orders[oid].fields() for _, oid in book.buy_stops],
                sell_stops=[orders[oid].fields() for _, oid in book.sell_stops],
            ))
        slots = self._balances.asset_slots
        accounts = [
            AccountState(acc.account_id, list(acc.available) + [0] * (slots - len(acc.available)),
                         list(acc.held) + [0] * (slots - len(acc.held)))
            for acc_id, acc in sorted(self._balances.accounts.items())
            if not acc.is_empty()
        ]
        return ShardState(seq=self._seq, time=self._time, asset_slots=slots, accounts=accounts, books=books)

    def snapshot(self) -> bytes:
        return encode(self.state())

    def state_hash(self) -> str:
        return hashlib.blake2b(self.snapshot(), digest_size=16).hexdigest()

    def restore(self, data: bytes) -> None:
        """Replace this shard's state with a snapshot from any backend.

        The same instruments must already be registered.
        """
        state = decode(data)
        if sorted(self._books) != [b.symbol for b in state.books]:
            raise ValueError("snapshot instruments differ from the registered instruments")
        if state.asset_slots != self._balances.asset_slots:
            raise ValueError("snapshot assets differ from the registered instruments' assets")
        self._orders = {}
        self._expiries = []
        self._balances.accounts = {}
        self._balances.supply = [0] * self._balances.asset_slots
        for acc in state.accounts:
            account = self._balances.account(acc.account_id)
            account.available = list(acc.available)
            account.held = list(acc.held)
            for asset in range(state.asset_slots):
                self._balances.supply[asset] += acc.available[asset] + acc.held[asset]
        for bs in state.books:
            book = self._books[bs.symbol] = OrderBook(self._instruments[bs.symbol])
            book.last_price = bs.last_price
            for side, levels in ((book.bids, bs.bids), (book.asks, bs.asks)):
                for level_orders in levels:
                    for fields in level_orders:
                        self._adopt(Order.from_fields(fields))
                        side.add(self._orders[fields[0]])
            for fields in bs.buy_stops + bs.sell_stops:
                order = Order.from_fields(fields)
                self._adopt(order)
                book.add_stop(order)
        self._seq = state.seq
        self._time = state.time

    def _adopt(self, order: Order) -> None:
        self._orders[order.order_id] = order
        if order.time_in_force == _GTD:
            heappush(self._expiries, (order.expire_time, order.order_id))
