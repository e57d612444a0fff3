"""Seeded generator of realistic random command streams, for differential tests.

A stream exercises every path of the engine: deposits for a handful of
accounts; new orders of every type, time in force, self-trade prevention mode
and post-only around a mid price that wanders, on two instruments with
non-trivial fees (one with a price band and a reference price, one without a
band and with amounts near the 64-bit bound); cancels and amends of live,
dead, foreign and unknown orders; mass cancels; ticks that move time far
enough for GTD orders to expire; withdrawals; replays of old sequence numbers;
and a few percent of deliberately invalid commands (bad side, zero quantity,
unknown symbol, unknown command kind, ...).

The stream depends on the seed only: ``generate(seed, n)`` is the same list of
``core.commands.Command`` on every run and every backend.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from core.commands import (
    Command,
    CommandKind,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    amend,
    cancel,
    deposit,
    mass_cancel,
    new_order,
    tick,
    withdraw,
)
from core.instrument import Asset, Instrument, make_instrument
from core.numbers import MAX_AMOUNT

BTC = Asset(1, "BTC", 8)
USD = Asset(2, "USD", 6)
ETH = Asset(5, "ETH", 18)

ACCOUNTS = (1, 2, 3, 4, 5, 6)
START_TIME = 1_700_000_000_000_000_000


def make_instruments() -> list[Instrument]:
    """Two markets that share the quote asset.

    ``BTC-USD`` (id 1): fees 3/7 bps on lots of 777,000 base units and 777
    quote units per tick-lot (so the floor of every fee matters), a 5% price
    band around a reference price.
    ``ETH-USD`` (id 7): no band, no reference price, a taker fee only, and a
    lot of 10**15 base units, so base amounts come close to the 2**62 bound.
    """
    btc_usd = make_instrument(
        1, "BTC-USD", BTC, USD, tick_size="0.1", lot_size="0.00777",
        min_quantity=1, max_quantity=1_000_000, max_price=10**8,
        price_band_bps=500, maker_fee_bps=3, taker_fee_bps=7, reference_price=20_000,
    )
    eth_usd = make_instrument(
        7, "ETH-USD", ETH, USD, tick_size="0.1", lot_size="0.001",
        min_quantity=2, max_quantity=4_000, max_price=10**7,
        price_band_bps=0, maker_fee_bps=0, taker_fee_bps=11, reference_price=0,
    )
    return [btc_usd, eth_usd]


@dataclass
class _Market:
    instrument: Instrument
    mid: int
    spread: int


@dataclass
class _State:
    rng: random.Random
    markets: list[_Market]
    seq: int = 0
    time: int = START_TIME
    placed: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=400))


def _weighted(rng: random.Random, table: list[tuple[int, int]]) -> int:
    total = sum(w for _, w in table)
    pick = rng.randrange(total)
    for value, weight in table:
        pick -= weight
        if pick < 0:
            return value
    return table[-1][0]


def _next(state: _State) -> tuple[int, int]:
    state.seq += 1
    state.time += state.rng.randrange(0, 2_000)
    return state.seq, state.time


def _remember(state: _State, command: Command) -> None:
    """Keep orders that may rest (or wait) as targets for cancels and amends."""
    if command.kind == CommandKind.NEW_ORDER and (
        command.time_in_force in (TimeInForce.GTC, TimeInForce.GTD) or command.order_type >= OrderType.STOP_LIMIT
    ):
        state.placed.append((command.seq, command.account, command.symbol))


def _new_order(state: _State) -> Command:
    rng = state.rng
    market = rng.choice(state.markets)
    inst = market.instrument
    seq, now = _next(state)
    account = rng.choice(ACCOUNTS)
    side = rng.randrange(2)
    otype = _weighted(rng, [(OrderType.LIMIT, 70), (OrderType.MARKET, 10), (OrderType.STOP_LIMIT, 10),
                            (OrderType.STOP_MARKET, 10)])
    is_market = otype in (OrderType.MARKET, OrderType.STOP_MARKET)
    if is_market:
        tif = _weighted(rng, [(TimeInForce.IOC, 80), (TimeInForce.FOK, 20)])
    else:
        tif = _weighted(rng, [(TimeInForce.GTC, 55), (TimeInForce.IOC, 12), (TimeInForce.FOK, 10),
                              (TimeInForce.GTD, 23)])
    stp = _weighted(rng, [(SelfTradePrevention.NONE, 40), (SelfTradePrevention.CANCEL_NEWEST, 15),
                          (SelfTradePrevention.CANCEL_OLDEST, 15), (SelfTradePrevention.CANCEL_BOTH, 15),
                          (SelfTradePrevention.DECREMENT, 15)])
    post_only = not is_market and tif in (TimeInForce.GTC, TimeInForce.GTD) and rng.random() < 0.15
    # Mostly passive prices a little away from the mid; sometimes crossing.
    sign = -1 if side == Side.BUY else 1
    roll = rng.random()
    if roll < 0.02:
        # Far from the mid: near or past the price band's edge.
        offset = rng.choice((-1, 1)) * rng.randrange(market.mid // 40, market.mid // 12)
    elif roll < 0.85:
        offset = sign * (market.spread + int(rng.expovariate(1 / 8)))
    else:
        offset = -sign * rng.randrange(0, 4 * market.spread + 8)
    price = 0 if is_market else max(1, market.mid + offset)
    lo = inst.min_quantity
    quantity = lo + (int(rng.expovariate(1 / 12)) if rng.random() < 0.95 else rng.randrange(50, 600))
    quantity = min(quantity, inst.max_quantity)
    quote_quantity = 0
    if is_market and side == Side.BUY and rng.random() < 0.3:
        quantity = 0
        quote_quantity = rng.randrange(1, 30) * market.mid * inst.quote_per_tick_lot
        tif = TimeInForce.IOC if rng.random() < 0.9 else tif
        if stp == SelfTradePrevention.DECREMENT and rng.random() < 0.8:
            stp = SelfTradePrevention.NONE
    stop_price = 0
    if otype in (OrderType.STOP_LIMIT, OrderType.STOP_MARKET):
        # Buy stops above the market, sell stops below; a few already reached.
        distance = rng.randrange(-2, 25)
        stop_price = max(1, market.mid - sign * distance)
    expire_time = now + rng.randrange(1_000, 3_000_000) if tif == TimeInForce.GTD else 0
    return new_order(
        seq, now, account, inst.id, side, quantity=quantity, price=price, order_type=otype, time_in_force=tif,
        quote_quantity=quote_quantity, stop_price=stop_price, expire_time=expire_time, post_only=post_only,
        stp=stp,
    )


def _invalid(state: _State) -> Command:
    """A command that some validation rule must refuse (or an odd valid edge case)."""
    rng = state.rng
    good = _new_order(state)
    seq, now = good.seq, good.time
    inst = rng.choice(state.markets).instrument
    variant = rng.randrange(24)
    if variant == 0:
        return good._replace(side=2)
    if variant == 1:
        return good._replace(quantity=0, quote_quantity=0)
    if variant == 2:
        return good._replace(symbol=rng.choice((0, 2, 99, -1)))
    if variant == 3:
        return good._replace(order_type=rng.choice((4, -1)))
    if variant == 4:
        return good._replace(time_in_force=rng.choice((4, -1)))
    if variant == 5:
        return good._replace(stp=rng.choice((5, -1)))
    if variant == 6:
        return good._replace(post_only=rng.choice((2, -1)))
    if variant == 7:
        return good._replace(account=rng.choice((0, -5)))
    if variant == 8:
        return good._replace(order_type=OrderType.LIMIT, price=rng.choice((0, -3, inst.max_price + 1)))
    if variant == 9:
        return good._replace(order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC, price=100)
    if variant == 10:
        return good._replace(order_type=OrderType.LIMIT, stop_price=50)
    if variant == 11:
        return good._replace(order_type=OrderType.STOP_LIMIT, stop_price=rng.choice((0, inst.max_price + 1)),
                             price=max(good.price, 1))
    if variant == 12:
        return good._replace(time_in_force=TimeInForce.GTD, expire_time=rng.choice((0, now - 5, now)))
    if variant == 13:
        return good._replace(time_in_force=TimeInForce.GTC, expire_time=now + 10)
    if variant == 14:
        return good._replace(quantity=inst.max_quantity + 1)
    if variant == 15:
        return good._replace(order_type=OrderType.MARKET, side=Side.BUY, price=0, quantity=0,
                             quote_quantity=rng.choice((MAX_AMOUNT + 1, 10**6)),
                             time_in_force=rng.choice((TimeInForce.IOC, TimeInForce.FOK)),
                             stp=rng.choice((SelfTradePrevention.NONE, SelfTradePrevention.DECREMENT)))
    if variant == 16:
        return good._replace(quote_quantity=5)
    if variant == 17:
        return Command(rng.choice((0, 8, 99, -2)), seq, now, rng.choice(ACCOUNTS), inst.id, rng.randrange(1, seq + 1))
    if variant == 18:
        return deposit(seq, now, rng.choice((0, -1, 3)), rng.choice((3, 0, 2, 99)), rng.choice((0, -10, 1)))
    if variant == 19:
        return withdraw(seq, now, rng.choice((-1, 0, 2)), rng.choice((1, 4, 2)), rng.choice((0, -1, 10**18)))
    if variant == 20:
        return mass_cancel(seq, now, rng.choice((0, -1, 2)), rng.choice((0, 3, 1)))
    if variant == 21:
        return deposit(seq, now, rng.choice(ACCOUNTS), rng.choice((1, 2, 5)), MAX_AMOUNT)
    if variant == 22:
        return good._replace(order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, post_only=1)
    return amend(seq, now, rng.choice(ACCOUNTS), rng.randrange(1, seq + 1), price=rng.choice((-1, inst.max_price + 1, 0)),
                 quantity=rng.choice((-1, 0, inst.max_quantity + 1)))


def _cancel(state: _State) -> Command:
    rng = state.rng
    seq, now = _next(state)
    if state.placed and rng.random() < 0.93:
        order_id, account, _ = rng.choice(state.placed)
        if rng.random() < 0.05:
            account = rng.choice(ACCOUNTS)
    else:
        order_id, account = rng.randrange(1, seq + 5), rng.choice(ACCOUNTS)
    return cancel(seq, now, account, order_id)


def _amend(state: _State) -> Command:
    rng = state.rng
    seq, now = _next(state)
    if state.placed and rng.random() < 0.93:
        order_id, account, symbol = rng.choice(state.placed)
    else:
        order_id, account, symbol = rng.randrange(1, seq + 5), rng.choice(ACCOUNTS), 1
    market = next((m for m in state.markets if m.instrument.id == symbol), state.markets[0])
    price = 0 if rng.random() < 0.4 else max(1, market.mid + rng.randrange(-12, 13))
    quantity = 0 if rng.random() < 0.35 else rng.randrange(1, 40)
    if price == 0 and quantity == 0 and rng.random() < 0.5:
        quantity = rng.randrange(1, 5)
    return amend(seq, now, account, order_id, price=price, quantity=quantity)


def _funding(state: _State, amount_scale: int = 1) -> Command:
    rng = state.rng
    seq, now = _next(state)
    account = rng.choice(ACCOUNTS)
    asset = rng.choice((BTC.id, USD.id, ETH.id))
    amount = {BTC.id: 10**9, USD.id: 10**12, ETH.id: 10**21}[asset] * amount_scale
    amount = min(amount, MAX_AMOUNT // 64)
    return deposit(seq, now, account, asset, rng.randrange(1, amount + 1))


def _withdraw(state: _State) -> Command:
    rng = state.rng
    seq, now = _next(state)
    asset = rng.choice((BTC.id, USD.id, ETH.id))
    account = rng.choice((0, *ACCOUNTS))  # account 0 collects the fees and may withdraw them
    amount = rng.choice((rng.randrange(1, 10**6), rng.randrange(1, 10**12), 10**17))
    return withdraw(seq, now, account, asset, amount)


def generate(seed: int, n: int, instruments: list[Instrument] | None = None) -> list[Command]:
    """``n`` commands (deposits first) for ``make_instruments()`` or the given instruments."""
    rng = random.Random(seed)
    instruments = instruments or make_instruments()
    markets = [
        _Market(inst, mid=inst.reference_price or 1_000 + 100 * inst.id, spread=rng.randrange(1, 4))
        for inst in instruments
    ]
    state = _State(rng=rng, markets=markets)
    out: list[Command] = []
    for account in ACCOUNTS:
        for asset, amount in ((BTC.id, 10**11), (USD.id, 10**14), (ETH.id, 7 * 10**17)):
            seq, now = _next(state)
            out.append(deposit(seq, now, account, asset, amount))
    while len(out) < n:
        for market in markets:
            if rng.random() < 0.15:
                market.mid = max(50, market.mid + rng.choice((-1, 1)) * rng.randrange(1, 3))
            if rng.random() < 0.0003:
                # A jump: resting orders and stops end up far from the trading price.
                market.mid = max(50, market.mid + rng.choice((-1, 1)) * rng.randrange(market.mid // 80, market.mid // 25))
        roll = rng.random()
        if roll < 0.60:
            command = _new_order(state)
            _remember(state, command)
        elif roll < 0.76:
            command = _cancel(state)
        elif roll < 0.869:
            command = _amend(state)
        elif roll < 0.87:
            seq, now = _next(state)
            command = mass_cancel(seq, now, rng.choice(ACCOUNTS), rng.choice((0, 1, 7)))
        elif roll < 0.90:
            seq, now = _next(state)
            state.time += rng.randrange(10_000, 300_000)
            command = tick(seq, state.time)
        elif roll < 0.92:
            command = _funding(state)
        elif roll < 0.93:
            command = _withdraw(state)
        elif roll < 0.935 and out:
            # A replay of an old command: skipped (seq <= the shard's).
            command = rng.choice(out)
        else:
            if roll < 0.97:
                command = _new_order(state)
                _remember(state, command)
            else:
                command = _invalid(state)
        if rng.random() < 0.002:
            # A command stamped earlier than the shard's time: time must not go back.
            command = command._replace(time=command.time - rng.randrange(1, 10**6))
        out.append(command)
    return out

