"""REST order entry, open loop: orders sent at a fixed rate, latency from the *intended* send time.

A closed-loop tool (wrk) sends the next request only when a response arrives, so when the venue stalls it
stops sending and the stall shows up in one sample instead of in every request that should have been
sent meanwhile (coordinated omission). Here the schedule is fixed in advance: request k of the run is due
at ``t0 + k / rate``, spread round-robin over ``connections`` persistent HTTP/1.1 connections (one request
in flight on each, no pipelining, like wrk2). A request that is due while its connection is still busy is
sent as soon as the connection frees up, and its latency counts from when it was *due*; a request whose
connection was idle counts from when it was actually written (so the client's own timer slack, ~1 ms
with uvloop, is not charged to the venue).

Bounded: requests are due only during ``duration`` seconds; anything still unsent ``grace`` seconds after
that is dropped and reported as not sent; then the run waits for the responses in flight (at most
``grace`` seconds more). The mix is ``mix.Flow`` (near / far / cross / cancel), each connection its own
user (round-robin over the users) cancelling only its own far orders.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.venue.accounts import User
from bench.venue.mix import CANCEL, KINDS, Flow, encode
from bench.venue.stats import percentiles

_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
_ID = re.compile(rb'"id":"(\d+)"')
_STATUS = re.compile(rb'"status":"(\w+)"')
_CODE = re.compile(rb'"code":"(\w+)"')


class HttpConnection(asyncio.Protocol):
    """One persistent HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, int]] | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("connection closed")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        m = _CONTENT_LENGTH.search(buf, 0, end + 2)
        length = int(m.group(1)) if m else 0
        if len(buf) < end + 4 + length:
            return
        status = int(buf[9:12])
        body = bytes(buf[end + 4: end + 4 + length])
        del buf[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body, time.perf_counter_ns()))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, int]]:
        if self.lost is not None:
            raise self.lost
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


@dataclass
class RateResult:
    rate: float
    connections: int
    duration: float
    due: int = 0
    sent: int = 0
    completed: int = 0
    not_sent: int = 0
    elapsed: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})
    placed_201: int = 0
    cancelled_200: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def all_latencies(self) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.int64) for v in self.latencies.values()])

    def summary(self) -> dict[str, Any]:
        non_2xx = sum(n for s, n in self.statuses.items() if not s.startswith("2"))
        return {
            "rate": self.rate, "connections": self.connections, "duration": self.duration,
            "due": self.due, "sent": self.sent, "completed": self.completed, "not_sent": self.not_sent,
            "throughput": self.completed / self.elapsed if self.elapsed else 0.0,
            "elapsed": self.elapsed, "statuses": dict(self.statuses), "non_2xx": non_2xx,
            "placed_201": self.placed_201, "cancelled_200": self.cancelled_200, "errors": dict(self.errors),
            "latency_ms": percentiles(self.all_latencies()),
            "by_kind_ms": {k: percentiles(v) for k, v in self.latencies.items() if v},
        }


async def _run(port: int, users: list[User], rate: float, duration: float, connections: int, grace: float,
               seed: int) -> RateResult:
    loop = asyncio.get_running_loop()
    result = RateResult(rate, connections, duration)
    conns: list[HttpConnection] = []
    for _ in range(connections):
        _, proto = await loop.create_connection(HttpConnection, "127.0.0.1", port)
        conns.append(proto)
    host = f"127.0.0.1:{port}"
    period_ns = int(1e9 * connections / rate)
    total = int(rate * duration)
    t0 = time.perf_counter_ns() + 200_000_000  # start in 0.2 s: every connection is ready
    send_deadline = t0 + int((duration + grace) * 1e9)

    async def one(i: int) -> None:
        conn = conns[i]
        user = users[i % len(users)]
        flow = Flow(seed * 1000 + i)
        auth = f"Authorization: {user.auth}\r\n"
        post_head = f"POST /v1/orders HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n"
        k = 0
        free_at = 0  # when the previous response arrived
        while True:
            index = i + k * connections
            if index >= total:
                return
            due = t0 + i * period_ns // connections + k * period_ns
            k += 1
            result.due += 1
            now = time.perf_counter_ns()
            if now > send_deadline:
                result.not_sent += 1
                continue
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
            kind, what = flow.next()
            if kind == CANCEL:
                data = f"DELETE /v1/orders/{what} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()
            else:
                body = encode(what)
                data = post_head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            sent_at = time.perf_counter_ns()
            # Charged from the due time only if the connection was still busy then (coordinated omission);
            # otherwise from the actual write (the client's timer slack is not the venue's).
            start = due if free_at > due else sent_at
            try:
                status, body_bytes, received = await asyncio.wait_for(conn.request(data), grace + duration)
            except (TimeoutError, ConnectionError, OSError) as exc:
                result.errors[type(exc).__name__] += 1
                return
            result.sent += 1
            result.completed += 1
            free_at = received
            result.statuses[str(status)] += 1
            result.latencies[kind].append(received - start)
            if status == 201:
                result.placed_201 += 1
                m = _STATUS.search(body_bytes)
                if m is not None and m.group(1) == b"new":
                    oid = _ID.search(body_bytes)
                    if oid is not None:
                        flow.placed(kind, oid.group(1).decode(), "new")
            elif status == 200:
                result.cancelled_200 += 1
            else:
                code = _CODE.search(body_bytes)
                result.statuses[f"{status} {code.group(1).decode() if code else '?'}"] += 1
                result.statuses[str(status)] -= 1

    await asyncio.gather(*(one(i) for i in range(connections)))
    result.elapsed = (time.perf_counter_ns() - t0) / 1e9
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return result


def run(port: int, users: list[User], rate: float, duration: float, connections: int = 64, grace: float = 10.0,
        seed: int = 1) -> RateResult:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_run(port, users, rate, duration, connections, grace, seed))
