"""Differential tests: every backend against the reference, on random streams.

For several seeds, a stream from ``tests/random_commands.py`` runs through the
pure-Python reference (``core.matching``, the specification) and through every
backend under test. They must agree exactly: the same events (same order, same
fields), the same snapshot bytes and state hash at every checkpoint; a batch
(``submit_batch``) must give what one-by-one ``submit`` gives; and a snapshot
taken mid-stream, restored into another backend, must continue identically.

Backends come from ``RIALTO_TEST_BACKENDS`` (comma-separated, default
``python,cython,rust``; ``fpga-sim`` is never used here). A listed backend that
is not importable FAILS the tests: a run that forgot to build must not pass by
testing less.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from functools import cache
from typing import Any

import pytest
from random_commands import generate, make_instruments

from core.batch import commands_to_array, events_to_array
from core.commands import Command
from core.engine import BACKENDS, BackendUnavailable, MatchingEngine, open_engine
from core.events import Event, EventKind, Reason, describe

SEEDS = (101, 202, 303, 404)
COMMANDS_PER_SEED = 60_000  # 240,000 commands in all
CHECKPOINT = 6_000  # snapshot and hash compared every this many commands
DEFAULT_BACKENDS = "python,cython,rust"
EXCLUDED = ("fpga-sim",)


def _backend_names() -> list[str]:
    raw = os.environ.get("RIALTO_TEST_BACKENDS", DEFAULT_BACKENDS)
    names = [n.strip() for n in raw.split(",") if n.strip() and n.strip() not in EXCLUDED]
    unknown = [n for n in names if n not in BACKENDS]
    assert not unknown, f"RIALTO_TEST_BACKENDS names unknown backends {unknown}; known: {', '.join(BACKENDS)}"
    assert names, "RIALTO_TEST_BACKENDS lists no backend to test"
    return names


def _open(name: str) -> MatchingEngine:
    """A fresh engine of a backend with the stream's instruments; a missing backend fails loudly."""
    try:
        return open_engine(name, make_instruments())
    except BackendUnavailable as exc:
        pytest.fail(f"backend {name!r} is listed in RIALTO_TEST_BACKENDS but not importable: {exc}. "
                    "Build it (`make build`) or leave it out of RIALTO_TEST_BACKENDS.")


def _backends() -> list[str]:
    names = _backend_names()
    for name in names:
        _open(name)  # fail before any comparison if one is missing
    return names


class _Reference:
    """The reference run of one stream, kept for every test of that seed."""

    def __init__(self, seed: int) -> None:
        self.commands: list[Command] = generate(seed, COMMANDS_PER_SEED)
        engine = open_engine("python", make_instruments())
        assert engine.backend == "python"
        self.chunks: list[list[Command]] = [
            self.commands[i:i + CHECKPOINT] for i in range(0, len(self.commands), CHECKPOINT)
        ]
        self.events: list[list[Event]] = []
        self.snapshots: list[bytes] = []
        self.middle = len(self.chunks) // 2
        for chunk in self.chunks:
            self.events.append(engine.submit_many(chunk))
            self.snapshots.append(engine.snapshot())


@cache
def _reference(seed: int) -> _Reference:
    return _Reference(seed)


def _show(event: Any) -> str:
    try:
        return describe(Event(*event))
    except (TypeError, ValueError):
        return repr(tuple(event))


def _first_difference(expected: list[Any], actual: list[Any], where: str) -> str:
    for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
        if tuple(e) != tuple(a):
            return f"{where}: event {i} differs\n  reference: {_show(e)}\n  backend:   {_show(a)}"
    return f"{where}: {len(expected)} reference events, {len(actual)} from the backend"


def _check_events(expected: list[Event], actual: list[Event], where: str) -> None:
    if actual != expected:
        pytest.fail(_first_difference(expected, actual, where))
    if actual:
        assert type(actual[0]) is Event, f"{where}: events must be core.events.Event, got {type(actual[0])}"


def _check_state(engine: MatchingEngine, snapshot: bytes, where: str) -> None:
    got = engine.snapshot()
    if got != snapshot:
        diff = next((i for i in range(min(len(got), len(snapshot))) if got[i] != snapshot[i]), min(len(got), len(snapshot)))
        pytest.fail(f"{where}: snapshot differs from the reference at byte {diff} (word {diff // 8}); "
                    f"{len(got)} bytes vs {len(snapshot)}")
    expected_hash = hashlib.blake2b(snapshot, digest_size=16).hexdigest()
    assert engine.state_hash() == expected_hash, f"{where}: state hash differs"


def test_listed_backends_are_importable() -> None:
    for name in _backend_names():
        engine = _open(name)
        assert engine.backend == name


