"""The aws profile end to end: ``rialto up --profile aws`` on Kinesis, DynamoDB and S3 (moto's server mode),
with PostgreSQL for the ledger and Redis for market data, rate limits and client order ids."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.helpers import GENEROUS, Server, register, wait_until
from servers import create_database, drop_database, start_redis

from control.config import load_config
from services.aws import AwsSettings
from services.persistence.archive import TradeArchive


@pytest.fixture
def aws_venue_env(moto_endpoint: str, postgres_server: None, tmp_path: Path) -> Iterator[dict[str, str]]:
    start_redis()
    tag = secrets.token_hex(4)
    dsn = create_database("rialto_aws")
    yield {
        **GENEROUS,
        "RIALTO_PROFILE": "aws",
        "RIALTO_POSTGRES_DSN": dsn,
        "RIALTO_KEY_PREFIX": f"aws{tag}:",
        "RIALTO_AWS_ENDPOINT_URL": moto_endpoint,
        "RIALTO_AWS_KINESIS_STREAM": f"commands-{tag}",
        "RIALTO_AWS_EVENT_STREAM": f"events-{tag}",
        "RIALTO_AWS_TABLE_PREFIX": f"t{tag}-",
        "RIALTO_AWS_BUCKET": f"venue-{tag}",
        # Every stored trade is old enough, and the persister looks every second.
        "RIALTO_AWS_ARCHIVE_AFTER_DAYS": "0",
        "RIALTO_AWS_ARCHIVE_EVERY_SECONDS": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    drop_database(dsn)


def test_an_aws_venue_trades_and_recovers_from_its_s3_snapshot_and_kinesis_log(
    aws_venue_env: dict[str, str], tmp_path: Path,
) -> None:
    server = Server(tmp_path / "data", aws_venue_env).start(timeout=120)
    try:
        alice, bob = register(server, "alice"), register(server, "bob")
        alice.fund(USD="100000")
        bob.fund(BTC="1")
        bid = alice.order(symbol="BTC-USD", side="buy", price="60000.00", quantity="0.5", client_order_id="a1")
        assert bid.status_code == 201, bid.text
        sell = bob.order(symbol="BTC-USD", side="sell", price="59990.00", quantity="0.2")
        assert sell.status_code == 201 and sell.json()["status"] == "filled", sell.text
        # History from DynamoDB, balances from PostgreSQL. Reads wait for the reader's own writes; bob's fill
        # of alice's order reaches her history and her balance as each store's follower applies it (in
        # DynamoDB item by item: the fill can show before the order's new status).
        order = wait_until(lambda: (o := alice.get(f"/v1/orders/{bid.json()['id']}").json())["status"] != "new" and o["fills"] and o)
        assert order["status"] == "partially_filled" and len(order["fills"]) == 1
        wait_until(lambda: alice.balances()["BTC"]["total"] != "0.00000000")
        assert alice.balances()["BTC"]["total"] == "0.19980000"
        # The persister's archive schedule copies the stored trade to Parquet in S3.
        archive = TradeArchive(AwsSettings(endpoint_url=aws_venue_env["RIALTO_AWS_ENDPOINT_URL"],
                                           bucket=aws_venue_env["RIALTO_AWS_BUCKET"]), load_config().build_instruments())
        try:
            parts = wait_until(lambda: archive.parts("BTC-USD"), timeout=30)
            rows = [row for part in parts for row in archive.read(part).to_pylist()]
        finally:
            archive.close()
        assert [(r["symbol"], r["price"], r["quantity"], r["aggressor_side"]) for r in rows] == [
            ("BTC-USD", "60000.00", "0.2000", "sell")]
        status = server.status()
        sequence, state_hash = status["sequence"], status["state_hash"]
    finally:
        assert server.stop() == 0  # the shard writes its snapshot to S3 on the way out
    server = Server(tmp_path / "data", aws_venue_env).start(timeout=120)
    try:
        status = wait_until(lambda: (s := server.status())["state_hash"] and s, timeout=30)
        assert (status["sequence"], status["state_hash"]) == (sequence, state_hash)
        assert status["shards"][0]["recovery"]["snapshot_seq"] == sequence
        alice.server = server
        retry = alice.order(symbol="BTC-USD", side="buy", price="60000.00", quantity="0.5", client_order_id="a1")
        assert retry.status_code == 201 and retry.json()["id"] == bid.json()["id"]
    finally:
        server.kill()
