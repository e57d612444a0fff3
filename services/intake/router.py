"""Commands to the engine shard that owns them (several shards: the local and aws profiles).

A shard owns a set of symbols and the trading balances used on them. An
order, cancel or amend goes to the shard of its symbol (a cancel or amend
names an order id, which is a seq: ``shard_of_seq`` tells the shard). A
deposit or withdrawal goes to its asset's *home shard*: the first shard
trading the asset (move funds between shards with a transfer). A mass cancel
of every symbol goes to every shard, and its outcomes are merged.
"""

from __future__ import annotations

import asyncio

from core.commands import Command, CommandKind
from core.instrument import Instrument
from services.intake.intake import Intake
from services.matcher.records import Outcome
from services.matcher.shard import shard_of_seq

_BY_ORDER_ID = (int(CommandKind.CANCEL), int(CommandKind.AMEND))
_BY_ASSET = (int(CommandKind.DEPOSIT), int(CommandKind.WITHDRAW))
_MASS_CANCEL = int(CommandKind.MASS_CANCEL)
_TICK = int(CommandKind.TICK)


class UnknownShard(LookupError):
    """The command names a symbol, asset or order no shard owns."""


class ShardRouter:
    def __init__(self, intakes: list[Intake], instruments: list[Instrument], shard_of_symbol: dict[str, int]) -> None:
        self.intakes = intakes
        self.shard_of_instrument = {i.id: shard_of_symbol[i.symbol] for i in instruments}
        self.home_of_asset: dict[int, int] = {}
        for instrument in instruments:
            shard = shard_of_symbol[instrument.symbol]
            for asset in (instrument.base, instrument.quote):
                self.home_of_asset[asset.id] = min(self.home_of_asset.get(asset.id, shard), shard)

    @property
    def closed(self) -> bool:
        return any(intake.closed for intake in self.intakes)

    @closed.setter
    def closed(self, value: bool) -> None:
        for intake in self.intakes:
            intake.closed = value

    def shard_of(self, command: Command) -> int:
        kind = command.kind
        if kind in _BY_ORDER_ID:
            shard = shard_of_seq(command.order_id)
            if not 0 <= shard < len(self.intakes):
                return 0  # no shard stamped this id: any shard answers "unknown order", as the engine does
        elif kind in _BY_ASSET:
            shard = self.home_of_asset.get(command.symbol, 0)
        elif kind == _TICK:
            shard = 0
        else:
            shard = self.shard_of_instrument.get(command.symbol, 0)
        if not 0 <= shard < len(self.intakes):
            raise UnknownShard(f"no shard {shard}")
        return shard

    async def submit(self, command: Command, client_order_id: str | None = None) -> Outcome:
        if command.kind == _MASS_CANCEL and command.symbol == 0 and len(self.intakes) > 1:
            outcomes = await asyncio.gather(*(i.submit(command, client_order_id) for i in self.intakes))
            first = outcomes[0]
            events = [e for o in outcomes for e in o.events]
            return Outcome(first.position, first.command, first.client_order_id, events)
        return await self.intakes[self.shard_of(command)].submit(command, client_order_id)
