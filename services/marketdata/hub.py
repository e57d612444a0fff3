"""Fan-out of market data to many subscribers, coalesced per channel.

Publishing a message to a channel with 1,000 subscribers must not cost 1,000
serialisations or 1,000 socket writes per engine event. So updates are
buffered per channel and flushed on a short cadence (``interval``): each
flush serialises one frame per channel, once, and puts the same bytes on the
queue of every subscriber of that channel. A subscriber whose queue is full
has fallen behind: it is cut off (``Subscription.lagged``) rather than
slowing everyone, and its client resubscribes for a fresh snapshot.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgspec

Channel = tuple[str, ...]  # e.g. ("book", "BTC-USD"), ("orders", "42")
Coalescer = Callable[[Channel, list[Any]], list[Any]]

_encode = msgspec.json.Encoder().encode


class Subscription:
    __slots__ = ("channels", "held", "lagged", "queue")

    def __init__(self, depth: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=depth)
        self.channels: set[Channel] = set()
        self.lagged = False
        # Frames parked by ``Hub.hold`` per channel; None (the usual case) costs deliver one test.
        self.held: dict[Channel, list[bytes]] | None = None

    def offer(self, frame: bytes) -> None:
        if self.lagged:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.lagged = True


class Hub:
    def __init__(self, interval: float = 0.01, queue_depth: int = 1_024) -> None:
        self.interval = interval
        self.queue_depth = queue_depth
        self._subscribers: dict[Channel, set[Subscription]] = defaultdict(set)
        self._pending: dict[Channel, list[Any]] = {}
        self._coalescers: dict[str, Coalescer] = {}

    def connect(self) -> Subscription:
        return Subscription(self.queue_depth)

    def subscribe(self, subscription: Subscription, channel: Channel) -> None:
        subscription.channels.add(channel)
        self._subscribers[channel].add(subscription)

    def unsubscribe(self, subscription: Subscription, channel: Channel) -> None:
        subscription.channels.discard(channel)
        if subscription.held is not None:
            subscription.held.pop(channel, None)
            if not subscription.held:
                subscription.held = None
        subscribers = self._subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[channel]

    def disconnect(self, subscription: Subscription) -> None:
        for channel in list(subscription.channels):
            self.unsubscribe(subscription, channel)

    def has_subscribers(self, channel: Channel) -> bool:
        return channel in self._subscribers

    def set_coalescer(self, kind: str, coalescer: Coalescer) -> None:
        """How to merge the pending messages of a channel kind into the frames to send."""
        self._coalescers[kind] = coalescer

    def publish(self, channel: Channel, message: Any) -> None:
        """Queue a message for the channel's next flush (dropped if nobody listens)."""
        if channel not in self._subscribers:
            return
        pending = self._pending.get(channel)
        if pending is None:
            self._pending[channel] = [message]
        else:
            pending.append(message)

    def send_now(self, subscription: Subscription, message: Any) -> None:
        """A message for one subscriber only (a snapshot, a reply): not coalesced."""
        subscription.offer(_encode(message))

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for channel, messages in pending.items():
            subscribers = self._subscribers.get(channel)
            if not subscribers:
                continue
            coalesce = self._coalescers.get(channel[0])
            for message in coalesce(channel, messages) if coalesce else messages:
                frame = _encode(message)
                for subscription in subscribers:
                    subscription.offer(frame)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    # Frames made elsewhere (the local profile: one publisher, many gateway processes) ----------
    def deliver(self, channel: Channel, frame: bytes) -> None:
        """Put an already-serialised frame on the queue of every subscriber of ``channel``, as is.

        A subscription holding the channel (``hold``) gets it parked instead.
        """
        subscribers = self._subscribers.get(channel)
        if not subscribers:
            return
        for subscription in subscribers:
            held = subscription.held
            if held is not None and channel in held:
                held[channel].append(frame)
            else:
                subscription.offer(frame)

    def hold(self, subscription: Subscription, channel: Channel) -> None:
        """Subscribe, parking the channel's delivered frames until ``release``.

        For a snapshot fetched asynchronously: hold first, then fetch, so no
        frame after the snapshot can be missed while the fetch is in flight.
        Only ``deliver`` parks frames: ``flush`` (frames made in this process)
        never needs to, since there the snapshot is taken synchronously.
        """
        if subscription.held is None:
            subscription.held = {}
        subscription.held[channel] = []
        self.subscribe(subscription, channel)

    def release(self, subscription: Subscription, channel: Channel,
                keep: Callable[[bytes], bool] | None = None) -> int:
        """Stop holding: queue the parked frames that ``keep`` accepts (all without it), in order.

        Returns how many were queued.
        """
        held = subscription.held
        frames = held.pop(channel, []) if held is not None else []
        if held is not None and not held:
            subscription.held = None
        queued = 0
        if channel not in subscription.channels:  # unsubscribed (or disconnected) meanwhile
            return 0
        for frame in frames:
            if keep is None or keep(frame):
                subscription.offer(frame)
                queued += 1
        return queued
