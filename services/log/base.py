"""The ordered log: the one interface every log technology implements.

The log is the truth (see ``ARCHITECTURE.md``): every state change is a
command appended to it, and the engine's state is a snapshot plus the log
after it. Three technologies sit behind this interface, one adapter module
each: the file journal (embedded profile), Redis Streams (local) and Kinesis
Data Streams (aws). The interface is what all three can do:

=====================  ==================  =====================  ======================
operation              file journal        Redis Streams          Kinesis
=====================  ==================  =====================  ======================
append (durable, with  one write + fsync   pipelined XADD (AOF    PutRecords (one shard:
positions)             per group commit    fsync per its policy)  one partition key)
read from a position   segment files       XRANGE                 GetShardIterator
                                                                  AT_SEQUENCE_NUMBER
tail                   in-process wakeup   XREAD BLOCK            GetRecords polling
last durable position  writer's counter    XREVRANGE COUNT 1      (kept by the appender)
truncate before        drop old segments   XTRIM MINID            retention (no-op)
=====================  ==================  =====================  ======================

Positions
---------
A position is a Python ``int``, strictly increasing in append order within
one log. Positions need not be consecutive: Kinesis sequence numbers are
large decimal integers and Redis stream ids map to integers; the file
journal's positions are consecutive, starting at 1. Position 0 means "before
the first record" (an empty log's ``last_position``).

Records
-------
A record is opaque ``bytes``. The log never looks inside. Commands and events
are encoded with the helpers at the bottom of this module, the same on every
backend (fixed 16 x little-endian int64 per record, the layout of
``core.batch``'s structured arrays).
"""

from __future__ import annotations

import abc
import struct
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence

from core.commands import Command
from core.events import Event

Position = int


class LogError(Exception):
    """Base class of the log's errors."""


class LogClosed(LogError):
    """The log was closed (or failed); it accepts no more appends."""


class LogTruncated(LogError, LookupError):
    """A read asked for a position that truncation has already removed."""


class Log(abc.ABC):
    """An append-only, ordered, durable sequence of opaque records.

    Invariants every implementation keeps:

    * ``append`` returns only after its records are durable (under the
      backend's durability policy) and gives back their positions, in the
      order of the records passed.
    * A reader never sees a record before its append has been acknowledged,
      so a consumer never acts on something the log could still lose.
    * ``read`` and ``tail`` yield ``(position, record)`` in position order,
      each position once.
    """

    @abc.abstractmethod
    async def append(self, records: Sequence[bytes]) -> Sequence[Position]:
        """Append ``records`` as one unit and return their positions.

        Concurrent appends are batched by the backend (group commit). The
        records of one call get consecutive places in the log order, and are
        never interleaved with another call's records.
        """

    @property
    @abc.abstractmethod
    def last_position(self) -> Position:
        """The position of the last acknowledged (durable) record; 0 if none."""

    @abc.abstractmethod
    def read(
        self, from_position: Position = 0, to_position: Position | None = None
    ) -> Iterator[tuple[Position, bytes]]:
        """Yield the records with ``from_position <= position <= to_position``.

        ``to_position`` defaults to ``last_position`` at the time of the call:
        a read is a replay of what is durable now, and ends. Raises
        ``LogTruncated`` if ``from_position`` is older than what the log still
        holds.
        """

    @abc.abstractmethod
    def tail(self, from_position: Position = 0) -> AsyncIterator[tuple[Position, bytes]]:
        """Yield the records from ``from_position`` on, waiting for new ones.

        Replays what is there, then follows appends as they are acknowledged.
        Ends when the log is closed.
        """

    @abc.abstractmethod
    def truncate_before(self, position: Position) -> None:
        """Allow the log to drop records older than ``position``.

        Called once a snapshot covers them. A backend may keep some older
        records (the file journal drops whole segments only); it never drops
        ``position`` or anything after it.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Finish pending appends, make them durable, release resources."""


# ---------------------------------------------------------------------------
# Record encodings for commands and events.
#
# One command is one record of 128 bytes: its 16 fields as little-endian
# int64, in ``Command`` field order. The events a command produced are one
# record holding all of them back to back (N x 128 bytes), so a command and
# its outcome are one position each in the command and event logs.

_WORDS = struct.Struct("<16q")
RECORD_SIZE = _WORDS.size  # 128


def encode_command(command: Command) -> bytes:
    return _WORDS.pack(*command)


def decode_command(record: bytes) -> Command:
    if len(record) != RECORD_SIZE:
        raise ValueError(f"a command record is {RECORD_SIZE} bytes, got {len(record)}")
    return tuple.__new__(Command, _WORDS.unpack(record))


def encode_commands(commands: Iterable[Command]) -> bytes:
    """Several commands as one record (for a sequencer that batches)."""
    pack = _WORDS.pack
    return b"".join([pack(*c) for c in commands])


def decode_commands(record: bytes) -> list[Command]:
    if len(record) % RECORD_SIZE:
        raise ValueError(f"a command batch record is a multiple of {RECORD_SIZE} bytes, got {len(record)}")
    make = tuple.__new__
    return [make(Command, words) for words in _WORDS.iter_unpack(record)]


def encode_events(events: Iterable[Event]) -> bytes:
    """The events of one command as one record (may be empty)."""
    pack = _WORDS.pack
    return b"".join([pack(*e) for e in events])


def decode_events(record: bytes) -> list[Event]:
    if len(record) % RECORD_SIZE:
        raise ValueError(f"an event batch record is a multiple of {RECORD_SIZE} bytes, got {len(record)}")
    make = tuple.__new__
    return [make(Event, words) for words in _WORDS.iter_unpack(record)]
