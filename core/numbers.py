"""Exact conversion between the API's decimal strings and the engine's integers.

Inside the venue a price is a whole number of ticks and a quantity a whole
number of lots; balances are whole numbers of an asset's smallest unit. Only
here, at the edge, do decimal strings meet them, and never through a float.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation, localcontext

MAX_AMOUNT = 2**62
"""Upper bound of any balance, and of the total supply of an asset in a shard.

It keeps every product the engine forms (price x quantity x units per tick-lot)
inside a signed 64-bit integer, so the native backends need no wider type
except for fee arithmetic."""


MAX_DIGITS = 60
"""Longest decimal string accepted: far beyond any 64-bit amount, short enough to refuse abuse."""

_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
# Enough precision that no amount this module handles is ever rounded; traps stay on.
_EXACT = Context(prec=120, Emax=999_999, Emin=-999_999)


class NumberFormatError(ValueError):
    """A decimal string that is not a valid amount for its field."""


def parse_decimal(text: str, field: str = "value") -> Decimal:
    """Parse a decimal string strictly: digits, one optional point, optional sign."""
    if not isinstance(text, str):
        raise NumberFormatError(f"{field} must be a decimal string, got {type(text).__name__}")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise NumberFormatError(f"{field} is not a plain decimal string (ASCII digits, one point, optional sign): {text!r}")
    if len(text) > MAX_DIGITS:
        raise NumberFormatError(f"{field} has more than {MAX_DIGITS} characters: {text!r}")
    return Decimal(text)


def to_units(text: str, unit: Decimal, field: str = "value") -> int:
    """Convert a decimal string to a whole number of ``unit``; refuse a remainder."""
    value = parse_decimal(text, field)
    try:
        with localcontext(_EXACT):
            units, remainder = divmod(value, unit)
    except InvalidOperation:
        raise NumberFormatError(f"{field} {text} is too large") from None
    if remainder != 0:
        raise NumberFormatError(f"{field} {text} is not a multiple of {unit.normalize():f}")
    if not -(2**63) <= units < 2**63:
        raise NumberFormatError(f"{field} {text} is too large")
    return int(units)


def from_units(units: int, unit: Decimal) -> str:
    """Render a whole number of ``unit`` as a plain decimal string (no exponent)."""
    exponent = unit.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    with localcontext(_EXACT):
        value = Decimal(units) * unit
    return f"{value:.{places}f}"
