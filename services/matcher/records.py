"""What the matcher reads from the command log and writes to the event log.

A *command record* is what the gateway appends: the command (with ``seq`` 0:
the shard stamps it in log order) and the client's order id, if any. An
*outcome record* is what the shard appends to the event log for every
command it applied: the command as stamped, the client order id, the command
log position it came from, and the events. Consumers (projections, market
data, the gateway's acks) read outcomes and drop those at or below a
position they have already applied.

Layout (little-endian): command = 16 x int64; then u16 length + UTF-8 client
order id; outcome = u8 length + the command position as that many unsigned
little-endian bytes + command record + events (16 x int64 each, to the
end). The position is variable-length because Kinesis sequence numbers are
far wider than 64 bits (a Redis stream position or a journal position takes
8 bytes or fewer).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from core.commands import Command
from core.events import Event

_COMMAND = struct.Struct("<16q")
_EVENT = struct.Struct("<16q")
_COID_LEN = struct.Struct("<H")
_POSITION_LEN = struct.Struct("<B")
MAX_CLIENT_ORDER_ID = 64


class RecordError(ValueError):
    """Bytes that are not a well-formed command or outcome record."""


@dataclass(frozen=True, slots=True)
class CommandRecord:
    command: Command
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One applied command and everything it caused."""

    position: int
    command: Command
    client_order_id: str | None
    events: list[Event]

    @property
    def seq(self) -> int:
        return self.command.seq


def encode_command_record(record: CommandRecord) -> bytes:
    coid = (record.client_order_id or "").encode()
    if len(coid) > MAX_CLIENT_ORDER_ID:
        raise RecordError(f"client order id longer than {MAX_CLIENT_ORDER_ID} bytes")
    try:
        packed = _COMMAND.pack(*record.command)
    except struct.error as exc:
        raise RecordError(f"command fields must be signed 64-bit integers: {exc}") from None
    return packed + _COID_LEN.pack(len(coid)) + coid


def _decode_command_at(data: bytes, at: int) -> tuple[CommandRecord, int]:
    if len(data) < at + _COMMAND.size + _COID_LEN.size:
        raise RecordError("command record is truncated")
    command = Command._make(_COMMAND.unpack_from(data, at))
    at += _COMMAND.size
    (length,) = _COID_LEN.unpack_from(data, at)
    at += _COID_LEN.size
    if len(data) < at + length:
        raise RecordError("client order id is truncated")
    coid = data[at:at + length].decode() if length else None
    return CommandRecord(command, coid), at + length


def decode_command_record(data: bytes) -> CommandRecord:
    record, end = _decode_command_at(data, 0)
    if end != len(data):
        raise RecordError("command record has trailing bytes")
    return record


def encode_outcome(outcome: Outcome) -> bytes:
    position = outcome.position
    if position < 0:
        raise RecordError("a log position is never negative")
    width = max(1, (position.bit_length() + 7) // 8)
    if width > 255:
        raise RecordError("a log position wider than 255 bytes")
    parts = [
        _POSITION_LEN.pack(width),
        position.to_bytes(width, "little"),
        encode_command_record(CommandRecord(outcome.command, outcome.client_order_id)),
    ]
    parts.extend(_EVENT.pack(*event) for event in outcome.events)
    return b"".join(parts)


def decode_outcome(data: bytes) -> Outcome:
    if len(data) < 1:
        raise RecordError("outcome record is truncated")
    width = data[0]
    if len(data) < 1 + width:
        raise RecordError("outcome record is truncated")
    position = int.from_bytes(data[1:1 + width], "little")
    record, at = _decode_command_at(data, 1 + width)
    rest = len(data) - at
    if rest % _EVENT.size:
        raise RecordError("outcome events are not whole records")
    make = tuple.__new__
    events = [make(Event, fields) for fields in _EVENT.iter_unpack(data[at:])]
    return Outcome(position, record.command, record.client_order_id, events)
