"""The cold archive's schedule (aws profile): the persister copies old trades to Parquet in S3.

Every ``aws.archive_every_seconds`` the persister takes, per symbol, the
trades older than ``aws.archive_after_days`` from the DynamoDB history and
writes those not archived yet (``services.persistence.archive``: one file
per symbol and UTC day, named by its seq range, so a run repeated or cut
short writes nothing twice).

Only trades the history store has applied are taken: a run starts after the
greatest seq already archived for a symbol, so a trade the history follower
had not written yet when a run passed over it would otherwise never be
archived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from control import adapters
from control.config import Config
from services.persistence.archive import ArchivedPart, TradeArchive, cutoff, trades_to_archive
from services.persistence.store import TradeView

log = logging.getLogger("rialto.archive")


def archive_once(config: Config, applied: Callable[[int], int], now_ns: int | None = None) -> list[ArchivedPart]:
    """Archive the trades older than the configured age that shard ``k``'s history has applied
    (``applied(k)``: its last applied seq); the parts written."""
    history = adapters.history_store(config)
    if history is None:
        raise ValueError("the trade archive needs the aws profile's history store")
    archive = TradeArchive(adapters._aws_settings(config), config.build_instruments())
    try:
        older_than = cutoff(time.time_ns() if now_ns is None else now_ns, config.aws.archive_after_days)
        shard_of = config.shard_of_symbol()
        bounds = {symbol: applied(shard) for symbol, shard in shard_of.items()}
        return archive.archive(_applied_only(trades_to_archive(history, sorted(shard_of), older_than), bounds),
                               older_than)
    finally:
        archive.close()
        history.close()


def _applied_only(trades: Iterable[TradeView], bounds: dict[str, int]) -> Iterator[TradeView]:
    for trade in trades:
        if trade.seq <= bounds[trade.symbol]:
            yield trade


async def archive_periodically(config: Config, applied: Callable[[int], int]) -> None:
    """Run ``archive_once`` every ``archive_every_seconds`` until cancelled; a failed run is retried at the
    next tick (S3 or DynamoDB away stops nothing else)."""
    every = config.aws.archive_every_seconds
    while True:
        try:
            parts = await asyncio.to_thread(archive_once, config, applied)
        except Exception:
            log.exception("archive run failed; the next run retries")
        else:
            if parts:
                log.info("archived %d trades in %d parts", sum(p.trades for p in parts), len(parts),
                         extra={"fields": {"parts": [p.key for p in parts]}})
        await asyncio.sleep(every)
