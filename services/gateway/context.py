"""What the gateway's routes share: the venue's services and the gateway's own bookkeeping.

``GatewayDeps`` is what an assembly (``control.venue``) hands the gateway:
the intake, market data, the projection reader, authentication and a few
callables. ``Gateway`` adds what belongs to the gateway itself:

Read-your-writes
    Every acknowledged command raises its account's *acknowledged seq*.
    Before a read of the account's own data, the gateway waits (at most
    ``read_your_writes`` seconds) until the projection has applied that seq,
    and never less than the *recovery floor* (the engine's seq when the
    venue started), so nothing acknowledged before a restart is missing
    from a read after it.

Idempotent client order ids
    A ``client_order_id`` is unique per account. A request whose id is being
    processed waits for that first request and gets its result; a request
    whose id was answered before gets the remembered response (a bounded
    LRU), or, after eviction or a restart, the order as the projection has
    it (read-your-writes makes that lookup exact: the projection has applied
    everything the account was told, and everything in the log at start-up).
    So at most one command per (account, id) enters the log, whatever the
    retries, concurrency or restarts.

Faucet
    Test funds: capped per request and per account and asset over a sliding
    hour (in memory: a restart forgets the window).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.commands import Command, CommandKind, deposit, mass_cancel
from core.events import Reason
from core.instrument import Asset, Instrument
from core.numbers import NumberFormatError
from services.gateway.auth import AuthService
from services.gateway.errors import ApiError, rejection
from services.gateway.metrics import GatewayMetrics
from services.gateway.orders import (
    cancelled_ids,
    fill_json,
    new_order_command,
    order_json,
    placed_order,
    rejected_reason,
)
from services.gateway.ratelimit import InMemoryRateLimiter, Limit, RateLimiter, retry_after
from services.gateway.schemas import OrderRequest
from services.intake.intake import Intake, IntakeClosed
from services.marketdata.feed import MarketData
from services.marketdata.hub import Hub
from services.matcher.records import Outcome
from services.persistence import SqliteStore
from services.persistence.projection import FILL_COLUMNS
from services.persistence.store import REJECTED, OrderView, Registry
from services.persistence.views import fill_view

log = logging.getLogger("rialto.gateway")

HOUR = 3600.0
_COMMAND_NAMES = {int(k): k.name.lower() for k in CommandKind}


class ProjectionProgress(Protocol):
    """How far the projection has got (``control.projector.ProjectionFollower`` is one)."""

    applied: int

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until the projection has applied ``seq``; False after ``timeout`` seconds."""
        ...


@dataclass
class GatewaySettings:
    profile: str = "embedded"
    ip_limit: Limit = field(default_factory=lambda: Limit(400, 200))
    account_limit: Limit = field(default_factory=lambda: Limit(100, 50))
    auth_cost: float = 10.0
    read_your_writes: float = 2.0
    faucet_enabled: bool = True
    faucet_per_request: dict[str, str] = field(default_factory=dict)
    faucet_per_hour: dict[str, str] = field(default_factory=dict)
    admin_api: bool = True
    idempotency_cache: int = 10_000


@dataclass
class GatewayDeps:
    instruments: list[Instrument]
    intake: Intake
    market: MarketData
    hub: Hub
    auth: AuthService
    reader: SqliteStore
    projection: ProjectionProgress
    recovery_floor: int
    ready: Callable[[], bool]
    status: Callable[[], Coroutine[Any, Any, dict[str, Any]]]
    balance: Callable[[int, int], tuple[int, int]] | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    limiter: RateLimiter = field(default_factory=InMemoryRateLimiter)


Result = tuple[int, dict[str, Any]]


