"""Shared fixtures: every engine test runs once per backend under test.

``RIALTO_TEST_BACKENDS`` (comma-separated, default ``python,cython,rust``)
names the backends. A listed backend that is not importable fails its tests
with a message to run ``make build``; nothing is ever skipped for a missing
backend, so a CI run that forgot to build cannot pass by testing less.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import Phase, settings

sys.path.insert(0, str(Path(__file__).parent))  # `import scenarios` whatever the import mode
pytest.register_assert_rewrite("scenarios")

from scenarios.dsl import DEFAULT_FUNDS, btc_usd, deposit, eth_usd  # noqa: E402
from scenarios.runner import open_backend  # noqa: E402
from servers import (  # noqa: E402,F401 - fixtures for the adapter tests
    moto_endpoint,
    postgres_dsn,
    postgres_server,
    postgres_session_dsn,
    redis_url,
    unique_prefix,
)

from core.engine import BACKENDS, MatchingEngine  # noqa: E402
from core.instrument import Instrument  # noqa: E402

DEFAULT_BACKENDS = "python,cython,rust"

# `pytest --hypothesis-profile=noshrink`: report the first failing example at
# once instead of minimising it (minimising a long command sequence takes minutes).
settings.register_profile("noshrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])


def backends_under_test() -> list[str]:
    names = [n.strip() for n in os.environ.get("RIALTO_TEST_BACKENDS", DEFAULT_BACKENDS).split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise pytest.UsageError(f"RIALTO_TEST_BACKENDS names unknown backends {unknown}; known: {', '.join(BACKENDS)}")
    if not names:
        raise pytest.UsageError("RIALTO_TEST_BACKENDS lists no backend")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends_under_test(), indirect=True, scope="function")


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name (``pytest_pyfunc_call`` below fails the test if it is not built)."""
    name: str = request.param
    return name


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """Fail (FAILED, in the test's own call phase; never skipped) when its backend is not importable."""
    name = pyfuncitem.funcargs.get("backend")
    if isinstance(name, str):
        open_backend(name, ())


@pytest.fixture
def make_engine(backend: str) -> Callable[..., MatchingEngine]:
    """``make_engine(*instruments)``: a fresh engine of the backend under test."""
    def make(*instruments: Instrument) -> MatchingEngine:
        return open_backend(backend, instruments)
    return make


@pytest.fixture
def instruments() -> tuple[Instrument, ...]:
    """The common instrument set: BTC-USD (unit multipliers) and ETH-USD (500 / 5)."""
    return (btc_usd(), eth_usd())


@pytest.fixture
def funded_engine(make_engine: Callable[..., MatchingEngine], instruments: tuple[Instrument, ...]) -> MatchingEngine:
    """BTC-USD and ETH-USD, each trader funded with ``DEFAULT_FUNDS`` (seq 1..8)."""
    engine = make_engine(*instruments)
    seq = 0
    for acct, assets in DEFAULT_FUNDS.items():
        for asset, amount in assets.items():
            seq += 1
            engine.submit(deposit(seq, acct, asset, amount))
    return engine
