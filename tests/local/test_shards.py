"""Several engine shards: symbols split across engine processes, funds moved between them exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from e2e.helpers import GENEROUS, Server, register, wait_until

TWO_SHARDS = """
[[shards]]
name = "btc"
symbols = ["BTC-USD"]

[[shards]]
name = "eth"
symbols = ["ETH-USD"]
"""


@pytest.fixture
def two_shard_venue(tmp_path: Path) -> Iterator[Server]:
    config = tmp_path / "venue.toml"
    config.write_text(TWO_SHARDS)
    server = Server(tmp_path / "data", {**GENEROUS, "RIALTO_PROFILE": "local", "RIALTO_CONFIG": str(config)})
    server.start(timeout=60)
    yield server
    server.kill()


def test_each_shard_runs_its_own_symbols_and_order_ids_are_unique_across_them(two_shard_venue: Server) -> None:
    server = two_shard_venue
    status = server.status()
    assert [s["symbols"] for s in status["shards"]] == [["BTC-USD"], ["ETH-USD"]]
    user = register(server, "shards")
    user.fund(USD="100000", BTC="1")  # USD's home shard is the first trading it: btc
    btc = user.order(symbol="BTC-USD", side="buy", price="59000.00", quantity="0.1")
    assert btc.status_code == 201, btc.text
    # No USD on the eth shard yet: the order is refused for funds, not lost.
    eth = user.order(symbol="ETH-USD", side="buy", price="2900.00", quantity="1")
    assert eth.status_code == 422 and eth.json()["error"]["code"] == "insufficient_funds", eth.text
    assert int(eth.json()["error"]["order_id"]) >> 40 == 1  # stamped by shard 1
    assert int(btc.json()["id"]) >> 40 == 0


def test_a_transfer_moves_funds_between_shards_exactly_once(two_shard_venue: Server) -> None:
    server = two_shard_venue
    user = register(server, "mover")
    user.fund(USD="10000")
    moved = user.post("/v1/transfers", {"asset": "USD", "amount": "4000", "from_shard": "btc", "to_shard": "eth"})
    assert moved.status_code == 201, moved.text
    assert moved.json()["status"] == "in_transit"
    # The deposit on the eth shard follows; then ETH can be bought with it.
    def bought() -> bool:
        response = user.order(symbol="ETH-USD", side="buy", price="2900.00", quantity="1")
        return response.status_code == 201
    wait_until(bought, timeout=10, interval=0.2)
    balances = user.balances()
    assert Decimal(balances["USD"]["total"]) == Decimal("10000")  # moved, not duplicated nor lost
    assert Decimal(balances["USD"]["held"]) == Decimal("2900")

    too_much = user.post("/v1/transfers", {"asset": "USD", "amount": "7000", "from_shard": "btc", "to_shard": "eth"})
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "insufficient_funds"
    unknown = user.post("/v1/transfers", {"asset": "USD", "amount": "1", "from_shard": "btc", "to_shard": "moon"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_shard"


def test_a_transfer_agent_delivering_again_after_a_crash_credits_once(two_shard_venue: Server) -> None:
    """The agent may see a transfer-out twice (it re-reads from its checkpoint); the Lua guard adds one deposit."""
    import asyncio
    import json

    import redis

    from core.commands import deposit
    from services.matcher.records import Outcome
    from services.transfers import TransferAgent, transfer_out

    server = two_shard_venue
    settings = json.loads((server.data / "local-profile.json").read_text())
    prefix = settings["RIALTO_KEY_PREFIX"]
    user = register(server, "twice")
    user.fund(USD="100")
    command = transfer_out(user.account_id, 3, 50_000_000, transfer_id=987654321, to_shard=1)._replace(seq=5)
    from core.events import Event, EventKind
    withdrawn = Event(EventKind.WITHDRAWN, 5, 0, 0, 3, 0, user.account_id, 0, 0, 0, 50_000_000, 0, 0, 0, 0, 0)
    outcome = Outcome(1, command, None, [withdrawn])

    class NoLog:
        def read(self, start: int) -> list[tuple[int, bytes]]:
            return []

    async def deliver_twice() -> list[bool]:
        agent = TransferAgent("redis://127.0.0.1:6379/0", prefix, 0, NoLog(), 2)  # type: ignore[arg-type]
        try:
            return [await agent.deliver(outcome), await agent.deliver(outcome)]
        finally:
            await agent.close()

    assert asyncio.run(deliver_twice()) == [True, False]
    client = redis.Redis()
    try:
        entries = client.xrange(f"{prefix}commands:1")
    finally:
        client.close()
    deposits = [e for e in entries if e[1][b"r"][:8] == deposit(0, 0, 0, 0, 0)[0].to_bytes(8, "little", signed=True)]
    assert len(deposits) == 1
