"""Micro benchmarks of the engine backends, with pytest-benchmark.

    .venv/bin/python -m pytest bench/test_engine_micro.py --benchmark-only

Not part of the test suite (``testpaths`` is ``tests/``). Each benchmark runs
one kind of command (see ``bench/micro.py``) on every importable backend;
backends that are not built are skipped with the reason. Every round starts
from the same book of a few thousand resting orders, restored from a snapshot
before the timer starts, and times a run of commands; the pytest-benchmark
table shows the time of a round, and the summary printed at the end divides it
by the commands per round. Nothing here asserts on a timing: the only checks
(made outside the timed rounds) are that each backend produced the events and
the final state the reference engine did for the same commands.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import micro

_STATUS = micro.backend_status()
_PARAMS = [
    pytest.param(name, marks=pytest.mark.skip(reason=f"backend {name!r} {why}")) if why else name
    for name, why in _STATUS.items()
]


@pytest.fixture(params=_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _verify(case: micro.Case, backend: str) -> None:
    """Outside the timing: the backend does the case's work exactly as the reference engine does."""
    engine = micro.restored(backend)
    if case.array is not None:
        events = len(engine.submit_batch(case.array))
    else:
        submit = engine.submit
        events = sum(len(submit(command)) for command in case.commands)
    assert events == case.expected_events, f"{backend} {case.name}: {events} events, reference {case.expected_events}"
    assert engine.state_hash() == case.expected_hash, f"{backend} {case.name}: final state differs from the reference"


def _record(benchmark: Any, case: micro.Case, backend: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: nothing was timed
        return
    per_round = stats.stats
    size = case.size
    benchmark.extra_info.update({
        "commands_per_round": size,
        "ns_per_command_min": per_round.min / size * 1e9,
        "ns_per_command_median": per_round.median / size * 1e9,
        "msgs_per_s_median": size / per_round.median,
    })
    micro.RESULTS.append(micro.MicroResult(
        case.name, backend, size, per_round.min / size * 1e9, per_round.median / size * 1e9, per_round.rounds,
    ))


def _bench_submit(benchmark: Any, backend: str, name: str) -> None:
    case = micro.cases()[name]
    commands = case.commands
    _verify(case, backend)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (micro.restored(backend),), {}

    def run(engine: Any) -> None:
        submit = engine.submit
        for command in commands:
            submit(command)

    benchmark.extra_info["case"] = case.description
    benchmark.pedantic(run, setup=setup, rounds=micro.ROUNDS, warmup_rounds=1)
    _record(benchmark, case, backend)


@pytest.mark.benchmark(group="passive_limit")
def test_passive_limit(benchmark: Any, backend: str) -> None:
    """1,000 GTC limits that rest without trading, one submit call each."""
    _bench_submit(benchmark, backend, "passive_limit")


@pytest.mark.benchmark(group="cancel")
def test_cancel(benchmark: Any, backend: str) -> None:
    """1,000 cancels of resting orders chosen uniformly in the book, one submit call each."""
    _bench_submit(benchmark, backend, "cancel")


@pytest.mark.benchmark(group="crossing_limit")
def test_crossing_limit(benchmark: Any, backend: str) -> None:
    """200 limits at the opposite touch that trade there, one submit call each."""
    _bench_submit(benchmark, backend, "crossing_limit")


@pytest.mark.benchmark(group="market_sweep")
def test_market_sweep(benchmark: Any, backend: str) -> None:
    """50 IOC market orders, each taking the opposite side's best 3 levels."""
    _bench_submit(benchmark, backend, "market_sweep")


@pytest.mark.benchmark(group="submit_10k")
def test_submit_10k(benchmark: Any, backend: str) -> None:
    """10,000 commands of the benchmark workload, one submit call each."""
    _bench_submit(benchmark, backend, "submit_10k")


@pytest.mark.benchmark(group="batch_10k")
def test_batch_10k(benchmark: Any, backend: str) -> None:
    """The same 10,000 commands in one submit_batch call over a NumPy array."""
    case = micro.cases()["batch_10k"]
    array = case.array
    _verify(case, backend)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (micro.restored(backend),), {}

    def run(engine: Any) -> None:
        engine.submit_batch(array)

    benchmark.extra_info["case"] = case.description
    benchmark.pedantic(run, setup=setup, rounds=micro.ROUNDS, warmup_rounds=1)
    _record(benchmark, case, backend)
