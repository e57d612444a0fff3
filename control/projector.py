"""The projection follower: tails the event log into the projection store.

One task per venue. It starts from the store's own position (the ``seq`` of
the last record it applied), waits for the event log to grow, reads what is
there in batches (up to ``batch`` outcomes) and applies each batch in one
transaction on a dedicated thread: SQLite connections belong to the thread
that opened them, and the event loop never waits on a disk write. The store
skips records at or below its position, so starting early, or again after a
crash, applies nothing twice.

A store may lose its last committed batches when its server crashes
(PostgreSQL commits them with ``synchronous_commit = off``; the log still
holds them). So after any failed batch the follower asks the store where it
is again and, if the store went back, reads the log again from there: it
remembers where its recent batches ended, and otherwise starts from the
log's oldest record (the store skips what it has).

Readers wait for their own writes with ``wait_for(seq, timeout)``: the
gateway remembers each account's last acknowledged ``seq`` and, before a
read, waits (bounded) until ``applied`` has reached it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services.log.base import Log
from services.matcher.records import decode_outcome
from services.persistence import Record

Applied = Callable[[int, int], None]
"""Told ``(seq, event-log position)`` after each committed batch (the local profile publishes it)."""
Checkpoint = Callable[[], "tuple[int, int] | None"]
"""A checkpoint kept beside the store: ``(event-log position, seq)`` of a batch it committed, or None."""

RECENT_BATCHES = 4_096
"""How many batch ends the follower remembers to rewind to after a store lost commits."""

log = logging.getLogger("rialto.projector")


class ProjectionFollower:
    def __init__(self, event_log: Log, open_store: Callable[[], Any], batch: int = 2_000,
                 resume_position: Checkpoint | None = None, on_applied: Applied | None = None) -> None:
        self.event_log: Any = event_log  # a Log with wait_for/first_position (the journal and the stream logs)
        self._resume_position = resume_position
        self._on_applied = on_applied
        self.batch = batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projector")
        self._store: Any = None
        self._open_store = open_store
        self.applied = 0
        """The ``seq`` of the last record the store has applied."""
        self.records_applied = 0
        self.apply_seconds = 0.0
        self.errors = 0
        self.failed: BaseException | None = None
        self._waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self._next_position = 1
        self._recent: deque[tuple[int, int]] = deque(maxlen=RECENT_BATCHES)
        """``(seq, event-log position)`` where each recent committed batch ended, oldest first."""
        self._recheck = False
        """A batch failed: the store may have lost commits; ask it where it is before the next batch."""
        self.rewinds = 0

    # Set-up (on the projector's thread) ------------------------------------
    async def open(self) -> None:
        await self._on_thread(self._open)

    def open_sync(self) -> None:
        """``open`` from outside the event loop (start-up)."""
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        self._store = self._open_store()
        self.applied = self._store.position()
        checkpoint = self._resume_position() if self._resume_position is not None else None
        if checkpoint is not None and checkpoint[1] <= self.applied:
            # The checkpoint (written after each commit) is at or before what the store has: starting there
            # re-reads a little, which the store skips. One ahead of the store means the store lost commits.
            self._next_position = max(1, checkpoint[0] + 1)
        else:
            self._next_position = self._start_position(self.applied)

    def _start_position(self, seq: int) -> int:
        """The event-log position after the record of ``seq`` (positions and seqs usually coincide)."""
        first = max(1, self.event_log.first_position)
        if seq <= 0:
            return first
        if seq <= self.event_log.last_position and seq >= first:
            for _, data in self.event_log.read(seq, seq):
                if decode_outcome(data).seq == seq:
                    return seq + 1
        # Positions and seqs differ here: start from the oldest record; the store skips what it has.
        return first

    async def _on_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # Running ---------------------------------------------------------------
    async def run(self) -> None:
        """Follow the event log until it closes."""
        failures = 0
        while True:
            if not await self.event_log.wait_for(self._next_position):
                return
            try:
                await self._on_thread(self._apply_available)
            except Exception as exc:  # a failed transaction is rolled back; try again shortly
                self.errors += 1
                failures += 1
                self._recheck = True
                self.failed = exc
                log.exception("projection batch failed at position %d", self._next_position)
                # Backs off while the store stays away, and starts short again after it is back.
                await asyncio.sleep(min(2.0, 0.1 * failures))
                continue
            failures = 0
            self.failed = None
            self._wake()

    def _apply_available(self) -> None:
        assert self._store is not None
        if self._recheck:
            self._rewind_to(self._store.position())
            self._recheck = False
        start = self._next_position
        records: list[Record] = []
        last_position = start - 1
        for position, data in self.event_log.read(start):
            outcome = decode_outcome(data)
            records.append((outcome.command, outcome.client_order_id, outcome.events))
            last_position = position
            if len(records) >= self.batch:
                break
        if not records:
            return
        started = time.perf_counter()
        self._store.apply(records)
        self.apply_seconds += time.perf_counter() - started
        self.records_applied += len(records)
        self._next_position = last_position + 1
        self.applied = max(self.applied, records[-1][0].seq)
        self._recent.append((self.applied, last_position))
        if self._on_applied is not None:
            self._on_applied(self.applied, last_position)

    def _rewind_to(self, stored: int) -> None:
        """The store says it has applied up to ``stored``: read the log again after that if it went back."""
        if stored >= self.applied:
            return
        self.rewinds += 1
        log.warning("the projection store went back from seq %d to %d (a server crash lost commits); "
                    "re-reading the log from there", self.applied, stored)
        while self._recent and self._recent[-1][0] > stored:
            self._recent.pop()
        self.applied = stored
        self._next_position = self._recent[-1][1] + 1 if self._recent else self._start_position(stored)

    def _wake(self) -> None:
        applied = self.applied
        keep = []
        for seq, future in self._waiters:
            if seq <= applied:
                if not future.done():
                    future.set_result(True)
            elif not future.done():
                keep.append((seq, future))
        self._waiters = keep

    def reached(self, seq: int) -> bool:
        return self.applied >= seq

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until the store has applied ``seq``; False if ``timeout`` seconds pass first."""
        if self.applied >= seq:
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False

    # Reads for operators (on the projector's thread) -------------------------
    async def query(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(store)`` on the writer's connection, between batches."""
        assert self._store is not None
        store = self._store
        return await self._on_thread(fn, store)

    async def close(self) -> None:
        if self._store is not None:
            await self._on_thread(self._store.close)
            self._store = None
        self._executor.shutdown(wait=True)
        for _, future in self._waiters:
            if not future.done():
                future.set_result(False)
        self._waiters = []
