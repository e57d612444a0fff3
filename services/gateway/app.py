"""The gateway's ASGI application: FastAPI routes, the error shape, rate limits, metrics, access logs.

``create_app(gateway, lifespan)`` builds the app around a ``Gateway``
(``services.gateway.context``); the assembly (``control.venue``) owns the
lifespan that starts and stops the venue's tasks.

Around every HTTP request (``GatewayMiddleware``, plain ASGI):

1. the per-IP token bucket (``/healthz``, ``/readyz`` and ``/metrics`` are
   exempt); a refusal is a 429 with ``Retry-After``;
2. a body larger than ``MAX_BODY`` (by ``Content-Length``) is a 413;
3. afterwards, the latency histogram (labelled by the route's template),
   one JSON log line per request at debug, and one per error response at
   info (4xx) or error (5xx), with the error code.

``POST /v1/orders`` and ``DELETE /v1/orders/{order_id}`` (nearly all trading
traffic) are answered by ``services.gateway.fastpath``, the same answers
for less CPU, unless ``fast_path`` is off (``RIALTO_FAST_PATH=0``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.auth import AuthError
from services.gateway.context import Gateway
from services.gateway.errors import ApiError, error_body, unavailable_error, validation_error
from services.gateway.fastpath import FastPath
from services.gateway.ratelimit import retry_after
from services.gateway.routes import ROUTERS
from services.gateway.routes.deps import JSON, json
from services.gateway.static import mount_web

log = logging.getLogger("rialto.gateway.http")

MAX_BODY = 1 << 20
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_HTTP_CODES = {
    400: "malformed_json",  # FastAPI's "error parsing the body" (e.g. nesting too deep for the parser)
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _note_error(request: Request, code: str) -> None:
    request.scope.setdefault("state", {})["error_code"] = code


def _error_response(request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None) -> Response:
    _note_error(request, str(body.get("error", {}).get("code", "")))
    return json(body, status, headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error_response(request, exc.status, exc.body(), exc.headers)


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return _error_response(request, exc.status, exc.body(), exc.headers())


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    error = validation_error(list(exc.errors()))
    return _error_response(request, error.status, error.body(), None)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 400:
        message = "the request body could not be parsed as JSON"
    return _error_response(request, exc.status_code, error_body(code, message), dict(exc.headers or {}))


async def _too_deep(request: Request, exc: Exception) -> Response:
    return _error_response(request, 400, error_body("malformed_json", "the request body nests too deeply"), None)


def unavailable_response(exc: BaseException) -> Response | None:
    """The 503 response for a server the venue depends on being away (``errors.unavailable_error``)."""
    error = unavailable_error(exc)
    return None if error is None else JSON(error.body(), error.status, headers=error.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    unavailable = unavailable_response(exc)
    if unavailable is not None:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        _note_error(request, "unavailable")
        return unavailable
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(request, 500, error_body("internal_error", "internal error"), None)


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, gateway: Gateway, fast_path: bool = True) -> None:
        self.app = app
        self.gateway = gateway
        self.fast_path = fast_path
        """Answer POST /v1/orders and DELETE /v1/orders/{id} in ``services.gateway.fastpath`` (same answers)."""
        self._fast = FastPath(gateway, app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope.get("path", "")
        method: str = scope.get("method", "")
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            try:
                refusal = await self._refuse(scope, path, ip)
            except Exception as exc:
                unavailable = unavailable_response(exc)
                if unavailable is None:
                    raise
                scope.setdefault("state", {})["error_code"] = "unavailable"
                refusal = unavailable
            if refusal is not None:
                await refusal(scope, receive, send_wrapper)
            elif self.fast_path and self._fast.handles(method, path):
                await self._fast(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, method, path, ip, status[0], time.perf_counter() - started)

    async def _refuse(self, scope: Scope, path: str, ip: str) -> Response | None:
        if path not in EXEMPT:
            wait = await self.gateway.limit_ip(ip)
            if wait > 0:
                scope.setdefault("state", {})["error_code"] = "rate_limited"
                return JSON(error_body("rate_limited", "too many requests from this address; slow down"), 429,
                            headers={"Retry-After": retry_after(wait)})
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > MAX_BODY
                except ValueError:
                    too_big = False
                if too_big:
                    scope.setdefault("state", {})["error_code"] = "payload_too_large"
                    return JSON(error_body("payload_too_large", f"request bodies are at most {MAX_BODY} bytes"), 413)
        return None

    def _record(self, scope: Scope, method: str, path: str, ip: str, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or ("exempt" if path in EXEMPT else "unmatched")
        self.gateway.metrics.request_seconds.labels(method, template, str(status)).observe(seconds)
        state = scope.get("state") or {}
        fields: dict[str, Any] = {
            "method": method, "route": template, "path": path[:200], "status": status,
            "ms": round(seconds * 1000, 3), "ip": ip,
        }
        account = state.get("account") if isinstance(state, dict) else None
        if account is not None:
            fields["account"] = account
        if status >= 400:
            fields["code"] = state.get("error_code") if isinstance(state, dict) else None
            level = logging.ERROR if status >= 500 else logging.INFO
            log.log(level, "%s %s -> %d", method, template, status, extra={"fields": fields})
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d", method, template, status, extra={"fields": fields})


def create_app(gateway: Gateway, lifespan: Lifespan | None = None, *, fast_path: bool = True) -> FastAPI:
    app = FastAPI(
        title="Rialto",
        version="0.1.0",
        description=(
            "A trading venue's REST and WebSocket API. Prices, quantities and amounts are decimal strings; "
            "times are milliseconds since the Unix epoch. Every error is {\"error\": {\"code\", \"message\"}}."
        ),
        default_response_class=JSON,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.gateway = gateway
    for router in ROUTERS:
        app.include_router(router)
    mount_web(app, gateway.settings.profile)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(GatewayMiddleware, gateway=gateway, fast_path=fast_path)
    return app
