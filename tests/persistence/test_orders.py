"""Orders as the projection shows them, checked against the real engine."""

from __future__ import annotations

from core import commands as cmd
from core.commands import OrderType, SelfTradePrevention, TimeInForce

from .streams import assert_matches_engine
from .venue import BTC_USD, BUY, ETH_USD, SECOND, SELL, AnyStore, Venue


def _usd(store: AnyStore, account: int) -> tuple[str, str, str]:
    balance = next(b for b in store.balances(account) if b.asset == "USD")
    return balance.total, balance.held, balance.available


def test_a_resting_limit_buy_is_new_and_holds_quantity_times_price(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, BUY, "0.5", "50000")
    venue.sync(store)

    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.side, order.type, order.time_in_force) == ("new", "buy", "limit", "gtc")
    assert (order.price, order.quantity, order.leaves, order.filled_quantity) == ("50000.00", "0.5000", "0.5000", "0.0000")
    assert order.average_price is None
    assert (order.created_seq, order.updated_seq) == (order_id, order_id)
    assert _usd(store, 1) == ("1000000.000000", "25000.000000", "975000.000000")
    assert_matches_engine(venue, store, 3)


def test_a_partial_fill_then_a_fill_moves_status_and_filled_quantity(venue: Venue, store: AnyStore) -> None:
    ask = venue.order(1, BTC_USD, SELL, "1.0", "50000")
    venue.order(2, BTC_USD, BUY, "0.4", "50000")
    venue.sync(store)
    order = store.get_order(ask)
    assert order is not None
    assert (order.status, order.filled_quantity, order.leaves) == ("partially_filled", "0.4000", "0.6000")
    assert_matches_engine(venue, store, 3)

    venue.order(3, BTC_USD, BUY, "0.6", "50100")
    venue.sync(store)
    order = store.get_order(ask)
    assert order is not None
    assert (order.status, order.filled_quantity, order.leaves) == ("filled", "1.0000", "0.0000")
    assert (order.average_price, order.filled_notional) == ("50000.00", "50000.000000")
    assert_matches_engine(venue, store, 3)


def test_a_taker_average_price_weights_its_fills(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.4", "50000")
    venue.order(2, BTC_USD, SELL, "0.6", "50100")
    taker = venue.order(1, BTC_USD, BUY, "1.0", "50100")
    venue.sync(store)
    order = store.get_order(taker)
    assert order is not None
    assert (order.status, order.average_price, order.filled_notional) == ("filled", "50060.00", "50060.000000")
    assert (order.fee_total, order.fee_asset) == ("0.00200000", "BTC")  # 20 bps of 1 BTC, in what it received


def test_cancel_closes_the_order_with_reason_user_and_releases_its_hold(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, BUY, "0.5", "50000")
    venue.cancel(1, order_id)
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.reason, order.leaves) == ("cancelled", "user", "0.0000")
    assert _usd(store, 1)[1] == "0.000000"
    assert_matches_engine(venue, store, 3)


def test_a_cancel_of_someone_elses_order_changes_nothing(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, BUY, "0.5", "50000")
    venue.cancel(2, order_id)
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None and order.status == "new"


def test_a_gtd_order_expires_at_the_first_command_after_its_time(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, SELL, "0.5", "51000", time_in_force=TimeInForce.GTD,
                           expire_time=venue.time + 60 * SECOND)
    venue.advance(59 * SECOND)
    venue.tick()
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None and order.status == "new"

    venue.advance(2 * SECOND)
    venue.tick()
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.reason, order.updated_seq, order.updated_time) == ("expired", None, venue.seq, venue.time)
    assert_matches_engine(venue, store, 3)


