"""The cold archive: trades older than a configurable age as Parquet files in S3.

Layout (Hive-style partitions, so Athena, DuckDB and Spark prune by symbol
and day without reading the files)::

    <prefix>/trades/symbol=<SYMBOL>/date=<YYYY-MM-DD>/part-<first_seq>-<last_seq>.parquet

One file per (symbol, UTC day) per archiving run, holding that partition's
trades in tape order. The columns (explicit schema, ``SCHEMA``)::

    seq int64, index int32        the trade's position on the tape (seq, index)
    symbol string
    price string, quantity string the API's decimal strings (never a float)
    price_ticks int64,            the same numbers as the engine's integers
    quantity_lots int64
    aggressor_side string         "buy" or "sell"
    time int64                    nanoseconds since the Unix epoch (the command's time)

Idempotence: a file's name is its seq range, so running the same archive
again writes the same key with the same bytes; and each run starts after
the greatest ``last_seq`` already archived for the symbol (read from the
names), so a later run with a later cutoff never writes a trade twice,
even though the live store still holds everything. All trades of one seq
(one command) have the same time, so a cutoff never splits them.

Out of scope here: deleting archived trades from the live store (DynamoDB
TTL on the trades table, or a sweeper that deletes by key up to the
archived ``last_seq``). Until that exists the archive is a copy.

Choosing what to archive: ``trades_to_archive(store, symbols, cutoff)``
takes them from a projection store, oldest first: through
``iter_trades`` where the store has it (``DynamoHistoryStore`` pages the
whole tape), else from ``list_trades``, which only reaches a store's newest
10,000 trades per symbol.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.instrument import Instrument
from services.aws import AwsLoop, AwsSettings, ensure_bucket
from services.persistence.store import Registry, SymbolRef, TradeView
from services.persistence.views import trade_view

__all__ = ["SCHEMA", "ArchivedPart", "TradeArchive", "cutoff", "trades_to_archive"]

log = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 10**9
SCHEMA = pa.schema([
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("index", pa.int32(), nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("price", pa.string(), nullable=False),
    pa.field("quantity", pa.string(), nullable=False),
    pa.field("price_ticks", pa.int64(), nullable=False),
    pa.field("quantity_lots", pa.int64(), nullable=False),
    pa.field("aggressor_side", pa.string(), nullable=False),
    pa.field("time", pa.int64(), nullable=False),
])
_PART = re.compile(r"/trades/symbol=(?P<symbol>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/"
                   r"part-(?P<first>\d+)-(?P<last>\d+)\.parquet$")

@dataclass(frozen=True)
class ArchivedPart:
    key: str
    symbol: str
    date: str
    first_seq: int
    last_seq: int
    trades: int = 0
    """How many trades the part holds (0 when only listed, not written by this run)."""


def cutoff(now_ns: int, age_days: float) -> int:
    """The time before which trades are old enough to archive (``time < cutoff``)."""
    return now_ns - int(age_days * NS_PER_DAY)


def trades_to_archive(store: Any, symbols: Iterable[SymbolRef], older_than_ns: int) -> Iterator[TradeView]:
    """The trades of ``symbols`` with ``time < older_than_ns``, oldest first, from a projection store."""
    for symbol in symbols:
        iter_trades = getattr(store, "iter_trades", None)
        if iter_trades is not None:
            yield from iter_trades(symbol, before_time=older_than_ns)
            continue
        newest = store.list_trades(symbol, limit=10_000)
        if len(newest) == 10_000:
            log.warning("%s: only the newest 10,000 trades of %s are reachable through list_trades",
                        type(store).__name__, symbol)
        yield from (t for t in reversed(newest) if t.time < older_than_ns)


class TradeArchive:
    """Writes and lists the trade archive under ``<prefix>/trades/`` in the settings' bucket."""

    def __init__(
        self, settings: AwsSettings, instruments: Iterable[Instrument], prefix: str | None = None, *,
        aws: AwsLoop | None = None, compression: str = "zstd",
    ) -> None:
        self.settings = settings
        self.registry = Registry(instruments)
        self.bucket = settings.bucket
        self.prefix = (prefix if prefix is not None else settings.archive_prefix).strip("/")
        self.compression = compression
        self._aws = AwsLoop.share(settings, aws)
        self._closed = False

    def key(self, symbol: str, date: str, first_seq: int, last_seq: int) -> str:
        return f"{self.prefix}/trades/symbol={symbol}/date={date}/part-{first_seq}-{last_seq}.parquet"

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist."""
        self._aws.run(self._ensure_bucket())

    async def _ensure_bucket(self) -> None:
        await ensure_bucket(await self._aws.client("s3"), self.settings)

    # -- writing ------------------------------------------------------------------------------

    def archive(self, trades: Iterable[TradeView | Sequence[Any]], older_than_ns: int) -> list[ArchivedPart]:
        """Write the trades with ``time < older_than_ns`` not archived yet; return the parts written.

        ``trades``: ``TradeView``s or rows in ``TRADE_COLUMNS`` order, in any order.
        """
        archived = {symbol: max(p.last_seq for p in parts) for symbol, parts in self._by_symbol().items()}
        groups: dict[tuple[str, str], list[TradeView]] = {}
        for trade in trades:
            view = trade if isinstance(trade, TradeView) else trade_view(trade, self.registry)
            if view.time >= older_than_ns or view.seq <= archived.get(view.symbol, 0):
                continue
            groups.setdefault((view.symbol, _date(view.time)), []).append(view)
        written = []
        # In tape order per symbol: a run cut short leaves a prefix, and the next one starts after it.
        for (symbol, date), views in sorted(groups.items(), key=lambda g: (g[0][0], min(v.seq for v in g[1]))):
            views.sort(key=lambda v: (v.seq, v.index))
            part = ArchivedPart(self.key(symbol, date, views[0].seq, views[-1].seq), symbol, date,
                                views[0].seq, views[-1].seq, len(views))
            self._aws.run(self._put(part.key, self._parquet(views)))
            written.append(part)
        return written

    def _parquet(self, views: list[TradeView]) -> bytes:
        instrument = self.registry.instrument(views[0].symbol)
        columns = {
            "seq": [v.seq for v in views],
            "index": [v.index for v in views],
            "symbol": [v.symbol for v in views],
            "price": [v.price for v in views],
            "quantity": [v.quantity for v in views],
            "price_ticks": [instrument.price_to_ticks(v.price) for v in views],
            "quantity_lots": [instrument.quantity_to_lots(v.quantity) for v in views],
            "aggressor_side": [v.aggressor_side for v in views],
            "time": [v.time for v in views],
        }
        table = pa.Table.from_pydict(columns, schema=SCHEMA)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression=self.compression)
        return buffer.getvalue()

    async def _put(self, key: str, body: bytes) -> None:
        s3 = await self._aws.client("s3")
        await s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet")

    # -- reading ----------------------------------------------------------------------------------

    def parts(self, symbol: str | None = None) -> list[ArchivedPart]:
        """The archive's files (of one symbol, or all), in (symbol, first seq) order."""
        return self._aws.run(self._parts(symbol))

    def archived_through(self, symbol: str) -> int:
        """The greatest seq archived for ``symbol`` (0: none)."""
        return max((p.last_seq for p in self.parts(symbol)), default=0)

    def read(self, part: ArchivedPart) -> pa.Table:
        """One part's trades as an Arrow table."""
        return pq.read_table(io.BytesIO(self._aws.run(self._get(part.key))))

    def _by_symbol(self) -> dict[str, list[ArchivedPart]]:
        out: dict[str, list[ArchivedPart]] = {}
        for part in self.parts():
            out.setdefault(part.symbol, []).append(part)
        return out

    async def _parts(self, symbol: str | None) -> list[ArchivedPart]:
        s3 = await self._aws.client("s3")
        prefix = f"{self.prefix}/trades/" + (f"symbol={symbol}/" if symbol is not None else "")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        found = []
        while True:
            response = await s3.list_objects_v2(**kwargs)
            for item in response.get("Contents", []):
                match = _PART.search(item["Key"])
                if match and item["Key"].startswith(f"{self.prefix}/trades/"):
                    found.append(ArchivedPart(item["Key"], match["symbol"], match["date"], int(match["first"]),
                                              int(match["last"])))
            if not response.get("IsTruncated"):
                return sorted(found, key=lambda p: (p.symbol, p.first_seq))
            kwargs["ContinuationToken"] = response["NextContinuationToken"]

    async def _get(self, key: str) -> bytes:
        s3 = await self._aws.client("s3")
        response = await s3.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._aws.release()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _date(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns // 10**9, UTC).strftime("%Y-%m-%d")
