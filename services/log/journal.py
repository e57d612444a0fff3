"""File journal: the embedded profile's ordered log (``services.log.base.Log``).

An append-only journal of opaque records in a directory of segment files,
with group commit, crash recovery, truncation by whole segments, and
buffered replay.

Layout
------
::

    directory/
      LOCK                              flock()ed while open: one journal per directory
      00000000000000000001.journal      a segment, named by its first position
      00000000000000052311.journal      ...

A segment is a 32-byte header, then frames, back to back::

    header  magic b"RIALTOJ\\0" | u32 version (1) | u32 flags (0) | u64 base position
            | u32 crc32 of the 24 bytes before it | u32 reserved (0)
    frame   u32 crc | u32 length | u64 position | u32 batch index | payload (length bytes)

All integers are little-endian. ``crc`` is ``zlib.crc32`` of everything after
it (length, position, batch index, payload), so a damaged length or position
is caught like a damaged payload. ``position`` is assigned by the journal:
consecutive, from 1, continuing after the last durable record on reopen.
``batch index`` is the frame's index in its group-commit batch (0 = the first
record the writer wrote after an fsync); recovery uses it to tell a torn tail
from damage to acknowledged data (see Recovery).

Checksum: ``zlib.crc32`` (CRC-32/IEEE), not CRC32C. It is in the standard
library (the embedded profile installs nothing), runs at several GB/s on large
buffers, and for 100-byte records the cost is the Python call, not the
polynomial. Both CRCs detect every burst up to 32 bits and all the damage a
torn write produces; CRC32C's edge (better Hamming distance at some lengths,
hardware instruction) would need a third-party C extension. The header
``version`` lets a later format switch.

Group commit
------------
One writer thread owns the active segment. ``append`` (asyncio) and
``append_sync`` (any thread) put a request on a queue and wait. The writer
takes everything queued, assigns positions, writes it with one ``write``, then
(policy ``every_batch``) one ``fdatasync``, then completes every request of
the batch: asyncio futures with one ``call_soon_threadsafe`` per event loop,
threads by releasing a per-request lock. While it is in ``fdatasync`` the next
batch gathers, so the batch size adapts to the load with no added delay.

Fsync policies (``fsync=``):

* ``every_batch`` (default): an append completes only when its batch is on
  disk. Nothing acknowledged is lost on a crash or a power loss.
* ``interval_ms``: an append completes when its batch is written to the OS;
  the writer fdatasyncs at most every ``fsync_interval_ms``. Survives a
  process crash (``kill -9``); a power loss or kernel crash loses up to
  that interval of acknowledged appends (Redis's ``appendfsync everysec``).
* ``none``: never fdatasyncs a batch. **Benchmarks only: a power loss or kernel
  crash loses acknowledged appends, with no bound.**

Whatever the policy, sealing a segment, creating one and ``close`` always
sync, so only the last segment can ever hold a torn tail. Readers and tailing
consumers see a record only once its append is acknowledged, so a consumer
never acts on a record the journal could still lose.

Recovery
--------
On open the last segment is scanned. At the first frame that is incomplete
(short header, short payload) or damaged (bad checksum, bad position, absurd
length), the rest of the file is searched for a checksum-valid frame of a
*later* batch (one whose ``position - batch index`` is past the damaged
position). With ``every_batch``, the writer starts a batch only after the
previous one is durable, so only the last batch can be torn. So:

* no later batch follows: the damage is the torn tail of the batch that was
  in flight; the file is cut back to the last good frame (logged, and listed
  in ``Journal.recovery``). Intact frames of that same batch after the damage
  (out-of-order page writeback) are dropped with it: none was acknowledged.
* a later batch follows: the damage is in the middle of acknowledged data;
  ``JournalCorruption`` is raised and nothing is cut.

Earlier (sealed) segments are checked as they are read: a bad frame there
raises ``JournalCorruption``.

Reading
-------
``read(from_position)`` replays with ``os.pread`` of 1 MiB chunks, parsed in
place; ``tail(from_position)`` does the same, then waits (asyncio) for new
acknowledged records. Finding ``from_position`` scans frame headers from the
start of its segment (no index): O(segment), once per read.

Invariants
----------
* Positions are consecutive across segments; a segment's name and header
  hold its first position.
* Only the last segment is written; all others are sealed (synced).
* ``durable_position <= last_position``; equal under ``every_batch``.

Known limitations
-----------------
* One process per directory (the LOCK), and no read-only opener yet: readers
  and tailing consumers live in the writer's process.
* Under ``interval_ms`` and ``none``, a power loss can leave damage followed
  by later (unsynced) batches; recovery then raises rather than guess.
* Truncation drops whole segments only; nothing compacts inside one.
* No preallocation: each ``fdatasync`` also commits the file's new size.
* An append cannot be withdrawn: cancelling the awaiting task does not stop
  the write.
* Damage to the last acknowledged batch itself (bit rot after the fsync) looks
  like a torn tail and is cut, with a warning: telling them apart would need a
  durable watermark outside the file.
"""

