"""Market-data fan-out: many WebSocket subscribers to one symbol's book and trades while orders flow.

Subscribers: ``subscribers`` sockets spread over ``processes`` OS processes (asyncio + uvloop + the raw
client of ``rawws``), each subscribed to ``("book", "BTC-USD")`` (depth 10) and ``("trades", "BTC-USD")``.
Per frame a subscriber keeps only what the latency needs: the receive time (``time.time_ns()``, one
reading per socket read), and

* ``book`` frames: their ``seq`` (the engine sequence of the last command that changed the book in that
  frame) and their ``u`` (checked to be consecutive per socket: a gap means frames were lost);
* ``trades`` frames: each trade's ``time`` (ns since the epoch: the command's stamp, taken by the intake
  *before* the command is journalled, so the delivery latency of a trade includes the fsync, the engine,
  the hub's flush cadence and the write to every socket).

Order flow: one driver in the runner's process places orders at a fixed ``rate`` over ``order_sockets``
WebSocket connections (the mix ``mix.no_cancel_flow``: every order changes the book, 40 % cross and
trade), pipelined on an open-loop schedule, and records for each order its id (= the command's ``seq``),
when it was sent and when its reply came (wall clock, ns).

Delivery latency:

* trades: receive time - the trade's ``time`` (exact: the venue's own stamp of the change);
* book: receive time - the *ack* time of the order whose ``seq`` the frame carries (a lower bound: the
  change was made before the ack left the venue), and receive time - its *send* time (an upper bound).

A subscriber that the hub cuts off (its queue overflowed: ``lagged`` error, close code 4000) is counted,
as are sockets closed otherwise and ``u`` gaps. Bounded: the flow runs ``duration`` seconds; subscribers
stop ``tail`` seconds later (or at ``duration`` + 60 s whatever happens).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import resource
import time
from collections import Counter
from typing import Any

import msgspec
import numpy as np

from bench.venue.accounts import User
from bench.venue.mix import encode, no_cancel_flow
from bench.venue.rawws import WsClient
from bench.venue.stats import percentiles

SYMBOL = "BTC-USD"
_SEQ = re.compile(rb'"seq":(\d+)')
_U = re.compile(rb'"u":(\d+)')
_TIME = re.compile(rb'"time":(\d+)')
_CODE = re.compile(rb'"code":"(\w+)"')


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# Subscribers (worker processes) ------------------------------------------------------------------------
class _Sub:
    __slots__ = ("book_recv", "book_seq", "counts", "last_u", "trade_lat")

    def __init__(self, counts: Counter[str], book_seq: list[int], book_recv: list[int], trade_lat: list[int]) -> None:
        self.counts = counts
        self.book_seq = book_seq
        self.book_recv = book_recv
        self.trade_lat = trade_lat
        self.last_u = -1

    def on_frame(self, payload: bytes, now: int) -> None:
        head = payload[:24]
        counts = self.counts
        if head.startswith(b'{"type":"book"'):
            counts["book_frames"] += 1
            u = int(_U.search(payload).group(1))  # type: ignore[union-attr]
            if self.last_u >= 0 and u != self.last_u + 1:
                counts["u_gaps"] += 1
            self.last_u = u
            self.book_seq.append(int(_SEQ.search(payload).group(1)))  # type: ignore[union-attr]
            self.book_recv.append(now)
        elif head.startswith(b'{"type":"trades"'):
            counts["trades_frames"] += 1
            for m in _TIME.finditer(payload):
                self.trade_lat.append(now - int(m.group(1)))
        elif head.startswith(b'{"type":"book_snapshot"'):
            self.last_u = int(_U.search(payload).group(1))  # type: ignore[union-attr]
            counts["snapshots"] += 1
        elif head.startswith(b'{"type":"subscribed"'):
            counts["subscribed"] += 1
        elif head.startswith(b'{"type":"error"'):
            code = _CODE.search(payload)
            counts[f"error {code.group(1).decode() if code else '?'}"] += 1
        else:
            counts["other_frames"] += 1


async def _subscribers(port: int, count: int, ready: Any, stop: Any, deadline: float) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    book_seq: list[int] = []
    book_recv: list[int] = []
    trade_lat: list[int] = []
    clients: list[WsClient] = []
    gate = asyncio.Semaphore(25)

    async def connect() -> None:
        sub = _Sub(counts, book_seq, book_recv, trade_lat)
        async with gate:
            try:
                client = await WsClient.connect("127.0.0.1", port, "/v1/ws", sub.on_frame)
            except (OSError, ConnectionError, TimeoutError) as exc:
                counts[f"connect_failed {type(exc).__name__}"] += 1
                return
        client.send_many([
            encode({"op": "subscribe", "channel": "book", "symbol": SYMBOL, "depth": 10}),
            encode({"op": "subscribe", "channel": "trades", "symbol": SYMBOL}),
        ])
        clients.append(client)

    await asyncio.gather(*(connect() for _ in range(count)))
    settle = time.monotonic() + 30
    while counts["subscribed"] < 2 * len(clients) and time.monotonic() < settle:
        await asyncio.sleep(0.05)
    # Measure from here: drop what arrived while connecting.
    counts["connected"] = len(clients)
    book_seq.clear()
    book_recv.clear()
    trade_lat.clear()
    for key in ("book_frames", "trades_frames", "u_gaps"):
        counts[key] = 0
    ready.put(("ready", len(clients)))
    while not stop.is_set() and time.time() < deadline:
        await asyncio.sleep(0.1)
    counts["closed_by_venue"] = sum(1 for c in clients if c.closed.done())
    counts["closed_lagged"] = sum(1 for c in clients if c.closed.done() and c.close_code == 4000)
    await asyncio.gather(*(c.close(2.0) for c in clients if not c.closed.done()))
    return {"counts": counts, "book_seq": book_seq, "book_recv": book_recv, "trade_lat": trade_lat}


def _subscriber_worker(port: int, count: int, ready: Any, stop: Any, deadline: float, results: Any) -> None:
    import uvloop

    raise_nofile()
    started = time.process_time()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        out = runner.run(_subscribers(port, count, ready, stop, deadline))
    results.put(msgspec.msgpack.encode({
        "counts": dict(out["counts"]),
        "book_seq": np.asarray(out["book_seq"], dtype=np.int64).tobytes(),
        "book_recv": np.asarray(out["book_recv"], dtype=np.int64).tobytes(),
        "trade_lat": np.asarray(out["trade_lat"], dtype=np.int64).tobytes(),
        "cpu": time.process_time() - started,
    }))


# The order flow (the runner's process) ------------------------------------------------------------------
async def _drive(port: int, users: list[User], rate: float, duration: float, sockets: int,
                 grace: float = 10.0) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    seqs: list[int] = []
    sent_ns: list[int] = []
    ack_ns: list[int] = []
    latencies: list[int] = []
    period = sockets / rate
    t0 = time.monotonic() + 0.3
    end = t0 + duration

    async def one(i: int) -> None:
        user = users[i % len(users)]
        flow = no_cancel_flow(7000 + i)
        inflight: dict[int, int] = {}
        auth = asyncio.get_running_loop().create_future()

        def on_frame(payload: bytes, now: int) -> None:
            if not auth.done():
                auth.set_result(payload)
                return
            m = re.search(rb'"id":(\d+)', payload)
            sent = inflight.pop(int(m.group(1)), None) if m else None
            if sent is None:
                counts["unexpected_frames"] += 1
                return
            latencies.append(now - sent)
            if payload.startswith(b'{"type":"order"'):
                oid = re.search(rb'"order":\{"id":"(\d+)"', payload)
                if oid is not None:
                    seqs.append(int(oid.group(1)))
                    sent_ns.append(sent)
                    ack_ns.append(now)
                counts["placed"] += 1
            else:
                code = _CODE.search(payload)
                counts[f"error {code.group(1).decode() if code else '?'}"] += 1

        client = await WsClient.connect("127.0.0.1", port, "/v1/ws", on_frame)
        client.send(encode({"op": "auth", "token": user.token}))
        await asyncio.wait_for(auth, 30)
        k = 0
        message_id = 0
        while True:
            due = t0 + (i / sockets + k) * period
            if due >= end:
                break
            k += 1
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            _, order = flow.next()
            message_id += 1
            inflight[message_id] = time.time_ns()
            client.send(encode({"op": "place_order", "id": message_id, "order": order}))
            counts["sent"] += 1
        stop_at = time.monotonic() + grace
        while inflight and time.monotonic() < stop_at:
            await asyncio.sleep(0.01)
        counts["unanswered"] += len(inflight)
        await client.close()

    await asyncio.gather(*(one(i) for i in range(sockets)))
    return {"counts": counts, "seqs": seqs, "sent_ns": sent_ns, "ack_ns": ack_ns, "latencies": latencies}


def run(port: int, users: list[User], subscribers: int = 1000, processes: int = 4, rate: float = 500.0,
        duration: float = 30.0, order_sockets: int = 4, tail: float = 2.0) -> dict[str, Any]:
    import uvloop

    raise_nofile()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    results = ctx.Queue()
    stop = ctx.Event()
    deadline = time.time() + duration + 120
    per = [subscribers // processes + (1 if p < subscribers % processes else 0) for p in range(processes)]
    workers = [ctx.Process(target=_subscriber_worker, args=(port, n, ready, stop, deadline, results), daemon=True)
               for n in per if n]
    for w in workers:
        w.start()
    connected = 0
    for _ in workers:
        _, n = ready.get(timeout=120)
        connected += n
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        started_cpu = time.process_time()
        flow = runner.run(_drive(port, users, rate, duration, order_sockets))
        driver_cpu = time.process_time() - started_cpu
    time.sleep(tail)
    stop.set()
    outs = [msgspec.msgpack.decode(results.get(timeout=120)) for _ in workers]
    for w in workers:
        w.join(30)
        if w.is_alive():
            w.kill()
    return summarise(flow, outs, subscribers, connected, processes, rate, duration, order_sockets, driver_cpu)


def summarise(flow: dict[str, Any], outs: list[dict[str, Any]], subscribers: int, connected: int, processes: int,
              rate: float, duration: float, order_sockets: int, driver_cpu: float) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    for out in outs:
        counts.update(out["counts"])
    book_seq = np.concatenate([np.frombuffer(o["book_seq"], dtype=np.int64) for o in outs])
    book_recv = np.concatenate([np.frombuffer(o["book_recv"], dtype=np.int64) for o in outs])
    trade_lat = np.concatenate([np.frombuffer(o["trade_lat"], dtype=np.int64) for o in outs])
    seqs = np.asarray(flow["seqs"], dtype=np.int64)
    order = np.argsort(seqs)
    seqs, sent, ack = seqs[order], np.asarray(flow["sent_ns"], np.int64)[order], np.asarray(flow["ack_ns"], np.int64)[order]
    # A book frame's seq is the last command that changed the book in it: one of the driver's orders.
    idx = np.searchsorted(seqs, book_seq)
    found = (idx < seqs.size) & (seqs[np.minimum(idx, seqs.size - 1)] == book_seq) if seqs.size else np.zeros(0, bool)
    matched = idx[found]
    book_vs_ack = book_recv[found] - ack[matched]
    book_vs_send = book_recv[found] - sent[matched]
    return {
        "subscribers": subscribers, "connected": connected, "processes": processes, "rate": rate,
        "duration": duration, "order_sockets": order_sockets,
        "orders": dict(flow["counts"]), "orders_per_second": flow["counts"]["placed"] / duration,
        "order_latency_ms": percentiles(flow["latencies"]),
        "counts": dict(counts),
        "book_frames_per_second_per_subscriber": counts["book_frames"] / max(1, connected) / duration,
        "frames_delivered_per_second": (counts["book_frames"] + counts["trades_frames"]) / duration,
        "book_matched": int(found.sum()), "book_unmatched": int((~found).sum()),
        "trade_delivery_ms": percentiles(trade_lat),
        "book_delivery_vs_ack_ms": percentiles(book_vs_ack),
        "book_delivery_vs_send_ms": percentiles(book_vs_send),
        "client_cpu_seconds": driver_cpu + sum(o["cpu"] for o in outs),
    }
