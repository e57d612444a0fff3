"""Every persistence test runs once per store technology: ``sqlite`` and ``postgres``.

A test gets ``store`` (a fresh, empty store) or ``open_store`` (a factory:
``open_store()`` is a new empty store each call; ``open_store("name")`` opens
the same database again, as a second process or a restart would;
``fresh=True`` empties that database first). PostgreSQL databases are copies
of a template migrated once per session (a copy takes ~50 ms, migrating from
nothing ~170 ms), emptied after each test for the next one and dropped at the
end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import create_database, drop_database

from services.persistence import migrate

from .stores import STORES, DatabasePool, StoreFactory
from .venue import AnyStore, Venue


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: None) -> Iterator[DatabasePool]:
    """Migrated databases for the session's tests, copies of a template migrated once."""
    template = create_database("rialto_template")
    migrate(template)
    pool = DatabasePool(template.rsplit("/", 1)[1])
    yield pool
    pool.close()
    drop_database(template)


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def open_store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    databases = request.getfixturevalue("postgres_databases") if store_kind == "postgres" else None
    factory = StoreFactory(store_kind, tmp_path, databases)
    yield factory
    factory.close()


@pytest.fixture
def store(open_store: StoreFactory) -> AnyStore:
    return open_store()


@pytest.fixture
def venue() -> Venue:
    """The real reference engine with BTC-USD and ETH-USD, accounts 1..3 funded."""
    v = Venue()
    for account in (1, 2, 3):
        v.fund(account)
    return v
