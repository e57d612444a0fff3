"""Accounts, logins, MFA, API keys, and the public keys that verify the venue's tokens."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from services.gateway.errors import ApiError
from services.gateway.ratelimit import retry_after
from services.gateway.routes.deps import ERRORS, Caller, client_ip, gateway, json
from services.gateway.schemas import (
    AccountOut,
    ApiKeyInfoOut,
    ApiKeyOut,
    LoginRequest,
    MfaEnableRequest,
    MfaSetupOut,
    OkOut,
    RegisterRequest,
    TokenOut,
)

router = APIRouter(tags=["auth"])


async def _spend_auth_tokens(request: Request) -> None:
    """Register and login cost more of the IP's bucket (one Argon2 hash each)."""
    gw = gateway(request)
    extra = gw.settings.auth_cost - 1
    if extra > 0:
        wait = await gw.limit_ip(client_ip(request), extra)
        if wait > 0:
            raise ApiError(429, "rate_limited", "too many requests from this address; slow down",
                           headers={"Retry-After": retry_after(wait)})


@router.post("/v1/auth/register", status_code=201, responses={201: {"model": AccountOut}, **ERRORS})
async def register(request: Request, body: RegisterRequest) -> Response:
    await _spend_auth_tokens(request)
    account = await asyncio.to_thread(gateway(request).deps.auth.register, body.username, body.password)
    return json(account.as_dict(), 201)


@router.post("/v1/auth/login", responses={200: {"model": TokenOut}, **ERRORS})
async def login(request: Request, body: LoginRequest) -> Response:
    await _spend_auth_tokens(request)
    token = await asyncio.to_thread(
        gateway(request).deps.auth.login, body.username, body.password, body.totp, client_ip(request),
    )
    return json(token.as_dict())


@router.post("/v1/auth/mfa/setup", responses={200: {"model": MfaSetupOut}, **ERRORS})
async def mfa_setup(request: Request, who: Caller) -> Response:
    return json(gateway(request).deps.auth.mfa_setup(who.account_id).as_dict())


@router.post("/v1/auth/mfa/enable", responses={200: {"model": OkOut}, **ERRORS})
async def mfa_enable(request: Request, who: Caller, body: MfaEnableRequest) -> Response:
    gateway(request).deps.auth.mfa_enable(who.account_id, body.code)
    return json({"ok": True})


@router.post("/v1/api-keys", status_code=201, responses={201: {"model": ApiKeyOut}, **ERRORS})
async def create_api_key(request: Request, who: Caller) -> Response:
    return json(gateway(request).deps.auth.create_api_key(who.account_id).as_dict(), 201)


@router.get("/v1/api-keys", responses={200: {"model": list[ApiKeyInfoOut]}, **ERRORS})
async def list_api_keys(request: Request, who: Caller) -> Response:
    return json([k.as_dict() for k in gateway(request).deps.auth.list_api_keys(who.account_id)])


@router.delete("/v1/api-keys/{key_id}", responses={200: {"model": OkOut}, **ERRORS})
async def revoke_api_key(
    request: Request, who: Caller,
    key_id: str = Path(max_length=64)
) -> Response:
    gateway(request).deps.auth.revoke_api_key(who.account_id, key_id)
    return json({"ok": True})


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(request: Request) -> Response:
    return json(gateway(request).deps.auth.jwks())
