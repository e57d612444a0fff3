"""How far the projection has got, per shard, as the persister process tells it through Redis.

The persister writes ``<prefix>projection:<k>`` (the last applied seq of
shard ``k``) and PUBLISHes ``"<k>:<seq>"`` on ``<prefix>projection`` after
each commit. A gateway process keeps the latest per shard and wakes its
readers waiting for their own writes (read-your-writes across processes).
A missed message costs nothing but a wait: ``wait_for`` also re-reads the
keys while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from services.log.redis_streams import async_client_options
from services.matcher.shard import shard_of_seq

log = logging.getLogger("rialto.progress")


class RedisProjectionProgress:
    def __init__(self, url: str, prefix: str, shards: int) -> None:
        self.client = aioredis.Redis.from_url(url, **async_client_options())
        self.prefix = prefix
        self.shards = shards
        self.applied: dict[int, int] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def reached(self, seq: int) -> bool:
        return self.applied.get(shard_of_seq(seq), 0) >= seq

    async def refresh(self) -> None:
        values = await self.client.mget([f"{self.prefix}projection:{k}" for k in range(self.shards)])
        for shard, value in enumerate(values):
            if value is not None:
                self._note(shard, int(value))

    def _note(self, shard: int, seq: int) -> None:
        if seq > self.applied.get(shard, 0):
            self.applied[shard] = seq
            self._changed.set()
            self._changed = asyncio.Event()

    async def start(self) -> None:
        with contextlib.suppress(Exception):
            await self.refresh()
        self._task = asyncio.create_task(self._listen(), name="projection-progress")

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(f"{self.prefix}projection")
                await self.refresh()
                delay = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    shard, _, seq = message["data"].decode().partition(":")
                    self._note(int(shard), int(seq))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("projection progress: %s; resubscribing in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.reached(seq):
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25))
            if not self.reached(seq):
                with contextlib.suppress(Exception):
                    await self.refresh()
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
        await self.client.aclose()
