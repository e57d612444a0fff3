"""What must hold after every command, whatever the commands were.

Everything here reads the engine through its public interface only: the
canonical snapshot (``core.snapshot.decode``), ``balance``, ``depth``,
``last_price``, ``sequence``, ``state_hash`` and the events.

``check_state`` checks one state on its own: balances never negative, every
asset conserved (deposits minus withdrawals) and every account's total equal
to what the events say (``Ledger``), the book not crossed, levels in price
order, holds equal to what the live orders reserve, no waiting stop that the
last price has reached, no GTD order past its time, and the read methods
agreeing with the snapshot (``state_hash`` being BLAKE2b-128 of it).

``BookModel`` checks a command's events against the state before and after:
it replays the events on a model of the queues built from the snapshot before
the command, checking that every trade takes the head of the best opposite
level (price then time priority), within the taker's limit, with the right
fees, never against an own order unless self-trade prevention is off; that
prevention only touches the incoming order's own resting orders and that a
decrement cuts both by the same amount; that stops fire only once reached and
earliest placed first; and at the end the model must equal the snapshot
after, level by level and order by order, which pins first-in-first-out order
(a new or re-queued order joins the back of its level).

``check_answers`` holds a command's events to rules that need no book: user
and mass cancels and amends touch only the commanding account's orders (and
only the target or the named symbol), an accepted limit price is inside the
band and a band rejection outside it, a post-only order never takes, a
fill-or-kill order fills completely or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.commands import Command, CommandKind, OrderType, SelfTradePrevention, Side
from core.engine import MatchingEngine
from core.events import Event, EventKind, Reason
from core.instrument import FEE_ACCOUNT, Instrument
from core.snapshot import ORDER_FIELDS, ShardState, decode

F = {name: i for i, name in enumerate(ORDER_FIELDS)}
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_LIMIT, _MARKET, _STOP_LIMIT, _STOP_MARKET = (int(t) for t in OrderType)


class InvariantViolation(AssertionError):
    pass


def _fail(message: str) -> None:
    raise InvariantViolation(message)


def fee(amount: int, bps: int) -> int:
    """The documented fee: floor(amount x bps / 10000)."""
    return amount * bps // 10_000


def describe(event: Sequence[int]) -> str:
    """Like ``core.events.describe`` but never raises on an unexpected value."""
    try:
        kind = EventKind(event[0]).name
    except ValueError:
        kind = f"KIND{event[0]}"
    parts = [f"{kind} seq={event[1]}.{event[2]}"]
    for name, value in zip(Event._fields[3:], event[3:], strict=False):
        if value:
            text = str(value)
            if name == "reason":
                try:
                    text = Reason(value).name
                except ValueError:
                    pass
            parts.append(f"{name}={text}")
    return " ".join(parts)


# --- Ledger ------------------------------------------------------------------
class Ledger:
    """Every account's total (available + held) per asset, from the events alone.

    Deposits and withdrawals change one account; a trade moves base from the
    seller to the buyer and quote the other way, each side's fee going from
    what it receives to the fee account. Holds and releases only move funds
    between available and held, so they do not show here.
    """

    def __init__(self, instruments: dict[int, Instrument]) -> None:
        self.instruments = instruments
        self.totals: dict[tuple[int, int], int] = {}
        self.supply: dict[int, int] = {}

    def _add(self, account: int, asset: int, amount: int) -> None:
        self.totals[(account, asset)] = self.totals.get((account, asset), 0) + amount

    def apply(self, events: Iterable[Sequence[int]]) -> None:
        for raw in events:
            e = Event(*raw)
            if e.kind == EventKind.DEPOSITED:
                self._add(e.account, e.symbol, e.quantity)
                self.supply[e.symbol] = self.supply.get(e.symbol, 0) + e.quantity
            elif e.kind == EventKind.WITHDRAWN:
                self._add(e.account, e.symbol, -e.quantity)
                self.supply[e.symbol] = self.supply.get(e.symbol, 0) - e.quantity
            elif e.kind == EventKind.TRADE:
                inst = self.instruments[e.symbol]
                base, quote = inst.base.id, inst.quote.id
                base_amount = e.quantity * inst.base_per_lot
                notional = e.quantity * e.price * inst.quote_per_tick_lot
                if e.side == _BUY:
                    buyer, seller, buyer_fee, seller_fee = e.account, e.maker_account, e.taker_fee, e.maker_fee
                else:
                    buyer, seller, buyer_fee, seller_fee = e.maker_account, e.account, e.maker_fee, e.taker_fee
                self._add(buyer, base, base_amount - buyer_fee)
                self._add(buyer, quote, -notional)
                self._add(seller, base, -base_amount)
                self._add(seller, quote, notional - seller_fee)
                self._add(FEE_ACCOUNT, base, buyer_fee)
                self._add(FEE_ACCOUNT, quote, seller_fee)


# --- One state ---------------------------------------------------------------
def expected_hold(o: Sequence[int], inst: Instrument) -> int:
    """What a live order must have reserved, from its own fields."""
    side, otype, leaves, price = o[F["side"]], o[F["order_type"]], o[F["leaves"]], o[F["price"]]
    if side == _SELL:
        return leaves * inst.base_per_lot
    if otype in (_LIMIT, _STOP_LIMIT):
        return leaves * price * inst.quote_per_tick_lot
    if otype == _STOP_MARKET and not o[F["triggered"]]:
        # by quantity: nothing until it triggers; by quote amount: that amount
        return o[F["quote_quantity"]] if o[F["quantity"]] == 0 else 0
    _fail(f"order {o[F['order_id']]} of type {otype} cannot be live")
    return 0


def stop_reached(side: int, stop_price: int, last_price: int) -> bool:
    """A buy stop triggers at or above its stop price, a sell stop at or below; never before a trade."""
    if not last_price:
        return False
    return last_price >= stop_price if side == _BUY else last_price <= stop_price


def in_band(inst: Instrument, last_price: int, price: int) -> bool:
    reference = last_price or inst.reference_price
    if not inst.price_band_bps or not reference:
        return True
    width = reference * inst.price_band_bps // 10_000
    return reference - width <= price <= reference + width


def check_state(engine: MatchingEngine, instruments: dict[int, Instrument], ledger: Ledger) -> ShardState:
    """Check one state; return it decoded."""
    raw = engine.snapshot()
    state = decode(raw)
    if engine.state_hash() != hashlib.blake2b(raw, digest_size=16).hexdigest():
        _fail("state_hash() is not BLAKE2b-128 of snapshot()")
    if engine.sequence != state.seq:
        _fail(f"sequence {engine.sequence} != snapshot seq {state.seq}")

    # Balances: never negative; conserved; each as the events say; the read method agrees.
    totals: dict[int, int] = {}
    held_by: dict[tuple[int, int], int] = {}
    account_totals: dict[tuple[int, int], int] = {}
    for acc in state.accounts:
        for asset in range(state.asset_slots):
            avail, held = acc.available[asset], acc.held[asset]
            if avail < 0 or held < 0:
                _fail(f"account {acc.account_id} asset {asset}: negative balance ({avail}, {held})")
            totals[asset] = totals.get(asset, 0) + avail + held
            if held:
                held_by[(acc.account_id, asset)] = held
            if avail + held:
                account_totals[(acc.account_id, asset)] = avail + held
            got = tuple(engine.balance(acc.account_id, asset))
            if got != (avail, held):
                _fail(f"balance({acc.account_id}, {asset}) = {got}, snapshot says {(avail, held)}")
    for asset in set(totals) | set(ledger.supply):
        if totals.get(asset, 0) != ledger.supply.get(asset, 0):
            _fail(f"asset {asset} not conserved: accounts hold {totals.get(asset, 0)}, "
                  f"deposits - withdrawals = {ledger.supply.get(asset, 0)}")
    by_events = {k: v for k, v in ledger.totals.items() if v}
    if account_totals != by_events:
        diff = {k: (account_totals.get(k, 0), by_events.get(k, 0)) for k in set(account_totals) | set(by_events)
                if account_totals.get(k, 0) != by_events.get(k, 0)}
        _fail(f"(account, asset): (snapshot total, total from the events) differ: {diff}")

    # Books.
    reserved: dict[tuple[int, int], int] = {}
    seen: set[int] = set()
    for bs in state.books:
        inst = instruments[bs.symbol]
        if engine.last_price(bs.symbol) != bs.last_price:
            _fail(f"last_price({bs.symbol}) disagrees with the snapshot")
        prices: dict[int, list[int]] = {}
        for side, levels in ((_BUY, bs.bids), (_SELL, bs.asks)):
            prices[side] = []
            for orders in levels:
                if not orders:
                    _fail(f"book {bs.symbol}: an empty level in the snapshot")
                price = orders[0][F["price"]]
                prices[side].append(price)
                for o in orders:
                    oid = o[F["order_id"]]
                    if oid in seen:
                        _fail(f"order {oid} appears twice")
                    seen.add(oid)
                    if o[F["price"]] != price or o[F["side"]] != side or o[F["symbol"]] != bs.symbol:
                        _fail(f"order {oid} is in the wrong level/side/book")
                    if o[F["leaves"]] <= 0:
                        _fail(f"resting order {oid} has no open quantity")
                    if o[F["order_type"]] not in (_LIMIT, _STOP_LIMIT) or (
                        o[F["order_type"]] == _STOP_LIMIT and not o[F["triggered"]]
                    ):
                        _fail(f"order {oid} of type {o[F['order_type']]} rests in the book")
                    if o[F["time_in_force"]] not in (0, 3):
                        _fail(f"order {oid} with time in force {o[F['time_in_force']]} rests in the book")
            step = -1 if side == _BUY else 1
            if any((b - a) * step <= 0 for a, b in zip(prices[side], prices[side][1:], strict=False)):
                _fail(f"book {bs.symbol} side {side}: levels not in strict price order {prices[side]}")
        if prices[_BUY] and prices[_SELL] and prices[_BUY][0] >= prices[_SELL][0]:
            _fail(f"book {bs.symbol} is crossed: best bid {prices[_BUY][0]} >= best ask {prices[_SELL][0]}")
        for side, stops in ((_BUY, bs.buy_stops), (_SELL, bs.sell_stops)):
            for o in stops:
                oid = o[F["order_id"]]
                if oid in seen:
                    _fail(f"order {oid} appears twice")
                seen.add(oid)
                if o[F["side"]] != side or o[F["order_type"]] not in (_STOP_LIMIT, _STOP_MARKET) or o[F["triggered"]]:
                    _fail(f"stop list of book {bs.symbol} holds order {oid} that is not a waiting stop on side {side}")
            sign = 1 if side == _BUY else -1
            keys = [(o[F["stop_price"]] * sign, o[F["order_id"]]) for o in stops]
            if keys != sorted(keys):
                _fail(f"book {bs.symbol}: stops of side {side} not in trigger order")
            for o in stops:
                if stop_reached(side, o[F["stop_price"]], bs.last_price):
                    _fail(f"stop {o[F['order_id']]} (stop {o[F['stop_price']]}) still waits although the last "
                          f"price {bs.last_price} has reached it")
        # Depth agrees with the snapshot's levels.
        n = max(len(bs.bids), len(bs.asks)) + 1
        bids, asks = engine.depth(bs.symbol, n)
        want = (
            [(lv[0][F["price"]], sum(o[F["leaves"]] for o in lv), len(lv)) for lv in bs.bids],
            [(lv[0][F["price"]], sum(o[F["leaves"]] for o in lv), len(lv)) for lv in bs.asks],
        )
        if ([tuple(x) for x in bids], [tuple(x) for x in asks]) != want:
            _fail(f"depth({bs.symbol}) = {(bids, asks)} but the snapshot's levels are {want}")
        # Holds.
        for o in [o for lv in bs.bids + bs.asks for o in lv] + list(bs.buy_stops) + list(bs.sell_stops):
            need = expected_hold(o, inst)
            if o[F["hold"]] != need:
                _fail(f"order {o[F['order_id']]} holds {o[F['hold']]}, its open quantity needs {need}")
            if o[F["time_in_force"]] == 3 and o[F["expire_time"]] <= state.time:
                _fail(f"GTD order {o[F['order_id']]} outlived its expire time")
            asset = inst.quote.id if o[F["side"]] == _BUY else inst.base.id
            key = (o[F["account"]], asset)
            reserved[key] = reserved.get(key, 0) + need
    reserved = {k: v for k, v in reserved.items() if v}
    if reserved != held_by:
        _fail(f"held balances {held_by} differ from what the live orders reserve {reserved}")
    return state


def check_answers(command: Command, before: ShardState, events: Sequence[Sequence[int]],
                  instruments: dict[int, Instrument]) -> None:
    """Rules about what a command's events may say, whatever the book."""
    evs = [Event(*e) for e in events]
    kind = command.kind
    for e in evs:
        if e.kind == EventKind.CANCELLED and e.reason in (Reason.USER, Reason.MASS_CANCEL):
            if kind not in (CommandKind.CANCEL, CommandKind.MASS_CANCEL) or e.account != command.account:
                _fail(f"{describe(e)}: a user or mass cancel of an order not of the commanding account")
            if kind == CommandKind.CANCEL and e.order_id != command.order_id:
                _fail(f"{describe(e)}: cancel {command.order_id} removed another order")
            if kind == CommandKind.MASS_CANCEL and command.symbol and e.symbol != command.symbol:
                _fail(f"{describe(e)}: mass cancel of symbol {command.symbol} removed an order elsewhere")
        if e.kind == EventKind.AMENDED and (kind != CommandKind.AMEND or e.account != command.account
                                            or e.order_id != command.order_id):
            _fail(f"{describe(e)}: amended an order that is not the command's target of its account")
    if kind != CommandKind.NEW_ORDER:
        return
    inst = instruments.get(command.symbol)
    book = next((b for b in before.books if b.symbol == command.symbol), None)
    if inst is None or book is None:
        return
    answer = next((e for e in evs if e.kind in (EventKind.ACCEPTED, EventKind.REJECTED)), None)
    if answer is None:
        if command.seq > before.seq:
            _fail(f"new order {command.seq} got neither ACCEPTED nor REJECTED")
        return
    if command.order_type == _LIMIT:
        if answer.kind == EventKind.ACCEPTED and not in_band(inst, book.last_price, command.price):
            _fail(f"limit order {command.seq} at {command.price} accepted outside the band")
        if answer.kind == EventKind.REJECTED and answer.reason == Reason.PRICE_OUT_OF_BAND and in_band(
                inst, book.last_price, command.price):
            _fail(f"limit order {command.seq} at {command.price} rejected as out of band but is inside it")
    if answer.kind == EventKind.ACCEPTED:
        own = [e for e in evs if e.kind == EventKind.TRADE and e.order_id == command.seq]
        if command.post_only and own:
            _fail(f"post-only order {command.seq} traded as a taker")
        if command.time_in_force == 2 and command.order_type in (_LIMIT, _MARKET):
            filled = sum(e.quantity for e in own)
            if filled not in (0, command.quantity):
                _fail(f"fill-or-kill order {command.seq} filled {filled} of {command.quantity}")


