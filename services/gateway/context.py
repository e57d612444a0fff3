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
    hour, shared by every gateway process in the local profile (``services.gateway.faucet_window``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from core.commands import Command, CommandKind, deposit, mass_cancel
from core.events import Reason
from core.instrument import Asset, Instrument
from core.numbers import NumberFormatError
from services.gateway.auth import AuthService
from services.gateway.errors import ApiError, rejection
from services.gateway.faucet_window import FaucetWindow, InMemoryFaucetWindow
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
from services.matcher.shard import shard_of_seq
from services.persistence.store import REJECTED, OrderView, Registry

log = logging.getLogger("rialto.gateway")

_COMMAND_NAMES = {int(k): k.name.lower() for k in CommandKind}


class ProjectionProgress(Protocol):
    """How far the projection has got (``control.projector.ProjectionFollower`` is one; with several
    shards, ``services.persistence.redis_progress.RedisProjectionProgress`` follows each shard's)."""

    def reached(self, seq: int) -> bool:
        """Has the projection applied ``seq`` (of the shard that stamped it)?"""
        ...

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until the projection has applied ``seq``; False after ``timeout`` seconds."""
        ...


class OrderIdClaims(Protocol):
    """Client order ids unique per account across gateway processes (local profile: Redis)."""

    async def claim(self, account: int, client_order_id: str) -> bool: ...

    async def store_result(self, account: int, client_order_id: str, status: int, body: bytes) -> None: ...

    async def result(self, account: int, client_order_id: str, timeout: float) -> tuple[int, bytes] | None: ...

    async def release(self, account: int, client_order_id: str) -> None: ...


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
    shards: list[str] = field(default_factory=lambda: ["main"])
    """The engine shards' names, in shard id order (transfers name them)."""


@dataclass
class GatewayDeps:
    instruments: list[Instrument]
    intake: Intake
    market: MarketData
    hub: Hub
    auth: AuthService
    reader: Any  # a ProjectionStore: SqliteStore (embedded), PostgresStore (local, aws)
    projection: ProjectionProgress
    recovery_floor: int | dict[int, int]
    """The engine's seq at start (per shard with several): reads wait for the projection to reach it."""
    ready: Callable[[], bool]
    status: Callable[[], Coroutine[Any, Any, dict[str, Any]]]
    balance: Callable[[int, int], tuple[int, int]] | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    limiter: RateLimiter = field(default_factory=InMemoryRateLimiter)
    faucet_window: FaucetWindow = field(default_factory=InMemoryFaucetWindow)
    before_read: Callable[[], Coroutine[Any, Any, None]] | None = None
    """Several gateway processes: wait until this one has followed the outcomes that exist now, so it knows
    what another process acknowledged to the same account (cross-process read-your-writes)."""
    claims: OrderIdClaims | None = None
    """Set where several gateway processes share the venue: the cross-process client order id claims."""


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
        self.acked: dict[int, dict[int, int]] = {}
        """account -> {shard: the last seq acknowledged to it}."""
        self._inflight: dict[tuple[int, str], asyncio.Future[Result]] = {}
        self._responses: OrderedDict[tuple[int, str], Result] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._faucet_caps = {
            code: (self._cap(code, per_request), self._cap(code, settings.faucet_per_hour.get(code, "0")))
            for code, per_request in settings.faucet_per_request.items()
        }

    def _cap(self, code: str, text: str) -> int:
        asset = self.assets.get(code)
        return asset.to_units(text) if asset is not None else 0

    # Lookups ------------------------------------------------------------
    def _asset_amount(self, code: str, amount_text: str) -> tuple[Asset, int]:
        """The asset named ``code`` and a positive ``amount_text`` of it in units; a 422 for either wrong."""
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
        return asset, amount

    def instrument(self, symbol: str) -> Instrument:
        found = self.instruments.get(symbol)
        if found is None:
            raise rejection(Reason.UNKNOWN_SYMBOL, f"unknown symbol {symbol[:32]!r}")
        return found

    # Rate limits ----------------------------------------------------------
    async def _take(self, key: str, limit: Limit, cost: float) -> float:
        wait = self.limiter.take(key, limit, cost)
        if inspect.isawaitable(wait):  # a limiter shared by several processes (Redis) answers asynchronously
            wait = await wait
        return float(wait)

    async def limit_account(self, account: int, cost: float = 1.0) -> None:
        wait = await self._take(f"account:{account}", self.settings.account_limit, cost)
        if wait > 0:
            self.metrics.rate_limited.labels("account").inc()
            raise ApiError(429, "rate_limited", "too many requests for this account; slow down",
                           headers={"Retry-After": retry_after(wait)})

    async def limit_ip(self, ip: str, cost: float = 1.0) -> float:
        wait = await self._take(f"ip:{ip}", self.settings.ip_limit, cost)
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
        shards = self.acked.setdefault(account, {})
        shard = shard_of_seq(seq)
        if seq > shards.get(shard, 0):
            shards[shard] = seq

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
        if self.deps.before_read is not None and account is not None:
            await self.deps.before_read()
        floor = self.deps.recovery_floor
        targets = dict(floor) if isinstance(floor, dict) else {0: floor}
        if account is not None:
            for shard, seq in self.acked.get(account, {}).items():
                targets[shard] = max(targets.get(shard, 0), seq)
        projection = self.deps.projection
        for target in targets.values():
            if target <= 0 or projection.reached(target):
                continue
            if not await projection.wait_for(target, self.settings.read_your_writes):
                log.warning("projection behind: wanted seq %d", target, extra={"fields": {"wanted": target}})
                return False
        return True

    async def require_readable(self, account: int) -> None:
        """``readable``, or a 503 the client retries: an account's own history is never served without its
        acknowledged writes (a list missing an order it was told was placed reads as a lost order)."""
        if not await self.readable(account):
            raise ApiError(503, "not_ready", "order history is catching up; retry shortly",
                           headers={"Retry-After": "1"})

    async def settled(self, seq: int) -> bool:
        """Wait (bounded, as ``readable``) until the projection has applied ``seq``.

        Enough, instead of ``readable``, before reading an order that the command of ``seq`` closed (an
        accepted cancel): nothing after that seq changes the order's row, and everything before it in the
        shard (whatever any gateway acknowledged) is applied by then. It spares the cross-process catch-up
        round trip and the wait for the account's writes on other shards.
        """
        projection = self.deps.projection
        if seq <= 0 or projection.reached(seq):
            return True
        if not await projection.wait_for(seq, self.settings.read_your_writes):
            log.warning("projection behind: wanted seq %d", seq, extra={"fields": {"wanted": seq}})
            return False
        return True

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call the projection reader: on a thread where it is a network round trip (PostgreSQL, local
        profile) so the event loop serves other requests meanwhile; directly on SQLite (embedded), whose
        connection belongs to this thread."""
        if self.settings.profile == "local":
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

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
        claims = self.deps.claims
        won = False
        if claims is not None:
            # Another gateway process may hold this id: the first to claim it places the order, the others
            # answer with its result. A claim whose holder died without a result falls back to the projection.
            won = await claims.claim(account, coid)
            if not won:
                found = await claims.result(account, coid, self.settings.read_your_writes + 3.0)
                if found is not None:
                    return (found[0], msgspec.json.decode(found[1])), True
        await self.require_readable(account)
        view = self.deps.reader.get_order_by_client_id(account, coid)
        if view is not None:
            result = self.stored_result(view)
            replayed = True
        else:
            result = await self._place(command, coid)
            replayed = False
        if won and claims is not None:
            await claims.store_result(account, coid, result[0], msgspec.json.encode(result[1]))
        return result, replayed

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
        return [fill_json(f) for f in self.deps.reader.list_order_fills(account, order_id)]

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

    # Transfers between shards ---------------------------------------------------
    async def transfer(self, account: int, code: str, amount_text: str, from_name: str, to_name: str,
                       ) -> dict[str, Any]:
        from services.transfers import new_transfer_id, transfer_out

        shards = self.settings.shards
        if len(shards) < 2:
            raise ApiError(422, "single_shard", "this venue runs one engine shard: there is nothing to transfer between")
        for name in (from_name, to_name):
            if name not in shards:
                raise ApiError(422, "unknown_shard", f"unknown shard {name[:64]!r}; shards: {', '.join(shards)}")
        if from_name == to_name:
            raise ApiError(422, "same_shard", "from_shard and to_shard are the same")
        asset, amount = self._asset_amount(code, amount_text)
        transfer_id = new_transfer_id()
        command = transfer_out(account, asset.id, amount, transfer_id, shards.index(to_name))
        outcome = await self.submit_to(shards.index(from_name), command)
        reason = rejected_reason(outcome)
        if reason:
            raise rejection(reason)
        return {"transfer_id": str(transfer_id), "asset": code, "amount": asset.format(amount),
                "from_shard": from_name, "to_shard": to_name, "status": "in_transit"}

    async def submit_to(self, shard: int, command: Command) -> Outcome:
        """``submit`` to a named shard (a withdrawal whose asset several shards hold)."""
        intakes = getattr(self.deps.intake, "intakes", None)
        if intakes is None:
            return await self.submit(command)
        try:
            outcome: Outcome = await intakes[shard].submit(command)
        except IntakeClosed:
            raise ApiError(503, "shutting_down", "the venue is shutting down; retry shortly",
                           headers={"Retry-After": "1"}) from None
        if command.account > 0:
            self.acknowledge(command.account, outcome.seq)
        return outcome

    # Faucet -------------------------------------------------------------------
    async def faucet(self, account: int, code: str, amount_text: str) -> dict[str, Any]:
        if not self.settings.faucet_enabled:
            raise ApiError(404, "faucet_disabled", "the faucet is only available on embedded and local venues "
                                                   "(and aws venues on a simulated AWS endpoint)")
        asset, amount = self._asset_amount(code, amount_text)
        per_request, per_hour = self._faucet_caps.get(code, (0, 0))
        if amount > per_request:
            raise ApiError(422, "faucet_limit", f"at most {asset.format(per_request)} {code} per request")
        wait, grant = await self.deps.faucet_window.reserve(account, code, amount, per_hour)
        if grant is None:
            raise ApiError(429, "faucet_limit", f"at most {asset.format(per_hour)} {code} per account per hour",
                           headers={"Retry-After": retry_after(wait)})
        try:
            outcome = await self.submit(deposit(0, 0, account, asset.id, amount))
        except BaseException:
            await self.deps.faucet_window.cancel(account, code, grant)
            raise
        reason = rejected_reason(outcome)
        if reason:
            await self.deps.faucet_window.cancel(account, code, grant)
            raise rejection(reason)
        if self.deps.balance is not None:
            available = self.deps.balance(account, asset.id)[0]
        else:  # no engine in this process: the projection's balance, once it has this deposit
            await self.readable(account)
            found = [b for b in self.deps.reader.balances(account) if b.asset == code]
            return {"asset": code, "amount": asset.format(amount),
                    "available": found[0].available if found else asset.format(amount)}
        return {"asset": code, "amount": asset.format(amount), "available": asset.format(available)}
