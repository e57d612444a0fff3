"""The projection store on SQLite: the embedded profile's database.

One file, WAL journal, ``synchronous=NORMAL`` (a crash can lose the last
transactions but never corrupt the file; the log replays what was lost).
One writer applies batches; readers (the API) may open the same file with
``readonly=True`` and read while it writes.

Schema (version 2)
------------------
=====================  ===========================================================
table                  key and contents
=====================  ===========================================================
orders                 id (the placing command's seq); the order as placed
                       (enums as lower-case names, NULL where a field does not
                       apply), client_order_id (unique per account where not
                       NULL), status, leaves, filled_quantity, filled_notional
                       (quote units, for the average price), fee_total in
                       fee_asset, hold in hold_asset, reason, created_/updated_
                       seq and time, triggered_seq
fills                  (trade_seq, trade_index, liquidity): one row per side of a
                       trade: order, account, symbol, side, price, quantity,
                       fee in fee_asset, time
trades                 (seq, idx): the public tape: symbol, price, quantity,
                       aggressor side, time
ledger                 (seq, idx, leg): postings; (seq, idx) is one entry set
                       whose debits equal its credits per asset
balances               (account, asset): total, held (available = total - held),
                       updated_seq
candles                (symbol, interval, start): open, high, low, close (ticks),
                       volume (lots), quote_volume (quote units), trade_count
projection_position    one row: seq and time of the last applied record
schema_version         one row: the schema's version
=====================  ===========================================================

Prices are ticks, quantities lots and amounts units of an asset, as in the
engine; queries return decimal strings (``views``).

Performance
-----------
A batch is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` with one ``executemany``
per table; balances and candles are upserts of the batch's deltas, so the
write path reads nothing but the few orders and client order ids the batch
refers to that are not in the projector's cache. Secondary indexes are only
those the queries use (orders by account, open orders by account, client
order ids, fills by account, fills by order, trades by symbol); each costs apply throughput
(a per-account ledger index would cost about a third), so the ledger is
keyed by position only until a statement query needs more.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from core.instrument import Instrument

from .projection import (
    BALANCE_DELTA_COLUMNS,
    CANDLE_COLUMNS,
    FILL_COLUMNS,
    LEDGER_COLUMNS,
    ORDER_COLUMNS,
    ORDER_UPDATE_COLUMNS,
    TRADE_COLUMNS,
    Changes,
    OrderState,
    Projector,
)
from .store import (
    CLOSED_STATUSES,
    INTERVALS,
    OPEN_STATUSES,
    BalanceView,
    CandleView,
    FillView,
    OrderView,
    ProjectionStore,
    Record,
    Registry,
    SchemaError,
    StatusFilter,
    SymbolRef,
    TradeView,
    hold_problems,
    ledger_problems,
)
from .views import balance_view, candle_view, fill_view, order_view, trade_view

_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"
_CLOSED_SQL = "(" + ", ".join(f"'{s}'" for s in CLOSED_STATUSES) + ")"

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            account INTEGER NOT NULL,
            symbol INTEGER NOT NULL,
            side TEXT NOT NULL,
            type TEXT NOT NULL,
            time_in_force TEXT NOT NULL,
            price INTEGER,
            quantity INTEGER,
            quote_quantity INTEGER,
            stop_price INTEGER,
            expire_time INTEGER,
            post_only INTEGER NOT NULL,
            stp TEXT NOT NULL,
            client_order_id TEXT,
            status TEXT NOT NULL,
            leaves INTEGER NOT NULL,
            filled_quantity INTEGER NOT NULL,
            filled_notional INTEGER NOT NULL,
            fee_total INTEGER NOT NULL,
            fee_asset INTEGER,
            hold INTEGER NOT NULL,
            hold_asset INTEGER,
            reason TEXT,
            created_seq INTEGER NOT NULL,
            created_time INTEGER NOT NULL,
            updated_seq INTEGER NOT NULL,
            updated_time INTEGER NOT NULL,
            triggered_seq INTEGER
        )""",
        "CREATE INDEX orders_by_account ON orders (account, id)",
        "CREATE UNIQUE INDEX orders_by_client_id ON orders (account, client_order_id) "
        "WHERE client_order_id IS NOT NULL",
        f"CREATE INDEX orders_open ON orders (account, id) WHERE status IN {_OPEN_SQL}",
        """CREATE TABLE fills (
            trade_seq INTEGER NOT NULL,
            trade_index INTEGER NOT NULL,
            liquidity TEXT NOT NULL,
            order_id INTEGER NOT NULL,
            account INTEGER NOT NULL,
            symbol INTEGER NOT NULL,
            side TEXT NOT NULL,
            price INTEGER NOT NULL,
            quantity INTEGER NOT NULL,
            fee INTEGER NOT NULL,
            fee_asset INTEGER NOT NULL,
            time INTEGER NOT NULL,
            PRIMARY KEY (trade_seq, trade_index, liquidity)
        ) WITHOUT ROWID""",
        "CREATE INDEX fills_by_account ON fills (account, trade_seq, trade_index)",
        """CREATE TABLE trades (
            seq INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            symbol INTEGER NOT NULL,
            price INTEGER NOT NULL,
            quantity INTEGER NOT NULL,
            aggressor_side TEXT NOT NULL,
            time INTEGER NOT NULL,
            PRIMARY KEY (seq, idx)
        ) WITHOUT ROWID""",
        "CREATE INDEX trades_by_symbol ON trades (symbol, seq, idx)",
        """CREATE TABLE ledger (
            seq INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            leg INTEGER NOT NULL,
            kind TEXT NOT NULL,
            account INTEGER NOT NULL,
            asset INTEGER NOT NULL,
            debit INTEGER NOT NULL,
            credit INTEGER NOT NULL,
            time INTEGER NOT NULL,
            PRIMARY KEY (seq, idx, leg),
            CHECK (debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0))
        ) WITHOUT ROWID""",
        """CREATE TABLE balances (
            account INTEGER NOT NULL,
            asset INTEGER NOT NULL,
            total INTEGER NOT NULL,
            held INTEGER NOT NULL,
            updated_seq INTEGER NOT NULL,
            PRIMARY KEY (account, asset)
        ) WITHOUT ROWID""",
        """CREATE TABLE candles (
            symbol INTEGER NOT NULL,
            interval TEXT NOT NULL,
            start INTEGER NOT NULL,
            open INTEGER NOT NULL,
            high INTEGER NOT NULL,
            low INTEGER NOT NULL,
            close INTEGER NOT NULL,
            volume INTEGER NOT NULL,
            quote_volume INTEGER NOT NULL,
            trade_count INTEGER NOT NULL,
            PRIMARY KEY (symbol, interval, start)
        ) WITHOUT ROWID""",
        """CREATE TABLE projection_position (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            seq INTEGER NOT NULL,
            time INTEGER NOT NULL
        )""",
        "INSERT INTO projection_position (id, seq, time) VALUES (0, 0, 0)",
    )),
    # An order's fills (the API returns them with the order): without it, the query scanned
    # all of the account's fills, 3.5 ms for an account with 5,500 (47 us with it); it costs
    # apply throughput within the noise of bench.persister.
    (2, ("CREATE INDEX fills_by_order ON fills (account, order_id)",)),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