from __future__ import annotations

import asyncio
import bisect
import enum
import fcntl
import itertools
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.log.base import Log, LogClosed, LogError, LogTruncated, Position

__all__ = [
    "Cut",
    "FsyncPolicy",
    "Journal",
    "JournalCorruption",
    "JournalLocked",
    "JournalMetrics",
]

logger = logging.getLogger(__name__)

MAGIC = b"RIALTOJ\x00"
VERSION = 1
_SEGMENT_HEADER = struct.Struct("<8sIIQII")  # magic, version, flags, base, crc, reserved
SEGMENT_HEADER_SIZE = _SEGMENT_HEADER.size  # 32
_FRAME = struct.Struct("<IIQI")  # crc, length, position, batch index
_FRAME_TAIL = struct.Struct("<IQI")  # the crc'd part of the header: length, position, batch index
_U32 = struct.Struct("<I")
FRAME_HEADER_SIZE = _FRAME.size  # 20
MAX_RECORD_BYTES = 256 << 20
DEFAULT_SEGMENT_BYTES = 64 << 20
READ_CHUNK = 1 << 20
SEGMENT_SUFFIX = ".journal"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.journal$")
_NO_BOUND = 1 << 64

_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)

# Frame parser outcomes.
_DONE = 0  # reached the bound
_NEED = 1  # the buffer ends inside a frame (or exactly at one's start)
_BAD_CRC = 2
_BAD_POSITION = 3
_BAD_LENGTH = 4
_REASONS = {_BAD_CRC: "bad checksum", _BAD_POSITION: "bad position", _BAD_LENGTH: "bad length"}


class FsyncPolicy(enum.StrEnum):
    EVERY_BATCH = "every_batch"
    INTERVAL_MS = "interval_ms"
    NONE = "none"  # benchmarks only: loses acknowledged appends on power loss


class JournalCorruption(LogError):
    """Damage the journal must not repair by itself (data after it is acknowledged)."""

    def __init__(self, path: Path | str, offset: int, reason: str, detail: str = "") -> None:
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        message = f"journal segment {self.path} is corrupt at byte {offset}: {reason}"
        super().__init__(f"{message}; {detail}" if detail else message)


class JournalLocked(LogError):
    """Another journal (in this or another process) has the directory open."""


@dataclass
class JournalMetrics:
    """Counters, updated by the writer thread. Read them from anywhere."""

    batches: int = 0
    records: int = 0
    bytes: int = 0
    fsyncs: int = 0  # fdatasync calls on segment files (batches, seals, creations, close)
    fsync_seconds: float = 0.0
    largest_batch: int = 0
    segments_created: int = 0
    frames_walked_to_seek: int = 0  # frame headers readers stepped over to reach their start (by readers)


@dataclass(frozen=True)
class Cut:
    """What recovery removed on open."""

    segment: str
    offset: int  # the file was cut to this size (0: the file was removed)
    bytes: int  # how many bytes were cut
    reason: str  # "short header", "short payload", "bad checksum", "bad position", "bad length", "torn segment header"
    intact_dropped: int = 0  # intact frames of the torn batch found after the damage


BatchCallback = Callable[[int, int, float], None]
"""``on_batch(records, bytes, fsync_seconds)``, called by the writer thread after each batch."""


class _Request:
    __slots__ = ("error", "future", "lock", "loop", "positions", "records")

    def __init__(
        self,
        records: list[bytes],
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[range] | None,
        lock: Any,
    ) -> None:
        self.records = records
        self.loop = loop
        self.future = future
        self.lock = lock
        self.positions: range = range(0)
        self.error: BaseException | None = None


