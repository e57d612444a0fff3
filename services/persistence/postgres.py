"""The projection store on PostgreSQL: the ``local`` and ``aws`` (Aurora) profiles.

Schema
------
Plain SQL files in ``migrations/postgres``, applied by yoyo (``migrate``):
the same tables, columns and keys as ``SqliteStore`` (so ``dump()`` of the two
compares equal), plus what a server database can prove or serve better:

* the ledger is double-entry *by constraint*: a constraint trigger,
  ``DEFERRABLE INITIALLY DEFERRED``, checks at COMMIT that every entry
  ``(seq, idx)`` the transaction touched has debits equal to credits per
  asset, so an unbalanced entry, written by this code or by hand, makes the
  COMMIT fail;
* an index for an order's fills (``list_order_fills``) and a partial one
  for the open GTD orders (``open_gtd_expiries``);
* the auth store's tables (``services.gateway.auth.postgres_store``), in the
  same database and migration history.

``migrate`` holds a session advisory lock while yoyo runs, so processes that
start together apply each migration once and the others wait, then find
nothing to do (and a migrator that dies releases it with its session). A store refuses a database that has migrations this code does
not know (``SchemaError``, as ``SqliteStore`` refuses a newer file).

Writing
-------
``apply`` is one transaction: lock the position row (``FOR UPDATE``: a second
writer waits, then sees the moved position and skips what was applied),
project, then write with one statement per table: binary ``COPY`` for the rows
to insert (``INSERT ... SELECT FROM unnest(...)`` for a few rows, where COPY's
own round trips would cost more), ``UPDATE ... FROM unnest(...)`` for the
orders that changed, ``INSERT ... ON CONFLICT DO UPDATE SET x = x +
EXCLUDED.x`` for balance and candle deltas, and the new position; everything
but the COPYs goes in one pipelined round trip. The transaction commits with
``synchronous_commit = off``: as with SQLite's ``synchronous=NORMAL``, a
server crash may lose the last batches, never a part of one, and the log
replays them: ``apply`` raises ``PositionWentBack`` when it finds the
stored position behind what it committed, and the projection follower reads
the log again from there. ``python -m bench.persister`` measures it against the engine.

Connections
-----------
A ``psycopg_pool.ConnectionPool`` (autocommit; ``apply`` opens its own
transaction), checked before each use so that a restarted server costs no
failed call. A server that cannot be reached raises ``StoreUnavailable``.
Numeric results are read as ``int``: every number here is a whole number of
units, and SQLite gives ``int`` for the same rows.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

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

MIGRATIONS_DIR = Path(__file__).parent / "migrations" / "postgres"
MIGRATION_LOCK = 0x5249_414C_544F_0001
"""``pg_advisory_lock`` key held while migrating ("RIALTO" + 1): one migrator at a time per database."""
TABLES: tuple[str, ...] = ("orders", "fills", "trades", "ledger", "balances", "candles", "projection_position")
_KEYS: dict[str, str] = {
    "orders": "id", "fills": "trade_seq, trade_index, liquidity", "trades": "seq, idx",
    "ledger": "seq, idx, leg", "balances": "account, asset", "candles": "symbol, interval, start",
    "projection_position": "id",
}
_TEXT_COLUMNS = frozenset((
    "side", "type", "time_in_force", "stp", "client_order_id", "status", "reason", "liquidity",
    "aggressor_side", "kind", "interval",
))
_NUMERIC_COLUMNS = frozenset(("volume", "quote_volume"))
_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"
_CLOSED_SQL = "(" + ", ".join(f"'{s}'" for s in CLOSED_STATUSES) + ")"
# Connection failures (class 08) and a server shutting down or starting up: the store is unreachable.
_UNAVAILABLE_STATES = frozenset(("57P01", "57P02", "57P03"))


class StoreUnavailable(ConnectionError):
    """The PostgreSQL server cannot be reached (down, refusing, or the connection broke)."""


class PositionWentBack(RuntimeError):
    """The stored position is behind what this writer committed: a server crash lost the last batches
    (``synchronous_commit = off``). The writer must re-read the log from the stored position."""

    def __init__(self, committed: int, stored: int) -> None:
        super().__init__(f"the projection position went back from seq {committed} to {stored} "
                         "(the server restarted and lost its last commits)")
        self.committed = committed
        self.stored = stored


def _sql_type(column: str) -> str:
    if column in _TEXT_COLUMNS:
        return "text"
    if column in _NUMERIC_COLUMNS:
        return "numeric"
    return "int8"


def _copy_sql(table: str, columns: Sequence[str]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"


def _unnest(columns: Sequence[str]) -> str:
    """``unnest(%s::t1[], %s::t2[], ...)``: one array parameter per column."""
    return "unnest(" + ", ".join(f"%s::{_sql_type(c)}[]" for c in columns) + ")"


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arrays ``unnest`` takes)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {_unnest(columns)}"


_COPY_MIN_ROWS = 64
"""Rows from which ``COPY`` beats ``INSERT ... SELECT FROM unnest``: binary COPY is about twice as fast
per row, but costs two round trips of its own where the INSERT joins the pipeline."""
# The batch's transaction settings and the writer's lock on the position, in one round trip.
# synchronous_commit off: a server crash may lose the last batches (never part of one); the log
# replays them. No hash or merge joins: every join in a batch is its few rows to their rows by key,
# an index nested loop; left to itself the planner hashed the whole orders table for a few hundred
# updates, until the table was large, so each batch got slower as the table grew.
_BEGIN_BATCH = (
    "SELECT seq, set_config('synchronous_commit', 'off', true), set_config('enable_hashjoin', 'off', true), "
    "set_config('enable_mergejoin', 'off', true) FROM projection_position WHERE id = %s FOR UPDATE"
)
_UPDATE_ORDERS = (
    f"UPDATE orders AS o SET {', '.join(f'{c} = u.{c}' for c in ORDER_UPDATE_COLUMNS)} "
    f"FROM {_unnest((*ORDER_UPDATE_COLUMNS, 'id'))} AS u ({', '.join(ORDER_UPDATE_COLUMNS)}, id) WHERE o.id = u.id"
)
_UPSERT_BALANCES = (
    f"INSERT INTO balances AS b ({', '.join(BALANCE_DELTA_COLUMNS)}) SELECT * FROM {_unnest(BALANCE_DELTA_COLUMNS)} "
    "ON CONFLICT (account, asset) DO UPDATE SET total = b.total + EXCLUDED.total, held = b.held + EXCLUDED.held, "
    "updated_seq = EXCLUDED.updated_seq"
)
_UPSERT_CANDLES = (
    f"INSERT INTO candles AS c ({', '.join(CANDLE_COLUMNS)}) SELECT * FROM {_unnest(CANDLE_COLUMNS)} "
    "ON CONFLICT (symbol, interval, start) DO UPDATE SET high = greatest(c.high, EXCLUDED.high), "
    "low = least(c.low, EXCLUDED.low), close = EXCLUDED.close, volume = c.volume + EXCLUDED.volume, "
    "quote_volume = c.quote_volume + EXCLUDED.quote_volume, trade_count = c.trade_count + EXCLUDED.trade_count"
)
_SELECT_ORDER = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders"
_SELECT_FILL = f"SELECT {', '.join(FILL_COLUMNS)} FROM fills"


class _WholeNumericLoader(Loader):
    """``numeric`` as ``int`` when it is whole (sums of BIGINT, the NUMERIC(39,0) columns)."""

    def load(self, data: Buffer) -> int | Decimal:
        text = bytes(data)
        try:
            return int(text)
        except ValueError:  # a fraction, NaN or infinity: keep it exact
            return Decimal(text.decode())


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES


@contextmanager
def connection_errors_as_unavailable(dsn: str) -> Iterator[None]:
    """Raise ``StoreUnavailable`` for an unreachable server; let every other database error through."""
    try:
        yield
    except (psycopg.OperationalError, PoolTimeout) as exc:
        if _is_unavailable(exc):
            raise StoreUnavailable(f"PostgreSQL at {_redacted(dsn)} is unavailable: {exc}") from exc
        raise


def _redacted(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in params.items())


def connect(dsn: str, timeout: float = 10.0, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
    """One connection (autocommit), ``StoreUnavailable`` if the server cannot be reached in ``timeout`` seconds."""
    with connection_errors_as_unavailable(dsn):
        return psycopg.connect(dsn, autocommit=True, connect_timeout=max(1, round(timeout)), **kwargs)


def _yoyo_uri(dsn: str) -> str:
    """yoyo's URL for a libpq DSN (URL or ``key=value``): every parameter goes through as a query argument."""
    return "postgresql+psycopg://?" + urlencode(conninfo_to_dict(dsn))


