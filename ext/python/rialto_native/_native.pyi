"""Type stubs for ``rialto_native._native``, the Rust engine's extension module.

``Engine`` implements ``core.engine.MatchingEngine`` with exactly the API and
the behaviour of ``core.matching.ReferenceEngine``.
"""

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from core.commands import Command
from core.events import Event
from core.instrument import Instrument

class RialtoError(ValueError):
    """A request the Rust engine refuses: a bad instrument, a malformed snapshot."""

class Engine:
    """One engine shard, in Rust."""

    backend: ClassVar[str]  # "rust"

    def __init__(self) -> None: ...
    def add_instrument(self, instrument: Instrument) -> None:
        """Register an instrument (read by attribute); a duplicate id raises ValueError."""
    @property
    def sequence(self) -> int:
        """The last applied command's sequence number."""
    def submit(self, command: Command) -> list[Event]:
        """Apply one command; return the events it caused, in order.

        A field outside the signed 64-bit range raises OverflowError; a
        non-integer field raises TypeError.
        """
    def submit_many(self, commands: Iterable[Command]) -> list[Event]:
        """Apply commands in order; return all their events."""
    def submit_batch(self, commands: npt.NDArray[Any], record_latency: bool = False) -> npt.NDArray[Any]:
        """A structured array of ``core.batch.command_dtype()`` in, one of
        ``core.batch.event_dtype()`` out. With ``record_latency``, each
        command's processing time (ns, measured in Rust) is kept for
        ``batch_latencies()``."""
    def batch_latencies(self) -> npt.NDArray[np.int64]:
        """Per-command times (ns) of the last ``submit_batch``; empty unless it recorded them."""
    def balance(self, account: int, asset: int) -> tuple[int, int]:
        """(available, held) of an asset for an account."""
    def depth(self, symbol: int, levels: int = 10) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """Best ``levels`` levels per side as (price, total quantity, orders), best first; KeyError if unknown."""
    def last_price(self, symbol: int) -> int:
        """The last trade price (0 before the first trade); KeyError if unknown."""
    def snapshot(self) -> bytes:
        """The state in the canonical layout of ``core.snapshot``."""
    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot from any backend (same instruments
        registered); a malformed or impossible snapshot raises RialtoError
        (a ValueError) and leaves the state unchanged."""
    def state_hash(self) -> str:
        """BLAKE2b-128 of the snapshot, hex."""

class EventBuffer:
    """The memory behind an events array returned by ``submit_batch`` (buffer protocol)."""
