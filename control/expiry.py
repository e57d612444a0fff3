"""The GTD expiry clock: knows the earliest expire time and says when a TICK is due.

The engine expires GTD orders when a command's time passes their expire
time. An idle venue would never send one, so every ``tick_ms`` the venue (or,
with several processes, each engine shard) asks ``due(now)`` and, only if an
expiry has come, sends one TICK command: an idle venue writes nothing.

The clock learns expire times from accepted GTD orders as they happen, and at
start from the engine's open orders (``gtd_expiries`` of a snapshot) or from
the projection.
"""

from __future__ import annotations

import heapq

from core import snapshot as canonical
from core.commands import CommandKind, TimeInForce
from core.events import EventKind
from services.matcher.records import Outcome

_NEW_ORDER = int(CommandKind.NEW_ORDER)
_GTD = int(TimeInForce.GTD)
_ACCEPTED = int(EventKind.ACCEPTED)
_TIF = canonical.ORDER_FIELDS.index("time_in_force")
_EXPIRE = canonical.ORDER_FIELDS.index("expire_time")


class ExpiryClock:
    def __init__(self) -> None:
        self.expiries: list[int] = []
        self.ticks = 0

    def on_outcome(self, outcome: Outcome) -> None:
        c = outcome.command
        if c.kind == _NEW_ORDER and c.time_in_force == _GTD and c.expire_time:
            for e in outcome.events:
                if e.kind == _ACCEPTED and e.order_id == c.seq:
                    heapq.heappush(self.expiries, c.expire_time)
                    break

    def add(self, expire_time: int) -> None:
        heapq.heappush(self.expiries, expire_time)

    def due(self, now: int) -> bool:
        found = False
        while self.expiries and self.expiries[0] <= now:
            heapq.heappop(self.expiries)
            found = True
        return found


def gtd_expiries(engine_state: bytes) -> list[int]:
    """Expire times of the open GTD orders in an engine snapshot (resting or waiting to trigger)."""
    state = canonical.decode(engine_state)
    out: list[int] = []
    for book in state.books:
        orders = [o for level in book.bids + book.asks for o in level] + book.buy_stops + book.sell_stops
        out.extend(o[_EXPIRE] for o in orders if o[_TIF] == _GTD and o[_EXPIRE])
    return out
