"""The interface every engine backend implements, and how to open one.

Backends, fastest last: ``python`` (``core.matching``, the specification),
``cython`` (the same source compiled by ``setup.py`` into ``core_cython``),
``rust`` (the crate in ``ext/``, module ``rialto_native``) and ``fpga-sim``
(the software model of the F1 card, in ``fpga/``). All emit identical events
for identical commands; pick one by name or with ``RIALTO_ENGINE``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Any, Protocol

from core.commands import Command
from core.events import Event
from core.instrument import Instrument

BACKENDS: dict[str, tuple[str, str]] = {
    "python": ("core.matching", "ReferenceEngine"),
    "cython": ("core_cython.matching", "ReferenceEngine"),
    "rust": ("rialto_native", "Engine"),
    "fpga-sim": ("fpga.model", "FpgaModelEngine"),
}
PREFERENCE = ("rust", "cython", "python")


class BackendUnavailable(RuntimeError):
    """The named backend is not built or not installed here."""


class MatchingEngine(Protocol):
    """One engine shard: commands in, events out; nothing else crosses."""

    backend: str

    def add_instrument(self, instrument: Instrument) -> None: ...

    def submit(self, command: Command) -> list[Event]: ...

    def submit_many(self, commands: Iterable[Command]) -> list[Event]: ...

    def submit_batch(self, commands: Any) -> Any: ...

    @property
    def sequence(self) -> int: ...

    def balance(self, account: int, asset: int) -> tuple[int, int]: ...

    def depth(self, symbol: int, levels: int = 10) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]: ...

    def last_price(self, symbol: int) -> int: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...

    def state_hash(self) -> str: ...


def _load(name: str) -> type:
    try:
        module_name, class_name = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown engine backend {name!r}; choose one of {', '.join(BACKENDS)}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(
            f"engine backend {name!r} is not built here ({exc}); run `make build` or choose another"
        ) from exc
    cls: type = getattr(module, class_name)
    return cls


def open_engine(backend: str | None = None, instruments: Iterable[Instrument] = ()) -> MatchingEngine:
    """Open an engine shard.

    ``backend`` is a name from ``BACKENDS``; without one, ``RIALTO_ENGINE`` is
    read, and without that the fastest backend built here is used.
    """
    name = backend or os.environ.get("RIALTO_ENGINE") or ""
    if name:
        cls = _load(name)
    else:
        for candidate in PREFERENCE:
            try:
                cls = _load(candidate)
                break
            except BackendUnavailable:
                continue
        else:  # pragma: no cover - python is always importable
            raise BackendUnavailable("no engine backend is importable")
    engine: MatchingEngine = cls()
    for instrument in instruments:
        engine.add_instrument(instrument)
    return engine
