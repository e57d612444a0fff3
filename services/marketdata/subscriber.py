"""The gateway side of market data in the local profile: frames from the publisher, over Redis.

Each gateway process has one ``RedisMarketFeed``: one connection
PSUBSCRIBEd to ``<prefix>md:*`` (see ``publisher`` for the layout). Every
frame arrives already serialised; it goes to the local ``Hub``'s subscribers
of its channel as the same bytes (``Hub.deliver``), so a frame is encoded
once for the whole venue, not once per gateway or per client.

The book: snapshot, then exactly the deltas after it
-----------------------------------------------------
The snapshot is a Redis key and the deltas a pub/sub stream on another
connection, so they cannot be read in one step as the embedded route does.
``subscribe_book``:

1. subscribes the client *holding* the channel: frames that arrive are
   parked, not sent (``Hub.hold``);
2. reads ``<prefix>book:<symbol>`` (snapshot at update id ``s``) and sends it;
3. lets go of the parked frames with ``u > s``, in order, and of nothing
   before. If no parked frame has reached ``s`` yet (pub/sub is behind the
   key read), it keeps holding until one does, since frame ``s`` itself is
   on its way: the publisher sets the key and publishes the frame in one
   MULTI/EXEC, and frames arrive in order.

Nothing after the snapshot can be missed: the hold is in place before the
read is sent, and any frame with ``u > s`` was published after the read,
so it arrives after the hold. Nothing before it is sent twice: frames up to
``s`` are dropped while the hold lasts, and the hold lasts until the stream
has passed ``s``. So the client sees ``u = s + 1, s + 2, ...``.

Limits
------
* If the pub/sub connection drops, the frames published meanwhile are lost
  for this gateway: the feed reconnects, book clients see a gap in ``u`` and
  resubscribe, but trades, candles, orders and balances frames of that
  window are not redelivered.
* Balances are not known here (``balances`` is None): the gateway gets them
  from its projection for the ``balances`` snapshot on subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.instrument import Instrument
from services.marketdata.hub import Channel, Hub, Subscription
from services.marketdata.publisher import book_key, trades_key

log = logging.getLogger("rialto.marketdata.subscriber")

_decode = msgspec.json.Decoder().decode
_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})


class _UpdateId(msgspec.Struct):
    u: int


_decode_u = msgspec.json.Decoder(_UpdateId).decode


def frame_u(frame: bytes) -> int:
    """The ``u`` of a serialised ``book`` frame (only that field is decoded)."""
    return _decode_u(frame).u


class RedisMarketFeed:
    """Market data for one gateway process, from the publisher through Redis pub/sub."""

    balances = None
    """The embedded ``MarketData`` reads balances from its engine; a gateway has none (see the module doc)."""

    def __init__(self, redis_url: str, prefix: str, instruments: Sequence[Instrument], hub: Hub) -> None:
        self.redis: Redis = Redis.from_url(redis_url)
        self.prefix = prefix
        self.hub = hub
        self.instruments = list(instruments)
        self.by_symbol = {i.symbol: i for i in instruments}
        self._md = f"{prefix}md:".encode()
        self.pattern = f"{prefix.translate(_GLOB)}md:*"
        self._channels: dict[bytes, Channel] = {}
        # book channel -> {subscription: the u of the snapshot it was sent}, for holds still waiting
        # for the stream to pass that u.
        self._waiting: dict[Channel, dict[Subscription, int]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.frames_received = 0
        self.reconnects = 0

    # Lifecycle -----------------------------------------------------------------------------
    async def start(self, timeout: float = 10.0) -> None:
        """PSUBSCRIBE and start delivering; returns once Redis confirmed the subscription."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="md-feed")
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await self.redis.aclose()

    async def _read(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(self.pattern)
                async for message in pubsub.listen():
                    kind = message["type"]
                    if kind == "pmessage":
                        self.on_frame(message["channel"], message["data"])
                    elif kind == "psubscribe":
                        self._subscribed.set()
                        delay = 0.1
            except (RedisError, OSError) as exc:
                self.reconnects += 1
                log.error("market data feed: Redis pub/sub lost (%s); frames are missed until it is back, "
                          "retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # Frames in -----------------------------------------------------------------------------
    def _channel(self, raw: bytes) -> Channel | None:
        channel = self._channels.get(raw)
        if channel is None:
            if not raw.startswith(self._md):
                return None
            channel = tuple(raw[len(self._md):].decode().split(":"))
            if len(self._channels) >= 100_000:  # one per account channel seen: keep it bounded
                self._channels.clear()
            self._channels[raw] = channel
        return channel

    def on_frame(self, raw_channel: bytes, frame: bytes) -> None:
        """One pub/sub message: to the hub's subscribers as is, then end the holds it completes."""
        channel = self._channel(raw_channel)
        if channel is None:
            return
        self.frames_received += 1
        self.hub.deliver(channel, frame)
        waiting = self._waiting.get(channel)
        if waiting:
            u = frame_u(frame)
            for subscription, snapshot_u in list(waiting.items()):
                held = subscription.held.get(channel) if subscription.held else None
                if held is None:  # unsubscribed or gone
                    del waiting[subscription]
                elif u >= snapshot_u:
                    del waiting[subscription]
                    self._release(subscription, channel, snapshot_u)
                elif len(held) > self.hub.queue_depth:
                    # The stream does not reach the snapshot's u (the publisher's state was reset): give up
                    # lining them up; the client sees u jump and resubscribes.
                    del waiting[subscription]
                    self.hub.release(subscription, channel)
            if not waiting:
                self._waiting.pop(channel, None)

    def _release(self, subscription: Subscription, channel: Channel, snapshot_u: int) -> None:
        self.hub.release(subscription, channel, keep=lambda frame: frame_u(frame) > snapshot_u)

    # Reads ---------------------------------------------------------------------------------
    async def book_snapshot(self, symbol: str, depth: int = 50) -> dict[str, Any]:
        """The publisher's latest book snapshot, cut to ``depth`` levels per side.

        Before the publisher has stored one: an empty book at ``u`` 0.
        """
        raw = await self.redis.get(book_key(self.prefix, symbol))
        if raw is None:
            return {"type": "book_snapshot", "symbol": symbol, "u": 0, "seq": 0, "bids": [], "asks": []}
        snapshot: dict[str, Any] = _decode(raw)
        snapshot["bids"] = snapshot["bids"][:depth]
        snapshot["asks"] = snapshot["asks"][:depth]
        return snapshot

    async def subscribe_book(self, subscription: Subscription, symbol: str, depth: int = 50) -> dict[str, Any]:
        """Subscribe to ``("book", symbol)``: queue the snapshot, then exactly the deltas after it.

        Returns the snapshot sent. If the read fails the subscription is
        undone and the error raised (nothing was queued).
        """
        channel: Channel = ("book", symbol)
        waiting = self._waiting.get(channel)
        if waiting:
            waiting.pop(subscription, None)  # a resubscribe: its earlier hold is replaced
        self.hub.hold(subscription, channel)
        try:
            snapshot = await self.book_snapshot(symbol, depth)
        except BaseException:
            self.hub.unsubscribe(subscription, channel)
            raise
        held = subscription.held.get(channel) if subscription.held else None
        if held is None:  # unsubscribed while reading
            return snapshot
        self.hub.send_now(subscription, snapshot)
        snapshot_u = int(snapshot["u"])
        if held and frame_u(held[-1]) >= snapshot_u:  # the stream already passed the snapshot
            self._release(subscription, channel, snapshot_u)
        else:
            self._waiting.setdefault(channel, {})[subscription] = snapshot_u
        return snapshot

    async def latest_trades(self, symbol: str, limit: int = 100) -> list[dict[str, Any]]:
        """The symbol's last ``limit`` trades as the publisher stored them, oldest first."""
        entries = await self.redis.lrange(trades_key(self.prefix, symbol), -limit, -1)
        return [_decode(entry) for entry in entries]
