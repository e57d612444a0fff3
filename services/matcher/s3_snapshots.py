"""Engine snapshots in S3: the aws profile's ``SnapshotStore``.

Objects are ``<prefix>/snapshot-<seq:020d>.bin`` in the settings' bucket,
with the same bytes as ``DiskSnapshotStore``'s files: the header
``<8sQQQ`` (magic ``RIASHRD1``, seq, command position, event position) and
then the engine's canonical state. A PutObject is atomic (readers see the
whole object or none), so there is no temporary name to rename.

Kinesis positions do not fit the header's u64 fields (they are a 56-digit
sequence number times a million). Every object therefore also carries both
positions as decimal strings in its user metadata (``command-position``,
``event-position``), with a SHA-256 of the body; where a position is wider
than 64 bits its header field holds ``WIDE`` (2**64 - 1) and the metadata is
authoritative. An object copied to disk keeps a readable header for
positions that fit (the file journal's and Redis's always do).

``latest`` lists the prefix, takes the greatest seq whose object is whole
(magic, header, checksum), and skips a damaged or foreign one with a
warning, like the disk store skips a short file. ``save`` keeps the newest
``keep`` snapshots and deletes the older ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from services.aws import AwsLoop, AwsSettings, ensure_bucket, error_code
from services.matcher.snapshots import _HEADER, _MAGIC, SnapshotStore, StoredSnapshot

__all__ = ["WIDE", "S3SnapshotStore"]

log = logging.getLogger(__name__)

WIDE = (1 << 64) - 1
"""A header position field's value when the position only fits in the metadata."""
_NAME = re.compile(r"snapshot-(\d{20})\.bin$")


class S3SnapshotStore:
    """Snapshots as S3 objects named by sequence. ``prefix`` defaults to the settings' ``snapshot_prefix``."""

    def __init__(
        self,
        settings: AwsSettings,
        prefix: str | None = None,
        keep: int = 3,
        *,
        aws: AwsLoop | None = None,
    ) -> None:
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = (prefix if prefix is not None else settings.snapshot_prefix).strip("/")
        self.keep = keep
        self._aws = AwsLoop.share(settings, aws)
        self._closed = False

    def key(self, seq: int) -> str:
        return f"{self.prefix}/snapshot-{seq:020d}.bin"

    # -- set-up --------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (deployments create it; tests and first runs need this)."""
        self._aws.run(self._ensure_bucket())

    async def _ensure_bucket(self) -> None:
        await ensure_bucket(await self._aws.client("s3"), self.settings)

    # -- SnapshotStore -----------------------------------------------------------------------

    def save(self, snapshot: StoredSnapshot) -> None:
        self._aws.run(self._save(snapshot))

    async def _save(self, snapshot: StoredSnapshot) -> None:
        header = _HEADER.pack(_MAGIC, snapshot.seq, _narrow(snapshot.command_position),
                              _narrow(snapshot.event_position))
        body = header + snapshot.engine_state
        s3 = await self._aws.client("s3")
        await s3.put_object(
            Bucket=self.bucket, Key=self.key(snapshot.seq), Body=body,
            ContentType="application/octet-stream",
            Metadata={
                "command-position": str(snapshot.command_position),
                "event-position": str(snapshot.event_position),
                "sha256": hashlib.sha256(body).hexdigest(),
            },
        )
        stale = sorted(await self._list())[:-self.keep]
        for start in range(0, len(stale), 1000):  # DeleteObjects takes up to 1,000 keys
            chunk = stale[start:start + 1000]
            await s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": self.key(seq)} for seq in chunk], "Quiet": True})

    def latest(self) -> StoredSnapshot | None:
        return self._aws.run(self._latest())

    async def _latest(self) -> StoredSnapshot | None:
        s3 = await self._aws.client("s3")
        for seq in sorted(await self._list(), reverse=True):
            key = self.key(seq)
            try:
                response = await s3.get_object(Bucket=self.bucket, Key=key)
                async with response["Body"] as stream:
                    body: bytes = await stream.read()
            except Exception as exc:
                if error_code(exc) in ("NoSuchKey", "404"):  # deleted since the listing (a newer save)
                    continue
                raise
            snapshot = _parse(body, response.get("Metadata", {}))
            if isinstance(snapshot, str):
                log.warning("s3://%s/%s is not a usable snapshot (%s); trying an older one", self.bucket, key,
                            snapshot)
                continue
            return snapshot
        return None

    async def _list(self) -> list[int]:
        s3 = await self._aws.client("s3")
        seqs = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self.prefix}/snapshot-"}
        while True:
            response = await s3.list_objects_v2(**kwargs)
            for item in response.get("Contents", []):
                match = _NAME.search(item["Key"])
                if match and item["Key"] == self.key(int(match.group(1))):
                    seqs.append(int(match.group(1)))
            if not response.get("IsTruncated"):
                return seqs
            kwargs["ContinuationToken"] = response["NextContinuationToken"]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._aws.release()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _narrow(position: int) -> int:
    return position if 0 <= position < WIDE else WIDE


def _parse(body: bytes, metadata: dict[str, str]) -> StoredSnapshot | str:
    """The snapshot in an object, or why it is not one."""
    if len(body) < _HEADER.size:
        return f"{len(body)} bytes, shorter than the header"
    magic, seq, command_position, event_position = _HEADER.unpack_from(body)
    if magic != _MAGIC:
        return f"magic {magic!r}"
    digest = metadata.get("sha256")
    if digest is not None and hashlib.sha256(body).hexdigest() != digest:
        return "checksum mismatch"
    try:
        wide_command = int(metadata["command-position"]) if "command-position" in metadata else None
        wide_event = int(metadata["event-position"]) if "event-position" in metadata else None
    except ValueError:
        return "unreadable position metadata"
    positions = []
    for narrow, wide in ((command_position, wide_command), (event_position, wide_event)):
        if narrow == WIDE:
            if wide is None:
                return "a position wider than the header, without its metadata"
            positions.append(wide)
        elif wide is not None and wide != narrow:
            return f"the header says position {narrow}, the metadata {wide}"
        else:
            positions.append(narrow)
    return StoredSnapshot(seq, positions[0], positions[1], body[_HEADER.size:])


def _implements_the_interface(store: S3SnapshotStore) -> SnapshotStore:
    return store  # mypy checks here that S3SnapshotStore is a SnapshotStore
