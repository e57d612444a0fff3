"""Requests to engine commands, and engine events back to the API's order shape.

The gateway validates what it can without the engine's state (types, decimal
strings, the instrument's units, values that fit 64 bits) and leaves every
rule that needs state, or that the engine already defines, to the engine: a
limit order without a price is *sent* with price 0 and answered with the
engine's ``invalid_price``, so a rejection has one reason code whoever finds
it first.

The order returned by ``POST /v1/orders`` is computed from the events of its
own command (the same rules as the persistence projection:
``services.persistence.projection``), so the client gets it as soon as the
command is durable and applied, without waiting for the projection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from core.commands import Command, OrderType, SelfTradePrevention, Side, TimeInForce
from core.commands import amend as amend_cmd
from core.commands import cancel as cancel_cmd
from core.commands import new_order as new_order_cmd
from core.events import Event, EventKind, Reason
from core.instrument import Instrument
from core.numbers import NumberFormatError
from services.gateway.errors import rejection
from services.gateway.schemas import AmendRequest, OrderRequest
from services.matcher.records import Outcome
from services.persistence.projection import OrderState
from services.persistence.store import (
    CANCELLED,
    EXPIRED,
    FILLED,
    NEW,
    OPEN_STATUSES,
    PARTIALLY_FILLED,
    PENDING_TRIGGER,
    TRIGGERED,
    FillView,
    OrderView,
    Registry,
)
from services.persistence.views import order_view

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NS_PER_MS = 1_000_000

SIDES = {"buy": int(Side.BUY), "sell": int(Side.SELL)}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
ORDER_TYPES = {
    "limit": int(OrderType.LIMIT),
    "market": int(OrderType.MARKET),
    "stop_limit": int(OrderType.STOP_LIMIT),
    "stop_market": int(OrderType.STOP_MARKET),
}
TIMES_IN_FORCE = {
    "gtc": int(TimeInForce.GTC),
    "ioc": int(TimeInForce.IOC),
    "fok": int(TimeInForce.FOK),
    "gtd": int(TimeInForce.GTD),
}
DEFAULT_TIF = {"limit": "gtc", "stop_limit": "gtc", "market": "ioc", "stop_market": "ioc"}
STP_MODES = {
    "none": int(SelfTradePrevention.NONE),
    "cancel_newest": int(SelfTradePrevention.CANCEL_NEWEST),
    "cancel_oldest": int(SelfTradePrevention.CANCEL_OLDEST),
    "cancel_both": int(SelfTradePrevention.CANCEL_BOTH),
    "decrement": int(SelfTradePrevention.DECREMENT),
}

_ACCEPTED = int(EventKind.ACCEPTED)
_REJECTED = int(EventKind.REJECTED)
_TRADE = int(EventKind.TRADE)
_CANCELLED = int(EventKind.CANCELLED)
_EXPIRED = int(EventKind.EXPIRED)
_AMENDED = int(EventKind.AMENDED)
_TRIGGERED = int(EventKind.TRIGGERED)
_MARKET = int(OrderType.MARKET)
_STOP_LIMIT = int(OrderType.STOP_LIMIT)
_STOP_MARKET = int(OrderType.STOP_MARKET)
_OPEN = frozenset(OPEN_STATUSES)
_REASON_NAMES = {int(r): r.name.lower() for r in Reason if r}


# Requests -> commands --------------------------------------------------------
def _units(convert: Callable[[str, str], int], text: str | None, reason: Reason, field: str, unit: Decimal) -> int:
    if text is None:
        return 0
    try:
        value = convert(text, field)
    except (NumberFormatError, ArithmeticError, ValueError):
        raise rejection(
            reason, f"{field} must be a plain decimal string and a whole multiple of {unit.normalize():f}",
        ) from None
    if not INT64_MIN <= value <= INT64_MAX:
        raise rejection(reason, f"{field} is out of range")
    return value


def new_order_command(instrument: Instrument, account: int, req: OrderRequest) -> Command:
    """The NEW_ORDER command for a request (``seq`` and ``time`` are stamped later)."""
    tif = req.time_in_force or DEFAULT_TIF[req.type]
    quote_quantity = 0
    if req.quote_quantity is not None:
        quote_quantity = _units(instrument.quote.to_units, req.quote_quantity, Reason.INVALID_QUANTITY,
                                "quote_quantity", instrument.quote.unit)
    return new_order_cmd(
        0, 0, account, instrument.id, SIDES[req.side],
        quantity=_units(instrument.quantity_to_lots, req.quantity, Reason.INVALID_QUANTITY, "quantity",
                        instrument.lot_size),
        price=_units(instrument.price_to_ticks, req.price, Reason.INVALID_PRICE, "price", instrument.tick_size),
        order_type=ORDER_TYPES[req.type],
        time_in_force=TIMES_IN_FORCE[tif],
        quote_quantity=quote_quantity,
        stop_price=_units(instrument.price_to_ticks, req.stop_price, Reason.INVALID_STOP_PRICE, "stop_price",
                          instrument.tick_size),
        expire_time=(req.expire_time or 0) * NS_PER_MS,
        post_only=req.post_only,
        stp=STP_MODES[req.stp],
    )


def amend_command(instrument: Instrument, account: int, order_id: int, req: AmendRequest) -> Command:
    return amend_cmd(
        0, 0, account, order_id,
        price=_units(instrument.price_to_ticks, req.price, Reason.INVALID_PRICE, "price", instrument.tick_size),
        quantity=_units(instrument.quantity_to_lots, req.quantity, Reason.INVALID_QUANTITY, "quantity",
                        instrument.lot_size),
    )


def cancel_command(account: int, order_id: int) -> Command:
    return cancel_cmd(0, 0, account, order_id)


# Events -> the API's shapes ----------------------------------------------------
def ms(ns: int | None) -> int | None:
    return None if ns is None else ns // NS_PER_MS


def order_json(view: OrderView, fills: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(view.order_id),
        "client_order_id": view.client_order_id,
        "symbol": view.symbol,
        "side": view.side,
        "type": view.type,
        "time_in_force": view.time_in_force,
        "price": view.price,
        "quantity": view.quantity,
        "quote_quantity": view.quote_quantity,
        "stop_price": view.stop_price,
        "expire_time": ms(view.expire_time),
        "post_only": view.post_only,
        "stp": view.stp,
        "status": view.status,
        "leaves": view.leaves,
        "filled_quantity": view.filled_quantity,
        "filled_notional": view.filled_notional,
        "average_price": view.average_price,
        "fee_total": view.fee_total,
        "fee_asset": view.fee_asset,
        "reason": view.reason,
        "created_time": ms(view.created_time),
        "updated_time": ms(view.updated_time),
    }
    if fills is not None:
        out["fills"] = fills
    return out


def fill_json(view: FillView) -> dict[str, Any]:
    return {
        "trade_id": f"{view.trade_seq}-{view.trade_index}",
        "order_id": str(view.order_id),
        "symbol": view.symbol,
        "side": view.side,
        "price": view.price,
        "quantity": view.quantity,
        "fee": view.fee,
        "fee_asset": view.fee_asset,
        "liquidity": view.liquidity,
        "time": view.time // NS_PER_MS,
    }


def fills_of(order_id: int, events: Iterable[Event], time_ns: int, registry: Registry) -> list[dict[str, Any]]:
    """The fills of one order among one command's events (as taker or as maker)."""
    out = []
    for e in events:
        if e.kind != _TRADE or order_id not in (e.order_id, e.maker_order_id):
            continue
        instrument = registry.instruments[e.symbol]
        maker = e.maker_order_id == order_id
        side = e.side if not maker else 1 - e.side
        buyer = side == int(Side.BUY)
        fee_asset = instrument.base if buyer else instrument.quote
        out.append({
            "trade_id": f"{e.seq}-{e.index}",
            "order_id": str(order_id),
            "symbol": instrument.symbol,
            "side": SIDE_NAMES[side],
            "price": instrument.format_price(e.price),
            "quantity": instrument.format_quantity(e.quantity),
            "fee": fee_asset.format(e.maker_fee if maker else e.taker_fee),
            "fee_asset": fee_asset.code,
            "liquidity": "maker" if maker else "taker",
            "time": time_ns // NS_PER_MS,
        })
    return out


