"""The projection store: what every persistence technology implements.

The log is the truth (``ARCHITECTURE.md``); a projection store holds what the
engine's event stream means for queries and history (orders, fills, the
public trade tape, balances, a double-entry ledger, candles), and can always
be rebuilt by replaying the log into an empty store.

Input
-----
A *record* is one processed command: ``(command, client_order_id, events)``
-- the command as the sequencer stamped it, the client's order id string if
it gave one, and the events the engine emitted for it (possibly none).
Records arrive in sequence order, in batches, and after a crash possibly
again from an earlier position. ``apply`` applies a batch in one transaction
together with the store's position (the last applied ``seq``), and skips
every record at or below that position, so each event ``(seq, index)`` is
applied exactly once.

What the rows mean (the same in every technology) is computed once, in
``services.persistence.projection``; an adapter module per technology
(``sqlite``, ``postgres``; DynamoDB later) stores it and answers the
queries below with the views defined here: decimal strings made through the
instrument and asset registry given to the store, never floats.

Invariants
----------
* ``position()`` moves only with the rows it covers, and only forward, but for
  one case: a server that crashed may come back without its last commits
  (PostgreSQL commits batches asynchronously), position and rows together;
  the projection follower then replays the log from there.
* Replaying records at or below ``position()`` changes nothing.
* A rebuild from the same records, in any batch sizes, gives identical rows
  (no wall-clock time is stored; every time is a command's ``time``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from core.commands import Command
from core.events import Event
from core.instrument import Asset, Instrument
from services.marketdata.candles import INTERVALS as CANDLE_SECONDS

Record = tuple[Command, str | None, list[Event]]
"""One processed command: (command, client order id or None, its events)."""

SymbolRef = int | str
"""An instrument by id (the engine's) or by symbol (the API's)."""

StatusFilter = Literal["open", "closed", "all"]

# Order statuses -------------------------------------------------------------
NEW = "new"
PARTIALLY_FILLED = "partially_filled"
FILLED = "filled"
CANCELLED = "cancelled"
EXPIRED = "expired"
REJECTED = "rejected"
PENDING_TRIGGER = "pending_trigger"
"""A stop order waiting for its trigger price."""
TRIGGERED = "triggered"
"""A stop order that became live and rests without a fill yet."""

OPEN_STATUSES: tuple[str, ...] = (NEW, PARTIALLY_FILLED, PENDING_TRIGGER, TRIGGERED)
CLOSED_STATUSES: tuple[str, ...] = (FILLED, CANCELLED, EXPIRED, REJECTED)

# Candle intervals: name -> length in nanoseconds (command time is ns since the epoch),
# the same intervals market data serves live.
INTERVALS: dict[str, int] = {name: seconds * 10**9 for name, seconds in CANDLE_SECONDS.items()}

EXTERNAL_ACCOUNT = -1
"""The ledger's counterparty for deposits and withdrawals: the world outside the venue."""


class UnknownSymbol(LookupError):
    """A query named an instrument the store's registry does not have."""


class SchemaError(RuntimeError):
    """The database's schema is newer than this code, or missing in read-only mode."""


