"""The SQLite file: schema created and versioned on open, WAL, readers beside the writer.

PostgreSQL's schema (migrations, read-only stores) is tested in test_postgres.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.persistence import SchemaError, SqliteStore
from services.persistence.sqlite import SCHEMA_VERSION, TABLES

from .venue import BTC_USD, BUY, INSTRUMENTS, SELL, AnyStore, Venue


def test_opening_a_new_file_creates_the_schema_at_the_current_version_in_wal_mode(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "p.db", INSTRUMENTS)
    db = store.connection
    assert store.schema_version() == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(TABLES) | {"schema_version"} <= names
    assert store.position() == 0


def test_reopening_keeps_the_data_and_the_version(tmp_path: Path) -> None:
    venue = Venue()
    venue.fund(1)
    store = SqliteStore(tmp_path / "p.db", INSTRUMENTS)
    venue.sync(store)
    store.close()
    again = SqliteStore(tmp_path / "p.db", INSTRUMENTS)
    assert again.schema_version() == SCHEMA_VERSION
    assert again.position() == venue.seq
    assert [b.asset for b in again.balances(1)] == ["BTC", "USD", "ETH"]


def test_a_file_of_an_older_version_is_migrated_on_open_and_keeps_its_rows(tmp_path: Path) -> None:
    venue = Venue()
    venue.fund(1)
    store = SqliteStore(tmp_path / "p.db", INSTRUMENTS)
    venue.sync(store)
    store.close()
    with sqlite3.connect(tmp_path / "p.db") as db:  # as version 1 left it
        db.execute("DROP INDEX fills_by_order")
        db.execute("UPDATE schema_version SET version = 1")
    with pytest.raises(SchemaError):
        SqliteStore(tmp_path / "p.db", INSTRUMENTS, readonly=True)  # a reader does not migrate
    again = SqliteStore(tmp_path / "p.db", INSTRUMENTS)
    assert again.schema_version() == SCHEMA_VERSION == 2
    indexes = {row[0] for row in again.connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "fills_by_order" in indexes
    assert again.position() == venue.seq


def test_a_file_from_newer_code_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "p.db", INSTRUMENTS).close()
    with sqlite3.connect(tmp_path / "p.db") as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaError):
        SqliteStore(tmp_path / "p.db", INSTRUMENTS)


def test_a_read_only_store_sees_what_the_writer_committed_and_cannot_apply(tmp_path: Path) -> None:
    writer = SqliteStore(tmp_path / "p.db", INSTRUMENTS)
    reader = SqliteStore(tmp_path / "p.db", INSTRUMENTS, readonly=True)
    venue = Venue()
    venue.fund(1)
    venue.fund(2)
    venue.order(1, BTC_USD, SELL, "0.1", "50000")
    venue.order(2, BTC_USD, BUY, "0.1", "50000")
    venue.sync(writer)
    assert reader.position() == venue.seq
    assert [t.price for t in reader.list_trades("BTC-USD")] == ["50000.00"]
    with pytest.raises(PermissionError):
        reader.apply(venue.records)


def test_a_read_only_store_refuses_a_file_without_the_schema(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(SchemaError):
        SqliteStore(tmp_path / "empty.db", INSTRUMENTS, readonly=True)


def test_queries_refuse_an_unknown_symbol_interval_or_status(store: AnyStore) -> None:
    with pytest.raises(LookupError):
        store.list_trades("DOGE-USD")
    with pytest.raises(ValueError):
        store.list_candles("BTC-USD", "2m")
    with pytest.raises(ValueError):
        store.list_orders(1, status="pending")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.list_trades("BTC-USD", limit=0)