TABLES: tuple[str, ...] = ("orders", "fills", "trades", "ledger", "balances", "candles", "projection_position")


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


_INSERT_ORDER = f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES ({_placeholders(len(ORDER_COLUMNS))})"
_UPDATE_ORDER = f"UPDATE orders SET {', '.join(f'{c} = ?' for c in ORDER_UPDATE_COLUMNS)} WHERE id = ?"
_INSERT_FILL = f"INSERT INTO fills ({', '.join(FILL_COLUMNS)}) VALUES ({_placeholders(len(FILL_COLUMNS))})"
_INSERT_TRADE = f"INSERT INTO trades ({', '.join(TRADE_COLUMNS)}) VALUES ({_placeholders(len(TRADE_COLUMNS))})"
_INSERT_LEDGER = f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS)}) VALUES ({_placeholders(len(LEDGER_COLUMNS))})"
_UPSERT_BALANCE = (
    f"INSERT INTO balances ({', '.join(BALANCE_DELTA_COLUMNS)}) VALUES ({_placeholders(len(BALANCE_DELTA_COLUMNS))}) "
    "ON CONFLICT (account, asset) DO UPDATE SET total = total + excluded.total, held = held + excluded.held, "
    "updated_seq = excluded.updated_seq"
)
_UPSERT_CANDLE = (
    f"INSERT INTO candles ({', '.join(CANDLE_COLUMNS)}) VALUES ({_placeholders(len(CANDLE_COLUMNS))}) "
    "ON CONFLICT (symbol, interval, start) DO UPDATE SET high = max(high, excluded.high), "
    "low = min(low, excluded.low), close = excluded.close, volume = volume + excluded.volume, "
    "quote_volume = quote_volume + excluded.quote_volume, trade_count = trade_count + excluded.trade_count"
)
_SELECT_ORDER = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders"
_CHUNK = 500
WAL_CHECKPOINT_PAGES = 10_000
"""Checkpoint the WAL into the database file every ~40 MB instead of every ~4 MB: fewer, larger copies."""


