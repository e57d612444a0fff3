"""A lean ASGI path for the two hot routes: ``POST /v1/orders`` and ``DELETE /v1/orders/{order_id}``.

Why it exists: profiling the venue under REST order entry showed FastAPI's
routing, dependency injection and pydantic validation at about a third of
the gateway's CPU per order request. These two routes are nearly all of a
trading client's traffic, so ``GatewayMiddleware`` hands them here (when its
``fast_path`` is on, the default; ``RIALTO_FAST_PATH=0`` turns it off) and
everything else, including these routes' OpenAPI description, stays with
FastAPI.

What it guarantees: the same answer as the FastAPI routes
(``routes.trading.place_order`` and ``cancel_order``), byte for byte, for
every request:

* The requests this path answers itself are the ones whose outcome no
  longer depends on parsing or validation: a JSON content type (FastAPI's
  test), a body that decodes into ``OrderBody`` (a msgspec Struct with
  ``OrderRequest``'s fields, defaults and constraints; whatever it accepts,
  ``json.loads`` + ``OrderRequest`` accept with the same values: the tests
  hold the two to it), an order id in canonical decimal within 1..2^63-1.
  Anything else (malformed JSON, a wrong or missing field, an empty body,
  another content type, an odd id, a client gone mid-body) goes to FastAPI
  with the body replayed, so every error answer, and the order in which
  FastAPI checks things (malformed JSON before authentication, validation
  after it), is FastAPI's own.
* Authentication (bearer token or signed API-key request), the account's
  rate limit and ``request.state.account`` as in ``routes.deps.principal``;
  then the same ``Gateway`` calls as the routes, and the same response
  class (msgspec-rendered JSON, ``Idempotent-Replayed: true`` on a replay).
* An exception is answered by the app's own exception handlers, looked up
  as Starlette's ``ExceptionMiddleware`` does; one without a handler there
  propagates to ``ServerErrorMiddleware`` exactly as from a route.
* ``scope["route"]`` is the FastAPI route itself, so the latency histogram
  and the access log label these requests by the same template.
"""

from __future__ import annotations

import email.message
import inspect
import re
from collections import deque
from typing import Annotated, Any, Literal, cast

import msgspec
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.context import Gateway
from services.gateway.errors import rejection
from services.gateway.orders import cancel_command, order_json, rejected_reason
from services.gateway.routes.deps import json, signed_target
from services.gateway.schemas import MAX_INT64, MAX_TIME_MS, OrderRequest

ORDERS = "/v1/orders"
ORDER = "/v1/orders/{order_id}"
_ORDER_PREFIX = ORDERS + "/"
_ORDER_ID = re.compile(r"[1-9][0-9]{0,18}")

_Decimal = Annotated[str, msgspec.Meta(max_length=40)]


class OrderBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """``schemas.OrderRequest`` as a msgspec Struct (same fields, defaults and constraints).

    ``pattern`` is ``\\Z``-anchored: msgspec matches with Python's ``re``, where ``$`` also matches
    before a final newline; pydantic's (Rust) ``$`` does not.
    """

    symbol: Annotated[str, msgspec.Meta(max_length=32)]
    side: Literal["buy", "sell"]
    type: Literal["limit", "market", "stop_limit", "stop_market"] = "limit"
    price: _Decimal | None = None
    quantity: _Decimal | None = None
    quote_quantity: _Decimal | None = None
    stop_price: _Decimal | None = None
    time_in_force: Literal["gtc", "ioc", "fok", "gtd"] | None = None
    expire_time: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)] | None = None
    post_only: bool = False
    client_order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[!-~]+\Z")] | None = None
    stp: Literal["none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement"] = "none"


decode_order = msgspec.json.Decoder(OrderBody).decode


def is_json_content_type(value: str | None) -> bool:
    """FastAPI's test (``routing.get_request_handler``): is a body with this content type parsed as JSON?"""
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class _Route:
    """Stands in for the FastAPI route when the app has none with this template (metrics need ``.path``)."""

    def __init__(self, path: str) -> None:
        self.path = path


