"""The DynamoDB history store (services.persistence.dynamodb) against moto, held to the SQLite store's answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from persistence.streams import random_stream
from persistence.venue import BTC_USD, BUY, ETH_USD, INSTRUMENTS, SELL, T0, Venue

from services.aws import AwsSettings
from services.persistence import INTERVALS, Record, SqliteStore
from services.persistence.dynamodb import TABLES, DynamoHistoryStore
from services.persistence.store import StatusFilter

from .helpers import with_client

ACCOUNTS = range(0, 10)  # the stream's 8 accounts, the fee account 0 and one that never traded
SYMBOLS: tuple[Any, ...] = (None, "BTC-USD", ETH_USD.id)
STATUSES: tuple[StatusFilter, ...] = ("all", "open", "closed")


@pytest.fixture(scope="module")
def venue() -> Venue:
    """A seeded random stream through the reference engine: every order type, cancels, amends, expiries."""
    v = Venue()
    random_stream(v, 250, seed=5)
    return v


@pytest.fixture(scope="module")
def reference(venue: Venue) -> Iterator[SqliteStore]:
    store = open_store()
    store.apply(venue.records)
    yield store
    store.close()


@pytest.fixture
def store(aws_settings: AwsSettings) -> Iterator[DynamoHistoryStore]:
    s = DynamoHistoryStore(aws_settings, INSTRUMENTS)
    s.ensure_tables()
    yield s
    s.close()


def open_store() -> SqliteStore:
    """The embedded profile's store, the reference every other store is held to."""
    return SqliteStore(":memory:", INSTRUMENTS)


def apply_in_batches(store: DynamoHistoryStore, records: list[Record], size: int) -> None:
    for start in range(0, len(records), size):
        store.apply(records[start:start + size])


def client_order_ids(records: list[Record]) -> set[tuple[int, str]]:
    return {(command.account, coid) for command, coid, _ in records if coid is not None}


def sample_orders(reference: SqliteStore) -> list[tuple[int, int]]:
    """(order id, account) of a spread of orders: every status, with and without fills, and some others."""
    rows = list(reference.connection.execute(
        "SELECT id, account, status, filled_quantity > 0 FROM orders ORDER BY id"))
    picked: dict[int, int] = {}
    seen: dict[tuple[str, bool], int] = {}
    for order_id, account, status, filled in rows:
        if seen.get((status, bool(filled)), 0) < 4:
            seen[(status, bool(filled))] = seen.get((status, bool(filled)), 0) + 1
            picked[order_id] = account
    for order_id, account, _, _ in rows[::15]:
        picked[order_id] = account
    return sorted(picked.items())


def assert_same_answers(store: DynamoHistoryStore, reference: SqliteStore, records: list[Record]) -> None:
    """Every query of the API answered identically (the same views in the same order) for a spread of arguments."""
    assert store.position() == reference.position()
    orders = sample_orders(reference)
    for order_id, account in [*orders, (10**9, 1)]:
        assert store.get_order(order_id) == reference.get_order(order_id), order_id
        assert store.list_order_fills(account, order_id) == reference.list_order_fills(account, order_id)
    order_id, account = orders[-1]
    assert store.list_order_fills(account + 1, order_id) == []  # another account's order
    for account, coid in [*sorted(client_order_ids(records))[:25], (1, "never-used")]:
        assert store.get_order_by_client_id(account, coid) == reference.get_order_by_client_id(account, coid)
    for account in ACCOUNTS:
        for symbol in SYMBOLS:
            for status in STATUSES:
                assert (store.list_orders(account, symbol, status, 1_000)
                        == reference.list_orders(account, symbol, status, 1_000)), (account, symbol, status)
            assert store.list_fills(account, symbol, 1_000) == reference.list_fills(account, symbol, 1_000)
        for status in STATUSES:
            assert store.list_orders(account, None, status, 3) == reference.list_orders(account, None, status, 3)
        assert store.list_fills(account, "BTC-USD", 2) == reference.list_fills(account, "BTC-USD", 2)
    for instrument in INSTRUMENTS:
        for limit in (1_000, 2):
            assert store.list_trades(instrument.symbol, limit) == reference.list_trades(instrument.symbol, limit)
        for interval in INTERVALS:
            assert (store.list_candles(instrument.id, interval, 1_000)
                    == reference.list_candles(instrument.id, interval, 1_000)), interval
        for limit, since in ((2, None), (1_000, T0 + 1), (2, T0 + 3_600 * 10**9 + 5)):
            assert (store.list_candles(instrument.symbol, "1m", limit, since)
                    == reference.list_candles(instrument.symbol, "1m", limit, since)), (limit, since)
    assert store.open_gtd_expiries() == reference.open_gtd_expiries()