def test_a_rejected_order_is_stored_with_its_reason_and_holds_nothing(venue: Venue, store: AnyStore) -> None:
    too_big = venue.order(1, BTC_USD, BUY, "100", "50000")  # 5,000,000 USD > 1,000,000
    venue.run(cmd.new_order, 1, 99, int(BUY), 1, 100)
    unknown = venue.seq
    venue.sync(store)
    order = store.get_order(too_big)
    assert order is not None
    assert (order.status, order.reason, order.leaves) == ("rejected", "insufficient_funds", "0.0000")
    order = store.get_order(unknown)
    assert order is not None
    assert (order.status, order.reason, order.symbol, order.price) == ("rejected", "unknown_symbol", "99", "100")
    assert _usd(store, 1)[1] == "0.000000"
    assert_matches_engine(venue, store, 3)


def test_a_stop_limit_waits_then_triggers_then_fills(venue: Venue, store: AnyStore) -> None:
    stop = venue.order(1, BTC_USD, BUY, "0.1", "50000", order_type=OrderType.STOP_LIMIT, stop_price="50100")
    venue.sync(store)
    order = store.get_order(stop)
    assert order is not None
    assert (order.status, order.stop_price, order.triggered_seq) == ("pending_trigger", "50100.00", None)
    assert _usd(store, 1)[1] == "5000.000000"  # a waiting stop-limit buy holds quantity x price
    assert_matches_engine(venue, store, 3)

    venue.order(2, BTC_USD, SELL, "0.1", "50100")
    venue.order(3, BTC_USD, BUY, "0.1", "50100")  # the last price reaches the stop; nothing left to buy at 50000
    venue.sync(store)
    order = store.get_order(stop)
    assert order is not None
    assert (order.status, order.triggered_seq, order.leaves) == ("triggered", venue.seq, "0.1000")
    assert_matches_engine(venue, store, 3)

    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    venue.sync(store)
    order = store.get_order(stop)
    assert order is not None
    assert (order.status, order.filled_quantity, order.average_price) == ("filled", "0.1000", "50000.00")
    assert_matches_engine(venue, store, 3)


def test_a_stop_that_triggers_into_a_crossing_book_fills_in_the_same_command(venue: Venue, store: AnyStore) -> None:
    stop = venue.order(1, BTC_USD, SELL, "0.2", "0", order_type=OrderType.STOP_MARKET, stop_price="49900",
                       time_in_force=TimeInForce.IOC)
    venue.sync(store)
    assert next(b for b in store.balances(1) if b.asset == "BTC").held == "0.20000000"  # a waiting sell holds its base
    venue.order(2, BTC_USD, BUY, "0.5", "49900")
    venue.order(3, BTC_USD, SELL, "0.1", "49900")  # trade at 49900: the stop fires and sells into the rest of the bid
    venue.sync(store)
    order = store.get_order(stop)
    assert order is not None
    assert (order.status, order.filled_quantity, order.triggered_seq) == ("filled", "0.2000", venue.seq)
    assert_matches_engine(venue, store, 3)


def test_a_stop_market_buy_by_quote_amount_holds_its_budget_while_waiting(venue: Venue, store: AnyStore) -> None:
    stop = venue.order(1, BTC_USD, BUY, 0, 0, order_type=OrderType.STOP_MARKET, time_in_force=TimeInForce.IOC,
                       quote_quantity="1000", stop_price="50100")
    venue.sync(store)
    order = store.get_order(stop)
    assert order is not None
    assert (order.status, order.quantity, order.quote_quantity) == ("pending_trigger", None, "1000.000000")
    assert _usd(store, 1)[1] == "1000.000000"
    assert_matches_engine(venue, store, 3)

    venue.order(2, BTC_USD, SELL, "1.0", "50100")
    venue.order(3, BTC_USD, BUY, "0.1", "50100")
    venue.sync(store)
    order = store.get_order(stop)
    assert order is not None
    assert order.status == "filled"  # 1000 USD buys 0.0199 BTC at 50100; what is left is less than a lot
    assert order.filled_quantity == "0.0199"
    assert _usd(store, 1)[1] == "0.000000"
    assert_matches_engine(venue, store, 3)


