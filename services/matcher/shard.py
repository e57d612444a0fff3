"""An engine shard over the logs: recover, then apply commands as they arrive.

The pipeline, in order, for every command record the log acknowledges:

1. stamp ``seq`` = the shard's sequence + 1 (log order is the only order);
   shard ``k`` numbers from ``k << SHARD_BITS``, so sequence numbers, and
   the order ids made from them, are unique across the venue's shards while
   staying dense within each (the native engine's id tables rely on that);
2. apply it to the engine (risk and matching, deterministic);
3. hand the outcome to in-process subscribers (the intake's waiting
   clients, market data) at once;
4. append the outcome to the event log (batched; consumers such as the
   projections read it from there).

Recovery loads the newest snapshot, replays the command log after the
position it covers, and writes to the event log the outcomes it is missing
(an event log that lost an unsynced tail is made whole again from the
commands). Outcomes already in the event log are regenerated only in memory:
the engine is deterministic, so they are identical.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.engine import MatchingEngine
from services.log.base import Log, LogClosed, LogError
from services.matcher.records import CommandRecord, Outcome, decode_command_record, decode_outcome, encode_outcome
from services.matcher.snapshots import SnapshotStore, StoredSnapshot

log = logging.getLogger(__name__)

OutcomeSubscriber = Callable[[Outcome], None]

_COMMAND_SIZE = 128  # a command record starts with the command's 16 little-endian int64 (matcher.records)

SHARD_BITS = 40
"""Sequence numbers of shard ``k`` are ``k << SHARD_BITS`` + 1, + 2, ...: a trillion commands per shard."""


def shard_of_seq(seq: int) -> int:
    """The shard that stamped ``seq`` (an order id is a seq too)."""
    return seq >> SHARD_BITS


@dataclass
class RecoveryReport:
    snapshot_seq: int
    replayed_commands: int
    rewritten_outcomes: int
    seconds: float


class EngineShard:
    def __init__(
        self,
        engine: MatchingEngine,
        command_log: Log,
        event_log: Log,
        snapshots: SnapshotStore,
        snapshot_every: int = 100_000,
        shard_id: int = 0,
    ) -> None:
        self.engine = engine
        self.shard_id = shard_id
        self.seq_base = shard_id << SHARD_BITS
        self.command_log = command_log
        self.event_log = event_log
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        self.command_position = 0
        self._subscribers: list[OutcomeSubscriber] = []
        self._unwritten: list[bytes] = []
        self._writer: asyncio.Task[None] | None = None
        self._since_snapshot = 0
        self.command_seconds = 0.0  # total engine time, for metrics

    def subscribe(self, subscriber: OutcomeSubscriber) -> None:
        self._subscribers.append(subscriber)

    @property
    def seq(self) -> int:
        return self.engine.sequence

    # Recovery -----------------------------------------------------------
    def _last_outcome_position(self) -> int:
        last = self.event_log.last_position
        if not last:
            return 0
        for _, data in self.event_log.read(last, last):
            return decode_outcome(data).position
        return 0

    def recover(self) -> RecoveryReport:
        started = time.perf_counter()
        snapshot = self.snapshots.latest()
        if snapshot is not None:
            self.engine.restore(snapshot.engine_state)
            self.command_position = snapshot.command_position
        covered = self._last_outcome_position()
        replayed = rewritten = 0
        pending: list[bytes] = []
        records = iter(self.command_log.read(self.command_position + 1))
        # Commands whose outcomes the event log already has: only the engine's state matters, so they go
        # to the engine in batches (its NumPy entry point) with no Outcome built (the bulk of a restart).
        position = self.command_position
        seq = max(self.engine.sequence, self.seq_base)
        batch: list[bytes] = []
        outcome = None
        for position, data in records:
            if position > covered:
                seq = self._submit_batch(batch, seq)
                batch = []
                outcome = self._apply(position, decode_command_record(data))
                replayed += 1
                break
            batch.append(data[:_COMMAND_SIZE])
            replayed += 1
            if len(batch) >= 8192:
                seq = self._submit_batch(batch, seq)
                batch = []
        self._submit_batch(batch, seq)
        self.command_position = max(self.command_position, min(position, covered))
        if outcome is not None:
            pending.append(encode_outcome(outcome))
        for position, data in records:
            outcome = self._apply(position, decode_command_record(data))
            replayed += 1
            if position > covered:
                pending.append(encode_outcome(outcome))
                if len(pending) >= 4096:
                    self._append_outcomes_sync(pending)
                    rewritten += len(pending)
                    pending = []
        if pending:
            self._append_outcomes_sync(pending)
            rewritten += len(pending)
        report = RecoveryReport(snapshot.seq if snapshot else 0, replayed, rewritten, time.perf_counter() - started)
        log.info("shard recovered: %s", report)
        return report

    def _submit_batch(self, commands: list[bytes], seq: int) -> int:
        """Stamp ``commands`` (raw command words) with the sequence after ``seq`` and submit them as one
        batch; the last seq stamped."""
        if not commands:
            return seq
        import numpy as np

        from core.batch import command_dtype

        array = np.frombuffer(b"".join(commands), dtype=command_dtype()).copy()
        array["seq"] = np.arange(seq + 1, seq + 1 + len(commands), dtype=np.int64)
        self.engine.submit_batch(array)
        return seq + len(commands)

    def _append_outcomes_sync(self, records: list[bytes]) -> None:
        append_sync = getattr(self.event_log, "append_sync", None)
        if append_sync is None:
            raise TypeError("recovery needs an event log with append_sync")
        append_sync(records)

    # Running ------------------------------------------------------------
    def _apply(self, position: int, record: CommandRecord) -> Outcome:
        command = record.command._replace(seq=max(self.engine.sequence, self.seq_base) + 1)
        started = time.perf_counter()
        events = self.engine.submit(command)
        self.command_seconds += time.perf_counter() - started
        self.command_position = position
        return Outcome(position, command, record.client_order_id, events)

    async def run(self) -> None:
        """Follow the command log until it closes."""
        async for position, data in self.command_log.tail(self.command_position + 1):
            outcome = self._apply(position, decode_command_record(data))
            for subscriber in self._subscribers:
                subscriber(outcome)
            self._unwritten.append(encode_outcome(outcome))
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_outcomes())
            self._since_snapshot += 1
            if self._since_snapshot >= self.snapshot_every:
                await self.snapshot()
        await self.flush()

    async def _write_outcomes(self) -> None:
        delay = 0.05
        while self._unwritten:
            batch, self._unwritten = self._unwritten, []
            try:
                await self.event_log.append(batch)
                delay = 0.05
            except LogClosed:
                raise
            except LogError as exc:
                # The event log's server is away: keep the outcomes, in order, and try again. Consumers
                # wait meanwhile; nothing is lost, since the engine state that made them stays in memory.
                self._unwritten[:0] = batch
                log.error("event log unavailable (%s): %d outcomes waiting; retrying in %.2f s",
                          exc, len(self._unwritten), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def flush(self) -> None:
        """Wait until every outcome so far is in the event log."""
        while self._unwritten or (self._writer is not None and not self._writer.done()):
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_outcomes())
            await self._writer

    async def snapshot(self) -> StoredSnapshot:
        """Store the engine state with the positions it covers (outcomes flushed first)."""
        await self.flush()
        snapshot = StoredSnapshot(
            seq=self.engine.sequence,
            command_position=self.command_position,
            event_position=self.event_log.last_position,
            engine_state=self.engine.snapshot(),
        )
        await asyncio.to_thread(self.snapshots.save, snapshot)
        self._since_snapshot = 0
        return snapshot


def outcomes_from(event_log: Log, after_position: int = 0) -> Iterable[tuple[int, Outcome]]:
    """Replay the event log: (event-log position, outcome), for consumers catching up."""
    for position, data in event_log.read(after_position + 1):
        yield position, decode_outcome(data)
