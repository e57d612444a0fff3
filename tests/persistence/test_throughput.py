"""How fast a batch is applied: measured and printed, never asserted (see bench/persister.py for figures)."""

from __future__ import annotations

import functools
import time

from core.events import EventKind

from .stores import StoreFactory
from .streams import assert_matches_engine, random_stream
from .venue import Venue

BATCH = 1_000


@functools.cache
def _venue() -> Venue:
    """One stream for every store (made once: the engine is the same whatever the store)."""
    venue = Venue()
    random_stream(venue, 30_000, seed=2026, accounts=50)
    return venue


def test_apply_rate_is_measured_and_printed(open_store: StoreFactory, capsys: object) -> None:
    venue = _venue()
    records = venue.records
    events = sum(len(r[2]) for r in records)
    projected = sum(1 for r in records for e in r[2] if e.kind != EventKind.BOOK)
    trades = sum(1 for r in records for e in r[2] if e.kind == EventKind.TRADE)
    store = open_store("projection")

    started = time.perf_counter()
    for start in range(0, len(records), BATCH):
        store.apply(records[start:start + BATCH])
    elapsed = time.perf_counter() - started

    print(
        f"\n{open_store.kind} apply: {len(records)} records, {events} events ({projected} not BOOK, {trades} trades) "
        f"in {elapsed:.2f}s, batches of {BATCH}: {events / elapsed:,.0f} events/s, "
        f"{projected / elapsed:,.0f} non-BOOK events/s, {len(records) / elapsed:,.0f} records/s"
    )
    assert_matches_engine(venue, store, accounts=50)