def _segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


def _segment_header(base: int) -> bytes:
    head = struct.pack("<8sIIQ", MAGIC, VERSION, 0, base)
    return head + struct.pack("<II", zlib.crc32(head), 0)


def _check_segment_header(data: bytes, base: int) -> str | None:
    """None if ``data`` is a valid header for a segment based at ``base``, else why not."""
    if len(data) < SEGMENT_HEADER_SIZE:
        return "short segment header"
    magic, version, _flags, header_base, crc, _ = _SEGMENT_HEADER.unpack_from(data)
    if magic != MAGIC:
        return "bad magic"
    if zlib.crc32(data[:24]) != crc:
        return "bad segment header checksum"
    if version != VERSION:
        return f"unsupported journal version {version}"
    if header_base != base:
        return f"header says base {header_base}, file name says {base}"
    return None


def _parse(
    buf: bytes, off: int, expected: int, bound: int, out: list[tuple[int, bytes]] | None
) -> tuple[int, int, int]:
    """Parse frames from ``buf[off:]`` while their position is ``<= bound``.

    Appends ``(position, payload)`` to ``out`` (if given). Returns the offset
    after the last good frame, the next expected position, and why it stopped.
    """
    n = len(buf)
    mv = memoryview(buf)
    unpack = _FRAME.unpack_from
    crc32 = zlib.crc32
    add = out.append if out is not None else None
    while expected <= bound:
        if off + 20 > n:
            return off, expected, _NEED
        crc, length, position, _ = unpack(buf, off)
        end = off + 20 + length
        if end > n:
            return off, expected, (_BAD_LENGTH if length > MAX_RECORD_BYTES else _NEED)
        if crc32(mv[off + 4 : end]) != crc:
            return off, expected, _BAD_CRC
        if position != expected:
            return off, expected, _BAD_POSITION
        if add is not None:
            add((position, buf[off + 20 : end]))
        off = end
        expected += 1
    return off, expected, _DONE


def _intact_frames(data: bytes, expected: int) -> Iterator[tuple[int, int, int]]:
    """Checksum-valid frames in ``data[1:]`` with a plausible position: ``(offset, position, batch index)``.

    ``data`` starts at a damaged frame that should have had position
    ``expected``. Candidates are the offsets whose position field holds a
    value in ``[expected, expected + len(data) // 20]`` (found with NumPy, for
    each of the 8 byte alignments); each is then checked by its CRC, in file
    order. Zero fill and random garbage give (almost) no candidates.
    """
    import numpy as np

    n = len(data)
    highest = expected + n // FRAME_HEADER_SIZE + 1
    starts = []
    for align in range(8):
        count = (n - align) // 8
        if count <= 0:
            continue
        words = np.frombuffer(data, dtype="<u8", count=count, offset=align)
        (index,) = np.nonzero((words >= expected) & (words <= highest))
        starts.append(index.astype(np.int64) * 8 + (align - 8))  # a frame's position field is at +8
    if not starts:
        return
    candidates = np.sort(np.concatenate(starts))
    for start in candidates[candidates >= 1].tolist():
        if start + FRAME_HEADER_SIZE > n:
            return
        crc, length, position, batch_index = _FRAME.unpack_from(data, start)
        end = start + FRAME_HEADER_SIZE + length
        if end <= n and zlib.crc32(data[start + 4 : end]) == crc:
            yield start, position, batch_index


