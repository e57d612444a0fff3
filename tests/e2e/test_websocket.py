"""The WebSocket API, end to end: book snapshot and deltas, trades, account streams, orders, cancel-on-disconnect."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any

import websockets

from e2e.helpers import Server, User, wait_until

Traders = Callable[..., User]


async def receive(socket: Any, want: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
    """The next frame for which ``want`` holds (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = json.loads(await socket.recv())
            if want(frame):
                return frame


async def receive_each(socket: Any, *wants: Callable[[dict[str, Any]], bool],
                       timeout: float = 5.0) -> list[dict[str, Any]]:
    """The first frame for each of ``wants``, in whatever order they arrive (an order's reply and the
    account streams' frames come by different paths in the local profile)."""
    found: list[dict[str, Any] | None] = [None] * len(wants)
    async with asyncio.timeout(timeout):
        while any(frame is None for frame in found):
            frame = json.loads(await socket.recv())
            for i, want in enumerate(wants):
                if found[i] is None and want(frame):
                    found[i] = frame
                    break
    return [frame for frame in found if frame is not None]


def typed(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("type") == kind


def test_book_sends_a_snapshot_then_deltas_with_consecutive_update_ids(venue: Server, traders: Traders) -> None:
    maker = traders("maker", USD="1000000", BTC="5")
    prices = ["58100.00", "58200.00", "58300.00", "58400.00"]

    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with websockets.connect(venue.ws_url) as socket:
            await socket.send(json.dumps({"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "id": 1}))
            await receive(socket, lambda f: f.get("type") == "subscribed" and f.get("id") == 1)
            snapshot = await receive(socket, typed("book_snapshot"))
            deltas = []
            for price in prices:
                response = await asyncio.to_thread(maker.order, symbol="BTC-USD", side="buy", price=price,
                                                   quantity="0.01")
                assert response.status_code == 201, response.text
                deltas.append(await receive(socket, typed("book")))
            cancel = await asyncio.to_thread(maker.delete, "/v1/orders")
            assert cancel.status_code == 200
            while True:  # until the cancels have arrived (possibly coalesced)
                deltas.append(await receive(socket, typed("book")))
                levels = {p: q for d in deltas for p, q in d["bids"]}
                if all(levels.get(p) == "0.0000" for p in prices):
                    return snapshot, deltas

    snapshot, deltas = asyncio.run(run())
    assert [d["u"] for d in deltas] == list(range(snapshot["u"] + 1, snapshot["u"] + 1 + len(deltas)))
    assert ["58100.00", "0.0100"] in deltas[0]["bids"]
    assert all(d["symbol"] == "BTC-USD" for d in deltas)


def test_trades_stream_carries_each_trade_once(venue: Server, traders: Traders) -> None:
    seller = traders("seller", BTC="1")
    buyer = traders("buyer", USD="100000")

    async def run() -> dict[str, Any]:
        async with websockets.connect(venue.ws_url) as socket:
            await socket.send(json.dumps({"op": "subscribe", "channel": "trades", "symbol": "BTC-USD"}))
            await receive(socket, typed("subscribed"))
            await asyncio.to_thread(seller.order, symbol="BTC-USD", side="sell", price="60000.00", quantity="0.03")
            taken = await asyncio.to_thread(buyer.order, symbol="BTC-USD", side="buy", price="60000.00",
                                            quantity="0.03")
            assert taken.status_code == 201, taken.text
            return await receive(socket, typed("trades"))

    frame = asyncio.run(run())
    (trade,) = frame["trades"]
    assert trade["price"] == "60000.00" and trade["quantity"] == "0.0300" and trade["side"] == "buy"


def test_an_authenticated_socket_places_orders_and_streams_its_orders_and_balances(
    venue: Server, traders: Traders,
) -> None:
    alice = traders("alice", USD="100000")

    async def run() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with websockets.connect(venue.ws_url) as socket:
            await socket.send(json.dumps({"op": "subscribe", "channel": "orders", "id": "too-early"}))
            refused = await receive(socket, typed("error"))
            assert refused["error"]["code"] == "authentication_required" and refused["id"] == "too-early"
            await socket.send(json.dumps({"op": "auth", "token": alice.token, "id": "a"}))
            authenticated = await receive(socket, typed("authenticated"))
            assert authenticated["account_id"] == alice.account_id
            for channel in ("orders", "balances"):
                await socket.send(json.dumps({"op": "subscribe", "channel": channel}))
            first_balances = await receive(socket, typed("balances"))
            await socket.send(json.dumps({"op": "place_order", "id": "p1", "order": {
                "symbol": "BTC-USD", "side": "buy", "price": "57500.00", "quantity": "0.1",
                "client_order_id": "ws-1"}}))
            reply, event, changed = await receive_each(
                socket, lambda f: f.get("id") == "p1", typed("order_event"), typed("balances"))
            await socket.send(json.dumps({"op": "place_order", "id": "p2", "order": {
                "symbol": "BTC-USD", "side": "buy", "price": "57500.00", "quantity": "100"}}))
            rejected = await receive(socket, lambda f: f.get("id") == "p2")
            assert rejected["type"] == "error" and rejected["error"]["code"] == "insufficient_funds"
            await socket.send(json.dumps({"op": "cancel_order", "id": "c1", "order_id": reply["order"]["id"]}))
            cancelled = await receive(socket, lambda f: f.get("id") == "c1")
            assert cancelled["order"]["status"] == "cancelled"
            return first_balances, reply, event, changed

    first_balances, reply, event, changed = asyncio.run(run())
    assert {b["asset"]: b["available"] for b in first_balances["balances"]}["USD"] == "100000.000000"
    assert reply["type"] == "order" and reply["order"]["status"] == "new"
    assert reply["order"]["client_order_id"] == "ws-1"
    assert event["event"] == "accepted" and event["order_id"] == reply["order"]["id"]
    assert {b["asset"]: b["held"] for b in changed["balances"]}["USD"] == "5750.000000"
    assert alice.get(f"/v1/orders/{reply['order']['id']}").json()["status"] == "cancelled"


def test_bad_socket_messages_get_error_frames_and_the_socket_stays_open(venue: Server) -> None:
    async def run() -> list[str]:
        codes = []
        async with websockets.connect(venue.ws_url) as socket:
            for message in ("{oops", "[1, 2]", json.dumps({"op": "dance"}),
                            json.dumps({"op": "subscribe", "channel": "book", "symbol": "NOPE"}),
                            json.dumps({"op": "place_order", "order": {}}),
                            json.dumps({"op": "auth", "token": "x.y.z"})):
                await socket.send(message)
                codes.append((await receive(socket, typed("error")))["error"]["code"])
            await socket.send(json.dumps({"op": "ping", "id": 7}))
            assert (await receive(socket, typed("pong")))["id"] == 7
        return codes

    assert asyncio.run(run()) == ["malformed_json", "invalid_field", "unknown_op", "unknown_symbol",
                                  "authentication_required", "token_invalid"]


def test_cancel_on_disconnect_cancels_the_accounts_open_orders_when_the_socket_closes(
    venue: Server, traders: Traders,
) -> None:
    alice = traders("alice", USD="100000")
    kept = alice.order(symbol="ETH-USD", side="buy", price="2800.00", quantity="0.1").json()

    async def run() -> str:
        async with websockets.connect(venue.ws_url, additional_headers=alice.headers) as socket:
            await socket.send(json.dumps({"op": "cancel_on_disconnect", "enabled": True, "id": 1}))
            assert (await receive(socket, typed("cancel_on_disconnect")))["enabled"] is True
            await socket.send(json.dumps({"op": "place_order", "id": 2, "order": {
                "symbol": "BTC-USD", "side": "buy", "price": "57000.00", "quantity": "0.01"}}))
            reply = await receive(socket, lambda f: f.get("id") == 2)
            order_id: str = reply["order"]["id"]
            return order_id

    order_id = asyncio.run(run())
    def cancelled(order: str) -> dict[str, Any] | None:
        found: dict[str, Any] = alice.get(f"/v1/orders/{order}").json()
        return found if found["status"] == "cancelled" else None

    for placed_id in (order_id, kept["id"]):
        done = wait_until(functools.partial(cancelled, placed_id))
        assert done["reason"] == "mass_cancel"