def _migrations() -> Any:
    from yoyo import read_migrations

    return read_migrations(str(MIGRATIONS_DIR))


def known_migrations() -> list[str]:
    """The ids of this code's migrations, in the order they apply."""
    return [m.id for m in _migrations()]


def migrate(dsn: str, timeout: float = 10.0) -> list[str]:
    """Apply the migrations the database does not have yet; return their ids (empty: it was up to date).

    Safe when several processes start at once: they take turns on an advisory
    lock, and each finds what the previous ones applied. ``SchemaError`` if
    the database has migrations this code does not know (newer code migrated it).
    """
    from yoyo import get_backend

    lock = connect(dsn, timeout)
    try:
        with connection_errors_as_unavailable(dsn):
            # The common case, every process start after the first: up to date, nothing to lock.
            applied = _applied(lock)
            if applied is not None and set(applied) == set(known_migrations()):
                return []
            lock.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            backend = get_backend(_yoyo_uri(dsn))
            try:
                migrations = _migrations()
                unknown = _unknown_applied(lock, {m.id for m in migrations})
                if unknown:
                    raise SchemaError(
                        f"the database has migrations this code does not know ({', '.join(unknown)}): "
                        "it was migrated by newer code"
                    )
                # Not yoyo's own lock (a row in a table): a process killed while holding it would leave
                # it behind, and every later start would wait on it and fail. The advisory lock above
                # ends with the session that holds it, however that session ends.
                pending = backend.to_apply(migrations)
                backend.apply_migrations(pending)
            finally:
                backend.connection.close()
            return [m.id for m in pending]
    finally:
        lock.close()  # ends the session, which releases the advisory lock


