"""A seeded random command stream through the real engine, and the checks against it.

The stream mixes every order type, time in force, post-only, self-trade
prevention mode, cancels, amends, mass cancels, deposits, withdrawals, ticks
and invalid commands, with time moving on so GTD orders expire and candles
cross interval boundaries. Only ``random.Random(seed)`` decides anything.
"""

from __future__ import annotations

import random

from core import commands as cmd
from core.commands import OrderType, SelfTradePrevention, TimeInForce
from core.instrument import Instrument
from core.snapshot import decode

from .venue import ASSETS, BTC_USD, ETH_USD, SECOND, AnyStore, Venue, sql

_MIDS = {BTC_USD.id: 5_000_000, ETH_USD.id: 200_000}  # 50,000.00 and 2,000.00


def random_stream(venue: Venue, commands: int, seed: int, accounts: int = 8) -> None:
    """Run ``commands`` random commands (after funding ``accounts`` accounts) through ``venue``."""
    rng = random.Random(seed)
    mids = dict(_MIDS)
    placed: list[tuple[int, int]] = []  # (order id, account)
    client_ids: dict[int, list[str]] = {}
    serial = 0
    for account in range(1, accounts + 1):
        scale = 1 if account <= accounts - 2 else 100  # the last two accounts are short of funds
        venue.run(cmd.deposit, account, 2, rng.randrange(5_000, 200_000) * 10**6 // scale)  # USD
        venue.run(cmd.deposit, account, 1, rng.randrange(1, 400) * 10**6 // scale)  # BTC, 0.01 .. 4
        venue.run(cmd.deposit, account, 3, rng.randrange(1, 100) * 10**8 // scale)  # ETH
    for _ in range(commands):
        venue.advance(rng.randrange(0, 3 * SECOND))
        account = rng.randint(1, accounts)
        instrument: Instrument = rng.choice((BTC_USD, ETH_USD))
        mid = mids[instrument.id]
        if rng.random() < 0.05:
            mids[instrument.id] = max(100, mid + rng.randint(-5, 5) * (mid // 2000))
        r = rng.random()
        if r < 0.70:
            client_order_id = None
            if rng.random() < 0.3:
                used = client_ids.setdefault(account, [])
                if used and rng.random() < 0.1:
                    client_order_id = rng.choice(used)  # a retry the gateway let through
                else:
                    serial += 1
                    client_order_id = f"c-{serial}"
                    used.append(client_order_id)
            order_id = _new_order(venue, rng, account, instrument, mid, client_order_id)
            placed.append((order_id, account))
        elif r < 0.82 and placed:
            order_id, owner = rng.choice(placed[-25:])
            venue.run(cmd.cancel, owner if rng.random() < 0.95 else account, order_id)
        elif r < 0.90 and placed:
            order_id, owner = rng.choice(placed[-25:])
            step = max(1, mid // 5000)
            new_price = mid + rng.randint(-10, 10) * step if rng.random() < 0.6 else 0
            new_quantity = rng.randint(1, 40) if rng.random() < 0.6 else 0
            venue.run(cmd.amend, owner, order_id, new_price, new_quantity)
        elif r < 0.91:
            venue.run(cmd.mass_cancel, account, rng.choice((0, instrument.id)))
        elif r < 0.94:
            asset = rng.choice(ASSETS)
            venue.run(cmd.deposit, account, asset.id, rng.randrange(1, 10**4) * 10 ** (asset.decimals - 2))
        elif r < 0.96:
            asset = rng.choice(ASSETS)
            venue.run(cmd.withdraw, account, asset.id, rng.randrange(1, 10**4) * 10 ** (asset.decimals - 2))
        elif r < 0.98:
            venue.advance(rng.randrange(0, 120 * SECOND))
            venue.run(cmd.tick)
        else:
            _invalid(venue, rng, account, instrument, mid)


def _new_order(
    venue: Venue, rng: random.Random, account: int, instrument: Instrument, mid: int, client_order_id: str | None,
) -> int:
    step = max(1, mid // 5000)
    side = rng.randint(0, 1)
    quantity = rng.randint(1, 40)
    stp = rng.choice(list(SelfTradePrevention)) if rng.random() < 0.3 else SelfTradePrevention.NONE
    kind = rng.random()
    symbol = instrument.id
    if kind < 0.65:  # limit
        price = mid + rng.randint(-15, 15) * step
        tif = rng.choices(list(TimeInForce), weights=(60, 15, 10, 15))[0]
        expire = venue.time + rng.randint(1, 90) * SECOND if tif == TimeInForce.GTD else 0
        post_only = tif in (TimeInForce.GTC, TimeInForce.GTD) and rng.random() < 0.1
        venue.run(cmd.new_order, account, symbol, side, quantity, price, time_in_force=tif, expire_time=expire,
                  post_only=post_only, stp=stp, client_order_id=client_order_id)
    elif kind < 0.80:  # market
        if side == 0 and rng.random() < 0.4:
            if stp == SelfTradePrevention.DECREMENT:
                stp = SelfTradePrevention.NONE
            venue.run(cmd.new_order, account, symbol, side, 0, 0, OrderType.MARKET, TimeInForce.IOC,
                      quote_quantity=rng.randrange(1, 300) * 10**6, stp=stp, client_order_id=client_order_id)
        else:
            tif = TimeInForce.IOC if rng.random() < 0.8 else TimeInForce.FOK
            venue.run(cmd.new_order, account, symbol, side, quantity, 0, OrderType.MARKET, tif, stp=stp,
                      client_order_id=client_order_id)
    elif kind < 0.90:  # stop-limit
        stop = mid + rng.randint(-10, 10) * step
        price = stop + rng.randint(-5, 5) * step
        tif = rng.choices(list(TimeInForce), weights=(70, 10, 5, 15))[0]
        expire = venue.time + rng.randint(1, 90) * SECOND if tif == TimeInForce.GTD else 0
        venue.run(cmd.new_order, account, symbol, side, quantity, price, OrderType.STOP_LIMIT, tif,
                  stop_price=stop, expire_time=expire, stp=stp, client_order_id=client_order_id)
    else:  # stop-market
        stop = mid + rng.randint(-10, 10) * step
        tif = TimeInForce.IOC if rng.random() < 0.8 else TimeInForce.FOK
        if side == 0 and tif == TimeInForce.IOC and rng.random() < 0.5:
            if stp == SelfTradePrevention.DECREMENT:
                stp = SelfTradePrevention.NONE
            venue.run(cmd.new_order, account, symbol, side, 0, 0, OrderType.STOP_MARKET, tif,
                      quote_quantity=rng.randrange(1, 300) * 10**6, stop_price=stop, stp=stp,
                      client_order_id=client_order_id)
        else:
            venue.run(cmd.new_order, account, symbol, side, quantity, 0, OrderType.STOP_MARKET, tif,
                      stop_price=stop, stp=stp, client_order_id=client_order_id)
    return venue.seq


def _invalid(venue: Venue, rng: random.Random, account: int, instrument: Instrument, mid: int) -> None:
    choice = rng.randrange(6)
    if choice == 0:
        venue.run(cmd.new_order, account, 99, 0, 1, mid)  # unknown symbol
    elif choice == 1:
        venue.run(cmd.new_order, account, instrument.id, 0, 0, mid)  # no quantity
    elif choice == 2:
        venue.run(cmd.new_order, account, instrument.id, 5, 1, mid)  # bad side
    elif choice == 3:
        venue.run(cmd.cancel, account, 10**9)  # unknown order
    elif choice == 4:
        venue.run(cmd.withdraw, account, 1, 10**17)  # more than anyone has
    else:
        venue.run(cmd.new_order, account, instrument.id, 1, 1, -5)  # bad price


def engine_open_orders(venue: Venue) -> dict[int, tuple[int, int, int]]:
    """order id -> (price, leaves, hold) of every live order in the engine (resting or waiting stop)."""
    state = decode(venue.engine.snapshot())
    live: dict[int, tuple[int, int, int]] = {}
    for book in state.books:
        for levels in (book.bids, book.asks):
            for level in levels:
                for f in level:
                    live[f[0]] = (f[6], f[8], f[14])
        for f in book.buy_stops + book.sell_stops:
            live[f[0]] = (f[6], f[8], f[14])
    return live


def projected_open_orders(store: AnyStore) -> dict[int, tuple[int, int, int]]:
    rows = sql(
        store,
        "SELECT id, coalesce(price, 0), leaves, hold FROM orders "
        "WHERE status IN ('new', 'partially_filled', 'pending_trigger', 'triggered')"
    )
    return {order_id: (price, leaves, hold) for order_id, price, leaves, hold in rows}


def assert_matches_engine(venue: Venue, store: AnyStore, accounts: int) -> None:
    """Balances per (account, asset), and every open order, equal the engine's."""
    projected = store.raw_balances()
    for account in range(accounts + 1):
        for asset in ASSETS:
            total, held = projected.get((account, asset.id), (0, 0))
            assert (total - held, held) == venue.engine.balance(account, asset.id), (account, asset.code)
    assert projected_open_orders(store) == engine_open_orders(venue)
    assert store.position() == venue.seq
