"""A deterministic, seeded order-flow workload for the engine benchmarks.

One instrument (``BTC-USD``, symbol 1), several funded accounts, and a stream
of commands with this mix (exact per block of 100 commands, shuffled inside
the block):

=========  ====  ============================================================
passive     60%  GTC limit around the mid, on the tick grid: ``u**4 * 150``
                 ticks (u uniform) behind the mid, so most land at or near
                 the touch and a thin tail reaches 150 ticks; clamped so that
                 it never crosses
cancel      30%  cancel of an order that is resting at that moment (chosen
                 uniformly among the live resting orders)
crossing     7%  GTC limit priced 0..2 ticks through the opposite touch; it
                 always trades, and in about 1 case in 10 rests a remainder
market       3%  IOC market order by quantity, sweeping about 3 levels (a buy
                 holds its whole available quote balance while it runs)
=========  ====  ============================================================

Sizes are in lots: passive 1..100 (skewed small, mean ~34); aggressive orders
are sized in "average resting orders" and scaled by how far the book is from
``target_resting`` orders (a proportional controller), which keeps the book at
about 4,300 resting orders over about 310 levels, with a spread of about two
ticks and ~380 trades per 1,000 commands (default seed and config).

The generator runs the pure-Python reference engine (``core.matching``) on
every command it emits and reads the events back, so a cancel always names an
order that really rests, the touch it prices against is the real one, and the
stream's expected event count and final state hash are known. A latent fair
value drifts by a tick now and then (1% of commands) and the side of the
aggressive orders leans towards it, so the mid drifts slowly with it.

Accounts are funded far beyond anything the stream can spend: every order
still goes through the full risk path (hold on acceptance, settlement,
release), but none is rejected; the generator raises if any command is. Self
trade prevention is ``NONE`` on every order, so two orders of one account
simply trade.

Everything is derived from ``random.Random(seed).random()`` and integer or
exact float arithmetic (no ``log``/``exp``), so a seed gives the same stream on
every platform. Streams are prefix-stable: ``generate(n1, s)`` is a prefix of
``generate(n2, s)`` for ``n1 < n2``.

Entry points: ``build(n, seed)`` (everything: instruments, set-up commands,
measured commands, stats), ``generate(n, seed)`` (the measured commands only)
and ``preamble(seed)`` (instruments and the set-up commands to apply before
``generate``'s commands: the deposits, then the orders that build the book).
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
from dataclasses import asdict, dataclass, field
from typing import Any

from core.commands import Command, CommandKind, OrderType, Side, TimeInForce, cancel, deposit, new_order
from core.events import Event, EventKind, Reason
from core.instrument import Asset, Instrument, make_instrument
from core.matching import ReferenceEngine

SYMBOL = 1
BASE = Asset(1, "BTC", 8)
QUOTE = Asset(2, "USD", 6)
REFERENCE_PRICE = 100_000
"""Initial fair value in ticks (1000.00 USD)."""
T0 = 1_700_000_000_000_000_000
"""Timestamp of sequence 0; every command is stamped ``T0 + seq * STEP_NS``."""
STEP_NS = 1_000
DEFAULT_SEED = 42

PASSIVE, CANCEL, CROSSING, MARKET = 0, 1, 2, 3
CATEGORIES = ("passive", "cancel", "crossing", "market")

_BUY = int(Side.BUY)
_SELL = int(Side.SELL)
_NEW_ORDER = int(CommandKind.NEW_ORDER)
_LIMIT = int(OrderType.LIMIT)
_MARKET = int(OrderType.MARKET)
_IOC = int(TimeInForce.IOC)
_TRADE = int(EventKind.TRADE)
_BOOK = int(EventKind.BOOK)
_REJECTED = int(EventKind.REJECTED)
_CANCELLED = int(EventKind.CANCELLED)


@dataclass(frozen=True)
class Config:
    """Shape of the workload. The defaults are the benchmark's workload."""

    accounts: int = 16
    quote_deposit: int = 10**14
    """Per account, in micro-USD (100 M USD): thousands of times what it can spend."""
    base_deposit: int = 10**13
    """Per account, in satoshi (100 k BTC)."""
    mix: tuple[int, int, int, int] = (60, 30, 7, 3)
    """Commands per block of 100: passive, cancel, crossing, market."""
    target_resting: int = 4_000
    """Resting orders the size controller steers to (and the priming places)."""
    depth_ticks: int = 150
    """Passive orders land up to this many ticks behind the fair value."""
    placement_skew: int = 4
    """A passive order's distance from the mid is ``u ** placement_skew * depth_ticks`` (u uniform in [0, 1))."""
    max_lots: int = 100
    """Passive sizes are 1..max_lots lots, skewed small (mean about max_lots / 3)."""
    crossing_orders_hit: float = 2.0
    """A crossing limit is sized to take about this many average resting orders."""
    crossing_rest_probability: float = 0.25
    """When a crossing limit is bigger than what rests within its price, it keeps its size (and
    rests the remainder) with this probability; otherwise it is cut to take exactly that."""
    market_orders_hit: float = 5.0
    """A market order is sized to take about this many (it sweeps a level or more)."""
    drift_per_command: float = 0.01
    """Probability that the fair value moves by one tick (up or down) per command."""
    warmup_commands: int = 20_000
    """Mixed-flow commands in the set-up, after the priming, to reach the steady state."""


