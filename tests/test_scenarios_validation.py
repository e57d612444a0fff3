"""Rejections, the order of the validation rules, replays, and the engine interface.

A rejected command answers with exactly one REJECTED event echoing the
command (account, symbol, side, price, quantity, and the would-be order id or
the target) and changes nothing. When a new order breaks several rules, the
first rule in ``ReferenceEngine._validate``'s order gives the reason:
symbol, account, side, type, time in force, self-trade mode, post-only,
quantity, price, stop price, expire time, band, post-only crossing; funds last.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import test_scenarios_lifecycle
import test_scenarios_market_rules
import test_scenarios_orders
from scenarios.dsl import (
    ALICE,
    ASK,
    BID,
    BOB,
    BTC,
    BUY,
    CAROL,
    DAVE,
    DECREMENT,
    EMPTY,
    FEES,
    FOK,
    GTC,
    GTD,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    USD,
    R,
    Scenario,
    accepted,
    amend,
    book,
    btc_usd,
    buy,
    cancel,
    deposit,
    eth_usd,
    expired,
    level,
    market_buy,
    market_buy_quote,
    mass_cancel,
    order,
    raw_command,
    rejected,
    scenario,
    sell,
    step,
    stop_limit_buy,
    stop_market_sell,
    tick,
    trade,
    withdraw,
)
from scenarios.invariants import describe
from scenarios.runner import Player, params, play

from core.commands import Command
from core.engine import MatchingEngine
from core.events import Event, EventKind, Reason
from core.instrument import Instrument
from core.snapshot import decode

LIMITED = btc_usd(min_quantity=2, max_quantity=1_000, max_price=10_000)
BANDED = btc_usd(price_band_bps=1_000, reference_price=100)


def _one(name: str, command: Command, reason: Reason, instrument: Instrument = LIMITED,
         given: tuple[Command, ...] = ()) -> Scenario:
    """A one-command scenario: ``command`` is rejected with ``reason`` and nothing else happens."""
    return scenario(name, given=given, when=[step(command, rejected(reason))], instruments=(instrument,))


REJECTIONS: list[Scenario] = [
    _one("new order for an unknown instrument is rejected UNKNOWN_SYMBOL",
         order(10, ALICE, BUY, symbol=99, quantity=5, price=100), R.UNKNOWN_SYMBOL),
    _one("new order from the fee account is rejected INVALID_ACCOUNT", buy(10, FEES, 5, 100), R.INVALID_ACCOUNT),
    _one("new order from a negative account is rejected INVALID_ACCOUNT", buy(10, -3, 5, 100), R.INVALID_ACCOUNT),
    _one("new order with a side other than buy or sell is rejected INVALID_SIDE",
         order(10, ALICE, 2, quantity=5, price=100), R.INVALID_SIDE),
    _one("new order of an unknown type is rejected INVALID_ORDER_TYPE",
         order(10, ALICE, BUY, quantity=5, price=100, order_type=4), R.INVALID_ORDER_TYPE),
    _one("new order of a negative type is rejected INVALID_ORDER_TYPE",
         order(10, ALICE, BUY, quantity=5, price=100, order_type=-1), R.INVALID_ORDER_TYPE),
    _one("new order with an unknown time in force is rejected INVALID_TIME_IN_FORCE",
         order(10, ALICE, BUY, quantity=5, price=100, time_in_force=4), R.INVALID_TIME_IN_FORCE),
    _one("market order good till cancel is rejected INVALID_TIME_IN_FORCE",
         order(10, ALICE, BUY, quantity=5, order_type=MARKET, time_in_force=GTC), R.INVALID_TIME_IN_FORCE),
    _one("stop-market order good till date is rejected INVALID_TIME_IN_FORCE",
         order(10, ALICE, SELL, quantity=5, order_type=STOP_MARKET, time_in_force=GTD, stop_price=90,
               expire_time=100), R.INVALID_TIME_IN_FORCE),
    _one("market buy by quote amount fill-or-kill is rejected INVALID_TIME_IN_FORCE",
         order(10, ALICE, BUY, order_type=MARKET, time_in_force=FOK, quote_quantity=500), R.INVALID_TIME_IN_FORCE),
    _one("new order with an unknown self-trade mode is rejected INVALID_STP",
         order(10, ALICE, BUY, quantity=5, price=100, stp=5), R.INVALID_STP),
    _one("market buy by quote amount with decrement prevention is rejected INVALID_STP",
         market_buy_quote(10, ALICE, 500, stp=DECREMENT), R.INVALID_STP),
    _one("post-only flag other than 0 or 1 is rejected INVALID_POST_ONLY",
         order(10, ALICE, BUY, quantity=5, price=100, post_only=2), R.INVALID_POST_ONLY),
    _one("post-only market order is rejected INVALID_POST_ONLY",
         order(10, ALICE, BUY, quantity=5, order_type=MARKET, time_in_force=IOC, post_only=True),
         R.INVALID_POST_ONLY),
    _one("zero quantity is rejected INVALID_QUANTITY", buy(10, ALICE, 0, 100), R.INVALID_QUANTITY),
    _one("negative quantity is rejected INVALID_QUANTITY", sell(10, ALICE, -5, 100), R.INVALID_QUANTITY),
    _one("quantity below the instrument minimum is rejected INVALID_QUANTITY",
         buy(10, ALICE, 1, 100), R.INVALID_QUANTITY),
    _one("quantity above the instrument maximum is rejected INVALID_QUANTITY",
         buy(10, ALICE, 1_001, 100), R.INVALID_QUANTITY),
    _one("quantity of 2**63-1 lots is rejected INVALID_QUANTITY",
         sell(10, ALICE, 2**63 - 1, 100), R.INVALID_QUANTITY),
    _one("quote amount on a limit order is rejected INVALID_QUANTITY",
         order(10, ALICE, BUY, quantity=5, price=100, quote_quantity=500), R.INVALID_QUANTITY),
    _one("quote amount on a market sell is rejected INVALID_QUANTITY",
         order(10, ALICE, SELL, order_type=MARKET, time_in_force=IOC, quote_quantity=500), R.INVALID_QUANTITY),
    _one("market buy with both a quantity and a quote amount is rejected INVALID_QUANTITY",
         order(10, ALICE, BUY, quantity=5, order_type=MARKET, time_in_force=IOC, quote_quantity=500),
         R.INVALID_QUANTITY),
    _one("market buy by a quote amount above 2**62 is rejected INVALID_QUANTITY",
         market_buy_quote(10, ALICE, 2**62 + 1), R.INVALID_QUANTITY),
    _one("market buy by a negative quote amount is rejected INVALID_QUANTITY",
         market_buy_quote(10, ALICE, -1), R.INVALID_QUANTITY),
    _one("limit price zero is rejected INVALID_PRICE", buy(10, ALICE, 5, 0), R.INVALID_PRICE),
    _one("negative limit price is rejected INVALID_PRICE", sell(10, ALICE, 5, -1), R.INVALID_PRICE),
    _one("limit price above the instrument maximum is rejected INVALID_PRICE",
         buy(10, ALICE, 5, 10_001), R.INVALID_PRICE),
    _one("limit price of 2**63-1 ticks is rejected INVALID_PRICE", buy(10, ALICE, 5, 2**63 - 1), R.INVALID_PRICE),
    _one("market order with a price is rejected INVALID_PRICE",
         order(10, ALICE, BUY, quantity=5, price=100, order_type=MARKET, time_in_force=IOC), R.INVALID_PRICE),
    _one("stop-market order with a price is rejected INVALID_PRICE",
         order(10, ALICE, SELL, quantity=5, price=90, order_type=STOP_MARKET, time_in_force=IOC, stop_price=95),
         R.INVALID_PRICE),
    _one("stop-limit order without a stop price is rejected INVALID_STOP_PRICE",
         order(10, ALICE, BUY, quantity=5, price=100, order_type=STOP_LIMIT), R.INVALID_STOP_PRICE),
    _one("stop price above the instrument maximum is rejected INVALID_STOP_PRICE",
         stop_limit_buy(10, ALICE, 5, 100, 10_001), R.INVALID_STOP_PRICE),
    _one("stop price on a limit order is rejected INVALID_STOP_PRICE",
         order(10, ALICE, BUY, quantity=5, price=100, order_type=LIMIT, stop_price=99), R.INVALID_STOP_PRICE),
    _one("negative stop price is rejected INVALID_STOP_PRICE",
         stop_market_sell(10, ALICE, 5, -1), R.INVALID_STOP_PRICE),
    _one("GTD order whose expire time has passed is rejected INVALID_EXPIRE_TIME",
         buy(10, ALICE, 5, 100, tif=GTD, expire=1), R.INVALID_EXPIRE_TIME),
    _one("limit price outside the band is rejected PRICE_OUT_OF_BAND",
         sell(10, ALICE, 5, 120), R.PRICE_OUT_OF_BAND, BANDED),
    _one("new order the account cannot pay for is rejected INSUFFICIENT_FUNDS",
         buy(10, ALICE, 11, 10_000), R.INSUFFICIENT_FUNDS),
    _one("post-only order that would cross is rejected POST_ONLY_WOULD_TRADE",
         buy(11, ALICE, 5, 100, post_only=True), R.POST_ONLY_WOULD_TRADE, LIMITED, (sell(10, BOB, 5, 100),)),
    _one("amend of a waiting stop-limit is rejected NOT_AMENDABLE (validation table)",
         amend(11, ALICE, 10, qty=3), R.NOT_AMENDABLE, LIMITED, (stop_limit_buy(10, ALICE, 5, 100, 120),)),
    _one("cancel of an unknown order is rejected UNKNOWN_ORDER (validation table)",
         cancel(10, ALICE, 4), R.UNKNOWN_ORDER),
    _one("deposit of an asset no instrument uses is rejected UNKNOWN_ASSET",
         deposit(10, ALICE, 3, 100), R.UNKNOWN_ASSET),
    _one("withdraw of a zero amount is rejected INVALID_AMOUNT", withdraw(10, ALICE, USD, 0), R.INVALID_AMOUNT),
    _one("command of an unknown kind is rejected UNKNOWN_COMMAND",
         raw_command(10, 99, account=ALICE, symbol=7, order_id=5), R.UNKNOWN_COMMAND),
    _one("command of kind zero is rejected UNKNOWN_COMMAND", raw_command(10, 0), R.UNKNOWN_COMMAND),
]

# (name, command, reason, instrument): each breaks the named rule and a later one.
_ORDER = [
    ("an unknown symbol is reported before an invalid account",
     order(10, FEES, BUY, symbol=99, quantity=5, price=100), R.UNKNOWN_SYMBOL, LIMITED),
    ("an invalid account is reported before an invalid side",
     order(10, FEES, 7, quantity=5, price=100), R.INVALID_ACCOUNT, LIMITED),
    ("an invalid side is reported before an invalid order type",
     order(10, ALICE, 7, quantity=5, price=100, order_type=9), R.INVALID_SIDE, LIMITED),
    ("an invalid order type is reported before an invalid time in force",
     order(10, ALICE, BUY, quantity=5, price=100, order_type=9, time_in_force=9), R.INVALID_ORDER_TYPE, LIMITED),
    ("an invalid time in force is reported before an invalid self-trade mode",
     order(10, ALICE, BUY, quantity=5, price=100, time_in_force=9, stp=9), R.INVALID_TIME_IN_FORCE, LIMITED),
    ("an invalid self-trade mode is reported before an invalid post-only flag",
     order(10, ALICE, BUY, quantity=5, price=100, stp=9, post_only=5), R.INVALID_STP, LIMITED),
    ("an invalid post-only flag is reported before an invalid quantity",
     order(10, ALICE, BUY, quantity=0, price=100, post_only=5), R.INVALID_POST_ONLY, LIMITED),
    ("an invalid quantity is reported before an invalid price",
     order(10, ALICE, BUY, quantity=0, price=0), R.INVALID_QUANTITY, LIMITED),
    ("an invalid price is reported before an invalid stop price",
     order(10, ALICE, BUY, quantity=5, price=0, stop_price=3), R.INVALID_PRICE, LIMITED),
    ("an invalid stop price is reported before an invalid expire time",
     order(10, ALICE, BUY, quantity=5, price=100, stop_price=3, expire_time=99), R.INVALID_STOP_PRICE, LIMITED),
    ("an invalid expire time is reported before the price band",
     order(10, ALICE, BUY, quantity=5, price=150, expire_time=99), R.INVALID_EXPIRE_TIME, BANDED),
    ("the price band is reported before a post-only crossing",
     order(11, ALICE, BUY, quantity=5, price=115, post_only=True), R.PRICE_OUT_OF_BAND, BANDED),
    ("a post-only crossing is reported before missing funds",
     order(11, CAROL, BUY, quantity=5, price=100, post_only=True), R.POST_ONLY_WOULD_TRADE, LIMITED),
]
VALIDATION_ORDER: list[Scenario] = [
    scenario(f"validation order: {name}", instruments=(inst,), when=[step(command, rejected(reason))],
             given=[sell(10, BOB, 5, 100)] if command.seq == 11 else [],
             funds={ALICE: {USD: 100_000}, BOB: {BTC: 100}})
    for name, command, reason, inst in _ORDER
]

REPLAY: list[Scenario] = [
    scenario(
        "a command whose seq is not above the current one is ignored without events",
        given=[sell(10, BOB, 5, 100)],
        when=[step(buy(10, ALICE, 5, 100)),
              step(buy(9, ALICE, 5, 100)),
              step(cancel(5, BOB, 10)),
              step(buy(11, ALICE, 2, 100),
                   accepted(11, ALICE, BUY, 100, 2),
                   trade(taker=11, acct=ALICE, side=BUY, price=100, qty=2, leaves=0, maker=10, maker_acct=BOB,
                         maker_leaves=3),
                   level(ASK, 100, 3))],
        book_after=book(asks=["100: 10x3"]),
        balances={ALICE: {USD: (99_800, 0), BTC: (1_002, 0)}},
    ),
    scenario(
        "a replayed command does not advance the engine's time",
        given=[buy(10, ALICE, 5, 100, tif=GTD, expire=50)],
        when=[step(tick(10, t=100)),
              step(tick(11, t=20)),
              step(buy(12, BOB, 1, 90, tif=GTD, expire=30, t=25),
                   accepted(12, BOB, BUY, 90, 1),
                   level(BID, 90, 1))],
        book_after=book(bids=["100: 10x5", "90: 12x1"]),
    ),
    scenario(
        "time never runs backwards: a command stamped earlier runs at the latest time seen",
        given=[buy(10, ALICE, 5, 100, tif=GTD, expire=50), tick(11, t=45)],
        when=[step(buy(12, BOB, 1, 90, tif=GTD, expire=40, t=30), rejected(R.INVALID_EXPIRE_TIME)),
              step(tick(13, t=49)),
              step(tick(14, t=50), expired(10, ALICE, BUY, 100, 5), level(BID, 100, 0))],
        book_after=EMPTY,
    ),
    scenario(
        "sequence numbers may skip; an order's id is the seq of the command that placed it",
        when=[step(sell(100, BOB, 1, 100), accepted(100, BOB, SELL, 100, 1), level(ASK, 100, 1)),
              step(buy(250, ALICE, 1, 100),
                   accepted(250, ALICE, BUY, 100, 1),
                   trade(taker=250, acct=ALICE, side=BUY, price=100, qty=1, leaves=0, maker=100, maker_acct=BOB,
                         maker_leaves=0),
                   level(ASK, 100, 0))],
        book_after=EMPTY,
    ),
    scenario(
        "an expiry falls due on a rejected command and still happens",
        given=[sell(10, BOB, 5, 100, tif=GTD, expire=20)],
        when=[step(cancel(11, ALICE, 999, t=20),
                   expired(10, BOB, SELL, 100, 5),
                   level(ASK, 100, 0),
                   rejected(R.UNKNOWN_ORDER))],
        book_after=EMPTY,
    ),
]


@pytest.mark.parametrize("sc", params(REJECTIONS))
def test_rejection(backend: str, sc: Scenario) -> None:
    play(backend, sc, restored=False)


@pytest.mark.parametrize("sc", params(VALIDATION_ORDER))
def test_validation_order(backend: str, sc: Scenario) -> None:
    play(backend, sc, restored=False)


@pytest.mark.parametrize("mode", ["live", "restored"])
@pytest.mark.parametrize("sc", params(REPLAY))
def test_replay_and_time(backend: str, sc: Scenario, mode: str) -> None:
    play(backend, sc, restored=mode == "restored")


# --- Coverage of the tables themselves ---------------------------------------
def all_scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    for module in (test_scenarios_orders, test_scenarios_lifecycle, test_scenarios_market_rules):
        for value in vars(module).values():
            if isinstance(value, list) and value and all(isinstance(s, Scenario) for s in value):
                out.extend(value)
    return out + REJECTIONS + VALIDATION_ORDER + REPLAY


def test_every_rejection_reason_a_command_can_produce_has_a_scenario() -> None:
    produced = {row.fields["reason"] for sc in all_scenarios() if not sc.xfail for st in sc.steps
                for row in st.events if row.kind == EventKind.REJECTED}
    rejection_reasons = {int(r) for r in Reason if 0 < r < Reason.USER}
    assert rejection_reasons - produced == set()


def test_every_cancellation_reason_has_a_scenario() -> None:
    produced = {row.fields["reason"] for sc in all_scenarios() if not sc.xfail for st in sc.steps
                for row in st.events if row.kind == EventKind.CANCELLED}
    wanted = {int(r) for r in Reason if r >= Reason.USER} | {
        int(R.INSUFFICIENT_FUNDS), int(R.PRICE_OUT_OF_BAND), int(R.POST_ONLY_WOULD_TRADE)}
    assert wanted - produced == set()


def test_every_event_kind_has_a_scenario() -> None:
    produced = {row.kind for sc in all_scenarios() for st in sc.steps for row in st.events}
    assert {int(k) for k in EventKind} - produced == set()


def test_scenario_names_are_unique_and_there_are_enough() -> None:
    names = [sc.name for sc in all_scenarios()]
    assert len(names) == len(set(names))
    assert len(names) >= 60


# --- The engine interface beyond submit ---------------------------------------
SCRIPT: list[Command] = [
    deposit(1, ALICE, USD, 100_000), deposit(2, BOB, BTC, 1_000), deposit(3, CAROL, USD, 100_000),
    deposit(4, DAVE, BTC, 1_000), deposit(5, BOB, USD, 50_000), deposit(6, CAROL, BTC, 500),
    sell(10, BOB, 5, 101), sell(11, DAVE, 3, 101), sell(12, BOB, 4, 103, tif=GTD, expire=40),
    buy(13, ALICE, 6, 99), buy(14, CAROL, 2, 98, post_only=True),
    stop_limit_buy(15, CAROL, 3, 104, 102), stop_market_sell(16, DAVE, 2, 99),
    buy(17, ALICE, 6, 101), amend(18, ALICE, 13, price=100), amend(19, BOB, 12, qty=2),
    buy(20, ALICE, 3, 102), cancel(21, DAVE, 11), sell(22, DAVE, 4, 102),
    buy(23, ALICE, 2, 102), market_buy(24, CAROL, 2), tick(25, t=40),
    sell(26, BOB, 8, 99, tif=IOC), mass_cancel(27, CAROL), withdraw(28, ALICE, USD, 1_000),
    buy(29, ALICE, 3, 97, tif=GTD, expire=60), sell(30, DAVE, 1, 97, t=61),
]


def _run(engine: MatchingEngine, commands: list[Command]) -> list[tuple[int, ...]]:
    return [tuple(e) for c in commands for e in engine.submit(c)]


def test_restored_engine_continues_identically_from_any_point(make_engine: Callable[..., MatchingEngine]) -> None:
    reference = make_engine(btc_usd())
    straight = _run(reference, SCRIPT)
    final_hash = reference.state_hash()
    assert any(e[0] == EventKind.TRADE for e in straight) and any(e[0] == EventKind.EXPIRED for e in straight)
    for cut in range(len(SCRIPT) + 1):
        first = make_engine(btc_usd())
        head = _run(first, SCRIPT[:cut])
        second = make_engine(btc_usd())
        second.restore(first.snapshot())
        assert second.state_hash() == first.state_hash()
        tail = _run(second, SCRIPT[cut:])
        assert head + tail == straight, f"restored after command {cut} diverged"
        assert second.state_hash() == final_hash


def test_scenario_script_keeps_every_invariant(backend: str) -> None:
    player = Player(backend, (btc_usd(),))
    for command in SCRIPT:
        player.submit(command)


def test_submit_many_equals_submitting_one_by_one(make_engine: Callable[..., MatchingEngine]) -> None:
    one, many = make_engine(btc_usd()), make_engine(btc_usd())
    assert [tuple(e) for e in many.submit_many(SCRIPT)] == _run(one, SCRIPT)
    assert many.state_hash() == one.state_hash()
    assert many.sequence == one.sequence == SCRIPT[-1].seq


def test_submit_batch_equals_submitting_one_by_one(make_engine: Callable[..., MatchingEngine]) -> None:
    from core.batch import commands_to_array, events_from_array

    one, batch = make_engine(btc_usd()), make_engine(btc_usd())
    got = events_from_array(batch.submit_batch(commands_to_array(SCRIPT)))
    assert [tuple(e) for e in got] == _run(one, SCRIPT)
    assert batch.state_hash() == one.state_hash()


def test_restore_refuses_a_snapshot_of_other_instruments(make_engine: Callable[..., MatchingEngine]) -> None:
    source = make_engine(btc_usd())
    source.submit(deposit(1, ALICE, USD, 10))
    with pytest.raises(ValueError):
        make_engine(btc_usd(), eth_usd()).restore(source.snapshot())


def test_restore_refuses_bytes_that_are_not_a_snapshot(make_engine: Callable[..., MatchingEngine]) -> None:
    engine = make_engine(btc_usd())
    good = engine.snapshot()
    for bad in (b"", b"x" * 48, good[:-8], good + b"\0" * 8, b"\0" * 8 + good[8:]):
        with pytest.raises(ValueError):
            engine.restore(bad)


def test_registering_an_instrument_id_twice_is_refused(make_engine: Callable[..., MatchingEngine]) -> None:
    engine = make_engine(btc_usd())
    with pytest.raises(ValueError):
        engine.add_instrument(btc_usd(maker_fee_bps=5))


def test_a_new_engine_is_empty(make_engine: Callable[..., MatchingEngine]) -> None:
    engine = make_engine(btc_usd(), eth_usd())
    state = decode(engine.snapshot())
    assert (state.seq, state.time, state.accounts) == (0, 0, [])
    assert [b.symbol for b in state.books] == [7, 8]
    assert engine.sequence == 0
    assert engine.balance(ALICE, USD) == (0, 0)
    assert engine.depth(7) == ([], [])
    assert engine.last_price(7) == 0


def test_depth_lists_best_levels_first_up_to_the_asked_number(make_engine: Callable[..., MatchingEngine]) -> None:
    engine = make_engine(btc_usd())
    engine.submit(deposit(1, ALICE, USD, 10**6))
    engine.submit(deposit(2, BOB, BTC, 10**6))
    seq = 10
    for price in range(90, 102):
        for acct in (ALICE, ALICE):
            engine.submit(buy(seq, acct, 1, price))
            seq += 1
    for price in range(110, 125):
        engine.submit(sell(seq, BOB, 2, price))
        seq += 1
    bids, asks = engine.depth(7, 3)
    assert [tuple(x) for x in bids] == [(101, 2, 2), (100, 2, 2), (99, 2, 2)]
    assert [tuple(x) for x in asks] == [(110, 2, 1), (111, 2, 1), (112, 2, 1)]
    bids, asks = engine.depth(7)
    assert len(bids) == len(asks) == 10


def test_events_are_event_records_with_positions(make_engine: Callable[..., MatchingEngine]) -> None:
    engine = make_engine(btc_usd())
    events = engine.submit(deposit(3, ALICE, USD, 5))
    assert [tuple(e) for e in events] == [tuple(Event(EventKind.DEPOSITED, 3, 0, USD, 0, ALICE, 0, 0, 5))]
    assert describe(events[0]).startswith("DEPOSITED seq=3.0")

