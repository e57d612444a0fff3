"""The venue, assembled: adapters chosen by profile, the engine shard, its consumers, the gateway.

The path of an order::

    gateway ──▶ intake ──append──▶ command journal ──▶ engine shard ──▶ event journal ──┬─▶ projection (SQLite)
    (validate,   (stamp time;       (group commit:       (risk and       (outcomes,      ├─▶ market data (hub)
     auth, rate   wait until        one fsync, many      matching)        batched)       └─▶ the waiting client
     limits)      durable+applied)  clients)

Data directory (embedded profile)::

    data/commands/      the command journal (the truth)
    data/events/        the event journal (outcomes; consumers read it)
    data/snapshots/     engine snapshots with the log positions they cover
    data/projections.sqlite   orders, fills, trades, ledger, balances, candles
    data/auth.sqlite    users, API keys, signing keys (secrets sealed)
    data/secret.key     the server key that seals them (created on first start, mode 0600)

Start: recover the shard (newest snapshot + the command journal after it,
rewriting any outcomes the event journal lost), seed market data from the
engine, open the projection and let it catch up; the venue is *ready*
(``/readyz``) once the projection has applied everything logged before the
start. Running tasks: the shard, the projection follower, the market data
hub, the GTD expiry clock and the snapshotter.

Stop (SIGTERM, Ctrl-C): refuse new commands, apply what is logged, write a
snapshot, let the projection catch up, close the journals. A ``kill -9``
instead loses nothing acknowledged: the next start replays the journal.

GTD expiry clock: the engine expires GTD orders when a command's time passes
their expire time. Every ``tick_ms`` (100 ms) the venue looks at the
earliest expire time it knows of (from accepted GTD orders, and from the
projection's open GTD orders at start) and, only if one is due, sends one
TICK command; an idle venue writes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from control.config import Config, ConfigError
from control.expiry import ExpiryClock
from control.projector import ProjectionFollower
from core.commands import tick
from core.engine import MatchingEngine, open_engine
from core.instrument import FEE_ACCOUNT, Instrument
from services.gateway.app import create_app
from services.gateway.auth import Argon2Params, AuthService, AuthSettings, SecretBox
from services.gateway.context import Gateway, GatewayDeps, GatewaySettings
from services.gateway.errors import ApiError
from services.gateway.metrics import GatewayMetrics
from services.gateway.ratelimit import InMemoryRateLimiter, Limit, RateLimiter
from services.intake.intake import Intake
from services.log.journal import Journal
from services.marketdata.feed import MarketData
from services.marketdata.hub import Hub
from services.matcher.shard import EngineShard, RecoveryReport
from services.matcher.snapshots import DiskSnapshotStore, StoredSnapshot
from services.persistence import SqliteStore

log = logging.getLogger("rialto.venue")



class TrackedSnapshots:
    """The snapshot store, remembering the newest snapshot's positions (for status and metrics)."""

    def __init__(self, store: DiskSnapshotStore) -> None:
        self.store = store
        latest = store.latest()
        self.last: tuple[int, int, int] | None = (
            (latest.seq, latest.command_position, latest.event_position) if latest else None
        )

    def save(self, snapshot: StoredSnapshot) -> None:
        self.store.save(snapshot)
        self.last = (snapshot.seq, snapshot.command_position, snapshot.event_position)
        log.info("snapshot written at seq %d", snapshot.seq,
                 extra={"fields": {"seq": snapshot.seq, "bytes": len(snapshot.engine_state)}})

    def latest(self) -> StoredSnapshot | None:
        return self.store.latest()


@dataclass
class Adapters:
    """The outside world of one profile: logs, stores, caches."""

    command_log: Journal
    event_log: Journal
    snapshots: TrackedSnapshots
    projection_path: Path
    auth_path: Path
    secret_box: SecretBox
    limiter: RateLimiter