def check_event_positions(command: Command, events: Sequence[Sequence[int]], previous_seq: int) -> None:
    """(seq, index) are the command's seq and 0, 1, 2, ...; a replay yields nothing;
    a rejection is the command's last and only answer."""
    if command.seq <= previous_seq:
        if events:
            _fail(f"replayed command seq {command.seq} (current {previous_seq}) produced events")
        return
    for i, e in enumerate(events):
        if e[1] != command.seq or e[2] != i:
            _fail(f"event {describe(e)} at position {i} of command {command.seq}")
    rejections = [i for i, e in enumerate(events) if e[0] == EventKind.REJECTED]
    if rejections and rejections != [len(events) - 1]:
        _fail("a REJECTED event must be the last and only answer to its command")
    if rejections and any(e[0] not in (EventKind.EXPIRED, EventKind.BOOK, EventKind.REJECTED) for e in events):
        _fail("a rejected command changed something besides expiring orders")


# --- Event-driven model of the queues ----------------------------------------
@dataclass
class _Info:
    account: int
    side: int
    order_type: int
    price: int
    stp: int
    by_quote: bool


class BookModel:
    """The queues of every book, replayed from a command's events."""

    def __init__(self, state: ShardState, instruments: dict[int, Instrument]) -> None:
        self.instruments = instruments
        self.levels: dict[tuple[int, int], dict[int, list[list[int]]]] = {}
        self.where: dict[int, tuple[int, int, int]] = {}
        self.info: dict[int, _Info] = {}
        self.pending: dict[int, list[int]] = {}  # live, not resting: [symbol, side, price, leaves]
        self.waiting: dict[int, tuple[int, int, int]] = {}  # stop id -> (symbol, side, stop price)
        self.taker = 0  # the order currently entering the market
        self.owed_cut: tuple[int, int] | None = None  # (taker, lots) a decrement must take off the taker next
        self.last: dict[int, int] = {bs.symbol: bs.last_price for bs in state.books}
        for bs in state.books:
            for side, levels in ((_BUY, bs.bids), (_SELL, bs.asks)):
                book_side = self.levels.setdefault((bs.symbol, side), {})
                for orders in levels:
                    price = orders[0][F["price"]]
                    book_side[price] = [[o[F["order_id"]], o[F["leaves"]]] for o in orders]
                    for o in orders:
                        self.where[o[F["order_id"]]] = (bs.symbol, side, price)
                        self._remember(o)
            for o in list(bs.buy_stops) + list(bs.sell_stops):
                self._remember(o)
                self.waiting[o[F["order_id"]]] = (bs.symbol, o[F["side"]], o[F["stop_price"]])

    def _remember(self, o: Sequence[int]) -> None:
        self.info[o[F["order_id"]]] = _Info(o[F["account"]], o[F["side"]], o[F["order_type"]], o[F["price"]],
                                            o[F["stp"]], o[F["quantity"]] == 0)

    def _remove(self, oid: int) -> None:
        symbol, side, price = self.where.pop(oid)
        queue = self.levels[(symbol, side)][price]
        queue[:] = [entry for entry in queue if entry[0] != oid]
        if not queue:
            del self.levels[(symbol, side)][price]

    def _entry(self, oid: int) -> list[int]:
        symbol, side, price = self.where[oid]
        for entry in self.levels[(symbol, side)][price]:
            if entry[0] == oid:
                return entry
        _fail(f"model lost order {oid}")
        raise AssertionError

    def apply(self, command: Command, events: Sequence[Sequence[int]]) -> None:
        for e in events:
            kind = e[0]
            ev = Event(*e)
            where = f"{describe(e)} (command {command.seq})"
            if self.owed_cut is not None:
                taker, cut = self.owed_cut
                if (kind, ev.order_id, ev.quantity, ev.reason) != (EventKind.CANCELLED, taker, cut, Reason.SELF_TRADE):
                    _fail(f"{where}: a decrement of {cut} on the resting order must be followed by the same "
                          f"cut on taker {taker}")
                self.owed_cut = None
            if kind == EventKind.ACCEPTED:
                if command.kind != CommandKind.NEW_ORDER or ev.order_id != command.seq:
                    _fail(f"{where}: ACCEPTED must answer a new order with its seq as id")
                self.info[ev.order_id] = _Info(command.account, command.side, command.order_type, command.price,
                                               command.stp, command.quantity == 0)
                if command.order_type in (_LIMIT, _MARKET):
                    self.pending[ev.order_id] = [ev.symbol, ev.side, ev.price, ev.quantity]
                    self.taker = ev.order_id
                else:
                    self.waiting[ev.order_id] = (ev.symbol, ev.side, command.stop_price)
            elif kind == EventKind.TRIGGERED:
                if ev.order_id not in self.waiting:
                    _fail(f"{where}: not a waiting stop")
                symbol, side, stop = self.waiting.pop(ev.order_id)
                last = self.last.get(symbol, 0)
                if not stop_reached(side, stop, last):
                    _fail(f"{where}: stop {stop} triggered although the last price is {last}")
                earlier = [oid for oid, (sym, sd, sp) in self.waiting.items()
                           if sym == symbol and oid < ev.order_id and stop_reached(sd, sp, last)]
                if earlier:
                    _fail(f"{where}: fired before the earlier placed stops {earlier} that the price also reached")
                self.pending[ev.order_id] = [ev.symbol, ev.side, ev.price, ev.quantity]
                self.taker = ev.order_id
            elif kind == EventKind.TRADE:
                self._trade(ev, where)
            elif kind in (EventKind.CANCELLED, EventKind.EXPIRED):
                self._cancelled(ev, where)
            elif kind == EventKind.AMENDED:
                if ev.order_id not in self.where:
                    _fail(f"{where}: amended an order that is not resting")
                symbol, side, price = self.where[ev.order_id]
                entry = self._entry(ev.order_id)
                if ev.price == price and ev.quantity <= entry[1]:
                    entry[1] = ev.quantity  # keeps its place
                else:
                    self._remove(ev.order_id)  # re-queued at the back if it rests
                    self.pending[ev.order_id] = [symbol, side, ev.price, ev.quantity]
                    self.info[ev.order_id].price = ev.price
                    self.taker = ev.order_id
            elif kind == EventKind.BOOK:
                self._level(ev, where)

    def _trade(self, ev: Event, where: str) -> None:
        inst = self.instruments[ev.symbol]
        self.last[ev.symbol] = ev.price
        opposite = self.levels.get((ev.symbol, 1 - ev.side), {})
        if not opposite:
            _fail(f"{where}: trade against an empty side")
        best = max(opposite) if ev.side == _SELL else min(opposite)
        if ev.price != best:
            _fail(f"{where}: trade at {ev.price} while the best opposite level is {best}")
        queue = opposite[best]
        head = queue[0]
        if head[0] != ev.maker_order_id:
            _fail(f"{where}: maker {ev.maker_order_id} is not the head of the level (head is {head[0]})")
        if ev.quantity <= 0 or ev.quantity > head[1]:
            _fail(f"{where}: trade quantity {ev.quantity} vs maker open {head[1]}")
        head[1] -= ev.quantity
        if head[1] != ev.maker_leaves:
            _fail(f"{where}: maker_leaves {ev.maker_leaves}, model says {head[1]}")
        maker = self.info[ev.maker_order_id]
        if maker.account != ev.maker_account:
            _fail(f"{where}: maker account {ev.maker_account}, order belongs to {maker.account}")
        if not head[1]:
            queue.pop(0)
            del self.where[ev.maker_order_id]
            if not queue:
                del opposite[best]
        taker = self.info.get(ev.order_id)
        if taker is None or taker.account != ev.account or taker.side != ev.side:
            _fail(f"{where}: taker does not match its order")
            return
        if ev.account == ev.maker_account and taker.stp != SelfTradePrevention.NONE:
            _fail(f"{where}: self-trade although the taker's prevention mode is {taker.stp}")
        if taker.order_type in (_LIMIT, _STOP_LIMIT):
            limit = taker.price
            if (ev.side == _BUY and ev.price > limit) or (ev.side == _SELL and ev.price < limit):
                _fail(f"{where}: trade through the taker's limit {limit}")
        pending = self.pending.get(ev.order_id)
        if pending is None:
            _fail(f"{where}: the taker is not a live incoming order")
            return
        if taker.by_quote:
            if ev.leaves:
                _fail(f"{where}: a buy by quote amount reports open quantity")
        else:
            pending[3] -= ev.quantity
            if pending[3] != ev.leaves:
                _fail(f"{where}: taker leaves {ev.leaves}, model says {pending[3]}")
        base_amount = ev.quantity * inst.base_per_lot
        notional = ev.quantity * ev.price * inst.quote_per_tick_lot
        taker_gets, maker_gets = (base_amount, notional) if ev.side == _BUY else (notional, base_amount)
        if ev.taker_fee != fee(taker_gets, inst.taker_fee_bps) or ev.maker_fee != fee(maker_gets, inst.maker_fee_bps):
            _fail(f"{where}: fees should be taker {fee(taker_gets, inst.taker_fee_bps)} "
                  f"maker {fee(maker_gets, inst.maker_fee_bps)}")

    def _cancelled(self, ev: Event, where: str) -> None:
        if ev.kind == EventKind.EXPIRED and ev.reason:
            _fail(f"{where}: EXPIRED carries no reason")
        if ev.kind == EventKind.CANCELLED and ev.reason not in (
            Reason.USER, Reason.MASS_CANCEL, Reason.IMMEDIATE_OR_CANCEL, Reason.FILL_OR_KILL, Reason.SELF_TRADE,
            Reason.INSUFFICIENT_FUNDS, Reason.PRICE_OUT_OF_BAND, Reason.POST_ONLY_WOULD_TRADE,
        ):
            _fail(f"{where}: not a cancellation reason")
        if ev.leaves and ev.reason != Reason.SELF_TRADE:
            _fail(f"{where}: only a self-trade decrement leaves open quantity")
        self.waiting.pop(ev.order_id, None)
        if ev.reason == Reason.SELF_TRADE and ev.order_id != self.taker:
            # prevention removing or shrinking a resting own order of the incoming order
            taker = self.info.get(self.taker)
            if taker is None or taker.account != ev.account or taker.stp in (SelfTradePrevention.NONE,
                                                                             SelfTradePrevention.CANCEL_NEWEST):
                _fail(f"{where}: self-trade prevention on a resting order the incoming order may not touch")
            elif taker.stp == SelfTradePrevention.DECREMENT:
                self.owed_cut = (self.taker, ev.quantity)
            elif ev.leaves:
                _fail(f"{where}: only a decrement leaves a resting order partly open")
        if ev.order_id in self.where:
            entry = self._entry(ev.order_id)
            if entry[1] != ev.quantity + ev.leaves:
                _fail(f"{where}: order had {entry[1]} open, event removes {ev.quantity} leaving {ev.leaves}")
            if ev.leaves:
                entry[1] = ev.leaves
            else:
                self._remove(ev.order_id)
        elif ev.order_id in self.pending:
            pending = self.pending[ev.order_id]
            if not self.info[ev.order_id].by_quote and pending[3] != ev.quantity + ev.leaves:
                _fail(f"{where}: incoming order had {pending[3]} open")
            if ev.leaves:
                pending[3] = ev.leaves
            else:
                del self.pending[ev.order_id]

    def _level(self, ev: Event, where: str) -> None:
        side_levels = self.levels.setdefault((ev.symbol, ev.side), {})
        queue = side_levels.get(ev.price, [])
        total = sum(entry[1] for entry in queue)
        if total == ev.quantity:
            return
        joining = [
            oid for oid, p in self.pending.items()
            if p[0] == ev.symbol and p[1] == ev.side and p[2] == ev.price and p[3] > 0 and total + p[3] == ev.quantity
        ]
        if len(joining) != 1:
            _fail(f"{where}: level total {ev.quantity}, model has {total} and no order joining it")
        oid = joining[0]
        side_levels.setdefault(ev.price, []).append([oid, self.pending.pop(oid)[3]])
        self.where[oid] = (ev.symbol, ev.side, ev.price)

    def assert_matches(self, state: ShardState) -> None:
        for bs in state.books:
            for side, levels in ((_BUY, bs.bids), (_SELL, bs.asks)):
                actual = [(lv[0][F["price"]], [(o[F["order_id"]], o[F["leaves"]]) for o in lv]) for lv in levels]
                model_side = self.levels.get((bs.symbol, side), {})
                ordered = sorted(model_side, reverse=(side == _BUY))
                model = [(p, [(e[0], e[1]) for e in model_side[p]]) for p in ordered]
                if actual != model:
                    _fail(f"book {bs.symbol} side {side} after the events should be {model} (events replayed on "
                          f"the book before), the snapshot says {actual}")


def check_command(engine: MatchingEngine, command: Command, before: ShardState, events: Sequence[Sequence[int]],
                  instruments: dict[int, Instrument], ledger: Ledger) -> ShardState:
    """Everything checkable about one command: positions, the model, the state after."""
    check_event_positions(command, events, before.seq)
    check_answers(command, before, events, instruments)
    ledger.apply(events)
    model = BookModel(before, instruments)
    model.apply(command, events)
    if model.owed_cut is not None:
        _fail(f"command {command.seq}: a decrement on a resting order without the same cut on the taker")
    after = check_state(engine, instruments, ledger)
    applied = command.seq > before.seq
    want_time = max(before.time, command.time) if applied else before.time
    if (after.seq, after.time) != ((command.seq, want_time) if applied else (before.seq, before.time)):
        _fail(f"after command {command.seq} (time {command.time}) the shard is at seq {after.seq} time "
              f"{after.time}; want seq {command.seq if applied else before.seq} time {want_time}")
    model.assert_matches(after)
    return after
