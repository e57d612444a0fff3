"""What the event stream means for the stored projections, once for every store.

``Projector.project`` turns a batch of records into ``Changes``: whole rows to
insert (orders, fills, trades, ledger entries) and deltas to add (balances,
candles), ready for one transaction. The store adapters (SQLite here,
PostgreSQL and DynamoDB later) only write ``Changes`` and read back the few
things the projector asks for; none of them re-derives a meaning.

Layout
------
* orders: one row per order the engine saw placed (accepted or rejected),
  keyed by its id (the placing command's ``seq``); status, open quantity,
  filled quantity and notional, fees and the funds it holds follow its events.
  An amend sets ``leaves`` to the new open quantity and ``quantity`` to
  filled + leaves (the engine's AMENDED carries only the new open quantity).
* fills: one row per side of each trade; trades: the public tape, one row
  per trade; both keyed by the trade's position ``(seq, index)``.
* ledger: every deposit, withdrawal, trade leg and fee as postings of one
  entry set per event ``(seq, index)``: a debit on the account that gives, a
  credit on the one that receives, so the debits and credits of each set are
  equal per asset. Deposits come from, and withdrawals go to,
  ``EXTERNAL_ACCOUNT``.
* balances: per (account, asset) ``total`` (moved by deposits, withdrawals,
  trade settlement and fees) and ``held`` (the sum of the open orders' holds);
  written as deltas, so no balance is read before it is written.
* candles: per (symbol, interval, bucket start), written as deltas too.

Holds (the reference engine's rules, at command boundaries)
----------------------------------------------------------
A resting limit buy (a triggered stop-limit buy too) holds leaves x price x
quote_per_tick_lot of quote; any open sell holds leaves x base_per_lot of
base; a waiting stop-limit buy holds quantity x price x quote_per_tick_lot; a
waiting stop-market buy holds its quote amount (0 when sized in base).
Market orders, and stop-markets once triggered, end within their command,
so their budgets never show.

State
-----
The projector keeps the open orders it has touched (an open-order cache);
anything else it needs it asks the store for before the batch, in bulk
(``ProjectionSource``). After a failed transaction the store calls
``reset`` and the cache is read again lazily.

Known limitations
-----------------
* A buy by quote amount whose budget is spent down to less than one lot ends
  without an event from the engine; the projector closes every market order
  still open at the end of its command: ``filled`` if it filled anything,
  else ``cancelled`` with reason ``insufficient_funds``.
* A client order id seen before for the same account (the gateway should
  have answered the retry itself) is not stored on the later order, so the
  id keeps naming the first order; ``Changes.duplicate_client_order_ids``
  counts them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.commands import Command, CommandKind, OrderType, SelfTradePrevention, Side, TimeInForce
from core.events import EventKind, Reason
from core.instrument import FEE_ACCOUNT, Instrument

from .store import (
    CANCELLED,
    EXPIRED,
    EXTERNAL_ACCOUNT,
    FILLED,
    INTERVALS,
    NEW,
    OPEN_STATUSES,
    PARTIALLY_FILLED,
    PENDING_TRIGGER,
    REJECTED,
    TRIGGERED,
    Record,
    Registry,
)

# Names stored for the engine's integers (unknown values, which only rejected
# orders can carry, are stored as their number).
SIDE_NAMES: dict[int, str] = {int(v): v.name.lower() for v in Side}
TYPE_NAMES: dict[int, str] = {int(v): v.name.lower() for v in OrderType}
TIF_NAMES: dict[int, str] = {int(v): v.name.lower() for v in TimeInForce}
STP_NAMES: dict[int, str] = {int(v): v.name.lower() for v in SelfTradePrevention}
REASON_NAMES: dict[int, str] = {int(v): v.name.lower() for v in Reason if v}


def name_of(names: dict[int, str], value: int) -> str:
    return names.get(value) or str(value)


def value_of(names: dict[int, str], name: str) -> int:
    for value, known in names.items():
        if known == name:
            return value
    return int(name)


_BUY = int(Side.BUY)
_SELL = int(Side.SELL)
_MARKET = int(OrderType.MARKET)
_STOP_LIMIT = int(OrderType.STOP_LIMIT)
_STOP_MARKET = int(OrderType.STOP_MARKET)
_NEW_ORDER = int(CommandKind.NEW_ORDER)
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
_ORDER_EVENTS = frozenset((_CANCELLED, _EXPIRED, _AMENDED, _TRIGGERED))
_OPEN = frozenset(OPEN_STATUSES)
_INTERVALS: tuple[tuple[str, int], ...] = tuple(INTERVALS.items())
_INSUFFICIENT_FUNDS_NAME = REASON_NAMES[int(Reason.INSUFFICIENT_FUNDS)]

# Row layouts (column order of every row tuple in ``Changes``) ----------------
ORDER_COLUMNS: tuple[str, ...] = (
    "id", "account", "symbol", "side", "type", "time_in_force", "price", "quantity", "quote_quantity",
    "stop_price", "expire_time", "post_only", "stp", "client_order_id", "status", "leaves",
    "filled_quantity", "filled_notional", "fee_total", "fee_asset", "hold", "hold_asset", "reason",
    "created_seq", "created_time", "updated_seq", "updated_time", "triggered_seq",
)
ORDER_UPDATE_COLUMNS: tuple[str, ...] = (
    "price", "quantity", "status", "leaves", "filled_quantity", "filled_notional", "fee_total", "hold",
    "reason", "updated_seq", "updated_time", "triggered_seq",
)
"""What events change on an existing order; ``Changes.updated_orders`` rows end with the id."""
FILL_COLUMNS: tuple[str, ...] = (
    "trade_seq", "trade_index", "liquidity", "order_id", "account", "symbol", "side", "price", "quantity",
    "fee", "fee_asset", "time",
)
TRADE_COLUMNS: tuple[str, ...] = ("seq", "idx", "symbol", "price", "quantity", "aggressor_side", "time")
LEDGER_COLUMNS: tuple[str, ...] = ("seq", "idx", "leg", "kind", "account", "asset", "debit", "credit", "time")
BALANCE_DELTA_COLUMNS: tuple[str, ...] = ("account", "asset", "total", "held", "updated_seq")
CANDLE_COLUMNS: tuple[str, ...] = (
    "symbol", "interval", "start", "open", "high", "low", "close", "volume", "quote_volume", "trade_count",
)


class OrderState:
    """One order as the projection knows it (integers as the engine has them)."""

    __slots__ = (
        "order_id", "account", "symbol", "side", "order_type", "time_in_force", "price", "quantity",
        "quote_quantity", "stop_price", "expire_time", "post_only", "stp", "client_order_id", "status",
        "leaves", "filled_quantity", "filled_notional", "fee_total", "fee_asset", "hold", "hold_asset",
        "reason", "created_seq", "created_time", "updated_seq", "updated_time", "triggered_seq",
        "stored", "base_per_lot", "quote_per_tick_lot",
    )

    order_id: int
    account: int
    symbol: int
    side: int
    order_type: int
    time_in_force: int
    price: int
    quantity: int
    quote_quantity: int
    stop_price: int
    expire_time: int
    post_only: int
    stp: int
    client_order_id: str | None
    status: str
    leaves: int
    filled_quantity: int
    filled_notional: int
    fee_total: int
    fee_asset: int
    hold: int
    hold_asset: int
    reason: str | None
    created_seq: int
    created_time: int
    updated_seq: int
    updated_time: int
    triggered_seq: int
    stored: bool
    base_per_lot: int
    quote_per_tick_lot: int

    @classmethod
    def placed(cls, c: Command, client_order_id: str | None, instrument: Instrument | None) -> OrderState:
        """The order a NEW_ORDER command places (status and hold are set by the caller)."""
        o = cls()
        (_, seq, time, o.account, o.symbol, _, o.side, o.order_type, o.time_in_force, o.price, o.quantity,
         o.quote_quantity, o.stop_price, o.expire_time, o.post_only, o.stp) = c
        o.order_id = o.created_seq = o.updated_seq = seq
        o.created_time = o.updated_time = time
        o.client_order_id = client_order_id
        o.status = NEW
        o.leaves = o.quantity
        o.filled_quantity = o.filled_notional = o.fee_total = o.hold = o.triggered_seq = 0
        o.reason = None
        o.stored = False
        o._bind(instrument)
        return o

    @classmethod
    def from_row(cls, row: Sequence[Any], instrument: Instrument | None) -> OrderState:
        """An order read back from a store, in ``ORDER_COLUMNS`` order."""
        o = cls()
        (o.order_id, o.account, o.symbol, side, otype, tif, price, quantity, quote_quantity, stop_price,
         expire_time, o.post_only, stp, o.client_order_id, o.status, o.leaves, o.filled_quantity,
         o.filled_notional, o.fee_total, _, o.hold, _, o.reason, o.created_seq, o.created_time,
         o.updated_seq, o.updated_time, triggered_seq) = row
        o.side = value_of(SIDE_NAMES, side)
        o.order_type = value_of(TYPE_NAMES, otype)
        o.time_in_force = value_of(TIF_NAMES, tif)
        o.stp = value_of(STP_NAMES, stp)
        o.price = price or 0
        o.quantity = quantity or 0
        o.quote_quantity = quote_quantity or 0
        o.stop_price = stop_price or 0
        o.expire_time = expire_time or 0
        o.triggered_seq = triggered_seq or 0
        o.post_only = int(o.post_only)
        o.stored = True
        o._bind(instrument)
        return o

    def _bind(self, instrument: Instrument | None) -> None:
        if instrument is None or self.side not in SIDE_NAMES:
            self.fee_asset = self.hold_asset = self.base_per_lot = self.quote_per_tick_lot = 0
            return
        base, quote = instrument.base.id, instrument.quote.id
        self.fee_asset, self.hold_asset = (base, quote) if self.side == _BUY else (quote, base)
        self.base_per_lot = instrument.base_per_lot
        self.quote_per_tick_lot = instrument.quote_per_tick_lot

    def required_hold(self) -> int:
        """What this order holds at a command boundary (see the module docstring)."""
        if self.status not in _OPEN:
            return 0
        otype = self.order_type
        if otype == _MARKET or (otype == _STOP_MARKET and self.triggered_seq):
            return 0
        if self.side == _SELL:
            return self.leaves * self.base_per_lot
        if otype == _STOP_MARKET:
            return self.quote_quantity
        return self.leaves * self.price * self.quote_per_tick_lot

    def row(self) -> tuple[Any, ...]:
        """The whole row, in ``ORDER_COLUMNS`` order (0 stored as NULL where it means "none")."""
        return (
            self.order_id, self.account, self.symbol, name_of(SIDE_NAMES, self.side),
            name_of(TYPE_NAMES, self.order_type), name_of(TIF_NAMES, self.time_in_force),
            self.price or None, self.quantity or None, self.quote_quantity or None, self.stop_price or None,
            self.expire_time or None, self.post_only, name_of(STP_NAMES, self.stp), self.client_order_id,
            self.status, self.leaves, self.filled_quantity, self.filled_notional, self.fee_total,
            self.fee_asset or None, self.hold, self.hold_asset or None, self.reason, self.created_seq,
            self.created_time, self.updated_seq, self.updated_time, self.triggered_seq or None,
        )

    def update_row(self) -> tuple[Any, ...]:
        """``ORDER_UPDATE_COLUMNS`` then the id."""
        return (
            self.price or None, self.quantity or None, self.status, self.leaves, self.filled_quantity,
            self.filled_notional, self.fee_total, self.hold, self.reason, self.updated_seq, self.updated_time,
            self.triggered_seq or None, self.order_id,
        )


@dataclass
class Changes:
    """One batch's effect, ready to be written in one transaction."""

    position: int
    time: int
    records: int = 0
    events: int = 0
    new_orders: list[tuple[Any, ...]] = field(default_factory=list)
    updated_orders: list[tuple[Any, ...]] = field(default_factory=list)
    fills: list[tuple[Any, ...]] = field(default_factory=list)
    trades: list[tuple[Any, ...]] = field(default_factory=list)
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    balance_deltas: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    candle_deltas: list[tuple[Any, ...]] = field(default_factory=list)
    duplicate_client_order_ids: int = 0

    def is_empty(self) -> bool:
        return self.records == 0