def gateway_settings(config: Config) -> GatewaySettings:
    """The gateway's settings from the configuration (every profile's gateway)."""
    rate = config.rate
    return GatewaySettings(
        profile=config.profile,
        ip_limit=Limit(rate.ip_burst, rate.ip_per_second),
        account_limit=Limit(rate.account_burst, rate.account_per_second),
        auth_cost=rate.auth_cost,
        read_your_writes=config.read_your_writes_ms / 1000.0,
        # Test funds never on real AWS; on a simulated one (moto, LocalStack: an endpoint_url) they are.
        faucet_enabled=config.faucet.enabled and (config.profile != "aws" or bool(config.aws.endpoint_url)),
        faucet_per_request=dict(config.faucet.per_request),
        faucet_per_hour=dict(config.faucet.per_hour),
        admin_api=config.admin_api,
        shards=[spec.name for spec in config.shard_specs()],
    )


def auth_settings(config: Config) -> AuthSettings:
    argon2 = Argon2Params.cheap() if config.argon2 == "cheap" else Argon2Params()
    return AuthSettings(argon2=argon2, access_token_ttl=config.token_ttl, clock_leeway=config.token_leeway)


def server_key(config: Config) -> SecretBox:
    """The key sealing secrets at rest: ``RIALTO_SECRET_KEY``, else ``<data>/secret.key`` (made once)."""
    if config.secret_key:
        return SecretBox.from_base64(config.secret_key)
    path = config.data_dir / "secret.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return SecretBox.from_base64(path.read_text().strip())
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(SecretBox.generate_key()).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return SecretBox.from_base64(path.read_text().strip())


def open_adapters(config: Config, metrics: GatewayMetrics | None = None) -> Adapters:
    """The embedded profile's adapters (the local and aws profiles build theirs in ``control.adapters``)."""
    if config.profile != "embedded":
        raise ConfigError(f"the {config.profile} profile runs as several processes: use `rialto up --profile "
                          f"{config.profile}` (control.supervisor), not the single-process venue")
    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    command_log = Journal(data / "commands", fsync=config.fsync,
                          on_batch=metrics.journal_observer("commands") if metrics else None)
    try:
        event_log = Journal(data / "events", fsync=config.fsync,
                            on_batch=metrics.journal_observer("events") if metrics else None)
    except BaseException:
        command_log.close()
        raise
    return Adapters(
        command_log=command_log,
        event_log=event_log,
        snapshots=TrackedSnapshots(DiskSnapshotStore(data / "snapshots")),
        projection_path=data / "projections.sqlite",
        auth_path=data / "auth.sqlite",
        secret_box=server_key(config),
        limiter=InMemoryRateLimiter(),
    )


