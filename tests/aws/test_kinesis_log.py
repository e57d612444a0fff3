"""The Kinesis log (services.log.kinesis) against moto over HTTP: the Log invariants, group commit, copies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from services.aws import AwsSettings
from services.log.base import LogClosed
from services.log.kinesis import SUBPOSITIONS, KinesisLog, _decode_header, _encode_pack, sequence_number_of

from .helpers import with_client

POLL = 0.02


def payloads(count: int, start: int = 0, size: int = 24) -> list[bytes]:
    return [f"record-{i:08d}".encode().ljust(size, b".") for i in range(start, start + count)]


@pytest.fixture
def open_log(aws_settings: AwsSettings) -> Iterator[Any]:
    """``open_log(partition_key="0", shards=1, **options)``: a KinesisLog on this test's stream, closed afterwards."""
    opened: list[KinesisLog] = []

    def make(partition_key: str = "0", shards: int = 1, **options: Any) -> KinesisLog:
        options.setdefault("poll_interval", POLL)
        log = KinesisLog(aws_settings, aws_settings.kinesis_stream, partition_key, **options)
        log.ensure_stream(shards)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def raw_records(settings: AwsSettings, log: KinesisLog) -> list[dict[str, Any]]:
    """Every Kinesis record of the log's shard, as GetRecords returns them."""

    async def use(client: Any) -> list[dict[str, Any]]:
        iterator = (await client.get_shard_iterator(
            StreamName=log.stream, ShardId=log.shard_id, ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
        out: list[dict[str, Any]] = []
        while True:
            response = await client.get_records(ShardIterator=iterator)
            out.extend(response["Records"])
            iterator = response["NextShardIterator"]
            if not response["Records"]:
                return out

    return with_client(settings, "kinesis", use)


def raw_put(settings: AwsSettings, log: KinesisLog, data: list[bytes]) -> list[int]:
    """PutRecord each of ``data`` to the log's shard as its own Kinesis record, in order; their sequence numbers."""

    async def use(client: Any) -> list[int]:
        out = []
        for item in data:
            response = await client.put_record(StreamName=log.stream, Data=item, PartitionKey=log.partition_key,
                                               ExplicitHashKey=log._hash_key)
            out.append(int(response["SequenceNumber"]))
        return out

    return with_client(settings, "kinesis", use)


def pack_count(record: dict[str, Any]) -> int:
    """How many log records a Kinesis record packs (0 for a producer's opening marker)."""
    header = _decode_header(record["Data"])
    assert header is not None, "every record on a log's stream is a pack"
    return header.count


# -- positions and order ----------------------------------------------------------------------------


def test_appended_records_read_back_in_order_with_strictly_increasing_positions(open_log: Any) -> None:
    log = open_log()
    assert log.last_position == 0
    records = [*payloads(10), b"", b"\x00" * 1000, bytes(range(256))]
    positions = [p for r in records for p in log.append_sync([r])]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert log.last_position == positions[-1]
    assert list(log.read()) == list(zip(positions, records, strict=True))
    assert list(log.read(0)) == list(log.read(1))  # 0 and 1 both mean "from the oldest record held"


def test_one_append_gets_consecutive_places_and_concurrent_appends_are_group_committed(open_log: Any) -> None:
    log = open_log()

    async def main() -> list[Any]:
        return await asyncio.gather(*(log.append(payloads(1 + i % 4, start=100 * i)) for i in range(60)))

    results = asyncio.run(main())
    read = list(log.read())
    assert sorted(r for _, r in read) == sorted(r for i in range(60) for r in payloads(1 + i % 4, start=100 * i))
    order = [p for p, _ in read]
    assert order == sorted(order) and len(set(order)) == len(order)
    where = {p: k for k, (p, _) in enumerate(read)}
    for i, positions in enumerate(results):
        assert list(positions) == list(range(positions[0], positions[0] + len(positions)))  # consecutive numbers
        places = [where[p] for p in positions]
        assert places == list(range(places[0], places[0] + len(places)))  # nothing of another append between
        assert [read[k][1] for k in places] == payloads(1 + i % 4, start=100 * i)
    assert log.metrics.batches < 60  # group commit: fewer PutRecords calls than appends
    assert log.metrics.kinesis_records < 60  # and appends share Kinesis records


def test_positions_are_the_kinesis_sequence_number_times_a_million_plus_the_index_in_the_pack(
        aws_settings: AwsSettings, open_log: Any) -> None:
    log = open_log()
    positions = log.append_sync(payloads(3))
    (record,) = [r for r in raw_records(aws_settings, log) if pack_count(r) > 0]
    base = int(record["SequenceNumber"]) * SUBPOSITIONS
    assert list(positions) == [base, base + 1, base + 2]
    assert sequence_number_of(positions[2]) == int(record["SequenceNumber"])


def test_reading_takes_bounds_inclusive_and_a_position_plus_one_starts_after_it(open_log: Any) -> None:
    log = open_log()
    first = log.append_sync(payloads(3))
    second = log.append_sync(payloads(4, start=3))
    third = log.append_sync(payloads(2, start=7))
    everything = list(log.read())
    assert [p for p, _ in everything] == [*first, *second, *third]
    assert list(log.read(second[1], second[2])) == everything[4:6]
    assert list(log.read(second[2], second[2])) == [everything[5]]
    assert list(log.read(first[2] + 1)) == everything[3:]  # from the last record of a pack + 1
    assert list(log.read(second[0] + 1, third[0])) == everything[4:8]
    assert list(log.read(third[-1] + 1)) == []
    assert list(log.read(third[0], first[0])) == []
    assert list(log.read(0, second[0])) == everything[:4]


# -- tail, wait_for, other instances -----------------------------------------------------------------


def test_a_tail_replays_what_is_there_then_follows_appends_and_ends_when_the_log_closes(open_log: Any) -> None:
    log = open_log()
    before = log.append_sync(payloads(5))

    async def main() -> list[tuple[int, bytes]]:
        seen: list[tuple[int, bytes]] = []

        async def follow() -> None:
            async for item in log.tail(before[2]):
                seen.append(item)

        task = asyncio.create_task(follow())
        later = []
        for i in range(3):
            await asyncio.sleep(0.05)
            later.extend(await log.append(payloads(2, start=10 + 2 * i)))
        while len(seen) < 3 + len(later):
            await asyncio.sleep(0.01)
        await log.aclose()
        await asyncio.wait_for(task, 10)  # the tail ends by itself
        return seen

    seen = asyncio.run(asyncio.wait_for(main(), 30))
    assert [r for _, r in seen] == payloads(3, start=2) + payloads(6, start=10)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)
    with pytest.raises(LogClosed):
        log.append_sync([b"late"])


def test_a_second_instance_reads_what_the_first_appended_and_waits_for_more(open_log: Any) -> None:
    writer = open_log()
    written = [p for i in range(4) for p in writer.append_sync(payloads(3, start=3 * i))]
    reader = open_log()
    assert reader.last_position == 0  # nothing read yet: Kinesis cannot tell the end without reading
    assert reader.catch_up(written[0]) == written[-1]
    assert list(reader.read(written[4])) == list(zip(written[4:], payloads(8, start=4), strict=True))

    async def main() -> tuple[bool, list[tuple[int, bytes]]]:
        async def append_later() -> Any:
            await asyncio.sleep(0.1)
            return await writer.append(payloads(2, start=50))

        appended = asyncio.create_task(append_later())
        arrived = await asyncio.wait_for(reader.wait_for(written[-1] + 1), 10)
        more = list(reader.read(written[-1] + 1))
        assert list(await appended) == [p for p, _ in more]
        return arrived, more

    arrived, more = asyncio.run(main())
    assert arrived and [r for _, r in more] == payloads(2, start=50)
    assert reader.last_position == more[-1][0]
    calls = reader.metrics.get_records_calls
    assert list(reader.read(more[0][0])) == more  # recent records come from the follow buffer
    assert reader.metrics.get_records_calls == calls + 1  # one GetRecords, to confirm the end


def test_partition_keys_are_separate_logs_on_one_stream(open_log: Any) -> None:
    zero = open_log("0", shards=2)
    one = open_log("1", shards=2)
    shared = open_log("2", shards=2)  # 2 % 2 shards: the same Kinesis shard as "0"
    a = zero.append_sync([b"zero"])
    b = one.append_sync([b"one"])
    c = shared.append_sync([b"two"])
    assert zero.shard_id == shared.shard_id != one.shard_id
    assert list(zero.read()) == [(a[0], b"zero")]
    assert list(one.read()) == [(b[0], b"one")]
    assert list(shared.read()) == [(c[0], b"two")]


def test_an_append_bigger_than_a_kinesis_record_is_split_and_stays_consecutive(open_log: Any) -> None:
    log = open_log(max_record_bytes=2048)
    big = payloads(200, size=100)  # about 20 kB: a dozen Kinesis records

    async def main() -> tuple[Any, Any, Any]:
        return await asyncio.gather(log.append(payloads(2, start=1000)), log.append(big),
                                    log.append(payloads(2, start=2000)))

    small_before, positions, small_after = asyncio.run(main())
    assert len(positions) == 200 and list(positions) == sorted(positions)
    assert len({sequence_number_of(p) for p in positions}) > 5
    read = list(log.read())
    places = [k for k, (p, _) in enumerate(read) if p in set(positions)]
    assert places == list(range(places[0], places[0] + 200))
    assert [read[k][1] for k in places] == big
    assert {p for p, _ in read} == {*small_before, *positions, *small_after}
    with pytest.raises(ValueError):
        log.append_sync([b"x" * 3000])  # one record larger than a Kinesis record


# -- copies: retries and duplicated puts ----------------------------------------------------------------


def test_a_duplicated_put_is_yielded_once_by_every_reader_wherever_it_starts(
        aws_settings: AwsSettings, open_log: Any) -> None:
    log = open_log()
    first = log.append_sync(payloads(2))
    second = log.append_sync(payloads(2, start=2))
    packs = [r["Data"] for r in raw_records(aws_settings, log) if pack_count(r) > 0]
    raw_put(aws_settings, log, [packs[0]])  # the first append's Kinesis record again, after the second
    third = log.append_sync(payloads(1, start=4))
    expected = list(zip([*first, *second, *third], payloads(5), strict=True))
    assert list(log.read()) == expected
    # A reader starting between the first copy and the copy must learn the first copy is before it.
    assert list(log.read(second[0])) == expected[2:]
    fresh = open_log()
    assert list(fresh.read(second[1])) == expected[3:]

    async def main() -> list[tuple[int, bytes]]:
        seen: list[tuple[int, bytes]] = []
        async for item in fresh.tail(first[1]):
            seen.append(item)
            if len(seen) == 4:
                break
        return seen

    assert asyncio.run(main()) == expected[1:]
    assert log.metrics.duplicates_dropped >= 1 and fresh.metrics.primes >= 1


def test_copies_are_dropped_even_when_one_producers_retries_arrive_out_of_order(
        aws_settings: AwsSettings, open_log: Any) -> None:
    log = open_log()
    log.append_sync([b"opening"])  # resolves the shard
    producer = b"P" * 16
    (hello,) = raw_put(aws_settings, log, [_encode_pack(producer, 0, 0, None, [])])

    def pack(pseq: int, low: int, resume: int) -> bytes:
        return _encode_pack(producer, pseq, low, resume, [f"p{pseq}".encode()])

    # One call (low 1, resume = hello) wrote pseq 2 and 3, pseq 1 failed and was retried; a lost
    # response then repeated pseq 2; the next call (low 4) wrote pseq 4, and a late copy of 1 follows.
    sequence = raw_put(aws_settings, log, [pack(2, 1, hello), pack(3, 1, hello), pack(1, 1, hello),
                                           pack(2, 1, hello), pack(4, 4, hello + 4), pack(1, 1, hello)])
    read = [r for _, r in log.read(sequence[0] * SUBPOSITIONS)]
    assert read == [b"p2", b"p3", b"p1", b"p4"]
    # Started after the first copy of pseq 2, a reader primes and still drops its second copy.
    assert [r for _, r in log.read(sequence[1] * SUBPOSITIONS)] == [b"p3", b"p1", b"p4"]


def test_a_put_records_whose_response_was_lost_is_sent_again_and_acknowledged_at_its_first_copy(
        aws_settings: AwsSettings, open_log: Any) -> None:
    log = open_log()
    log.append_sync([b"before"])
    real = log._put_records
    lost: list[dict[str, Any]] = []

    async def lossy(records: list[dict[str, Any]]) -> dict[str, Any]:
        response = await real(records)
        if not lost:
            lost.append(response)
            raise EndpointConnectionError(endpoint_url="kinesis")  # written, but the caller never hears
        return response

    log._put_records = lossy
    positions = log.append_sync(payloads(3))
    kinesis = [r for r in raw_records(aws_settings, log) if pack_count(r) > 0]
    assert len(kinesis) == 3  # "before", the copy the lost response left, and the one sent again
    first_copy = int(kinesis[1]["SequenceNumber"])
    assert list(positions) == [first_copy * SUBPOSITIONS + i for i in range(3)]
    assert log.metrics.retries == 1 and log.metrics.verifications == 1
    assert [p for p, _ in log.read(positions[0])] == list(positions)
    assert [r for _, r in log.read()] == [b"before", *payloads(3)]
    after = log.append_sync([b"after"])  # the producer goes on; the copy stays invisible
    assert [r for _, r in open_log().read(positions[1])] == [*payloads(2, start=1), b"after"]
    assert after[0] > positions[-1]


def test_records_a_put_records_reports_as_failed_are_retried_until_written(
        aws_settings: AwsSettings, open_log: Any) -> None:
    log = open_log(max_record_bytes=400)  # one append per Kinesis record: several per call
    log.append_sync([b"opening"])
    real = log._put_records
    failures = [0]

    async def throttled(records: list[dict[str, Any]]) -> dict[str, Any]:
        if len(records) < 2 or failures[0] >= 2:
            return await real(records)
        failures[0] += 1
        written = await real(records[1::2])  # Kinesis took every second record, refused the others
        results: list[dict[str, Any]] = []
        taken = iter(written["Records"])
        for i in range(len(records)):
            results.append(next(taken) if i % 2 else {"ErrorCode": "ProvisionedThroughputExceededException",
                                                      "ErrorMessage": "slow down"})
        return {"FailedRecordCount": len(records) - len(written["Records"]), "Records": results,
                "ResponseMetadata": written["ResponseMetadata"]}

    log._put_records = throttled

    async def main() -> list[Any]:
        return await asyncio.gather(*(log.append(payloads(1, start=i, size=200)) for i in range(8)))

    results = asyncio.run(main())
    assert failures[0] >= 1 and log.metrics.retries >= 1
    read = list(log.read())
    assert sorted(r for _, r in read[1:]) == payloads(8, size=200)  # each once
    by_record = {r: p for p, r in read}
    for i, positions in enumerate(results):
        assert list(positions) == [by_record[payloads(1, start=i, size=200)[0]]]


def test_a_refused_append_fails_with_the_log_still_open(aws_settings: AwsSettings, open_log: Any) -> None:
    log = open_log(append_timeout=0.3)
    log.append_sync([b"ok"])
    real = log._put_records

    async def down(records: list[dict[str, Any]]) -> dict[str, Any]:
        raise EndpointConnectionError(endpoint_url="kinesis")

    log._put_records = down
    from services.log.kinesis import KinesisUnavailable

    with pytest.raises(KinesisUnavailable):
        log.append_sync([b"lost?"])
    log._put_records = real
    again = log.append_sync([b"back"])  # a new producer takes over
    assert [r for _, r in log.read()] == [b"ok", b"back"]
    assert list(log.read(again[0])) == [(again[0], b"back")]