class Journal(Log):
    """The file journal. Open it with ``Journal(directory, ...)``; close it (or use ``with``).

    ``segment_bytes``: roll to a new segment once the next frame would pass
    this size (a single larger record gets a segment of its own).
    ``fsync``: ``every_batch`` (default), ``interval_ms`` (with
    ``fsync_interval_ms``) or ``none``; see the module doc.
    ``on_batch(records, bytes, fsync_seconds)``: called by the writer thread
    after every batch (keep it quick; it must not append).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: FsyncPolicy | str = FsyncPolicy.EVERY_BATCH,
        fsync_interval_ms: float = 100.0,
        on_batch: BatchCallback | None = None,
    ) -> None:
        if segment_bytes < SEGMENT_HEADER_SIZE + FRAME_HEADER_SIZE:
            raise ValueError(f"segment_bytes too small: {segment_bytes}")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync_policy = FsyncPolicy(fsync)
        self.fsync_interval = fsync_interval_ms / 1000.0
        self.on_batch = on_batch
        self.metrics = JournalMetrics()
        self.recovery: list[Cut] = []

        self._lock = threading.Lock()
        # Where frames start, per segment: (position, byte offset) pairs noted by the
        # writer at every batch and by readers where their walk ended, so opening a
        # cursor in the middle of a segment walks from the nearest one, not from the
        # segment's start (which made a follower's reads grow with the segment).
        self._offsets: dict[int, list[tuple[int, int]]] = {}
        self._offsets_lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here for requests
        self._progress = threading.Condition(self._lock)  # sync tailers wait here for new records
        self._pending: list[_Request] = []
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []
        self._closing = False
        self._closed = False
        self._failed: BaseException | None = None

        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalLocked(f"journal {self.directory} is open elsewhere") from None
        try:
            self._segments, last = self._recover()
            self._active_fd = os.open(self._path(self._segments[-1]), os.O_WRONLY | os.O_APPEND)
            self._active_size = os.fstat(self._active_fd).st_size
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._next_position = last + 1
        self._last = last  # acknowledged
        self._durable = last  # fdatasynced
        self._dirty = False
        self._last_sync = time.monotonic()
        self._writer = threading.Thread(target=self._run, name=f"journal-writer:{self.directory}", daemon=True)
        self._writer.start()

    # -- the Log interface ----------------------------------------------------------

    async def append(self, records: Sequence[bytes]) -> range:
        """Append ``records`` (one unit, consecutive positions); return their positions once acknowledged."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[range] = loop.create_future()
        self._submit(_Request(self._checked(records), loop, future, None))
        return await future

    def append_sync(self, records: Sequence[bytes]) -> range:
        """``append`` for threads: blocks until acknowledged. Thread-safe; not from the writer thread."""
        lock = threading.Lock()
        lock.acquire()
        request = _Request(self._checked(records), None, None, lock)
        self._submit(request)
        lock.acquire()
        if request.error is not None:
            raise LogClosed(f"journal append failed: {request.error!r}") from request.error
        return request.positions

    @property
    def last_position(self) -> Position:
        """The last acknowledged position (durable under ``every_batch``); 0 if none."""
        return self._last

    @property
    def durable_position(self) -> Position:
        """The last position known to be on disk (fdatasynced)."""
        return self._durable

    @property
    def first_position(self) -> Position:
        """The oldest position the journal still holds (or would give the next record)."""
        with self._lock:
            return self._segments[0]

    def read(
        self, from_position: Position = 0, to_position: Position | None = None
    ) -> Iterator[tuple[Position, bytes]]:
        """Yield ``(position, payload)`` for ``from_position <= position <= to_position``.

        ``from_position=0`` starts at the oldest record held; a position that
        truncation removed raises ``LogTruncated``. ``to_position`` defaults to
        ``last_position`` now. For fewer Python-level steps, ``read_chunks``
        yields lists.
        """
        return itertools.chain.from_iterable(self.read_chunks(from_position, to_position))

    def read_chunks(
        self, from_position: Position = 0, to_position: Position | None = None
    ) -> Iterator[list[tuple[Position, bytes]]]:
        """``read``, a list of records per buffered read (about 1 MiB)."""
        bound = self._last if to_position is None else min(to_position, self._last)
        cursor = _Cursor(self, from_position)  # raises LogTruncated now, not at the first next()
        return self._chunks(cursor, bound)

    def _chunks(self, cursor: _Cursor, bound: int) -> Iterator[list[tuple[Position, bytes]]]:
        try:
            while True:
                chunk: list[tuple[int, bytes]] = []
                if not cursor.fill(bound, chunk):
                    return
                yield chunk
        finally:
            cursor.close()

    async def tail(self, from_position: Position = 0) -> AsyncIterator[tuple[Position, bytes]]:
        """Yield records from ``from_position`` on, then wait for new ones; ends when the journal closes."""
        cursor = _Cursor(self, from_position)
        try:
            while True:
                chunk: list[tuple[int, bytes]] = []
                if cursor.fill(self._last, chunk):
                    for item in chunk:
                        yield item
                elif not await self.wait_for(cursor.next_position):
                    return
        finally:
            cursor.close()

    def truncate_before(self, position: Position) -> None:
        """Delete every segment whose records are all older than ``position``; never the active one."""
        with self._lock:
            keep = bisect.bisect_right(self._segments, position) - 1  # the segment holding `position`
            keep = max(0, min(keep, len(self._segments) - 1))
            victims, self._segments = self._segments[:keep], self._segments[keep:]
        with self._offsets_lock:
            for base in victims:
                self._offsets.pop(base, None)
        for base in victims:
            os.unlink(self._path(base))
        if victims:
            self._sync_directory()
            logger.info(
                "journal %s: dropped %d segment(s) before position %d", self.directory, len(victims), self._segments[0]
            )

    def close(self) -> None:
        """Complete queued appends, sync, stop the writer, release the directory."""
        with self._lock:
            if self._closed:
                return
            self._closing = True
            self._work.notify()
        self._writer.join()
        with self._lock:
            self._closed = True
            waiters, self._waiters = self._waiters, []
            self._progress.notify_all()
        self._wake(waiters, False)
        os.close(self._lock_fd)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- waiting for new records ------------------------------------------------------

    async def wait_for(self, position: Position) -> bool:
        """Wait until ``position`` is acknowledged. False if the journal closed or failed first."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._last >= position:
                return True
            if self._closing or self._failed is not None:
                return False
            future: asyncio.Future[bool] = loop.create_future()
            self._waiters = [w for w in self._waiters if not w[2].done()]
            self._waiters.append((position, loop, future))
        return await future

    def wait_for_sync(self, position: Position, timeout: float | None = None) -> bool:
        """``wait_for`` for threads. False on timeout, close or failure."""
        with self._progress:
            return (
                self._progress.wait_for(
                    lambda: self._last >= position or self._closing or self._failed is not None, timeout
                )
                and self._last >= position
            )

    # -- the writer -------------------------------------------------------------------

    @staticmethod
    def _checked(records: Sequence[bytes]) -> list[bytes]:
        out = [r if type(r) is bytes else bytes(r) for r in records]
        for r in out:
            if len(r) > MAX_RECORD_BYTES:
                raise ValueError(f"record of {len(r)} bytes exceeds the limit of {MAX_RECORD_BYTES}")
        return out

    def _submit(self, request: _Request) -> None:
        with self._lock:
            if self._failed is not None:
                raise LogClosed(f"journal {self.directory} failed: {self._failed!r}") from self._failed
            if self._closing:
                raise LogClosed(f"journal {self.directory} is closed")
            self._pending.append(request)
            self._work.notify()

    def _run(self) -> None:
        policy = self.fsync_policy
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    if self._dirty and policy is FsyncPolicy.INTERVAL_MS:
                        remaining = self._last_sync + self.fsync_interval - time.monotonic()
                        if remaining <= 0:
                            break
                        self._work.wait(remaining)
                    else:
                        self._work.wait()
                batch, self._pending = self._pending, []
                closing = self._closing
            error: BaseException | None = None
            fsync_seconds = 0.0
            nbytes = 0
            try:
                if batch:
                    nbytes = self._write_batch(batch)
                if self._dirty and (
                    closing
                    or policy is FsyncPolicy.EVERY_BATCH
                    or (policy is FsyncPolicy.INTERVAL_MS and time.monotonic() - self._last_sync >= self.fsync_interval)
                ):
                    fsync_seconds = self._sync_active()
            except BaseException as exc:
                error = exc
                logger.exception("journal %s: write failed; the journal accepts no more appends", self.directory)
            records = sum(len(r.records) for r in batch)
            if batch and error is None:
                self._count_batch(records, nbytes)  # before the acks: an acknowledged append is counted
            self._finish(batch, error)
            if batch and error is None and self.on_batch is not None:
                try:
                    self.on_batch(records, nbytes, fsync_seconds)
                except Exception:
                    logger.exception("journal %s: on_batch callback failed", self.directory)
            if error is not None or (closing and not self._pending):
                self._stop_writer()
                return

    def _write_batch(self, batch: list[_Request]) -> int:
        """Frame and write a batch (rolling segments as needed). Returns the bytes written."""
        parts: list[bytes] = []
        position = self._next_position
        size = self._active_size
        limit = self.segment_bytes
        index = 0
        written = 0
        pack_tail = _FRAME_TAIL.pack
        pack_crc = _U32.pack
        crc32 = zlib.crc32
        self._note_offset(self._segments[-1], position, size)
        for request in batch:
            first = position
            for record in request.records:
                frame = FRAME_HEADER_SIZE + len(record)
                if size + frame > limit and size > SEGMENT_HEADER_SIZE:
                    written += self._write(parts)
                    parts = []
                    self._roll(position)
                    size = SEGMENT_HEADER_SIZE
                tail = pack_tail(len(record), position, index)
                parts += (pack_crc(crc32(record, crc32(tail))), tail, record)
                size += frame
                position += 1
                index += 1
            request.positions = range(first, position)
        written += self._write(parts)
        self._active_size = size
        self._next_position = position
        return written

    def _note_offset(self, base: int, position: int, offset: int) -> None:
        with self._offsets_lock:
            entries = self._offsets.setdefault(base, [])
            at = bisect.bisect_left(entries, (position, -1))
            if at == len(entries) or entries[at][0] != position:
                entries.insert(at, (position, offset))

    def _nearest_offset(self, base: int, position: int) -> tuple[int, int] | None:
        """The noted frame start in segment ``base`` closest at or before ``position``."""
        with self._offsets_lock:
            entries = self._offsets.get(base)
            if not entries:
                return None
            at = bisect.bisect_right(entries, (position, 2**63)) - 1
            return entries[at] if at >= 0 else None

    def _write(self, parts: list[bytes]) -> int:
        if not parts:
            return 0
        data = memoryview(b"".join(parts))
        total = len(data)
        while data:
            done = os.write(self._active_fd, data)
            data = data[done:]
        self._dirty = True
        return total

    def _sync_active(self) -> float:
        started = time.perf_counter()
        _fdatasync(self._active_fd)
        seconds = time.perf_counter() - started
        self._last_sync = time.monotonic()
        self._dirty = False
        self.metrics.fsyncs += 1
        self.metrics.fsync_seconds += seconds
        with self._lock:
            self._durable = self._next_position - 1
        return seconds

    def _roll(self, base: int) -> None:
        """Seal the active segment (synced, whatever the policy) and start one at ``base``."""
        if self._dirty:
            self._sync_active()
        os.close(self._active_fd)
        self._active_fd = -1
        path = self._path(base)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._active_fd = fd
        os.write(fd, _segment_header(base))
        self._dirty = True
        self._sync_active()
        self._sync_directory()
        self._active_size = SEGMENT_HEADER_SIZE
        self.metrics.segments_created += 1
        with self._lock:
            self._segments.append(base)

    def _finish(self, batch: list[_Request], error: BaseException | None) -> None:
        """Publish the new positions and complete the batch's requests (and woken tailers)."""
        with self._lock:
            if error is None:
                self._last = self._next_position - 1
                waiters = [w for w in self._waiters if w[0] <= self._last]
                if waiters:
                    self._waiters = [w for w in self._waiters if w[0] > self._last]
            else:
                self._failed = error
                batch = batch + self._pending
                self._pending = []
                waiters, self._waiters = self._waiters, []
            self._progress.notify_all()
        by_loop: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
        for request in batch:
            if request.loop is None:
                request.error = error
                request.lock.release()
            else:
                by_loop.setdefault(request.loop, []).append(request)
        for loop, requests in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, requests, error)
            except RuntimeError:  # that loop is closed: nobody is waiting
                pass
        self._wake(waiters, error is None)

    @staticmethod
    def _wake(waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[bool]]], value: bool) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
        for _, loop, future in waiters:
            by_loop.setdefault(loop, []).append(future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_set_all, futures, value)
            except RuntimeError:
                pass

    def _count_batch(self, records: int, nbytes: int) -> None:
        m = self.metrics
        m.batches += 1
        m.records += records
        m.bytes += nbytes
        if records > m.largest_batch:
            m.largest_batch = records

    def _stop_writer(self) -> None:
        if self._active_fd >= 0:
            try:
                if self._dirty and self._failed is None:
                    self._sync_active()
            finally:
                os.close(self._active_fd)
                self._active_fd = -1

    # -- files ---------------------------------------------------------------------------

    def _path(self, base: int) -> Path:
        return self.directory / _segment_name(base)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _segment_for(self, position: int) -> int:
        with self._lock:
            index = bisect.bisect_right(self._segments, position) - 1
            if index < 0:
                raise LogTruncated(f"position {position} is before the journal's first position {self._segments[0]}")
            return self._segments[index]

    def _next_segment(self, base: int) -> int | None:
        with self._lock:
            index = bisect.bisect_right(self._segments, base)
            return self._segments[index] if index < len(self._segments) else None

    # -- recovery ------------------------------------------------------------------------

    def _recover(self) -> tuple[list[int], int]:
        """Check the segment files, repair a torn tail; return the segment bases and the last position."""
        bases = sorted(int(m.group(1)) for m in (_SEGMENT_NAME.match(p.name) for p in self.directory.iterdir()) if m)
        if not bases:
            self._create_first_segment(1)
            return [1], 0
        for base in bases[:-1]:
            with open(self._path(base), "rb") as f:
                problem = _check_segment_header(f.read(SEGMENT_HEADER_SIZE), base)
            if problem:
                raise JournalCorruption(self._path(base), 0, problem, "a sealed segment's header is damaged")
        # The last segment: a torn creation (crash while rolling) leaves a header-sized or shorter
        # file with no frames; anything longer with a bad header is damage.
        while True:
            base = bases[-1]
            path = self._path(base)
            with open(path, "rb") as f:
                head = f.read(SEGMENT_HEADER_SIZE)
                size = os.fstat(f.fileno()).st_size
            problem = _check_segment_header(head, base)
            if problem is None:
                break
            if size > SEGMENT_HEADER_SIZE:
                raise JournalCorruption(path, 0, problem, "the segment holds data after a damaged header")
            logger.warning(
                "journal %s: removing %s, a segment whose creation was torn (%s)", self.directory, path.name, problem
            )
            self.recovery.append(Cut(path.name, 0, size, "torn segment header"))
            if len(bases) == 1:
                self._create_first_segment(base, replace=True)
                return bases, base - 1
            path.unlink()
            self._sync_directory()
            bases.pop()
        return bases, self._repair_tail(path, base)

    def _create_first_segment(self, base: int, replace: bool = False) -> None:
        path = self._path(base)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL), 0o644)
        try:
            os.write(fd, _segment_header(base))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._sync_directory()

    def _repair_tail(self, path: Path, base: int) -> int:
        """Scan the last segment; cut a torn tail, raise on damage followed by a later batch.

        Returns the last good position.
        """
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            offset = SEGMENT_HEADER_SIZE
            expected = base
            want = READ_CHUNK
            reason = ""
            while offset < size:
                data = os.pread(fd, want, offset)
                progress, expected, status = _parse(data, 0, expected, _NO_BOUND, None)
                offset += progress
                want = READ_CHUNK
                if status in _REASONS:
                    reason = _REASONS[status]
                    break
                if progress or offset >= size:
                    continue
                # No whole frame fits in what was read: torn, or just bigger than the chunk.
                if size - offset < FRAME_HEADER_SIZE:
                    reason = "short header"
                    break
                length = _U32.unpack_from(data, 4)[0]
                if offset + FRAME_HEADER_SIZE + length > size:
                    reason = "bad length" if length > MAX_RECORD_BYTES else "short payload"
                    break
                want = FRAME_HEADER_SIZE + length
            if not reason:
                return expected - 1
            rest = os.pread(fd, size - offset, offset)
            intact = 0
            later = None
            for start, position, batch_index in _intact_frames(rest, expected):
                if position - batch_index > expected:  # its batch began after the damaged frame
                    later = start
                    break
                intact += 1
            if later is not None:
                raise JournalCorruption(
                    path,
                    offset,
                    f"{reason} at the frame for position {expected}",
                    f"an intact frame of a later batch follows at byte {offset + later}, so this is damage "
                    "to acknowledged data, not a torn tail; nothing was cut. Restore the journal from a "
                    "replica or snapshot, or cut the segment at this offset by hand if losing what follows "
                    "is acceptable.",
                )
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        cut = Cut(path.name, offset, size - offset, reason, intact)
        self.recovery.append(cut)
        logger.warning(
            "journal %s: cut a torn tail of %d bytes from %s at byte %d (%s at the frame for position %d; "
            "%d intact frame(s) of the same unacknowledged batch dropped)",
            self.directory,
            cut.bytes,
            path.name,
            offset,
            reason,
            expected,
            intact,
        )
        return expected - 1


