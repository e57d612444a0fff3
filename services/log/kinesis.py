"""Kinesis Data Streams: the aws profile's ordered log (``services.log.base.Log``).

One engine shard's log is one partition key of a stream (``"0"``, ``"1"``,
...), pinned to one Kinesis shard with ``ExplicitHashKey`` (the starting
hash key of the Kinesis shard it maps to), so the whole log is in one
Kinesis shard and Kinesis's per-shard order is the log's order. Several
partition keys may share a Kinesis shard; readers skip the others' records.

Records and positions
---------------------
A log record is opaque bytes. Appends are packed: one Kinesis record carries
the records of one or more ``append`` calls back to back, each
length-prefixed, after a header::

    magic b"RKL1" | producer id (16 bytes) | u64 producer seq | u64 low
    | u8 n + n ASCII digits: resume (a Kinesis sequence number, n = 0: none)
    | u32 count | count x (u32 length + bytes)

(little-endian). The position of the ``i``-th log record of the Kinesis
record with sequence number ``s`` is ``s * 1_000_000 + i``. Kinesis sequence
numbers are unique and increase along a shard, and a pack holds fewer than
a million records, so positions are unique and strictly increasing in log
order, and ``p + 1`` for any position ``p`` still names the same Kinesis
record (``read(p + 1)`` starts *at* ``s`` and skips its first ``i + 1``
records). Positions are far wider than 64 bits (Kinesis sequence numbers
have 56 digits); store them as Python ints, text or NUMERIC, never int64.

Group commit
------------
One sender task (on the ``AwsLoop``) takes everything queued: the records
of each ``append`` go into one pack (up to 1 MiB with the partition key),
several appends share a pack, and up to 500 packs / 5 MiB go in one
PutRecords call. While a call is in flight the next batch gathers. The
records of one append are therefore contiguous inside one Kinesis record:
consecutive positions, never interleaved with another append. An append
bigger than one pack is split into several Kinesis records, sent one call
at a time with nothing else in between (consecutive still); such an append
is not atomic: a failure can leave a prefix of it in the log.

Throughput: one Kinesis shard takes 1 MiB/s and 1,000 records/s of writes;
packing makes the byte limit the binding one (about 6,000 commands/s).

Retries, duplicates, and what readers see
-----------------------------------------
botocore retries a PutRecords whose response was lost, and the sender
retries the records a PutRecords reports as failed (exponential backoff, up
to ``append_timeout`` seconds): both can write a pack twice. Every pack
carries its producer id (random per ``KinesisLog`` instance and renewed
after a failed append) and producer seq (``pseq``, 1, 2, ... per producer),
so copies are recognisable. The **first copy** of a (producer, pseq) in the
shard is the record; later copies are not part of the log:

* readers (``read``, ``tail``, ``wait_for``) yield a pack only at its first
  copy, wherever they start reading;
* an append that needed more than one attempt is acknowledged only after a
  read-back finds the first copy of each of its packs, so the positions
  ``append`` returns are the ones readers yield.

How a reader knows a copy is not the first, with bounded memory: the sender
makes one PutRecords call at a time, and every pack of a call carries
``low`` = the call's first pseq (every pseq below it was acknowledged before
the call was made, so all its copies are already in the shard) and
``resume`` = the greatest sequence number acknowledged before the call (so
every copy of every pack of this call or a later one comes after
``resume``). A reader keeps, per producer, the pseqs it has seen at or
above the greatest ``low`` seen (at most one call's worth: <= 500): a pack
is a copy if its pseq is below that ``low`` or already in the set. A reader
starting in the middle of the stream (at sequence number ``s``) first meets
a producer in a pack whose ``resume`` may be below ``s``: earlier copies of
that producer's in-flight packs can only lie between ``resume`` and ``s``,
so the reader scans that stretch once ("priming") before deciding. So the
guarantee, in two sentences: *every reader, whatever position it starts
from, yields each appended record exactly once, at the position of the
first copy of its pack, and in Kinesis order; the positions an append
returns are those positions.* It rests on Kinesis ordering a shard's
records by the time they are committed (a record sent after another was
acknowledged gets a greater sequence number) and on an abandoned
PutRecords attempt never committing after a later attempt's response.

Producers are deduplicated independently; a reader remembers the 256 most
recently seen (forgetting one costs at most a re-priming scan). Duplicates
whose first copy has aged out of the stream's retention are yielded by a
reader that starts at the trim horizon (``read(0)``): a reader never starts
there on a stream that has been trimmed below what it needs anyway.

Reading
-------
``read(from, to)`` uses an ``AT_SEQUENCE_NUMBER`` iterator (or
``TRIM_HORIZON`` for positions below one million, i.e. 0 and 1) and
GetRecords. Without ``to`` it reads until GetRecords reports
``MillisBehindLatest == 0`` with no records (and at least to what this
instance knows is acknowledged: ``last_position`` when it was called). A
``from`` whose Kinesis record is no longer in the shard raises
``LogTruncated``. ``from_position`` must be 0, 1, a position this log
produced, or one plus such a position.

Each instance follows the shard's end with one "head" reader and keeps the
records it read in a bounded buffer (``recent_bytes``): ``wait_for``,
``tail`` and ``read``s of recent positions are served from it, so a
follower's poll-then-read costs two GetRecords, not a fresh iterator. A
reader that asks for something older reads it cold (its own iterator) until
it reaches the buffer. ``tail`` polls every ``poll_interval`` seconds when
caught up (200 ms by default; Kinesis allows 5 GetRecords per second per
shard across all readers, so keep readers per shard few, or use enhanced
fan-out); an append by the same instance wakes its tails at once.

``last_position`` is what this instance knows: the greatest position it has
appended or read. Kinesis cannot tell the end of a partition without
reading it (a ``LATEST`` iterator has no sequence number), so a fresh
instance's ``last_position`` is 0 until it reads: ``catch_up(from)`` reads
from ``from`` (a snapshot's position, say) to the end and returns it.
``first_position`` is 1: reading from it starts at the oldest record
Kinesis still holds (the stream's retention, 24 hours by default; set it
longer than the snapshot interval). ``truncate_before`` does nothing:
retention trims.

Known limitations
-----------------
* Resharding a stream in use is not supported: the log is pinned to a
  Kinesis shard id and does not follow it to its children.
* One writer per log is assumed (the engine shard's leader): a second
  writer's records interleave with the first's (each keeps its own order).
* ``tail`` polls; enhanced fan-out (SubscribeToShard) would push.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import struct
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from services.aws import AwsLoop, AwsSettings, error_code, is_transient
from services.log.base import Log, LogClosed, LogError, LogTruncated, Position

__all__ = [
    "SUBPOSITIONS",
    "KinesisLog",
    "KinesisMetrics",
    "KinesisUnavailable",
    "position_of",
    "sequence_number_of",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

SUBPOSITIONS = 1_000_000
"""Positions per Kinesis record: position = sequence number x SUBPOSITIONS + index in the pack."""
MAX_KINESIS_RECORD = 1 << 20
"""Kinesis's limit on one record: data plus partition key."""
PUT_RECORDS_MAX_RECORDS = 500
PUT_RECORDS_MAX_BYTES = 5 << 20
MAGIC = b"RKL1"
_HEAD = struct.Struct("<4s16sQQB")  # magic, producer, pseq, low, length of resume digits
_U32 = struct.Struct("<I")
_PACK_OVERHEAD = _HEAD.size + 64 + _U32.size  # header with the longest resume (sequence numbers have 56 digits)
_PRODUCERS_KEPT = 256