class Gateway:
    def __init__(self, deps: GatewayDeps, settings: GatewaySettings) -> None:
        self.deps = deps
        self.settings = settings
        self.metrics = deps.metrics
        self.limiter = deps.limiter
        self.instruments = {i.symbol: i for i in deps.instruments}
        self.registry = Registry(deps.instruments)
        self.assets: dict[str, Asset] = {a.code: a for a in self.registry.assets.values()}
        self.acked: dict[int, int] = {}
        self._inflight: dict[tuple[int, str], asyncio.Future[Result]] = {}
        self._responses: OrderedDict[tuple[int, str], Result] = OrderedDict()
        self._faucet: dict[tuple[int, str], deque[tuple[float, int]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._faucet_caps = {
            code: (self._cap(code, per_request), self._cap(code, settings.faucet_per_hour.get(code, "0")))
            for code, per_request in settings.faucet_per_request.items()
        }

    def _cap(self, code: str, text: str) -> int:
        asset = self.assets.get(code)
        return asset.to_units(text) if asset is not None else 0

    # Lookups ------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument:
        found = self.instruments.get(symbol)
        if found is None:
            raise rejection(Reason.UNKNOWN_SYMBOL, f"unknown symbol {symbol[:32]!r}")
        return found

    # Rate limits ----------------------------------------------------------
    def limit_account(self, account: int, cost: float = 1.0) -> None:
        wait = self.limiter.take(f"account:{account}", self.settings.account_limit, cost)
        if wait > 0:
            self.metrics.rate_limited.labels("account").inc()
            raise ApiError(429, "rate_limited", "too many requests for this account; slow down",
                           headers={"Retry-After": retry_after(wait)})

    def limit_ip(self, ip: str, cost: float = 1.0) -> float:
        wait = self.limiter.take(f"ip:{ip}", self.settings.ip_limit, cost)
        if wait > 0:
            self.metrics.rate_limited.labels("ip").inc()
        return wait

    # Commands -------------------------------------------------------------
    async def submit(self, command: Command, client_order_id: str | None = None) -> Outcome:
        """Append a command, wait until it is durable and applied, and remember the account's ack."""
        try:
            outcome = await self.deps.intake.submit(command, client_order_id)
        except IntakeClosed:
            raise ApiError(503, "shutting_down", "the venue is shutting down; retry shortly",
                           headers={"Retry-After": "1"}) from None
        self.metrics.commands.labels(_COMMAND_NAMES.get(command.kind, str(command.kind))).inc()
        if command.account > 0:
            self.acknowledge(command.account, outcome.seq)
        return outcome

    def acknowledge(self, account: int, seq: int) -> None:
        if seq > self.acked.get(account, 0):
            self.acked[account] = seq

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a command in the background (cancel-on-disconnect); the venue waits for these on shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # Read-your-writes -------------------------------------------------------
    async def readable(self, account: int | None = None) -> bool:
        """Wait (bounded) until the projection shows the account's acknowledged writes."""
        target = self.deps.recovery_floor
        if account is not None:
            target = max(target, self.acked.get(account, 0))
        projection = self.deps.projection
        if projection.applied >= target:
            return True
        ok: bool = await projection.wait_for(target, self.settings.read_your_writes)
        if not ok:
            log.warning("projection behind: wanted seq %d, at %d", target, projection.applied,
                        extra={"fields": {"wanted": target, "applied": projection.applied}})
        return ok

    # Orders -----------------------------------------------------------------
    async def place_order(self, account: int, req: OrderRequest) -> tuple[int, dict[str, Any], bool]:
        """(status, body, replayed): a new order's result, or the first result for a repeated client order id."""
        instrument = self.instrument(req.symbol)
        command = new_order_command(instrument, account, req)
        coid = req.client_order_id
        if coid is None:
            status, body = await self._place(command, None)
            return status, body, False
        key = (account, coid)
        cached = self._responses.get(key)
        if cached is not None:
            self._responses.move_to_end(key)
            return cached[0], cached[1], True
        pending = self._inflight.get(key)
        if pending is not None:
            status, body = await asyncio.shield(pending)
            return status, body, True
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result, replayed = await self._place_once(account, command, coid)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(result)
        self._remember(key, result)
        return result[0], result[1], replayed

    def _remember(self, key: tuple[int, str], result: Result) -> None:
        self._responses[key] = result
        while len(self._responses) > self.settings.idempotency_cache:
            self._responses.popitem(last=False)

    async def _place_once(self, account: int, command: Command, coid: str) -> tuple[Result, bool]:
        if not await self.readable(account):
            raise ApiError(503, "not_ready", "order history is catching up; retry shortly",
                           headers={"Retry-After": "1"})
        view = self.deps.reader.get_order_by_client_id(account, coid)
        if view is not None:
            return self.stored_result(view), True
        return await self._place(command, coid), False

    async def _place(self, command: Command, coid: str | None) -> Result:
        outcome = await self.submit(command, coid)
        try:
            body = placed_order(outcome, self.registry)
        except ApiError as exc:
            self.metrics.orders.labels("rejected").inc()
            return exc.status, exc.body()
        self.metrics.orders.labels("accepted").inc()
        return 201, body

    def stored_result(self, view: OrderView) -> Result:
        """The answer to a retried client order id, from the projection."""
        if view.status == REJECTED:
            reason = Reason[view.reason.upper()] if view.reason and view.reason.upper() in Reason.__members__ else 0
            error = rejection(int(reason), order_id=str(view.order_id))
            return error.status, error.body()
        return 201, order_json(view, self.fills_of_order(view.account, view.order_id))

    def fills_of_order(self, account: int, order_id: int) -> list[dict[str, Any]]:
        sql = (f"SELECT {', '.join(FILL_COLUMNS)} FROM fills WHERE account = ? AND order_id = ? "
               "ORDER BY trade_seq, trade_index")
        rows = self.deps.reader.connection.execute(sql, (account, order_id))
        return [fill_json(fill_view(row, self.registry)) for row in rows]

    def order_for(self, account: int, order_id: int) -> OrderView:
        view = self.deps.reader.get_order(order_id)
        if view is None or view.account != account:
            raise rejection(Reason.UNKNOWN_ORDER, "no such order for this account")
        return view

    async def mass_cancel(self, account: int, symbol: str | None) -> list[str]:
        symbol_id = self.instrument(symbol).id if symbol else 0
        outcome = await self.submit(mass_cancel(0, 0, account, symbol_id))
        reason = rejected_reason(outcome)
        if reason:
            raise rejection(reason)
        return cancelled_ids(outcome)

    # Faucet -------------------------------------------------------------------
    async def faucet(self, account: int, code: str, amount_text: str) -> dict[str, Any]:
        if not self.settings.faucet_enabled or self.settings.profile not in ("embedded", "local"):
            raise ApiError(404, "faucet_disabled", "the faucet is only available on embedded and local venues")
        asset = self.assets.get(code)
        if asset is None:
            raise rejection(Reason.UNKNOWN_ASSET, f"unknown asset {code[:16]!r}")
        try:
            amount = asset.to_units(amount_text)
        except (NumberFormatError, ArithmeticError, ValueError):
            raise rejection(Reason.INVALID_AMOUNT, f"amount must be a positive decimal string in units of "
                                                   f"{asset.unit.normalize():f}") from None
        if amount <= 0:
            raise rejection(Reason.INVALID_AMOUNT, "amount must be positive")
        per_request, per_hour = self._faucet_caps.get(code, (0, 0))
        if amount > per_request:
            raise ApiError(422, "faucet_limit", f"at most {asset.format(per_request)} {code} per request")
        now = time.monotonic()
        window = self._faucet.setdefault((account, code), deque())
        while window and window[0][0] <= now - HOUR:
            window.popleft()
        given = sum(a for _, a in window)
        if given + amount > per_hour:
            wait = HOUR - (now - window[0][0]) if window else HOUR
            raise ApiError(429, "faucet_limit", f"at most {asset.format(per_hour)} {code} per account per hour",
                           headers={"Retry-After": retry_after(wait)})
        entry = (now, amount)
        window.append(entry)
        try:
            outcome = await self.submit(deposit(0, 0, account, asset.id, amount))
        except BaseException:
            window.remove(entry)
            raise
        reason = rejected_reason(outcome)
        if reason:
            window.remove(entry)
            raise rejection(reason)
        available = self.deps.balance(account, asset.id)[0] if self.deps.balance else amount
        return {"asset": code, "amount": asset.format(amount), "available": asset.format(available)}
