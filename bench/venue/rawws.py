"""A minimal WebSocket client on a raw asyncio protocol, for load generation (RFC 6455, client side).

The load generator shares the venue's 2 cores, so its cost per message is the venue's loss: this client
skips what a general library does per frame (futures per recv, UTF-8 validation, a queue) and hands each
complete text frame's payload (bytes) to a callback with the receive time of the chunk it came in
(``time.time_ns()``, one reading per ``data_received``). No extensions are offered (no compression),
frames it sends are masked as the RFC requires, pings are answered; messages are never fragmented by
the server for these sizes, and fragments are reassembled if they are.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable

OnFrame = Callable[[bytes, int], None]

_OP_CONT, _OP_TEXT, _OP_BIN, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")


def frame(payload: bytes, opcode: int = _OP_TEXT) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    key = os.urandom(4)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


class WsClient(asyncio.Protocol):
    """``await WsClient.connect(host, port, path, on_frame)``; ``send(bytes)``; ``close()``."""

    def __init__(self, on_frame: OnFrame) -> None:
        self.on_frame = on_frame
        self.transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._buf = bytearray()
        self._upgraded = False
        self._fragments: list[bytes] = []
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.close_code = 0
        self.frames = 0

    @classmethod
    async def connect(cls, host: str, port: int, path: str, on_frame: OnFrame,
                      headers: dict[str, str] | None = None, timeout: float = 30.0) -> WsClient:
        loop = asyncio.get_running_loop()
        _, client = await asyncio.wait_for(loop.create_connection(lambda: cls(on_frame), host, port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")
        client._handshake = loop.create_future()
        assert client.transport is not None
        client.transport.write(request.encode())
        await asyncio.wait_for(client._handshake, timeout)
        return client

    # asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code or 1006)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            assert self._handshake is not None
            if b" 101 " not in status_line:
                self._handshake.set_exception(ConnectionError(f"handshake refused: {status_line!r}"))
                if self.transport is not None:
                    self.transport.close()
                return
            self._upgraded = True
            self._handshake.set_result(None)
        pos = 0
        n = len(buf)
        on_frame = self.on_frame
        while n - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if b1 & 0x80:  # a masked server frame is a protocol error; not expected
                head += 4
            if n - pos < head + length:
                break
            payload = bytes(buf[pos + head: pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == _OP_TEXT or opcode == _OP_BIN:
                if fin:
                    self.frames += 1
                    on_frame(payload, now)
                else:
                    self._fragments = [payload]
            elif opcode == _OP_CONT:
                self._fragments.append(payload)
                if fin:
                    self.frames += 1
                    on_frame(b"".join(self._fragments), now)
                    self._fragments = []
            elif opcode == _OP_PING:
                self._write(frame(payload, _OP_PONG))
            elif opcode == _OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._write(frame(payload[:2], _OP_CLOSE))
                if self.transport is not None:
                    self.transport.close()
        if pos:
            del buf[:pos]

    # Sending -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, payload: bytes) -> None:
        self._write(frame(payload))

    def send_many(self, payloads: list[bytes]) -> None:
        self._write(b"".join(frame(p) for p in payloads))

    async def close(self, timeout: float = 5.0) -> None:
        self._write(frame(struct.pack("!H", 1000), _OP_CLOSE))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()
