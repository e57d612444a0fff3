"""The file journal (services.log.journal): framing, group commit, recovery, segments, replay."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

import services.log.journal as journal_module
from core.commands import cancel, deposit, new_order, tick
from core.events import Event, EventKind
from services.log.base import (
    LogClosed,
    LogTruncated,
    decode_command,
    decode_commands,
    decode_events,
    encode_command,
    encode_commands,
    encode_events,
)
from services.log.journal import (
    FRAME_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    Journal,
    JournalCorruption,
    JournalLocked,
)

REPO = Path(__file__).resolve().parents[2]


def payloads(count: int, start: int = 0, size: int = 24) -> list[bytes]:
    return [f"record-{i:08d}".encode().ljust(size, b".") for i in range(start, start + count)]


def only_segment(directory: Path) -> Path:
    (segment,) = sorted(directory.glob("*.journal"))
    return segment


def frame_offsets(records: list[bytes]) -> list[int]:
    """Byte offsets of each record's frame in a single segment holding exactly ``records``."""
    offsets = []
    offset = SEGMENT_HEADER_SIZE
    for record in records:
        offsets.append(offset)
        offset += FRAME_HEADER_SIZE + len(record)
    return offsets


def read_all(journal: Journal, start: int = 0) -> list[tuple[int, bytes]]:
    return list(journal.read(start))


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


# -- round trip and positions ----------------------------------------------------------------


def test_appended_records_read_back_in_order_with_their_positions(tmp_path: Path) -> None:
    records = [*payloads(10), b"", b"\x00" * 1000, bytes(range(256))]
    with Journal(tmp_path) as journal:
        assert journal.last_position == 0
        assert read_all(journal) == []
        positions = journal.append_sync(records[:5])
        assert list(positions) == [1, 2, 3, 4, 5]
        positions = journal.append_sync(records[5:])
        assert list(positions) == list(range(6, len(records) + 1))
        assert journal.last_position == len(records)
        assert read_all(journal) == list(enumerate(records, start=1))