@dataclass
class Stats:
    """What the measured part of a stream does (set-up excluded)."""

    seed: int = 0
    commands: int = 0
    setup_commands: int = 0
    mix: dict[str, int] = field(default_factory=dict)
    mix_pct: dict[str, float] = field(default_factory=dict)
    events: int = 0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    trades: int = 0
    trades_per_1000: float = 0.0
    crossing_traded_pct: float = 0.0
    crossing_rested_pct: float = 0.0
    market_levels_swept_mean: float = 0.0
    rejected: int = 0
    resting_orders_end: int = 0
    levels_end: int = 0
    bid_levels_end: int = 0
    ask_levels_end: int = 0
    resting_orders_min: int = 0
    resting_orders_mean: float = 0.0
    resting_orders_max: int = 0
    levels_min: int = 0
    levels_mean: float = 0.0
    levels_max: int = 0
    spread_ticks_mean: float = 0.0
    mid_start: int = 0
    mid_end: int = 0
    mid_min: int = 0
    mid_max: int = 0
    last_seq: int = 0
    state_hash: str = ""
    """The reference engine's state hash after set-up and all commands."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few human lines."""
        mix = ", ".join(f"{name} {self.mix_pct.get(name, 0.0):.1f}%" for name in CATEGORIES)
        return "\n".join([
            f"workload: seed {self.seed}, {self.commands:,} commands after {self.setup_commands:,} set-up commands "
            f"(deposits, book priming, warm-in; applied before any timer)",
            f"  mix: {mix}",
            f"  events: {self.events:,} ({self.events / max(self.commands, 1):.2f} per command); "
            f"trades: {self.trades_per_1000:.0f} per 1000 commands; rejected: {self.rejected}",
            f"  crossing limits that traded: {self.crossing_traded_pct:.1f}% (rested a remainder: "
            f"{self.crossing_rested_pct:.1f}%); market orders sweep {self.market_levels_swept_mean:.2f} levels on average",
            f"  resting orders: {self.resting_orders_end:,} at the end (min {self.resting_orders_min:,}, "
            f"mean {self.resting_orders_mean:,.0f}, max {self.resting_orders_max:,})",
            f"  active levels: {self.levels_end} at the end ({self.bid_levels_end} bid / {self.ask_levels_end} ask; "
            f"min {self.levels_min}, mean {self.levels_mean:.0f}, max {self.levels_max}); "
            f"mean spread {self.spread_ticks_mean:.1f} ticks",
            f"  mid (ticks): {self.mid_start:,} -> {self.mid_end:,} (range {self.mid_min:,}..{self.mid_max:,})",
        ])


@dataclass
class Workload:
    seed: int
    config: Config
    instruments: list[Instrument]
    setup: list[Command]
    """Apply these first (before any timer): deposits, then the orders that build the book."""
    commands: list[Command]
    """The measured stream; sequence numbers continue the set-up's."""
    stats: Stats


def instruments() -> list[Instrument]:
    """The one instrument of the workload: BTC-USD, tick 0.01 USD, lot 0.0001 BTC.

    A 5% price band around the last trade and maker/taker fees of 1/5 bps,
    so the band check and the fee arithmetic run on every order and trade.
    """
    return [make_instrument(
        SYMBOL, "BTC-USD", BASE, QUOTE, "0.01", "0.0001",
        price_band_bps=500, maker_fee_bps=1, taker_fee_bps=5, reference_price=REFERENCE_PRICE,
    )]


