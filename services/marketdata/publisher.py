"""The market-data publisher (local profile): one process producing market data for every gateway.

In the embedded profile the engine shard hands each outcome to ``MarketData``
in the same process. In the local profile the shard is another process, so
this one rebuilds what it needs from the shard's event log:

* a **replica engine** per shard: the newest snapshot, then the command of
  every outcome after ``snapshot.event_position``. The engine is
  deterministic, so the replica holds exactly the shard's books and balances
  (checked: each outcome's ``seq`` and events must come out identical, or
  the publisher stops, loudly, rather than publish a book that has drifted);
* one ``MarketData`` over every shard's instruments, seeded from the
  replicas' depth after a silent catch-up (history is not re-published),
  then fed each new outcome once the replica has applied it, so the
  ``balances`` frames read balances that include that outcome;
* a ``RedisPublishingHub`` in place of the in-process ``Hub``: each flush
  serialises one frame per channel, once, and sends them all in one
  MULTI/EXEC with the book snapshots and trade lists they go with.

Redis layout (``prefix`` is the venue's key prefix):

==============================  ==================================================
``<prefix>md:<channel>``        pub/sub channel; ``<channel>`` is the hub channel's
                                parts joined by ``:`` (``md:book:BTC-USD``,
                                ``md:candles:BTC-USD:1m``, ``md:orders:42``, ...);
                                a message is one frame, the JSON the embedded hub
                                sends
``<prefix>book:<symbol>``       string: ``MarketData.book_snapshot(symbol, 1000)``
                                as JSON, with the ``u`` of the last ``book`` frame
                                published for the symbol
``<prefix>trades:<symbol>``     list: the latest trades (tape entries as JSON),
                                oldest first, capped at ``trades_kept``
==============================  ==================================================

Why one transaction per flush: a gateway that sees frame ``u`` on pub/sub and
then reads ``book:<symbol>`` must get a snapshot at ``u`` or later, never an
older one, or it could not line the two up (``subscriber.RedisMarketFeed``).

``u`` continues across restarts of this process (from the stored snapshot's
``u``, plus one if the book changed meanwhile), so it never goes backwards:
a client that was following sees a gap if it missed a change and
resubscribes, and a gateway never mistakes new deltas for old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.engine import MatchingEngine
from core.instrument import Instrument
from services.log.base import Log, LogClosed, LogError, LogTruncated, Position
from services.marketdata.feed import MarketData
from services.marketdata.hub import Channel, Hub
from services.matcher.records import Outcome, decode_outcome
from services.matcher.shard import SHARD_BITS
from services.matcher.snapshots import StoredSnapshot

log = logging.getLogger("rialto.marketdata.publisher")

BOOK_DEPTH = 1_000
"""Levels per side kept in ``<prefix>book:<symbol>``: the most a WebSocket or REST client may ask for."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


# Redis names, shared with the gateway side ---------------------------------------------------
def md_channel(prefix: str, channel: Channel) -> str:
    return f"{prefix}md:{':'.join(channel)}"


def book_key(prefix: str, symbol: str) -> str:
    return f"{prefix}book:{symbol}"


def trades_key(prefix: str, symbol: str) -> str:
    return f"{prefix}trades:{symbol}"


# Replicas ------------------------------------------------------------------------------------
class SnapshotLoader(Protocol):
    def latest(self) -> StoredSnapshot | None: ...


@dataclass
class ShardSource:
    """What the publisher needs of one engine shard."""

    event_log: Log
    snapshots: SnapshotLoader
    open_engine: Callable[[], MatchingEngine]
    """A new, empty engine with the shard's instruments (e.g. ``partial(open_engine, name, instruments)``)."""
    instruments: list[Instrument]
    shard_id: int = 0


class ReplicaDiverged(RuntimeError):
    """The replica did not reproduce the shard: the event log has a gap or the engines differ."""


