"""A tiny venue for projection tests: the real reference engine, recording records.

Every command goes through ``core.engine.open_engine("python", ...)``; what it
emits is kept as the projector's input ``(command, client_order_id, events)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from core import commands as cmd
from core.commands import Command, OrderType, Side, TimeInForce
from core.engine import MatchingEngine, open_engine
from core.events import Event
from core.instrument import Asset, Instrument, make_instrument
from services.persistence import PostgresStore, Record, SqliteStore

BTC = Asset(1, "BTC", 8)
USD = Asset(2, "USD", 6)
ETH = Asset(3, "ETH", 8)
# tick 0.01 USD x lot 0.0001 BTC = 1 micro-USD; a lot is 10_000 satoshi.
BTC_USD = make_instrument(1, "BTC-USD", BTC, USD, "0.01", "0.0001", maker_fee_bps=10, taker_fee_bps=20)
# tick 0.01 x lot 0.001 = 10 micro-USD; a price band of 10% around the last trade.
ETH_USD = make_instrument(
    2, "ETH-USD", ETH, USD, "0.01", "0.001", maker_fee_bps=5, taker_fee_bps=25, price_band_bps=1_000,
    reference_price=200_000,
)
INSTRUMENTS: tuple[Instrument, ...] = (BTC_USD, ETH_USD)
ASSETS: tuple[Asset, ...] = (BTC, USD, ETH)

SECOND = 10**9
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
T0 = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z, an hour boundary

BUY = Side.BUY
SELL = Side.SELL

AnyStore = SqliteStore | PostgresStore
"""The stores the persistence tests run on (``conftest.STORES``)."""


def units(asset: Asset, text: str) -> int:
    return asset.to_units(text)


def price(instrument: Instrument, text: str) -> int:
    return instrument.price_to_ticks(text)


def lots(instrument: Instrument, text: str) -> int:
    return instrument.quantity_to_lots(text)


class Venue:
    """Commands in through the real engine; records out for the store."""

    def __init__(self, instruments: tuple[Instrument, ...] = INSTRUMENTS, start: int = T0) -> None:
        self.engine: MatchingEngine = open_engine("python", instruments)
        self.instruments = instruments
        self.seq = 0
        self.time = start
        self.records: list[Record] = []
        self._synced = 0

    # Time ---------------------------------------------------------------
    def advance(self, nanoseconds: int) -> None:
        self.time += nanoseconds

    def at(self, time: int) -> None:
        assert time >= self.time, "the sequencer's clock does not go back"
        self.time = time

    # Commands -----------------------------------------------------------
    def run(self, build: object, *args: object, client_order_id: str | None = None, **kwargs: Any) -> list[Event]:
        """Stamp the next seq and the current time, submit, record; return the events."""
        self.seq += 1
        command: Command = build(self.seq, self.time, *args, **kwargs)  # type: ignore[operator]
        events = self.engine.submit(command)
        self.records.append((command, client_order_id, list(events)))
        return events

    def order(
        self, account: int, instrument: Instrument, side: int, quantity: str | int = 0, limit: str | int = 0,
        client_order_id: str | None = None, **kwargs: Any,
    ) -> int:
        """Place an order (decimal strings or raw integers); return its id."""
        qty = lots(instrument, quantity) if isinstance(quantity, str) else quantity
        px = price(instrument, limit) if isinstance(limit, str) else limit
        for name in ("stop_price",):
            if isinstance(kwargs.get(name), str):
                kwargs[name] = price(instrument, kwargs[name])
        if isinstance(kwargs.get("quote_quantity"), str):
            kwargs["quote_quantity"] = units(instrument.quote, kwargs["quote_quantity"])
        self.run(cmd.new_order, account, instrument.id, int(side), qty, px, client_order_id=client_order_id, **kwargs)
        return self.seq

    def market(self, account: int, instrument: Instrument, side: int, quantity: str = "0", **kwargs: Any) -> int:
        kwargs.setdefault("time_in_force", TimeInForce.IOC)
        return self.order(account, instrument, side, quantity, 0, order_type=OrderType.MARKET, **kwargs)

    def cancel(self, account: int, order_id: int) -> list[Event]:
        return self.run(cmd.cancel, account, order_id)

    def amend(self, account: int, order_id: int, instrument: Instrument, limit: str = "", quantity: str = "") -> list[Event]:
        px = price(instrument, limit) if limit else 0
        qty = lots(instrument, quantity) if quantity else 0
        return self.run(cmd.amend, account, order_id, px, qty)

    def mass_cancel(self, account: int, symbol: int = 0) -> list[Event]:
        return self.run(cmd.mass_cancel, account, symbol)

    def tick(self) -> list[Event]:
        return self.run(cmd.tick)

    def deposit(self, account: int, asset: Asset, amount: str) -> list[Event]:
        return self.run(cmd.deposit, account, asset.id, units(asset, amount))

    def withdraw(self, account: int, asset: Asset, amount: str) -> list[Event]:
        return self.run(cmd.withdraw, account, asset.id, units(asset, amount))

    def fund(self, account: int, usd: str = "1000000", btc: str = "100", eth: str = "1000") -> None:
        self.deposit(account, USD, usd)
        self.deposit(account, BTC, btc)
        self.deposit(account, ETH, eth)

    # Store --------------------------------------------------------------
    def sync(self, store: AnyStore) -> int:
        """Apply the records the store has not been given yet."""
        applied = store.apply(self.records[self._synced:])
        self._synced = len(self.records)
        return applied

    def engine_balance(self, account: int, asset: Asset) -> tuple[Decimal, Decimal]:
        available, held = self.engine.balance(account, asset.id)
        return Decimal(asset.format(available)), Decimal(asset.format(held))


def sql(store: AnyStore, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one raw statement, written with ``?`` placeholders, on either store; its rows."""
    if isinstance(store, SqliteStore):
        return store.connection.execute(query, args).fetchall()
    return store.query(query.replace("?", "%s"), args)