class Venue:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.instruments: list[Instrument] = config.build_instruments()
        self.metrics = GatewayMetrics()
        self.adapters = open_adapters(config, self.metrics)
        a = self.adapters
        try:
            self.engine: MatchingEngine = open_engine(config.engine or None, self.instruments)
            self.shard = EngineShard(self.engine, a.command_log, a.event_log, a.snapshots,
                                     snapshot_every=config.snapshot_every)
        except BaseException:
            self._close_logs()
            raise
        self.recovery: RecoveryReport | None = None
        self.floor = 0
        self.started_seq = 0
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._running = False
        self._stopping = False
        self.fatal = False
        self.server: Any = None  # the uvicorn server, when serving (to stop it on a fatal error)
        self.gateway: Gateway | None = None

    def _close_logs(self) -> None:
        for journal in (self.adapters.command_log, self.adapters.event_log):
            with contextlib.suppress(Exception):
                journal.close()

    # Start-up ----------------------------------------------------------------
    def open(self) -> Gateway:
        """Recover the engine and build every consumer (synchronous; before serving)."""
        config, a = self.config, self.adapters
        self.recovery = self.shard.recover()
        self.floor = self.started_seq = self.shard.seq
        log.info("recovered", extra={"fields": {
            "seq": self.shard.seq, "engine": self.engine.backend, "snapshot_seq": self.recovery.snapshot_seq,
            "replayed": self.recovery.replayed_commands, "rewritten": self.recovery.rewritten_outcomes,
            "seconds": round(self.recovery.seconds, 3),
        }})
        self.intake = Intake(a.command_log)
        self.hub = Hub()
        self.market = MarketData(self.instruments, self.hub, balances=self.engine.balance)
        for instrument in self.instruments:
            bids, asks = self.engine.depth(instrument.id, 1_000_000)
            self.market.books[instrument.id].seed(bids, asks, self.shard.seq)
            self.market.last_prices[instrument.id] = self.engine.last_price(instrument.id)
        self.expiry = ExpiryClock()
        self.shard.subscribe(self.intake.on_outcome)
        self.shard.subscribe(self.market.on_outcome)
        self.shard.subscribe(self.expiry.on_outcome)

        self.projector = ProjectionFollower(a.event_log, lambda: SqliteStore(a.projection_path, self.instruments))
        self.projector.open_sync()
        self.reader = SqliteStore(a.projection_path, self.instruments, readonly=True)

        self.auth = AuthService.open(a.auth_path, a.secret_box, auth_settings(config))
        settings = gateway_settings(config)
        deps = GatewayDeps(
            instruments=self.instruments, intake=self.intake, market=self.market, hub=self.hub, auth=self.auth,
            reader=self.reader, projection=self.projector, recovery_floor=self.floor, ready=self.ready,
            status=self.status, balance=self.engine.balance, metrics=self.metrics, limiter=a.limiter,
        )
        self.gateway = Gateway(deps, settings)
        self.metrics.add_venue_gauges(self._gauges)
        return self.gateway

    async def start(self) -> None:
        tasks = self._tasks
        tasks["shard"] = asyncio.create_task(self.shard.run(), name="shard")
        tasks["projector"] = asyncio.create_task(self.projector.run(), name="projector")
        tasks["hub"] = asyncio.create_task(self.hub.run(), name="hub")
        tasks["expiry"] = asyncio.create_task(self._expiry_clock(), name="expiry")
        tasks["snapshots"] = asyncio.create_task(self._snapshotter(), name="snapshots")
        for name, task in tasks.items():
            task.add_done_callback(functools.partial(self._task_ended, name))
        self._running = True
        log.info("venue started", extra={"fields": {"profile": self.config.profile, "data": str(self.config.data_dir)}})

    def _task_ended(self, name: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._stopping:
            return
        exc = task.exception()
        log.critical("venue task %s ended unexpectedly", name, exc_info=exc)
        self._running = False
        self.fatal = True
        if name == "shard" and self.server is not None:
            # Without the shard no command completes: stop, and let a restart recover from the journal.
            self.server.should_exit = True

    def ready(self) -> bool:
        return (self._running and not self._stopping and self.projector.failed is None
                and self.projector.applied >= self.floor)

    # Background work -----------------------------------------------------------
    async def _expiry_clock(self) -> None:
        assert self.gateway is not None
        while not await self.projector.wait_for(self.floor, 1.0):
            pass
        for expire_time in self.reader.open_gtd_expiries():
            self.expiry.add(expire_time)
        interval = self.config.tick_ms / 1000.0
        while True:
            await asyncio.sleep(interval)
            if self.expiry.due(time.time_ns()):
                try:
                    await self.gateway.submit(tick(0, 0))
                    self.expiry.ticks += 1
                except ApiError:
                    return  # shutting down

    async def _snapshotter(self) -> None:
        last = self.adapters.snapshots.last[0] if self.adapters.snapshots.last else 0
        while True:
            await asyncio.sleep(self.config.snapshot_seconds)
            if self.shard.seq != last:
                last = (await self.shard.snapshot()).seq

    # Status ------------------------------------------------------------------
    def _gauges(self) -> dict[str, float]:
        a = self.adapters
        snapshot = a.snapshots.last
        return {
            "engine_command_seconds": self.shard.command_seconds,
            "engine_commands": float(self.shard.seq - self.started_seq),
            "engine_sequence": float(self.shard.seq),
            "projection_position": float(self.projector.applied),
            "projection_lag": float(max(0, self.shard.seq - self.projector.applied)),
            "projection_records": float(self.projector.records_applied),
            "journal_fsyncs": float(a.command_log.metrics.fsyncs + a.event_log.metrics.fsyncs),
            "journal_records": float(a.command_log.metrics.records + a.event_log.metrics.records),
            "snapshot_seq": float(snapshot[0] if snapshot else 0),
        }

    async def status(self) -> dict[str, Any]:
        a = self.adapters
        snapshot = a.snapshots.last
        assets = {i.base.id: i.base for i in self.instruments} | {i.quote.id: i.quote for i in self.instruments}
        fees = {}
        for _, asset in sorted(assets.items()):
            available, held = self.engine.balance(FEE_ACCOUNT, asset.id)
            fees[asset.code] = asset.format(available + held)
        recovery = self.recovery
        return {
            "profile": self.config.profile,
            "engine": self.engine.backend,
            "ready": self.ready(),
            "sequence": self.shard.seq,
            "state_hash": self.engine.state_hash(),
            "command_log": {"first": a.command_log.first_position, "last": a.command_log.last_position,
                            "applied": self.shard.command_position},
            "event_log": {"first": a.event_log.first_position, "last": a.event_log.last_position},
            "snapshot": ({"seq": snapshot[0], "command_position": snapshot[1], "event_position": snapshot[2]}
                         if snapshot else None),
            "projection": {"position": self.projector.applied, "lag": max(0, self.shard.seq - self.projector.applied)},
            "recovery": ({"snapshot_seq": recovery.snapshot_seq, "replayed_commands": recovery.replayed_commands,
                          "rewritten_outcomes": recovery.rewritten_outcomes, "seconds": round(recovery.seconds, 3)}
                         if recovery else None),
            "ticks": self.expiry.ticks,
            "fees": fees,
        }

    # Shutdown ----------------------------------------------------------------
    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        a = self.adapters
        for name in ("expiry", "snapshots"):
            task = self._tasks.get(name)
            if task is not None:
                task.cancel()
        if self.gateway is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gateway.drain(), 5.0)
        self.intake.closed = True
        # Everything logged is applied, then the log closes and the shard's run() flushes its outcomes.
        deadline = time.monotonic() + 10.0
        shard_task = self._tasks.get("shard")
        while (self.shard.command_position < a.command_log.last_position and time.monotonic() < deadline
               and shard_task is not None and not shard_task.done()):
            await asyncio.sleep(0.005)
        await a.command_log.aclose()
        if shard_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(shard_task, 10.0)
        if self.fatal:
            # The engine may have stopped half-way through a command: never snapshot that state.
            log.error("not writing a shutdown snapshot after a fatal error; the next start replays the journal")
        elif a.snapshots.last is not None and a.snapshots.last[0] == self.shard.seq:
            pass  # nothing happened since the newest snapshot
        else:
            try:
                await self.shard.snapshot()
            except Exception:
                log.exception("could not write the shutdown snapshot (the journal still has everything)")
        await self.projector.wait_for(self.shard.seq, 10.0)
        for name in ("projector", "hub"):
            task = self._tasks.get(name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
        await self.projector.close()
        await a.event_log.aclose()
        self.reader.close()
        self.auth.close()
        self._running = False
        log.info("venue stopped", extra={"fields": {"seq": self.shard.seq}})

    def close(self) -> None:
        """Release the journals without the orderly stop (a venue that never started)."""
        self._close_logs()

    # Serving -----------------------------------------------------------------
    def app(self) -> FastAPI:
        gateway = self.gateway if self.gateway is not None else self.open()

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        return create_app(gateway, lifespan, fast_path=self.config.fast_path)


def serve(config: Config) -> int:
    """Run the venue until SIGINT or SIGTERM (``rialto up``)."""
    import uvicorn

    venue = Venue(config)
    try:
        app = venue.app()
    except BaseException:
        venue.close()
        raise
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_config=None, access_log=False, lifespan="on",
        server_header=False, timeout_graceful_shutdown=10, ws_max_size=1 << 20,
    ))
    venue.server = server
    # uvicorn re-raises the signal it stopped on once it has shut down; an orderly SIGTERM stop
    # (snapshot written, journals closed) should end the command with status 0, not death by signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    log.info("serving on http://%s:%d", config.host, config.port,
             extra={"fields": {"host": config.host, "port": config.port}})
    server.run()
    return 1 if venue.fatal else 0
