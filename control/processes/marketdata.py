"""The market-data process (local and aws profiles): every shard's outcomes to Redis pub/sub.

It keeps a replica engine per shard (the newest snapshot plus the event log
after it; see ``services.marketdata.publisher``), and publishes book deltas,
trades, candles and each account's orders and balances to Redis channels
that every gateway worker relays to its WebSocket clients; the live book of
each symbol is kept in Redis for new subscribers. SIGTERM: publish what is
pending and exit 0. A replica that diverges from its shard exits non-zero,
and the supervisor restarts the process from the logs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal

from control import adapters
from control.config import Config
from core.engine import open_engine
from services.marketdata.publisher import MarketDataPublisher, ShardSource

log = logging.getLogger("rialto.marketdata")


async def run_async(config: Config) -> int:
    sources = []
    for shard in range(len(config.shard_specs())):
        instruments = config.shard_instruments(shard)
        sources.append(ShardSource(
            event_log=adapters.event_log(config, shard),
            snapshots=adapters.snapshot_store(config, shard),
            open_engine=functools.partial(open_engine, config.engine or None, instruments),
            instruments=instruments,
            shard_id=shard,
        ))
    publisher = MarketDataPublisher(sources, config.redis_url, config.key_prefix)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, publisher.stop)
    try:
        await publisher.run()
    except Exception:
        log.critical("market data stopped", exc_info=True)
        return 1
    finally:
        await publisher.close()
        for source in sources:
            source.event_log.close()
    return 0


def run(config: Config) -> int:
    import uvloop

    return uvloop.run(run_async(config))
