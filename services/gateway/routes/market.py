"""Public market data: the book (live, from market data), trades and candles (from the projection)."""

from __future__ import annotations

import inspect
from typing import Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.gateway.routes.deps import ERRORS, gateway, json
from services.gateway.schemas import BookOut, CandleOut, TradeOut

router = APIRouter(tags=["market data"])

Symbol = Path(max_length=32, examples=["BTC-USD"])


@router.get("/v1/book/{symbol}", responses={200: {"model": BookOut}, **ERRORS})
async def book(request: Request, symbol: str = Symbol, depth: int = Query(default=50, ge=1, le=1000)) -> Response:
    gw = gateway(request)
    gw.instrument(symbol)
    snapshot = gw.deps.market.book_snapshot(symbol, depth)
    if inspect.isawaitable(snapshot):  # market data in another process (local and aws profiles)
        snapshot = await snapshot
    return json({
        "symbol": symbol,
        "sequence": snapshot["seq"],
        "u": snapshot["u"],
        "bids": snapshot["bids"],
        "asks": snapshot["asks"],
    })


@router.get("/v1/trades/{symbol}", responses={200: {"model": list[TradeOut]}, **ERRORS})
async def trades(request: Request, symbol: str = Symbol, limit: int = Query(default=100, ge=1, le=1000)) -> Response:
    gw = gateway(request)
    gw.instrument(symbol)
    await gw.readable()
    return json([
        {"trade_id": f"{t.seq}-{t.index}", "symbol": t.symbol, "price": t.price, "quantity": t.quantity,
         "aggressor_side": t.aggressor_side, "time": t.time // 1_000_000}
        for t in await gw.read(gw.deps.reader.list_trades, symbol, limit)
    ])


@router.get("/v1/candles/{symbol}", responses={200: {"model": list[CandleOut]}, **ERRORS})
async def candles(
    request: Request,
    symbol: str = Symbol,
    interval: Literal["1m", "5m", "1h"] = "1m",
    limit: int = Query(default=100, ge=1, le=1000),
) -> Response:
    gw = gateway(request)
    gw.instrument(symbol)
    await gw.readable()
    return json([
        {"start": c.start // 1_000_000, "open": c.open, "high": c.high, "low": c.low, "close": c.close,
         "volume": c.volume, "quote_volume": c.quote_volume, "trades": c.trade_count}
        for c in await gw.read(gw.deps.reader.list_candles, symbol, interval, limit)
    ])