class SqliteStore:
    """``ProjectionStore`` on one SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: str | Path, instruments: Iterable[Instrument], readonly: bool = False) -> None:
        self.registry = Registry(instruments)
        self.readonly = readonly
        self.path = str(path)
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        else:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA cache_size=-65536")
        self._db.execute("PRAGMA temp_store=MEMORY")
        self._migrate()
        self._projector = Projector(self.registry)
        self._position: int | None = None

    # Schema -------------------------------------------------------------
    def _migrate(self) -> None:
        db = self._db
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        version = db.execute("SELECT version FROM schema_version").fetchone()[0] if exists else 0
        if version > SCHEMA_VERSION:
            raise SchemaError(f"{self.path} has schema version {version}; this code knows up to {SCHEMA_VERSION}")
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise SchemaError(f"{self.path} has schema version {version}, not {SCHEMA_VERSION}; open it writable first")
        db.execute("BEGIN IMMEDIATE")
        try:
            if not exists:
                db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                db.execute("INSERT INTO schema_version (version) VALUES (0)")
            for target, statements in MIGRATIONS:
                if target > version:
                    for statement in statements:
                        db.execute(statement)
                    db.execute("UPDATE schema_version SET version = ?", (target,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        version: int = self._db.execute("SELECT version FROM schema_version").fetchone()[0]
        return version

    # Writing ------------------------------------------------------------
    def apply(self, batch: Sequence[Record]) -> int:
        """Apply the records of ``batch`` above the stored position, in one transaction.

        Returns the number of records applied (0 for a batch that is all replay).
        """
        if self.readonly:
            raise PermissionError("this store was opened read-only")
        if not batch:
            return 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            position = db.execute("SELECT seq FROM projection_position WHERE id = 0").fetchone()[0]
            if position != self._position:
                self._projector.reset()  # first batch, or another writer moved it
            changes = self._projector.project(batch, position, self)
            if changes.is_empty():  # all replay
                db.execute("ROLLBACK")
                self._position = position
                return 0
            self._write(changes)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._projector.reset()
            self._position = None
            raise
        self._projector.committed()
        self._position = changes.position
        return changes.records

    def _write(self, c: Changes) -> None:
        db = self._db
        if c.new_orders:
            db.executemany(_INSERT_ORDER, c.new_orders)
        if c.updated_orders:
            db.executemany(_UPDATE_ORDER, c.updated_orders)
        if c.fills:
            db.executemany(_INSERT_FILL, c.fills)
        if c.trades:
            db.executemany(_INSERT_TRADE, c.trades)
        if c.ledger:
            db.executemany(_INSERT_LEDGER, c.ledger)
        if c.balance_deltas:
            db.executemany(_UPSERT_BALANCE, c.balance_deltas)
        if c.candle_deltas:
            db.executemany(_UPSERT_CANDLE, c.candle_deltas)
        db.execute("UPDATE projection_position SET seq = ?, time = ? WHERE id = 0", (c.position, c.time))

    # ProjectionSource (read inside the writer's transaction) --------------
    def load_orders(self, order_ids: Collection[int]) -> list[OrderState]:
        ids = list(order_ids)
        instruments = self.registry.instruments
        found = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            sql = f"{_SELECT_ORDER} WHERE id IN ({_placeholders(len(chunk))})"
            for row in self._db.execute(sql, chunk):
                found.append(OrderState.from_row(row, instruments.get(row[2])))
        return found

    def existing_client_order_ids(self, keys: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
        execute = self._db.execute
        sql = "SELECT 1 FROM orders WHERE account = ? AND client_order_id = ?"
        return {key for key in keys if execute(sql, key).fetchone() is not None}

    # Queries ------------------------------------------------------------
    def position(self) -> int:
        seq: int = self._db.execute("SELECT seq FROM projection_position WHERE id = 0").fetchone()[0]
        return seq

    def get_order(self, order_id: int) -> OrderView | None:
        row = self._db.execute(f"{_SELECT_ORDER} WHERE id = ?", (order_id,)).fetchone()
        return order_view(row, self.registry) if row is not None else None

    def get_order_by_client_id(self, account: int, client_order_id: str) -> OrderView | None:
        row = self._db.execute(
            f"{_SELECT_ORDER} WHERE account = ? AND client_order_id = ?", (account, client_order_id),
        ).fetchone()
        return order_view(row, self.registry) if row is not None else None

    def list_orders(
        self, account: int, symbol: SymbolRef | None = None, status: StatusFilter = "all", limit: int = 100,
    ) -> list[OrderView]:
        where = ["account = ?"]
        args: list[Any] = [account]
        if symbol is not None:
            where.append("symbol = ?")
            args.append(self.registry.instrument(symbol).id)
        if status == "open":
            where.append(f"status IN {_OPEN_SQL}")
        elif status == "closed":
            where.append(f"status IN {_CLOSED_SQL}")
        elif status != "all":
            raise ValueError(f"status must be open, closed or all, not {status!r}")
        args.append(_limit(limit))
        sql = f"{_SELECT_ORDER} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        return [order_view(row, self.registry) for row in self._db.execute(sql, args)]

    def list_fills(self, account: int, symbol: SymbolRef | None = None, limit: int = 100) -> list[FillView]:
        sql = f"SELECT {', '.join(FILL_COLUMNS)} FROM fills WHERE account = ?"
        args: list[Any] = [account]
        if symbol is not None:
            sql += " AND symbol = ?"
            args.append(self.registry.instrument(symbol).id)
        sql += " ORDER BY trade_seq DESC, trade_index DESC, liquidity DESC LIMIT ?"
        args.append(_limit(limit))
        return [fill_view(row, self.registry) for row in self._db.execute(sql, args)]

    def list_order_fills(self, account: int, order_id: int) -> list[FillView]:
        """The fills of one of ``account``'s orders, oldest first (none for another account's order)."""
        sql = (f"SELECT {', '.join(FILL_COLUMNS)} FROM fills WHERE account = ? AND order_id = ? "
               "ORDER BY trade_seq, trade_index, liquidity")
        return [fill_view(row, self.registry) for row in self._db.execute(sql, (account, order_id))]

    def list_trades(self, symbol: SymbolRef, limit: int = 100) -> list[TradeView]:
        sql = (f"SELECT {', '.join(TRADE_COLUMNS)} FROM trades WHERE symbol = ? "
               "ORDER BY seq DESC, idx DESC LIMIT ?")
        rows = self._db.execute(sql, (self.registry.instrument(symbol).id, _limit(limit)))
        return [trade_view(row, self.registry) for row in rows]

    def list_candles(
        self, symbol: SymbolRef, interval: str, limit: int = 100, since: int | None = None,
    ) -> list[CandleView]:
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
        columns = ", ".join(CANDLE_COLUMNS)
        symbol_id = self.registry.instrument(symbol).id
        if since is None:
            sql = (f"SELECT {columns} FROM candles WHERE symbol = ? AND interval = ? "
                   "ORDER BY start DESC LIMIT ?")
            rows = list(self._db.execute(sql, (symbol_id, interval, _limit(limit))))
            rows.reverse()
        else:
            since -= since % INTERVALS[interval]  # the bucket that holds ``since``
            sql = (f"SELECT {columns} FROM candles WHERE symbol = ? AND interval = ? AND start >= ? "
                   "ORDER BY start LIMIT ?")
            rows = list(self._db.execute(sql, (symbol_id, interval, since, _limit(limit))))
        return [candle_view(row, self.registry) for row in rows]

    def balances(self, account: int) -> list[BalanceView]:
        rows = self._db.execute(
            "SELECT asset, total, held FROM balances WHERE account = ? ORDER BY asset", (account,),
        )
        return [balance_view(account, asset, total, held, self.registry) for asset, total, held in rows]

    def open_gtd_expiries(self) -> list[int]:
        """The expiry time of every open GTD order, earliest first."""
        rows = self._db.execute(
            f"SELECT expire_time FROM orders WHERE time_in_force = 'gtd' AND status IN {_OPEN_SQL} "
            "AND expire_time IS NOT NULL ORDER BY expire_time"
        )
        return [expire_time for (expire_time,) in rows]

    def close(self) -> None:
        self._db.close()

    # Checks and raw access (operations and tests) ---------------------------
    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for read-only inspection."""
        return self._db

    def raw_balances(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(account, asset) -> (total, held) in asset units."""
        rows = self._db.execute("SELECT account, asset, total, held FROM balances")
        return {(account, asset): (total, held) for account, asset, total, held in rows}

    def check_ledger(self) -> list[str]:
        """The ledger's invariants; returns what is wrong (empty: all hold).

        * every entry set (seq, idx) has equal debits and credits per asset;
        * per (account, asset), credits - debits equals the balance's total;
        * the external account's ledger balance is minus the venue's holdings.
        """
        unbalanced = self._db.execute(
            "SELECT seq, idx, asset, sum(debit), sum(credit) FROM ledger GROUP BY seq, idx, asset "
            "HAVING sum(debit) != sum(credit)"
        ).fetchall()
        nets = {
            (account, asset): net
            for account, asset, net in self._db.execute(
                "SELECT account, asset, sum(credit) - sum(debit) FROM ledger GROUP BY account, asset"
            )
        }
        return ledger_problems(unbalanced, nets, self.raw_balances())

    def check_holds(self) -> list[str]:
        """Every balance's ``held`` equals the sum of its account's open orders' holds."""
        open_holds = self._db.execute(
            f"SELECT account, hold_asset, sum(hold) FROM orders WHERE status IN {_OPEN_SQL} "
            "GROUP BY account, hold_asset"
        ).fetchall()
        return hold_problems(open_holds, self.raw_balances())

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection table's rows in key order (for comparing two stores)."""
        keys = {
            "orders": "id", "fills": "trade_seq, trade_index, liquidity", "trades": "seq, idx",
            "ledger": "seq, idx, leg", "balances": "account, asset", "candles": "symbol, interval, start",
            "projection_position": "id",
        }
        return {table: list(self._db.execute(f"SELECT * FROM {table} ORDER BY {keys[table]}")) for table in TABLES}


def _implements_the_interface(store: SqliteStore) -> ProjectionStore:
    return store  # mypy checks here that SqliteStore is a ProjectionStore


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    return min(limit, 10_000)
