"""The gateway's one error shape, and the status and code of every way a request can fail.

Every failure is answered ``{"error": {"code": ..., "message": ...}}`` (some
add fields: ``field`` for a validation failure, ``order_id`` for a rejected
order). Codes are stable and lower-case:

* the engine's rejection reasons, ``core.events.Reason`` names in lower case
  (``insufficient_funds``, ``post_only_would_trade``, ``unknown_order``, ...);
* authentication failures, ``services.gateway.auth.errors`` (``token_invalid``,
  ``token_expired``, ``invalid_signature``, ``throttled``, ...);
* request validation: ``malformed_json`` (400: the body is not JSON),
  ``missing_field``, ``unknown_field``, ``invalid_field`` (422: the JSON does
  not fit the schema), ``invalid_query`` and ``invalid_path`` (422);
* the gateway's own: ``rate_limited`` (429 with ``Retry-After``),
  ``not_found``, ``method_not_allowed``, ``faucet_disabled``,
  ``faucet_limit``, ``authentication_required``, ``shutting_down`` (503),
  ``not_ready`` (503), ``internal_error`` (500: a bug, never bad input).

Statuses for engine reasons: the request's own fields are wrong → 400;
the target order does not exist (for this account) → 404; the request is
well-formed but the market or the account refuses it now → 422.
"""

from __future__ import annotations

from typing import Any

from core.events import Reason

REASON_CODES: dict[int, str] = {int(r): r.name.lower() for r in Reason if r}

_NOT_FOUND = {Reason.UNKNOWN_ORDER}
_REFUSED_NOW = {
    Reason.INSUFFICIENT_FUNDS,
    Reason.POST_ONLY_WOULD_TRADE,
    Reason.PRICE_OUT_OF_BAND,
    Reason.NOT_AMENDABLE,
    Reason.FILL_OR_KILL,
    Reason.IMMEDIATE_OR_CANCEL,
    Reason.SELF_TRADE,
}

_MESSAGES: dict[Reason, str] = {
    Reason.UNKNOWN_SYMBOL: "unknown symbol",
    Reason.UNKNOWN_ORDER: "no such open order for this account",
    Reason.INVALID_ACCOUNT: "invalid account",
    Reason.INVALID_SIDE: "side must be buy or sell",
    Reason.INVALID_ORDER_TYPE: "invalid order type",
    Reason.INVALID_TIME_IN_FORCE: "time in force does not fit the order type",
    Reason.INVALID_STP: "invalid self-trade prevention mode for this order",
    Reason.INVALID_POST_ONLY: "post_only needs a limit order resting on the book (gtc or gtd)",
    Reason.INVALID_QUANTITY: "quantity is outside the instrument's limits or not a whole number of lots",
    Reason.INVALID_PRICE: "price is missing, outside the instrument's limits or not a whole number of ticks",
    Reason.INVALID_STOP_PRICE: "stop_price is missing, not allowed here or out of range",
    Reason.INVALID_EXPIRE_TIME: "expire_time is required for gtd (in the future) and not allowed otherwise",
    Reason.PRICE_OUT_OF_BAND: "price is outside the instrument's price band",
    Reason.INSUFFICIENT_FUNDS: "insufficient available balance",
    Reason.POST_ONLY_WOULD_TRADE: "a post-only order would have traded",
    Reason.NOT_AMENDABLE: "this order cannot be amended",
    Reason.UNKNOWN_ASSET: "unknown asset",
    Reason.INVALID_AMOUNT: "invalid amount",
    Reason.UNKNOWN_COMMAND: "unknown command",
}


class ApiError(Exception):
    """A failure answered in the error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.extra)
        return {"error": error}


def reason_status(reason: int) -> int:
    try:
        r = Reason(reason)
    except ValueError:
        return 400
    if r in _NOT_FOUND:
        return 404
    if r in _REFUSED_NOW:
        return 422
    return 400


def rejection(reason: int, message: str | None = None, **extra: Any) -> ApiError:
    """The answer to a command the engine rejected (or the gateway rejected for the same reason)."""
    try:
        r = Reason(reason)
        code = r.name.lower()
        default = _MESSAGES.get(r, code.replace("_", " "))
    except ValueError:
        code, default = f"reason_{reason}", "rejected"
    return ApiError(reason_status(reason), code, message or default, **extra)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    error.update(extra)
    return {"error": error}


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, "not_found", message)


def validation_error(errors: list[Any], where_default: str = "body") -> ApiError:
    """A pydantic/FastAPI validation failure as one stable code (the first error decides).

    ``malformed_json`` (400) when the body is not JSON at all; for the body,
    ``missing_field``, ``unknown_field`` or ``invalid_field`` (422); for the
    query string ``invalid_query`` and for path parameters ``invalid_path``
    (422). ``field`` names the offending field (dotted).
    """
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return ApiError(400, "malformed_json", "the request body is not valid JSON")
    where = str(loc[0]) if loc and loc[0] in ("body", "query", "path", "header", "cookie") else where_default
    rest = loc[1:] if loc and loc[0] == where else loc
    name = ".".join(str(part) for part in rest)
    message = str(first.get("msg", "invalid value"))[:200]
    if where == "query":
        code = "invalid_query"
    elif where == "path":
        code = "invalid_path"
    elif where in ("header", "cookie"):
        code = "invalid_header"
    elif kind == "missing":
        code = "missing_field"
    elif kind == "extra_forbidden":
        code = "unknown_field"
    else:
        code = "invalid_field"
    return ApiError(422, code, f"{name}: {message}" if name else message, field=name)


def unavailable_error(exc: BaseException) -> ApiError | None:
    """A 503 for a server the venue depends on being away (Redis, PostgreSQL, AWS); None for other errors.

    The client may retry: an order retried with the same client order id is placed at most once.
    """
    from redis.exceptions import RedisError

    from services.gateway.order_id_claims import ClaimsUnavailable
    from services.gateway.ratelimit_redis import RateLimiterUnavailable
    from services.log.base import LogError
    from services.persistence.postgres import StoreUnavailable

    if isinstance(exc, LogError):
        message = ("the order log is unavailable: the request may not have been taken; retry shortly "
                   "(an order retried with the same client_order_id is placed at most once)")
    elif isinstance(exc, StoreUnavailable):
        message = "the venue's database is unavailable; retry shortly"
    elif isinstance(exc, RateLimiterUnavailable | ClaimsUnavailable | RedisError):
        message = "the venue's cache is unavailable; retry shortly"
    else:
        return None
    return ApiError(503, "unavailable", message, headers={"Retry-After": "1"})
