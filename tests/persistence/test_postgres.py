"""What only the PostgreSQL store has: migrations, the ledger proved at COMMIT, a server to lose.

Everything the stores share (what the rows mean, replays, queries) runs on
both stores in the other test files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from control.config import Config
from services.persistence import PostgresStore, SchemaError, SqliteStore, StoreUnavailable, migrate
from services.persistence.postgres import known_migrations
from services.persistence.projection import Changes

from .streams import assert_matches_engine, random_stream
from .venue import BTC_USD, BUY, INSTRUMENTS, SELL, Venue

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/rialto"


def _stream(commands: int = 1_500, seed: int = 3) -> Venue:
    venue = Venue()
    random_stream(venue, commands, seed=seed)
    return venue


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


# Migrations -----------------------------------------------------------------------------------


def test_migrate_creates_the_schema_on_an_empty_database_and_a_second_migrate_does_nothing(postgres_dsn: str) -> None:
    assert _tables(postgres_dsn) == set()
    assert migrate(postgres_dsn) == known_migrations() == ["0001_projections", "0002_ledger_balanced", "0003_auth",
                                                         "0004_position_per_shard"]
    tables = _tables(postgres_dsn)
    assert {"orders", "fills", "trades", "ledger", "balances", "candles", "projection_position"} <= tables
    assert {"users", "api_keys", "signing_keys", "external_identities"} <= tables
    assert migrate(postgres_dsn) == []
    store = PostgresStore(postgres_dsn, INSTRUMENTS)  # opening migrates too: nothing left to do
    assert store.position() == 0
    store.close()


def test_processes_and_threads_migrating_at_once_all_succeed_and_each_migration_applies_once(
    postgres_dsn: str,
) -> None:
    code = "import sys; from services.persistence import migrate; print(len(migrate(sys.argv[1])))"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, postgres_dsn], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        for _ in range(3)
    ]
    start = threading.Barrier(3)

    def in_thread() -> int:
        start.wait()
        return len(migrate(postgres_dsn))

    with ThreadPoolExecutor(3) as pool:
        threads = [pool.submit(in_thread) for _ in range(3)]
        applied = [f.result() for f in threads]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        applied.append(int(out))
    assert sorted(applied) == [0] * 5 + [len(known_migrations())]  # one of them did it all, in one go
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY migration_id").fetchall()
    assert [r[0] for r in rows] == known_migrations()


def test_a_database_migrated_by_newer_code_is_refused(postgres_dsn: str) -> None:
    migrate(postgres_dsn)
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc) "
            "VALUES ('future', '0099_from_the_future', now())"
        )
    with pytest.raises(SchemaError):
        migrate(postgres_dsn)
    with pytest.raises(SchemaError):
        PostgresStore(postgres_dsn, INSTRUMENTS, readonly=True)


def test_a_read_only_store_needs_the_schema_reads_what_the_writer_committed_and_cannot_write(
    postgres_dsn: str,
) -> None:
    with pytest.raises(SchemaError):
        PostgresStore(postgres_dsn, INSTRUMENTS, readonly=True)  # never migrated: nothing to read
    writer = PostgresStore(postgres_dsn, INSTRUMENTS)
    reader = PostgresStore(postgres_dsn, INSTRUMENTS, readonly=True)
    try:
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
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.query("UPDATE projection_position SET seq = 0")
    finally:
        writer.close()
        reader.close()


# The ledger, proved by the database ----------------------------------------------------------


def test_an_unbalanced_ledger_entry_written_by_hand_is_refused_at_commit(postgres_dsn: str) -> None:
    migrate(postgres_dsn)
    with psycopg.connect(postgres_dsn) as conn:
        # A balanced entry may be written one posting per statement: the check waits for COMMIT.
        conn.execute("INSERT INTO ledger VALUES (1, 0, 0, 'deposit', -1, 2, 100, 0, 1)")
        conn.execute("INSERT INTO ledger VALUES (1, 0, 1, 'deposit', 5, 2, 0, 100, 1)")
        conn.commit()

        conn.execute("INSERT INTO ledger VALUES (2, 0, 0, 'deposit', -1, 2, 100, 0, 1)")  # accepted for now
        with pytest.raises(psycopg.errors.CheckViolation) as refused:
            conn.commit()
        assert refused.value.diag.constraint_name == "ledger_entry_balanced"
        assert "unbalanced ledger entry 2.0" in str(refused.value)

        for tamper in (
            "UPDATE ledger SET credit = 99 WHERE seq = 1 AND leg = 1",  # a posting changed
            "DELETE FROM ledger WHERE seq = 1 AND leg = 1",  # a posting removed
            "UPDATE ledger SET seq = 3 WHERE seq = 1 AND leg = 1",  # a posting moved to another entry
            "INSERT INTO ledger VALUES (1, 0, 2, 'fee', 5, 2, 1, 0, 1)",  # a posting added to a settled entry
            "UPDATE ledger SET asset = 3 WHERE seq = 1 AND leg = 1",  # balanced in total, not per asset
        ):
            conn.execute(tamper)
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.commit()
        # Checked early (SET CONSTRAINTS ... IMMEDIATE), then changed: checked again.
        conn.execute("INSERT INTO ledger VALUES (4, 0, 0, 'deposit', -1, 2, 100, 0, 1), (4, 0, 1, 'deposit', 5, 2, 0, 100, 1)")
        conn.execute("SET CONSTRAINTS ledger_entry_balanced IMMEDIATE")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE ledger SET credit = 99 WHERE seq = 4 AND leg = 1")
        conn.rollback()
        assert conn.execute("SELECT seq, leg, debit, credit FROM ledger ORDER BY seq, leg").fetchall() == [
            (1, 0, 100, 0), (1, 1, 0, 100),
        ]


def test_a_batch_with_an_unbalanced_entry_is_not_applied(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = _stream(600)
    store = PostgresStore(postgres_dsn, INSTRUMENTS)
    try:
        store.apply(venue.records[:300])
        before = store.dump()
        original = PostgresStore._write

        def write_one_posting_short(self: PostgresStore, changes: Changes) -> None:
            seq, idx, leg, kind, account, asset, debit, credit, time = changes.ledger[-1]
            changes.ledger[-1] = (seq, idx, leg, kind, account, asset, debit, credit - 1 if credit else 0, time)
            original(self, changes)

        monkeypatch.setattr(PostgresStore, "_write", write_one_posting_short)
        with pytest.raises(psycopg.errors.CheckViolation):
            store.apply(venue.records[300:])
        assert store.dump() == before
        monkeypatch.undo()
        store.apply(venue.records[300:])
        assert store.check_ledger() == []
        assert_matches_engine(venue, store, accounts=8)
    finally:
        store.close()


# Replays and rebuilds ----------------------------------------------------------------------


def test_replaying_a_batch_and_then_the_whole_stream_changes_nothing(postgres_dsn: str) -> None:
    venue = _stream()
    records = venue.records
    store = PostgresStore(postgres_dsn, INSTRUMENTS)
    try:
        for start in range(0, len(records), 500):
            store.apply(records[start:start + 500])
        before = store.dump()
        assert store.apply(records[500:1000]) == 0  # one batch again
        assert store.apply(records) == 0  # everything again
        store.close()
        store = PostgresStore(postgres_dsn, INSTRUMENTS)  # and by a restarted writer, with nothing cached
        assert store.apply(records) == 0
        assert store.dump() == before
        assert_matches_engine(venue, store, accounts=8)
    finally:
        store.close()


def test_a_rebuild_into_empty_postgresql_and_sqlite_databases_gives_identical_rows(
    postgres_dsn: str, tmp_path: Path,
) -> None:
    venue = _stream(4_000, seed=2026)
    postgres = PostgresStore(postgres_dsn, INSTRUMENTS)
    sqlite = SqliteStore(tmp_path / "projection.db", INSTRUMENTS)
    try:
        for start in range(0, len(venue.records), 700):
            postgres.apply(venue.records[start:start + 700])
            sqlite.apply(venue.records[start:start + 700])
        rows = postgres.dump()
        assert rows == sqlite.dump()
        assert all(rows[table] for table in rows)  # every table has rows to compare
        assert sum(len(r) for r in rows.values()) > 10_000
        assert postgres.check_ledger() == [] and postgres.check_holds() == []
    finally:
        postgres.close()
        sqlite.close()


def test_two_writers_applying_overlapping_batches_at_once_give_the_rows_of_one(postgres_dsn: str) -> None:
    venue = _stream()
    records = venue.records
    writers = [PostgresStore(postgres_dsn, INSTRUMENTS) for _ in range(2)]
    start = threading.Barrier(2)

    def follow(store: PostgresStore) -> int:
        start.wait()
        return sum(store.apply(records[i:i + 100]) for i in range(0, len(records), 100))

    try:
        with ThreadPoolExecutor(2) as pool:
            applied = list(pool.map(follow, writers))
        assert sum(applied) == len(records)  # each record applied by exactly one of them
        assert_matches_engine(venue, writers[0], accounts=8)
        assert writers[0].check_ledger() == []
    finally:
        for store in writers:
            store.close()


# A server to lose ----------------------------------------------------------------------------


def test_an_unreachable_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        migrate(UNREACHABLE, timeout=2)
    with pytest.raises(StoreUnavailable):
        PostgresStore(UNREACHABLE, INSTRUMENTS, timeout=2)
    with pytest.raises(StoreUnavailable):
        PostgresStore(UNREACHABLE, INSTRUMENTS, readonly=True, timeout=2)


def test_connections_the_server_dropped_are_replaced_without_a_failed_call(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn, INSTRUMENTS)
    try:
        venue = _stream(300)
        store.apply(venue.records[:150])
        database = postgres_dsn.rsplit("/", 1)[1]
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        assert store.position() == venue.records[149][0].seq
        store.apply(venue.records[150:])
        assert_matches_engine(venue, store, accounts=8)
    finally:
        store.close()


def test_each_engine_shard_has_its_own_position_so_neither_skips_the_others_records(postgres_dsn: str) -> None:
    from core.commands import deposit
    from services.matcher.shard import SHARD_BITS

    instruments = Config().build_instruments()
    first = PostgresStore(postgres_dsn, instruments, shard=0)
    second = PostgresStore(postgres_dsn, instruments, shard=1)
    try:
        later = 1 << SHARD_BITS
        assert second.apply([(deposit(later + 1, 10, 7, 3, 500), None, [])]) == 1
        # Shard 0's seqs are far below shard 1's: still applied, at shard 0's own position.
        assert first.apply([(deposit(1, 11, 7, 3, 200), None, [])]) == 1
        assert (first.position(), second.position()) == (1, later + 1)
        assert first.apply([(deposit(1, 11, 7, 3, 200), None, [])]) == 0  # a replay changes nothing
    finally:
        first.close()
        second.close()


def test_a_server_back_without_its_last_commits_is_caught_up_from_the_log(postgres_dsn: str, tmp_path: Path) -> None:
    """PostgreSQL commits batches asynchronously: a crash may lose the last ones. The projection follower
    notices the stored position went back and reads the log again from there; nothing is left out."""
    import asyncio

    from servers import POSTGRES_ADMIN_DSN, drop_database

    from control.projector import ProjectionFollower
    from core import commands as cmd
    from services.log.journal import Journal
    from services.matcher.records import Outcome, encode_outcome

    venue = _stream(280)
    assert len(venue.records) == 304
    for n in range(296):  # the part the crash loses: deposits, which nothing after them names
        venue.run(cmd.deposit, 1 + n % 8, 2, 1_000_000 + n)
    random_stream(venue, 300, seed=11)
    records = venue.records
    database = postgres_dsn.rsplit("/", 1)[1]
    earlier = f"{database}_earlier"

    def admin(sql: str) -> None:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname IN (%s, %s) AND pid <> pg_backend_pid()", (database, earlier))
            conn.execute(sql)

    # The database as it will come back: with only the first 304 records (the random part).
    admin(f'CREATE DATABASE "{earlier}"')
    first_part = PostgresStore(postgres_dsn.rsplit("/", 1)[0] + f"/{earlier}", INSTRUMENTS)
    first_part.apply(records[:304])
    first_part.close()

    journal = Journal(tmp_path / "events")
    encoded = [encode_outcome(Outcome(0, c, coid, events)) for c, coid, events in records]
    journal.append_sync(encoded[:600])
    follower = ProjectionFollower(journal, lambda: PostgresStore(postgres_dsn, INSTRUMENTS), batch=100)

    async def follow(until: int) -> None:
        task = asyncio.create_task(follower.run())
        try:
            while follower.applied < until:
                await asyncio.sleep(0.01)
        finally:
            task.cancel()

    try:
        follower.open_sync()
        asyncio.run(follow(records[599][0].seq))
        # The server "restarts" without the batches after record 300: the database is swapped for the
        # earlier copy under the follower's connection pool.
        admin(f'ALTER DATABASE "{database}" RENAME TO "{database}_lost"')
        admin(f'ALTER DATABASE "{earlier}" RENAME TO "{database}"')
        journal.append_sync(encoded[600:])
        journal_end = records[-1][0].seq
        asyncio.run(asyncio.wait_for(follow(journal_end), 30))
        assert follower.rewinds == 1
        store = PostgresStore(postgres_dsn, INSTRUMENTS, readonly=True)
        try:
            assert store.position() == journal_end
            assert_matches_engine(venue, store, accounts=8)
            assert store.check_ledger() == [] and store.check_holds() == []
        finally:
            store.close()
    finally:
        asyncio.run(follower.close())
        journal.close()
        drop_database(postgres_dsn.rsplit("/", 1)[0] + f"/{database}_lost")