def test_a_stop_market_buy_by_base_holds_nothing_while_waiting(venue: Venue, store: AnyStore) -> None:
    venue.order(1, BTC_USD, BUY, "0.1", "0", order_type=OrderType.STOP_MARKET, time_in_force=TimeInForce.IOC,
                stop_price="50100")
    venue.sync(store)
    assert _usd(store, 1)[1] == "0.000000"
    assert_matches_engine(venue, store, 3)


def test_amend_updates_price_and_quantity_and_the_hold(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, BUY, "0.5", "49000")
    venue.amend(1, order_id, BTC_USD, limit="49500", quantity="0.3")
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.price, order.quantity, order.leaves) == ("new", "49500.00", "0.3000", "0.3000")
    assert order.updated_seq == venue.seq
    assert _usd(store, 1)[1] == "14850.000000"
    assert_matches_engine(venue, store, 3)


def test_amend_after_a_partial_fill_sets_the_open_quantity(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, SELL, "1.0", "50000")
    venue.order(2, BTC_USD, BUY, "0.4", "50000")
    venue.amend(1, order_id, BTC_USD, quantity="0.2")
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.quantity, order.leaves, order.filled_quantity) == (
        "partially_filled", "0.6000", "0.2000", "0.4000",
    )
    assert_matches_engine(venue, store, 3)


def test_amending_into_the_book_trades_like_a_new_order(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.3", "50000")
    order_id = venue.order(1, BTC_USD, BUY, "0.3", "49000")
    venue.amend(1, order_id, BTC_USD, limit="50000")
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.price, order.filled_quantity) == ("filled", "50000.00", "0.3000")
    assert_matches_engine(venue, store, 3)


