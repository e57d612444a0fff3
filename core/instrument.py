"""Assets and instruments: what trades, in which units, under which limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from core.numbers import MAX_AMOUNT, from_units, parse_decimal, to_units

FEE_ACCOUNT = 0
"""The account that collects fees. It cannot trade or receive deposits."""

MAX_FEE_BPS = 1_000
MAX_BAND_BPS = 10_000


@dataclass(frozen=True)
class Asset:
    """Something held in balances. Amounts are integers of 10**-decimals."""

    id: int
    code: str
    decimals: int

    def __post_init__(self) -> None:
        if not 1 <= self.id < 65_536:
            raise ValueError(f"asset id must be in 1..65535, got {self.id}")
        if not 0 <= self.decimals <= 18:
            raise ValueError(f"asset decimals must be in 0..18, got {self.decimals}")

    @property
    def unit(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)

    def to_units(self, text: str, field: str = "amount") -> int:
        return to_units(text, self.unit, field)

    def format(self, units: int) -> str:
        return from_units(units, self.unit)


@dataclass(frozen=True)
class Instrument:
    """A market: base traded against quote, in ticks of price and lots of quantity.

    ``price_band_bps`` bounds limit prices (and stops market orders) around the
    reference price: the last trade, else ``reference_price``; 0 turns it off.
    Fees are charged in the asset each side receives, in basis points, rounded
    down.
    """

    id: int
    symbol: str
    base: Asset
    quote: Asset
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: int = 1
    max_quantity: int = 10**8
    max_price: int = 10**8
    price_band_bps: int = 0
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    reference_price: int = 0
    base_per_lot: int = field(init=False)
    quote_per_tick_lot: int = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.id < 65_536:
            raise ValueError(f"instrument id must be in 1..65535, got {self.id}")
        if self.base.id == self.quote.id:
            raise ValueError("base and quote must be different assets")
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError("tick size and lot size must be positive")
        base_per_lot = self.lot_size / self.base.unit
        quote_per_tick_lot = self.tick_size * self.lot_size / self.quote.unit
        if base_per_lot != base_per_lot.to_integral_value() or quote_per_tick_lot != quote_per_tick_lot.to_integral_value():
            raise ValueError(
                f"{self.symbol}: lot size must be a whole number of {self.base.code} units and "
                f"tick x lot a whole number of {self.quote.code} units"
            )
        object.__setattr__(self, "base_per_lot", int(base_per_lot))
        object.__setattr__(self, "quote_per_tick_lot", int(quote_per_tick_lot))
        if not 1 <= self.min_quantity <= self.max_quantity:
            raise ValueError("need 1 <= min_quantity <= max_quantity")
        if self.max_price < 1:
            raise ValueError("max_price must be at least one tick")
        if self.max_price * self.max_quantity * self.quote_per_tick_lot > MAX_AMOUNT:
            raise ValueError("max_price x max_quantity overflows the notional bound (2**62 units)")
        if self.max_quantity * self.base_per_lot > MAX_AMOUNT:
            raise ValueError("max_quantity overflows the amount bound (2**62 units)")
        if not 0 <= self.price_band_bps <= MAX_BAND_BPS:
            raise ValueError(f"price band must be in 0..{MAX_BAND_BPS} bps")
        if not (0 <= self.maker_fee_bps <= MAX_FEE_BPS and 0 <= self.taker_fee_bps <= MAX_FEE_BPS):
            raise ValueError(f"fees must be in 0..{MAX_FEE_BPS} bps (rebates are not supported)")
        if not 0 <= self.reference_price <= self.max_price:
            raise ValueError("reference price must be within 0..max_price")

    # Edge conversions: decimal strings in the API, integers in the engine.
    def price_to_ticks(self, text: str, field: str = "price") -> int:
        return to_units(text, self.tick_size, field)

    def quantity_to_lots(self, text: str, field: str = "quantity") -> int:
        return to_units(text, self.lot_size, field)

    def format_price(self, ticks: int) -> str:
        return from_units(ticks, self.tick_size)

    def format_quantity(self, lots: int) -> str:
        return from_units(lots, self.lot_size)

    def notional(self, price: int, quantity: int) -> int:
        """Quote units paid for ``quantity`` lots at ``price`` ticks."""
        return price * quantity * self.quote_per_tick_lot


def make_instrument(
    id: int,
    symbol: str,
    base: Asset,
    quote: Asset,
    tick_size: str,
    lot_size: str,
    **limits: int,
) -> Instrument:
    """Build an instrument from decimal-string tick and lot sizes (configuration's form)."""
    return Instrument(
        id=id,
        symbol=symbol,
        base=base,
        quote=quote,
        tick_size=parse_decimal(tick_size, "tick_size"),
        lot_size=parse_decimal(lot_size, "lot_size"),
        **limits,
    )
