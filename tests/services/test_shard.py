"""The engine shard over real journals: acks after durability, exact recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.commands import Side, deposit, new_order
from core.engine import open_engine
from core.events import EventKind
from core.instrument import Asset, make_instrument
from services.intake.intake import Intake
from services.log.journal import Journal
from services.matcher.records import CommandRecord, decode_command_record, encode_command_record
from services.matcher.shard import EngineShard, outcomes_from
from services.matcher.snapshots import DiskSnapshotStore

BTC = Asset(1, "BTC", 8)
USD = Asset(2, "USD", 8)
BTC_USD = make_instrument(1, "BTC-USD", BTC, USD, "0.01", "0.0001", taker_fee_bps=10, maker_fee_bps=5)


def open_shard(data: Path, snapshot_every: int = 1_000_000) -> EngineShard:
    return EngineShard(
        open_engine("python", [BTC_USD]),
        Journal(data / "commands"),
        Journal(data / "events"),
        DiskSnapshotStore(data / "snapshots"),
        snapshot_every=snapshot_every,
    )


def close(shard: EngineShard) -> None:
    shard.command_log.close()
    shard.event_log.close()


async def trade_some(shard: EngineShard, orders: int) -> list[int]:
    intake = Intake(shard.command_log)
    shard.subscribe(intake.on_outcome)
    runner = asyncio.create_task(shard.run())
    await intake.submit(deposit(0, 0, 1, USD.id, 10**15))
    await intake.submit(deposit(0, 0, 2, BTC.id, 10**13))
    outcomes = await asyncio.gather(*(
        intake.submit(new_order(0, 0, 1 + i % 2, 1, Side.BUY if i % 2 == 0 else Side.SELL,
                                quantity=10, price=100_000 + (i % 7)), client_order_id=f"c{i}")
        for i in range(orders)
    ))
    await shard.flush()
    runner.cancel()
    return [o.seq for o in outcomes]


def test_an_acknowledged_command_is_in_the_command_log_with_its_client_order_id(tmp_path: Path) -> None:
    shard = open_shard(tmp_path)
    shard.recover()
    seqs = asyncio.run(trade_some(shard, 20))
    assert sorted(seqs) == list(range(3, 23))
    records = [decode_command_record(data) for _, data in shard.command_log.read()]
    assert len(records) == 22
    assert {r.client_order_id for r in records[2:]} == {f"c{i}" for i in range(20)}
    close(shard)


def test_recovery_replays_the_command_log_into_the_same_state(tmp_path: Path) -> None:
    shard = open_shard(tmp_path)
    shard.recover()
    asyncio.run(trade_some(shard, 200))
    expected = shard.engine.state_hash()
    events_before = [o.events for _, o in outcomes_from(shard.event_log)]
    close(shard)

    again = open_shard(tmp_path)
    report = again.recover()
    assert report.replayed_commands == 202
    assert report.rewritten_outcomes == 0
    assert again.engine.state_hash() == expected
    assert [o.events for _, o in outcomes_from(again.event_log)] == events_before
    close(again)


def test_recovery_starts_from_the_snapshot_and_replays_only_what_follows(tmp_path: Path) -> None:
    shard = open_shard(tmp_path)
    shard.recover()

    async def run() -> None:
        await trade_some(shard, 100)
        await shard.snapshot()

    asyncio.run(run())
    command_log = shard.command_log
    command_log.append_sync([encode_command_record(CommandRecord(new_order(0, 4 * 10**18, 1, 1, Side.BUY, quantity=5, price=100_003)))])
    close(shard)

    again = open_shard(tmp_path)
    report = again.recover()
    assert report.snapshot_seq == 102
    assert report.replayed_commands == 1
    assert report.rewritten_outcomes == 1
    last = list(outcomes_from(again.event_log))[-1][1]
    assert last.seq == 103 and last.events[0].kind == EventKind.ACCEPTED
    close(again)


def test_a_command_field_outside_64_bits_is_refused_with_a_clear_error() -> None:
    import pytest

    from services.matcher.records import RecordError

    with pytest.raises(RecordError, match="64-bit"):
        encode_command_record(CommandRecord(new_order(0, 2**63, 1, 1, Side.BUY, quantity=1, price=1)))


def test_an_event_log_that_lost_its_tail_is_rebuilt_from_the_commands(tmp_path: Path) -> None:
    shard = open_shard(tmp_path)
    shard.recover()
    asyncio.run(trade_some(shard, 50))
    full = [o.events for _, o in outcomes_from(shard.event_log)]
    close(shard)
    # Lose the whole event log (as if it had never been synced).
    for path in (tmp_path / "events").iterdir():
        path.unlink()

    again = open_shard(tmp_path)
    report = again.recover()
    assert report.rewritten_outcomes == 52
    assert [o.events for _, o in outcomes_from(again.event_log)] == full
    close(again)
