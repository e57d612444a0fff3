"""The projection follower (control.projector): where it starts and where it resumes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from control.projector import ProjectionFollower
from services.log.journal import Journal
from services.matcher.records import Outcome, encode_outcome
from services.persistence import SqliteStore

from .streams import assert_matches_engine, random_stream
from .venue import INSTRUMENTS, Venue


def _follow_to_the_end(follower: ProjectionFollower, last_seq: int) -> None:
    async def follow() -> None:
        task = asyncio.create_task(follower.run())
        try:
            while follower.applied < last_seq:
                await asyncio.sleep(0.01)
        finally:
            task.cancel()

    asyncio.run(asyncio.wait_for(follow(), 30))


def _journal_of(venue: Venue, path: Path) -> Journal:
    journal = Journal(path)
    journal.append_sync([encode_outcome(Outcome(0, c, coid, events)) for c, coid, events in venue.records])
    return journal


def _stored_up_to(stored: int, tmp_path: Path, seed: int) -> Venue:
    """A venue's 600 records, of which the store has the first ``stored``."""
    venue = Venue()
    random_stream(venue, 576, seed=seed)
    store = SqliteStore(tmp_path / "projection.db", INSTRUMENTS)
    store.apply(venue.records[:stored])
    store.close()
    return venue


def _follow_from_checkpoint(venue: Venue, checkpoint: int, tmp_path: Path) -> ProjectionFollower:
    """Follow the venue's event log to its end, given a checkpoint at record ``checkpoint``."""
    records = venue.records
    journal = _journal_of(venue, tmp_path / "events")
    follower = ProjectionFollower(journal, lambda: SqliteStore(tmp_path / "projection.db", INSTRUMENTS),
                                  resume_position=lambda: (checkpoint, records[checkpoint - 1][0].seq))
    try:
        follower.open_sync()
        _follow_to_the_end(follower, records[-1][0].seq)
    finally:
        asyncio.run(follower.close())
        journal.close()
    return follower


def _check_projection(venue: Venue, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "projection.db", INSTRUMENTS)
    try:
        assert_matches_engine(venue, store, accounts=8)
    finally:
        store.close()


def test_a_checkpoint_ahead_of_the_store_is_not_trusted(tmp_path: Path) -> None:
    """The checkpoint beside the store says 400 was applied, the store (which lost commits) has 300: the
    follower starts after 300, so records 301..400 are not left out."""
    venue = _stored_up_to(300, tmp_path, seed=7)
    _follow_from_checkpoint(venue, 400, tmp_path)
    _check_projection(venue, tmp_path)


def test_a_checkpoint_behind_the_store_is_where_reading_resumes(tmp_path: Path) -> None:
    venue = _stored_up_to(300, tmp_path, seed=8)
    follower = _follow_from_checkpoint(venue, 250, tmp_path)
    assert follower.records_applied == len(venue.records) - 250  # it re-read 251..300, which the store skipped
    _check_projection(venue, tmp_path)
