"""Properties of the engine over random command sequences (Hypothesis).

After every command (see ``scenarios.invariants``):

* event positions: (seq, index) are the command's seq and 0, 1, ...; a replay
  yields nothing; a rejection is a command's only answer;
* the book is never crossed; levels are in strict price order; every resting
  order is a live limit order at its level's price;
* price-time priority: replaying the events on the book before, every trade
  takes the head of the best opposite level, within the taker's limit, never
  against an own order unless prevention is off; the replay must end equal to
  the book after, order by order, which pins first-in-first-out queues;
* fees are floor(received x bps / 10000);
* every asset is conserved (all accounts, fee account included, hold deposits
  minus withdrawals), every account's total is what the events say, nothing
  is ever negative;
* holds equal the live orders' needs: a limit buy holds leaves x price x
  quote-per-tick-lot, a sell leaves x base-per-lot, and per account the held
  balance is their sum;
* ``balance``, ``depth``, ``last_price``, ``sequence``, ``state_hash`` agree
  with the snapshot.

The runs are deterministic (``derandomize=True``, no example database) so CI
is stable; the sizes keep this file well under a minute on the python backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenarios.dsl import (
    ALICE,
    BOB,
    BTC,
    BTC_USD,
    CAROL,
    ETH,
    ETH_USD,
    FEES,
    FOK,
    GTC,
    GTD,
    IOC,
    LIMIT,
    MARKET,
    STOP_LIMIT,
    STOP_MARKET,
    USD,
    amend,
    btc_usd,
    cancel,
    deposit,
    eth_usd,
    mass_cancel,
    order,
    tick,
    withdraw,
)
from scenarios.runner import Player

from core.commands import Command, CommandKind
from core.events import EventKind
from core.snapshot import ORDER_FIELDS, ShardState

pytestmark = pytest.mark.slow

INSTRUMENTS = (
    btc_usd(maker_fee_bps=20, taker_fee_bps=100),
    eth_usd(maker_fee_bps=10, taker_fee_bps=25, price_band_bps=1_000, reference_price=100),
)
SYMBOLS = (BTC_USD, ETH_USD)
ACCOUNTS = (ALICE, BOB, CAROL)
ASSETS = (BTC, USD, ETH)
FUNDS = {USD: 60_000, BTC: 300, ETH: 100_000}

F = {name: i for i, name in enumerate(ORDER_FIELDS)}

PROFILE = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Abstract operations, resolved into commands while running ----------------
prices = st.integers(-12, 12).map(lambda d: 100 + d // 2 if abs(d) < 10 else 100 + d)
quantities = st.sampled_from([1, 1, 2, 3, 5, 8, 13])
accounts = st.sampled_from(ACCOUNTS)
symbols = st.sampled_from(SYMBOLS)
sides = st.sampled_from([0, 1])
stps = st.sampled_from([0, 0, 0, 1, 2, 3, 4])

limit_ops = st.tuples(st.just("limit"), accounts, symbols, sides, quantities, prices,
                      st.sampled_from([GTC, GTC, GTC, IOC, FOK, GTD]), st.booleans(), stps,
                      st.integers(1, 30))
market_ops = st.tuples(st.just("market"), accounts, symbols, sides, quantities,
                       st.sampled_from([IOC, IOC, FOK]), stps)
quote_ops = st.tuples(st.just("quote"), accounts, symbols, st.integers(1, 3_000), st.sampled_from([0, 1, 2, 3]))
stop_ops = st.tuples(st.just("stop"), accounts, symbols, sides, quantities, prices, prices,
                     st.sampled_from([STOP_LIMIT, STOP_MARKET]), st.booleans(), stps, st.integers(0, 2_000))
cancel_ops = st.tuples(st.just("cancel"), st.integers(0, 10**6), st.booleans())
amend_ops = st.tuples(st.just("amend"), st.integers(0, 10**6), st.booleans(),
                      st.sampled_from([0, 0, -2, -1, 1, 2, 15]), st.sampled_from([0, 0, 1, 2, 4, 9]))
mass_ops = st.tuples(st.just("mass"), accounts, st.sampled_from([0, BTC_USD, ETH_USD]))
tick_ops = st.tuples(st.just("tick"), st.integers(0, 40))
funds_ops = st.tuples(st.sampled_from(["deposit", "withdraw"]), st.sampled_from((*ACCOUNTS, FEES)),
                      st.sampled_from(ASSETS), st.integers(-5, 5_000))
replay_ops = st.tuples(st.just("replay"), st.integers(0, 10**6))
cross_ops = st.tuples(st.just("cross"), accounts, symbols, sides, quantities, st.integers(-1, 2),
                      st.sampled_from([GTC, IOC, FOK]), stps)
garbage_ops = st.tuples(st.just("garbage"), st.lists(st.integers(-3, 110), min_size=13, max_size=13))



def weighted(*choices: tuple[int, st.SearchStrategy[tuple]]) -> st.SearchStrategy[tuple]:
    """Pick a strategy with the given relative weights, then draw from it."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(table).flatmap(lambda strategy: strategy)


