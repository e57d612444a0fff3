"""A client order id names one order per account."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from .venue import BTC_USD, BUY, AnyStore, Venue, sql


def test_an_order_is_found_by_its_account_and_client_order_id(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, BUY, "0.1", "49000", client_order_id="my-1")
    venue.sync(store)
    order = store.get_order_by_client_id(1, "my-1")
    assert order is not None
    assert (order.order_id, order.client_order_id) == (order_id, "my-1")
    assert store.get_order_by_client_id(2, "my-1") is None


def test_a_reused_client_order_id_keeps_naming_the_first_order(venue: Venue, store: AnyStore) -> None:
    first = venue.order(1, BTC_USD, BUY, "0.1", "49000", client_order_id="dup")
    venue.sync(store)
    again = venue.order(1, BTC_USD, BUY, "0.1", "49000", client_order_id="dup")  # in a later batch
    same_batch = venue.order(1, BTC_USD, BUY, "0.1", "49000", client_order_id="fresh")
    twice = venue.order(1, BTC_USD, BUY, "0.1", "49000", client_order_id="fresh")  # in the same batch
    venue.sync(store)
    found = store.get_order_by_client_id(1, "dup")
    assert found is not None and found.order_id == first
    found = store.get_order_by_client_id(1, "fresh")
    assert found is not None and found.order_id == same_batch
    for order_id in (again, twice):
        order = store.get_order(order_id)
        assert order is not None
        assert (order.status, order.client_order_id) == ("new", None)  # the engine's order, stored without the id


def test_a_rejected_order_uses_up_its_client_order_id(venue: Venue, store: AnyStore) -> None:
    rejected = venue.order(1, BTC_USD, BUY, "1000", "49000", client_order_id="big")
    venue.sync(store)
    order = store.get_order_by_client_id(1, "big")
    assert order is not None and (order.order_id, order.status) == (rejected, "rejected")


def test_two_accounts_may_use_the_same_client_order_id(venue: Venue, store: AnyStore) -> None:
    one = venue.order(1, BTC_USD, BUY, "0.1", "49000", client_order_id="same")
    two = venue.order(2, BTC_USD, BUY, "0.1", "49000", client_order_id="same")
    venue.sync(store)
    found_one, found_two = store.get_order_by_client_id(1, "same"), store.get_order_by_client_id(2, "same")
    assert found_one is not None and found_two is not None
    assert (found_one.order_id, found_two.order_id) == (one, two)


def test_the_database_refuses_a_second_order_with_the_same_client_order_id(venue: Venue, store: AnyStore) -> None:
    venue.order(1, BTC_USD, BUY, "0.1", "49000", client_order_id="x")
    venue.order(1, BTC_USD, BUY, "0.1", "49000")
    venue.sync(store)
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        sql(store, "UPDATE orders SET client_order_id = 'x' WHERE client_order_id IS NULL")
