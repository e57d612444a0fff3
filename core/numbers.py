"""Exact conversion between the API's decimal strings and the engine's integers.

Inside the venue a price is a whole number of ticks and a quantity a whole
number of lots; balances are whole numbers of an asset's smallest unit. Only
here, at the edge, do decimal strings meet them, and never through a float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_AMOUNT = 2**62
"""Upper bound of any balance, and of the total supply of an asset in a shard.

It keeps every product the engine forms (price x quantity x units per tick-lot)
inside a signed 64-bit integer, so the native backends need no wider type
except for fee arithmetic."""


class NumberFormatError(ValueError):
    """A decimal string that is not a valid amount for its field."""


def parse_decimal(text: str, field: str = "value") -> Decimal:
    """Parse a decimal string strictly: digits, one optional point, optional sign."""
    if not isinstance(text, str):
        raise NumberFormatError(f"{field} must be a decimal string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped or stripped != text or any(c in stripped for c in "eE_ ") or stripped.lower() in {"nan", "inf", "-inf", "+inf", "infinity"}:
        raise NumberFormatError(f"{field} is not a plain decimal string: {text!r}")
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise NumberFormatError(f"{field} is not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise NumberFormatError(f"{field} is not a finite number: {text!r}")
    return value


def to_units(text: str, unit: Decimal, field: str = "value") -> int:
    """Convert a decimal string to a whole number of ``unit``; refuse a remainder."""
    value = parse_decimal(text, field)
    units, remainder = divmod(value, unit)
    if remainder != 0:
        raise NumberFormatError(f"{field} {text} is not a multiple of {unit.normalize():f}")
    return int(units)


def from_units(units: int, unit: Decimal) -> str:
    """Render a whole number of ``unit`` as a plain decimal string (no exponent)."""
    exponent = unit.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    value = Decimal(units) * unit
    return f"{value:.{places}f}"