class Registry:
    """The instruments and assets a store formats numbers with."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.instruments: dict[int, Instrument] = {}
        self.by_symbol: dict[str, Instrument] = {}
        self.assets: dict[int, Asset] = {}
        for instrument in instruments:
            self.instruments[instrument.id] = instrument
            self.by_symbol[instrument.symbol] = instrument
            self.assets[instrument.base.id] = instrument.base
            self.assets[instrument.quote.id] = instrument.quote

    def instrument(self, symbol: SymbolRef) -> Instrument:
        found = self.by_symbol.get(symbol) if isinstance(symbol, str) else self.instruments.get(symbol)
        if found is None:
            raise UnknownSymbol(f"unknown instrument {symbol!r}")
        return found


# Views: what queries return ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderView:
    order_id: int
    account: int
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: str | None
    quantity: str | None
    quote_quantity: str | None
    stop_price: str | None
    expire_time: int | None
    post_only: bool
    stp: str
    client_order_id: str | None
    status: str
    leaves: str
    filled_quantity: str
    filled_notional: str
    average_price: str | None
    fee_total: str
    fee_asset: str
    reason: str | None
    created_seq: int
    created_time: int
    updated_seq: int
    updated_time: int
    triggered_seq: int | None


@dataclass(frozen=True, slots=True)
class FillView:
    trade_seq: int
    trade_index: int
    order_id: int
    account: int
    symbol: str
    side: str
    price: str
    quantity: str
    fee: str
    fee_asset: str
    liquidity: str
    time: int


@dataclass(frozen=True, slots=True)
class TradeView:
    seq: int
    index: int
    symbol: str
    price: str
    quantity: str
    aggressor_side: str
    time: int


@dataclass(frozen=True, slots=True)
class CandleView:
    symbol: str
    interval: str
    start: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int


@dataclass(frozen=True, slots=True)
class BalanceView:
    account: int
    asset: str
    total: str
    held: str
    available: str


class ProjectionStore(Protocol):
    """The persistence projections: one writer applies, the API queries."""

    def apply(self, batch: Sequence[Record]) -> int:
        """Apply the records above ``position()`` in one transaction; return how many were applied."""
        ...

    def position(self) -> int:
        """The ``seq`` of the last applied record (0: none)."""
        ...

    def get_order(self, order_id: int) -> OrderView | None: ...

    def get_order_by_client_id(self, account: int, client_order_id: str) -> OrderView | None: ...

    def list_orders(
        self, account: int, symbol: SymbolRef | None = None, status: StatusFilter = "all", limit: int = 100,
    ) -> list[OrderView]:
        """An account's orders, newest first."""
        ...

    def list_fills(self, account: int, symbol: SymbolRef | None = None, limit: int = 100) -> list[FillView]:
        """An account's fills, newest first."""
        ...

    def list_order_fills(self, account: int, order_id: int) -> list[FillView]:
        """The fills of one of ``account``'s orders, oldest first by (trade_seq, trade_index).

        Empty for an order of another account, as for one without fills.
        """
        ...

    def list_trades(self, symbol: SymbolRef, limit: int = 100) -> list[TradeView]:
        """The public tape of one instrument, newest first."""
        ...

    def list_candles(
        self, symbol: SymbolRef, interval: str, limit: int = 100, since: int | None = None,
    ) -> list[CandleView]:
        """Candles oldest first: the latest ``limit``, or the first ``limit`` starting at or after ``since``."""
        ...

    def balances(self, account: int) -> list[BalanceView]:
        """An account's balances by asset id (assets it never held are absent)."""
        ...

    def open_gtd_expiries(self) -> list[int]:
        """The ``expire_time`` of every open GTD order, earliest first (the expiry clock's start-up state)."""
        ...

    def close(self) -> None: ...


# Invariant checks shared by the SQL stores: each gathers the sums with its own SQL, the verdicts are here.
Balances = dict[tuple[int, int], tuple[int, int]]
"""(account, asset) -> (total, held) in asset units."""


def ledger_problems(
    unbalanced: Iterable[tuple[int, int, int, int, int]], nets: dict[tuple[int, int], int], balances: Balances,
) -> list[str]:
    """What breaks the ledger's invariants (empty: all hold).

    ``unbalanced``: ``(seq, idx, asset, debits, credits)`` of every entry set whose debits and credits
    differ; ``nets``: credits - debits per (account, asset) over the whole ledger.
    """
    problems = [f"entry set {seq}.{idx} asset {asset}: debits {debits} != credits {credits}"
                for seq, idx, asset, debits, credits in unbalanced]
    for key in sorted(set(nets) | set(balances)):
        if key[0] == EXTERNAL_ACCOUNT:
            continue
        net = nets.get(key, 0)
        total = balances.get(key, (0, 0))[0]
        if net != total:
            problems.append(f"account {key[0]} asset {key[1]}: ledger {net} != balance total {total}")
    supply: dict[int, int] = {}
    for (_account, asset), (total, _held) in balances.items():
        supply[asset] = supply.get(asset, 0) + total
    for asset in sorted(set(supply) | {a for (acc, a) in nets if acc == EXTERNAL_ACCOUNT}):
        external = nets.get((EXTERNAL_ACCOUNT, asset), 0)
        if supply.get(asset, 0) != -external:
            problems.append(
                f"asset {asset}: balances sum to {supply.get(asset, 0)} but deposits - withdrawals is {-external}"
            )
    return problems


def hold_problems(open_holds: Iterable[tuple[int, int, int]], balances: Balances) -> list[str]:
    """Balances whose ``held`` differs from the sum of the open orders' holds (``(account, asset, hold)``)."""
    holds = {(account, asset): hold for account, asset, hold in open_holds if hold}
    problems = []
    for key in sorted(set(holds) | set(balances)):
        held = balances.get(key, (0, 0))[1]
        if holds.get(key, 0) != held:
            problems.append(f"account {key[0]} asset {key[1]}: held {held} != open orders' holds {holds.get(key, 0)}")
    return problems
