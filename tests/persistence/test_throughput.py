"""How fast a batch is applied: measured and printed, never asserted (see bench/ for figures)."""

from __future__ import annotations

import time
from pathlib import Path

from core.events import EventKind
from services.persistence import SqliteStore

from .streams import assert_matches_engine, random_stream
from .venue import INSTRUMENTS, Venue

BATCH = 1_000


def test_apply_rate_is_measured_and_printed(tmp_path: Path, capsys: object) -> None:
    venue = Venue()
    random_stream(venue, 30_000, seed=2026, accounts=50)
    records = venue.records
    events = sum(len(r[2]) for r in records)
    projected = sum(1 for r in records for e in r[2] if e.kind != EventKind.BOOK)
    trades = sum(1 for r in records for e in r[2] if e.kind == EventKind.TRADE)
    store = SqliteStore(tmp_path / "projection.db", INSTRUMENTS)

    started = time.perf_counter()
    for start in range(0, len(records), BATCH):
        store.apply(records[start:start + BATCH])
    elapsed = time.perf_counter() - started

    print(
        f"\napply: {len(records)} records, {events} events ({projected} not BOOK, {trades} trades) "
        f"in {elapsed:.2f}s, batches of {BATCH}: {events / elapsed:,.0f} events/s, "
        f"{projected / elapsed:,.0f} non-BOOK events/s, {len(records) / elapsed:,.0f} records/s"
    )
    assert_matches_engine(venue, store, accounts=50)