class ShardReplica:
    """A shard's engine, rebuilt from its snapshot and event log, one outcome behind it at most."""

    def __init__(self, source: ShardSource) -> None:
        self.source = source
        self.engine = source.open_engine()
        self.event_position: Position = 0  # the last event-log position applied (or skipped as seen)
        self.seq_base = source.shard_id << SHARD_BITS
        self.snapshot_seq = 0

    def restore(self) -> None:
        snapshot = self.source.snapshots.latest()
        if snapshot is not None:
            self.engine.restore(snapshot.engine_state)
            self.event_position = snapshot.event_position
            self.snapshot_seq = snapshot.seq
            if self.engine.sequence != snapshot.seq:
                raise ReplicaDiverged(f"shard {self.source.shard_id}: snapshot says seq {snapshot.seq}, "
                                      f"the restored engine is at {self.engine.sequence}")

    def catch_up(self) -> int:
        """Apply everything durable in the event log now (nothing is published); the count applied."""
        applied = 0
        for position, data in self.source.event_log.read(self.event_position + 1):
            if self.apply(position, data) is not None:
                applied += 1
        return applied

    def apply(self, position: Position, data: bytes) -> Outcome | None:
        """Apply one event-log record; the outcome, or None if the replica already had it."""
        outcome = decode_outcome(data)
        engine = self.engine
        self.event_position = position
        seq = outcome.seq
        if seq <= engine.sequence:
            # Consumers are idempotent: an outcome the snapshot already covers, or written twice.
            return None
        expected = max(engine.sequence, self.seq_base) + 1
        if seq != expected:
            raise ReplicaDiverged(f"shard {self.source.shard_id}: event log position {position} has seq {seq}, "
                                  f"expected {expected}: the log has a gap")
        events = engine.submit(outcome.command)
        if engine.sequence != seq or events != outcome.events:
            raise ReplicaDiverged(f"shard {self.source.shard_id}: seq {seq} (event log position {position}) "
                                  f"did not reproduce the shard's events; the replica is no longer exact")
        return outcome


# Publishing ----------------------------------------------------------------------------------
@dataclass
class _Outbox:
    """What the next MULTI/EXEC carries; survives a failed write, so nothing is reordered."""

    books: dict[str, bytes] = field(default_factory=dict)  # key -> snapshot (the latest wins)
    trades: dict[str, list[bytes]] = field(default_factory=dict)  # key -> entries, oldest first
    frames: list[tuple[str, bytes]] = field(default_factory=list)  # (pub/sub channel, frame), in order

    def __bool__(self) -> bool:
        return bool(self.books or self.trades or self.frames)

    def extend(self, later: _Outbox) -> None:
        self.books.update(later.books)
        for key, entries in later.trades.items():
            self.trades.setdefault(key, []).extend(entries)
        self.frames.extend(later.frames)