def visible(dump: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Items without the replay bookkeeping (``wpos``, the ``p_`` columns, ``prev``), which follows batch sizes.

    A None is an absent attribute after a put and a NULL after an update: the same to every reader.
    """
    def keep(key: str, value: Any) -> bool:
        return value is not None and key not in ("wpos", "prev") and not key.startswith("p_")

    return {table: sorted(({k: v for k, v in item.items() if keep(k, v)} for item in items), key=repr)
            for table, items in dump.items()}


def test_every_query_answers_as_the_sqlite_store_does(
        store: DynamoHistoryStore, reference: SqliteStore, venue: Venue) -> None:
    apply_in_batches(store, venue.records, 97)
    assert store.open_gtd_expiries(), "the stream should leave some GTD orders open"
    assert store.list_trades("BTC-USD") and store.list_candles("ETH-USD", "1m")
    assert_same_answers(store, reference, venue.records)


def test_replaying_applied_records_changes_nothing(store: DynamoHistoryStore, venue: Venue) -> None:
    records = venue.records
    assert store.apply(records[:200]) == 200
    before = store.dump()
    assert store.apply(records[:200]) == 0
    assert store.apply(records[50:120]) == 0
    assert store.dump() == before
    assert store.apply(records[150:260]) == 60  # only the records past the position
    assert store.position() == records[259][0].seq


def test_a_batch_that_failed_half_written_is_replayed_with_other_boundaries_to_the_same_rows(
        aws_settings: AwsSettings, store: DynamoHistoryStore, reference: SqliteStore, venue: Venue) -> None:
    records = venue.records
    store.apply(records[:120])
    real_update = store._update_order
    calls = [0]

    async def flaky(*args: Any) -> None:
        calls[0] += 1
        if calls[0] % 3 == 0:
            raise ConnectionError("DynamoDB went away")
        await real_update(*args)

    store._update_order = flaky  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectionError):
        store.apply(records[120:300])  # new orders, fills, trades, candles and two thirds of the updates written
    assert store.position() == records[119][0].seq
    store._update_order = real_update  # type: ignore[method-assign]
    real_advance = store._advance_position

    async def crash(*args: Any) -> None:
        raise ConnectionError("the process died before the position moved")

    store._advance_position = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectionError):
        store.apply(records[120:220])  # everything of this batch written, but not committed
    store._advance_position = real_advance  # type: ignore[method-assign]
    apply_in_batches(store, records[120:], 41)  # the replay, cut elsewhere
    assert store.position() == reference.position()
    assert store.open_gtd_expiries() == reference.open_gtd_expiries()
    clean = DynamoHistoryStore(AwsSettings(endpoint_url=aws_settings.endpoint_url,
                                           table_prefix=aws_settings.table_prefix + "clean-"), INSTRUMENTS)
    try:
        clean.ensure_tables()
        clean.apply(records)
        assert visible(store.dump()) == visible(clean.dump())
    finally:
        clean.close()


def test_a_client_order_id_stays_with_the_first_order_that_used_it(store: DynamoHistoryStore) -> None:
    venue = Venue()
    venue.fund(1)
    venue.fund(2)
    first = venue.order(1, BTC_USD, BUY, "0.1", "50000", client_order_id="mine")
    second = venue.order(1, BTC_USD, BUY, "0.2", "49000", client_order_id="mine")  # a retry let through
    other = venue.order(2, BTC_USD, SELL, "0.1", "50000", client_order_id="mine")  # another account's own id
    reference = open_store()
    reference.apply(venue.records)
    store.apply(venue.records[:4])
    store.apply(venue.records[4:])
    found = store.get_order_by_client_id(1, "mine")
    assert found is not None and found.order_id == first
    assert store.get_order(second).client_order_id is None  # type: ignore[union-attr]
    assert store.get_order_by_client_id(2, "mine").order_id == other  # type: ignore[union-attr]
    assert_same_answers(store, reference, venue.records)


def test_balances_live_in_postgresql_in_this_profile(store: DynamoHistoryStore) -> None:
    with pytest.raises(NotImplementedError, match="PostgreSQL"):
        store.balances(1)


def test_the_tables_are_on_demand_with_the_indexes_the_queries_use(
        aws_settings: AwsSettings, store: DynamoHistoryStore) -> None:
    store.ensure_tables()  # idempotent

    async def describe(client: Any) -> dict[str, Any]:
        return {name: (await client.describe_table(TableName=aws_settings.table_prefix + name))["Table"]
                for name in TABLES}

    tables = with_client(aws_settings, "dynamodb", describe)
    assert all(t["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST" for t in tables.values())
    indexes = {name: sorted(i["IndexName"] for i in t.get("GlobalSecondaryIndexes", [])) for name, t in tables.items()}
    assert indexes == {"orders": ["by_account", "open_expiry", "open_orders"], "client_order_ids": [],
                       "fills": ["by_order"], "trades": [], "candles": [], "meta": []}

