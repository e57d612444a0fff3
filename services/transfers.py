"""Moving funds between engine shards: a pair of commands with one transfer id, applied exactly once.

A shard owns the trading balances used on its symbols, so funds deposited on
one shard are moved to another to trade there. A transfer is:

1. a WITHDRAW on the source shard carrying the transfer id (in the
   command's ``order_id``) and the destination shard + 1 (in ``price``);
   the engine treats it as any withdrawal (refused if the funds are not
   available), so the funds leave the source exactly once;
2. a DEPOSIT of the same amount on the destination shard, with the same
   transfer id, appended by the source shard's ``TransferAgent`` once it has
   seen the withdrawal succeed.

Exactly once: the agent appends the deposit with one Redis Lua script that
sets ``<prefix>transfer:<id>`` (NX) and adds the deposit to the destination
command stream *together*, or does nothing if the key exists. The agent may
therefore see a withdrawal any number of times (after a crash it re-reads
the event log from a checkpoint) and the destination still gets one
deposit. Between the two steps the funds are in transit: in neither shard's
balance, recorded in the source's event log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import redis.asyncio as aioredis

from core.commands import Command, CommandKind, deposit, withdraw
from core.events import EventKind
from services.log.base import Log
from services.log.redis_streams import async_client_options
from services.matcher.records import CommandRecord, Outcome, decode_outcome, encode_command_record

log = logging.getLogger("rialto.transfers")

_WITHDRAW = int(CommandKind.WITHDRAW)
_WITHDRAWN = int(EventKind.WITHDRAWN)

_DEPOSIT_ONCE = """
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then
  return redis.call('XADD', KEYS[2], '*', 'r', ARGV[1])
end
return false
"""


def new_transfer_id() -> int:
    return secrets.randbits(62) | 1


def transfer_out(account: int, asset: int, amount: int, transfer_id: int, to_shard: int) -> Command:
    """Step 1: the withdrawal on the source shard."""
    return withdraw(0, 0, account, asset, amount)._replace(order_id=transfer_id, price=to_shard + 1)


def is_transfer_out(outcome: Outcome) -> bool:
    """A withdrawal that carries a transfer and succeeded."""
    c = outcome.command
    return (c.kind == _WITHDRAW and c.order_id != 0 and c.price > 0
            and any(e.kind == _WITHDRAWN for e in outcome.events))


def transfer_in(outcome: Outcome) -> tuple[int, Command]:
    """Step 2 for a transfer-out outcome: (destination shard, the deposit)."""
    c = outcome.command
    return c.price - 1, deposit(0, 0, c.account, c.symbol, c.quantity)._replace(order_id=c.order_id)


class TransferAgent:
    """Runs beside a source shard: turns its successful transfer-outs into deposits on their destinations."""

    KEEP_SECONDS = 30 * 86_400

    def __init__(self, url: str, prefix: str, shard: int, event_log: Log, shards: int) -> None:
        self.client = aioredis.Redis.from_url(url, **async_client_options())
        self.script = self.client.register_script(_DEPOSIT_ONCE)
        self.prefix = prefix
        self.shard = shard
        self.event_log = event_log
        self.shards = shards
        self.checkpoint_key = f"{prefix}transfers:{shard}:position"
        self.queue: asyncio.Queue[Outcome] = asyncio.Queue()
        self.moved = 0
        self.pending = 0
        """Transfer-outs seen live and not yet delivered."""

    def on_outcome(self, outcome: Outcome) -> None:
        """Shard subscriber (live outcomes)."""
        if is_transfer_out(outcome):
            self.pending += 1
            self.queue.put_nowait(outcome)

    async def deliver(self, outcome: Outcome) -> bool:
        """Append the deposit for a transfer-out; False if it was already delivered."""
        to_shard, command = transfer_in(outcome)
        if not 0 <= to_shard < self.shards:
            log.error("transfer %d names shard %d, which does not exist", command.order_id, to_shard)
            return False
        record = encode_command_record(CommandRecord(command))
        added = await self.script(
            keys=[f"{self.prefix}transfer:{command.order_id}", f"{self.prefix}commands:{to_shard}"],
            args=[record, f"{self.shard}:{outcome.seq}", self.KEEP_SECONDS],
        )
        if added:
            self.moved += 1
        return bool(added)

    async def catch_up(self) -> None:
        """After a restart: deliver every transfer-out in the event log since the checkpoint (idempotent)."""
        raw = await self.client.get(self.checkpoint_key)
        start = int(raw) + 1 if raw else 1
        last = start - 1
        for position, data in await asyncio.to_thread(lambda: list(self.event_log.read(start))):
            outcome = decode_outcome(data)
            if is_transfer_out(outcome):
                await self.deliver(outcome)
            last = position
        if last >= start:
            await self.client.set(self.checkpoint_key, last)

    async def run(self) -> None:
        await self.catch_up()
        while True:
            outcome = await self.queue.get()
            delay = 0.1
            while True:
                try:
                    await self.deliver(outcome)
                    self.pending -= 1
                    break
                except Exception as exc:  # Redis away: the withdrawal is durable; keep trying
                    log.error("transfer %d not delivered yet (%s); retrying", outcome.command.order_id, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    async def checkpoint(self, position: int) -> None:
        await self.client.set(self.checkpoint_key, position)

    async def close(self) -> None:
        await self.client.aclose()


def describe(outcome: Outcome) -> dict[str, Any]:
    c = outcome.command
    return {"transfer_id": str(c.order_id), "to_shard": c.price - 1, "asset": c.symbol, "amount": c.quantity}