operation = weighted(
    (30, limit_ops), (12, cross_ops), (10, stop_ops), (4, market_ops), (3, quote_ops), (6, cancel_ops),
    (8, amend_ops), (1, mass_ops), (4, tick_ops), (4, funds_ops), (2, replay_ops), (3, garbage_ops),
)


@dataclass
class Run:
    """Turns abstract operations into commands with increasing seq and time."""

    seq: int = 0
    time: int = 0

    def __post_init__(self) -> None:
        self.placed: list[Command] = []
        self.issued: list[Command] = []

    def funding(self) -> list[Command]:
        out = []
        for acct in ACCOUNTS:
            for asset, amount in FUNDS.items():
                out.append(self._next(lambda s, t, a=acct, x=asset, n=amount: deposit(s, a, x, n, t=t)))
        return out

    def _next(self, build: object, dt: int = 1) -> Command:
        self.seq += 1
        self.time += dt
        command: Command = build(self.seq, self.time)  # type: ignore[operator]
        self.issued.append(command)
        return command

    def _target(self, pick: int, state: ShardState | None) -> Command | None:
        """Mostly a live order (from the state before), sometimes any order ever placed."""
        live = sorted(o[F["order_id"]] for b in (state.books if state else []) for side in (b.bids, b.asks)
                      for lv in side for o in lv) + sorted(
            o[F["order_id"]] for b in (state.books if state else []) for o in (*b.buy_stops, *b.sell_stops))
        by_id = {c.seq: c for c in self.placed}
        if live and pick % 5:
            return by_id[live[pick % len(live)]]
        return self.placed[pick % len(self.placed)] if self.placed else None

    def command(self, op: tuple, state: ShardState | None = None) -> Command:
        kind = op[0]
        if kind == "cross":
            _, acct, sym, side, qty, through, tif, stp = op
            book = next((b for b in state.books if b.symbol == sym), None) if state else None
            opposite = (book.asks if side == 0 else book.bids) if book else []
            best = opposite[0][0][F["price"]] if opposite else 100
            price = best + through if side == 0 else best - through
            op = ("limit", acct, sym, side, qty, max(price, 1), tif, False, stp, 1)
            kind = "limit"
        if kind == "limit":
            _, acct, sym, side, qty, price, tif, post_only, stp, life = op
            expire = self.time + 1 + life if tif == GTD else 0
            c = self._next(lambda s, t: order(s, acct, side, t=t, symbol=sym, quantity=qty, price=price,
                                               order_type=LIMIT, time_in_force=tif, expire_time=expire,
                                               post_only=post_only and tif in (GTC, GTD), stp=stp))
        elif kind == "market":
            _, acct, sym, side, qty, tif, stp = op
            c = self._next(lambda s, t: order(s, acct, side, t=t, symbol=sym, quantity=qty, order_type=MARKET,
                                               time_in_force=tif, stp=stp))
        elif kind == "quote":
            _, acct, sym, quote, stp = op
            c = self._next(lambda s, t: order(s, acct, 0, t=t, symbol=sym, order_type=MARKET, time_in_force=IOC,
                                               quote_quantity=quote, stp=stp))
        elif kind == "stop":
            _, acct, sym, side, qty, price, stop, otype, gtd, stp, quote = op
            market = otype == STOP_MARKET
            by_quote = market and side == 0 and quote > 0
            tif = (IOC if market else (GTD if gtd else GTC))
            expire = self.time + 20 if tif == GTD else 0
            c = self._next(lambda s, t: order(s, acct, side, t=t, symbol=sym, quantity=0 if by_quote else qty,
                                               price=0 if market else price, order_type=otype, time_in_force=tif,
                                               quote_quantity=quote if by_quote else 0, stop_price=stop,
                                               expire_time=expire, stp=0 if by_quote and stp == 4 else stp))
        elif kind == "cancel":
            _, pick, owner = op
            target = self._target(pick, state)
            oid = target.seq if target else pick
            acct = target.account if (target and owner) else ACCOUNTS[pick % 3]
            c = self._next(lambda s, t: cancel(s, acct, oid, t=t))
        elif kind == "amend":
            _, pick, owner, dprice, qty = op
            target = self._target(pick, state)
            oid = target.seq if target else pick
            acct = target.account if (target and owner) else ACCOUNTS[pick % 3]
            price = (target.price + dprice) if (target and dprice and target.price) else 0
            c = self._next(lambda s, t: amend(s, acct, oid, price=price, qty=qty, t=t))
        elif kind == "mass":
            _, acct, sym = op
            c = self._next(lambda s, t: mass_cancel(s, acct, sym, t=t))
        elif kind == "tick":
            _, dt = op
            c = self._next(lambda s, t: tick(s, t), dt=dt)
        elif kind in ("deposit", "withdraw"):
            _, acct, asset, amount = op
            build = deposit if kind == "deposit" else withdraw
            c = self._next(lambda s, t: build(s, acct, asset, amount, t=t))
        elif kind == "replay":
            _, pick = op
            old = self.issued[pick % len(self.issued)]
            self.issued.append(old)
            return old
        else:  # garbage: any field values, mostly invalid
            _, v = op
            c = self._next(lambda s, t: Command(1 + v[0] % 8, s, t, v[1] % 5 + ALICE - 1, v[2] % 3 + 6, v[3], v[4] % 3,
                                                v[5] % 5, v[6] % 5, v[7], v[8] % 20, v[9] if v[9] > 50 else 0,
                                                v[10] if v[10] > 60 else 0, v[11] if v[11] > 100 else 0,
                                                v[12] % 3 if v[12] < 5 else 0, v[0] % 6))
        if c.kind == CommandKind.NEW_ORDER:
            self.placed.append(c)
        return c


