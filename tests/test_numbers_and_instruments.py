"""Decimal strings at the edge and instrument configuration.

Inside the venue everything is an integer (ticks, lots, asset units); only
``core.numbers`` and ``Instrument``'s converters meet decimal strings, exactly
and never through a float. These are pure functions: no engine, no backend.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.instrument import MAX_BAND_BPS, MAX_FEE_BPS, Asset, Instrument, make_instrument
from core.numbers import MAX_AMOUNT, NumberFormatError, from_units, parse_decimal, to_units

CENT = Decimal("0.01")
SATOSHI = Decimal("0.00000001")
WEI = Decimal("1E-18")
BTC = Asset(1, "BTC", 8)
USD = Asset(2, "USD", 2)
ETH = Asset(3, "ETH", 18)


def btc_usd(**limits: int) -> Instrument:
    return make_instrument(1, "BTC-USD", BTC, USD, "1", "0.01", **limits)


# --- parse_decimal -------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("0", "0"), ("1", "1"), ("-1", "-1"), ("+1", "1"), ("0.5", "0.5"), (".5", "0.5"), ("1.", "1"),
    ("00012.3400", "12.34"), ("-0", "0"), ("123456789012345678901234567890.5", "123456789012345678901234567890.5"),
])
def test_plain_decimal_strings_parse_exactly(text: str, value: str) -> None:
    assert parse_decimal(text) == Decimal(value)


@pytest.mark.parametrize("text", [
    "", " ", "1 ", " 1", "\t1", "1\n", "1e3", "1E3", "1e-3", "1_000", "1,000", "1.2.3", "--1", "+-1", "+", "-",
    ".", "0x10", "NaN", "nan", "-nan", "sNaN", "inf", "-inf", "+inf", "Infinity", "-Infinity", "+Infinity",
    "1/2", "one",
])
def test_anything_but_a_plain_decimal_string_is_refused(text: str) -> None:
    with pytest.raises(NumberFormatError):
        parse_decimal(text, "price")


@pytest.mark.parametrize("text", ["\u0661\u0662\u0663", "\uff11\uff12", "1\u0660"])
def test_non_ascii_digits_are_refused(text: str) -> None:
    with pytest.raises(NumberFormatError):
        parse_decimal(text, "price")


@pytest.mark.parametrize("value", [0.1, 1, True, None, Decimal("1"), b"1", 10**3])
def test_non_strings_are_refused_never_converted(value: object) -> None:
    with pytest.raises(NumberFormatError, match="must be a decimal string"):
        parse_decimal(value, "quantity")  # type: ignore[arg-type]


def test_errors_name_the_field() -> None:
    with pytest.raises(NumberFormatError, match=r"^price "):
        parse_decimal("abc", "price")
    with pytest.raises(NumberFormatError, match=r"^quantity "):
        to_units("0.001", CENT, "quantity")


def test_number_format_error_is_a_value_error() -> None:
    assert issubclass(NumberFormatError, ValueError)


# --- to_units ------------------------------------------------------------------
@pytest.mark.parametrize(("text", "unit", "units"), [
    ("1", CENT, 100), ("0.01", CENT, 1), ("123.45", CENT, 12_345), ("0.10", CENT, 10), ("-2.50", CENT, -250),
    ("1", SATOSHI, 100_000_000), ("0.00000001", SATOSHI, 1), ("21000000", SATOSHI, 2_100_000_000_000_000),
    ("0.000000000000000001", WEI, 1), ("4.611686018427387904", WEI, 2**62),
    ("9.223372036854775807", WEI, 2**63 - 1), ("50", Decimal("10"), 5), ("0", SATOSHI, 0),
])
def test_to_units_is_exact(text: str, unit: Decimal, units: int) -> None:
    assert to_units(text, unit) == units
    assert isinstance(to_units(text, unit), int)


@pytest.mark.parametrize(("text", "unit"), [
    ("0.001", CENT), ("1.005", CENT), ("-0.015", CENT), ("0.000000001", SATOSHI), ("55", Decimal("10")),
    ("0.0000000000000000001", WEI),
])
def test_to_units_refuses_a_remainder(text: str, unit: Decimal) -> None:
    with pytest.raises(NumberFormatError, match="not a multiple of"):
        to_units(text, unit)


@pytest.mark.parametrize("text", ["1" + "0" * 30, "12345678901234567890.123456789012"])
def test_to_units_refuses_a_huge_number_with_a_number_format_error(text: str) -> None:
    try:
        to_units(text, Decimal("1E-12"), "amount")
    except NumberFormatError:
        return
    except Exception as exc:
        raise AssertionError(f"{type(exc).__module__}.{type(exc).__name__} escaped instead of NumberFormatError") from exc
    raise AssertionError("accepted")


# --- from_units ----------------------------------------------------------------
@pytest.mark.parametrize(("units", "unit", "text"), [
    (0, CENT, "0.00"), (1, CENT, "0.01"), (12_345, CENT, "123.45"), (-250, CENT, "-2.50"), (100, CENT, "1.00"),
    (1, SATOSHI, "0.00000001"), (2_100_000_000_000_000, SATOSHI, "21000000.00000000"),
    (2**63 - 1, WEI, "9.223372036854775807"), (MAX_AMOUNT, WEI, "4.611686018427387904"),
    (5, Decimal("10"), "50"), (7, Decimal("1"), "7"), (3, Decimal("0.10"), "0.3"), (3, Decimal("0.5"), "1.5"),
])
def test_from_units_renders_a_plain_decimal_without_exponent(units: int, unit: Decimal, text: str) -> None:
    assert from_units(units, unit) == text


@pytest.mark.parametrize("units", [0, 1, 99, 10**9 + 7, MAX_AMOUNT, 2**63 - 1, -(2**63)])
@pytest.mark.parametrize("unit", [CENT, SATOSHI, WEI, Decimal("1"), Decimal("0.5"), Decimal("25")])
def test_to_units_inverts_from_units_for_every_int64(units: int, unit: Decimal) -> None:
    assert to_units(from_units(units, unit), unit) == units


def test_from_units_never_rounds_silently() -> None:
    assert from_units(10**30 + 1, CENT) == "10000000000000000000000000000.01"


# --- Assets --------------------------------------------------------------------
@pytest.mark.parametrize(("asset_id", "decimals"), [(0, 2), (65_536, 2), (-1, 2), (1, -1), (1, 19)])
def test_asset_out_of_range_is_refused(asset_id: int, decimals: int) -> None:
    with pytest.raises(ValueError):
        Asset(asset_id, "X", decimals)


def test_asset_converts_amounts_in_its_smallest_unit() -> None:
    assert BTC.unit == SATOSHI
    assert BTC.to_units("1.5") == 150_000_000
    assert BTC.format(150_000_000) == "1.50000000"
    assert Asset(9, "JPY", 0).to_units("1200") == 1_200
    with pytest.raises(NumberFormatError):
        USD.to_units("0.001")


# --- Instruments ---------------------------------------------------------------
def test_instrument_derives_its_integer_multipliers() -> None:
    inst = btc_usd()
    # a lot is 0.01 BTC = 1_000_000 satoshi; a tick-lot is 1 USD x 0.01 = 1 cent
    assert (inst.base_per_lot, inst.quote_per_tick_lot) == (1_000_000, 1)
    eth = make_instrument(2, "ETH-USD", Asset(3, "ETH", 4), USD, "1", "0.05")
    assert (eth.base_per_lot, eth.quote_per_tick_lot) == (500, 5)
    assert eth.notional(200, 3) == 3_000


def test_instrument_converts_prices_and_quantities_at_the_edge() -> None:
    eth = make_instrument(2, "ETH-USD", Asset(3, "ETH", 4), USD, "0.5", "0.02")
    assert eth.price_to_ticks("1234.5") == 2_469
    assert eth.quantity_to_lots("1.04") == 52
    assert eth.format_price(2_469) == "1234.5"
    assert eth.format_quantity(52) == "1.04"
    with pytest.raises(NumberFormatError, match="price"):
        eth.price_to_ticks("1234.25")
    with pytest.raises(NumberFormatError, match="quantity"):
        eth.quantity_to_lots("0.01")
    with pytest.raises(NumberFormatError):
        eth.price_to_ticks(1234.5)  # type: ignore[arg-type]


def _instrument(**overrides: object) -> Instrument:
    fields: dict[str, object] = dict(id=1, symbol="ETH-USD", base=Asset(3, "ETH", 4), quote=USD,
                                     tick_size=Decimal("1"), lot_size=Decimal("0.05"))
    fields.update(overrides)
    return Instrument(**fields)  # type: ignore[arg-type]


def test_a_valid_instrument_builds() -> None:
    inst = _instrument(min_quantity=2, max_quantity=1_000, max_price=50_000, price_band_bps=MAX_BAND_BPS,
                       maker_fee_bps=MAX_FEE_BPS, taker_fee_bps=MAX_FEE_BPS, reference_price=50_000)
    assert inst.quote_per_tick_lot == 5


@pytest.mark.parametrize(("overrides", "message"), [
    ({"id": 0}, "instrument id"),
    ({"id": 65_536}, "instrument id"),
    ({"quote": Asset(3, "ETH2", 2)}, "different assets"),
    ({"tick_size": Decimal("0")}, "positive"),
    ({"tick_size": Decimal("-1")}, "positive"),
    ({"lot_size": Decimal("0")}, "positive"),
    ({"lot_size": Decimal("0.00005")}, "whole number"),
    ({"tick_size": Decimal("0.01"), "lot_size": Decimal("0.01")}, "whole number"),
    ({"min_quantity": 0}, "min_quantity"),
    ({"min_quantity": 11, "max_quantity": 10}, "min_quantity"),
    ({"max_price": 0}, "max_price"),
    ({"max_price": 10**12, "max_quantity": 10**8}, "overflows"),
    ({"base": Asset(4, "WEI", 18), "lot_size": Decimal("1"), "max_quantity": 10}, "max_quantity overflows"),
    ({"price_band_bps": -1}, "band"),
    ({"price_band_bps": MAX_BAND_BPS + 1}, "band"),
    ({"maker_fee_bps": -1}, "rebates"),
    ({"taker_fee_bps": MAX_FEE_BPS + 1}, "fees"),
    ({"reference_price": -1}, "reference price"),
    ({"reference_price": 10**8 + 1}, "reference price"),
])
def test_invalid_instrument_configuration_is_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _instrument(**overrides)


def test_notional_bound_is_inclusive_at_two_to_the_sixty_two() -> None:
    # max_price x max_quantity x quote_per_tick_lot may equal 2**62 exactly
    inst = make_instrument(1, "X-Y", Asset(1, "X", 0), Asset(2, "Y", 0), "1", "1", max_price=2**31, max_quantity=2**31)
    assert inst.max_price * inst.max_quantity * inst.quote_per_tick_lot == MAX_AMOUNT
    with pytest.raises(ValueError, match="overflows"):
        make_instrument(1, "X-Y", Asset(1, "X", 0), Asset(2, "Y", 0), "1", "1", max_price=2**31 + 1,
                        max_quantity=2**31)


@pytest.mark.parametrize(("tick", "lot"), [("0", "1"), ("1", "-1"), ("1e-2", "1"), ("0.01", "abc"), ("1", " 1")])
def test_make_instrument_refuses_bad_tick_or_lot_strings(tick: str, lot: str) -> None:
    with pytest.raises(ValueError):
        make_instrument(1, "BTC-USD", BTC, USD, tick, lot)


def test_instruments_are_immutable() -> None:
    inst = btc_usd()
    with pytest.raises(AttributeError):
        inst.taker_fee_bps = 5  # type: ignore[misc]