def position_of(sequence_number: int | str, index: int = 0) -> Position:
    """The position of the ``index``-th record packed in the Kinesis record ``sequence_number``."""
    return int(sequence_number) * SUBPOSITIONS + index


def sequence_number_of(position: Position) -> int:
    """The Kinesis sequence number holding ``position``."""
    return position // SUBPOSITIONS


class KinesisUnavailable(LogError):
    """Kinesis did not take an append (or answer a read) within the retry budget.

    For an append the outcome is unknown: its records may or may not be in
    the log. The log stays open; the next append starts a new producer.
    """


@dataclass
class KinesisMetrics:
    """Counters, updated on the AWS loop. Read them from anywhere."""

    batches: int = 0
    """PutRecords calls that completed (group commits)."""
    records: int = 0
    """Log records appended and acknowledged."""
    bytes: int = 0
    kinesis_records: int = 0
    """Packs written (Kinesis records, first copies)."""
    retries: int = 0
    """PutRecords attempts repeated by the sender (failed records or a failed call)."""
    verifications: int = 0
    """Read-backs that located the first copies of a retried call's packs."""
    get_records_calls: int = 0
    records_read: int = 0
    duplicates_dropped: int = 0
    """Copies of packs that readers skipped."""
    primes: int = 0
    """Scans readers made to learn what a producer wrote before their start."""
    fsyncs: int = 0
    """Always 0: Kinesis replicates across three zones instead (kept for the journal's gauges)."""


# -- packs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Header:
    producer: bytes
    pseq: int
    low: int
    resume: int | None
    count: int
    body: int  # offset of the first length prefix


def _encode_pack(producer: bytes, pseq: int, low: int, resume: int | None, records: Sequence[bytes]) -> bytes:
    digits = b"" if resume is None else str(resume).encode()
    parts = [_HEAD.pack(MAGIC, producer, pseq, low, len(digits)), digits, _U32.pack(len(records))]
    pack_u32 = _U32.pack
    for record in records:
        parts.append(pack_u32(len(record)))
        parts.append(record)
    return b"".join(parts)


def _decode_header(data: bytes) -> _Header | None:
    """The pack header, or None if ``data`` is not a pack (someone else's record)."""
    if len(data) < _HEAD.size + _U32.size or data[:4] != MAGIC:
        return None
    _, producer, pseq, low, n = _HEAD.unpack_from(data)
    at = _HEAD.size + n
    if len(data) < at + _U32.size:
        return None
    resume = int(data[_HEAD.size:at]) if n else None
    (count,) = _U32.unpack_from(data, at)
    return _Header(producer, pseq, low, resume, count, at + _U32.size)


