"""Request and response shapes of the REST API (pydantic: validation and the OpenAPI document).

Requests are strict: unknown fields are refused (a typo is an error, not a
silently ignored option), numbers that are prices, quantities or amounts are
decimal *strings* (``"0.25"``, never ``0.25``), booleans are JSON booleans
and times are integer milliseconds since the Unix epoch. Responses follow
the same rules; ids are strings (they exceed what a JavaScript number holds
exactly).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

DecimalText = StrictStr
MAX_INT64 = 2**63 - 1
MAX_TIME_MS = MAX_INT64 // 1_000_000
"""Later than this (year 2262) does not fit the engine's nanosecond clock."""

Side = Literal["buy", "sell"]
OrderTypeName = Literal["limit", "market", "stop_limit", "stop_market"]
TimeInForceName = Literal["gtc", "ioc", "fok", "gtd"]
StpName = Literal["none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Requests -------------------------------------------------------------------
class RegisterRequest(Strict):
    username: StrictStr = Field(max_length=256)
    password: StrictStr = Field(max_length=1024)


class LoginRequest(Strict):
    username: StrictStr = Field(max_length=256)
    password: StrictStr = Field(max_length=1024)
    totp: StrictStr | None = Field(default=None, max_length=32)


class MfaEnableRequest(Strict):
    code: StrictStr = Field(max_length=32)


class FaucetRequest(Strict):
    asset: StrictStr = Field(max_length=16, description="asset code, e.g. USD")
    amount: DecimalText = Field(max_length=40, description="decimal string, e.g. \"1000.00\"")


class TransferRequest(Strict):
    asset: StrictStr = Field(max_length=16, description="asset code, e.g. USD")
    amount: DecimalText = Field(max_length=40, description="decimal string, e.g. \"1000.00\"")
    from_shard: StrictStr = Field(max_length=64, description="the shard the funds leave (its configured name)")
    to_shard: StrictStr = Field(max_length=64, description="the shard the funds go to")


class TransferOut(BaseModel):
    transfer_id: str
    asset: str
    amount: str
    from_shard: str
    to_shard: str
    status: str = Field(description="in_transit: left the source shard; the destination credits it shortly")


class OrderRequest(Strict):
    symbol: StrictStr = Field(max_length=32, examples=["BTC-USD"])
    side: Side
    type: OrderTypeName = "limit"
    price: DecimalText | None = Field(default=None, max_length=40, description="limit price (limit, stop_limit)")
    quantity: DecimalText | None = Field(default=None, max_length=40, description="base quantity")
    quote_quantity: DecimalText | None = Field(
        default=None, max_length=40, description="quote amount to spend (market and stop_market buys, instead of quantity)",
    )
    stop_price: DecimalText | None = Field(default=None, max_length=40, description="trigger (stop_limit, stop_market)")
    time_in_force: TimeInForceName | None = Field(
        default=None, description="default: gtc for limit and stop_limit, ioc for market and stop_market",
    )
    expire_time: StrictInt | None = Field(
        default=None, ge=0, le=MAX_TIME_MS, description="gtd only: milliseconds since the Unix epoch",
    )
    post_only: StrictBool = False
    client_order_id: StrictStr | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[!-~]+$",
        description="unique per account: a retry with the same id returns the first result",
    )
    stp: StpName = Field(default="none", description="self-trade prevention")


class AmendRequest(Strict):
    price: DecimalText | None = Field(default=None, max_length=40, description="new limit price")
    quantity: DecimalText | None = Field(default=None, max_length=40, description="new open quantity")


class WsOrderRequest(OrderRequest):
    """The order of a WebSocket ``place_order`` message (same fields as ``POST /v1/orders``)."""


# Responses ------------------------------------------------------------------
class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class AccountOut(BaseModel):
    account_id: int
    username: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class MfaSetupOut(BaseModel):
    secret: str
    otpauth_uri: str


class OkOut(BaseModel):
    ok: bool = True


class ApiKeyOut(BaseModel):
    key_id: str
    secret: str


class ApiKeyInfoOut(BaseModel):
    key_id: str
    created: int
    revoked: int | None


class AssetOut(BaseModel):
    code: str
    decimals: int


class InstrumentOut(BaseModel):
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_quantity: str
    max_quantity: str
    max_price: str
    price_band_bps: int
    maker_fee_bps: int
    taker_fee_bps: int
    reference_price: str | None


class BalanceOut(BaseModel):
    asset: str
    available: str
    held: str
    total: str


class FaucetOut(BaseModel):
    asset: str
    amount: str
    available: str


class FillOut(BaseModel):
    trade_id: str
    order_id: str
    symbol: str
    side: str
    price: str
    quantity: str
    fee: str
    fee_asset: str
    liquidity: str
    time: int


class OrderOut(BaseModel):
    id: str
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: str | None
    quantity: str | None
    quote_quantity: str | None
    stop_price: str | None
    expire_time: int | None
    post_only: bool
    stp: str
    status: str
    leaves: str
    filled_quantity: str
    filled_notional: str
    average_price: str | None
    fee_total: str
    fee_asset: str
    reason: str | None
    created_time: int
    updated_time: int
    fills: list[FillOut] | None = None


class MassCancelOut(BaseModel):
    cancelled: list[str]


class BookOut(BaseModel):
    symbol: str
    sequence: int
    u: int
    bids: list[list[str]]
    asks: list[list[str]]


class TradeOut(BaseModel):
    trade_id: str
    symbol: str
    price: str
    quantity: str
    aggressor_side: str
    time: int


class CandleOut(BaseModel):
    start: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
