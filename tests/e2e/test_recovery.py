"""Durability, end to end: a kill -9 under load loses nothing acknowledged; a clean restart is exact."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from control.config import Config
from e2e.helpers import GENEROUS, ROOT, Server, User, free_port, register
from services.persistence import SqliteStore

CLIENTS = 4
LOAD_SECONDS = 1.5


def rialto(*args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "control", *args, "--json"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


async def trade_until_killed(server: Server, users: list[User]) -> tuple[dict[str, tuple[User, dict[str, Any]]],
                                                                           set[str]]:
    """Clients place (and now and then cancel) orders until the server is killed under them."""
    acked: dict[str, tuple[User, dict[str, Any]]] = {}
    cancelled: set[str] = set()

    async def client(n: int, user: User) -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=user.headers, timeout=10.0) as http:
            mine: list[str] = []
            i = 0
            while True:
                side = "buy" if (i + n) % 2 == 0 else "sell"
                price = f"{59950 + (i * 7 + n * 13) % 100}.00"
                try:
                    if i % 5 == 4 and mine:
                        target = mine.pop(0)
                        response = await http.delete(f"/v1/orders/{target}")
                        if response.status_code == 200:
                            cancelled.add(target)
                    else:
                        response = await http.post("/v1/orders", json={
                            "symbol": "BTC-USD", "side": side, "price": price, "quantity": "0.0100",
                            "client_order_id": f"c{n}-{i}"})
                        if response.status_code == 201:
                            body = response.json()
                            acked[body["id"]] = (user, body)
                            mine.append(body["id"])
                except httpx.TransportError:
                    return
                i += 1

    tasks = [asyncio.create_task(client(n, user)) for n, user in enumerate(users)]
    await asyncio.sleep(LOAD_SECONDS)
    server.kill()
    await asyncio.gather(*tasks)
    return acked, cancelled


def all_orders(user: User) -> list[dict[str, Any]]:
    response = user.get("/v1/orders", params={"status": "all", "limit": 1000})
    assert response.status_code == 200, response.text
    orders: list[dict[str, Any]] = response.json()
    assert len(orders) < 1000, "raise the limit: the check must see every order"
    return orders


def test_a_kill_9_under_load_loses_no_acknowledged_order_and_applies_nothing_twice(
    start_server: Callable[..., Server], tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server(data=data, env=GENEROUS)
    users = [register(server, f"crash{n}") for n in range(CLIENTS)]
    for user in users:
        user.fund(USD="1000000", BTC="10")
    given = {"USD": Decimal(1_000_000) * CLIENTS, "BTC": Decimal(10) * CLIENTS}

    acked, cancelled = asyncio.run(trade_until_killed(server, users))
    assert len(acked) >= 20, f"only {len(acked)} orders were acknowledged before the kill"

    server = start_server(data=data, env=GENEROUS)
    for user in users:
        user.server = server
    status = server.status()
    assert status["recovery"]["replayed_commands"] > 0

    orders: dict[str, dict[str, Any]] = {}
    for user in users:
        mine = all_orders(user)
        ids = [o["id"] for o in mine]
        assert len(ids) == len(set(ids)), "an order appears twice"
        coids = [o["client_order_id"] for o in mine if o["client_order_id"]]
        assert len(coids) == len(set(coids)), "a client order id names two orders"
        orders.update({o["id"]: o for o in mine})
    for order_id, (_user, body) in acked.items():
        assert order_id in orders, f"acknowledged order {order_id} is missing after the crash"
        stored = orders[order_id]
        assert stored["client_order_id"] == body["client_order_id"]
        assert Decimal(stored["filled_quantity"]) >= Decimal(body["filled_quantity"])
    for order_id in cancelled:
        assert orders[order_id]["status"] == "cancelled"

    # Fills: each side of each trade once, adding up to the orders' filled quantities.
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for user in users:
        fills = user.get("/v1/fills", params={"limit": 1000}).json()
        keys = [(f["trade_id"], f["liquidity"]) for f in fills]
        assert len(keys) == len(set(keys)), "a fill appears twice"
        for f in fills:
            filled[f["order_id"]] += Decimal(f["quantity"])
    for order_id, order in orders.items():
        assert filled[order_id] == Decimal(order["filled_quantity"]), order

    # The book is exactly the open orders.
    levels: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for order in orders.values():
        if order["status"] in ("new", "partially_filled"):
            levels[(order["side"], order["price"])] += Decimal(order["leaves"])
    book = httpx.get(f"{server.url}/v1/book/BTC-USD", params={"depth": 1000}).json()
    seen = {("buy", p): Decimal(q) for p, q in book["bids"]} | {("sell", p): Decimal(q) for p, q in book["asks"]}
    assert seen == dict(levels)

    # Balances conserve: every unit the faucet gave is in some account or the fee account.
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for user in users:
        for asset, balance in user.balances().items():
            totals[asset] += Decimal(balance["total"])
    for asset, amount in server.status()["fees"].items():
        totals[asset] += Decimal(amount)
    assert totals["USD"] == given["USD"] and totals["BTC"] == given["BTC"] and totals["ETH"] == 0

    # The projection's own books balance too (read beside the running venue).
    store = SqliteStore(data / "projections.sqlite", Config().build_instruments(), readonly=True)
    try:
        assert store.check_ledger() == [] and store.check_holds() == []
    finally:
        store.close()

    # A retry of an order acknowledged before the crash still returns that order.
    order_id, (user, body) = next(iter(acked.items()))
    retry = user.order(symbol="BTC-USD", side=body["side"], price=body["price"], quantity="0.0100",
                       client_order_id=body["client_order_id"])
    assert retry.status_code == 201 and retry.json()["id"] == order_id
    assert retry.headers.get("Idempotent-Replayed") == "true"


def test_a_clean_restart_restores_the_same_engine_state_from_the_snapshot(
    start_server: Callable[..., Server], tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server(data=data, env=GENEROUS)
    alice, bob = register(server, "alice"), register(server, "bob")
    alice.fund(USD="100000")
    bob.fund(BTC="2", ETH="5")
    for price in ("60000.00", "59990.00", "59980.00"):
        assert alice.order(symbol="BTC-USD", side="buy", price=price, quantity="0.1").status_code == 201
    assert bob.order(symbol="BTC-USD", side="sell", price="59985.00", quantity="0.15").status_code == 201
    assert bob.order(symbol="ETH-USD", side="sell", price="3100.00", quantity="1", time_in_force="gtd",
                     expire_time=4_000_000_000_000).status_code == 201
    assert alice.order(symbol="BTC-USD", side="sell", type="stop_market", stop_price="59000.00",
                       quantity="0.01").status_code == 201
    before = server.status()
    online = rialto("status", "--url", server.url)
    assert online["ready"] is True and online["state_hash"] == before["state_hash"]
    assert online["metrics"]["rialto_engine_sequence"] == before["sequence"]
    orders_before = all_orders(alice) + all_orders(bob)
    balances_before = [alice.balances(), bob.balances()]

    assert server.stop() == 0
    snapshots = sorted((data / "snapshots").glob("snapshot-*.bin"))
    assert snapshots and snapshots[-1].name == f"snapshot-{before['sequence']:020d}.bin"

    offline = rialto("status", "--data", str(data), "--url", f"http://127.0.0.1:{free_port()}")
    assert offline["source"] == "data"
    assert offline["snapshot"]["seq"] == before["sequence"]
    assert offline["command_log"]["last"] == before["command_log"]["last"]
    assert offline["projection"]["position"] == before["sequence"]
    rebuilt_path = tmp_path / "rebuilt.sqlite"
    replayed = rialto("replay", "--data", str(data), "--projections", str(rebuilt_path))
    assert replayed["state_hash"] == before["state_hash"] and replayed["sequence"] == before["sequence"]
    assert replayed["snapshot"]["matches_journal"] is True
    assert replayed["projections"]["ledger_problems"] == 0
    rebuilt = SqliteStore(rebuilt_path, Config().build_instruments(), readonly=True)
    original = SqliteStore(data / "projections.sqlite", Config().build_instruments(), readonly=True)
    try:
        assert rebuilt.dump() == original.dump()
    finally:
        rebuilt.close()
        original.close()

    again = start_server(data=data, env=GENEROUS)
    alice.server = bob.server = again
    after = again.status()
    assert (after["state_hash"], after["sequence"]) == (before["state_hash"], before["sequence"])
    assert after["recovery"]["snapshot_seq"] == before["sequence"]
    assert after["recovery"]["replayed_commands"] == 0
    # The same tokens still work (signing keys persist, sealed by data/secret.key), and nothing moved.
    assert all_orders(alice) + all_orders(bob) == orders_before
    assert [alice.balances(), bob.balances()] == balances_before
    book = httpx.get(f"{again.url}/v1/book/BTC-USD").json()
    assert book["sequence"] == before["sequence"] and book["bids"]
