"""Cases for the pytest-benchmark micro benchmarks (``bench/test_engine_micro.py``).

Every case starts from the same state: the benchmark workload's set-up
(funded accounts, a book of a few thousand resting orders over a few hundred
levels), which each backend builds once and then restores from its own
snapshot before every round (not timed). A case is a short run of commands of
one kind, built against the reference engine so that each command does what
the case is named after; the expected event count and final state hash are
recorded, so the benchmarks can check (outside the timing) that every backend
did that work.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from bench import workload as wl
from core.batch import commands_to_array
from core.commands import Command, OrderType, Side, TimeInForce, cancel, new_order
from core.engine import BACKENDS, BackendUnavailable, open_engine
from core.events import EventKind
from core.matching import ReferenceEngine

SEED = 7
BATCH = 10_000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
"""Timed rounds per benchmark (each from a freshly restored book); override with BENCH_ROUNDS."""
MICRO_BACKENDS = ("python", "cython", "rust")
"""Benchmarked when importable; set BENCH_BACKENDS (e.g. "python rust") to run only some."""

_TRADE = int(EventKind.TRADE)
_BOOK = int(EventKind.BOOK)
_REJECTED = int(EventKind.REJECTED)


@dataclass
class Case:
    name: str
    description: str
    commands: list[Command]
    expected_events: int = 0
    expected_hash: str = ""
    trades: int = 0
    array: Any = None

    @property
    def size(self) -> int:
        return len(self.commands)


@dataclass
class MicroResult:
    group: str
    backend: str
    commands: int
    min_ns: float
    median_ns: float
    rounds: int
    extra: dict[str, Any] = field(default_factory=dict)


RESULTS: list[MicroResult] = []
"""Filled by the benchmarks, printed by ``bench/conftest.py`` at the end of the session."""


def backend_status() -> dict[str, str]:
    """Each micro-benchmarked backend: "" to run it, else why it is skipped."""
    out = {}
    selected = os.environ.get("BENCH_BACKENDS", "").replace(",", " ").split()
    for name in MICRO_BACKENDS:
        if selected and name not in selected:
            out[name] = f"not selected (BENCH_BACKENDS={os.environ['BENCH_BACKENDS']!r})"
            continue
        if name not in BACKENDS:
            out[name] = "not a known backend in core.engine.BACKENDS"
            continue
        try:
            open_engine(name)
        except BackendUnavailable as exc:
            out[name] = f"not available: {exc.__cause__ or exc}"
        except Exception as exc:  # half-built
            out[name] = f"not available: {type(exc).__name__}: {exc}"
        else:
            out[name] = ""
    return out


@cache
def base() -> tuple[wl.Workload, bytes, str, int]:
    """The workload (set-up plus BATCH commands), the reference snapshot after set-up, its hash, its sequence."""
    workload = wl.build(BATCH, wl.DEFAULT_SEED)
    engine = _reference(workload)
    return workload, engine.snapshot(), engine.state_hash(), engine.sequence


def _reference(workload: wl.Workload) -> ReferenceEngine:
    engine = ReferenceEngine()
    for inst in workload.instruments:
        engine.add_instrument(inst)
    engine.submit_many(workload.setup)
    return engine


@cache
def cases() -> dict[str, Case]:
    workload, snapshot, _, seq0 = base()
    rng = random.Random(SEED)
    symbol = wl.SYMBOL
    accounts = workload.config.accounts
    out: dict[str, Case] = {}

    def stamp(i: int) -> tuple[int, int]:
        seq = seq0 + 1 + i
        return seq, wl.T0 + seq * wl.STEP_NS

    def build(name: str, description: str, make: Any, count: int, check: Any = None) -> None:
        """Make ``count`` commands one at a time against a reference engine at the base state."""
        engine = ReferenceEngine()
        for inst in workload.instruments:
            engine.add_instrument(inst)
        engine.restore(snapshot)
        commands, events, trades = [], 0, 0
        for i in range(count):
            command = wl._plain(make(engine, i))
            produced = engine.submit(command)
            if any(e[0] == _REJECTED for e in produced) or (check is not None and not check(produced)):
                raise AssertionError(f"micro case {name}: command {command} did not do what the case needs: {produced}")
            commands.append(command)
            events += len(produced)
            trades += sum(1 for e in produced if e[0] == _TRADE)
        if trades:
            description += f"; {trades / count:.1f} fills per command"
        out[name] = Case(name, description, commands, events, engine.state_hash(), trades)

    def touch(engine: ReferenceEngine, side: int, levels: int = 1) -> list[tuple[int, int, int]]:
        bids, asks = engine.depth(symbol, levels)
        return bids if side == Side.BUY else asks

    def passive(engine: ReferenceEngine, i: int) -> Command:
        side = i % 2
        bid, ask = touch(engine, Side.BUY)[0][0], touch(engine, Side.SELL)[0][0]
        offset = int(rng.random() * 20)
        price = min(bid + 1 - offset, ask - 1) if side == Side.BUY else max(ask - 1 + offset, bid + 1)
        seq, time = stamp(i)
        return new_order(seq, time, 1 + i % accounts, symbol, side, 1 + int(rng.random() ** 2 * 100), price)

    build("passive_limit", "GTC limit that rests without trading (0..19 ticks behind the touch)", passive, 1_000,
          lambda ev: not any(e[0] == _TRADE for e in ev))

    engine = ReferenceEngine()
    for inst in workload.instruments:
        engine.add_instrument(inst)
    engine.restore(snapshot)
    resting = []
    for book in engine.state().books:
        for levels in (book.bids, book.asks):
            resting += [(fields[0], fields[1]) for level in levels for fields in level]
    doomed = rng.sample(sorted(resting), 1_000)

    def cancel_one(engine: ReferenceEngine, i: int) -> Command:
        order_id, account = doomed[i]
        seq, time = stamp(i)
        return cancel(seq, time, account, order_id)

    build("cancel", "cancel of a resting order, chosen uniformly in the book", cancel_one, 1_000,
          lambda ev: ev[0][0] == EventKind.CANCELLED)

    def crossing(engine: ReferenceEngine, i: int) -> Command:
        side = i % 2
        price, total, _ = touch(engine, 1 - side)[0]
        quantity = max(1, min(total, 1 + int(rng.random() * 50)))
        seq, time = stamp(i)
        return new_order(seq, time, 1 + i % accounts, symbol, side, quantity, price)

    build("crossing_limit", "GTC limit at the opposite touch, filled there (1..50 lots)", crossing, 200,
          lambda ev: any(e[0] == _TRADE for e in ev))

    def sweep(engine: ReferenceEngine, i: int) -> Command:
        side = i % 2
        quantity = sum(total for _, total, _ in touch(engine, 1 - side, 3))
        seq, time = stamp(i)
        return new_order(seq, time, 1 + i % accounts, symbol, side, quantity, 0, OrderType.MARKET, TimeInForce.IOC)

    build("market_sweep", "IOC market order taking the opposite side's best 3 levels", sweep, 50,
          lambda ev: sum(1 for e in ev if e[0] == _BOOK) >= 3)

    mixed = workload.commands[:BATCH]
    engine = _reference(workload)
    events = len(engine.submit_many(mixed))
    out["submit_10k"] = Case("submit_10k", f"{BATCH:,} workload commands, one submit call each",
                             mixed, events, engine.state_hash())
    out["batch_10k"] = Case("batch_10k", f"{BATCH:,} workload commands in one submit_batch call",
                            mixed, events, engine.state_hash(), array=commands_to_array(mixed))
    return out


@cache
def backend_snapshot(backend: str) -> bytes:
    """The base state as ``backend`` snapshots it, built by replaying the set-up through it (checked)."""
    workload, _, expected_hash, _ = base()
    engine = open_engine(backend, workload.instruments)
    engine.submit_batch(_setup_array())
    if engine.state_hash() != expected_hash:
        raise AssertionError(f"{backend}: state after the set-up differs from the reference engine's")
    return engine.snapshot()


def restored(backend: str) -> Any:
    """A fresh engine of ``backend`` at the base state (restored, or replayed if it cannot restore)."""
    workload = base()[0]
    engine = open_engine(backend, workload.instruments)
    try:
        engine.restore(backend_snapshot(backend))
    except (NotImplementedError, AttributeError):
        engine = open_engine(backend, workload.instruments)
        engine.submit_batch(_setup_array())
    return engine


@cache
def _setup_array() -> Any:
    return commands_to_array(base()[0].setup)