def _payloads(data: bytes, header: _Header) -> list[bytes]:
    out = []
    at = header.body
    unpack = _U32.unpack_from
    view = memoryview(data)
    for _ in range(header.count):
        (length,) = unpack(data, at)
        at += 4
        out.append(bytes(view[at:at + length]))
        at += length
    if at != len(data):
        raise LogError(f"a Kinesis pack's records do not add up to its length ({at} != {len(data)})")
    return out


class _Window:
    """What a reader remembers of one producer: pseqs seen at or above the greatest ``low`` seen."""

    __slots__ = ("low", "seen")

    def __init__(self) -> None:
        self.low = 0
        self.seen: set[int] = set()


class _Dedupe:
    """First copies only (see the module docstring)."""

    def __init__(self, kept: int = _PRODUCERS_KEPT) -> None:
        self._windows: OrderedDict[bytes, _Window] = OrderedDict()
        self._kept = kept

    def knows(self, producer: bytes) -> bool:
        return producer in self._windows

    def window(self, producer: bytes) -> _Window:
        window = self._windows.get(producer)
        if window is None:
            window = self._windows[producer] = _Window()
            if len(self._windows) > self._kept:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(producer)
        return window

    def first_copy(self, header: _Header) -> bool:
        """Note ``header``'s pack; True if this is its first copy."""
        window = self.window(header.producer)
        if header.low > window.low:
            window.low = header.low
            window.seen = {p for p in window.seen if p >= header.low}
        if header.pseq < window.low or header.pseq in window.seen:
            return False
        window.seen.add(header.pseq)
        return True


# -- the sender's units -------------------------------------------------------------------------


class _Request:
    """One append: its records, the future its caller waits on, and its positions once written."""

    __slots__ = ("future", "positions", "records", "size")

    def __init__(self, records: list[bytes], future: asyncio.Future[Sequence[Position]]) -> None:
        self.records = records
        self.size = sum(4 + len(r) for r in records)
        self.future = future
        self.positions: list[range] = []


class _Pack:
    """One Kinesis record being written: whole requests (or one chunk of a big one)."""

    __slots__ = ("acked", "count", "data", "entries", "pseq", "records", "seqnum", "size")

    def __init__(self) -> None:
        self.entries: list[tuple[_Request, int, int]] = []  # request, first index in this pack, count
        self.records: list[bytes] = []
        self.count = 0
        self.size = 0
        self.data = b""
        self.pseq = 0
        self.seqnum = 0  # the first copy's sequence number
        self.acked = 0  # the sequence number PutRecords answered (a later copy if it was retried)

    def add(self, request: _Request, records: list[bytes], size: int) -> None:
        self.entries.append((request, self.count, len(records)))
        self.records.extend(records)
        self.count += len(records)
        self.size += size


@dataclass
class _ReadState:
    next: int
    to: int | None
    target: int
    """``last_position`` when the read began: a read without ``to`` goes at least this far."""
    deadline: float
    cold: _Reader | None = None
    after_seq: int | None = None
    """Every Kinesis record up to this sequence number has been considered (by a cold reader)."""


_MORE = 0  # there may be more right away
_CAUGHT_UP = 1  # GetRecords said: nothing more now
_COVERED = 2  # everything up to ``to`` has been read