def _applied(conn: psycopg.Connection[Any]) -> list[str] | None:
    """The migration ids recorded in the database; None if it was never migrated."""
    exists = conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    return [row[0] for row in conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc")]


def _unknown_applied(conn: psycopg.Connection[Any], known: set[str]) -> list[str]:
    return [m for m in (_applied(conn) or []) if m not in known]


def check_schema(dsn: str, timeout: float = 10.0) -> None:
    """``SchemaError`` unless the database has exactly this code's migrations (without writing anything)."""
    with connect(dsn, timeout) as conn, connection_errors_as_unavailable(dsn):
        applied = _applied(conn)
    known = known_migrations()
    if applied is None:
        raise SchemaError(f"{_redacted(dsn)} has no schema; run migrate() or open a writable store first")
    unknown = [m for m in applied if m not in known]
    if unknown:
        raise SchemaError(f"the database has migrations this code does not know ({', '.join(unknown)})")
    missing = [m for m in known if m not in applied]
    if missing:
        raise SchemaError(f"the database lacks migrations {', '.join(missing)}; run migrate() first")


def open_pool(
    dsn: str, size: int, readonly: bool = False, timeout: float = 10.0, name: str = "rialto",
) -> ConnectionPool[psycopg.Connection[tuple[Any, ...]]]:
    """An opened pool of autocommit connections (read-only sessions if ``readonly``); ``StoreUnavailable`` if it cannot connect."""

    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.adapters.register_loader("numeric", _WholeNumericLoader)
        if readonly:
            conn.execute("SET default_transaction_read_only = on")

    pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max(1, size),
        kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout))},
        configure=configure,
        check=ConnectionPool.check_connection,
        timeout=timeout,
        name=name,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except PoolTimeout as exc:
        pool.close()
        raise StoreUnavailable(f"PostgreSQL at {_redacted(dsn)} is unavailable: no connection in {timeout} s") from exc
    return pool


