"""A gateway worker process (local and aws profiles): the same API as the embedded venue, over shared servers.

Several of these share one listening socket (the supervisor opens it and
hands each worker its descriptor; the kernel spreads the connections). A
worker holds no state another worker needs:

* commands go to their shard's command log (``ShardRouter`` + ``Intake``);
  the worker follows every shard's event log to hand each waiting client
  its outcome;
* reads come from the projection store (PostgreSQL), after waiting for the
  persister to reach the caller's last acknowledged seq
  (``RedisProjectionProgress``);
* market data arrives from the market-data process over Redis pub/sub
  (``RedisMarketFeed``), book snapshots from its Redis keys;
* accounts, API keys and signing keys are in PostgreSQL; rate-limit buckets
  and client order id claims in Redis.

If Redis or PostgreSQL is away, requests that need it get 503 with a clear
error (``services.gateway.app.unavailable_response``); nothing is
acknowledged without its log append.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI

from control import adapters
from control.config import Config
from control.venue import auth_settings, gateway_settings, server_key
from services.gateway.app import create_app
from services.gateway.auth import AuthService
from services.gateway.context import Gateway, GatewayDeps
from services.gateway.faucet_window import RedisFaucetWindow
from services.gateway.metrics import GatewayMetrics
from services.intake.intake import Intake
from services.intake.router import ShardRouter
from services.log.base import Log, LogError
from services.log.redis_streams import async_client_options, position_of
from services.marketdata.hub import Hub
from services.marketdata.subscriber import RedisMarketFeed
from services.matcher.records import decode_outcome
from services.persistence.redis_progress import RedisProjectionProgress

log = logging.getLogger("rialto.gateway.worker")

_HEADER = struct.Struct("<4q")  # an outcome's command: kind, seq, time, account (services.matcher.records)


def _last_seq(event_log: Log) -> int:
    last = event_log.last_position
    if not last:
        return 0
    for _, data in event_log.read(last, last):
        return decode_outcome(data).seq
    return 0


class GatewayWorker:
    def __init__(self, config: Config, worker: int) -> None:
        self.config = config
        self.worker = worker
        self.instruments = config.build_instruments()
        shards = len(config.shard_specs())
        self.command_logs = [adapters.command_log(config, k) for k in range(shards)]
        self.event_logs = [adapters.event_log(config, k) for k in range(shards)]
        self.intakes = [Intake(log_) for log_ in self.command_logs]
        self.router = ShardRouter(self.intakes, self.instruments, config.shard_of_symbol())
        self.metrics = GatewayMetrics()
        self.progress = RedisProjectionProgress(config.redis_url, config.key_prefix, shards)
        self.reader = adapters.reader(config)
        self.hub = Hub()
        self.market = RedisMarketFeed(config.redis_url, config.key_prefix, self.instruments, self.hub)
        self.redis = aioredis.Redis.from_url(config.redis_url, **async_client_options())
        self.auth = AuthService.with_store(adapters.auth_store(config), server_key(config), auth_settings(config))
        self.floor = {k: _last_seq(event_log) for k, event_log in enumerate(self.event_logs)}
        settings = gateway_settings(config)
        deps = GatewayDeps(
            instruments=self.instruments, intake=self.router,  # type: ignore[arg-type]
            market=self.market, hub=self.hub, auth=self.auth,  # type: ignore[arg-type]
            reader=self.reader, projection=self.progress, recovery_floor=self.floor, ready=self.ready,
            status=self.status, balance=None, metrics=self.metrics, limiter=adapters.rate_limiter(config),
            claims=adapters.client_order_ids(config),
            faucet_window=RedisFaucetWindow(self.redis, f"{config.key_prefix}faucet:"),
            before_read=self.caught_up if config.profile == "local" else None,
        )
        self.gateway = Gateway(deps, settings)
        self._tasks: list[asyncio.Task[Any]] = []
        self._following = [False] * shards
        self.followed = [0] * shards
        self.seen = dict(self.floor)
        """The last seq this worker has seen per shard: its status waits for the shard's to reach it."""

    # Outcomes for the waiting clients --------------------------------------------------
    async def _follow(self, shard: int) -> None:
        event_log, intake = self.event_logs[shard], self.intakes[shard]
        position = event_log.last_position
        self.followed[shard] = position
        delay = 0.1
        while True:
            try:
                self._following[shard] = True
                async for at, data in event_log.tail(position + 1):
                    position = at  # where to resume after an outage
                    # Only the header is read here; the outcome is decoded if a client of this worker waits.
                    width = data[0]
                    command_position = int.from_bytes(data[1:1 + width], "little")
                    _, seq, _, account = _HEADER.unpack_from(data, 1 + width)
                    self.seen[shard] = seq
                    self.followed[shard] = at
                    intake.on_outcome_record(command_position, data)
                    if account > 0:
                        # Whichever worker acknowledged it: a read of this account on this worker waits for it.
                        self.gateway.acknowledge(account, seq)
                return
            except LogError as exc:
                self._following[shard] = False
                log.warning("worker %d: shard %d's event log unavailable (%s); retrying", self.worker, shard, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def caught_up(self, timeout: float = 1.0) -> None:
        """Wait until this worker has followed every shard's event log to where it ends now."""
        pipe = self.redis.pipeline(transaction=False)
        for k in range(len(self.event_logs)):
            pipe.xrevrange(adapters.stream_key(self.config, "events", k), count=1)
        ends = [position_of(entries[0][0]) if entries else 0 for entries in await pipe.execute()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(self.followed[k] < end for k, end in enumerate(ends)) and loop.time() < deadline:
            await asyncio.sleep(0.001)

    def ready(self) -> bool:
        return all(self._following) and all(self.progress.reached(seq) for seq in self.floor.values() if seq)

    async def _shard_status(self, shard: int) -> dict[str, Any]:
        """The shard's published status, once it covers what this worker has seen (waits up to 2 s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while True:
            raw = await self.redis.get(f"{self.config.key_prefix}status:shard:{shard}")
            status: dict[str, Any] = json.loads(raw) if raw else {"shard": shard, "sequence": 0}
            fresh = status.get("sequence", 0) >= self.seen.get(shard, 0) and status.get("state_hash") is not None
            if fresh or loop.time() > deadline:
                return status
            await asyncio.sleep(0.02)

    async def status(self) -> dict[str, Any]:
        shards = [await self._shard_status(k) for k in range(len(self.event_logs))]
        only = shards[0] if len(shards) == 1 else {}
        fees: dict[str, Decimal] = {}
        for shard in shards:
            for code, amount in shard.get("fees", {}).items():
                fees[code] = fees.get(code, Decimal(0)) + Decimal(amount)
        return {
            "fees": {code: f"{amount:f}" for code, amount in sorted(fees.items())},
            "ticks": sum(shard.get("ticks", 0) for shard in shards),
            "recovery": only.get("recovery"),
            "profile": self.config.profile,
            "worker": self.worker,
            "ready": self.ready(),
            "engine": only.get("engine"),
            "sequence": only.get("sequence"),
            "state_hash": only.get("state_hash"),
            "shards": shards,
            "projection": {"applied": dict(self.progress.applied)},
        }

    async def start(self) -> None:
        await self.progress.start()
        await self.market.start()
        self._tasks = [asyncio.create_task(self._follow(k), name=f"follow-{k}") for k in range(len(self.event_logs))]
        self._tasks.append(asyncio.create_task(self.hub.run(), name="hub"))
        log.info("gateway worker %d started", self.worker)

    async def stop(self) -> None:
        self.router.closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.gateway.drain(), 5.0)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        await self.market.close()
        await self.progress.close()
        for log_ in self.command_logs + self.event_logs:
            close = getattr(log_, "aclose", None)
            if close is not None:
                await close()
            else:
                log_.close()
        self.reader.close()
        self.auth.close()
        await self.redis.aclose()

    def app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        return create_app(self.gateway, lifespan, fast_path=self.config.fast_path)


def run(config: Config, worker: int, fd: int | None) -> int:
    """Serve on the inherited socket ``fd`` (from the supervisor), else bind host:port."""
    import socket

    import uvicorn

    worker_ = GatewayWorker(config, worker)
    server = uvicorn.Server(uvicorn.Config(
        worker_.app(), host=config.host, port=config.port, log_config=None, access_log=False,
        lifespan="on", server_header=False, timeout_graceful_shutdown=10, ws_max_size=1 << 20,
        loop="uvloop", http="httptools",
    ))
    signal.signal(signal.SIGTERM, lambda *_: None)
    # The socket object is made here, not by uvicorn's ``fd=`` (which takes every descriptor for a Unix
    # socket): as a TCP socket its connections get TCP_NODELAY, without which each response waited ~40 ms
    # for the client's delayed ACK.
    sockets = [socket.socket(fileno=fd)] if fd is not None else None
    server.run(sockets=sockets)
    return 0