def rejected_reason(outcome: Outcome, order_id: int | None = None) -> int:
    """The reason the outcome's command was rejected (0: it was not)."""
    for e in outcome.events:
        if e.kind == _REJECTED and (order_id is None or e.order_id == order_id):
            return e.reason
    return 0


def placed_order(outcome: Outcome, registry: Registry) -> dict[str, Any]:
    """The response to a NEW_ORDER: the order after its command, and its fills.

    Raises the rejection (``ApiError``) if the engine rejected it.
    """
    command = outcome.command
    order_id = command.seq
    reason = rejected_reason(outcome, order_id)
    if reason:
        raise rejection(reason, order_id=str(order_id))
    instrument = registry.instruments[command.symbol]
    o = OrderState.placed(command, outcome.client_order_id, instrument)
    otype = o.order_type
    ending = otype == _MARKET
    for e in outcome.events:
        kind = e.kind
        if kind == _ACCEPTED and e.order_id == order_id:
            o.status = PENDING_TRIGGER if otype in (_STOP_LIMIT, _STOP_MARKET) else NEW
        elif kind == _TRADE and order_id in (e.order_id, e.maker_order_id):
            maker = e.maker_order_id == order_id
            o.leaves = e.maker_leaves if maker else e.leaves
            o.filled_quantity += e.quantity
            o.filled_notional += instrument.notional(e.price, e.quantity)
            o.fee_total += e.maker_fee if maker else e.taker_fee
            o.status = FILLED if o.leaves == 0 and o.quantity else PARTIALLY_FILLED
        elif e.order_id != order_id:
            continue
        elif kind == _CANCELLED:
            o.leaves = e.leaves
            if not o.leaves:
                o.status = CANCELLED
                o.reason = _REASON_NAMES.get(e.reason)
        elif kind == _EXPIRED:
            o.leaves = 0
            o.status = EXPIRED
        elif kind == _AMENDED:
            o.price = e.price
            o.leaves = e.quantity
            o.quantity = o.filled_quantity + o.leaves
        elif kind == _TRIGGERED:
            o.triggered_seq = outcome.seq
            o.status = TRIGGERED
            ending = ending or otype == _STOP_MARKET
    if ending and o.status in _OPEN:
        # Market orders end within their command (see the projection's known limitations).
        o.leaves = 0
        if o.filled_quantity:
            o.status = FILLED
        else:
            o.status = CANCELLED
            o.reason = _REASON_NAMES[int(Reason.INSUFFICIENT_FUNDS)]
    view = order_view(o.row(), registry)
    return order_json(view, fills_of(order_id, outcome.events, command.time, registry))


def cancelled_ids(outcome: Outcome) -> list[str]:
    return [str(e.order_id) for e in outcome.events if e.kind == _CANCELLED and not e.leaves]


def instrument_json(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "base": instrument.base.code,
        "quote": instrument.quote.code,
        "tick_size": f"{instrument.tick_size.normalize():f}",
        "lot_size": f"{instrument.lot_size.normalize():f}",
        "min_quantity": instrument.format_quantity(instrument.min_quantity),
        "max_quantity": instrument.format_quantity(instrument.max_quantity),
        "max_price": instrument.format_price(instrument.max_price),
        "price_band_bps": instrument.price_band_bps,
        "maker_fee_bps": instrument.maker_fee_bps,
        "taker_fee_bps": instrument.taker_fee_bps,
        "reference_price": instrument.format_price(instrument.reference_price) if instrument.reference_price else None,
    }