def play_ops(backend: str, ops: list[tuple]) -> Player:
    player = Player(backend, INSTRUMENTS)
    run = Run()
    for command in run.funding():
        player.submit(command)
    for op in ops:
        command = run.command(op, player.state)
        before, current = player.engine.state_hash(), player.engine.sequence
        events = player.submit(command)  # every invariant is checked here
        if command.seq <= current:  # a replay changes nothing
            assert events == [] and player.engine.state_hash() == before
    player.restart_from_snapshot()  # the final state survives a snapshot round trip exactly
    return player


@PROFILE
@given(ops=st.lists(operation, min_size=30, max_size=80))
def test_every_invariant_holds_after_every_command(backend: str, ops: list[tuple]) -> None:
    play_ops(backend, ops)


# A narrower mix: one instrument, two accounts, a few prices, many stops and
# self-trade modes, so queues, cascades and prevention interact densely.
dense_limit = st.tuples(st.just("limit"), st.sampled_from((ALICE, BOB)), st.just(BTC_USD), sides,
                        st.sampled_from([1, 2, 3]), st.integers(98, 102), st.sampled_from([GTC, GTC, IOC, FOK, GTD]),
                        st.booleans(), stps, st.integers(1, 5))
dense_stop = st.tuples(st.just("stop"), st.sampled_from((ALICE, BOB)), st.just(BTC_USD), sides,
                       st.sampled_from([1, 2]), st.integers(97, 103), st.integers(98, 102),
                       st.sampled_from([STOP_LIMIT, STOP_MARKET]), st.booleans(), stps, st.integers(0, 400))
dense_market = st.tuples(st.just("market"), st.sampled_from((ALICE, BOB)), st.just(BTC_USD), sides,
                         st.sampled_from([1, 2, 4]), st.sampled_from([IOC, FOK]), stps)
dense_cross = st.tuples(st.just("cross"), st.sampled_from((ALICE, BOB)), st.just(BTC_USD), sides,
                        st.sampled_from([1, 2, 3]), st.integers(0, 1), st.sampled_from([GTC, IOC, FOK]), stps)
dense_operation = weighted(
    (30, dense_limit), (12, dense_cross), (12, dense_stop), (4, dense_market), (8, amend_ops), (5, cancel_ops),
    (3, tick_ops),
)


@PROFILE
@given(ops=st.lists(dense_operation, min_size=30, max_size=70))
def test_invariants_hold_in_a_dense_book_with_stops_and_self_trade_prevention(backend: str, ops: list[tuple]) -> None:
    play_ops(backend, ops)


@settings(PROFILE, max_examples=60)
@given(ops=st.lists(operation, min_size=10, max_size=40), cut=st.integers(0, 40),
       more=st.lists(operation, min_size=5, max_size=15))
def test_a_restored_engine_behaves_exactly_like_the_original(backend: str, ops: list[tuple], cut: int,
                                                           more: list[tuple]) -> None:
    original = Player(backend, INSTRUMENTS)
    run = Run()
    funding = run.funding()
    commands = funding + [run.command(op) for op in ops + more]
    commands.append(tick(run.seq + 1, run.time + 10_000))  # every GTD order expires in both
    split = len(funding) + min(cut, len(ops))
    for c in commands[:split]:
        original.engine.submit(c)
    restored = Player(backend, INSTRUMENTS)
    restored.engine.restore(original.engine.snapshot())
    assert restored.engine.snapshot() == original.engine.snapshot()
    assert restored.engine.state_hash() == original.engine.state_hash()
    for c in commands[split:]:
        assert [tuple(e) for e in restored.engine.submit(c)] == [tuple(e) for e in original.engine.submit(c)]
    assert restored.engine.state_hash() == original.engine.state_hash()


@settings(PROFILE, max_examples=40)
@given(ops=st.lists(operation, min_size=20, max_size=60))
def test_trades_report_the_last_price_and_accepted_ids_are_command_seqs(backend: str, ops: list[tuple]) -> None:
    player = Player(backend, INSTRUMENTS)
    run = Run()
    for c in run.funding():
        player.submit(c)
    for op in ops:
        command = run.command(op, player.state)
        events = player.submit(command)
        trades = [e for e in events if e.kind == EventKind.TRADE]
        for symbol in SYMBOLS:
            mine = [e for e in trades if e.symbol == symbol]
            if mine:
                assert player.engine.last_price(symbol) == mine[-1].price
        for e in events:
            if e.kind == EventKind.ACCEPTED:
                assert e.order_id == command.seq
