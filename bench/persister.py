"""Does the persister keep up with the engine? Projection apply rates on the engine benchmark's stream.

    python -m bench.persister [--commands N] [--seed S] [--batch B] [--admin-dsn DSN]
                              [--no-sqlite] [--verify]

1. The workload of ``bench.engine`` (``bench.workload``: set-up, then N
   commands of the mixed flow) goes through the rust engine, one ``submit``
   per command as the shard calls it; the records are ``(command, None,
   events)``, what the shard hands the event log. The engine's own rate on
   this stream is timed here too: ``submit`` (one Python call per command,
   events as tuples, the shard's path) and ``submit_batch`` (NumPy in and out).
2. ``PostgresStore.apply`` in batches of ``--batch`` (2,000: the projection
   follower's batch) into a fresh database (created on the server of
   ``--admin-dsn``, dropped at the end); then ``SqliteStore.apply`` the same
   way into a fresh file (WAL, ``synchronous=NORMAL``, as the embedded profile
   runs it). The set-up's records are applied first, untimed: the book and
   the open-order cache are in their steady state when the clock starts.
3. The figures: records/s and events/s of each store (events counts every
   event, BOOK included, as the engine's figures do; "projected" leaves BOOK
   out, the projection ignores it) next to the engine's commands/s, and the
   ratio that says whether the persister keeps up.

Batches are applied back to back: this is the rate of a projector catching up
on a backlog (after a restart, or behind a burst), the most it can absorb.
``--verify`` then compares every row of the two stores and checks the ledger
and the holds (slow on big streams).
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import workload as wl
from core.batch import commands_to_array
from core.engine import open_engine
from core.events import EventKind
from services.persistence import PostgresStore, Record, SqliteStore
from services.persistence.store import ProjectionStore

ADMIN_DSN = os.environ.get("RIALTO_BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
BATCH = 2_000


@dataclass
class Stream:
    setup: list[Record]
    records: list[Record]
    events: int
    projected: int
    """Events other than BOOK (what the projection writes rows for)."""
    trades: int
    engine_submit_rate: float
    engine_batch_rate: float


@dataclass
class Rate:
    store: str
    seconds: float
    batches: list[float]
    records: int
    events: int
    projected: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def projected_per_s(self) -> float:
        return self.projected / self.seconds

    def batch_ms(self, q: float) -> float:
        ordered = sorted(self.batches)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_stream(n: int, seed: int) -> Stream:
    """The workload through the rust engine, as records; the engine's own rates on it."""
    workload = wl.build(n, seed)
    engine = open_engine("rust", workload.instruments)
    submit = engine.submit
    setup: list[Record] = [(command, None, submit(command)) for command in workload.setup]
    commands = workload.commands
    records: list[Record] = [(command, None, submit(command)) for command in commands]
    if engine.state_hash() != workload.stats.state_hash:
        raise SystemExit("the rust engine's state differs from the reference's: build it again (make build)")

    # The engine's rates as bench.engine measures them: a fresh engine past the set-up, events
    # dropped as they come (keeping half a million event tuples alive would time the garbage collector).
    setup_array = commands_to_array(workload.setup)
    engine = open_engine("rust", workload.instruments)
    engine.submit_batch(setup_array)
    submit = engine.submit
    gc.collect()
    started = time.perf_counter()
    for command in commands:
        submit(command)
    submit_seconds = time.perf_counter() - started
    engine = open_engine("rust", workload.instruments)
    engine.submit_batch(setup_array)
    array = commands_to_array(commands)
    gc.collect()
    started = time.perf_counter()
    engine.submit_batch(array)
    batch_seconds = time.perf_counter() - started

    book = int(EventKind.BOOK)
    trade = int(EventKind.TRADE)
    events = sum(len(r[2]) for r in records)
    projected = sum(1 for r in records for event in r[2] if event[0] != book)
    trades = sum(1 for r in records for event in r[2] if event[0] == trade)
    return Stream(setup, records, events, projected, trades, len(commands) / submit_seconds,
                  len(commands) / batch_seconds)


def time_apply(name: str, store: ProjectionStore, stream: Stream, batch: int) -> Rate:
    for start in range(0, len(stream.setup), batch):
        store.apply(stream.setup[start:start + batch])
    records = stream.records
    durations = []
    gc.collect()
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        t0 = time.perf_counter()
        store.apply(records[start:start + batch])
        durations.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    return Rate(name, seconds, durations, len(records), stream.events, stream.projected)