def test_a_market_buy_by_quote_amount_that_spends_its_budget_is_filled(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    order_id = venue.market(1, BTC_USD, BUY, quote_quantity="2502")
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    # 500 lots cost 2500 USD; the 2 USD left cannot buy a lot, and the engine ends it without an event.
    assert (order.status, order.filled_quantity, order.reason) == ("filled", "0.0500", None)
    assert_matches_engine(venue, store, 3)


def test_a_market_buy_by_quote_amount_too_small_for_a_lot_is_cancelled(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    order_id = venue.market(1, BTC_USD, BUY, quote_quantity="3")
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.filled_quantity, order.reason) == ("cancelled", "0.0000", "insufficient_funds")
    assert_matches_engine(venue, store, 3)


def test_an_ioc_remainder_is_cancelled_after_its_fill(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    order_id = venue.order(1, BTC_USD, BUY, "0.3", "50000", time_in_force=TimeInForce.IOC)
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.reason, order.filled_quantity, order.leaves) == (
        "cancelled", "immediate_or_cancel", "0.1000", "0.0000",
    )
    assert_matches_engine(venue, store, 3)


def test_a_fill_or_kill_that_cannot_fill_is_cancelled_untouched(venue: Venue, store: AnyStore) -> None:
    venue.order(2, BTC_USD, SELL, "0.1", "50000")
    order_id = venue.order(1, BTC_USD, BUY, "0.3", "50000", time_in_force=TimeInForce.FOK)
    venue.sync(store)
    order = store.get_order(order_id)
    assert order is not None
    assert (order.status, order.reason, order.filled_quantity) == ("cancelled", "fill_or_kill", "0.0000")


def test_self_trade_decrement_cuts_the_maker_and_ends_the_taker(venue: Venue, store: AnyStore) -> None:
    maker = venue.order(1, BTC_USD, SELL, "0.5", "50000")
    taker = venue.order(1, BTC_USD, BUY, "0.2", "50000", stp=SelfTradePrevention.DECREMENT)
    venue.sync(store)
    maker_view, taker_view = store.get_order(maker), store.get_order(taker)
    assert maker_view is not None and taker_view is not None
    assert (maker_view.status, maker_view.leaves, maker_view.filled_quantity) == ("new", "0.3000", "0.0000")
    assert (taker_view.status, taker_view.reason, taker_view.leaves) == ("cancelled", "self_trade", "0.0000")
    assert_matches_engine(venue, store, 3)


def test_mass_cancel_closes_every_open_order_of_the_account(venue: Venue, store: AnyStore) -> None:
    ids = [
        venue.order(1, BTC_USD, BUY, "0.1", "49000"),
        venue.order(1, ETH_USD, SELL, "1", "2100"),
        venue.order(1, BTC_USD, BUY, "0.1", "50000", order_type=OrderType.STOP_LIMIT, stop_price="50100"),
    ]
    other = venue.order(2, BTC_USD, BUY, "0.1", "49000")
    venue.mass_cancel(1)
    venue.sync(store)
    assert [(o.order_id, o.status, o.reason) for o in store.list_orders(1)] == [
        (order_id, "cancelled", "mass_cancel") for order_id in reversed(ids)
    ]
    other_view = store.get_order(other)
    assert other_view is not None and other_view.status == "new"
    assert_matches_engine(venue, store, 3)


def test_list_orders_filters_by_symbol_and_open_or_closed_newest_first(venue: Venue, store: AnyStore) -> None:
    btc_open = venue.order(1, BTC_USD, BUY, "0.1", "49000")
    eth_open = venue.order(1, ETH_USD, BUY, "1", "1900")
    btc_closed = venue.order(1, BTC_USD, BUY, "0.1", "48000")
    venue.cancel(1, btc_closed)
    venue.order(2, BTC_USD, BUY, "0.1", "49000")
    venue.sync(store)

    def ids(**kwargs: object) -> list[int]:
        return [o.order_id for o in store.list_orders(1, **kwargs)]  # type: ignore[arg-type]

    assert ids() == [btc_closed, eth_open, btc_open]
    assert ids(status="open") == [eth_open, btc_open]
    assert ids(status="closed") == [btc_closed]
    assert ids(symbol="BTC-USD") == [btc_closed, btc_open]
    assert ids(symbol=ETH_USD.id, status="open") == [eth_open]
    assert ids(limit=1) == [btc_closed]
    assert store.list_orders(99) == []


def test_a_quantity_decrease_by_amend_keeps_the_order_open_and_releases_funds(venue: Venue, store: AnyStore) -> None:
    order_id = venue.order(1, BTC_USD, BUY, "0.5", "50000")
    venue.amend(1, order_id, BTC_USD, quantity="0.1")
    venue.sync(store)
    assert _usd(store, 1) == ("1000000.000000", "5000.000000", "995000.000000")


def test_the_expiry_times_of_open_gtd_orders_are_listed_earliest_first(venue: Venue, store: AnyStore) -> None:
    t = venue.time
    gtd = TimeInForce.GTD
    venue.order(1, BTC_USD, SELL, "0.1", "51000", time_in_force=gtd, expire_time=t + 90 * SECOND)
    venue.order(1, BTC_USD, SELL, "0.1", "51000", time_in_force=gtd, expire_time=t + 30 * SECOND)
    cancelled = venue.order(2, BTC_USD, SELL, "0.1", "51000", time_in_force=gtd, expire_time=t + 60 * SECOND)
    venue.cancel(2, cancelled)
    venue.order(1, BTC_USD, SELL, "0.1", "51000")  # GTC
    venue.order(3, BTC_USD, BUY, "0.1", "50000", order_type=OrderType.STOP_LIMIT, stop_price="50100",
                time_in_force=gtd, expire_time=t + 45 * SECOND)  # waiting for its trigger: open too
    venue.sync(store)
    assert store.open_gtd_expiries() == [t + 30 * SECOND, t + 45 * SECOND, t + 90 * SECOND]

    venue.advance(40 * SECOND)
    venue.tick()
    venue.sync(store)
    assert store.open_gtd_expiries() == [t + 45 * SECOND, t + 90 * SECOND]
