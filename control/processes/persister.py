"""The persister process (local and aws profiles): every shard's event log into the projection store.

One ``ProjectionFollower`` per shard, each with its own store connection and
position (the store keeps one position per shard). After each committed
batch it records, in Redis, the event-log position it has read to
(``<prefix>persister:<k>``, ``<position>:<seq>``: where to resume,
re-reading a little at most, which the store skips; trusted only if the
store has that seq, as a crashed PostgreSQL may have lost the last commits) and the last applied sequence
(``<prefix>projection:<k>``, also PUBLISHed on ``<prefix>projection``), which
the gateways wait for to give read-your-writes.

In the aws profile it also runs the cold archive's schedule
(``control.archiving``).

A PostgreSQL outage: the batch's transaction fails and is retried with
backoff (the follower does this); nothing is skipped, since the position
only moves with a commit. SIGTERM: finish the batch in hand, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal

import redis

from control import adapters
from control.archiving import archive_periodically
from control.config import Config
from control.projector import ProjectionFollower

log = logging.getLogger("rialto.persister")


class Progress:
    """The persister's checkpoints in Redis (written from the follower's thread: a sync client)."""

    def __init__(self, config: Config, shard: int, store: str = "") -> None:
        self.client = redis.Redis.from_url(config.redis_url)
        self.shard = shard
        self.position_key = f"{config.key_prefix}persister{store}:{shard}"
        self.applied_key = f"{config.key_prefix}projection:{shard}"
        self.channel = f"{config.key_prefix}projection"
        self.peers: list[Progress] = []
        self.follower: ProjectionFollower | None = None

    def resume_position(self) -> tuple[int, int] | None:
        """``(event-log position, seq)`` of the last batch committed, as recorded after its commit."""
        try:
            value = self.client.get(self.position_key)
        except redis.RedisError as exc:
            log.warning("no persister checkpoint (%s); starting from the log's oldest record", exc)
            return None
        text = value.decode() if isinstance(value, bytes) else (value or "")
        position, _, seq = text.partition(":")
        return (int(position), int(seq)) if position and seq else None

    def applied(self, seq: int, position: int) -> None:
        readable = seq
        if self.peers:
            # Reads come from both stores (aws): the projection is as far as the slower of them.
            readable = min([seq, *(peer.follower.applied for peer in self.peers if peer.follower is not None)])
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self.position_key, f"{position}:{seq}")
            pipe.set(self.applied_key, readable)
            pipe.publish(self.channel, f"{self.shard}:{readable}")
            pipe.execute()
        except redis.RedisError as exc:
            # Only the checkpoint and the read-your-writes notice are late; the projection itself committed.
            log.warning("could not publish projection progress: %s", exc)


async def run_async(config: Config) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    followers: dict[str, ProjectionFollower] = {}
    histories: list[ProjectionFollower] = []
    for shard in range(len(config.shard_specs())):
        progress = Progress(config, shard)
        follower = ProjectionFollower(
            adapters.event_log(config, shard),
            functools.partial(adapters.projection_store, config, shard=shard),
            resume_position=progress.resume_position,
            on_applied=progress.applied,
        )
        progress.follower = follower
        await follower.open()
        followers[f"shard-{shard}"] = follower
        if config.profile == "aws":
            # The history half (orders, fills, trades, candles) goes to DynamoDB too, at its own position.
            history = Progress(config, shard, store="-dynamodb")
            history.follower = ProjectionFollower(
                adapters.event_log(config, shard),
                functools.partial(adapters.history_store, config, shard),
                resume_position=history.resume_position,
                on_applied=history.applied,
            )
            progress.peers, history.peers = [history], [progress]
            await history.follower.open()
            followers[f"history-{shard}"] = history.follower
            histories.append(history.follower)
    tasks = [asyncio.create_task(f.run(), name=name) for name, f in followers.items()]
    if histories:
        # The archive takes only the trades a shard's DynamoDB history has applied.
        tasks.append(asyncio.create_task(
            archive_periodically(config, lambda shard: histories[shard].applied), name="archive"))
    stop = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({*tasks, stop}, return_when=asyncio.FIRST_COMPLETED)
    code = 0 if stop in done else 1
    if code:
        log.critical("a projection follower stopped")
    for task in tasks:
        task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await task
    for follower in followers.values():
        await follower.close()
        follower.event_log.close()
    return code


def run(config: Config) -> int:
    import uvloop

    return uvloop.run(run_async(config))
