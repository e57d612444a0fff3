"""``GET /v1/ws``: market data and account streams, and order entry, over one WebSocket.

Every message is a JSON object. The client sends operations (``op``) with an
optional ``id`` that the reply echoes; the server sends frames with a
``type``.

=====================  ============================================  ==============================
op                     fields                                        reply
=====================  ============================================  ==============================
``ping``                                                             ``pong``
``auth``               ``token`` (an access token)                   ``authenticated`` {account_id}
``subscribe``          ``channel``: ``book`` (``symbol``,            ``subscribed``, then the data
                       ``depth``), ``trades`` (``symbol``),
                       ``candles`` (``symbol``, ``interval``),
                       ``orders``, ``balances`` (after ``auth``)
``unsubscribe``        as subscribe                                  ``unsubscribed``
``place_order``        ``order``: the body of ``POST /v1/orders``    ``order`` {order, replayed}
``cancel_order``       ``order_id``                                  ``order`` {order}
``cancel_all``         ``symbol`` (optional)                         ``cancelled`` {cancelled: [...]}
``cancel_on_disconnect`` ``enabled`` (bool)                          ``cancel_on_disconnect``
=====================  ============================================  ==============================

A failed operation is answered ``{"type": "error", "id": ..., "status": ...,
"error": {"code", "message"}}`` with the same codes as the REST API; the
socket stays open.

Data frames: ``book_snapshot`` on subscribe, then ``book`` deltas (changed
levels' new totals, ``"0"`` = level gone) carrying ``u``, the symbol's update
counter: each delta's ``u`` is the previous one's plus one, so a client that
sees a gap resubscribes for a fresh snapshot. ``trades`` (a batch per flush),
``candle``, ``order_event`` (the account's order events, with ``liquidity``
and ``fee`` on trades) and ``balances`` (all assets, after a change and once
on subscribe). Market data frames carry ``time`` in nanoseconds (the
engine's stamp).

Authentication: ``auth`` with a token, or at the handshake with the same
headers as a REST request (``Authorization: Bearer``, or an API key signing
``GET /v1/ws``). Cancel-on-disconnect (opt-in, per socket): when the socket
closes, for whatever reason, every open order of the account is cancelled
(one mass cancel, durable like any command).

A client that reads too slowly for its queue is sent a ``lagged`` error and
disconnected (close code 4000) rather than slowing everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from core.commands import mass_cancel
from services.gateway.auth import AuthError
from services.gateway.context import Gateway
from services.gateway.errors import ApiError, rejection, unavailable_error, validation_error
from services.gateway.orders import cancel_command, order_json, rejected_reason
from services.gateway.ratelimit import retry_after
from services.gateway.routes.deps import signed_target
from services.gateway.schemas import MAX_INT64, OrderRequest
from services.marketdata.candles import INTERVALS
from services.marketdata.hub import Channel, Subscription

router = APIRouter()
log = logging.getLogger("rialto.gateway.ws")

MAX_MESSAGE = 64 * 1024
LAGGED_CLOSE = 4000
_decode = msgspec.json.Decoder().decode


class Session:
    def __init__(self, gw: Gateway, socket: WebSocket, subscription: Subscription) -> None:
        self.gw = gw
        self.socket = socket
        self.sub = subscription
        self.account: int | None = None
        self.cancel_on_disconnect = False
        self.ip = socket.client.host if socket.client else "unknown"

    # Output: everything goes through the subscription's queue, one writer.
    def send(self, message: dict[str, Any]) -> None:
        self.gw.deps.hub.send_now(self.sub, message)

    def error(self, request_id: Any, exc: ApiError | AuthError) -> None:
        self.send({"type": "error", "id": request_id, "status": exc.status, **exc.body()})

    async def pump(self) -> None:
        queue = self.sub.queue
        while True:
            frame = await queue.get()
            await self.socket.send_text(frame.decode())
            if self.sub.lagged and queue.empty():
                await self.socket.send_text(msgspec.json.encode({
                    "type": "error", "error": {"code": "lagged", "message": "too slow: resubscribe"},
                }).decode())
                await self.socket.close(LAGGED_CLOSE)
                return

    # Input -------------------------------------------------------------
    async def handle(self, text: str) -> None:
        request_id: Any = None
        try:
            wait = await self.gw.limit_ip(self.ip)
            if wait > 0:
                raise ApiError(429, "rate_limited", "too many messages from this address; slow down",
                               retry_after=retry_after(wait))
            if len(text) > MAX_MESSAGE:
                raise ApiError(400, "message_too_large", f"messages are at most {MAX_MESSAGE} bytes")
            try:
                message = _decode(text)
            except msgspec.DecodeError:
                raise ApiError(400, "malformed_json", "the message is not valid JSON") from None
            if not isinstance(message, dict):
                raise ApiError(422, "invalid_field", "a message is a JSON object with an 'op'")
            raw_id = message.get("id")
            request_id = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
            op = message.get("op")
            handler = _OPS.get(op) if isinstance(op, str) else None
            if handler is None:
                raise ApiError(400, "unknown_op", f"unknown op; use one of {', '.join(_OPS)}")
            await handler(self, request_id, message)
        except (ApiError, AuthError) as exc:
            self.error(request_id, exc)
        except Exception as exc:
            # A server the venue depends on is away (Redis, PostgreSQL): the same 503 a REST client gets.
            unavailable = unavailable_error(exc)
            if unavailable is None:
                raise
            self.error(request_id, unavailable)

    def _require_account(self) -> int:
        if self.account is None:
            raise ApiError(401, "authentication_required", "send {'op': 'auth', 'token': ...} first")
        return self.account

    def _channel(self, message: dict[str, Any]) -> tuple[Channel, str]:
        name = message.get("channel")
        gw = self.gw
        if name in ("book", "trades", "candles"):
            symbol = message.get("symbol")
            if not isinstance(symbol, str):
                raise ApiError(422, "missing_field", "symbol: required for market data channels", field="symbol")
            gw.instrument(symbol)
            if name == "candles":
                interval = message.get("interval", "1m")
                if interval not in INTERVALS:
                    raise ApiError(422, "invalid_field", f"interval: one of {', '.join(INTERVALS)}",
                                   field="interval")
                return ("candles", symbol, str(interval)), symbol
            return (str(name), symbol), symbol
        if name in ("orders", "balances"):
            return (str(name), str(self._require_account())), ""
        raise ApiError(422, "invalid_field", "channel: one of book, trades, candles, orders, balances",
                       field="channel")


async def _ping(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    session.send({"type": "pong", "id": request_id})


async def _auth(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    token = message.get("token")
    if not isinstance(token, str):
        raise ApiError(422, "missing_field", "token: required", field="token")
    who = session.gw.deps.auth.verify_token(token)
    session.account = who.account_id
    session.send({"type": "authenticated", "id": request_id, "account_id": who.account_id})


async def _subscribe(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    channel, symbol = session._channel(message)
    gw = session.gw
    hub = gw.deps.hub
    depth = message.get("depth", 50)
    if channel[0] == "book" and (not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 1000):
        raise ApiError(422, "invalid_field", "depth: an integer in 1..1000", field="depth")
    subscribe_book = getattr(gw.deps.market, "subscribe_book", None)
    if channel[0] == "book" and subscribe_book is not None:
        # Market data from another process (local and aws profiles): the feed holds this channel's frames
        # until its pub/sub stream has passed the snapshot's u, then sends the snapshot and what follows.
        session.send({"type": "subscribed", "id": request_id, "channel": list(channel)})
        await subscribe_book(session.sub, symbol, depth)
        return
    # Subscribe and snapshot in one step of the event loop: the first delta is the snapshot's u + 1.
    hub.subscribe(session.sub, channel)
    session.send({"type": "subscribed", "id": request_id, "channel": list(channel)})
    if channel[0] == "book":
        session.send(gw.deps.market.book_snapshot(symbol, depth))
    elif channel[0] == "balances" and gw.deps.market.balances is not None:
        session.send({"type": "balances", "balances": gw.deps.market.balances_of(int(channel[1]))})
    elif channel[0] == "balances":
        # No engine in this process: the projection's balances, once it has the account's own writes.
        account = int(channel[1])
        await gw.readable(account)
        session.send({"type": "balances", "balances": [
            {"asset": b.asset, "available": b.available, "held": b.held} for b in await gw.read(gw.deps.reader.balances, account)
        ]})


async def _unsubscribe(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    channel, _ = session._channel(message)
    session.gw.deps.hub.unsubscribe(session.sub, channel)
    session.send({"type": "unsubscribed", "id": request_id, "channel": list(channel)})


async def _place_order(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    account = session._require_account()
    await session.gw.limit_account(account)
    try:
        req = OrderRequest.model_validate(message.get("order"))
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False, include_input=False), "order") from None
    status, body, replayed = await session.gw.place_order(account, req)
    if status >= 400:
        session.send({"type": "error", "id": request_id, "status": status, **body})
    else:
        session.send({"type": "order", "id": request_id, "order": body, "replayed": replayed})


def _order_id(message: dict[str, Any]) -> int:
    raw = message.get("order_id")
    try:
        value = int(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else 0
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_INT64:
        raise ApiError(422, "invalid_field", "order_id: an order id", field="order_id")
    return value


async def _cancel_order(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    account = session._require_account()
    gw = session.gw
    await gw.limit_account(account)
    order_id = _order_id(message)
    outcome = await gw.submit(cancel_command(account, order_id))
    reason = rejected_reason(outcome, order_id)
    if reason:
        raise rejection(reason, order_id=str(order_id))
    await gw.readable(account)
    session.send({"type": "order", "id": request_id, "order": order_json(await gw.read(gw.order_for, account, order_id))})


async def _cancel_all(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    account = session._require_account()
    await session.gw.limit_account(account)
    symbol = message.get("symbol")
    if symbol is not None and not isinstance(symbol, str):
        raise ApiError(422, "invalid_field", "symbol: a string", field="symbol")
    cancelled = await session.gw.mass_cancel(account, symbol)
    session.send({"type": "cancelled", "id": request_id, "cancelled": cancelled})


async def _cancel_on_disconnect(session: Session, request_id: Any, message: dict[str, Any]) -> None:
    session._require_account()
    enabled = message.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ApiError(422, "invalid_field", "enabled: a boolean", field="enabled")
    session.cancel_on_disconnect = enabled
    session.send({"type": "cancel_on_disconnect", "id": request_id, "enabled": enabled})


_OPS = {
    "ping": _ping,
    "auth": _auth,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "place_order": _place_order,
    "cancel_order": _cancel_order,
    "cancel_all": _cancel_all,
    "cancel_on_disconnect": _cancel_on_disconnect,
}


@router.websocket("/v1/ws")
async def websocket_endpoint(socket: WebSocket) -> None:
    gw: Gateway = socket.app.state.gateway
    ip = socket.client.host if socket.client else "unknown"
    if await gw.limit_ip(ip) > 0:
        await socket.close(code=1008)
        return
    account: int | None = None
    headers = {k.lower(): v for k, v in socket.headers.items()}
    if "authorization" in headers or "x-rialto-key" in headers:
        try:
            account = gw.deps.auth.authenticate(headers, "GET", signed_target(socket.scope), b"").account_id
        except AuthError:
            await socket.close(code=1008)
            return
    await socket.accept()
    hub = gw.deps.hub
    session = Session(gw, socket, hub.connect())
    session.account = account
    pump = asyncio.create_task(session.pump())
    gw.metrics.websocket_clients.inc()
    try:
        while True:
            received = asyncio.ensure_future(socket.receive())
            done, _ = await asyncio.wait({received, pump}, return_when=asyncio.FIRST_COMPLETED)
            if received not in done:  # the pump ended (lagged, or the socket broke)
                received.cancel()
                break
            event = received.result()
            if event["type"] == "websocket.disconnect":
                break
            text = event.get("text")
            if text is None and event.get("bytes") is not None:
                text = event["bytes"].decode("utf-8", errors="replace")
            await session.handle(text or "")
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        gw.metrics.websocket_clients.dec()
        hub.disconnect(session.sub)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        if session.cancel_on_disconnect and session.account is not None:
            gw.spawn(gw.submit(mass_cancel(0, 0, session.account, 0)))
            log.info("cancel on disconnect", extra={"fields": {"account": session.account}})
