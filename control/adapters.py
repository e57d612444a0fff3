"""The one place a profile becomes technology (local and aws profiles).

Every process of a multi-process venue asks this module for its outside
world; nothing in ``services/`` knows which profile it runs in.

=====================  =========================  ===============================
what                   local                      aws
=====================  =========================  ===============================
command log (shard k)  Redis Stream               Kinesis stream, partition key k
                       ``<prefix>commands:<k>``   (``aws.kinesis_stream``)
event log (shard k)    ``<prefix>events:<k>``     Kinesis ``aws.event_stream``
snapshots (shard k)    ``<data>/snapshots/<k>``   S3 ``snapshots/<k>/``
projections            PostgreSQL                 Aurora PostgreSQL (ledger,
                                                  balances) + DynamoDB (history)
accounts, keys         PostgreSQL                 Aurora PostgreSQL
rate limits, client    Redis                      ElastiCache Redis
order ids, market data
=====================  =========================  ===============================

The embedded profile's single process builds its adapters in
``control.venue.open_adapters``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from control.config import Config, ConfigError
from services.log.base import Log
from services.matcher.snapshots import DiskSnapshotStore, SnapshotStore


def _aws_settings(config: Config) -> Any:
    from services.aws import AwsSettings

    a = config.aws
    return AwsSettings(
        region=a.region, endpoint_url=a.endpoint_url or None, kinesis_stream=a.kinesis_stream,
        event_stream=a.event_stream, table_prefix=a.table_prefix, bucket=a.bucket,
    )


def stream_key(config: Config, kind: str, shard: int) -> str:
    return f"{config.key_prefix}{kind}:{shard}"


def command_log(config: Config, shard: int) -> Log:
    """Shard ``shard``'s command log: what gateways append and the engine shard follows."""
    return _log(config, "commands", shard)


def event_log(config: Config, shard: int) -> Log:
    """Shard ``shard``'s event log: outcomes for the gateways, the persister and market data."""
    return _log(config, "events", shard)


def _log(config: Config, kind: str, shard: int) -> Log:
    if config.profile == "local":
        from services.log.redis_streams import RedisStreamLog

        return RedisStreamLog(config.redis_url, stream_key(config, kind, shard))
    if config.profile == "aws":
        from services.log.kinesis import KinesisLog

        settings = _aws_settings(config)
        stream = config.aws.kinesis_stream if kind == "commands" else config.aws.event_stream
        return KinesisLog(settings, stream, partition_key=str(shard))
    raise ConfigError(f"the {config.profile} profile has no shared logs")


def snapshot_store(config: Config, shard: int) -> SnapshotStore:
    if config.profile == "aws":
        from services.matcher.s3_snapshots import S3SnapshotStore

        return S3SnapshotStore(_aws_settings(config), prefix=f"snapshots/{shard}")
    return DiskSnapshotStore(Path(config.data_dir) / "snapshots" / str(shard))


def projection_store(config: Config, readonly: bool = False, shard: int = 0) -> Any:
    """The projection store the persister writes (one per shard: each keeps its own position) and the
    gateways read."""
    from services.persistence.postgres import PostgresStore

    # A reader answers 503 quickly when PostgreSQL is away; the persister waits longer and retries anyway.
    return PostgresStore(config.postgres_dsn, config.build_instruments(), readonly=readonly,
                         timeout=2.0 if readonly else 10.0, shard=shard)


def reader(config: Config) -> Any:
    """What the gateways query: PostgreSQL (local); DynamoDB history beside Aurora balances (aws)."""
    ledger = projection_store(config, readonly=True)
    history = history_store(config)
    if history is None:
        return ledger
    from services.persistence.split import SplitReader

    return SplitReader(history, ledger)


def history_store(config: Config, shard: int = 0) -> Any | None:
    """aws profile: orders, trades and candles in DynamoDB (None elsewhere)."""
    if config.profile != "aws":
        return None
    from services.persistence.dynamodb import DynamoHistoryStore

    return DynamoHistoryStore(_aws_settings(config), config.build_instruments(), shard=shard)


def auth_store(config: Config) -> Any:
    from services.gateway.auth.postgres_store import PostgresAuthStore

    return PostgresAuthStore(config.postgres_dsn)


def rate_limiter(config: Config) -> Any:
    from services.gateway.ratelimit_redis import LeasedRateLimiter, RedisRateLimiter

    return LeasedRateLimiter(RedisRateLimiter(config.redis_url, f"{config.key_prefix}rate:"))


def client_order_ids(config: Config) -> Any:
    from services.gateway.order_id_claims import RedisClientOrderIds

    return RedisClientOrderIds(config.redis_url, f"{config.key_prefix}coid:")


def check_servers(config: Config) -> None:
    """Refuse to start on servers that would lose acknowledged orders, with what to change; migrate PostgreSQL."""
    from services.log.redis_streams import check_durability
    from services.persistence.postgres import migrate

    if config.profile == "local" and config.redis_fsync != "none":
        check_durability(config.redis_url, require=config.redis_fsync)
    create_database_if_missing(config.postgres_dsn)
    migrate(config.postgres_dsn)
    if config.profile == "aws":
        ensure_aws_resources(config)


def create_database_if_missing(dsn: str) -> None:
    """A first start on a fresh PostgreSQL server makes the venue's database (then migrations fill it)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from services.persistence.postgres import StoreUnavailable

    name = conninfo_to_dict(dsn).get("dbname")
    if not name:
        return
    try:
        with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True, connect_timeout=5) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
    except psycopg.errors.DuplicateDatabase:
        pass  # another process made it first
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"PostgreSQL for {name!r} is unavailable: {exc}") from exc


def ensure_aws_resources(config: Config) -> None:
    """Create the streams, tables and bucket if missing (the CDK app creates them in production)."""
    from services.log.kinesis import KinesisLog
    from services.matcher.s3_snapshots import S3SnapshotStore
    from services.persistence.dynamodb import DynamoHistoryStore

    settings = _aws_settings(config)
    shards = len(config.shard_specs())
    for stream in (config.aws.kinesis_stream, config.aws.event_stream):
        log = KinesisLog(settings, stream, partition_key="0")
        try:
            log.ensure_stream(shards=shards)
        finally:
            log.close()
    tables = DynamoHistoryStore(settings, config.build_instruments())
    try:
        tables.ensure_tables()
    finally:
        tables.close()
    bucket = S3SnapshotStore(settings, prefix="snapshots/0")
    try:
        bucket.ensure_bucket()
    finally:
        bucket.close()