def _resolve(requests: list[_Request], error: BaseException | None) -> None:
    for request in requests:
        future = request.future
        assert future is not None
        if future.done():  # the caller was cancelled; the append happened anyway
            continue
        if error is None:
            future.set_result(request.positions)
        else:
            failure = LogClosed(f"journal append failed: {error!r}")
            failure.__cause__ = error
            future.set_exception(failure)


def _set_all(futures: list[asyncio.Future[bool]], value: bool) -> None:
    for future in futures:
        if not future.done():
            future.set_result(value)


class _Cursor:
    """A reader's place in the journal: an open segment and the offset of the next frame."""

    __slots__ = ("_base", "_fd", "_journal", "_offset", "_path", "_start", "next_position")

    def __init__(self, journal: Journal, from_position: int) -> None:
        self._journal = journal
        first = journal.first_position
        if from_position <= 0:
            from_position = first
        elif from_position < first:
            raise LogTruncated(f"position {from_position} is before the journal's first position {first}")
        self.next_position = from_position
        self._start = from_position
        self._fd = -1
        self._base = 0
        self._offset = 0
        self._path = Path()
        self._open(journal._segment_for(from_position))
        self._skip_to(from_position)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self, base: int) -> None:
        self.close()
        path = self._journal._path(base)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise LogTruncated(f"segment {path.name} was truncated away while reading") from None
        problem = _check_segment_header(os.pread(fd, SEGMENT_HEADER_SIZE, 0), base)
        if problem:
            os.close(fd)
            raise JournalCorruption(path, 0, problem)
        self._fd, self._base, self._path, self._offset = fd, base, path, SEGMENT_HEADER_SIZE
        self.next_position = base

    def _skip_to(self, position: int) -> None:
        """Walk frame headers (no checksums) to ``position`` or the end of what is written,
        from the nearest frame start the journal has noted."""
        nearest = self._journal._nearest_offset(self._base, position)
        if nearest is not None and nearest[0] > self.next_position:
            self.next_position, self._offset = nearest
        walked = self.next_position < position
        start = self.next_position
        while self.next_position < position:
            data = os.pread(self._fd, READ_CHUNK, self._offset)
            n = len(data)
            offset = 0
            expected = self.next_position
            while expected < position and offset + FRAME_HEADER_SIZE <= n:
                end = offset + FRAME_HEADER_SIZE + _U32.unpack_from(data, offset + 4)[0]
                if end > n:
                    break
                offset = end
                expected += 1
            if offset == 0:
                if n < READ_CHUNK:  # the end of what is written (a frame bigger than a chunk reads on)
                    return
                offset = FRAME_HEADER_SIZE + _U32.unpack_from(data, 4)[0]
                expected += 1
            self._offset += offset
            self.next_position = expected
        if walked:
            self._journal.metrics.frames_walked_to_seek += self.next_position - start
            if self.next_position == position:
                self._journal._note_offset(self._base, position, self._offset)

    def fill(self, bound: int, out: list[tuple[int, bytes]]) -> bool:
        """Append the next records up to ``bound`` (about a chunk's worth) to ``out``. False if none."""
        want = READ_CHUNK
        while self.next_position <= bound:
            data = os.pread(self._fd, want, self._offset)
            first = len(out)
            progress, expected, status = _parse(data, 0, self.next_position, bound, out)
            if progress:
                self._offset += progress
                early = self._start - self.next_position  # only when asked to start past what was written
                self.next_position = expected
                if early > 0:
                    del out[first : first + early]
                    if len(out) == first:
                        want = READ_CHUNK
                        continue
                return True
            if status in _REASONS:
                raise JournalCorruption(
                    self._path, self._offset, f"{_REASONS[status]} at the frame for position {self.next_position}"
                )
            # Nothing whole here: the record is bigger than the chunk, or in the next segment.
            if len(data) >= FRAME_HEADER_SIZE:
                need = FRAME_HEADER_SIZE + _U32.unpack_from(data, 4)[0]
                if need > len(data) and len(data) == want:
                    want = need
                    continue
            following = self._journal._next_segment(self._base)
            if following is None or following != self.next_position:
                raise JournalCorruption(
                    self._path,
                    self._offset,
                    f"acknowledged record {self.next_position} is missing (next segment starts at {following})",
                )
            self._open(following)
        return False
