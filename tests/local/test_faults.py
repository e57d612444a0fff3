"""The local profile under faults: any process killed, Redis or PostgreSQL stopped, the whole log replayed.

Each test runs a whole venue (``rialto up --profile local``: supervisor,
engine shard, persister, market data, two gateway workers) on this
machine's Redis and PostgreSQL, with its own database and Redis key prefix,
and clients trading through it over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.helpers import GENEROUS, Server, User, register, wait_until
from servers import start_postgres, start_redis, stop_postgres_hard, stop_redis_hard

CLIENTS = 3
LOCAL = {**GENEROUS, "RIALTO_PROFILE": "local"}


@pytest.fixture
def local_venue(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(env: dict[str, str] | None = None) -> Server:
        server = Server(tmp_path / "data", {**LOCAL, **(env or {})}).start(timeout=60)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
    start_redis()
    start_postgres()


async def trade(server: Server, users: list[User], seconds: float, tolerate: bool = False,
                ) -> tuple[dict[str, dict[str, Any]], set[str], int]:
    """Clients place (and now and then cancel) orders for ``seconds``: (acknowledged, cancelled, refused)."""
    acked: dict[str, dict[str, Any]] = {}
    cancelled: set[str] = set()
    refused = [0]
    stop_at = time.monotonic() + seconds

    async def client(n: int, user: User) -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=user.headers, timeout=10.0) as http:
            mine: list[str] = []
            i = 0
            while time.monotonic() < stop_at:
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
                            "client_order_id": f"c{n}-{i}-{os.getpid()}"})
                        if response.status_code == 201:
                            body = response.json()
                            acked[body["id"]] = body
                            mine.append(body["id"])
                    if response.status_code >= 500:
                        assert response.status_code == 503, response.text
                        assert response.json()["error"]["code"] in ("unavailable", "not_ready"), response.text
                        refused[0] += 1
                        await asyncio.sleep(0.05)
                except httpx.TransportError:
                    if not tolerate:
                        raise
                    refused[0] += 1
                    await asyncio.sleep(0.05)
                i += 1

    await asyncio.gather(*(client(n, user) for n, user in enumerate(users)))
    return acked, cancelled, refused[0]


def check_nothing_lost(server: Server, users: list[User], acked: dict[str, dict[str, Any]],
                       cancelled: set[str], given: dict[str, Decimal]) -> None:
    """Every acknowledged order is there exactly once, fills add up, balances plus fees are what was given."""
    orders: dict[str, dict[str, Any]] = {}
    for user in users:
        response = user.get("/v1/orders", params={"status": "all", "limit": 1000})
        assert response.status_code == 200, response.text
        mine = response.json()
        assert len(mine) < 1000
        ids = [o["id"] for o in mine]
        assert len(ids) == len(set(ids)), "an order appears twice"
        orders.update({o["id"]: o for o in mine})
    for order_id, body in acked.items():
        assert order_id in orders, f"acknowledged order {order_id} is missing"
        assert orders[order_id]["client_order_id"] == body["client_order_id"]
    for order_id in cancelled:
        assert orders[order_id]["status"] == "cancelled"
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for user in users:
        fills = user.get("/v1/fills", params={"limit": 1000}).json()
        keys = [(f["trade_id"], f["liquidity"]) for f in fills]
        assert len(keys) == len(set(keys)), "a fill appears twice"
        for f in fills:
            filled[f["order_id"]] += Decimal(f["quantity"])
    for order_id, order in orders.items():
        assert filled[order_id] == Decimal(order["filled_quantity"]), order
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for user in users:
        for asset, balance in user.balances().items():
            totals[asset] += Decimal(balance["total"])
    for asset, amount in server.status()["fees"].items():
        totals[asset] += Decimal(amount)
    for asset, amount in given.items():
        assert totals[asset] == amount, (asset, totals[asset], amount)


def funded_users(server: Server) -> tuple[list[User], dict[str, Decimal]]:
    users = [register(server, f"fault{n}") for n in range(CLIENTS)]
    for user in users:
        user.fund(USD="1000000", BTC="10")
    return users, {"USD": Decimal(1_000_000) * CLIENTS, "BTC": Decimal(10) * CLIENTS}


def projection_caught_up(server: Server) -> bool:
    status = server.status()
    return bool(status["projection"]["applied"].get("0", 0) >= status["sequence"])


def restarts(server: Server) -> dict[str, int]:
    import json

    state = json.loads((server.data / "supervisor.json").read_text())
    return {name: info["restarts"] for name, info in state.items()}


@pytest.mark.parametrize("role", ["shard-0", "persister", "marketdata", "gateway-0"])
def test_a_process_killed_under_load_is_restarted_and_nothing_acknowledged_is_lost(
    local_venue: Callable[..., Server], role: str,
) -> None:
    server = local_venue()
    users, given = funded_users(server)
    before = restarts(server)[role]

    async def kill_during_load() -> tuple[dict[str, dict[str, Any]], set[str], int]:
        load = asyncio.create_task(trade(server, users, 4.0, tolerate=True))
        await asyncio.sleep(1.5)
        os.kill(server.pids()[role], signal.SIGKILL)
        return await load

    acked, cancelled, _ = asyncio.run(kill_during_load())
    assert len(acked) >= 20, f"only {len(acked)} orders acknowledged"
    wait_until(lambda: restarts(server)[role] > before, timeout=20)
    wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200, timeout=30)
    # Trading goes on after the restart.
    more, more_cancelled, _ = asyncio.run(trade(server, users, 1.0, tolerate=True))
    assert more, "no order was acknowledged after the restart"
    acked.update(more)
    check_nothing_lost(server, users, acked, cancelled | more_cancelled, given)


def test_redis_stopped_mid_run_gives_503_then_the_venue_catches_up(local_venue: Callable[..., Server]) -> None:
    server = local_venue()
    users, given = funded_users(server)

    async def outage() -> tuple[dict[str, dict[str, Any]], set[str], int]:
        load = asyncio.create_task(trade(server, users, 7.0, tolerate=True))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(stop_redis_hard)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(start_redis)
        return await load

    acked, cancelled, refused = asyncio.run(outage())
    assert refused > 0, "Redis was down and nothing was refused"
    wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200, timeout=30)
    wait_until(lambda: projection_caught_up(server), timeout=30)
    check_nothing_lost(server, users, acked, cancelled, given)


def test_postgres_stopped_mid_run_gives_503_for_reads_then_the_projection_catches_up(
    local_venue: Callable[..., Server],
) -> None:
    server = local_venue()
    users, given = funded_users(server)

    async def outage() -> tuple[dict[str, dict[str, Any]], set[str], int, int]:
        load = asyncio.create_task(trade(server, users, 6.0, tolerate=True))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(stop_postgres_hard)
        await asyncio.sleep(0.5)
        read = await asyncio.to_thread(users[0].get, "/v1/orders")
        await asyncio.sleep(1.5)
        await asyncio.to_thread(start_postgres)
        acked, cancelled, refused = await load
        return acked, cancelled, refused, read.status_code

    acked, cancelled, _, read_status = asyncio.run(outage())
    assert read_status == 503
    wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200, timeout=30)
    wait_until(lambda: projection_caught_up(server), timeout=30)
    # Each gateway's connection pool reconnects with backoff (psycopg_pool: 1 s, 2 s, 4 s, ...).
    wait_until(lambda: all(user.get("/v1/orders").status_code == 200 for user in users), timeout=30)
    check_nothing_lost(server, users, acked, cancelled, given)


def test_a_replay_of_the_whole_log_into_an_empty_database_gives_identical_projections(
    local_venue: Callable[..., Server],
) -> None:
    from servers import create_database, drop_database

    from control.config import load_config
    from control.rebuild import rebuild_projections
    from services.persistence.postgres import PostgresStore

    server = local_venue()
    users, _ = funded_users(server)
    acked, _, _ = asyncio.run(trade(server, users, 1.5))
    assert acked
    settings = __import__("json").loads((server.data / "local-profile.json").read_text())
    config = load_config(environ={**settings, "RIALTO_DATA": str(server.data)})
    # Everything logged is projected before comparing (the persister runs beside this test).
    wait_until(lambda: projection_caught_up(server), timeout=20)
    server.stop()
    target = create_database("rialto_rebuild")
    try:
        assert rebuild_projections(config, target) > 0
        live = PostgresStore(config.postgres_dsn, config.build_instruments(), readonly=True)
        rebuilt = PostgresStore(target, config.build_instruments(), readonly=True)
        try:
            assert rebuilt.dump() == live.dump()
            assert rebuilt.check_ledger() == [] and rebuilt.check_holds() == []
        finally:
            live.close()
            rebuilt.close()
    finally:
        drop_database(target)