class _Reader:
    """Reads one partition's packs from a position, first copies only (runs on the AWS loop)."""

    def __init__(self, owner: KinesisLog, from_position: int, after_seq: int | None = None) -> None:
        self.owner = owner
        self.from_position = max(0, from_position)
        start = sequence_number_of(self.from_position)
        self.start_seq: int | None = start if start > 0 else None
        self.iterator: str | None = None
        self.last_seq: int | None = after_seq  # resuming after a sequence number: AFTER_SEQUENCE_NUMBER
        self.checked = after_seq is not None  # nothing to check: the start is not a record of ours
        if after_seq is not None:
            self.start_seq = after_seq + 1  # what priming must look below
        self.ended = False
        self.dedupe = _Dedupe()

    def covers(self, position: int) -> bool:
        """Whether every record at or below ``position`` has been read."""
        return self.last_seq is not None and self.last_seq >= sequence_number_of(position)

    async def fetch(self) -> tuple[list[tuple[int, bytes]], bool]:
        """One GetRecords: the records it holds (first copies, in order) and whether we are at the end now."""
        owner = self.owner
        if self.ended:
            return [], True
        if self.iterator is None:
            self.iterator = await self._new_iterator()
        try:
            response = await owner._get_records(self.iterator)
        except ClientError as exc:
            if error_code(exc) != "ExpiredIteratorException":
                raise
            self.iterator = await self._new_iterator()  # idle for over five minutes
            response = await owner._get_records(self.iterator)
        self.iterator = response.get("NextShardIterator")
        if self.iterator is None:
            self.ended = True  # the shard was closed (resharded): nothing more will come
        records = response.get("Records", [])
        out: list[tuple[int, bytes]] = []
        key = owner.partition_key
        for record in records:
            seq = int(record["SequenceNumber"])
            if not self.checked:
                self.checked = True
                if self.start_seq is not None and seq != self.start_seq:
                    raise LogTruncated(
                        f"position {self.from_position} (Kinesis record {self.start_seq}) is no longer in "
                        f"{owner.stream}/{owner.shard_id}: the oldest held from there is {seq}"
                    )
            self.last_seq = seq
            if record["PartitionKey"] != key:
                continue
            data: bytes = record["Data"]
            header = _decode_header(data)
            if header is None:
                log.warning("%s: skipped a record at %d that is not a Rialto pack", owner, seq)
                continue
            if header.count == 0:
                continue  # a producer's opening marker
            if not self.dedupe.knows(header.producer) and self._may_have_earlier_copies(header):
                await self._prime(header)
            if not self.dedupe.first_copy(header):
                owner.metrics.duplicates_dropped += 1
                continue
            base = seq * SUBPOSITIONS
            start = self.from_position - base
            payloads = _payloads(data, header)
            owner.metrics.records_read += len(payloads)
            if start <= 0:
                out.extend(zip(range(base, base + len(payloads)), payloads, strict=True))
            elif start < len(payloads):
                out.extend(zip(range(base + start, base + len(payloads)), payloads[start:], strict=True))
        caught_up = self.ended or (not records and response.get("MillisBehindLatest", 0) == 0)
        return out, caught_up

    def _may_have_earlier_copies(self, header: _Header) -> bool:
        # A producer's packs of the call this one belongs to (and later) all come after ``resume``:
        # only a reader that started after ``resume`` can have missed an earlier copy.
        if self.start_seq is None:
            return False
        return header.resume is None or header.resume < self.start_seq

    async def _prime(self, header: _Header) -> None:
        """Learn what ``header.producer`` wrote between its ``resume`` and our start."""
        owner = self.owner
        owner.metrics.primes += 1
        window_owner = self.dedupe
        window_owner.window(header.producer)
        assert self.start_seq is not None
        async for _, other in owner._scan(header.resume, self.start_seq):
            if other.producer == header.producer and other.count:
                window_owner.first_copy(other)

    async def _new_iterator(self) -> str:
        if self.last_seq is not None:
            return await self.owner._shard_iterator("AFTER_SEQUENCE_NUMBER", self.last_seq)
        if self.start_seq is not None:
            try:
                return await self.owner._shard_iterator("AT_SEQUENCE_NUMBER", self.start_seq)
            except ClientError as exc:
                if error_code(exc) == "InvalidArgumentException":
                    raise LogTruncated(
                        f"position {self.from_position}: Kinesis refuses sequence number {self.start_seq} "
                        f"({exc}); it has aged out of the stream or was never this log's"
                    ) from exc
                raise
        return await self.owner._shard_iterator("TRIM_HORIZON", None)


# -- the log ----------------------------------------------------------------------------------


