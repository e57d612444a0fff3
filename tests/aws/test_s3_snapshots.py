"""Engine snapshots in S3 (services.matcher.s3_snapshots) against moto over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.aws import AwsSettings
from services.matcher.s3_snapshots import WIDE, S3SnapshotStore
from services.matcher.snapshots import DiskSnapshotStore, StoredSnapshot

from .helpers import with_client

KINESIS_POSITION = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898 * 1_000_000 + 7


@pytest.fixture
def store(aws_settings: AwsSettings) -> Iterator[S3SnapshotStore]:
    s = S3SnapshotStore(aws_settings, prefix="snapshots/0", keep=3)
    s.ensure_bucket()
    s.ensure_bucket()  # idempotent
    yield s
    s.close()


def keys(settings: AwsSettings, prefix: str = "") -> list[str]:
    async def use(client: Any) -> list[str]:
        response = await client.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]

    return with_client(settings, "s3", use)


def get(settings: AwsSettings, key: str) -> bytes:
    async def use(client: Any) -> bytes:
        response = await client.get_object(Bucket=settings.bucket, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
            return data

    return with_client(settings, "s3", use)


def put(settings: AwsSettings, key: str, body: bytes) -> None:
    async def use(client: Any) -> None:
        await client.put_object(Bucket=settings.bucket, Key=key, Body=body)

    with_client(settings, "s3", use)


def test_an_empty_store_has_no_latest_snapshot(store: S3SnapshotStore) -> None:
    assert store.latest() is None


def test_the_latest_is_the_greatest_seq_and_only_the_newest_are_kept(
        aws_settings: AwsSettings, store: S3SnapshotStore) -> None:
    for seq in (5, 9, 7, 12, 30):
        store.save(StoredSnapshot(seq, seq * 10, seq * 20, f"state {seq}".encode() * 100))
    assert store.latest() == StoredSnapshot(30, 300, 600, b"state 30" * 100)
    assert keys(aws_settings) == [f"snapshots/0/snapshot-{seq:020d}.bin" for seq in (9, 12, 30)]


def test_the_object_has_the_disk_stores_bytes(aws_settings: AwsSettings, store: S3SnapshotStore,
                                              tmp_path: Path) -> None:
    snapshot = StoredSnapshot(42, 1_000, 2_000, bytes(range(256)) * 40)
    store.save(snapshot)
    disk = DiskSnapshotStore(tmp_path)
    disk.save(snapshot)
    name = "snapshot-00000000000000000042.bin"
    assert get(aws_settings, f"snapshots/0/{name}") == (tmp_path / name).read_bytes()


def test_kinesis_positions_wider_than_the_header_round_trip_through_the_metadata(
        aws_settings: AwsSettings, store: S3SnapshotStore, tmp_path: Path) -> None:
    snapshot = StoredSnapshot(3, KINESIS_POSITION, KINESIS_POSITION + 5, b"engine")
    store.save(snapshot)
    assert store.latest() == snapshot
    body = get(aws_settings, "snapshots/0/snapshot-00000000000000000003.bin")
    copied = tmp_path / "snapshot-00000000000000000003.bin"
    copied.write_bytes(body)
    on_disk = DiskSnapshotStore(tmp_path).latest()  # the header still reads, with the WIDE marker
    assert on_disk is not None and (on_disk.seq, on_disk.command_position) == (3, WIDE)


def test_a_damaged_or_foreign_newest_object_is_skipped_for_an_older_one(
        aws_settings: AwsSettings, store: S3SnapshotStore) -> None:
    good = StoredSnapshot(10, 100, 200, b"good state")
    store.save(good)
    store.save(StoredSnapshot(13, 130, 260, b"newer"))
    put(aws_settings, "snapshots/0/snapshot-00000000000000000011.bin", b"short")
    put(aws_settings, "snapshots/0/snapshot-00000000000000000012.bin", b"NOTASNAP" + b"\x00" * 40)
    body = get(aws_settings, "snapshots/0/snapshot-00000000000000000013.bin")

    async def tamper(client: Any) -> None:  # same metadata, one byte changed: the checksum catches it
        key = "snapshots/0/snapshot-00000000000000000013.bin"
        head = await client.head_object(Bucket=aws_settings.bucket, Key=key)
        await client.put_object(Bucket=aws_settings.bucket, Key=key, Body=body[:-1] + b"X", Metadata=head["Metadata"])

    with_client(aws_settings, "s3", tamper)
    put(aws_settings, "snapshots/0/notes.txt", b"not a snapshot name")
    assert store.latest() == good


def test_shards_prefixes_do_not_see_each_other(aws_settings: AwsSettings, store: S3SnapshotStore) -> None:
    other = S3SnapshotStore(aws_settings, prefix="snapshots/1", keep=1)
    try:
        store.save(StoredSnapshot(1, 1, 1, b"zero"))
        other.save(StoredSnapshot(2, 2, 2, b"one"))
        other.save(StoredSnapshot(3, 3, 3, b"one again"))
        assert store.latest() == StoredSnapshot(1, 1, 1, b"zero")
        assert other.latest() == StoredSnapshot(3, 3, 3, b"one again")
        assert keys(aws_settings, "snapshots/1/") == ["snapshots/1/snapshot-00000000000000000003.bin"]
    finally:
        other.close()
