"""Turn a request into a durable command and wait for what the engine made of it.

The intake stamps the time (nanoseconds, never going backwards), appends the
command record to the command log and returns only after the log has made it
durable (the journal commits many clients' commands with one fsync) *and*
the shard has applied it, so the caller can answer with the command's
events. The shard stamps the sequence; the outcome tells it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from core.commands import Command
from services.log.base import Log
from services.matcher.records import CommandRecord, Outcome, decode_outcome, encode_command_record

Clock = Callable[[], int]


class IntakeClosed(RuntimeError):
    """The venue is shutting down; the command was not taken."""


class Intake:
    # Outcomes that arrive before their submitter asks (the shard can apply a
    # record before append() returns to its caller) wait here, bounded.
    EARLY_OUTCOMES = 65_536

    def __init__(self, command_log: Log, clock: Clock = time.time_ns) -> None:
        self.command_log = command_log
        self.clock = clock
        self._last_time = 0
        self._waiting: dict[int, asyncio.Future[Outcome]] = {}
        self._early: OrderedDict[int, Outcome | bytes] = OrderedDict()
        self.closed = False

    def stamp(self) -> int:
        now = self.clock()
        if now < self._last_time:
            now = self._last_time
        self._last_time = now
        return now

    async def submit(self, command: Command, client_order_id: str | None = None) -> Outcome:
        if self.closed:
            raise IntakeClosed("the venue is shutting down")
        record = CommandRecord(command._replace(seq=0, time=self.stamp()), client_order_id)
        (position,) = await self.command_log.append([encode_command_record(record)])
        early = self._early.pop(position, None)
        if early is not None:
            return decode_outcome(early) if isinstance(early, bytes) else early
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[position] = future
        try:
            return await future
        finally:
            self._waiting.pop(position, None)

    def on_outcome(self, outcome: Outcome) -> None:
        """Shard subscriber: wake the client waiting for this position."""
        future = self._waiting.get(outcome.position)
        if future is not None:
            if not future.done():
                future.set_result(outcome)
            return
        self._remember_early(outcome.position, outcome)

    def on_outcome_record(self, position: int, record: bytes) -> None:
        """``on_outcome`` for an encoded outcome: decoded only if a client here waits for it (a gateway
        process follows every process's outcomes, most of them for other processes' clients)."""
        future = self._waiting.get(position)
        if future is not None:
            if not future.done():
                future.set_result(decode_outcome(record))
            return
        self._remember_early(position, record)

    def _remember_early(self, position: int, outcome: Outcome | bytes) -> None:
        self._early[position] = outcome
        while len(self._early) > self.EARLY_OUTCOMES:
            self._early.popitem(last=False)
