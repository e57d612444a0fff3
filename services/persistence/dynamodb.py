"""Order and market-data history in DynamoDB: the aws profile's history store.

In the aws profile, orders, fills, the public trade tape and candles live
here; balances and the double-entry ledger stay in (Aurora) PostgreSQL, so
``balances`` raises ``NotImplementedError`` and ``apply`` ignores the
ledger and balance parts of ``Changes``. What the events mean is computed by
``services.persistence.projection`` exactly as for SQLite and PostgreSQL;
this module only stores ``Changes`` and answers the queries with the same
views (``views``), so the API sees identical answers from every store.

Tables (names are ``AwsSettings.table_prefix`` + the name; on-demand
capacity; numbers are DynamoDB numbers, every one an integer)
---------------------------------------------------------------------------
=================  ===============================  =======================================
table              key                              what for
=================  ===============================  =======================================
orders             id (N): the placing seq          the order row (``ORDER_COLUMNS``; a
                                                    None is an absent attribute or NULL)
  GSI by_account   account (N), id (N)              list_orders, newest first
                                                    (``ScanIndexForward=False``; id is
                                                    created_seq)
  GSI open_orders  open_account (N), id (N)         list_orders(status="open"): the
                                                    attribute exists only while the order
                                                    is open (a sparse index)
  GSI open_expiry  open_bucket (N, always 0),       open_gtd_expiries: both attributes
                   expire_time (N)                  exist only on open orders with an
                                                    expiry, i.e. open GTD orders
client_order_ids   account (N), client_order_id(S)  get_order_by_client_id; order_id (N).
                                                    Written with a conditional put
                                                    (absent, or already this order's), so
                                                    the first order keeps the id
fills              account (N), fill_key (S)        list_fills, newest first; fill_key is
                   ``<trade_seq:020>#<index:010>    ``FILL_COLUMNS`` sorted as SQLite
                   #<liquidity>``                   sorts them
  GSI by_order     order_id (N), fill_key (S)       list_order_fills, oldest first
trades             symbol (N), trade_key (S)        list_trades, newest first; iter_trades
                   ``<seq:020>#<index:010>``        (oldest first, for the archive)
candles            series (S) ``<symbol>#<iv>``,    list_candles (latest ``limit``, or from
                   start (N)                        ``since``)
meta               name (S): "position"             the store's position: seq, time
=================  ===============================  =======================================

GSI reads are eventually consistent (a just-written order can be missing
from ``list_orders`` for a moment); reads by primary key are strongly
consistent.

Idempotence without a transaction
---------------------------------
A batch is far bigger than a DynamoDB transaction (100 items), so a crash
can leave a batch half written, and the follower replays it, perhaps with
other batch boundaries. Every write is therefore safe to repeat, and what
the projector reads is the state *as of the store's position* (the base):

* fills, trades, client order ids and new orders are puts of deterministic
  items (the same record always makes the same item);
* an order or a candle written by a batch records the batch's end in
  ``wpos`` and, beside its new values, the values it had at the batch's
  base (``p_<column>`` for an order's changing columns; ``prev`` for a
  candle). Read back for a batch whose base is below ``wpos`` (a batch that
  did not commit wrote it), the item is taken at its ``p_`` values. An
  order update copies the current values to ``p_`` only if ``wpos <=
  base`` (a conditional UpdateItem); if the item was already written by an
  uncommitted attempt, a second UpdateItem sets the new values and keeps
  ``p_``. Candles are read-modify-write (their deltas are small in number:
  symbols x intervals per batch) with the same rule, so a candle never adds
  a trade twice, whatever the batch boundaries of the replay;
* client order ids claimed by an order above the base (by an uncommitted
  attempt) do not count as taken;
* last, the position item moves with a conditional update from the base
  read at the start (``attribute_not_exists(seq) OR seq = :base``): it only
  moves forward, and a second writer is detected instead of interleaved.

Until a half-written batch is replayed, readers can see some of its rows;
once it is, every item equals what an uninterrupted run writes.

Writes go in parallel (BatchWriteItem for the puts, 25 items a request;
UpdateItem for orders, which need conditions), then the position.

Known limitations
-----------------
* One partition per symbol on ``trades`` and one on the ``open_expiry``
  index: about 1,000 writes a second each. Bucket the key by day (trades)
  or by shard (expiries) when one symbol trades faster than that.
* ``list_orders`` with a symbol or "closed" filter reads past what it skips.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from core.instrument import Instrument
from services.aws import AwsLoop, AwsSettings, error_code
from services.persistence.projection import (
    CANDLE_COLUMNS,
    FILL_COLUMNS,
    ORDER_COLUMNS,
    ORDER_UPDATE_COLUMNS,
    TRADE_COLUMNS,
    Changes,
    OrderState,
    ProjectionError,
    Projector,
)
from services.persistence.store import (
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
    StatusFilter,
    SymbolRef,
    TradeView,
)
from services.persistence.views import candle_view, fill_view, order_view, trade_view

__all__ = ["TABLES", "DynamoHistoryStore"]

log = logging.getLogger(__name__)

TABLES: tuple[str, ...] = ("orders", "client_order_ids", "fills", "trades", "candles", "meta")
_OPEN = frozenset(OPEN_STATUSES)
_CANDLE_VALUES = CANDLE_COLUMNS[3:]  # open, high, low, close, volume, quote_volume, trade_count
_PARALLEL = 32
_BATCH_WRITE = 25
_BATCH_GET = 100
_NULL: dict[str, Any] = {"NULL": True}
_ZERO = {"N": "0"}


def _schemas(prefix: str) -> dict[str, dict[str, Any]]:
    """CreateTable arguments for every table."""

    def attrs(**kinds: str) -> list[dict[str, str]]:
        return [{"AttributeName": name, "AttributeType": kind} for name, kind in kinds.items()]

    def key(hash_key: str, range_key: str | None = None) -> list[dict[str, str]]:
        out = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            out.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return out

    def index(name: str, hash_key: str, range_key: str) -> dict[str, Any]:
        return {"IndexName": name, "KeySchema": key(hash_key, range_key), "Projection": {"ProjectionType": "ALL"}}

    return {
        "orders": {
            "AttributeDefinitions": attrs(id="N", account="N", open_account="N", open_bucket="N", expire_time="N"),
            "KeySchema": key("id"),
            "GlobalSecondaryIndexes": [
                index("by_account", "account", "id"),
                index("open_orders", "open_account", "id"),
                index("open_expiry", "open_bucket", "expire_time"),
            ],
        },
        "client_order_ids": {
            "AttributeDefinitions": attrs(account="N", client_order_id="S"),
            "KeySchema": key("account", "client_order_id"),
        },
        "fills": {
            "AttributeDefinitions": attrs(account="N", fill_key="S", order_id="N"),
            "KeySchema": key("account", "fill_key"),
            "GlobalSecondaryIndexes": [index("by_order", "order_id", "fill_key")],
        },
        "trades": {"AttributeDefinitions": attrs(symbol="N", trade_key="S"), "KeySchema": key("symbol", "trade_key")},
        "candles": {"AttributeDefinitions": attrs(series="S", start="N"), "KeySchema": key("series", "start")},
        "meta": {"AttributeDefinitions": attrs(name="S"), "KeySchema": key("name")},
    }


# -- values ------------------------------------------------------------------------------------


def _av(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (ints, strings, None, maps)."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return {"N": "1" if value else "0"}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: _av(v) for k, v in value.items()}}
    raise TypeError(f"no DynamoDB form for {type(value).__name__}")


def _py(value: dict[str, Any] | None) -> Any:
    if value is None or "NULL" in value:
        return None
    if "N" in value:
        return int(value["N"])
    if "S" in value:
        return value["S"]
    if "M" in value:
        return {k: _py(v) for k, v in value["M"].items()}
    if "BOOL" in value:
        return value["BOOL"]
    raise ValueError(f"unexpected DynamoDB value {value!r}")


def _fill_key(trade_seq: int, trade_index: int, liquidity: str) -> str:
    return f"{trade_seq:020d}#{trade_index:010d}#{liquidity}"


def _trade_key(seq: int, index: int) -> str:
    return f"{seq:020d}#{index:010d}"


def _series(symbol: int, interval: str) -> str:
    return f"{symbol}#{interval}"


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    return min(limit, 10_000)


class DynamoHistoryStore:
    """Orders, fills, trades and candles in DynamoDB (the aws profile). See the module docstring."""

    def __init__(self, settings: AwsSettings, instruments: Iterable[Instrument], *, aws: AwsLoop | None = None,
                 shard: int = 0) -> None:
        self.settings = settings
        # One position per engine shard (each shard's records come in its own sequence order).
        self._position_name = "position" if shard == 0 else f"position-{shard}"
        self.registry = Registry(instruments)
        self.tables = {name: f"{settings.table_prefix}{name}" for name in TABLES}
        self._aws = AwsLoop.share(settings, aws)
        self._projector = Projector(self.registry)
        self._position: int | None = None
        self._base = 0  # the position the batch being projected starts from
        self._closed = False

    # -- set-up ----------------------------------------------------------------------------

    def ensure_tables(self, timeout: float = 300.0) -> None:
        """Create the tables that do not exist (on-demand capacity); wait until all are ACTIVE."""
        self._aws.run(self._ensure_tables(timeout))

    async def _ensure_tables(self, timeout: float) -> None:
        db = await self._aws.client("dynamodb")
        schemas = _schemas(self.settings.table_prefix)
        for name, schema in schemas.items():
            table = self.tables[name]
            try:
                await db.describe_table(TableName=table)
                continue
            except Exception as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
            try:
                await db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **schema)
            except Exception as exc:
                if error_code(exc) != "ResourceInUseException":  # created meanwhile elsewhere
                    raise
        deadline = time.monotonic() + timeout
        for table in self.tables.values():
            while True:
                description = (await db.describe_table(TableName=table))["Table"]
                indexes = description.get("GlobalSecondaryIndexes", [])
                if description["TableStatus"] == "ACTIVE" and all(i["IndexStatus"] == "ACTIVE" for i in indexes):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"table {table} is not ACTIVE after {timeout} s")
                await asyncio.sleep(0.5)

    # -- writing -----------------------------------------------------------------------------

    def apply(self, batch: Sequence[Record]) -> int:
        """Apply the records of ``batch`` above the stored position; return how many were applied."""
        if not batch:
            return 0
        try:
            base = self._aws.run(self._read_position())
            if base != self._position:
                self._projector.reset()  # first batch, a failed one, or another writer moved it
            self._base = base
            changes = self._projector.project(batch, base, self)
            if changes.is_empty():
                self._position = base
                return 0
            self._aws.run(self._write(changes, base))
        except BaseException:
            self._projector.reset()
            self._position = None
            raise
        self._projector.committed()
        self._position = changes.position
        return changes.records

    async def _write(self, c: Changes, base: int) -> None:
        end = c.position
        puts: dict[str, list[dict[str, Any]]] = {
            "orders": [self._order_item(row, end) for row in c.new_orders],
            "fills": [self._fill_item(row) for row in c.fills],
            "trades": [self._trade_item(row) for row in c.trades],
        }
        if c.candle_deltas:
            puts["candles"] = await self._candle_items(c.candle_deltas, base, end)
        limit = asyncio.Semaphore(_PARALLEL)
        work = [self._batch_put(self.tables[table], chunk, limit)
                for table, items in puts.items() for chunk in _chunks(items, _BATCH_WRITE)]
        work += [self._update_order(row, base, end, limit) for row in c.updated_orders]
        client_column = ORDER_COLUMNS.index("client_order_id")
        work += [self._claim(row[1], row[client_column], row[0], limit)
                 for row in c.new_orders if row[client_column] is not None]
        await _gather(work)
        await self._advance_position(base, end, c.time)

    async def _batch_put(self, table: str, items: list[dict[str, Any]], limit: asyncio.Semaphore) -> None:
        db = await self._aws.client("dynamodb")
        requests: dict[str, list[dict[str, Any]]] = {table: [{"PutRequest": {"Item": item}} for item in items]}
        delay = 0.05
        async with limit:
            while requests:
                response = await db.batch_write_item(RequestItems=requests)
                requests = response.get("UnprocessedItems") or {}
                if requests:  # throttled: the rest again, after a pause
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)

    def _order_item(self, row: Sequence[Any], end: int) -> dict[str, Any]:
        item = {column: _av(value) for column, value in zip(ORDER_COLUMNS, row, strict=True) if value is not None}
        item["wpos"] = _av(end)
        status = row[ORDER_COLUMNS.index("status")]
        if status in _OPEN:
            item["open_account"] = item["account"]
            item["open_bucket"] = _ZERO
        return item

    async def _update_order(self, row: Sequence[Any], base: int, end: int, limit: asyncio.Semaphore) -> None:
        """One order's new state; its state as of ``base`` kept in ``p_`` columns (see the module docstring)."""
        db = await self._aws.client("dynamodb")
        # DynamoDB refuses names and values an expression does not use: the two updates get their own.
        names = {"#id": "id", "#wpos": "wpos"}
        values: dict[str, Any] = {":end": _av(end)}
        copy_names: dict[str, str] = {}
        copies, sets = [], []
        for i, (column, value) in enumerate(zip(ORDER_UPDATE_COLUMNS, row, strict=False)):
            names[f"#c{i}"] = column
            copy_names[f"#p{i}"] = f"p_{column}"
            values[f":v{i}"] = _av(value)
            copies.append(f"#p{i} = if_not_exists(#c{i}, :nul)")
            sets.append(f"#c{i} = :v{i}")
        sets.append("#wpos = :end")
        removes = ""
        if row[ORDER_UPDATE_COLUMNS.index("status")] in _OPEN:
            # Set again, not only kept: a replay can reopen an order an uncommitted attempt closed.
            sets += ["open_account = #acct", "open_bucket = :zero"]
            names["#acct"] = "account"
            values[":zero"] = _ZERO
        else:
            removes = " REMOVE open_account, open_bucket"
        key = {"id": _av(row[-1])}
        table = self.tables["orders"]
        async with limit:
            try:
                await db.update_item(
                    TableName=table, Key=key, ExpressionAttributeNames={**names, **copy_names},
                    ExpressionAttributeValues={**values, ":nul": _NULL, ":base": _av(base)},
                    UpdateExpression="SET " + ", ".join(copies + sets) + removes,
                    ConditionExpression="attribute_exists(#id) AND #wpos <= :base",
                )
                return
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
            # Written by an attempt that did not commit: its ``p_`` values are the state as of ``base``.
            try:
                await db.update_item(
                    TableName=table, Key=key, ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                    UpdateExpression="SET " + ", ".join(sets) + removes, ConditionExpression="attribute_exists(#id)",
                )
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise ProjectionError(f"order {row[-1]} is updated but was never stored") from exc
                raise

    async def _claim(self, account: int, client_order_id: str, order_id: int, limit: asyncio.Semaphore) -> None:
        """The client order id names ``order_id`` unless another order has it (the first keeps it)."""
        db = await self._aws.client("dynamodb")
        async with limit:
            try:
                await db.put_item(
                    TableName=self.tables["client_order_ids"],
                    Item={"account": _av(account), "client_order_id": _av(client_order_id), "order_id": _av(order_id)},
                    ConditionExpression="attribute_not_exists(order_id) OR order_id = :id",
                    ExpressionAttributeValues={":id": _av(order_id)},
                )
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                log.warning("client order id %r of account %d is already another order's; order %d keeps none",
                            client_order_id, account, order_id)

    def _fill_item(self, row: Sequence[Any]) -> dict[str, Any]:
        item = {column: _av(value) for column, value in zip(FILL_COLUMNS, row, strict=True)}
        item["fill_key"] = _av(_fill_key(row[0], row[1], row[2]))
        return item

    def _trade_item(self, row: Sequence[Any]) -> dict[str, Any]:
        item = {column: _av(value) for column, value in zip(TRADE_COLUMNS, row, strict=True)}
        item["trade_key"] = _av(_trade_key(row[0], row[1]))
        return item

    async def _candle_items(self, deltas: list[tuple[Any, ...]], base: int, end: int) -> list[dict[str, Any]]:
        """Whole candles: the stored one as of ``base`` merged with the batch's delta."""
        keys = [{"series": _av(_series(d[0], d[1])), "start": _av(d[2])} for d in deltas]
        stored = {(item["series"]["S"], int(item["start"]["N"])): item
                  for item in await self._batch_get(self.tables["candles"], keys)}
        items = []
        for delta in deltas:
            symbol, interval, start = delta[0], delta[1], delta[2]
            found = stored.get((_series(symbol, interval), start))
            before = _candle_as_of(found, base)
            values = list(delta[3:])
            if before is not None:
                values = [before[0], max(before[1], values[1]), min(before[2], values[2]), values[3],
                          before[4] + values[4], before[5] + values[5], before[6] + values[6]]
            item = {"series": _av(_series(symbol, interval)), "symbol": _av(symbol), "interval": _av(interval),
                    "start": _av(start), "wpos": _av(end),
                    "prev": _av(dict(zip(_CANDLE_VALUES, before, strict=True)) if before is not None else {})}
            item.update({column: _av(value) for column, value in zip(_CANDLE_VALUES, values, strict=True)})
            items.append(item)
        return items

    async def _advance_position(self, base: int, end: int, time_: int) -> None:
        db = await self._aws.client("dynamodb")
        try:
            await db.update_item(
                TableName=self.tables["meta"], Key={"name": _av(self._position_name)},
                UpdateExpression="SET #seq = :end, #time = :time",
                ConditionExpression="attribute_not_exists(#seq) OR #seq = :base",
                ExpressionAttributeNames={"#seq": "seq", "#time": "time"},
                ExpressionAttributeValues={":end": _av(end), ":time": _av(time_), ":base": _av(base)},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ProjectionError(f"the store's position moved from {base} while a batch was written: "
                                      "another writer is applying to these tables") from exc
            raise

    async def _read_position(self) -> int:
        db = await self._aws.client("dynamodb")
        response = await db.get_item(TableName=self.tables["meta"], Key={"name": _av(self._position_name)},
                                     ConsistentRead=True)
        item = response.get("Item")
        return int(item["seq"]["N"]) if item else 0

    # -- ProjectionSource (called by the projector inside ``apply``) ---------------------

    def load_orders(self, order_ids: Collection[int]) -> list[OrderState]:
        keys = [{"id": _av(order_id)} for order_id in order_ids]
        items = self._aws.run(self._batch_get(self.tables["orders"], keys))
        instruments = self.registry.instruments
        out = []
        for item in items:
            row = _order_row(item, self._base)
            out.append(OrderState.from_row(row, instruments.get(row[2])))
        return out

    def existing_client_order_ids(self, keys: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
        wanted = [{"account": _av(account), "client_order_id": _av(coid)} for account, coid in keys]
        items = self._aws.run(self._batch_get(self.tables["client_order_ids"], wanted))
        # A claim by an order above the base was written by an attempt that did not commit.
        return {(int(i["account"]["N"]), i["client_order_id"]["S"]) for i in items
                if int(i["order_id"]["N"]) <= self._base}

    async def _batch_get(self, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        db = await self._aws.client("dynamodb")
        unique = list({repr(sorted(k.items())): k for k in keys}.values())

        async def chunk(part: list[dict[str, Any]]) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            request: dict[str, Any] = {table: {"Keys": part, "ConsistentRead": True}}
            delay = 0.05
            while request:
                response = await db.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(table, []))
                request = response.get("UnprocessedKeys") or {}
                if request:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            return found

        parts = await asyncio.gather(*(chunk(part) for part in _chunks(unique, _BATCH_GET)))
        return [item for part in parts for item in part]

    # -- queries -----------------------------------------------------------------------------------

    def position(self) -> int:
        """The ``seq`` of the last applied record (0: none)."""
        return self._aws.run(self._read_position())

    def get_order(self, order_id: int) -> OrderView | None:
        item = self._aws.run(self._get(self.tables["orders"], {"id": _av(order_id)}))
        return order_view(_order_row(item), self.registry) if item is not None else None

    def get_order_by_client_id(self, account: int, client_order_id: str) -> OrderView | None:
        return self._aws.run(self._get_order_by_client_id(account, client_order_id))

    async def _get_order_by_client_id(self, account: int, client_order_id: str) -> OrderView | None:
        claim = await self._get(self.tables["client_order_ids"],
                                {"account": _av(account), "client_order_id": _av(client_order_id)})
        if claim is None:
            return None
        item = await self._get(self.tables["orders"], {"id": claim["order_id"]})
        if item is None or _py(item.get("client_order_id")) != client_order_id or _py(item["account"]) != account:
            return None
        return order_view(_order_row(item), self.registry)

    def list_orders(
        self, account: int, symbol: SymbolRef | None = None, status: StatusFilter = "all", limit: int = 100,
    ) -> list[OrderView]:
        """An account's orders, newest first."""
        if status not in ("open", "closed", "all"):
            raise ValueError(f"status must be open, closed or all, not {status!r}")
        # The open orders have an index of their own; "closed" filters the account's index.
        index = "open_orders" if status == "open" else "by_account"
        names = {"#k": "open_account" if status == "open" else "account"}
        values = {":a": _av(account)}
        filters = []
        if symbol is not None:
            names["#symbol"] = "symbol"
            values[":s"] = _av(self.registry.instrument(symbol).id)
            filters.append("#symbol = :s")
        if status == "closed":
            names["#status"] = "status"
            values.update({f":c{i}": _av(name) for i, name in enumerate(CLOSED_STATUSES)})
            filters.append(f"#status IN ({', '.join(f':c{i}' for i in range(len(CLOSED_STATUSES)))})")
        items = self._aws.run(self._query(
            self.tables["orders"], "#k = :a", values, _limit(limit), forward=False, index=index,
            filter_expression=" AND ".join(filters) or None, names=names))
        return [order_view(_order_row(item), self.registry) for item in items]

    def list_fills(self, account: int, symbol: SymbolRef | None = None, limit: int = 100) -> list[FillView]:
        """An account's fills, newest first."""
        values = {":a": _av(account)}
        names = {"#k": "account"}
        filter_expression = None
        if symbol is not None:
            values[":s"] = _av(self.registry.instrument(symbol).id)
            names["#symbol"] = "symbol"
            filter_expression = "#symbol = :s"
        items = self._aws.run(self._query(self.tables["fills"], "#k = :a", values, _limit(limit),
                                          forward=False, filter_expression=filter_expression, names=names))
        return [fill_view(_row(item, FILL_COLUMNS), self.registry) for item in items]

    def list_order_fills(self, account: int, order_id: int) -> list[FillView]:
        """The fills of one of ``account``'s orders, oldest first (none for another account's order)."""
        items = self._aws.run(self._query(
            self.tables["fills"], "#k = :o", {":o": _av(order_id), ":a": _av(account)}, None, forward=True,
            index="by_order", filter_expression="#account = :a", names={"#k": "order_id", "#account": "account"}))
        return [fill_view(_row(item, FILL_COLUMNS), self.registry) for item in items]

    def list_trades(self, symbol: SymbolRef, limit: int = 100) -> list[TradeView]:
        """The public tape of one instrument, newest first."""
        items = self._aws.run(self._query(self.tables["trades"], "#k = :s",
                                          {":s": _av(self.registry.instrument(symbol).id)}, _limit(limit),
                                          forward=False, names={"#k": "symbol"}))
        return [trade_view(_row(item, TRADE_COLUMNS), self.registry) for item in items]

    def iter_trades(self, symbol: SymbolRef, before_time: int | None = None, page: int = 1_000) -> Iterator[TradeView]:
        """One instrument's trades oldest first, all of them or those with ``time < before_time``."""
        symbol_id = self.registry.instrument(symbol).id
        start: dict[str, Any] | None = None
        while True:
            items, start = self._aws.run(self._page(
                self.tables["trades"], "#k = :s", {":s": _av(symbol_id)}, {"#k": "symbol"}, page, start))
            for item in items:
                view = trade_view(_row(item, TRADE_COLUMNS), self.registry)
                if before_time is not None and view.time >= before_time:
                    return  # trade times never go back along the tape
                yield view
            if start is None:
                return

    def list_candles(
        self, symbol: SymbolRef, interval: str, limit: int = 100, since: int | None = None,
    ) -> list[CandleView]:
        """Candles oldest first: the latest ``limit``, or the first ``limit`` starting at or after ``since``."""
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
        series = _av(_series(self.registry.instrument(symbol).id, interval))
        if since is None:
            items = self._aws.run(self._query(self.tables["candles"], "#k = :s", {":s": series}, _limit(limit),
                                              forward=False, names={"#k": "series"}))
            items.reverse()
        else:
            since -= since % INTERVALS[interval]  # the bucket that holds ``since``
            items = self._aws.run(self._query(self.tables["candles"], "#k = :s AND #start >= :t",
                                              {":s": series, ":t": _av(since)}, _limit(limit), forward=True,
                                              names={"#k": "series", "#start": "start"}))
        return [candle_view(_row(item, CANDLE_COLUMNS), self.registry) for item in items]

    def open_gtd_expiries(self) -> list[int]:
        """The expiry time of every open GTD order, earliest first."""
        items = self._aws.run(self._query(self.tables["orders"], "#k = :z", {":z": _ZERO, ":gtd": _av("gtd")}, None,
                                          forward=True, index="open_expiry", filter_expression="#tif = :gtd",
                                          names={"#k": "open_bucket", "#tif": "time_in_force"}))
        return [int(item["expire_time"]["N"]) for item in items]

    def balances(self, account: int) -> list[BalanceView]:
        raise NotImplementedError(
            "balances live in PostgreSQL in the aws profile (with the ledger); DynamoDB holds order and "
            "market-data history only: ask the PostgreSQL projection store"
        )

    async def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        db = await self._aws.client("dynamodb")
        response = await db.get_item(TableName=table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def _query(
        self, table: str, key_condition: str, values: dict[str, Any], limit: int | None, *, forward: bool,
        index: str | None = None, filter_expression: str | None = None, names: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Query pages until ``limit`` items pass the filter (all of them for ``limit=None``)."""
        db = await self._aws.client("dynamodb")
        kwargs: dict[str, Any] = {"TableName": table, "KeyConditionExpression": key_condition,
                                  "ExpressionAttributeValues": values, "ScanIndexForward": forward}
        if index is not None:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        if filter_expression is not None:
            kwargs["FilterExpression"] = filter_expression
        if names:
            kwargs["ExpressionAttributeNames"] = names
        items: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                # A filter drops items after DynamoDB counted them: ask for more than are missing.
                missing = limit - len(items)
                kwargs["Limit"] = missing if filter_expression is None else min(1_000, max(100, 4 * missing))
            response = await db.query(**kwargs)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None or (limit is not None and len(items) >= limit):
                return items if limit is None else items[:limit]
            kwargs["ExclusiveStartKey"] = last

    async def _page(
        self, table: str, key_condition: str, values: dict[str, Any], names: dict[str, str], limit: int,
        start: dict[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a forward query and where the next one starts (None: there is none)."""
        db = await self._aws.client("dynamodb")
        kwargs: dict[str, Any] = {"TableName": table, "KeyConditionExpression": key_condition,
                                  "ExpressionAttributeValues": values, "ExpressionAttributeNames": names,
                                  "Limit": limit, "ConsistentRead": True}
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        response = await db.query(**kwargs)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    # -- operations and tests --------------------------------------------------------------------

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every table's items as Python values, sorted (for comparing two runs)."""
        return self._aws.run(self._dump())

    async def _dump(self) -> dict[str, list[dict[str, Any]]]:
        db = await self._aws.client("dynamodb")
        out = {}
        for name, table in self.tables.items():
            items: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
            while True:
                response = await db.scan(**kwargs)
                items.extend({k: _py(v) for k, v in item.items()} for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            out[name] = sorted(items, key=lambda item: sorted((k, repr(v)) for k, v in item.items()))
        return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._aws.release()


def _row(item: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(_py(item.get(column)) for column in columns)


def _order_row(item: dict[str, Any], base: int | None = None) -> tuple[Any, ...]:
    """An order item in ``ORDER_COLUMNS`` order; as of ``base`` if a batch above it wrote the item."""
    row = dict(zip(ORDER_COLUMNS, _row(item, ORDER_COLUMNS), strict=True))
    if base is not None and int(item["wpos"]["N"]) > base:
        for column in ORDER_UPDATE_COLUMNS:
            row[column] = _py(item.get(f"p_{column}"))
    return tuple(row[column] for column in ORDER_COLUMNS)


def _candle_as_of(item: dict[str, Any] | None, base: int) -> list[int] | None:
    """A stored candle's values (``_CANDLE_VALUES``) as of ``base``; None if it did not exist then."""
    if item is None:
        return None
    if int(item["wpos"]["N"]) <= base:
        return [int(item[column]["N"]) for column in _CANDLE_VALUES]
    prev = _py(item.get("prev")) or {}
    return [prev[column] for column in _CANDLE_VALUES] if prev else None


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def _gather(work: list[Any]) -> None:
    """Run every write; if one fails, let the others finish first (then raise), so none is left in flight."""
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _implements_the_interface(store: DynamoHistoryStore) -> ProjectionStore:
    return store  # mypy checks here that DynamoHistoryStore answers every ProjectionStore query
