"""Rebuild the projections of a multi-process venue from its event logs into an empty database.

The log is the truth: every projection can be thrown away and made again.
``rebuild_projections`` reads each shard's whole event log (from its oldest
record still held: a log trimmed below its first snapshot cannot be
replayed from the start, and says so with ``LogTruncated``) and applies it
to a fresh store, in the persister's batch size. A rebuilt store equals the
live one row for row (``PostgresStore.dump``), which the fault tests check.
"""

from __future__ import annotations

from control import adapters
from control.config import Config
from services.matcher.records import decode_outcome
from services.persistence import Record


def rebuild_projections(config: Config, target_dsn: str, batch: int = 2_000) -> int:
    """Apply every shard's event log to the (empty) database at ``target_dsn``; the records applied."""
    from services.persistence.postgres import PostgresStore

    applied = 0
    for shard in range(len(config.shard_specs())):
        event_log = adapters.event_log(config, shard)
        store = PostgresStore(target_dsn, config.build_instruments())
        try:
            records: list[Record] = []
            for _, data in event_log.read(0):
                outcome = decode_outcome(data)
                records.append((outcome.command, outcome.client_order_id, outcome.events))
                if len(records) >= batch:
                    applied += store.apply(records)
                    records = []
            if records:
                applied += store.apply(records)
        finally:
            store.close()
            event_log.close()
    return applied
