"""Trading over REST, end to end: orders, fills, fees, balances, cancels, amends, stops, expiry, retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx

from e2e.helpers import Server, User, wait_until

Traders = Callable[..., User]


def d(text: str) -> Decimal:
    return Decimal(text)


def placed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def trade_at(traders: Traders, price: str, symbol: str = "BTC-USD") -> None:
    """Set the last trade price with a small trade between two fresh users."""
    seller = traders("seller", BTC="1", ETH="10")
    buyer = traders("buyer", USD="100000")
    quantity = "0.0100" if symbol == "BTC-USD" else "0.010"
    placed(seller.order(symbol=symbol, side="sell", price=price, quantity=quantity))
    taken = placed(buyer.order(symbol=symbol, side="buy", price=price, quantity=quantity))
    assert taken["status"] == "filled", taken


def test_two_users_trade_and_the_fills_fees_and_balances_add_up(venue: Server, traders: Traders) -> None:
    fees_before = venue.status()["fees"]
    alice = traders("alice", USD="100000")
    bob = traders("bob", BTC="2")

    bid = placed(alice.order(symbol="BTC-USD", side="buy", price="60000.00", quantity="0.5"))
    assert bid["status"] == "new" and bid["leaves"] == "0.5000" and bid["fills"] == []
    sell = placed(bob.order(symbol="BTC-USD", side="sell", price="59990.00", quantity="0.2"))
    assert sell["status"] == "filled" and sell["filled_quantity"] == "0.2000"
    assert sell["average_price"] == "60000.00"  # the maker's price
    (fill,) = sell["fills"]
    assert fill["price"] == "60000.00" and fill["liquidity"] == "taker"
    assert fill["fee"] == "24.000000" and fill["fee_asset"] == "USD"  # 20 bps of 12,000

    resting = alice.get(f"/v1/orders/{bid['id']}").json()
    assert resting["status"] == "partially_filled" and resting["leaves"] == "0.3000"
    assert resting["fee_total"] == "0.00020000" and resting["fee_asset"] == "BTC"  # 10 bps of 0.2 BTC
    (maker_fill,) = resting["fills"]
    assert maker_fill["trade_id"] == fill["trade_id"] and maker_fill["liquidity"] == "maker"

    a, b = alice.balances(), bob.balances()
    assert a["BTC"]["total"] == "0.19980000"
    assert a["USD"] == {"asset": "USD", "available": "70000.000000", "held": "18000.000000", "total": "88000.000000"}
    assert b["BTC"]["total"] == "1.80000000" and b["BTC"]["held"] == "0.00000000"
    assert b["USD"]["total"] == "11976.000000"

    fees_after = venue.status()["fees"]
    fee_usd = d(fees_after["USD"]) - d(fees_before["USD"])
    fee_btc = d(fees_after["BTC"]) - d(fees_before["BTC"])
    assert (fee_usd, fee_btc) == (d("24"), d("0.0002"))
    assert d(a["USD"]["total"]) + d(b["USD"]["total"]) + fee_usd == d("100000")
    assert d(a["BTC"]["total"]) + d(b["BTC"]["total"]) + fee_btc == d("2")
    assert [f["trade_id"] for f in bob.get("/v1/fills").json()] == [fill["trade_id"]]


def test_a_partial_fill_rests_the_rest_until_the_owner_cancels_it(venue: Server, traders: Traders) -> None:
    alice = traders("alice", BTC="1")
    bob = traders("bob", USD="100000")
    ask = placed(alice.order(symbol="BTC-USD", side="sell", price="60500.00", quantity="1"))
    placed(bob.order(symbol="BTC-USD", side="buy", price="60500.00", quantity="0.3"))
    book = venue.client().get("/v1/book/BTC-USD").json()
    assert ["60500.00", "0.7000"] in book["asks"]

    other = bob.delete(f"/v1/orders/{ask['id']}")
    assert other.status_code == 404 and other.json()["error"]["code"] == "unknown_order"
    cancelled = alice.delete(f"/v1/orders/{ask['id']}")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["reason"] == "user" and body["filled_quantity"] == "0.3000"
    assert alice.balances()["BTC"]["held"] == "0.00000000"
    book = venue.client().get("/v1/book/BTC-USD").json()
    assert all(level[0] != "60500.00" for level in book["asks"])
    again = alice.delete(f"/v1/orders/{ask['id']}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "unknown_order"


def test_an_amend_changes_open_quantity_and_price_and_the_hold_follows(venue: Server, traders: Traders) -> None:
    alice = traders("alice", USD="100000")
    bid = placed(alice.order(symbol="BTC-USD", side="buy", price="59000.00", quantity="0.5"))
    smaller = alice.patch(f"/v1/orders/{bid['id']}", {"quantity": "0.2"})
    assert smaller.status_code == 200, smaller.text
    assert smaller.json()["leaves"] == "0.2000" and smaller.json()["price"] == "59000.00"
    moved = alice.patch(f"/v1/orders/{bid['id']}", {"price": "59100.00"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["price"] == "59100.00" and moved.json()["leaves"] == "0.2000"
    assert alice.balances()["USD"]["held"] == "11820.000000"  # 0.2 x 59,100
    book = venue.client().get("/v1/book/BTC-USD").json()
    assert ["59100.00", "0.2000"] in book["bids"] and all(level[0] != "59000.00" for level in book["bids"])
    bad = alice.patch(f"/v1/orders/{bid['id']}", {"price": "1.00"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "price_out_of_band"


def test_a_stop_order_waits_for_the_last_trade_price_then_triggers(venue: Server, traders: Traders) -> None:
    trade_at(traders, "59900.00")
    waiting = traders("stopper", USD="100000")
    stop = placed(waiting.order(symbol="BTC-USD", side="buy", type="stop_limit", stop_price="60100.00",
                                price="60200.00", quantity="0.01"))
    assert stop["status"] == "pending_trigger"
    assert waiting.balances()["USD"]["held"] == "602.000000"
    trade_at(traders, "60100.00")
    triggered = wait_until(lambda: (o := waiting.get(f"/v1/orders/{stop['id']}").json())["status"] == "triggered" and o)
    assert triggered["price"] == "60200.00" and triggered["leaves"] == "0.0100"
    book = venue.client().get("/v1/book/BTC-USD").json()
    assert ["60200.00", "0.0100"] in book["bids"]


def test_a_gtd_order_expires_on_the_venues_clock_without_other_traffic(venue: Server, traders: Traders) -> None:
    alice = traders("alice", USD="100000")
    past = alice.order(symbol="BTC-USD", side="buy", price="59000.00", quantity="0.01", time_in_force="gtd",
                       expire_time=int(time.time() * 1000) - 1000)
    assert past.status_code == 400 and past.json()["error"]["code"] == "invalid_expire_time"
    order = placed(alice.order(symbol="BTC-USD", side="buy", price="59000.00", quantity="0.01",
                               time_in_force="gtd", expire_time=int(time.time() * 1000) + 800))
    assert order["status"] == "new" and order["expire_time"] is not None
    expired = wait_until(lambda: (o := alice.get(f"/v1/orders/{order['id']}").json())["status"] == "expired" and o,
                         timeout=5.0)
    assert expired["leaves"] == "0.0000"
    assert alice.balances()["USD"]["held"] == "0.000000"
    assert venue.status()["ticks"] >= 1


def test_a_retried_client_order_id_returns_the_first_result_even_when_sent_concurrently(
    venue: Server, traders: Traders,
) -> None:
    alice = traders("alice", USD="100000")
    first = alice.order(symbol="BTC-USD", side="buy", price="58000.00", quantity="0.01", client_order_id="retry-1")
    again = alice.order(symbol="BTC-USD", side="buy", price="58000.00", quantity="0.01", client_order_id="retry-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"

    def send(_: int) -> tuple[int, str]:
        r = alice.order(symbol="BTC-USD", side="buy", price="58000.00", quantity="0.02", client_order_id="retry-2")
        return r.status_code, r.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert {status for status, _ in results} == {201}
    assert len({order_id for _, order_id in results}) == 1
    orders = alice.get("/v1/orders", params={"status": "all"}).json()
    assert sorted(o["client_order_id"] for o in orders) == ["retry-1", "retry-2"]

    broke = traders("broke")
    refused = broke.order(symbol="BTC-USD", side="buy", price="58000.00", quantity="0.01", client_order_id="r-3")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "insufficient_funds"
    retried = broke.order(symbol="BTC-USD", side="buy", price="58000.00", quantity="0.01", client_order_id="r-3")
    assert retried.status_code == 422 and retried.json() == refused.json()


def test_the_callers_own_writes_are_visible_to_their_next_read(venue: Server, traders: Traders) -> None:
    alice = traders("alice", USD="100000")
    for i in range(10):
        order = placed(alice.order(symbol="BTC-USD", side="buy", price=f"{57000 + i}.00", quantity="0.01"))
        seen = alice.get(f"/v1/orders/{order['id']}")
        assert seen.status_code == 200 and seen.json()["status"] == "new"
        assert alice.delete(f"/v1/orders/{order['id']}").status_code == 200
        still_open = alice.get("/v1/orders", params={"status": "open"}).json()
        assert order["id"] not in {o["id"] for o in still_open}
    assert alice.balances()["USD"]["held"] == "0.000000"


def test_mass_cancel_cancels_only_the_callers_orders_on_that_symbol(venue: Server, traders: Traders) -> None:
    alice = traders("alice", USD="100000")
    bob = traders("bob", USD="100000")
    btc = placed(alice.order(symbol="BTC-USD", side="buy", price="58500.00", quantity="0.01"))
    eth = placed(alice.order(symbol="ETH-USD", side="buy", price="2900.00", quantity="0.1"))
    bobs = placed(bob.order(symbol="BTC-USD", side="buy", price="58500.00", quantity="0.01"))
    response = alice.delete("/v1/orders", params={"symbol": "BTC-USD"})
    assert response.status_code == 200 and response.json()["cancelled"] == [btc["id"]]
    assert alice.get(f"/v1/orders/{eth['id']}").json()["status"] == "new"
    assert bob.get(f"/v1/orders/{bobs['id']}").json()["status"] == "new"
    unknown = alice.delete("/v1/orders", params={"symbol": "DOGE-USD"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_symbol"


def test_a_market_buy_by_quote_amount_spends_at_most_that_amount(venue: Server, traders: Traders) -> None:
    seller = traders("seller", BTC="1")
    buyer = traders("buyer", USD="10000")
    placed(seller.order(symbol="BTC-USD", side="sell", price="60000.00", quantity="0.1"))
    bought = placed(buyer.order(symbol="BTC-USD", side="buy", type="market", quote_quantity="3000"))
    assert bought["status"] == "filled" and bought["filled_quantity"] == "0.0500"
    assert bought["filled_notional"] == "3000.000000" and bought["average_price"] == "60000.00"
    balances = buyer.balances()
    assert balances["USD"]["total"] == "7000.000000" and balances["BTC"]["total"] == "0.04990000"


def test_every_engine_rejection_answers_its_reason_code_and_not_201(venue: Server, traders: Traders) -> None:
    alice = traders("alice", USD="1000", BTC="0.1")
    placed(alice.order(symbol="BTC-USD", side="sell", price="60900.00", quantity="0.01"))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"side": "buy", "price": "60000.00", "quantity": "1"}, 422, "insufficient_funds"),
        ({"side": "buy", "price": "60950.00", "quantity": "0.01", "post_only": True}, 422, "post_only_would_trade"),
        ({"side": "buy", "quantity": "0.01"}, 400, "invalid_price"),
        ({"side": "buy", "price": "60000.00", "quantity": "0"}, 400, "invalid_quantity"),
        ({"side": "buy", "price": "60000.00", "quantity": "0.00001"}, 400, "invalid_quantity"),
        ({"side": "buy", "price": "60000.001", "quantity": "0.01"}, 400, "invalid_price"),
        ({"side": "buy", "type": "market", "quantity": "0.01", "time_in_force": "gtc"}, 400, "invalid_time_in_force"),
        ({"side": "buy", "price": "60000.00", "quantity": "0.01", "time_in_force": "gtd"}, 400, "invalid_expire_time"),
        ({"side": "buy", "type": "stop_limit", "price": "60000.00", "quantity": "0.01"}, 400, "invalid_stop_price"),
        ({"side": "buy", "price": "1.00", "quantity": "0.01"}, 422, "price_out_of_band"),
    ]
    for fields, status, code in cases:
        response = alice.order(symbol="BTC-USD", **fields)
        assert response.status_code == status, (fields, response.text)
        assert response.json()["error"]["code"] == code, (fields, response.text)


def test_the_faucet_is_capped_per_request_and_per_account_per_hour(venue: Server, traders: Traders) -> None:
    alice = traders("alice")
    too_much = alice.post("/v1/faucet", {"asset": "BTC", "amount": "10.00000001"})
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "faucet_limit"
    for _ in range(10):
        assert alice.post("/v1/faucet", {"asset": "BTC", "amount": "10"}).status_code == 200
    over = alice.post("/v1/faucet", {"asset": "BTC", "amount": "1"})
    assert over.status_code == 429 and over.json()["error"]["code"] == "faucet_limit"
    assert int(over.headers["Retry-After"]) > 0
    assert alice.balances()["BTC"]["total"] == "100.00000000"
    bad = alice.post("/v1/faucet", {"asset": "DOGE", "amount": "1"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_asset"
