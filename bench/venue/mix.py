"""The order mix every load tool sends (the wrk script, ``lua/orders.lua``, implements the same mix).

One instrument, BTC-USD (tick 0.01, lot 0.0001), around a fixed mid of 60,000.00:

===========  =====  =========================================================================
kind         share  what
===========  =====  =========================================================================
near         25 %   passive GTC limit, buy or sell, 1..5 ticks behind the mid: rests
far          25 %   passive GTC limit, buy or sell, 6..50 ticks behind the mid: rests
cross        25 %   IOC limit 5 ticks through the mid, buy or sell: takes the best near order of
                    the other side when there is one, never rests (nothing to take: the order
                    ends cancelled, still a 201)
cancel       25 %   cancel of one of this connection's own *far* orders (uniform among them)
===========  =====  =========================================================================

Every order is 0.0100 BTC (100 lots; the wrk script adds the user's index in lots), so a cross takes one
near order. No IOC reaches a far order and nothing but a cancel takes one, so every cancel names a
resting order and succeeds: the mix has no intended rejection. Near orders come in at the rate the
crosses can take them and far ones at the rate the cancels take them, so the book stays bounded (a
random walk around its start). Tools without cancels (the fan-out's order flow) send 40 % near,
20 % far, 40 % cross.
"""

from __future__ import annotations

import random

import msgspec

SYMBOL = "BTC-USD"
MID = 6_000_000  # ticks: 60,000.00
NEAR = 5  # near passive orders rest 1..NEAR ticks behind the mid; IOCs go NEAR ticks through it
FAR = 50  # far passive orders rest NEAR+1..FAR ticks behind the mid
QUANTITY = "0.0100"
MAX_RESTING = 5_000  # per connection: far order ids kept for cancels

NEAR_ORDER, FAR_ORDER, CROSS, CANCEL = "near", "far", "cross", "cancel"
KINDS = (NEAR_ORDER, FAR_ORDER, CROSS, CANCEL)

_encode = msgspec.json.Encoder().encode


def price_text(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


class Flow:
    """One connection's stream of actions: ``next()`` -> (kind, order body dict) or (CANCEL, order id)."""

    def __init__(self, seed: int, cancel: float = 0.25, cross: float = 0.25, near: float = 0.25,
                 quantity: str = QUANTITY) -> None:
        self.rng = random.Random(seed)
        self.cancel_share = cancel
        self.cross_share = cross
        self.near_share = near
        self.quantity = quantity
        self.resting: list[str] = []

    def next(self) -> tuple[str, dict[str, object] | str]:
        rng = self.rng
        r = rng.random()
        if r < self.cancel_share and self.resting:
            i = rng.randrange(len(self.resting))
            resting = self.resting
            resting[i], resting[-1] = resting[-1], resting[i]
            return CANCEL, resting.pop()
        buy = rng.random() < 0.5
        side = "buy" if buy else "sell"
        r -= self.cancel_share
        if 0 <= r < self.cross_share:
            price = MID + NEAR if buy else MID - NEAR
            return CROSS, {"symbol": SYMBOL, "side": side, "type": "limit", "price": price_text(price),
                           "quantity": self.quantity, "time_in_force": "ioc"}
        if r < self.cross_share + self.near_share:
            kind, away = NEAR_ORDER, rng.randint(1, NEAR)
        else:
            kind, away = FAR_ORDER, rng.randint(NEAR + 1, FAR)
        price = MID - away if buy else MID + away
        return kind, {"symbol": SYMBOL, "side": side, "type": "limit", "price": price_text(price),
                      "quantity": self.quantity}

    def placed(self, kind: str, order_id: str, status: str) -> None:
        """Note a placed order: a far one that rests is a candidate for a later cancel."""
        if kind == FAR_ORDER and status == "new" and len(self.resting) < MAX_RESTING:
            self.resting.append(order_id)


def no_cancel_flow(seed: int) -> Flow:
    """The fan-out's order flow: 40 % near, 20 % far, 40 % cross (every order changes the book)."""
    return Flow(seed, cancel=0.0, cross=0.4, near=0.4)


def encode(body: object) -> bytes:
    return _encode(body)