def create_database(admin_dsn: str) -> str:
    """A new empty database on the admin DSN's server; its DSN."""
    name = f"rialto_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def drop_database(admin_dsn: str, dsn: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:,.1f} k"


def report(stream: Stream, rates: Sequence[Rate], batch: int) -> None:
    n = len(stream.records)
    print(f"stream: {n:,} commands (after {len(stream.setup):,} set-up commands, applied untimed), "
          f"{stream.events:,} events ({stream.projected:,} projected, i.e. not BOOK; {stream.trades:,} trades)")
    print(f"engine (rust): submit {_rate(stream.engine_submit_rate)} commands/s (the shard's path), "
          f"submit_batch {_rate(stream.engine_batch_rate)} commands/s")
    print()
    print(f"{'store':<12} {'seconds':>8} {'records/s':>12} {'events/s':>12} {'projected/s':>12} "
          f"{'batch p50':>10} {'batch max':>10} {'vs engine submit':>17}")
    for r in rates:
        ratio = r.records_per_s / stream.engine_submit_rate
        print(f"{r.store:<12} {r.seconds:>8.2f} {_rate(r.records_per_s):>12} {_rate(r.events_per_s):>12} "
              f"{_rate(r.projected_per_s):>12} {r.batch_ms(0.5):>8.1f}ms {max(r.batches) * 1000:>8.1f}ms "
              f"{ratio:>16.3f}x")
    print("(records/s = commands/s of the engine's stream; rates in thousands (k) or millions (M) per second)")
    print()
    for r in rates:
        keeps_up = r.records_per_s >= stream.engine_submit_rate
        print(f"{r.store}: {'keeps up with' if keeps_up else 'does NOT keep up with'} the engine at full speed: "
              f"{_rate(r.records_per_s)} vs {_rate(stream.engine_submit_rate)} commands/s, "
              f"{r.records_per_s / stream.engine_submit_rate:.1%} of it; a batch of {batch:,} takes "
              f"{r.batch_ms(0.5):.0f} ms (p50)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.persister", description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", "-n", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=wl.DEFAULT_SEED)
    parser.add_argument("--batch", type=int, default=BATCH, help="records per apply (the projector's batch)")
    parser.add_argument("--admin-dsn", default=ADMIN_DSN, help="a DSN with the right to create databases")
    parser.add_argument("--no-sqlite", action="store_true", help="time PostgreSQL only")
    parser.add_argument("--verify", action="store_true", help="compare the stores' rows and check the ledger after")
    args = parser.parse_args(argv)

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
          f"python {sys.version.split()[0]}")
    started = time.perf_counter()
    stream = make_stream(args.commands, args.seed)
    print(f"stream made in {time.perf_counter() - started:.1f} s")
    instruments = wl.instruments()

    rates: list[Rate] = []
    dsn = create_database(args.admin_dsn)
    workdir = Path(tempfile.mkdtemp(prefix="rialto-bench-persister-"))
    stores: list[tuple[str, PostgresStore | SqliteStore]] = []
    try:
        postgres = PostgresStore(dsn, instruments)
        stores.append(("postgresql", postgres))
        rates.append(time_apply("postgresql", postgres, stream, args.batch))
        if not args.no_sqlite:
            sqlite = SqliteStore(workdir / "projection.db", instruments)
            stores.append(("sqlite", sqlite))
            rates.append(time_apply("sqlite", sqlite, stream, args.batch))
        report(stream, rates, args.batch)
        if args.verify:
            _verify(stores)
    finally:
        for _, store in stores:
            store.close()
        drop_database(args.admin_dsn, dsn)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _verify(stores: list[tuple[str, PostgresStore | SqliteStore]]) -> None:
    dumps = {}
    for name, store in stores:
        problems = store.check_ledger() + store.check_holds()
        print(f"{name}: {'ledger and holds check out' if not problems else problems[:5]}")
        dumps[name] = store.dump()
    if len(dumps) == 2:
        a, b = dumps.values()
        same = [table for table in a if a[table] == b[table]]
        print(f"rows identical in {len(same)} of {len(a)} tables" + ("" if len(same) == len(a) else f": {same}"))


if __name__ == "__main__":
    raise SystemExit(main())
