"""What routes depend on: the gateway, the caller's principal, the JSON response class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.auth import Principal
from services.gateway.context import Gateway
from services.gateway.schemas import ErrorOut

_encode = msgspec.json.Encoder().encode
_bearer = HTTPBearer(auto_error=False, description="an access token from POST /v1/auth/login")


class JSON(JSONResponse):
    """JSON rendered by msgspec (several times faster than the standard library for these shapes)."""

    def render(self, content: Any) -> bytes:
        return _encode(content)


def json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSON:
    return JSON(content, status_code=status_code, headers=headers)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "bad request (invalid field, engine rejection)"},
    401: {"model": ErrorOut, "description": "not authenticated"},
    404: {"model": ErrorOut, "description": "not found"},
    422: {"model": ErrorOut, "description": "validation failure or rejection"},
    429: {"model": ErrorOut, "description": "rate limited (see Retry-After)"},
}


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def signed_target(scope: Mapping[str, Any]) -> str:
    """The request target as the client sent it (path and query): what an API key signs."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else scope.get("path", "/")
    path = path.split("?", 1)[0]
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller (bearer token or signed API request), after its account's rate limit."""
    gw = gateway(request)
    body = await request.body()
    who = gw.deps.auth.authenticate(request.headers, request.method, signed_target(request.scope), body)
    await gw.limit_account(who.account_id)
    request.state.account = who.account_id
    return who


Caller = Annotated[Principal, Depends(principal)]
"""A route parameter ``who: Caller`` is the authenticated caller."""
