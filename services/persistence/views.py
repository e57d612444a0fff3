"""Stored integers to the API's views: decimal strings through the registry.

Every adapter reads rows in the column orders of ``projection`` and turns
them into views here, so the API sees the same strings from every store. An
instrument the registry does not know (only a rejected order can name one)
has its numbers shown as the raw integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from core.instrument import Asset, Instrument

from .store import BalanceView, CandleView, FillView, OrderView, Registry, TradeView

AVERAGE_EXTRA_PLACES = 8
"""An average price is shown to the tick's decimal places plus these."""


def _places(unit: Decimal) -> int:
    exponent = unit.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _price(instrument: Instrument | None, ticks: int | None) -> str | None:
    if ticks is None:
        return None
    return instrument.format_price(ticks) if instrument is not None else str(ticks)


def _quantity(instrument: Instrument | None, lots: int | None) -> str | None:
    if lots is None:
        return None
    return instrument.format_quantity(lots) if instrument is not None else str(lots)


def _amount(asset: Asset | None, units: int | None) -> str | None:
    if units is None:
        return None
    return asset.format(units) if asset is not None else str(units)


def average_price(instrument: Instrument, filled_quantity: int, filled_notional: int) -> str | None:
    """Quote paid per unit of base over all fills, or None before the first fill."""
    if not filled_quantity:
        return None
    places = _places(instrument.tick_size) + AVERAGE_EXTRA_PLACES
    with localcontext() as ctx:
        ctx.prec = 60
        value = Decimal(filled_notional) * instrument.quote.unit / (Decimal(filled_quantity) * instrument.lot_size)
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = f"{value:f}"
    keep = _places(instrument.tick_size)
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0")
        frac = frac + "0" * (keep - len(frac)) if len(frac) < keep else frac
        text = f"{whole}.{frac}" if frac else whole
    return text


def order_view(row: Sequence[Any], registry: Registry) -> OrderView:
    """A row in ``projection.ORDER_COLUMNS`` order."""
    (order_id, account, symbol, side, otype, tif, price, quantity, quote_quantity, stop_price, expire_time,
     post_only, stp, client_order_id, status, leaves, filled_quantity, filled_notional, fee_total, fee_asset,
     _hold, _hold_asset, reason, created_seq, created_time, updated_seq, updated_time, triggered_seq) = row
    instrument = registry.instruments.get(symbol)
    quote = instrument.quote if instrument is not None else None
    fee = registry.assets.get(fee_asset) if fee_asset is not None else None
    return OrderView(
        order_id=order_id,
        account=account,
        symbol=instrument.symbol if instrument is not None else str(symbol),
        side=side,
        type=otype,
        time_in_force=tif,
        price=_price(instrument, price),
        quantity=_quantity(instrument, quantity),
        quote_quantity=_amount(quote, quote_quantity),
        stop_price=_price(instrument, stop_price),
        expire_time=expire_time,
        post_only=bool(post_only),
        stp=stp,
        client_order_id=client_order_id,
        status=status,
        leaves=_quantity(instrument, leaves) or "0",
        filled_quantity=_quantity(instrument, filled_quantity) or "0",
        filled_notional=_amount(quote, filled_notional) or "0",
        average_price=average_price(instrument, filled_quantity, filled_notional) if instrument is not None else None,
        fee_total=_amount(fee, fee_total) or "0",
        fee_asset=fee.code if fee is not None else "",
        reason=reason,
        created_seq=created_seq,
        created_time=created_time,
        updated_seq=updated_seq,
        updated_time=updated_time,
        triggered_seq=triggered_seq,
    )


def fill_view(row: Sequence[Any], registry: Registry) -> FillView:
    """A row in ``projection.FILL_COLUMNS`` order."""
    (trade_seq, trade_index, liquidity, order_id, account, symbol, side, price, quantity, fee, fee_asset, time) = row
    instrument = registry.instruments[symbol]
    asset = registry.assets[fee_asset]
    return FillView(
        trade_seq=trade_seq,
        trade_index=trade_index,
        order_id=order_id,
        account=account,
        symbol=instrument.symbol,
        side=side,
        price=instrument.format_price(price),
        quantity=instrument.format_quantity(quantity),
        fee=asset.format(fee),
        fee_asset=asset.code,
        liquidity=liquidity,
        time=time,
    )


def trade_view(row: Sequence[Any], registry: Registry) -> TradeView:
    """A row in ``projection.TRADE_COLUMNS`` order."""
    seq, index, symbol, price, quantity, aggressor_side, time = row
    instrument = registry.instruments[symbol]
    return TradeView(
        seq=seq,
        index=index,
        symbol=instrument.symbol,
        price=instrument.format_price(price),
        quantity=instrument.format_quantity(quantity),
        aggressor_side=aggressor_side,
        time=time,
    )


def candle_view(row: Sequence[Any], registry: Registry) -> CandleView:
    """A row in ``projection.CANDLE_COLUMNS`` order."""
    symbol, interval, start, open_, high, low, close, volume, quote_volume, trade_count = row
    instrument = registry.instruments[symbol]
    return CandleView(
        symbol=instrument.symbol,
        interval=interval,
        start=start,
        open=instrument.format_price(open_),
        high=instrument.format_price(high),
        low=instrument.format_price(low),
        close=instrument.format_price(close),
        volume=instrument.format_quantity(volume),
        quote_volume=instrument.quote.format(quote_volume),
        trade_count=trade_count,
    )


def balance_view(account: int, asset_id: int, total: int, held: int, registry: Registry) -> BalanceView:
    asset = registry.assets.get(asset_id)
    return BalanceView(
        account=account,
        asset=asset.code if asset is not None else str(asset_id),
        total=_amount(asset, total) or "0",
        held=_amount(asset, held) or "0",
        available=_amount(asset, total - held) or "0",
    )
