"""Idempotence by position: replays change nothing, rebuilds give identical rows."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import EventKind
from services.persistence import ProjectionError, Record
from services.persistence.projection import Changes

from .stores import StoreFactory
from .streams import assert_matches_engine, random_stream
from .venue import AnyStore, Venue


def _stream(commands: int = 1_500, seed: int = 3) -> Venue:
    venue = Venue()
    random_stream(venue, commands, seed=seed)
    return venue


def _apply_in_batches(store: AnyStore, records: list[Record], size: int) -> None:
    for start in range(0, len(records), size):
        store.apply(records[start:start + size])


def test_replaying_applied_records_changes_nothing(open_store: StoreFactory) -> None:
    venue = _stream()
    store = open_store()
    _apply_in_batches(store, venue.records, 200)
    before = store.dump()
    assert store.apply(venue.records) == 0
    _apply_in_batches(store, venue.records, 37)
    assert store.dump() == before
    assert_matches_engine(venue, store, accounts=8)


def test_an_overlapping_replay_applies_only_the_records_past_the_position(open_store: StoreFactory) -> None:
    venue = _stream()
    records = venue.records
    straight = open_store()
    straight.apply(records)
    store = open_store()
    store.apply(records[:700])
    assert store.position() == records[699][0].seq
    assert store.apply(records[500:900]) == 200  # 500..699 again, then 200 new ones
    assert store.apply(records[850:]) == len(records) - 900
    assert store.dump() == straight.dump()
    assert_matches_engine(venue, store, accounts=8)


def test_a_rebuild_into_an_empty_database_gives_identical_rows_whatever_the_batch_sizes(
    open_store: StoreFactory,
) -> None:
    venue = _stream(2_000, seed=11)
    first = open_store("first")
    _apply_in_batches(first, venue.records, 1)
    rebuilt = open_store("rebuilt")
    rebuilt.apply(venue.records)
    odd = open_store()
    _apply_in_batches(odd, venue.records, 333)
    assert rebuilt.dump() == first.dump() == odd.dump()
    assert sum(len(rows) for rows in rebuilt.dump().values()) > 5_000


def test_a_reopened_store_continues_from_its_position(open_store: StoreFactory) -> None:
    venue = _stream()
    store = open_store("projection")
    store.apply(venue.records[:800])
    store.close()
    reopened = open_store("projection")  # an empty open-order cache: orders are read back as needed
    assert reopened.position() == venue.records[799][0].seq
    reopened.apply(venue.records[600:])
    straight = open_store()
    straight.apply(venue.records)
    assert reopened.dump() == straight.dump()
    assert_matches_engine(venue, reopened, accounts=8)


def test_a_failed_batch_leaves_the_store_as_it_was_and_can_be_retried(
    monkeypatch: pytest.MonkeyPatch, open_store: StoreFactory,
) -> None:
    venue = _stream()
    store = open_store()
    store.apply(venue.records[:500])
    before = store.dump()

    cls = type(store)
    original = cls._write

    def fail_after_writing(self: AnyStore, changes: Changes) -> None:
        original(self, changes)  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(cls, "_write", fail_after_writing)
    with pytest.raises(OSError):
        store.apply(venue.records[500:1000])
    assert store.dump() == before
    monkeypatch.undo()

    store.apply(venue.records[500:])
    straight = open_store()
    straight.apply(venue.records)
    assert store.dump() == straight.dump()


def test_a_second_writer_on_the_same_database_skips_what_the_first_applied(open_store: StoreFactory) -> None:
    venue = _stream()
    a = open_store("projection")
    b = open_store("projection")
    a.apply(venue.records[:600])
    assert b.apply(venue.records[:800]) == 200
    assert a.apply(venue.records) == len(venue.records) - 800  # a notices b moved the position
    straight = open_store()
    straight.apply(venue.records)
    assert a.dump() == straight.dump()


def test_an_event_for_an_order_the_projection_never_saw_is_an_error(open_store: StoreFactory) -> None:
    venue = _stream(300)
    store = open_store()
    records = [r for r in venue.records if not any(e.kind == EventKind.ACCEPTED for e in r[2])]
    with pytest.raises(ProjectionError):
        store.apply(records)
    assert store.position() == 0


_PROPERTY_STREAM = _stream(600, seed=5)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 250)), min_size=1, max_size=12))
def test_any_split_into_batches_with_any_overlapping_replays_gives_the_rows_of_one_straight_apply(
    open_store: StoreFactory, steps: list[tuple[int, int]],
) -> None:
    records = _PROPERTY_STREAM.records
    # Two databases for all the examples, emptied before each (the factory is the test's, not the example's).
    store = open_store("batches", fresh=True)
    applied = 0
    for back, length in steps:
        start = max(0, applied - back)  # a replay from up to ``back`` records before the position
        end = min(len(records), start + length)
        store.apply(records[start:end])
        applied = max(applied, end)
    straight = open_store("straight", fresh=True)
    straight.apply(records[:applied])
    assert store.dump() == straight.dump()