class ProjectionSource(Protocol):
    """What the projector reads from a store before a batch."""

    def load_orders(self, order_ids: Collection[int]) -> list[OrderState]:
        """The stored orders among ``order_ids`` (any that are absent are skipped)."""
        ...

    def existing_client_order_ids(self, keys: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which (account, client order id) pairs are already stored."""
        ...


class ProjectionError(RuntimeError):
    """The event stream does not fit the projection (an unknown order or event kind)."""


class Projector:
    """Turns records into ``Changes``; keeps the open orders it has seen."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._orders: dict[int, OrderState] = {}
        self._touched: dict[int, OrderState] = {}
        self._stored_client_ids: set[tuple[int, str]] = set()
        self._seen_client_ids: set[tuple[int, str]] = set()

    def reset(self) -> None:
        """Forget cached state (after a failed write, or another writer's)."""
        self._orders.clear()
        self._touched.clear()

    def committed(self) -> None:
        """The last ``project``'s changes are durable: keep only open orders cached."""
        orders = self._orders
        for order_id, o in self._touched.items():
            o.stored = True
            if o.status not in _OPEN:
                orders.pop(order_id, None)
        self._touched.clear()

    # ------------------------------------------------------------------
    def project(self, batch: Sequence[Record], position: int, source: ProjectionSource) -> Changes:
        """The changes of the records of ``batch`` above ``position``."""
        records = []
        last = position
        for record in batch:
            seq = record[0][1]
            if seq > last:
                records.append(record)
                last = seq
        changes = Changes(position=last, time=records[-1][0][2] if records else 0, records=len(records))
        if not records:
            return changes
        self._touched.clear()
        self._prefetch(records, position, source, changes)

        registry_instruments = self.registry.instruments
        orders = self._orders
        touched = self._touched
        balances: dict[tuple[int, int], list[int]] = {}
        candles: dict[tuple[int, str, int], list[int]] = {}
        fills = changes.fills
        trades = changes.trades
        ledger = changes.ledger
        event_count = 0

        def add(key: tuple[int, int], total: int, held: int, seq: int) -> None:
            entry = balances.get(key)
            if entry is None:
                balances[key] = [total, held, seq]
            else:
                entry[0] += total
                entry[1] += held
                entry[2] = seq

        def rehold(o: OrderState, seq: int) -> None:
            hold = o.required_hold()
            if hold != o.hold:
                add((o.account, o.hold_asset), 0, hold - o.hold, seq)
                o.hold = hold

        for command, client_order_id, events in records:
            seq = command[1]
            time = command[2]
            event_count += len(events)
            ending: list[OrderState] | None = None
            for e in events:
                kind = e[0]
                if kind == _BOOK:
                    continue
                if kind == _TRADE:
                    (_, _, idx, symbol, taker_id, taker_account, side, price, qty, leaves, maker_id,
                     maker_account, maker_leaves, taker_fee, maker_fee, _) = e
                    instrument = registry_instruments[symbol]
                    base = instrument.base.id
                    quote = instrument.quote.id
                    notional = price * qty * instrument.quote_per_tick_lot
                    base_amount = qty * instrument.base_per_lot
                    taker = orders.get(taker_id)
                    maker = orders.get(maker_id)
                    if taker is None or maker is None:
                        raise ProjectionError(f"trade {seq}.{idx} names an order the projection does not know")
                    taker.leaves = leaves
                    taker.filled_quantity += qty
                    taker.filled_notional += notional
                    taker.fee_total += taker_fee
                    taker.status = FILLED if leaves == 0 and taker.quantity else PARTIALLY_FILLED
                    taker.updated_seq = seq
                    taker.updated_time = time
                    rehold(taker, seq)
                    touched[taker_id] = taker
                    maker.leaves = maker_leaves
                    maker.filled_quantity += qty
                    maker.filled_notional += notional
                    maker.fee_total += maker_fee
                    maker.status = FILLED if maker_leaves == 0 else PARTIALLY_FILLED
                    maker.updated_seq = seq
                    maker.updated_time = time
                    rehold(maker, seq)
                    touched[maker_id] = maker
                    taker_side = SIDE_NAMES[side]
                    if side == _BUY:
                        buyer, seller, buyer_fee, seller_fee = taker_account, maker_account, taker_fee, maker_fee
                        maker_side = "sell"
                        taker_fee_asset, maker_fee_asset = base, quote
                    else:
                        buyer, seller, buyer_fee, seller_fee = maker_account, taker_account, maker_fee, taker_fee
                        maker_side = "buy"
                        taker_fee_asset, maker_fee_asset = quote, base
                    fills.append((seq, idx, "taker", taker_id, taker_account, symbol, taker_side, price, qty,
                                  taker_fee, taker_fee_asset, time))
                    fills.append((seq, idx, "maker", maker_id, maker_account, symbol, maker_side, price, qty,
                                  maker_fee, maker_fee_asset, time))
                    trades.append((seq, idx, symbol, price, qty, taker_side, time))
                    # Settlement: base seller -> buyer, quote buyer -> seller, fees -> the fee account.
                    add((buyer, base), base_amount - buyer_fee, 0, seq)
                    add((buyer, quote), -notional, 0, seq)
                    add((seller, base), -base_amount, 0, seq)
                    add((seller, quote), notional - seller_fee, 0, seq)
                    ledger.append((seq, idx, 0, "trade", seller, base, base_amount, 0, time))
                    ledger.append((seq, idx, 1, "trade", buyer, base, 0, base_amount, time))
                    ledger.append((seq, idx, 2, "trade", buyer, quote, notional, 0, time))
                    ledger.append((seq, idx, 3, "trade", seller, quote, 0, notional, time))
                    if buyer_fee:
                        add((FEE_ACCOUNT, base), buyer_fee, 0, seq)
                        ledger.append((seq, idx, 4, "fee", buyer, base, buyer_fee, 0, time))
                        ledger.append((seq, idx, 5, "fee", FEE_ACCOUNT, base, 0, buyer_fee, time))
                    if seller_fee:
                        add((FEE_ACCOUNT, quote), seller_fee, 0, seq)
                        ledger.append((seq, idx, 6, "fee", seller, quote, seller_fee, 0, time))
                        ledger.append((seq, idx, 7, "fee", FEE_ACCOUNT, quote, 0, seller_fee, time))
                    for name, length in _INTERVALS:
                        key = (symbol, name, time - time % length)
                        candle = candles.get(key)
                        if candle is None:
                            candles[key] = [price, price, price, price, qty, notional, 1]
                        else:
                            if price > candle[1]:
                                candle[1] = price
                            if price < candle[2]:
                                candle[2] = price
                            candle[3] = price
                            candle[4] += qty
                            candle[5] += notional
                            candle[6] += 1
                elif kind == _ACCEPTED:
                    o = OrderState.placed(command, client_order_id, registry_instruments.get(command[4]))
                    if client_order_id is not None:
                        o.client_order_id = self._claim(o.account, client_order_id, changes)
                    otype = o.order_type
                    if otype == _STOP_LIMIT or otype == _STOP_MARKET:
                        o.status = PENDING_TRIGGER
                    elif otype == _MARKET:
                        ending = ending or []
                        ending.append(o)
                    rehold(o, seq)
                    orders[o.order_id] = touched[o.order_id] = o
                elif kind in _ORDER_EVENTS:
                    order_id = e[4]
                    found = orders.get(order_id)
                    if found is None:
                        raise ProjectionError(
                            f"{EventKind(kind).name} {seq}.{e[2]} names order {order_id}, which the projection "
                            "does not know as open"
                        )
                    o = found
                    if kind == _CANCELLED:
                        o.leaves = e[9]
                        if not o.leaves:
                            o.status = CANCELLED
                            o.reason = REASON_NAMES.get(e[15])
                    elif kind == _EXPIRED:
                        o.leaves = 0
                        o.status = EXPIRED
                    elif kind == _AMENDED:
                        o.price = e[7]
                        o.leaves = e[8]
                        o.quantity = o.filled_quantity + o.leaves
                    else:  # TRIGGERED
                        o.triggered_seq = seq
                        o.status = TRIGGERED
                        if o.order_type == _STOP_MARKET:
                            ending = ending or []
                            ending.append(o)
                    o.updated_seq = seq
                    o.updated_time = time
                    rehold(o, seq)
                    touched[order_id] = o
                elif kind == _REJECTED:
                    if command[0] == _NEW_ORDER:
                        o = OrderState.placed(command, client_order_id, registry_instruments.get(command[4]))
                        if client_order_id is not None:
                            o.client_order_id = self._claim(o.account, client_order_id, changes)
                        o.status = REJECTED
                        o.leaves = 0
                        o.reason = REASON_NAMES.get(e[15])
                        touched[o.order_id] = o
                elif kind == _DEPOSITED or kind == _WITHDRAWN:
                    idx, asset, account, amount = e[2], e[3], e[5], e[8]
                    if kind == _DEPOSITED:
                        add((account, asset), amount, 0, seq)
                        ledger.append((seq, idx, 0, "deposit", EXTERNAL_ACCOUNT, asset, amount, 0, time))
                        ledger.append((seq, idx, 1, "deposit", account, asset, 0, amount, time))
                    else:
                        add((account, asset), -amount, 0, seq)
                        ledger.append((seq, idx, 0, "withdrawal", account, asset, amount, 0, time))
                        ledger.append((seq, idx, 1, "withdrawal", EXTERNAL_ACCOUNT, asset, 0, amount, time))
                else:
                    raise ProjectionError(f"event kind {kind} at {seq}.{e[2]} is not projected")
            if ending:
                # Market orders end within their command; one the engine ended
                # without an event (a buy by quote amount whose budget is
                # spent down to less than a lot) is closed here.
                for o in ending:
                    if o.status in _OPEN:
                        o.leaves = 0
                        if o.filled_quantity:
                            o.status = FILLED
                        else:
                            o.status = CANCELLED
                            o.reason = _INSUFFICIENT_FUNDS_NAME
                        o.updated_seq = seq
                        o.updated_time = time
                        rehold(o, seq)
        self._seen_client_ids.clear()
        changes.events = event_count
        for o in touched.values():
            if o.stored:
                changes.updated_orders.append(o.update_row())
            else:
                changes.new_orders.append(o.row())
        changes.balance_deltas = [(k[0], k[1], v[0], v[1], v[2]) for k, v in balances.items()]
        changes.candle_deltas = [(k[0], k[1], k[2], *v) for k, v in candles.items()]
        return changes

    # ------------------------------------------------------------------
    def _prefetch(self, records: list[Record], position: int, source: ProjectionSource, changes: Changes) -> None:
        """Read, in bulk, the stored orders and client order ids this batch refers to."""
        orders = self._orders
        wanted: set[int] = set()
        client_ids: set[tuple[int, str]] = set()
        for command, client_order_id, events in records:
            if client_order_id is not None and command[0] == _NEW_ORDER:
                client_ids.add((command[3], client_order_id))
            for e in events:
                kind = e[0]
                if kind == _TRADE:
                    for order_id in (e[4], e[10]):
                        if order_id <= position and order_id not in orders:
                            wanted.add(order_id)
                elif kind in _ORDER_EVENTS and e[4] <= position and e[4] not in orders:
                    wanted.add(e[4])
        if wanted:
            instruments = self.registry.instruments
            for o in source.load_orders(wanted):
                if o.status in _OPEN:
                    # Re-bind with the registry (load_orders may not have had it).
                    o._bind(instruments.get(o.symbol))
                    orders[o.order_id] = o
        self._stored_client_ids = source.existing_client_order_ids(client_ids) if client_ids else set()
        self._seen_client_ids.clear()

    def _claim(self, account: int, client_order_id: str, changes: Changes) -> str | None:
        """The client order id to store on a new order: None if the account used it before."""
        key = (account, client_order_id)
        if key in self._stored_client_ids or key in self._seen_client_ids:
            changes.duplicate_client_order_ids += 1
            return None
        self._seen_client_ids.add(key)
        return client_order_id