class PostgresStore:
    """``ProjectionStore`` on one PostgreSQL database (migrated on open unless ``readonly``).

    Thread-safe: queries take a pooled connection each; ``apply`` (one writer)
    holds one for its transaction.
    """

    def __init__(
        self,
        dsn: str,
        instruments: Iterable[Instrument],
        readonly: bool = False,
        pool_size: int = 4,
        *,
        timeout: float = 10.0,
        shard: int = 0,
    ) -> None:
        self.registry = Registry(instruments)
        self.readonly = readonly
        self.dsn = dsn
        self.shard = shard
        """The engine shard whose records this writer applies (its own position row)."""
        if readonly:
            check_schema(dsn, timeout)
        else:
            migrate(dsn, timeout)
        self._pool = open_pool(dsn, pool_size, readonly, timeout, name="rialto-projections")
        if not readonly and shard:
            with self._connection() as conn:
                conn.execute("INSERT INTO projection_position (id, seq, time) VALUES (%s, 0, 0) "
                             "ON CONFLICT (id) DO NOTHING", (shard,))
        self._projector = Projector(self.registry)
        self._position: int | None = None
        self._apply_lock = threading.Lock()
        self._tx: psycopg.Connection[Any] | None = None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with connection_errors_as_unavailable(self.dsn), self._pool.connection() as conn:
            yield conn

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchone()

    # Writing ------------------------------------------------------------
    def apply(self, batch: Sequence[Record]) -> int:
        """Apply the records of ``batch`` above the stored position, in one transaction.

        Returns the number of records applied (0 for a batch that is all replay).
        """
        if self.readonly:
            raise PermissionError("this store was opened read-only")
        if not batch:
            return 0
        with self._apply_lock, self._connection() as conn:
            changes: Changes | None = None
            try:
                with conn.transaction():
                    self._tx = conn
                    row = conn.execute(_BEGIN_BATCH, (self.shard,)).fetchone()
                    assert row is not None
                    position = row[0]
                    if self._position is not None and position < self._position:
                        # The pool reconnected to a restarted server without an error reaching us; applying
                        # this batch on top would leave a hole where the lost batches were.
                        raise PositionWentBack(self._position, position)
                    if position != self._position:
                        self._projector.reset()  # first batch, or another writer moved it
                    projected = self._projector.project(batch, position, self)
                    if projected.is_empty():  # all replay
                        self._position = position
                        raise psycopg.Rollback()
                    self._write(projected)
                    changes = projected
            except BaseException:
                self._projector.reset()
                self._position = None
                raise
            finally:
                self._tx = None
        if changes is None:
            return 0
        self._projector.committed()
        self._position = changes.position
        return changes.records

    def _write(self, c: Changes) -> None:
        conn = self._tx
        assert conn is not None, "_write runs inside apply's transaction"
        inserts = (
            ("orders", ORDER_COLUMNS, c.new_orders),
            ("fills", FILL_COLUMNS, c.fills),
            ("trades", TRADE_COLUMNS, c.trades),
            ("ledger", LEDGER_COLUMNS, c.ledger),
        )
        with conn.cursor() as cur:
            for table, columns, rows in inserts:
                if len(rows) >= _COPY_MIN_ROWS:
                    with cur.copy(_copy_sql(table, columns)) as copy:
                        copy.set_types([_sql_type(column) for column in columns])
                        for row in rows:
                            copy.write_row(row)
            # Everything else in one round trip (a small batch's inserts too).
            with conn.pipeline():
                for table, columns, rows in inserts:
                    if 0 < len(rows) < _COPY_MIN_ROWS:
                        cur.execute(_insert_sql(table, columns), _columns(rows, len(columns)))
                if c.updated_orders:
                    cur.execute(_UPDATE_ORDERS, _columns(c.updated_orders, len(ORDER_UPDATE_COLUMNS) + 1))
                if c.balance_deltas:
                    cur.execute(_UPSERT_BALANCES, _columns(c.balance_deltas, len(BALANCE_DELTA_COLUMNS)))
                if c.candle_deltas:
                    cur.execute(_UPSERT_CANDLES, _columns(c.candle_deltas, len(CANDLE_COLUMNS)))
                cur.execute("UPDATE projection_position SET seq = %s, time = %s WHERE id = %s",
                            (c.position, c.time, self.shard))

    # ProjectionSource (read inside the writer's transaction) --------------
    @contextmanager
    def _source(self) -> Iterator[psycopg.Connection[Any]]:
        if self._tx is not None:
            yield self._tx
        else:
            with self._connection() as conn:
                yield conn

    def load_orders(self, order_ids: Collection[int]) -> list[OrderState]:
        instruments = self.registry.instruments
        with self._source() as conn:
            rows = conn.execute(f"{_SELECT_ORDER} WHERE id = ANY(%s::int8[])", (list(order_ids),)).fetchall()
        return [OrderState.from_row(row, instruments.get(row[2])) for row in rows]

    def existing_client_order_ids(self, keys: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
        if not keys:
            return set()
        accounts, client_ids = _columns(list(keys), 2)
        with self._source() as conn:
            rows = conn.execute(
                "SELECT o.account, o.client_order_id FROM orders AS o "
                "JOIN unnest(%s::int8[], %s::text[]) AS k (account, client_order_id) "
                "ON o.account = k.account AND o.client_order_id = k.client_order_id",
                (accounts, client_ids),
            ).fetchall()
        return {(account, client_order_id) for account, client_order_id in rows}

    # Queries ------------------------------------------------------------
    def position(self) -> int:
        row = self._one("SELECT seq FROM projection_position WHERE id = %s", (self.shard,))
        assert row is not None
        seq: int = row[0]
        return seq

    def get_order(self, order_id: int) -> OrderView | None:
        row = self._one(f"{_SELECT_ORDER} WHERE id = %s", (order_id,))
        return order_view(row, self.registry) if row is not None else None

    def get_order_by_client_id(self, account: int, client_order_id: str) -> OrderView | None:
        row = self._one(f"{_SELECT_ORDER} WHERE account = %s AND client_order_id = %s", (account, client_order_id))
        return order_view(row, self.registry) if row is not None else None

    def list_orders(
        self, account: int, symbol: SymbolRef | None = None, status: StatusFilter = "all", limit: int = 100,
    ) -> list[OrderView]:
        where = ["account = %s"]
        args: list[Any] = [account]
        if symbol is not None:
            where.append("symbol = %s")
            args.append(self.registry.instrument(symbol).id)
        if status == "open":
            where.append(f"status IN {_OPEN_SQL}")
        elif status == "closed":
            where.append(f"status IN {_CLOSED_SQL}")
        elif status != "all":
            raise ValueError(f"status must be open, closed or all, not {status!r}")
        args.append(_limit(limit))
        sql = f"{_SELECT_ORDER} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s"
        return [order_view(row, self.registry) for row in self._rows(sql, args)]

    def list_fills(self, account: int, symbol: SymbolRef | None = None, limit: int = 100) -> list[FillView]:
        sql = f"{_SELECT_FILL} WHERE account = %s"
        args: list[Any] = [account]
        if symbol is not None:
            sql += " AND symbol = %s"
            args.append(self.registry.instrument(symbol).id)
        sql += " ORDER BY trade_seq DESC, trade_index DESC, liquidity DESC LIMIT %s"
        args.append(_limit(limit))
        return [fill_view(row, self.registry) for row in self._rows(sql, args)]

    def list_order_fills(self, account: int, order_id: int) -> list[FillView]:
        """The fills of one of ``account``'s orders, oldest first (none for another account's order)."""
        rows = self._rows(
            f"{_SELECT_FILL} WHERE account = %s AND order_id = %s ORDER BY trade_seq, trade_index, liquidity",
            (account, order_id),
        )
        return [fill_view(row, self.registry) for row in rows]

    def list_trades(self, symbol: SymbolRef, limit: int = 100) -> list[TradeView]:
        sql = (f"SELECT {', '.join(TRADE_COLUMNS)} FROM trades WHERE symbol = %s "
               "ORDER BY seq DESC, idx DESC LIMIT %s")
        rows = self._rows(sql, (self.registry.instrument(symbol).id, _limit(limit)))
        return [trade_view(row, self.registry) for row in rows]

    def list_candles(
        self, symbol: SymbolRef, interval: str, limit: int = 100, since: int | None = None,
    ) -> list[CandleView]:
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
        columns = ", ".join(CANDLE_COLUMNS)
        symbol_id = self.registry.instrument(symbol).id
        if since is None:
            sql = (f"SELECT {columns} FROM candles WHERE symbol = %s AND interval = %s "
                   "ORDER BY start DESC LIMIT %s")
            rows = self._rows(sql, (symbol_id, interval, _limit(limit)))
            rows.reverse()
        else:
            since -= since % INTERVALS[interval]  # the bucket that holds ``since``
            sql = (f"SELECT {columns} FROM candles WHERE symbol = %s AND interval = %s AND start >= %s "
                   "ORDER BY start LIMIT %s")
            rows = self._rows(sql, (symbol_id, interval, since, _limit(limit)))
        return [candle_view(row, self.registry) for row in rows]

    def balances(self, account: int) -> list[BalanceView]:
        rows = self._rows("SELECT asset, total, held FROM balances WHERE account = %s ORDER BY asset", (account,))
        return [balance_view(account, asset, total, held, self.registry) for asset, total, held in rows]

    def open_gtd_expiries(self) -> list[int]:
        """The expiry time of every open GTD order, earliest first."""
        rows = self._rows(
            f"SELECT expire_time FROM orders WHERE time_in_force = 'gtd' AND status IN {_OPEN_SQL} "
            "AND expire_time IS NOT NULL ORDER BY expire_time"
        )
        return [expire_time for (expire_time,) in rows]

    def close(self) -> None:
        self._pool.close()

    # Checks and raw access (operations and tests) ---------------------------
    @property
    def pool(self) -> ConnectionPool[psycopg.Connection[tuple[Any, ...]]]:
        """The connection pool, for inspection (``with store.pool.connection() as conn``)."""
        return self._pool

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``%s`` placeholders) in its own transaction; its rows, if any."""
        with self._connection() as conn:
            cur = conn.execute(sql, args)
            return cur.fetchall() if cur.description is not None else []

    def raw_balances(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(account, asset) -> (total, held) in asset units."""
        rows = self._rows("SELECT account, asset, total, held FROM balances")
        return {(account, asset): (total, held) for account, asset, total, held in rows}

    def check_ledger(self) -> list[str]:
        """The ledger's invariants; returns what is wrong (empty: all hold).

        * every entry set (seq, idx) has equal debits and credits per asset
          (the database refuses to commit one that does not; this also finds
          one written with the trigger bypassed);
        * per (account, asset), credits - debits equals the balance's total;
        * the external account's ledger balance is minus the venue's holdings.
        """
        unbalanced = self._rows(
            "SELECT seq, idx, asset, sum(debit), sum(credit) FROM ledger GROUP BY seq, idx, asset "
            "HAVING sum(debit) <> sum(credit) ORDER BY seq, idx, asset"
        )
        nets = {
            (account, asset): net
            for account, asset, net in self._rows(
                "SELECT account, asset, sum(credit) - sum(debit) FROM ledger GROUP BY account, asset"
            )
        }
        return ledger_problems(unbalanced, nets, self.raw_balances())

    def check_holds(self) -> list[str]:
        """Every balance's ``held`` equals the sum of its account's open orders' holds."""
        open_holds = self._rows(
            f"SELECT account, hold_asset, sum(hold) FROM orders WHERE status IN {_OPEN_SQL} "
            "GROUP BY account, hold_asset"
        )
        return hold_problems(open_holds, self.raw_balances())

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection table's rows in key order (for comparing two stores, of either technology)."""
        with self._connection() as conn, conn.transaction():
            # One snapshot for all tables, as SQLite's single connection gives between batches.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return {
                table: conn.execute(f"SELECT * FROM {table} ORDER BY {_KEYS[table]}").fetchall() for table in TABLES
            }


def _implements_the_interface(store: PostgresStore) -> ProjectionStore:
    return store  # mypy checks here that PostgresStore is a ProjectionStore


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    return min(limit, 10_000)