class KinesisLog(Log):
    """One engine shard's ordered log on a Kinesis stream. See the module docstring.

    ``settings``: where AWS is; ``stream``: the stream's name;
    ``partition_key``: the engine shard's id (``"0"``, ``"1"``, ...).
    ``aws``: a shared ``AwsLoop`` (default: the process's loop for
    ``settings``). ``poll_interval``: how long a caught-up ``tail`` or
    ``wait_for`` sleeps between GetRecords. ``append_timeout``: how long the
    sender keeps retrying one PutRecords before the append fails with
    ``KinesisUnavailable``. ``recent_bytes``: the follow buffer's size.
    """

    def __init__(
        self,
        settings: AwsSettings,
        stream: str,
        partition_key: str = "0",
        *,
        aws: AwsLoop | None = None,
        poll_interval: float = 0.2,
        append_timeout: float = 30.0,
        recent_bytes: int = 32 << 20,
        max_record_bytes: int = MAX_KINESIS_RECORD,
        read_visibility_timeout: float = 30.0,
    ) -> None:
        if not partition_key:
            raise ValueError("a partition key is needed")
        self.settings = settings
        self.stream = stream
        self.partition_key = partition_key
        self.poll_interval = poll_interval
        self.append_timeout = append_timeout
        self.recent_bytes = recent_bytes
        self.read_visibility_timeout = read_visibility_timeout
        self.metrics = KinesisMetrics()
        self._pack_limit = max_record_bytes - len(partition_key.encode()) - _PACK_OVERHEAD
        if self._pack_limit < 64:
            raise ValueError(f"max_record_bytes {max_record_bytes} leaves no room for records")
        self._aws = AwsLoop.share(settings, aws)
        self.shard_id = ""
        self._hash_key = ""
        self._last = 0
        self._closing = False
        self._closed = False
        # Sender state (AWS loop only).
        self._queue: deque[_Request] = deque()
        self._work: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._producer: bytes | None = None
        self._next_pseq = 1
        self._acked: int | None = None
        # Follow buffer (AWS loop only): everything the head reader yielded from ``_recent_from`` on.
        self._head: _Reader | None = None
        self._head_lock: asyncio.Lock | None = None
        self._recent: list[tuple[int, bytes]] = []
        self._recent_start = 0
        self._recent_positions: list[int] = []
        self._recent_size = 0
        self._recent_from = 0
        # Callers waiting (any thread or loop).
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._sleepers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def __repr__(self) -> str:
        return f"KinesisLog({self.stream!r}, partition_key={self.partition_key!r})"

    # -- set-up -------------------------------------------------------------------------

    def ensure_stream(self, shards: int = 1, timeout: float = 120.0) -> None:
        """Create the stream with ``shards`` shards if it does not exist; wait until it is ACTIVE."""
        self._run(self._ensure_stream(shards, timeout))

    async def _ensure_stream(self, shards: int, timeout: float) -> None:
        client = await self._aws.client("kinesis")
        try:
            await client.describe_stream_summary(StreamName=self.stream)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            try:
                await client.create_stream(StreamName=self.stream, ShardCount=shards)
            except ClientError as again:
                if error_code(again) != "ResourceInUseException":  # created meanwhile by another process
                    raise
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            summary = await client.describe_stream_summary(StreamName=self.stream)
            status = summary["StreamDescriptionSummary"]["StreamStatus"]
            if status == "ACTIVE":
                return
            if time.monotonic() > deadline:
                raise KinesisUnavailable(f"stream {self.stream} is still {status} after {timeout} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _resolve_shard(self) -> None:
        """Pin the partition key to one open Kinesis shard (the same one in every process)."""
        if self.shard_id:
            return
        client = await self._aws.client("kinesis")
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream}
        while True:
            try:
                response = await client.list_shards(**kwargs)
            except ClientError as exc:
                raise KinesisUnavailable(f"cannot list the shards of {self.stream}: {exc}") from exc
            shards.extend(response.get("Shards", []))
            token = response.get("NextToken")
            if not token:
                break
            kwargs = {"NextToken": token}
        open_shards = sorted(
            (s for s in shards if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})),
            key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]),
        )
        if not open_shards:
            raise KinesisUnavailable(f"stream {self.stream} has no open shard")
        key = self.partition_key
        index = (int(key) if key.isdigit() else zlib.crc32(key.encode())) % len(open_shards)
        chosen = open_shards[index]
        self._hash_key = chosen["HashKeyRange"]["StartingHashKey"]
        self.shard_id = chosen["ShardId"]

    # -- calling the AWS loop --------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._closed:
                coro.close()
                raise LogClosed(f"{self} is closed")
            self._inflight += 1
        try:
            return self._aws.run(coro)
        finally:
            with self._lock:
                self._inflight -= 1
                self._idle.notify_all()

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._closed:
                coro.close()
                raise LogClosed(f"{self} is closed")
            self._inflight += 1
        try:
            return await self._aws.call(coro)
        finally:
            with self._lock:
                self._inflight -= 1
                self._idle.notify_all()

    async def _get_records(self, iterator: str) -> dict[str, Any]:
        client = await self._aws.client("kinesis")
        self.metrics.get_records_calls += 1
        response: dict[str, Any] = await client.get_records(ShardIterator=iterator)
        return response

    async def _shard_iterator(self, kind: str, sequence_number: int | None) -> str:
        await self._resolve_shard()
        client = await self._aws.client("kinesis")
        kwargs: dict[str, Any] = {"StreamName": self.stream, "ShardId": self.shard_id, "ShardIteratorType": kind}
        if sequence_number is not None:
            kwargs["StartingSequenceNumber"] = str(sequence_number)
        response = await client.get_shard_iterator(**kwargs)
        iterator: str = response["ShardIterator"]
        return iterator

    async def _scan(self, after: int | None, until: int) -> AsyncIterator[tuple[int, _Header]]:
        """This partition's pack headers with ``after < sequence number < until`` (all from the start if None)."""
        try:
            iterator: str | None = await self._shard_iterator(
                "TRIM_HORIZON" if after is None else "AFTER_SEQUENCE_NUMBER", after)
        except ClientError as exc:
            if error_code(exc) != "InvalidArgumentException":
                raise
            iterator = await self._shard_iterator("TRIM_HORIZON", None)  # ``after`` has aged out
        while iterator is not None:
            response = await self._get_records(iterator)
            iterator = response.get("NextShardIterator")
            records = response.get("Records", [])
            for record in records:
                seq = int(record["SequenceNumber"])
                if seq >= until:
                    return
                if record["PartitionKey"] == self.partition_key:
                    header = _decode_header(record["Data"])
                    if header is not None:
                        yield seq, header
            if not records and response.get("MillisBehindLatest", 0) == 0:
                return

    # -- appending ---------------------------------------------------------------------------

    async def append(self, records: Sequence[bytes]) -> Sequence[Position]:
        """Append ``records`` as one unit; their positions once Kinesis has acknowledged them."""
        checked = self._checked(records)
        if not checked:
            return range(0)
        return await self._call(self._submit(checked))

    def append_sync(self, records: Sequence[bytes]) -> Sequence[Position]:
        """``append`` for threads: blocks until acknowledged."""
        checked = self._checked(records)
        if not checked:
            return range(0)
        return self._run(self._submit(checked))

    def _checked(self, records: Sequence[bytes]) -> list[bytes]:
        if self._closing:
            raise LogClosed(f"{self} is closed")
        out = [r if type(r) is bytes else bytes(r) for r in records]
        for r in out:
            if 4 + len(r) > self._pack_limit:
                raise ValueError(f"a record of {len(r)} bytes does not fit in a Kinesis record "
                                 f"(at most {self._pack_limit - 4} with this partition key)")
        return out

    async def _submit(self, records: list[bytes]) -> Sequence[Position]:
        if self._closing:
            raise LogClosed(f"{self} is closed")
        future: asyncio.Future[Sequence[Position]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(records, future))
        if self._work is None:
            self._work = asyncio.Event()
        self._work.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_loop(), name=f"kinesis-sender:{self.stream}")
        return await future

    async def _send_loop(self) -> None:
        assert self._work is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._work.clear()
                await self._work.wait()
                continue
            taken: list[_Request] = []
            try:
                await self._resolve_shard()
                if self._producer is None:
                    await self._open_producer()
                if self._is_big(self._queue[0]):
                    request = self._queue.popleft()
                    taken = [request]
                    await self._send_big(request)
                else:
                    packs, taken = self._take()
                    await self._send_packs(packs)
            except Exception as exc:
                # Unknown outcome for what was taken; a new producer keeps the next appends' copies
                # apart from whatever of these may still surface.
                self._producer = None
                failure = exc if isinstance(exc, LogError) else KinesisUnavailable(f"append to {self} failed: {exc!r}")
                if failure is not exc:
                    failure.__cause__ = exc
                if not taken:  # could not even start: fail what waits rather than spin
                    taken = list(self._queue)
                    self._queue.clear()
                for request in taken:
                    if not request.future.done():
                        request.future.set_exception(failure)
                log.error("%s: append failed: %s", self, failure)
                continue
            last = 0
            for request in taken:
                positions: Sequence[Position]
                positions = request.positions[0] if len(request.positions) == 1 else [
                    p for chunk in request.positions for p in chunk]
                if positions:
                    last = max(last, positions[-1])
                self.metrics.records += len(request.records)
                self.metrics.bytes += request.size
                if not request.future.done():
                    request.future.set_result(positions)
            if last > self._last:
                self._last = last
            self._wake_sleepers()

    def _is_big(self, request: _Request) -> bool:
        return request.size > self._pack_limit or len(request.records) >= SUBPOSITIONS

    def _take(self) -> tuple[list[_Pack], list[_Request]]:
        """Whole requests from the queue's front, packed, for one PutRecords call."""
        queue = self._queue
        packs: list[_Pack] = []
        taken: list[_Request] = []
        total = 0
        key_bytes = len(self.partition_key.encode())
        current: _Pack | None = None
        while queue and not self._is_big(queue[0]):
            request = queue[0]
            fits = (current is not None and current.size + request.size <= self._pack_limit
                    and current.count + len(request.records) < SUBPOSITIONS)
            if not fits:
                if len(packs) == PUT_RECORDS_MAX_RECORDS:
                    break
                if total + _PACK_OVERHEAD + key_bytes + request.size > PUT_RECORDS_MAX_BYTES:
                    break
                current = _Pack()
                packs.append(current)
                total += _PACK_OVERHEAD + key_bytes
            elif total + request.size > PUT_RECORDS_MAX_BYTES:
                break
            assert current is not None
            current.add(request, request.records, request.size)
            total += request.size
            taken.append(queue.popleft())
        return packs, taken

    async def _send_big(self, request: _Request) -> None:
        """An append larger than a pack: one chunk per call, in order, nothing else in between."""
        chunk: list[bytes] = []
        size = 0
        chunks: list[tuple[list[bytes], int]] = []
        for record in request.records:
            if chunk and (size + 4 + len(record) > self._pack_limit or len(chunk) + 1 >= SUBPOSITIONS):
                chunks.append((chunk, size))
                chunk, size = [], 0
            chunk.append(record)
            size += 4 + len(record)
        if chunk:
            chunks.append((chunk, size))
        for records, chunk_size in chunks:
            pack = _Pack()
            pack.add(request, records, chunk_size)
            await self._send_packs([pack])

    async def _open_producer(self) -> None:
        """A new producer id, announced by an empty pack whose sequence number bounds the producer's copies."""
        self._producer = os.urandom(16)
        self._next_pseq = 1
        self._acked = None
        hello = _Pack()
        hello.data = _encode_pack(self._producer, 0, 0, None, [])
        await self._put([hello], verify=False)

    async def _send_packs(self, packs: list[_Pack]) -> None:
        assert self._producer is not None
        low = self._next_pseq
        resume = self._acked
        for pack in packs:
            pack.pseq = self._next_pseq
            self._next_pseq += 1
            pack.data = _encode_pack(self._producer, pack.pseq, low, resume, pack.records)
        await self._put(packs, verify=True)
        for pack in packs:
            base = pack.seqnum * SUBPOSITIONS
            for request, first, count in pack.entries:
                request.positions.append(range(base + first, base + first + count))
        self.metrics.batches += 1
        self.metrics.kinesis_records += len(packs)

    async def _put_records(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """One PutRecords call (separate so tests can put faults in front of it)."""
        client = await self._aws.client("kinesis")
        response: dict[str, Any] = await client.put_records(StreamName=self.stream, Records=records)
        return response

    async def _put(self, packs: list[_Pack], verify: bool) -> None:
        """Write ``packs`` (retrying failures) and set each one's first-copy sequence number."""
        resume = self._acked
        deadline = time.monotonic() + self.append_timeout
        pending = list(packs)
        repeated = False
        attempt = 0
        while pending:
            entries = [{"Data": p.data, "PartitionKey": self.partition_key, "ExplicitHashKey": self._hash_key}
                       for p in pending]
            error: BaseException | None = None
            try:
                response = await self._put_records(entries)
            except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
                if not is_transient(exc):
                    raise KinesisUnavailable(f"PutRecords to {self.stream} refused: {exc}") from exc
                error = exc
                repeated = True  # the call may have been written: copies are possible
            else:
                if response.get("ResponseMetadata", {}).get("RetryAttempts", 0):
                    repeated = True  # botocore repeated the call: an earlier attempt may have been written
                failed = []
                for pack, result in zip(pending, response["Records"], strict=True):
                    if result.get("ErrorCode") or "SequenceNumber" not in result:
                        failed.append(pack)
                        error = KinesisUnavailable(f"{result.get('ErrorCode')}: {result.get('ErrorMessage')}")
                    else:
                        pack.acked = int(result["SequenceNumber"])
                        pack.seqnum = pack.acked
                if failed:
                    repeated = True
                pending = failed
            if pending:
                attempt += 1
                self.metrics.retries += 1
                if time.monotonic() >= deadline:
                    raise KinesisUnavailable(
                        f"PutRecords to {self.stream} did not succeed within {self.append_timeout} s "
                        f"({len(pending)} of {len(packs)} Kinesis records left): {error!r}"
                    ) from error
                await asyncio.sleep(min(2.0, 0.05 * 2 ** min(attempt, 6)) * (0.5 + _jitter()))
        if repeated and verify:
            await self._verify(packs, resume, deadline + self.append_timeout)
        newest = max(p.acked for p in packs)
        if self._acked is None or newest > self._acked:
            self._acked = newest

    async def _verify(self, packs: list[_Pack], resume: int | None, deadline: float) -> None:
        """Find the first copy of each pack of a repeated call (copies can only follow ``resume``)."""
        self.metrics.verifications += 1
        wanted = {p.pseq: p for p in packs}
        found: dict[int, int] = {}
        newest = max(p.acked for p in packs)
        while True:
            async for seq, header in self._scan(resume, newest + 1):
                if header.producer == self._producer and header.pseq in wanted and header.pseq not in found:
                    found[header.pseq] = seq
            if len(found) == len(wanted):
                break
            if time.monotonic() > deadline:
                raise KinesisUnavailable(f"{self}: written records are not readable back after retries")
            await asyncio.sleep(self.poll_interval)  # acknowledged, not yet visible to GetRecords
        for pseq, pack in wanted.items():
            pack.seqnum = found[pseq]

    # -- positions ---------------------------------------------------------------------------

    @property
    def last_position(self) -> Position:
        """The greatest position this instance has appended or read (0: none yet; see ``catch_up``)."""
        return self._last

    @property
    def first_position(self) -> Position:
        """1: reading from it starts at the oldest record Kinesis still holds."""
        return 1

    def catch_up(self, from_position: Position = 0) -> Position:
        """Read from ``from_position`` to the end of the partition; return ``last_position``."""
        for _ in self.read(from_position):
            pass
        return self._last

    # -- reading -----------------------------------------------------------------------------

    def read(
        self, from_position: Position = 0, to_position: Position | None = None
    ) -> Iterator[tuple[Position, bytes]]:
        """Yield ``(position, record)`` for ``from_position <= position <= to_position``, first copies only.

        Without ``to_position``: up to the end of the partition now (see the module docstring).
        Raises ``LogTruncated`` at once if ``from_position`` has aged out of the stream.
        """
        if self._closed:
            raise LogClosed(f"{self} is closed")
        state = _ReadState(max(0, from_position), to_position, self._last,
                           time.monotonic() + self.read_visibility_timeout)
        if to_position is not None and to_position < state.next:
            return iter(())
        first = self._run(self._read_step(state))  # a truncated start raises here, not at the first next()
        return self._read_rest(state, first)

    def _read_rest(self, state: _ReadState, first: tuple[list[tuple[int, bytes]], bool]) -> Iterator[
            tuple[Position, bytes]]:
        items, done = first
        yield from items
        while not done:
            if self._closed:
                raise LogClosed(f"{self} was closed while reading")
            items, done = self._run(self._read_step(state))
            yield from items

    async def _read_step(self, state: _ReadState) -> tuple[list[tuple[int, bytes]], bool]:
        items, status = await self._step(state)
        if state.to is not None and (state.next > state.to or status == _COVERED):
            return items, True
        if status == _CAUGHT_UP:
            if state.target == 0 or state.next > state.target:
                return items, True
            # Something this instance saw acknowledged is not readable yet: Kinesis's put-to-get delay.
            if time.monotonic() > state.deadline:
                raise KinesisUnavailable(f"{self}: position {state.target} was acknowledged but is not readable")
            await asyncio.sleep(self.poll_interval)
        return items, False

    async def _step(self, state: _ReadState) -> tuple[list[tuple[int, bytes]], int]:
        """The next records for ``state``, from the buffer or at most one GetRecords."""
        if state.cold is None and (self._head is None or state.next >= self._recent_from):
            items = self._recent_slice(state)
            if items:
                return items, _MORE
            if state.to is not None and self._head is not None and self._head.covers(state.to):
                return [], _COVERED
            caught_up = await self._advance_head(state.next, state.after_seq)
            items = self._recent_slice(state)
            if items:
                return items, _MORE
            return [], _CAUGHT_UP if caught_up else _MORE
        if state.cold is None:
            state.cold = _Reader(self, state.next, state.after_seq)
        cold = state.cold
        fetched, caught_up = await cold.fetch()
        to = state.to
        items = [item for item in fetched if item[0] >= state.next and (to is None or item[0] <= to)]
        if items:
            state.next = items[-1][0] + 1
            if items[-1][0] > self._last:
                self._last = items[-1][0]
        if cold.last_seq is not None:
            # Everything in the records read so far has been considered: the next position is past them.
            state.next = max(state.next, (cold.last_seq + 1) * SUBPOSITIONS)
            state.after_seq = cold.last_seq
            if self._head is not None and state.next >= self._recent_from:
                state.cold = None  # the buffer has the rest
        if to is not None and cold.covers(to):
            return items, _COVERED
        return items, _CAUGHT_UP if caught_up and not items else _MORE

    def _recent_slice(self, state: _ReadState, limit: int = 10_000) -> list[tuple[int, bytes]]:
        positions = self._recent_positions
        at = bisect.bisect_left(positions, state.next, lo=self._recent_start)
        end = len(positions) if state.to is None else bisect.bisect_right(positions, state.to, lo=at)
        end = min(end, at + limit)
        if at >= end:
            return []
        items = self._recent[at:end]
        state.next = items[-1][0] + 1
        return items

    async def _advance_head(self, start: int, after_seq: int | None = None) -> bool:
        """One GetRecords by the head reader (started at ``start`` if there is none). True: at the end."""
        if self._head_lock is None:
            self._head_lock = asyncio.Lock()
        async with self._head_lock:
            if self._head is None or start < self._recent_from:
                # Only ``wait_for`` asks for less than the head covers, and only before the head found
                # anything (afterwards ``last_position`` is already past it): start over from there.
                self._head = _Reader(self, start, after_seq)
                self._recent, self._recent_positions = [], []
                self._recent_start = self._recent_size = 0
                self._recent_from = start
            try:
                items, caught_up = await self._head.fetch()
            except LogTruncated:
                self._head = None
                raise
            if items:
                self._recent.extend(items)
                self._recent_positions.extend(p for p, _ in items)
                self._recent_size += sum(len(d) for _, d in items)
                if items[-1][0] > self._last:
                    self._last = items[-1][0]
                self._evict()
            return caught_up

    def _evict(self) -> None:
        recent = self._recent
        while self._recent_size > self.recent_bytes and self._recent_start < len(recent) - 1:
            position, data = recent[self._recent_start]
            self._recent_size -= len(data)
            self._recent_start += 1
            self._recent_from = position + 1
        if self._recent_start > 4096 and self._recent_start * 2 > len(recent):
            del recent[:self._recent_start]
            del self._recent_positions[:self._recent_start]
            self._recent_start = 0

    async def tail(self, from_position: Position = 0) -> AsyncIterator[tuple[Position, bytes]]:
        """Yield records from ``from_position`` on, then poll for new ones; ends when the log closes."""
        if self._closed:
            return
        state = _ReadState(max(0, from_position), None, 0, 0.0)
        while not self._closing:
            try:
                items, status = await self._call(self._step(state))
            except LogClosed:
                return
            for item in items:
                yield item
            if not items and status == _CAUGHT_UP:
                await self._pause(self.poll_interval)

    async def wait_for(self, position: Position) -> bool:
        """Wait until a record at or past ``position`` is known; False once the log is closed."""
        while True:
            if self._last >= position:
                return True
            if self._closing:
                return False
            try:
                caught_up = await self._call(self._advance_head(position))
            except LogClosed:
                return False
            if self._last >= position:
                return True
            if caught_up:
                await self._pause(self.poll_interval)

    async def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``; an append by this instance or ``close`` ends it early."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if self._closing:
                return
            self._sleepers.add(entry)
        try:
            await asyncio.wait_for(entry[1].wait(), seconds)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._sleepers.discard(entry)

    def _wake_sleepers(self) -> None:
        with self._lock:
            sleepers = list(self._sleepers)
        for loop, event in sleepers:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nobody is waiting
                pass

    # -- the rest of the interface ----------------------------------------------------------

    def truncate_before(self, position: Position) -> None:
        """Nothing to do: the stream's retention period trims Kinesis records."""

    def close(self) -> None:
        """Finish queued appends, end tails and waits, release the AWS loop."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._aws.run(self._drain(), timeout=self.append_timeout * 2 + 10)
        except Exception:
            log.exception("%s: queued appends did not finish while closing", self)
        with self._idle:
            self._closed = True  # no new calls from here on; tails and waits end
        self._wake_sleepers()
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=self.settings.read_timeout + 5)
        self._aws.release()

    async def _drain(self) -> None:
        if self._work is not None:
            self._work.set()
        if self._sender is not None:
            await self._sender

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> KinesisLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jitter() -> float:
    return int.from_bytes(os.urandom(2), "little") / 65535
