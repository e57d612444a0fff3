"""Where engine snapshots are kept: a directory here, S3 in the aws profile.

A stored snapshot is the engine's canonical bytes (``core.snapshot``) plus the
two log positions it covers: the last command-log position applied and the
last event-log position written. Recovery loads the newest one and replays
the command log after it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_HEADER = struct.Struct("<8sQQQ")  # magic, seq, command position, event position
_MAGIC = b"RIASHRD1"


@dataclass(frozen=True)
class StoredSnapshot:
    seq: int
    command_position: int
    event_position: int
    engine_state: bytes


class SnapshotStore(Protocol):
    def save(self, snapshot: StoredSnapshot) -> None: ...

    def latest(self) -> StoredSnapshot | None: ...


class DiskSnapshotStore:
    """Snapshots as files named by sequence; written to a temporary name,
    fsynced and renamed, so a crash leaves either the old or the new one."""

    def __init__(self, directory: Path | str, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep = keep

    def save(self, snapshot: StoredSnapshot) -> None:
        final = self.directory / f"snapshot-{snapshot.seq:020d}.bin"
        temporary = final.with_suffix(".tmp")
        header = _HEADER.pack(_MAGIC, snapshot.seq, snapshot.command_position, snapshot.event_position)
        with open(temporary, "wb") as file:
            file.write(header)
            file.write(snapshot.engine_state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        for old in sorted(self.directory.glob("snapshot-*.bin"))[:-self.keep]:
            old.unlink()

    def latest(self) -> StoredSnapshot | None:
        for path in sorted(self.directory.glob("snapshot-*.bin"), reverse=True):
            data = path.read_bytes()
            if len(data) < _HEADER.size:
                continue
            magic, seq, command_position, event_position = _HEADER.unpack_from(data)
            if magic != _MAGIC:
                continue
            return StoredSnapshot(seq, command_position, event_position, data[_HEADER.size:])
        return None