def test_streams_exercise_every_path() -> None:
    """Guards the generator: a stream that stopped reaching a path would test nothing there."""
    kinds: Counter[int] = Counter()
    reasons: Counter[int] = Counter()
    for seed in SEEDS:
        for chunk in _reference(seed).events:
            kinds.update(e.kind for e in chunk)
            reasons.update(e.reason for e in chunk if e.reason)
    missing_kinds = [k.name for k in EventKind if kinds[k] == 0]
    assert not missing_kinds, f"no {missing_kinds} events in the streams"
    missing_reasons = [r.name for r in Reason if r != Reason.NONE and reasons[r] == 0]
    assert not missing_reasons, f"no events with reason {missing_reasons} in the streams"


@pytest.mark.parametrize("seed", SEEDS)
def test_submit_matches_reference(seed: int) -> None:
    """One command at a time (first half) and ``submit_many`` (second half):
    identical events, snapshots and hashes at every checkpoint."""
    ref = _reference(seed)
    for name in _backends():
        engine = _open(name)
        for k, chunk in enumerate(ref.chunks):
            where = f"{name}, seed {seed}, commands {k * CHECKPOINT}..{k * CHECKPOINT + len(chunk)}"
            if k < ref.middle:
                events: list[Event] = []
                for command in chunk:
                    events.extend(engine.submit(command))
            else:
                events = engine.submit_many(chunk)
            _check_events(ref.events[k], events, where)
            _check_state(engine, ref.snapshots[k], where)
        assert engine.sequence == max(c.seq for c in ref.commands)


@pytest.mark.parametrize("seed", SEEDS)
def test_submit_batch_matches_submit(seed: int) -> None:
    """``submit_batch`` over NumPy arrays gives exactly the events ``submit`` gives."""
    ref = _reference(seed)
    arrays = [commands_to_array(chunk) for chunk in ref.chunks]
    expected = [events_to_array(events) for events in ref.events]
    for name in _backends():
        engine = _open(name)
        for k, array in enumerate(arrays):
            where = f"{name}, seed {seed}, batch {k}"
            got = engine.submit_batch(array)
            assert got.dtype == expected[k].dtype, f"{where}: wrong dtype {got.dtype}"
            if got.shape != expected[k].shape or got.tobytes() != expected[k].tobytes():
                pytest.fail(_first_difference(expected[k].tolist(), got.tolist(), where))
            _check_state(engine, ref.snapshots[k], where)


@pytest.mark.parametrize("seed", SEEDS)
def test_restore_mid_stream_into_another_backend(seed: int) -> None:
    """A snapshot taken mid-stream by one backend, restored into the next one
    (fresh, or already holding other state), continues exactly like the reference."""
    ref = _reference(seed)
    names = _backends()
    pairs = [(src, names[(i + 1) % len(names)]) for i, src in enumerate(names)]
    if len(names) > 1:
        pairs.append((names[-1], names[-1]))  # and into the same backend
    prefix = [c for chunk in ref.chunks[:ref.middle] for c in chunk]
    for src, dst in pairs:
        source = _open(src)
        source.submit_many(prefix)
        snapshot = source.snapshot()
        assert snapshot == ref.snapshots[ref.middle - 1], f"{src}: mid-stream snapshot differs from the reference"
        target = _open(dst)
        if (seed + len(src)) % 2:
            # A target with a state of its own: restore must replace all of it.
            target.submit_many(generate(seed + 1, 3_000))
        target.restore(snapshot)
        _check_state(target, snapshot, f"{src} -> {dst}, seed {seed}, right after restore")
        assert target.sequence == max(c.seq for c in prefix)
        for k in range(ref.middle, len(ref.chunks)):
            where = f"{src} -> {dst}, seed {seed}, chunk {k} after restore"
            _check_events(ref.events[k], target.submit_many(ref.chunks[k]), where)
            _check_state(target, ref.snapshots[k], where)


def test_restore_refuses_malformed_snapshots() -> None:
    ref = _reference(SEEDS[0])
    good = ref.snapshots[0]
    for name in _backends():
        engine = _open(name)
        engine.submit_many(ref.chunks[0])
        before = engine.snapshot()
        for bad in (b"", good[:-8], good + b"\0" * 8, good[:17], b"\0" * len(good), good[:-3]):
            with pytest.raises(ValueError):
                engine.restore(bad)
        assert engine.snapshot() == before, f"{name}: a refused restore changed the state"


def test_rust_batch_latencies() -> None:
    """``submit_batch(..., record_latency=True)`` (rust only): one time per command, same events."""
    if "rust" not in _backend_names():
        return
    ref = _reference(SEEDS[0])
    engine: Any = _open("rust")  # batch_latencies is the rust backend's own
    plain: Any = _open("rust")
    for k, chunk in enumerate(ref.chunks[:3]):
        array = commands_to_array(chunk)
        got = engine.submit_batch(array, record_latency=True)
        latencies = engine.batch_latencies()
        assert latencies.dtype.str == "<i8" and latencies.shape == (len(chunk),)
        assert (latencies >= 0).all()
        assert got.tobytes() == plain.submit_batch(array).tobytes() == events_to_array(ref.events[k]).tobytes()
    plain.submit_batch(commands_to_array(ref.chunks[3]))
    assert plain.batch_latencies().shape == (0,)