def test_async_and_threaded_appends_share_one_sequence_of_positions(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:

        async def main() -> list[range]:
            first = await journal.append([b"a", b"b"])
            second = await asyncio.to_thread(journal.append_sync, [b"c"])
            third = await journal.append([b"d"])
            return [first, second, third]

        assert asyncio.run(main()) == [range(1, 3), range(3, 4), range(4, 5)]
        assert read_all(journal) == [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")]


def test_positions_continue_after_reopen(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.append_sync(payloads(7))
    with Journal(tmp_path) as journal:
        assert journal.last_position == 7
        assert journal.recovery == []
        assert journal.append_sync([b"eighth"]) == range(8, 9)
    with Journal(tmp_path) as journal:
        assert read_all(journal) == [*enumerate(payloads(7), start=1), (8, b"eighth")]


def test_reading_takes_bounds_and_stops_at_the_last_acknowledged_record(tmp_path: Path) -> None:
    records = payloads(50)
    with Journal(tmp_path) as journal:
        journal.append_sync(records)
        assert read_all(journal, 20) == list(enumerate(records, start=1))[19:]
        assert list(journal.read(20, 22)) == [(20, records[19]), (21, records[20]), (22, records[21])]
        assert list(journal.read(51)) == []
        replay = journal.read(1)
        journal.append_sync([b"after the read began"])
        assert len(list(replay)) == 50  # a read replays what was acknowledged when it began
        assert sum(len(chunk) for chunk in journal.read_chunks(1)) == 51


def test_one_append_gets_consecutive_positions_never_interleaved_with_another(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:

        async def writer(task: int) -> list[tuple[range, list[bytes]]]:
            done = []
            for i in range(20):
                records = [f"{task}:{i}:{k}".encode() for k in range(1 + (task + i) % 4)]
                done.append((await journal.append(records), records))
            return done

        async def main() -> list[list[tuple[range, list[bytes]]]]:
            return await asyncio.gather(*[writer(task) for task in range(16)])

        results = asyncio.run(main())
        stored = dict(read_all(journal))
        for done in results:
            for positions, records in done:
                assert [stored[p] for p in positions] == records
        assert sorted(stored) == list(range(1, journal.last_position + 1))


# -- group commit and fsync policies ------------------------------------------------------------


def test_concurrent_async_appends_are_group_committed_into_fewer_fsyncs(tmp_path: Path) -> None:
    tasks, appends_each = 64, 20
    with Journal(tmp_path) as journal:

        async def appender(task: int) -> None:
            for i in range(appends_each):
                positions = await journal.append([f"{task}:{i}".encode()])
                assert journal.durable_position >= positions[-1]  # acknowledged means on disk

        async def main() -> None:
            await asyncio.gather(*[appender(task) for task in range(tasks)])

        asyncio.run(main())
        metrics = journal.metrics
        assert metrics.records == tasks * appends_each
        assert metrics.fsyncs == metrics.batches  # every_batch: one fdatasync per batch
        assert metrics.batches < tasks * appends_each // 4  # many appends per fsync
        assert metrics.largest_batch > 1
        assert len(read_all(journal)) == tasks * appends_each


def test_concurrent_thread_appends_are_group_committed_into_fewer_fsyncs(tmp_path: Path) -> None:
    threads, appends_each = 16, 50
    with Journal(tmp_path) as journal:
        start = threading.Barrier(threads)

        def appender(thread: int) -> None:
            start.wait()
            for i in range(appends_each):
                journal.append_sync([f"{thread}:{i}".encode()])

        workers = [threading.Thread(target=appender, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        metrics = journal.metrics
        assert metrics.records == threads * appends_each
        assert metrics.fsyncs == metrics.batches < threads * appends_each
        assert journal.last_position == threads * appends_each


def test_every_batch_policy_acknowledges_only_what_is_synced(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync="every_batch") as journal:
        for i in range(5):
            journal.append_sync([b"x"])
            assert journal.durable_position == journal.last_position == i + 1
        assert journal.metrics.fsyncs == 5


def test_interval_policy_acknowledges_before_syncing_and_close_syncs(tmp_path: Path) -> None:
    journal = Journal(tmp_path, fsync="interval_ms", fsync_interval_ms=600_000)
    journal.append_sync([b"one"])
    journal.append_sync([b"two"])
    assert journal.last_position == 2
    assert journal.metrics.fsyncs == 0
    assert journal.durable_position == 0
    journal.close()
    assert journal.metrics.fsyncs == 1
    assert journal.durable_position == 2


def test_interval_policy_syncs_on_its_own_once_the_interval_passes(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync="interval_ms", fsync_interval_ms=1) as journal:
        journal.append_sync([b"one"])
        deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
        while journal.durable_position < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert journal.durable_position == 1
        assert journal.metrics.fsyncs >= 1


def test_none_policy_never_syncs_a_batch(tmp_path: Path) -> None:
    journal = Journal(tmp_path, fsync="none")
    for _ in range(10):
        journal.append_sync([b"fast and unsafe"])
    assert journal.metrics.batches == 10
    assert journal.metrics.fsyncs == 0
    journal.close()
    assert journal.metrics.fsyncs == 1  # close still syncs


def test_an_unknown_fsync_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Journal(tmp_path, fsync="sometimes")


def test_the_batch_callback_reports_records_bytes_and_fsync_time(tmp_path: Path) -> None:
    seen: list[tuple[int, int, float]] = []
    with Journal(
        tmp_path, on_batch=lambda records, nbytes, seconds: seen.append((records, nbytes, seconds))
    ) as journal:
        journal.append_sync([b"abc", b"de"])
        journal.append_sync([b""])
    assert [(records, nbytes) for records, nbytes, _ in seen] == [
        (2, 2 * FRAME_HEADER_SIZE + 5),
        (1, FRAME_HEADER_SIZE),
    ]
    assert all(seconds > 0 for _, _, seconds in seen)


def test_a_failed_fsync_fails_the_batch_and_every_later_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(tmp_path)
    journal.append_sync([b"kept"])

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal_module, "_fdatasync", broken)
    with pytest.raises(LogClosed):
        journal.append_sync([b"lost"])
    with pytest.raises(LogClosed):
        journal.append_sync([b"refused"])

    async def append_async() -> None:
        await journal.append([b"refused too"])

    with pytest.raises(LogClosed):
        asyncio.run(append_async())
    assert journal.last_position == 1
    journal.close()


def test_appending_after_close_is_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.close()
    with pytest.raises(LogClosed):
        journal.append_sync([b"late"])


def test_a_second_journal_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with Journal(tmp_path), pytest.raises(JournalLocked):
        Journal(tmp_path)
    Journal(tmp_path).close()  # free again once closed


# -- recovery -----------------------------------------------------------------------------------


def _tear(segment: Path, last_frame: int, last_record: bytes, tear: str) -> int:
    """Damage the journal's tail in one of the ways a crash or power loss can. Returns where the cut must be."""
    if tear == "short header":
        os.truncate(segment, last_frame + 7)
    elif tear == "short payload":
        os.truncate(segment, last_frame + FRAME_HEADER_SIZE + len(last_record) // 2)
    elif tear == "bad checksum":
        flip_byte(segment, last_frame + FRAME_HEADER_SIZE + 3)
    elif tear == "zeroed payload":  # the size reached the disk, the data did not
        with open(segment, "r+b") as f:
            f.seek(last_frame + FRAME_HEADER_SIZE)
            f.write(bytes(len(last_record)))
    elif tear == "zero fill after the end":
        size = segment.stat().st_size
        with open(segment, "ab") as f:
            f.write(bytes(4096))
        return size
    elif tear == "garbage after the end":
        size = segment.stat().st_size
        with open(segment, "ab") as f:
            f.write(random.Random(7).randbytes(1000))
        return size
    else:
        raise AssertionError(tear)
    return last_frame


@pytest.mark.parametrize(
    ("tear", "reason"),
    [
        ("short header", "short header"),
        ("short payload", "short payload"),
        ("bad checksum", "bad checksum"),
        ("zeroed payload", "bad checksum"),
        ("zero fill after the end", "bad checksum"),
        ("garbage after the end", None),
    ],
)
def test_a_torn_tail_is_cut_back_to_the_last_good_record_on_open(tmp_path: Path, tear: str, reason: str | None) -> None:
    records = payloads(20, size=64)
    with Journal(tmp_path) as journal:
        for record in records:
            journal.append_sync([record])
    segment = only_segment(tmp_path)
    cut_at = _tear(segment, frame_offsets(records)[-1], records[-1], tear)
    survivors = records if cut_at >= frame_offsets(records)[-1] + FRAME_HEADER_SIZE + 64 else records[:-1]

    with Journal(tmp_path) as journal:
        (cut,) = journal.recovery
        assert cut.segment == segment.name
        assert cut.offset == cut_at
        if reason is not None:
            assert cut.reason == reason
        assert segment.stat().st_size == cut_at
        assert journal.last_position == len(survivors)
        assert read_all(journal) == list(enumerate(survivors, start=1))
        assert journal.append_sync([b"next"]) == range(len(survivors) + 1, len(survivors) + 2)
    with Journal(tmp_path) as journal:
        assert journal.recovery == []
        assert read_all(journal)[-1] == (len(survivors) + 1, b"next")


def test_a_torn_batch_is_cut_whole_even_where_later_frames_of_it_survived(tmp_path: Path) -> None:
    first, second = payloads(3), payloads(3, start=3)
    with Journal(tmp_path) as journal:
        journal.append_sync(first)
        journal.append_sync(second)  # one batch: frames with batch index 0, 1, 2
    segment = only_segment(tmp_path)
    offsets = frame_offsets(first + second)
    flip_byte(segment, offsets[3] + FRAME_HEADER_SIZE)  # the first frame of the second batch

    with Journal(tmp_path) as journal:
        (cut,) = journal.recovery
        assert (cut.offset, cut.reason, cut.intact_dropped) == (offsets[3], "bad checksum", 2)
        assert read_all(journal) == list(enumerate(first, start=1))


def test_damage_followed_by_a_later_batch_raises_and_cuts_nothing(tmp_path: Path) -> None:
    records = payloads(6)
    with Journal(tmp_path) as journal:
        for record in records:
            journal.append_sync([record])  # six batches
    segment = only_segment(tmp_path)
    offsets = frame_offsets(records)
    flip_byte(segment, offsets[2] + FRAME_HEADER_SIZE + 1)
    before = segment.read_bytes()

    with pytest.raises(JournalCorruption) as raised:
        Journal(tmp_path)
    assert raised.value.offset == offsets[2]
    assert raised.value.reason.startswith("bad checksum")
    assert "not a torn tail" in str(raised.value)
    assert segment.read_bytes() == before


def test_a_damaged_length_in_the_middle_raises_though_it_looks_like_a_short_payload(tmp_path: Path) -> None:
    records = payloads(6)
    with Journal(tmp_path) as journal:
        for record in records:
            journal.append_sync([record])
    segment = only_segment(tmp_path)
    offsets = frame_offsets(records)
    with open(segment, "r+b") as f:
        f.seek(offsets[1] + 4)
        f.write(struct.pack("<I", 10_000_000))  # the frame now claims to run past the end of the file
    before = segment.read_bytes()

    with pytest.raises(JournalCorruption) as raised:
        Journal(tmp_path)
    assert raised.value.offset == offsets[1]
    assert raised.value.reason.startswith("short payload")
    assert segment.read_bytes() == before


def test_damage_in_a_sealed_segment_raises_when_it_is_read(tmp_path: Path) -> None:
    records = payloads(200, size=100)
    with Journal(tmp_path, segment_bytes=4096) as journal:
        journal.append_sync(records)
    first = sorted(tmp_path.glob("*.journal"))[0]
    flip_byte(first, SEGMENT_HEADER_SIZE + 3 * (FRAME_HEADER_SIZE + 100) + FRAME_HEADER_SIZE + 5)

    with Journal(tmp_path, segment_bytes=4096) as journal:  # only the last segment is scanned on open
        assert journal.recovery == []
        with pytest.raises(JournalCorruption, match="bad checksum at the frame for position 4"):
            read_all(journal)
        assert read_all(journal, 100) == list(enumerate(records, start=1))[99:]


def test_a_torn_segment_creation_is_removed_on_open(tmp_path: Path) -> None:
    records = payloads(10)
    with Journal(tmp_path) as journal:
        journal.append_sync(records)
    torn = tmp_path / f"{11:020d}.journal"
    torn.write_bytes(b"RIALTOJ\x00\x01\x00")  # a crash while rolling to a new segment

    with Journal(tmp_path) as journal:
        assert [cut.reason for cut in journal.recovery] == ["torn segment header"]
        assert not torn.exists()
        assert journal.last_position == 10
        assert journal.append_sync([b"eleven"]) == range(11, 12)


def test_a_damaged_header_on_a_segment_with_data_raises(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.append_sync(payloads(10))
    flip_byte(only_segment(tmp_path), 2)
    with pytest.raises(JournalCorruption, match="bad magic"):
        Journal(tmp_path)


# -- segments and truncation -----------------------------------------------------------------


def test_segments_roll_at_the_configured_size_and_reads_span_them(tmp_path: Path) -> None:
    records = payloads(500, size=100)
    with Journal(tmp_path, segment_bytes=4096) as journal:
        for start in range(0, 500, 25):
            journal.append_sync(records[start : start + 25])
        segments = sorted(tmp_path.glob("*.journal"))
        assert len(segments) == journal.metrics.segments_created + 1 > 10
        assert all(segment.stat().st_size <= 4096 for segment in segments)
        bases = [int(segment.stem) for segment in segments]
        assert bases[0] == 1
        per_segment = (4096 - SEGMENT_HEADER_SIZE) // (FRAME_HEADER_SIZE + 100)
        assert bases == list(range(1, 501, per_segment))
        expected = list(enumerate(records, start=1))
        assert read_all(journal) == expected
        for start in (1, per_segment, per_segment + 1, 250, 500):
            assert read_all(journal, start) == expected[start - 1 :]
    with Journal(tmp_path, segment_bytes=4096) as journal:
        assert journal.last_position == 500
        assert journal.append_sync([b"after"]) == range(501, 502)


def test_truncation_drops_whole_segments_entirely_before_the_position(tmp_path: Path) -> None:
    records = payloads(500, size=100)
    with Journal(tmp_path, segment_bytes=4096) as journal:
        journal.append_sync(records)
        bases = [int(segment.stem) for segment in sorted(tmp_path.glob("*.journal"))]
        journal.truncate_before(bases[3] + 1)  # inside the fourth segment: the first three go
        remaining = [int(segment.stem) for segment in sorted(tmp_path.glob("*.journal"))]
        assert remaining == bases[3:]
        assert journal.first_position == bases[3]
        assert read_all(journal, bases[3]) == list(enumerate(records, start=1))[bases[3] - 1 :]
        assert read_all(journal)[0][0] == bases[3]  # 0: from the oldest record held
        with pytest.raises(LogTruncated):
            journal.read(bases[3] - 1)
        journal.truncate_before(bases[3] + 1)  # again: nothing more to drop
        assert [int(s.stem) for s in sorted(tmp_path.glob("*.journal"))] == bases[3:]
    with Journal(tmp_path, segment_bytes=4096) as journal:
        assert journal.first_position == bases[3]
        assert journal.last_position == 500
        assert journal.append_sync([b"after"]) == range(501, 502)


def test_truncation_never_removes_the_segment_being_written(tmp_path: Path) -> None:
    with Journal(tmp_path, segment_bytes=4096) as journal:
        journal.append_sync(payloads(300, size=100))
        journal.truncate_before(10_000)
        (segment,) = sorted(tmp_path.glob("*.journal"))
        assert journal.first_position == int(segment.stem)
        assert journal.append_sync([b"more"]) == range(301, 302)
        assert read_all(journal)[-1] == (301, b"more")


def test_a_record_larger_than_a_segment_and_a_read_buffer_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    big = random.Random(1).randbytes(3 << 20)
    with Journal(tmp_path, segment_bytes=1 << 20) as journal:
        journal.append_sync([b"small", big, b"small again"])
        assert read_all(journal) == [(1, b"small"), (2, big), (3, b"small again")]
        assert read_all(journal, 3) == [(3, b"small again")]
    with Journal(tmp_path, segment_bytes=1 << 20) as journal:
        assert journal.last_position == 3
        assert [p for p, _ in read_all(journal)] == [1, 2, 3]


# -- tailing ----------------------------------------------------------------------------------


def test_a_tailing_consumer_receives_new_records_in_order_across_segments(tmp_path: Path) -> None:
    records = payloads(300, size=100)

    async def main(journal: Journal) -> list[tuple[int, bytes]]:
        journal.append_sync(records[:50])
        seen: list[tuple[int, bytes]] = []

        async def consume() -> None:
            async for item in journal.tail(1):
                seen.append(item)
                if len(seen) == len(records):
                    return

        consumer = asyncio.create_task(consume())
        for start in range(50, 300, 10):
            await journal.append(records[start : start + 10])
            await asyncio.sleep(0)
        await asyncio.wait_for(consumer, 60)  # a hang guard only
        return seen

    with Journal(tmp_path, segment_bytes=4096) as journal:
        assert asyncio.run(main(journal)) == list(enumerate(records, start=1))


def test_a_tail_from_a_position_not_yet_written_starts_there(tmp_path: Path) -> None:
    async def main(journal: Journal) -> list[int]:
        seen: list[int] = []

        async def consume() -> None:
            async for position, _ in journal.tail(8):
                seen.append(position)
                if position == 10:
                    return

        consumer = asyncio.create_task(consume())
        for _ in range(10):
            await journal.append([b"x"])
        await asyncio.wait_for(consumer, 60)
        return seen

    with Journal(tmp_path) as journal:
        journal.append_sync([b"x"] * 3)
        assert asyncio.run(main(journal)) == [8, 9, 10]


def test_a_tail_ends_when_the_journal_closes(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append_sync([b"only"])

    async def main() -> list[tuple[int, bytes]]:
        seen = []

        async def consume() -> None:
            async for item in journal.tail(1):
                seen.append(item)

        consumer = asyncio.create_task(consume())
        while not seen:
            await asyncio.sleep(0.001)
        await journal.aclose()
        await asyncio.wait_for(consumer, 60)
        return seen

    assert asyncio.run(main()) == [(1, b"only")]


def test_a_thread_can_wait_for_a_position(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        assert not journal.wait_for_sync(1, timeout=0.01)
        threading.Timer(0.01, journal.append_sync, args=([b"x"],)).start()
        assert journal.wait_for_sync(1, timeout=60)


# -- crash safety -----------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from services.log.journal import Journal

journal = Journal(sys.argv[1], segment_bytes=int(sys.argv[2]))
out = sys.stdout

async def appender(task):
    i = 0
    while True:
        records = [f"{task}:{i}:{k}".encode().ljust(40, b"~") for k in range(1 + i % 3)]
        positions = await journal.append(records)
        out.write(f"{positions.start} {task} {i} {len(records)}\\n")
        out.flush()
        i += 1

async def main():
    await asyncio.gather(*[appender(task) for task in range(16)])

print("ready", flush=True)
asyncio.run(main())
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_acknowledged_append_survives_kill_9_exactly_once_and_in_order(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    directory = tmp_path / "journal"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(directory), str(16 << 10)], stdout=subprocess.PIPE, env=env, cwd=REPO
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    acks_before_kill = rng.randrange(50, 3000)
    lines = [child.stdout.readline() for _ in range(acks_before_kill)]
    time.sleep(rng.random() * 0.02)
    os.kill(child.pid, signal.SIGKILL)
    lines += child.stdout.read().splitlines(keepends=True)  # acks written before it died
    child.wait()
    assert child.returncode == -signal.SIGKILL
    acks = [line.split() for line in lines if line.endswith(b"\n")]
    assert len(acks) >= acks_before_kill

    with Journal(directory, segment_bytes=16 << 10) as journal:
        stored = read_all(journal)
    positions = [position for position, _ in stored]
    assert positions == list(range(1, len(stored) + 1))
    assert len({payload for _, payload in stored}) == len(stored)  # nothing twice
    by_position = dict(stored)
    last_i: dict[int, int] = {}
    last_position: dict[int, int] = {}
    for start, task, i, count in ((int(a), int(b), int(c), int(d)) for a, b, c, d in acks):
        expected = [f"{task}:{i}:{k}".encode().ljust(40, b"~") for k in range(count)]
        assert [by_position.get(start + k) for k in range(count)] == expected
        assert i == last_i.get(task, -1) + 1  # each task's appends, in the order it made them
        assert start > last_position.get(task, 0)
        last_i[task], last_position[task] = i, start


# -- replay -----------------------------------------------------------------------------------


def test_a_million_small_records_replay_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    count, per_batch = 1_000_000, 20_000
    pack = struct.Struct("<Q").pack
    with Journal(tmp_path, fsync="none") as journal:
        for start in range(0, count, per_batch):
            journal.append_sync([pack(i) for i in range(start, start + per_batch)])

    with Journal(tmp_path) as journal:
        assert journal.last_position == count
        started = time.perf_counter()
        expected_position = 1
        for position, payload in journal.read(1):
            assert position == expected_position
            expected_position += 1
            assert payload == pack(position - 1)
        seconds = time.perf_counter() - started
    assert expected_position == count + 1
    with capsys.disabled():
        print(f"\njournal replay: {count:,} records of 8 bytes in {seconds:.2f} s ({count / seconds:,.0f} records/s)")


# -- command and event records ------------------------------------------------------------------


def test_commands_and_events_round_trip_through_their_record_encoding() -> None:
    commands = [
        new_order(1, 1_700_000_000_000_000_000, 7, 3, 1, quantity=5, price=-(2**63)),
        cancel(2, 2, 7, 1),
        deposit(3, 3, 7, 1, 2**63 - 1),
        tick(4, 4),
    ]
    for command in commands:
        record = encode_command(command)
        assert len(record) == 128
        assert decode_command(record) == command
        assert type(decode_command(record)) is type(command)
    assert decode_commands(encode_commands(commands)) == commands
    events = [
        Event(EventKind.ACCEPTED, 1, 0, 3, 1, 7, 1, 100, 5, 5),
        Event(EventKind.TRADE, 1, 1, 3, 1, 7, 1, 100, 5, 0, 9, 8, 0, 1, 2),
    ]
    assert decode_events(encode_events(events)) == events
    assert decode_events(encode_events([])) == []


def test_a_record_of_the_wrong_size_is_refused_by_the_decoders() -> None:
    record = encode_command(tick(1, 1))
    with pytest.raises(ValueError):
        decode_command(record + b"\x00")
    with pytest.raises(ValueError):
        decode_commands(record[:-1])
    with pytest.raises(ValueError):
        decode_events(record * 2 + b"\x00")


def test_the_frame_layout_is_the_documented_one(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.append_sync([b"hello", b"world"])
    data = only_segment(tmp_path).read_bytes()
    magic, version, _, base, crc, _ = struct.unpack_from("<8sIIQII", data)
    assert (magic, version, base, crc) == (b"RIALTOJ\x00", 1, 1, zlib.crc32(data[:24]))
    crc, length, position, batch_index = struct.unpack_from("<IIQI", data, SEGMENT_HEADER_SIZE)
    assert (length, position, batch_index) == (5, 1, 0)
    assert crc == zlib.crc32(data[SEGMENT_HEADER_SIZE + 4 : SEGMENT_HEADER_SIZE + FRAME_HEADER_SIZE + 5])
    assert struct.unpack_from("<IIQI", data, SEGMENT_HEADER_SIZE + FRAME_HEADER_SIZE + 5)[1:] == (5, 2, 1)


def test_a_reader_starting_mid_segment_walks_from_the_nearest_noted_frame_not_the_segment_start(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j", segment_bytes=1 << 30)
    try:
        for first in range(0, 10_000, 10):
            journal.append_sync([b"r%d" % i for i in range(first, first + 10)])
        before = journal.metrics.frames_walked_to_seek
        for position in (9_995, 5_003, 9_999):
            assert list(journal.read(position, position)) == [(position, b"r%d" % (position - 1))]
        # Each read starts at most one batch (10 records) before its position.
        assert journal.metrics.frames_walked_to_seek - before < 30
    finally:
        journal.close()


def test_after_reopening_a_reader_remembers_where_its_walk_ended(tmp_path: Path) -> None:
    with Journal(tmp_path / "j", segment_bytes=1 << 30) as journal:
        journal.append_sync([b"x"] * 5_000)
    with Journal(tmp_path / "j", segment_bytes=1 << 30) as journal:
        assert list(journal.read(4_000, 4_000)) == [(4_000, b"x")]
        walked_first = journal.metrics.frames_walked_to_seek
        assert list(journal.read(4_001, 4_001)) == [(4_001, b"x")]
        assert walked_first >= 3_999 and journal.metrics.frames_walked_to_seek - walked_first <= 1
