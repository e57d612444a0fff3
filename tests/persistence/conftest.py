from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.persistence import SqliteStore

from .venue import Venue, open_store


@pytest.fixture
def venue() -> Venue:
    """The real reference engine with BTC-USD and ETH-USD, accounts 1..3 funded."""
    v = Venue()
    for account in (1, 2, 3):
        v.fund(account)
    return v


@pytest.fixture
def store() -> Iterator[SqliteStore]:
    s = open_store()
    yield s
    s.close()