def _plain(command: Command) -> Command:
    """The command with its kind as a plain ``int`` (the builders give a ``CommandKind``), as a
    journal or a NumPy batch delivers it: CPython's fast paths compare exact ints only."""
    return tuple.__new__(Command, (int(command[0]), *command[1:]))


def funding_commands(config: Config = Config()) -> list[Command]:
    """Deposits of both assets to accounts 1..accounts, sequences 1, 2, ..."""
    out = []
    seq = 0
    for account in range(1, config.accounts + 1):
        for asset, amount in ((QUOTE.id, config.quote_deposit), (BASE.id, config.base_deposit)):
            seq += 1
            out.append(_plain(deposit(seq, T0 + seq * STEP_NS, account, asset, amount)))
    return out


class _Generator:
    def __init__(self, seed: int, config: Config) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.engine = ReferenceEngine()
        for inst in instruments():
            self.engine.add_instrument(inst)
        self.seq = 0
        self.fair = REFERENCE_PRICE
        # Live resting orders: a list for O(1) uniform choice, positions for O(1) removal.
        self.live: list[int] = []
        self.live_at: dict[int, int] = {}
        self.owner: dict[int, int] = {}
        # The book as the BOOK events describe it: price -> level total, and sorted prices.
        self.level_total: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.level_keys: tuple[list[int], list[int]] = ([], [])
        self.mean_lots = 1 + (config.max_lots - 1) / 3
        self.reset_stats()

    def reset_stats(self) -> None:
        self.counts = [0, 0, 0, 0]
        self.events = 0
        self.by_kind: dict[int, int] = {}
        self.trades = 0
        self.rejected = 0
        self.crossing_traded = 0
        self.crossing_rested = 0
        self.market_levels = 0
        self.samples: list[tuple[int, int, int]] = []
        self.mid_start = self.fair
        self.mid_min = self.mid_max = self.fair

    # Book model -----------------------------------------------------------
    def _add_live(self, order_id: int, account: int) -> None:
        self.live_at[order_id] = len(self.live)
        self.live.append(order_id)
        self.owner[order_id] = account

    def _drop_live(self, order_id: int) -> None:
        at = self.live_at.pop(order_id)
        last = self.live.pop()
        if last != order_id:
            self.live[at] = last
            self.live_at[last] = at
        del self.owner[order_id]

    def _apply(self, command: Command) -> list[Event]:
        events = self.engine.submit(command)
        self.events += len(events)
        by_kind = self.by_kind
        taker_left = command[10]
        for e in events:
            kind = e[0]
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if kind == _BOOK:
                side, price, total = e[6], e[7], e[8]
                totals = self.level_total[side]
                keys = self.level_keys[side]
                if total:
                    if price not in totals:
                        insort(keys, price)
                    totals[price] = total
                elif price in totals:
                    del totals[price]
                    del keys[bisect_left(keys, price)]
            elif kind == _TRADE:
                self.trades += 1
                taker_left = e[9]
                if not e[12]:
                    self._drop_live(e[10])
            elif kind == _REJECTED:
                self.rejected += 1
                raise RuntimeError(
                    f"workload bug: command {command} was rejected ({Reason(e[15]).name}); "
                    "the benchmark stream must be accepted in full"
                )
        if command[0] == _NEW_ORDER and command[7] == _LIMIT and taker_left:
            self._add_live(command[1], command[3])
        return events

    def _best_bid(self) -> int:
        keys = self.level_keys[_BUY]
        return keys[-1] if keys else 0

    def _best_ask(self) -> int:
        keys = self.level_keys[_SELL]
        return keys[0] if keys else 0

    # Command builders -------------------------------------------------------
    def _stamp(self) -> tuple[int, int]:
        self.seq += 1
        return self.seq, T0 + self.seq * STEP_NS

    def _account(self) -> int:
        return 1 + int(self.rng.random() * self.config.accounts)

    def _passive(self) -> Command:
        rng = self.rng
        side = _BUY if rng.random() < 0.5 else _SELL
        u = rng.random()
        skewed = u
        for _ in range(self.config.placement_skew - 1):
            skewed *= u  # u ** skew by multiplication: bit-exact everywhere, unlike pow()
        offset = int(skewed * self.config.depth_ticks)
        u = rng.random()
        quantity = 1 + int(u * u * self.config.max_lots)
        bid, ask = self._best_bid(), self._best_ask()
        if side == _BUY:
            price = ((bid + ask) // 2 if bid and ask else self.fair) - offset
            if ask and price >= ask:
                price = ask - 1
        else:
            price = ((bid + ask + 1) // 2 if bid and ask else self.fair) + offset
            if bid and price <= bid:
                price = bid + 1
        seq, time = self._stamp()
        return _plain(new_order(seq, time, self._account(), SYMBOL, side, quantity, price))

    def _aggressive_side(self) -> int:
        """Buy or sell, leaning towards moving the book's mid to the fair value."""
        bid, ask = self._best_bid(), self._best_ask()
        p_buy = 0.5
        if bid and ask:
            lean = (self.fair - (bid + ask) / 2) / 10
            p_buy += max(-0.3, min(0.3, lean))
        return _BUY if self.rng.random() < p_buy else _SELL

    def _aggressive_quantity(self, orders_hit: float) -> int:
        """About ``orders_hit`` average resting orders, scaled by how far the book is from its target size."""
        ratio = len(self.live) / self.config.target_resting
        factor = max(0.25, min(4.0, ratio * ratio))
        return max(1, int((0.25 + 1.5 * self.rng.random()) * self.mean_lots * orders_hit * factor))

    def _available(self, side: int, limit: int) -> int:
        """Open quantity resting on ``side`` at prices an opposite order limited at ``limit`` reaches."""
        keys = self.level_keys[side]
        totals = self.level_total[side]
        total = 0
        if side == _SELL:
            for price in keys:
                if price > limit:
                    break
                total += totals[price]
        else:
            for price in reversed(keys):
                if price < limit:
                    break
                total += totals[price]
        return total

    def _crossing(self) -> Command:
        side = self._aggressive_side()
        through = int(self.rng.random() * 3)
        quantity = self._aggressive_quantity(self.config.crossing_orders_hit)
        if side == _BUY:
            ask = self._best_ask()
            price = ask + through if ask else self.fair + 1
            within = self._available(_SELL, price)
        else:
            bid = self._best_bid()
            price = bid - through if bid else self.fair - 1
            within = self._available(_BUY, price)
        if quantity > within and self.rng.random() >= self.config.crossing_rest_probability:
            quantity = max(within, 1)
        seq, time = self._stamp()
        return _plain(new_order(seq, time, self._account(), SYMBOL, side, quantity, price))

    def _market(self) -> Command:
        side = self._aggressive_side()
        quantity = self._aggressive_quantity(self.config.market_orders_hit)
        seq, time = self._stamp()
        return _plain(new_order(seq, time, self._account(), SYMBOL, side, quantity, 0, _MARKET, _IOC))

    def _cancel(self) -> Command:
        order_id = self.live[int(self.rng.random() * len(self.live))]
        account = self.owner[order_id]
        seq, time = self._stamp()
        return _plain(cancel(seq, time, account, order_id))

    # Streams ----------------------------------------------------------------
    def _drift(self) -> None:
        r = self.rng.random()
        p = self.config.drift_per_command
        if r < p / 2:
            self.fair += 1
        elif r < p:
            self.fair -= 1
        if self.fair < self.mid_min:
            self.mid_min = self.fair
        elif self.fair > self.mid_max:
            self.mid_max = self.fair

    def _one(self, category: int) -> Command:
        self._drift()
        if category == CANCEL and not self.live:
            category = PASSIVE  # only possible on an empty book, which the priming rules out
        self.counts[category] += 1
        if category == PASSIVE:
            command = self._passive()
            self._apply(command)
        elif category == CANCEL:
            command = self._cancel()
            self._drop_live(command[5])
            self._apply(command)
        elif category == CROSSING:
            command = self._crossing()
            events = self._apply(command)
            self.crossing_traded += any(e[0] == _TRADE for e in events)
            self.crossing_rested += command[1] in self.live_at
        else:
            command = self._market()
            events = self._apply(command)
            self.market_levels += sum(1 for e in events if e[0] == _BOOK)
        return command

    def _block(self) -> list[int]:
        """One block of 100 categories in the configured mix, Fisher-Yates shuffled with ``random()``."""
        block = [c for c, count in enumerate(self.config.mix) for _ in range(count)]
        rng = self.rng
        for i in range(len(block) - 1, 0, -1):
            j = int(rng.random() * (i + 1))
            block[i], block[j] = block[j], block[i]
        return block

    def mixed(self, n: int, sample_every: int = 0) -> list[Command]:
        out: list[Command] = []
        while len(out) < n:
            for category in self._block():
                out.append(self._one(category))
                if sample_every and len(out) % sample_every == 0:
                    bid, ask = self._best_bid(), self._best_ask()
                    levels = len(self.level_keys[0]) + len(self.level_keys[1])
                    self.samples.append((len(self.live), levels, ask - bid if bid and ask else 0))
                if len(out) == n:
                    break
        return out

    def priming(self) -> list[Command]:
        out = []
        for _ in range(self.config.target_resting):
            command = self._passive()
            self._apply(command)
            out.append(command)
        return out


def build(n: int, seed: int = DEFAULT_SEED, config: Config = Config()) -> Workload:
    """Generate the set-up and ``n`` measured commands, with their stats."""
    if n < 0:
        raise ValueError("n must be >= 0")
    gen = _Generator(seed, config)
    setup = funding_commands(config)
    for command in setup:
        gen.engine.submit(command)
    gen.seq = len(setup)
    setup += gen.priming()
    setup += gen.mixed(config.warmup_commands)
    gen.reset_stats()
    commands = gen.mixed(n, sample_every=max(1, min(1_000, n // 100 or 1)))
    stats = _stats(gen, seed, n, len(setup))
    return Workload(seed, config, instruments(), setup, commands, stats)


def generate(n: int, seed: int = DEFAULT_SEED) -> list[Command]:
    """The ``n`` measured commands of the workload (apply ``preamble(seed)``'s commands first)."""
    return build(n, seed).commands


def preamble(seed: int = DEFAULT_SEED) -> tuple[list[Instrument], list[Command]]:
    """The instruments to register and the set-up commands to apply before ``generate(n, seed)``.

    The set-up is the deposits (``funding_commands()``), then ``target_resting``
    passive orders that build the book, then ``warmup_commands`` of the mixed
    flow that bring it to its steady state; it does not depend on ``n``.
    """
    workload = build(0, seed)
    return workload.instruments, workload.setup


def _stats(gen: _Generator, seed: int, n: int, setup: int) -> Stats:
    s = Stats(seed=seed, commands=n, setup_commands=setup)
    s.mix = dict(zip(CATEGORIES, gen.counts, strict=True))
    s.mix_pct = {name: 100.0 * count / max(n, 1) for name, count in s.mix.items()}
    s.events = gen.events
    s.events_by_kind = {EventKind(k).name: v for k, v in sorted(gen.by_kind.items())}
    s.trades = gen.trades
    s.trades_per_1000 = 1000.0 * gen.trades / max(n, 1)
    crossings = max(gen.counts[CROSSING], 1)
    s.crossing_traded_pct = 100.0 * gen.crossing_traded / crossings
    s.crossing_rested_pct = 100.0 * gen.crossing_rested / crossings
    s.market_levels_swept_mean = gen.market_levels / max(gen.counts[MARKET], 1)
    s.rejected = gen.rejected
    s.resting_orders_end = len(gen.live)
    s.bid_levels_end = len(gen.level_keys[_BUY])
    s.ask_levels_end = len(gen.level_keys[_SELL])
    s.levels_end = s.bid_levels_end + s.ask_levels_end
    if gen.samples:
        resting = [r for r, _, _ in gen.samples]
        levels = [lv for _, lv, _ in gen.samples]
        spreads = [sp for _, _, sp in gen.samples if sp]
        s.resting_orders_min, s.resting_orders_max = min(resting), max(resting)
        s.resting_orders_mean = sum(resting) / len(resting)
        s.levels_min, s.levels_max = min(levels), max(levels)
        s.levels_mean = sum(levels) / len(levels)
        s.spread_ticks_mean = sum(spreads) / len(spreads) if spreads else 0.0
    else:
        s.resting_orders_min = s.resting_orders_max = s.resting_orders_end
        s.resting_orders_mean = float(s.resting_orders_end)
        s.levels_min = s.levels_max = s.levels_end
        s.levels_mean = float(s.levels_end)
    s.mid_start, s.mid_end, s.mid_min, s.mid_max = gen.mid_start, gen.fair, gen.mid_min, gen.mid_max
    s.last_seq = gen.seq
    s.state_hash = gen.engine.state_hash()
    return s


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m bench.workload", description="Generate the workload and print its stats.")
    parser.add_argument("--commands", "-n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    workload = build(args.commands, args.seed)
    print(workload.stats.summary())
    print(f"  generated in {time.perf_counter() - started:.1f} s; events by kind: {workload.stats.events_by_kind}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