class FastPath:
    """The ASGI handler; ``fallback`` is the app below ``GatewayMiddleware`` (FastAPI's)."""

    def __init__(self, gateway: Gateway, fallback: ASGIApp) -> None:
        self.gateway = gateway
        self.fallback = fallback
        self._json_types: dict[bytes, bool] = {}
        self._routes: dict[tuple[int, str, str], Any] = {}

    @staticmethod
    def handles(method: str, path: str) -> bool:
        """The requests to hand here (a DELETE with an odd id is still passed on to FastAPI from here)."""
        if method == "POST":
            return path == ORDERS
        return method == "DELETE" and path.startswith(_ORDER_PREFIX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("root_path"):  # mounted under a prefix: leave the route matching to Starlette
            await self.fallback(scope, receive, send)
        elif scope["method"] == "POST":
            await self._place(scope, receive, send)
        else:
            await self._cancel(scope, receive, send)

    # The routes ------------------------------------------------------------------------
    async def _place(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, messages = await _read_body(receive)
        order: OrderBody | None = None
        if body and self._json_body(scope):
            try:
                order = decode_order(body)
            except Exception:  # whatever OrderBody refuses, FastAPI answers (with its own error)
                order = None
        if order is None or body is None:
            await self.fallback(scope, _replay(messages, receive), send)
            return
        scope["route"] = self._route(scope, "POST", ORDERS)
        gw = self.gateway
        try:
            account = await self._caller(scope, body)
            # OrderBody has OrderRequest's fields and values: place_order reads nothing else.
            status, content, replayed = await gw.place_order(account, cast(OrderRequest, order))
        except Exception as exc:
            await self._error(exc, scope, receive, send)
            return
        await json(content, status, {"Idempotent-Replayed": "true"} if replayed else None)(scope, receive, send)

    async def _cancel(self, scope: Scope, receive: Receive, send: Send) -> None:
        text: str = scope["path"][len(_ORDER_PREFIX):]
        order_id = int(text) if _ORDER_ID.fullmatch(text) else 0
        if not 1 <= order_id <= MAX_INT64:
            await self.fallback(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        if body is None:
            await self.fallback(scope, _replay(messages, receive), send)
            return
        scope["route"] = self._route(scope, "DELETE", ORDER)
        gw = self.gateway
        try:
            account = await self._caller(scope, body)
            # routes.trading.cancel_order, step for step
            outcome = await gw.submit(cancel_command(account, order_id))
            reason = rejected_reason(outcome, order_id)
            if reason:
                raise rejection(reason, order_id=str(order_id))
            await gw.settled(outcome.seq)
            content = order_json(await gw.read(gw.order_for, account, order_id))
        except Exception as exc:
            await self._error(exc, scope, receive, send)
            return
        await json(content)(scope, receive, send)

    # What the routes share ---------------------------------------------------------------
    async def _caller(self, scope: Scope, body: bytes) -> int:
        """``routes.deps.principal``: authenticate, take the account's rate limit, note it for the access log."""
        gw = self.gateway
        who = gw.deps.auth.authenticate(Headers(scope=scope), scope["method"], signed_target(scope), body)
        await gw.limit_account(who.account_id)
        scope.setdefault("state", {})["account"] = who.account_id
        return who.account_id

    def _json_body(self, scope: Scope) -> bool:
        value: bytes | None = None
        for name, raw in scope["headers"]:
            if name == b"content-type":
                value = raw
                break
        if value is None:
            return False
        known = self._json_types.get(value)
        if known is None:
            known = is_json_content_type(value.decode("latin-1"))
            if len(self._json_types) < 64:
                self._json_types[value] = known
        return known

    def _route(self, scope: Scope, method: str, path: str) -> Any:
        """The app's own route for ``method path`` (what FastAPI's router puts in the scope)."""
        app = scope.get("app")
        key = (id(app), method, path)
        route = self._routes.get(key)
        if route is None:
            route = next(
                (r for r in getattr(app, "routes", ())
                 if isinstance(r, APIRoute) and r.path == path and method in (r.methods or ())),
                None,
            ) or _Route(path)
            self._routes[key] = route
        return route

    async def _error(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer as the app's ``ExceptionMiddleware`` would; re-raise what only ``ServerErrorMiddleware`` handles."""
        registered: dict[Any, Any] = getattr(scope.get("app"), "exception_handlers", {})
        handler = None
        if isinstance(exc, HTTPException):
            handler = registered.get(exc.status_code) if exc.status_code != 500 else None
        if handler is None:
            for cls in type(exc).__mro__:
                if cls is not Exception and cls in registered:
                    handler = registered[cls]
                    break
        if handler is None:
            raise exc
        response = handler(Request(scope, receive, send), exc)
        if inspect.isawaitable(response):
            response = await response
        if response is not None:
            await response(scope, receive, send)
        exc.__traceback__ = None


async def _read_body(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The whole request body (None if the client went away first) and the messages it came in."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then the connection's own."""
    pending = deque(messages)

    async def replayed() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replayed
