"""Commands and events as NumPy structured arrays, for the batch entry points.

Every field is a little-endian int64, in the order of ``Command`` and
``Event``; a batch of N commands is one contiguous N x 16 block of integers,
which is what the native backends read without a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from core.commands import COMMAND_FIELDS, Command
from core.events import EVENT_FIELDS, Event


def command_dtype() -> Any:
    import numpy as np

    return np.dtype([(name, "<i8") for name in COMMAND_FIELDS])


def event_dtype() -> Any:
    import numpy as np

    return np.dtype([(name, "<i8") for name in EVENT_FIELDS])


def commands_to_array(commands: Iterable[Command]) -> Any:
    import numpy as np

    return np.array([tuple(c) for c in commands], dtype=command_dtype())


def commands_from_array(array: Any) -> Iterator[Command]:
    if array.dtype != command_dtype():
        raise ValueError("commands must be a structured array of core.batch.command_dtype()")
    make = tuple.__new__
    for row in array.tolist():
        yield make(Command, row)


def events_to_array(events: list[Event]) -> Any:
    import numpy as np

    return np.array(events, dtype=event_dtype()) if events else np.zeros(0, dtype=event_dtype())


def events_from_array(array: Any) -> list[Event]:
    make = tuple.__new__
    return [make(Event, row) for row in array.tolist()]
