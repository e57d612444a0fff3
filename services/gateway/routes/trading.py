"""Instruments, balances, the faucet, orders and fills: the account's own trading API."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.gateway.errors import rejection
from services.gateway.orders import (
    amend_command,
    cancel_command,
    fill_json,
    fills_of,
    instrument_json,
    order_json,
    rejected_reason,
)
from services.gateway.routes.deps import ERRORS, Caller, gateway, json
from services.gateway.schemas import (
    MAX_INT64,
    AmendRequest,
    BalanceOut,
    FaucetOut,
    FaucetRequest,
    FillOut,
    InstrumentOut,
    MassCancelOut,
    OrderOut,
    OrderRequest,
    TransferOut,
    TransferRequest,
)

router = APIRouter(tags=["trading"])

OrderId = Path(ge=1, le=MAX_INT64, description="the order's id")
SymbolFilter = Query(default=None, max_length=32)
Limit = Query(default=100, ge=1, le=1000)


@router.get("/v1/instruments", responses={200: {"model": list[InstrumentOut]}})
async def instruments(request: Request) -> Response:
    return json([instrument_json(i) for i in gateway(request).deps.instruments])


@router.get("/v1/balances", responses={200: {"model": list[BalanceOut]}, **ERRORS})
async def balances(request: Request, who: Caller) -> Response:
    gw = gateway(request)
    await gw.require_readable(who.account_id)
    stored = {b.asset: b for b in await gw.read(gw.deps.reader.balances, who.account_id)}
    out = []
    for asset_id in sorted(gw.registry.assets):
        asset = gw.registry.assets[asset_id]
        view = stored.get(asset.code)
        zero = asset.format(0)
        out.append({
            "asset": asset.code,
            "available": view.available if view else zero,
            "held": view.held if view else zero,
            "total": view.total if view else zero,
        })
    return json(out)


@router.post("/v1/faucet", responses={200: {"model": FaucetOut}, **ERRORS})
async def faucet(request: Request, who: Caller, body: FaucetRequest) -> Response:
    return json(await gateway(request).faucet(who.account_id, body.asset, body.amount))


@router.post("/v1/transfers", status_code=201, responses={201: {"model": TransferOut}, **ERRORS})
async def transfer(request: Request, who: Caller, body: TransferRequest) -> Response:
    """Move funds between engine shards (venues configured with several); exactly once."""
    gw = gateway(request)
    return json(await gw.transfer(who.account_id, body.asset, body.amount, body.from_shard, body.to_shard), 201)


@router.post("/v1/orders", status_code=201, responses={201: {"model": OrderOut}, **ERRORS})
async def place_order(request: Request, who: Caller, body: OrderRequest) -> Response:
    status, content, replayed = await gateway(request).place_order(who.account_id, body)
    return json(content, status, {"Idempotent-Replayed": "true"} if replayed else None)


@router.get("/v1/orders", responses={200: {"model": list[OrderOut]}, **ERRORS})
async def list_orders(
    request: Request, who: Caller,
    symbol: str | None = SymbolFilter,
    status: Literal["open", "closed", "all"] = "all",
    limit: int = Limit
) -> Response:
    gw = gateway(request)
    if symbol is not None:
        gw.instrument(symbol)
    await gw.require_readable(who.account_id)
    views = await gw.read(gw.deps.reader.list_orders, who.account_id, symbol, status, limit)
    return json([order_json(v) for v in views])


@router.get("/v1/orders/{order_id}", responses={200: {"model": OrderOut}, **ERRORS})
async def get_order(request: Request, who: Caller, order_id: int = OrderId) -> Response:
    gw = gateway(request)
    await gw.require_readable(who.account_id)
    view = await gw.read(gw.order_for, who.account_id, order_id)
    return json(order_json(view, await gw.read(gw.fills_of_order, who.account_id, order_id)))


@router.patch("/v1/orders/{order_id}", responses={200: {"model": OrderOut}, **ERRORS})
async def amend_order(
    request: Request, who: Caller, body: AmendRequest, order_id: int = OrderId
) -> Response:
    gw = gateway(request)
    await gw.require_readable(who.account_id)
    view = await gw.read(gw.order_for, who.account_id, order_id)
    command = amend_command(gw.instrument(view.symbol), who.account_id, order_id, body)
    outcome = await gw.submit(command)
    reason = rejected_reason(outcome, order_id)
    if reason:
        raise rejection(reason, order_id=str(order_id))
    await gw.readable(who.account_id)
    view = await gw.read(gw.order_for, who.account_id, order_id)
    return json(order_json(view, fills_of(order_id, outcome.events, outcome.command.time, gw.registry)))


@router.delete("/v1/orders/{order_id}", responses={200: {"model": OrderOut}, **ERRORS})
async def cancel_order(request: Request, who: Caller, order_id: int = OrderId) -> Response:
    gw = gateway(request)
    outcome = await gw.submit(cancel_command(who.account_id, order_id))
    reason = rejected_reason(outcome, order_id)
    if reason:
        raise rejection(reason, order_id=str(order_id))
    await gw.settled(outcome.seq)
    return json(order_json(await gw.read(gw.order_for, who.account_id, order_id)))


@router.delete("/v1/orders", responses={200: {"model": MassCancelOut}, **ERRORS})
async def cancel_all(
    request: Request, who: Caller, symbol: str | None = SymbolFilter
) -> Response:
    return json({"cancelled": await gateway(request).mass_cancel(who.account_id, symbol)})


@router.get("/v1/fills", responses={200: {"model": list[FillOut]}, **ERRORS})
async def list_fills(
    request: Request, who: Caller, symbol: str | None = SymbolFilter, limit: int = Limit
) -> Response:
    gw = gateway(request)
    if symbol is not None:
        gw.instrument(symbol)
    await gw.require_readable(who.account_id)
    return json([fill_json(f) for f in await gw.read(gw.deps.reader.list_fills, who.account_id, symbol, limit)])
