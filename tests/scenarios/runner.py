"""Play a scenario against one backend and compare with its tables."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import pytest

from core.commands import Command, CommandKind
from core.engine import BackendUnavailable, MatchingEngine, open_engine
from core.events import Event, EventKind, Reason
from core.instrument import Instrument
from core.snapshot import ORDER_FIELDS, BookState, ShardState, decode

from .dsl import Book, Row, Scenario, parse_level
from .dsl import deposit as deposit_command
from .invariants import Ledger, check_command, check_state, describe

F = {name: i for i, name in enumerate(ORDER_FIELDS)}


def open_backend(backend: str, instruments: Sequence[Instrument]) -> MatchingEngine:
    """Open ``backend`` or fail the test loudly: a listed backend must be built."""
    try:
        return open_engine(backend, instruments)
    except BackendUnavailable as exc:
        pytest.fail(f"{exc}. Backend {backend!r} is listed in RIALTO_TEST_BACKENDS but is not importable: "
                    f"run `make build` (or set RIALTO_TEST_BACKENDS to the backends you mean to test).",
                    pytrace=False)
        raise  # unreachable


def echo_order_id(command: Command) -> int:
    """The order id a REJECTED event names for this command."""
    if command.kind == CommandKind.NEW_ORDER:
        return command.seq
    if command.kind in (CommandKind.CANCEL, CommandKind.AMEND):
        return command.order_id
    if command.kind in (CommandKind.MASS_CANCEL, CommandKind.DEPOSIT, CommandKind.WITHDRAW):
        return 0
    return command.order_id  # an unknown command: its order_id field as sent


def resolve(row: Row, command: Command, index: int, symbol: int) -> Event:
    """The full expected event for ``row``, the ``index``-th answer to ``command``."""
    if row.kind == EventKind.REJECTED:
        fields = {
            "order_id": echo_order_id(command), "account": command.account, "symbol": command.symbol,
            "side": command.side, "price": command.price, "quantity": command.quantity,
        }
        if command.kind == CommandKind.AMEND and row.fields.get("reason") != Reason.UNKNOWN_ORDER:
            # An amend carries no symbol; rejecting a known order names the order's instrument.
            fields["symbol"] = symbol
    else:
        fields = {"symbol": symbol}
    fields.update(row.fields)
    return Event(row.kind, command.seq, index, **fields)


def assert_events(actual: Sequence[Sequence[int]], expected: Sequence[Event], context: str) -> None:
    got = [describe(e) for e in actual]
    want = [describe(e) for e in expected]
    if got != want:
        lines = [f"{context}: events differ ('-' expected, '+' actual)"]
        lines += difflib.ndiff(want, got)
        raise AssertionError("\n".join(lines))
    assert [tuple(e) for e in actual] == [tuple(e) for e in expected], context


def book_view(bs: BookState) -> Book:
    """A snapshot book in the tables' notation."""
    def levels(side: list[list[tuple[int, ...]]]) -> tuple[str, ...]:
        return tuple(
            f"{lv[0][F['price']]}: " + " ".join(f"{o[F['order_id']]}x{o[F['leaves']]}" for o in lv) for lv in side
        )
    return Book(
        bids=levels(bs.bids), asks=levels(bs.asks),
        buy_stops=tuple(o[F["order_id"]] for o in bs.buy_stops),
        sell_stops=tuple(o[F["order_id"]] for o in bs.sell_stops),
    )


def _normal(b: Book) -> Book:
    """Normalise spacing so that the comparison is of content, not of typing."""
    def norm(side: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{p}: " + " ".join(f"{i}x{q}" for i, q in orders) for p, orders in map(parse_level, side))
    return Book(norm(b.bids), norm(b.asks), tuple(b.buy_stops), tuple(b.sell_stops))


def assert_book(state: ShardState, symbol: int, expected: Book, context: str) -> None:
    bs = next(b for b in state.books if b.symbol == symbol)
    assert book_view(bs) == _normal(expected), f"{context}: book {symbol}"


def assert_balances(engine: MatchingEngine, expected: dict[int, dict[int, tuple[int, int]]]) -> None:
    got = {acct: {asset: tuple(engine.balance(acct, asset)) for asset in assets} for acct, assets in expected.items()}
    assert got == expected, "balances (available, held) differ"


class Player:
    """Runs commands through an engine, checking every invariant after each."""

    def __init__(self, backend: str, instruments: Sequence[Instrument]) -> None:
        self.backend = backend
        self.instruments = tuple(instruments)
        self.by_id = {i.id: i for i in instruments}
        self.engine = open_backend(backend, instruments)
        self.ledger = Ledger(self.by_id)
        self.state = check_state(self.engine, self.by_id, self.ledger)

    def submit(self, command: Command) -> list[Event]:
        events = [Event(*e) for e in self.engine.submit(command)]
        self.state = check_command(self.engine, command, self.state, events, self.by_id, self.ledger)
        return events

    def restart_from_snapshot(self) -> None:
        """Replace the engine by a fresh one restored from this one's snapshot."""
        data = self.engine.snapshot()
        digest = self.engine.state_hash()
        fresh = open_backend(self.backend, self.instruments)
        fresh.restore(data)
        assert fresh.snapshot() == data, "restore(snapshot()) does not reproduce the snapshot"
        assert fresh.state_hash() == digest
        self.engine = fresh
        self.state = check_state(self.engine, self.by_id, self.ledger)


def play(backend: str, sc: Scenario, restored: bool) -> None:
    """Given, when, then; with ``restored`` the engine is swapped for a restored copy after the given part."""
    player = Player(backend, sc.instruments)
    seq = 0
    for acct, assets in sc.funds.items():
        for asset, amount in assets.items():
            seq += 1
            events = player.submit(deposit_command(seq, acct, asset, amount))
            assert [e.kind for e in events] == [EventKind.DEPOSITED], f"funding: {[describe(e) for e in events]}"
    first = (sc.given or tuple(s.command for s in sc.steps))[0].seq
    assert first > seq, f"scenario commands must start above the funding deposits (seq 1..{seq})"
    for command in sc.given:
        events = player.submit(command)
        rejected = [describe(e) for e in events if e.kind == EventKind.REJECTED]
        assert not rejected, f"given command {command.seq} was rejected: {rejected}"
    if sc.book_before is not None:
        assert_book(player.state, sc.symbol, sc.book_before, "book before")
    if restored:
        player.restart_from_snapshot()
    for st in sc.steps:
        events = player.submit(st.command)
        expected = [resolve(row, st.command, i, sc.symbol) for i, row in enumerate(st.events)]
        assert_events(events, expected, f"command {st.command.seq}")
    if sc.book_after is not None:
        books = sc.book_after if isinstance(sc.book_after, dict) else {sc.symbol: sc.book_after}
        for symbol, expected_book in books.items():
            assert_book(player.state, symbol, expected_book, "book after")
    if sc.balances is not None:
        assert_balances(player.engine, sc.balances)
    if sc.last_price is not None:
        assert player.engine.last_price(sc.symbol) == sc.last_price


def params(scenarios: Sequence[Scenario]) -> list[Any]:
    """pytest parameters, one per scenario, id'd by name; disputed ones xfail strictly."""
    names = [s.name for s in scenarios]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates, f"duplicate scenario names: {duplicates}"
    out: list[Any] = []
    for s in scenarios:
        marks = [pytest.mark.xfail(reason=s.xfail, strict=True)] if s.xfail else []
        out.append(pytest.param(s, id=s.name.replace(" ", "_"), marks=marks))
    return out


def decode_state(engine: MatchingEngine) -> ShardState:
    return decode(engine.snapshot())