class RedisPublishingHub(Hub):
    """The publisher side of ``Hub``, with Redis pub/sub as the subscribers.

    ``MarketData`` drives it exactly like the in-process hub (``publish``,
    ``set_coalescer``, ``has_subscribers``, ``flush``/``run``). Whether anyone
    listens is for each gateway to know, so every channel counts as
    subscribed. ``flush`` only prepares (it is synchronous and runs between
    two outcomes, so a frame and its book snapshot agree); ``write`` sends.
    """

    def __init__(self, redis: Redis, prefix: str, interval: float = 0.01, trades_kept: int = 1_000,
                 max_backlog: int = 100_000) -> None:
        super().__init__(interval)
        self.redis = redis
        self.prefix = prefix
        self.trades_kept = trades_kept
        self.max_backlog = max_backlog
        self.book_source: Callable[[str], dict[str, Any]] | None = None
        """symbol -> the book snapshot to store after a flush that changed it (set by the publisher)."""
        self._outbox = _Outbox()
        self._names: dict[Channel, str] = {}
        self.frames_published = 0
        self.frames_dropped = 0
        self.write_errors = 0
        self.cycles = 0  # completed flush + write rounds of ``run``: everything published before one started is out

    def has_subscribers(self, channel: Channel) -> bool:
        return True

    def publish(self, channel: Channel, message: Any) -> None:
        pending = self._pending.get(channel)
        if pending is None:
            self._pending[channel] = [message]
        else:
            pending.append(message)

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        out = self._outbox
        for channel, messages in pending.items():
            name = self._names.get(channel)
            if name is None:
                name = self._names[channel] = md_channel(self.prefix, channel)
            coalesce = self._coalescers.get(channel[0])
            coalesced = coalesce(channel, messages) if coalesce else messages
            for message in coalesced:
                out.frames.append((name, _encode(message)))
            kind = channel[0]
            if kind == "book" and self.book_source is not None:
                out.books[book_key(self.prefix, channel[1])] = _encode(self.book_source(channel[1]))
            elif kind == "trades":
                entries = out.trades.setdefault(trades_key(self.prefix, channel[1]), [])
                for message in coalesced:
                    entries.extend(_encode(trade) for trade in message["trades"])
        if len(out.frames) > self.max_backlog:
            # Redis has been away for long: the oldest frames go (gateways' clients see a gap in u and
            # resubscribe); the snapshots stay, being the latest.
            dropped = len(out.frames) - self.max_backlog
            del out.frames[:dropped]
            self.frames_dropped += dropped
        for entries in out.trades.values():
            if len(entries) > self.trades_kept:
                del entries[:len(entries) - self.trades_kept]

    def store_books(self, snapshots: dict[str, dict[str, Any]]) -> None:
        """Queue book snapshots (symbol -> snapshot) for the next write, with no frame."""
        for symbol, snapshot in snapshots.items():
            self._outbox.books[book_key(self.prefix, symbol)] = _encode(snapshot)

    async def write(self) -> None:
        """Send what ``flush`` prepared, in one MULTI/EXEC; on failure keep it for the next try."""
        out, self._outbox = self._outbox, _Outbox()
        if not out:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key, value in out.books.items():
                    pipe.set(key, value)
                for key, entries in out.trades.items():
                    if entries:
                        pipe.rpush(key, *entries)
                        pipe.ltrim(key, -self.trades_kept, -1)
                for name, frame in out.frames:
                    pipe.publish(name, frame)
                await pipe.execute()
        except BaseException:
            out.extend(self._outbox)
            self._outbox = out
            raise
        self.frames_published += len(out.frames)

    async def run(self) -> None:
        delay = self.interval
        while True:
            await asyncio.sleep(delay)
            self.flush()
            try:
                await self.write()
                delay = self.interval
                self.cycles += 1
            except RedisError as exc:
                self.write_errors += 1
                delay = min(max(delay * 2, 0.05), 2.0)
                log.error("market data: Redis write failed (%s); %d frames waiting, retrying in %.2f s",
                          exc, len(self._outbox.frames), delay)


