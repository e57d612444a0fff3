"""Balances and the double-entry ledger, against the real engine's own balances."""

from __future__ import annotations

import pytest

from core.events import EventKind
from services.persistence import EXTERNAL_ACCOUNT, PostgresStore

from .conftest import StoreFactory
from .streams import assert_matches_engine, random_stream
from .venue import ASSETS, BTC, BTC_USD, BUY, SELL, USD, AnyStore, Venue, sql


@pytest.mark.parametrize("seed", [20260101, 1, 2, 3])
def test_balances_equal_the_engines_for_every_account_and_asset_after_a_random_stream(
    seed: int, open_store: StoreFactory,
) -> None:
    venue = Venue()
    random_stream(venue, 4_000, seed=seed)
    store = open_store()
    for start in range(0, len(venue.records), 250):
        store.apply(venue.records[start:start + 250])
    assert_matches_engine(venue, store, accounts=8)
    assert store.check_holds() == []
    assert store.check_ledger() == []


def test_balances_equal_the_engines_at_every_batch_boundary(open_store: StoreFactory) -> None:
    venue = Venue()
    random_stream(venue, 1_500, seed=7)
    records = list(venue.records)
    replay = Venue()  # the same stream again, stopping at each boundary to compare
    store = open_store()
    for start in range(0, len(records), 97):
        for command, client_order_id, events in records[start:start + 97]:
            assert replay.engine.submit(command) == events
            replay.records.append((command, client_order_id, events))
            replay.seq = command[1]
        replay.sync(store)
        assert_matches_engine(replay, store, accounts=8)


def test_the_ledger_balances_and_sums_to_deposits_less_withdrawals(open_store: StoreFactory) -> None:
    venue = Venue()
    random_stream(venue, 2_000, seed=99)
    store = open_store()
    store.apply(venue.records)
    assert store.check_ledger() == []
    unbalanced = sql(store, "SELECT seq, idx, asset FROM ledger GROUP BY seq, idx, asset HAVING sum(debit) != sum(credit)")
    assert unbalanced == []
    for asset in ASSETS:
        deposited, withdrawn = 0, 0
        for _, _, events in venue.records:
            for e in events:
                if e.kind == EventKind.DEPOSITED and e.symbol == asset.id:
                    deposited += e.quantity
                elif e.kind == EventKind.WITHDRAWN and e.symbol == asset.id:
                    withdrawn += e.quantity
        ((total,),) = sql(store, "SELECT sum(total) FROM balances WHERE asset = ?", (asset.id,))
        assert total == deposited - withdrawn
        ((external,),) = sql(
            store, "SELECT sum(credit) - sum(debit) FROM ledger WHERE account = ? AND asset = ?",
            (EXTERNAL_ACCOUNT, asset.id),
        )
        assert external == -(deposited - withdrawn)


def test_the_ledger_check_reports_a_tampered_entry(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    venue.order(1, BTC_USD, BUY, "0.1", "50000")
    venue.sync(store)
    assert store.check_ledger() == []
    tamper = "UPDATE ledger SET credit = credit + 1 WHERE kind = 'trade' AND credit > 0 AND asset = %s"
    if isinstance(store, PostgresStore):
        # The database refuses the unbalanced entry at COMMIT (test_postgres); tamper with its
        # triggers off, as only the owner of the database could, to see the check find it anyway.
        with store.pool.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(tamper, (BTC.id,))
    else:
        sql(store, tamper.replace("%s", "?"), (BTC.id,))
    problems = store.check_ledger()
    assert any("debits" in p for p in problems)
    assert any("ledger" in p and "balance total" in p for p in problems)


def test_a_deposit_and_a_withdrawal_are_balanced_entries_against_the_outside(store: AnyStore) -> None:
    venue = Venue()
    venue.deposit(5, USD, "100.5")
    venue.withdraw(5, USD, "40.25")
    venue.withdraw(5, USD, "1000")  # refused by the engine: no entries
    venue.sync(store)
    rows = sql(store, "SELECT seq, leg, kind, account, asset, debit, credit FROM ledger ORDER BY seq, leg")
    assert rows == [
        (1, 0, "deposit", EXTERNAL_ACCOUNT, USD.id, 100_500_000, 0),
        (1, 1, "deposit", 5, USD.id, 0, 100_500_000),
        (2, 0, "withdrawal", 5, USD.id, 40_250_000, 0),
        (2, 1, "withdrawal", EXTERNAL_ACCOUNT, USD.id, 0, 40_250_000),
    ]
    (balance,) = store.balances(5)
    assert (balance.asset, balance.total, balance.held, balance.available) == ("USD", "60.250000", "0.000000", "60.250000")
    assert store.check_ledger() == []


def test_a_trade_posts_base_and_quote_legs_and_each_fee_to_the_fee_account(venue: Venue, store: AnyStore) -> None:
    first = len(venue.records)
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    venue.order(1, BTC_USD, BUY, "0.1", "50000")
    venue.sync(store)
    trade_seq = venue.records[first + 1][0].seq
    rows = sql(
        store, "SELECT leg, kind, account, asset, debit, credit FROM ledger WHERE seq = ? ORDER BY leg", (trade_seq,),
    )
    base, notional = 10_000_000, 5_000_000_000  # 0.1 BTC, 5000 USD
    assert rows == [
        (0, "trade", 2, BTC.id, base, 0),
        (1, "trade", 1, BTC.id, 0, base),
        (2, "trade", 1, USD.id, notional, 0),
        (3, "trade", 2, USD.id, 0, notional),
        (4, "fee", 1, BTC.id, 20_000, 0),
        (5, "fee", 0, BTC.id, 0, 20_000),
        (6, "fee", 2, USD.id, 5_000_000, 0),
        (7, "fee", 0, USD.id, 0, 5_000_000),
    ]


def test_an_account_without_activity_has_no_balances(store: AnyStore) -> None:
    assert store.balances(42) == []
