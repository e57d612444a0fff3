"""WebSocket order entry: a few connections pipelining ``place_order`` messages, in several processes.

Each connection authenticates (``{"op": "auth", "token": ...}``) as its own user, then keeps up to
``window`` orders in flight: it sends without waiting for replies, and sends again as replies come back
(capped in-flight per connection). Replies on one socket come back in the order the messages were sent
(the venue handles a socket's messages one after another), so each reply is matched to the oldest
message in flight, and its ``id`` is checked. Latency is from the moment the message was written to the
socket to the moment its reply was read. The order mix is ``mix.no_cancel_flow`` (placements only:
40 % near, 20 % far, 40 % crossing IOC); ``--ws-cancels`` uses the full mix with cancels.

Bounded: sending stops after ``duration`` seconds; the run then waits at most ``grace`` seconds for the
replies in flight. Clients are spread over ``processes`` OS processes (each its own uvloop), since the
load generator shares the machine's 2 cores with the venue.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import time
from collections import Counter, deque
from typing import Any

import msgspec
import numpy as np

from bench.venue.accounts import User
from bench.venue.mix import CANCEL, Flow, encode, no_cancel_flow
from bench.venue.rawws import WsClient
from bench.venue.stats import percentiles

_ID = re.compile(rb'"id":(\d+)')
_ORDER_ID = re.compile(rb'"order":\{"id":"(\d+)"')
_STATUS = re.compile(rb'"status":"(\w+)"')
_CODE = re.compile(rb'"code":"(\w+)"')


async def _connection(port: int, user: User, seed: int, start_at: float, duration: float, window: int,
                      grace: float, cancels: bool, out: dict[str, Any]) -> None:
    flow = Flow(seed) if cancels else no_cancel_flow(seed)
    inflight: deque[tuple[int, int, str]] = deque()  # (message id, sent ns, kind)
    latencies: list[int] = out["latencies"]
    counts: Counter[str] = out["counts"]
    wake = asyncio.Event()
    window_end = [float("inf")]  # replies read before this (monotonic) count towards the rate
    auth_done = asyncio.get_running_loop().create_future()

    def on_frame(payload: bytes, now_ns: int) -> None:
        if not auth_done.done():
            if payload.startswith(b'{"type":"authenticated"'):
                auth_done.set_result(True)
            else:
                auth_done.set_exception(RuntimeError(f"auth failed: {payload[:200]!r}"))
            return
        received = time.perf_counter_ns()
        if not inflight:
            counts["unexpected_frames"] += 1
            return
        message_id, sent, kind = inflight.popleft()
        m = _ID.search(payload)
        if m is None or int(m.group(1)) != message_id:
            counts["mismatched_replies"] += 1
        latencies.append(received - sent)
        if payload.startswith(b'{"type":"order"'):
            counts["order_replies"] += 1
            counts[f"ok_{kind}"] += 1
            if kind != CANCEL:
                counts["placed"] += 1
                if time.monotonic() <= window_end[0]:
                    counts["placed_in_window"] += 1
                st = _STATUS.search(payload)
                oid = _ORDER_ID.search(payload)
                if st is not None and oid is not None:
                    flow.placed(kind, oid.group(1).decode(), st.group(1).decode())
        else:
            code = _CODE.search(payload)
            counts[f"error {code.group(1).decode() if code else '?'}"] += 1
        if len(inflight) <= window // 2:
            wake.set()

    client = await WsClient.connect("127.0.0.1", port, "/v1/ws", on_frame)
    client.send(encode({"op": "auth", "token": user.token}))
    await asyncio.wait_for(auth_done, 30.0)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    end = window_end[0] = time.monotonic() + duration
    next_id = 1
    while time.monotonic() < end:
        if client.closed.done():
            counts["closed_early"] += 1
            break
        room = window - len(inflight)
        if room > 0:
            batch = []
            now = time.perf_counter_ns()
            for _ in range(room):
                kind, what = flow.next()
                if kind == CANCEL:
                    msg = {"op": "cancel_order", "id": next_id, "order_id": what}
                else:
                    msg = {"op": "place_order", "id": next_id, "order": what}
                batch.append(encode(msg))
                inflight.append((next_id, now, kind))
                next_id += 1
            counts["sent"] += len(batch)
            client.send_many(batch)
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), 0.5)
        except TimeoutError:
            pass
    drain_end = time.monotonic() + grace
    while inflight and time.monotonic() < drain_end and not client.closed.done():
        await asyncio.sleep(0.01)
    counts["unanswered"] += len(inflight)
    await client.close()


async def _worker_main(port: int, users: list[User], seeds: list[int], start_at: float, duration: float,
                       window: int, grace: float, cancels: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "counts": Counter()}
    t0 = time.time()
    await asyncio.gather(*(
        _connection(port, u, s, start_at, duration, window, grace, cancels, out) for u, s in zip(users, seeds, strict=True)
    ))
    out["wall"] = time.time() - max(t0, start_at)
    return out


def _worker(args: tuple[int, list[User], list[int], float, float, int, float, bool]) -> bytes:
    import uvloop

    started = time.process_time()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        out = runner.run(_worker_main(*args))
    lat = np.asarray(out["latencies"], dtype=np.int64)
    return msgspec.msgpack.encode({"latencies": lat.tobytes(), "counts": dict(out["counts"]), "wall": out["wall"],
                                   "cpu": time.process_time() - started})


def run(port: int, users: list[User], duration: float, connections: int = 32, processes: int = 2, window: int = 16,
        grace: float = 15.0, cancels: bool = False) -> dict[str, Any]:
    """Place orders over ``connections`` sockets (users round-robin) in ``processes`` processes."""
    start_at = time.time() + 3.0 + 0.05 * connections
    jobs = []
    for p in range(processes):
        mine = list(range(p, connections, processes))
        jobs.append((port, [users[i % len(users)] for i in mine], [1000 + i for i in mine], start_at, duration,
                     window, grace, cancels))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        raw = pool.map(_worker, jobs)
    latencies = []
    counts: Counter[str] = Counter()
    cpu = 0.0
    for item in raw:
        decoded = msgspec.msgpack.decode(item)
        cpu += decoded["cpu"]
        latencies.append(np.frombuffer(decoded["latencies"], dtype=np.int64))
        counts.update(decoded["counts"])
    lat = np.concatenate(latencies) if latencies else np.zeros(0, dtype=np.int64)
    return {
        "connections": connections, "processes": processes, "window": window, "duration": duration,
        "counts": dict(counts),
        "orders_per_second": counts["placed_in_window"] / duration,
        "replies_per_second": lat.size / duration,
        "latency_ms": percentiles(lat),
        "client_cpu_seconds": cpu,
    }