class MarketDataPublisher:
    """The publisher process's work: replicas of the shards, market data out to Redis."""

    def __init__(self, shards: Sequence[ShardSource], redis_url: str, prefix: str, *, interval: float = 0.01,
                 trades_kept: int = 1_000) -> None:
        if not shards:
            raise ValueError("the publisher needs at least one shard")
        self.replicas = [ShardReplica(source) for source in shards]
        self.instruments = [i for source in shards for i in source.instruments]
        self.prefix = prefix
        self.redis: Redis = Redis.from_url(redis_url)
        self.hub = RedisPublishingHub(self.redis, prefix, interval=interval, trades_kept=trades_kept)
        # An asset's balance is the sum over the shards trading it (each shard holds its own funds).
        self._asset_engines: dict[int, list[MatchingEngine]] = {}
        for replica in self.replicas:
            assets = {a.id for i in replica.source.instruments for a in (i.base, i.quote)}
            for asset in sorted(assets):
                self._asset_engines.setdefault(asset, []).append(replica.engine)
        self.market = MarketData(self.instruments, self.hub, balances=self.balance)
        # Balances are absolute: the last of a flush says everything the earlier ones did.
        self.hub.set_coalescer("balances", lambda channel, messages: messages[-1:])
        self.hub.book_source = self._book_snapshot
        self._formats: dict[int, tuple[dict[int, str], dict[int, str]]] = {}
        self.started = False
        self._stop = asyncio.Event()

    def _book_snapshot(self, symbol: str) -> dict[str, Any]:
        """``MarketData.book_snapshot(symbol, BOOK_DEPTH)``, with each price and quantity string remembered.

        Under load a book changes between most flushes, and each change stores the whole snapshot: turning
        the same few hundred levels into decimal strings a hundred times a second was a quarter of this
        process's CPU. The strings are the instrument's own formatting, so the snapshot is the same.
        """
        market = self.market
        instrument = market.by_symbol[symbol]
        view = market.books[instrument.id]
        formats = self._formats.get(instrument.id)
        if formats is None or len(formats[0]) + len(formats[1]) > 100_000:  # bounded: a wandering price
            formats = self._formats[instrument.id] = ({}, {})
        prices, quantities = formats
        fmt_p, fmt_q = instrument.format_price, instrument.format_quantity

        def level(p: int, q: int) -> list[str]:
            price = prices.get(p)
            if price is None:
                price = prices[p] = fmt_p(p)
            quantity = quantities.get(q)
            if quantity is None:
                quantity = quantities[q] = fmt_q(q)
            return [price, quantity]

        bids, asks = view.depth(BOOK_DEPTH)
        return {
            "type": "book_snapshot",
            "symbol": symbol,
            "u": view.update_id,
            "seq": view.seq,
            "bids": [level(p, q) for p, q in bids],
            "asks": [level(p, q) for p, q in asks],
        }

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        available = held = 0
        for engine in self._asset_engines.get(asset, ()):
            a, h = engine.balance(account, asset)
            available += a
            held += h
        return available, held

    def catch_up(self) -> None:
        """Restore every replica and apply its event log as it is now (synchronous; publishes nothing)."""
        for replica in self.replicas:
            replica.restore()
            applied = replica.catch_up()
            log.info("shard %d replica caught up", replica.source.shard_id, extra={"fields": {
                "shard": replica.source.shard_id, "snapshot_seq": replica.snapshot_seq, "applied": applied,
                "seq": replica.engine.sequence, "event_position": replica.event_position}})

    async def start(self) -> None:
        """Catch up, seed market data from the replicas, store every book once (u continuing from Redis)."""
        await asyncio.to_thread(self.catch_up)
        stored = await self.redis.mget([book_key(self.prefix, i.symbol) for i in self.instruments])
        for replica in self.replicas:
            engine = replica.engine
            for instrument in replica.source.instruments:
                bids, asks = engine.depth(instrument.id, 1_000_000)
                self.market.books[instrument.id].seed(bids, asks, engine.sequence)
                self.market.last_prices[instrument.id] = engine.last_price(instrument.id)
        snapshots: dict[str, dict[str, Any]] = {}
        for instrument, raw in zip(self.instruments, stored, strict=True):
            view = self.market.books[instrument.id]
            snapshot = self.market.book_snapshot(instrument.symbol, BOOK_DEPTH)
            if raw is not None:
                before = _decode(raw)
                # The book changed while nobody published: one past the stored u, so clients following
                # see a gap and resubscribe. Unchanged: they may go on with the same u.
                changed = before["bids"] != snapshot["bids"] or before["asks"] != snapshot["asks"]
                view.update_id = int(before["u"]) + (1 if changed else 0)
                snapshot["u"] = view.update_id
            snapshots[instrument.symbol] = snapshot
        self.hub.store_books(snapshots)
        await self.hub.write()
        self.started = True

    async def _follow(self, replica: ShardReplica) -> None:
        """Tail one shard's event log: replica first, then market data (which reads the replica)."""
        delay = 0.1
        on_outcome = self.market.on_outcome
        while True:
            try:
                async for position, data in replica.source.event_log.tail(replica.event_position + 1):
                    outcome = replica.apply(position, data)
                    if outcome is not None:
                        on_outcome(outcome)
                    delay = 0.1
                return
            except LogClosed:
                return
            except LogTruncated:
                raise
            except LogError as exc:
                log.error("shard %d: event log unavailable (%s); retrying in %.1f s",
                          replica.source.shard_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self) -> None:
        """Start (unless done), then follow every shard until ``stop`` or an event log closes.

        A replica that diverges raises ``ReplicaDiverged`` out of here: the
        process should exit and be restarted, not publish a wrong book.
        """
        if not self.started:
            await self.start()
        followers = [asyncio.create_task(self._follow(r), name=f"md-follow-{r.source.shard_id}")
                     for r in self.replicas]
        flusher = asyncio.create_task(self.hub.run(), name="md-flush")
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({*followers, flusher, stop}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
        finally:
            for task in (*followers, flusher, stop):
                task.cancel()
            for task in (*followers, flusher, stop):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        # What the last outcomes produced goes out before we return.
        self.hub.flush()
        with contextlib.suppress(RedisError):
            await self.hub.write()

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        await self.redis.aclose()

    def status(self) -> dict[str, Any]:
        return {
            "shards": [{"shard": r.source.shard_id, "seq": r.engine.sequence, "event_position": r.event_position}
                       for r in self.replicas],
            "frames_published": self.hub.frames_published,
            "frames_dropped": self.hub.frames_dropped,
            "write_errors": self.hub.write_errors,
        }
