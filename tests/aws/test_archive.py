"""The Parquet trade archive in S3 (services.persistence.archive), read back with pyarrow and DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from persistence.venue import BTC_USD, BUY, ETH_USD, HOUR, INSTRUMENTS, MINUTE, SELL, T0, Venue

from services.aws import AwsSettings
from services.persistence import SqliteStore, TradeView
from services.persistence.archive import SCHEMA, TradeArchive, cutoff, trades_to_archive
from services.persistence.dynamodb import DynamoHistoryStore

from .helpers import with_client

DAY = 24 * HOUR
START = T0 - 2 * DAY + 22 * HOUR  # 2025-12-30 22:00 UTC; trades from 12-31 03:07 on cross two midnights


def three_days_of_trades() -> Venue:
    """Trades in both instruments every five hours or so, one command sweeping two levels (two trades)."""
    venue = Venue(start=START)
    for account in (1, 2, 3):
        venue.fund(account)
    for step in range(14):
        venue.at(venue.time + 5 * HOUR + 7 * MINUTE)
        price = str(50_000 + 10 * step)
        venue.order(1, BTC_USD, SELL, "0.01", price)
        venue.order(2, BTC_USD, BUY, "0.01", price)
        if step % 2:
            venue.order(1, ETH_USD, SELL, "0.5", "2000.00")
            venue.order(3, ETH_USD, SELL, "0.25", "2000.50")
            venue.order(2, ETH_USD, BUY, "0.75", "2001.00")  # takes both: one seq, two trades
    return venue


@pytest.fixture(scope="module")
def venue() -> Venue:
    return three_days_of_trades()


@pytest.fixture
def history(aws_settings: AwsSettings, venue: Venue) -> Iterator[DynamoHistoryStore]:
    store = DynamoHistoryStore(aws_settings, INSTRUMENTS)
    store.ensure_tables()
    store.apply(venue.records)
    yield store
    store.close()


@pytest.fixture
def archive(aws_settings: AwsSettings) -> Iterator[TradeArchive]:
    a = TradeArchive(aws_settings, INSTRUMENTS)
    a.ensure_bucket()
    yield a
    a.close()


def all_trades(store: Any) -> list[TradeView]:
    return [t for i in INSTRUMENTS for t in reversed(store.list_trades(i.symbol, 10_000))]


def download(settings: AwsSettings, keys: list[str], into: Path) -> None:
    async def use(client: Any) -> None:
        for key in keys:
            response = await client.get_object(Bucket=settings.bucket, Key=key)
            async with response["Body"] as stream:
                (into / key).parent.mkdir(parents=True, exist_ok=True)
                (into / key).write_bytes(await stream.read())

    with_client(settings, "s3", use)


def test_old_trades_go_to_one_parquet_file_per_symbol_and_day_and_read_back_unchanged(
        aws_settings: AwsSettings, history: DynamoHistoryStore, archive: TradeArchive, tmp_path: Path) -> None:
    now = START + 3 * DAY + 12 * HOUR
    older_than = cutoff(now, 1.5)  # 2026-01-01 22:00
    parts = archive.archive(trades_to_archive(history, ["BTC-USD", "ETH-USD"], older_than), older_than)
    originals = [t for t in all_trades(history) if t.time < older_than]
    assert sum(p.trades for p in parts) == len(originals) > 10
    assert sorted({(p.symbol, p.date) for p in parts}) == [
        (s, d) for s in ("BTC-USD", "ETH-USD") for d in ("2025-12-31", "2026-01-01")]
    assert all(p.key == f"archive/trades/symbol={p.symbol}/date={p.date}/part-{p.first_seq}-{p.last_seq}.parquet"
               for p in parts)
    assert any(t.index == 1 for t in originals)  # the sweep's second trade is there too
    read_back: list[TradeView] = []
    for part in parts:
        table = archive.read(part)
        assert table.schema.equals(SCHEMA)
        rows = table.to_pylist()
        instrument = {i.symbol: i for i in INSTRUMENTS}[part.symbol]
        for row in rows:
            assert row["price_ticks"] == instrument.price_to_ticks(row["price"])
            assert row["quantity_lots"] == instrument.quantity_to_lots(row["quantity"])
        read_back += [TradeView(r["seq"], r["index"], r["symbol"], r["price"], r["quantity"], r["aggressor_side"],
                                r["time"]) for r in rows]
    assert sorted(read_back, key=lambda t: (t.symbol, t.seq, t.index)) == sorted(
        originals, key=lambda t: (t.symbol, t.seq, t.index))
    # As Athena would see it: partitions from the path, the columns from the files.
    download(aws_settings, [p.key for p in parts], tmp_path)
    pattern = str(tmp_path / "archive" / "trades" / "*" / "*" / "*.parquet")
    by_day = duckdb.execute(
        f"SELECT date, count(*), sum(quantity_lots), min(seq), max(seq) FROM read_parquet('{pattern}', "
        "hive_partitioning = true) WHERE symbol = 'BTC-USD' GROUP BY date ORDER BY date").fetchall()
    expected: dict[str, list[TradeView]] = {}
    for t in originals:
        if t.symbol == "BTC-USD":
            expected.setdefault(datetime.fromtimestamp(t.time // 10**9, UTC).date().isoformat(), []).append(t)
    assert [(str(d), n, lots, lo, hi) for d, n, lots, lo, hi in by_day] == [
        (d, len(ts), sum(BTC_USD.quantity_to_lots(t.quantity) for t in ts), ts[0].seq, ts[-1].seq)
        for d, ts in sorted(expected.items())]


def test_archiving_again_writes_nothing_twice(history: DynamoHistoryStore, archive: TradeArchive) -> None:
    symbols = ["BTC-USD", "ETH-USD"]
    first_cut = START + DAY + 6 * HOUR
    first = archive.archive(trades_to_archive(history, symbols, first_cut), first_cut)
    assert first and archive.archive(trades_to_archive(history, symbols, first_cut), first_cut) == []
    later_cut = START + 3 * DAY
    later = archive.archive(trades_to_archive(history, symbols, later_cut), later_cut)
    assert later and all(p.first_seq > archive_last(first, p.symbol) for p in later)
    archived = [row for part in archive.parts() for row in archive.read(part).to_pylist()]
    keys = [(r["symbol"], r["seq"], r["index"]) for r in archived]
    assert len(keys) == len(set(keys)) == len([t for t in all_trades(history) if t.time < later_cut])
    assert archive.archived_through("BTC-USD") == max(p.last_seq for p in later if p.symbol == "BTC-USD")


def archive_last(parts: list[Any], symbol: str) -> int:
    return max(p.last_seq for p in parts if p.symbol == symbol)


def test_trades_come_the_same_from_any_projection_store_and_as_rows(
        history: DynamoHistoryStore, venue: Venue, archive: TradeArchive) -> None:
    sqlite = SqliteStore(":memory:", INSTRUMENTS)
    sqlite.apply(venue.records)
    older_than = START + 2 * DAY
    from_dynamo = list(trades_to_archive(history, ["BTC-USD", ETH_USD.id], older_than))
    from_sqlite = list(trades_to_archive(sqlite, ["BTC-USD", ETH_USD.id], older_than))
    assert from_dynamo == from_sqlite and len(from_dynamo) > 5
    assert list(history.iter_trades("ETH-USD", page=3)) == list(reversed(history.list_trades("ETH-USD", 1_000)))
    rows = list(sqlite.connection.execute("SELECT seq, idx, symbol, price, quantity, aggressor_side, time FROM trades"))
    parts = archive.archive(rows, older_than)
    assert sum(p.trades for p in parts) == len(from_sqlite)
    table = pa.concat_tables(archive.read(p) for p in parts)
    assert sorted(table.column("seq").to_pylist()) == sorted(t.seq for t in from_sqlite)
