"""The engine shard process (local and aws profiles): recover, follow the command log, snapshot.

One process per shard. It owns the engine and is the only writer of the
shard's event log. What it does, in order:

1. recover: the newest snapshot, then the command log after it (outcomes the
   event log lost are written again);
2. follow the command log, applying each command and appending its outcome;
3. every ``snapshot_seconds`` (and every ``snapshot_every`` commands) write a
   snapshot; once a *newer* snapshot exists, trim the command log below the
   *older* one's position, so one whole snapshot interval of log stays
   behind as a margin for a snapshot that turns out unreadable;
4. send a TICK to its own command log when a GTD order is due (the embedded
   venue's expiry clock, here fed from the recovered engine's open orders);
5. publish its status (sequence, positions, state hash) to
   ``<prefix>status:shard:<k>`` every second for the gateways' ``/admin/status``.

A log outage (Redis down) stalls the shard; outcomes not yet written are
kept and written when the log is back. SIGTERM: stop following, flush, write
a snapshot, exit 0. ``kill -9``: the next start recovers from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from typing import Any

from control import adapters
from control.config import Config
from control.expiry import ExpiryClock, gtd_expiries
from core.commands import tick
from core.engine import open_engine
from core.instrument import FEE_ACCOUNT
from services.log.base import LogError
from services.log.redis_streams import async_client_options
from services.matcher.records import CommandRecord, encode_command_record
from services.matcher.shard import EngineShard
from services.transfers import TransferAgent

log = logging.getLogger("rialto.shard")


class ShardProcess:
    def __init__(self, config: Config, shard_id: int) -> None:
        self.config = config
        self.shard_id = shard_id
        self.instruments = config.shard_instruments(shard_id)
        self.engine = open_engine(config.engine or None, self.instruments)
        self.command_log = adapters.command_log(config, shard_id)
        self.event_log = adapters.event_log(config, shard_id)
        self.snapshots = adapters.snapshot_store(config, shard_id)
        self.shard = EngineShard(self.engine, self.command_log, self.event_log, self.snapshots,
                                 snapshot_every=config.snapshot_every, shard_id=shard_id)
        self.expiry = ExpiryClock()
        self.shard.subscribe(self.expiry.on_outcome)
        self.transfers: TransferAgent | None = None
        if config.profile == "local" and len(config.shard_specs()) > 1:
            self.transfers = TransferAgent(config.redis_url, config.key_prefix, shard_id, self.event_log,
                                           len(config.shard_specs()))
            self.shard.subscribe(self.transfers.on_outcome)
        self.stopping = asyncio.Event()
        self.recovery: dict[str, Any] = {}
        self._snapshot_positions: list[int] = []
        self._status_client: Any = None

    async def run(self) -> int:
        catch_up = getattr(self.event_log, "catch_up", None)
        if catch_up is not None:
            # Kinesis cannot say where a stream ends without reading it: find the event log's end from the
            # snapshot's position first, so recovery rewrites only the outcomes that are really missing.
            latest = self.snapshots.latest()
            await asyncio.to_thread(catch_up, latest.event_position if latest else 0)
        report = await asyncio.to_thread(self.shard.recover)
        self.recovery = {"snapshot_seq": report.snapshot_seq, "replayed_commands": report.replayed_commands,
                         "rewritten_outcomes": report.rewritten_outcomes, "seconds": round(report.seconds, 3)}
        log.info("shard %d recovered", self.shard_id, extra={"fields": {"shard": self.shard_id, **self.recovery}})
        for expire_time in gtd_expiries(self.engine.snapshot()):
            self.expiry.add(expire_time)
        latest = self.snapshots.latest()
        if latest is not None:
            self._snapshot_positions.append(latest.command_position)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        follower = asyncio.create_task(self._follow(), name="follow")
        work = [self._snapshotter(), self._expiry_clock(), self._status()]
        if self.transfers is not None:
            work.append(self.transfers.run())
        helpers = [asyncio.create_task(coro) for coro in work]
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({follower, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in helpers:
            task.cancel()
        code = 0
        if follower.done() and not self.stopping.is_set():
            log.critical("shard %d stopped following its log", self.shard_id, exc_info=follower.exception())
            code = 1
        else:
            close = getattr(self.command_log, "aclose", None)
            if close is not None:
                await close()
            else:
                self.command_log.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(follower, 10.0)
            try:
                snapshot = await self.shard.snapshot()
                log.info("shard %d stopped at seq %d (snapshot written)", self.shard_id, snapshot.seq)
            except Exception:
                log.exception("shard %d: no shutdown snapshot; the next start replays the log", self.shard_id)
        await self._publish_status()
        if self._status_client is not None:
            with contextlib.suppress(Exception):
                await self._status_client.aclose()
        self.event_log.close()
        return code

    async def _follow(self) -> None:
        """Follow the command log; after an outage, resume from the last applied position."""
        delay = 0.1
        while not self.stopping.is_set():
            try:
                await self.shard.run()
                return
            except LogError as exc:
                if self.stopping.is_set():
                    return
                log.error("shard %d: the command log is unavailable (%s); retrying in %.1f s",
                          self.shard_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _snapshotter(self) -> None:
        last = self.shard.seq
        while True:
            await asyncio.sleep(self.config.snapshot_seconds)
            if self.shard.seq == last:
                continue
            try:
                snapshot = await self.shard.snapshot()
            except Exception:
                log.exception("shard %d: snapshot failed; will try again", self.shard_id)
                continue
            last = snapshot.seq
            self._snapshot_positions.append(snapshot.command_position)
            if len(self._snapshot_positions) >= 2:
                older = self._snapshot_positions[-2]
                self._snapshot_positions = self._snapshot_positions[-2:]
                with contextlib.suppress(LogError):
                    await asyncio.to_thread(self.command_log.truncate_before, older + 1)

    async def _expiry_clock(self) -> None:
        interval = self.config.tick_ms / 1000.0
        while True:
            await asyncio.sleep(interval)
            if self.expiry.due(time.time_ns()):
                record = encode_command_record(CommandRecord(tick(0, time.time_ns())))
                with contextlib.suppress(LogError):
                    await self.command_log.append([record])
                    self.expiry.ticks += 1

    def fees(self) -> dict[str, str]:
        assets = {a.id: a for i in self.instruments for a in (i.base, i.quote)}
        out = {}
        for asset_id, asset in sorted(assets.items()):
            available, held = self.engine.balance(FEE_ACCOUNT, asset_id)
            out[asset.code] = asset.format(available + held)
        return out

    def status(self, with_hash: bool = True) -> dict[str, Any]:
        return {
            "fees": self.fees(),
            "shard": self.shard_id,
            "symbols": [i.symbol for i in self.instruments],
            "engine": self.engine.backend,
            "sequence": self.shard.seq,
            "state_hash": self.engine.state_hash() if with_hash else None,
            "command_position": self.shard.command_position,
            "recovery": self.recovery,
            "ticks": self.expiry.ticks,
            "time": time.time(),
        }

    async def _publish_status(self, with_hash: bool = True) -> None:
        import redis.asyncio as aioredis

        # One client for the process's life: under load the status goes out every 50 ms, and a client (and
        # connection) per publish was most of the shard's Redis work besides the logs.
        if self._status_client is None:
            self._status_client = aioredis.Redis.from_url(self.config.redis_url, **async_client_options())
        try:
            await self._status_client.set(f"{self.config.key_prefix}status:shard:{self.shard_id}",
                                          json.dumps(self.status(with_hash)))
        except Exception as exc:  # status is best effort; the shard's work is not
            log.debug("status not published: %s", exc)

    async def _status(self) -> None:
        """Publish the status soon after every change; the state hash (a hash of the whole engine state,
        milliseconds for a large book) only once the shard is idle, or every few seconds under load."""
        published = hashed = -1
        hashed_at = 0.0
        while True:
            await asyncio.sleep(0.05)
            seq = self.shard.seq
            now = time.monotonic()
            idle = seq == published
            if seq != published or (idle and hashed != seq):
                want_hash = idle or now - hashed_at > 5.0
                await self._publish_status(with_hash=want_hash)
                published = seq
                if want_hash:
                    hashed, hashed_at = seq, now
                if self.transfers is not None and self.transfers.pending == 0:
                    # Every transfer-out applied so far is delivered, and the event log holds no outcome
                    # applied after now: a safe place to resume from.
                    with contextlib.suppress(Exception):
                        await self.transfers.checkpoint(await asyncio.to_thread(lambda: self.event_log.last_position))


def run(config: Config, shard_id: int) -> int:
    import uvloop

    return uvloop.run(ShardProcess(config, shard_id).run())
