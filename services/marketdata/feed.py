"""Turn the engine's outcomes into market data: book, trades, candles, per-account updates.

Channels (what a WebSocket client subscribes to):

* ``("book", SYMBOL)``: a snapshot on subscribe, then updates carrying the
  changed levels' new totals (``"0"`` removes a level) and ``u``, the
  symbol's update counter: a client that sees ``u`` jump resubscribes;
* ``("trades", SYMBOL)``: each flush, the trades since the last one;
* ``("candles", SYMBOL, INTERVAL)``: the current candle when it changes;
* ``("orders", ACCOUNT)`` and ``("balances", ACCOUNT)``: the account's own
  order events and its balances after they changed (authenticated only).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from core.commands import Side
from core.events import Event, EventKind, Reason
from core.instrument import Asset, Instrument
from services.marketdata.book import BookView
from services.marketdata.candles import INTERVALS, Candle, CandleSeries
from services.marketdata.hub import Channel, Hub
from services.matcher.records import Outcome

_BOOK = int(EventKind.BOOK)
_TRADE = int(EventKind.TRADE)
_SIDES = {int(Side.BUY): "buy", int(Side.SELL): "sell"}
_ORDER_EVENTS = {int(k) for k in (EventKind.ACCEPTED, EventKind.REJECTED, EventKind.TRADE, EventKind.CANCELLED,
                                  EventKind.EXPIRED, EventKind.AMENDED, EventKind.TRIGGERED)}
BalanceReader = Callable[[int, int], tuple[int, int]]


class MarketData:
    def __init__(self, instruments: list[Instrument], hub: Hub, balances: BalanceReader | None = None,
                 tape_length: int = 1_000) -> None:
        self.hub = hub
        self.instruments = {i.id: i for i in instruments}
        self.by_symbol = {i.symbol: i for i in instruments}
        self.assets: dict[int, Asset] = {}
        for i in instruments:
            self.assets[i.base.id] = i.base
            self.assets[i.quote.id] = i.quote
        self.books = {i.id: BookView(i.id) for i in instruments}
        self.tapes: dict[int, deque[dict[str, Any]]] = {i.id: deque(maxlen=tape_length) for i in instruments}
        self.candles = {i.id: {name: CandleSeries(name) for name in INTERVALS} for i in instruments}
        self.last_prices: dict[int, int] = {i.id: 0 for i in instruments}
        self.balances = balances
        hub.set_coalescer("book", self._coalesce_book)
        hub.set_coalescer("candles", lambda channel, messages: messages[-1:])
        hub.set_coalescer("trades", self._coalesce_trades)

    # Input --------------------------------------------------------------
    def on_outcome(self, outcome: Outcome) -> None:
        touched_accounts: set[int] = set()
        time_ns = outcome.command.time
        for event in outcome.events:
            kind = event.kind
            if kind == _BOOK:
                self.books[event.symbol].apply(event.side, event.price, event.quantity)
                self.books[event.symbol].seq = event.seq
                self.hub.publish(("book", self.instruments[event.symbol].symbol), (event.side, event.price))
            elif kind == _TRADE:
                self._on_trade(event, time_ns)
                touched_accounts.add(event.account)
                touched_accounts.add(event.maker_account)
            elif kind in _ORDER_EVENTS or kind == int(EventKind.DEPOSITED) or kind == int(EventKind.WITHDRAWN):
                touched_accounts.add(event.account)
            if kind in _ORDER_EVENTS:
                self._publish_order_event(event, event.account, time_ns)
                if kind == _TRADE:
                    self._publish_order_event(event, event.maker_account, time_ns)
        if self.balances is not None:
            for account in touched_accounts:
                channel = ("balances", str(account))
                if self.hub.has_subscribers(channel):
                    self.hub.publish(channel, {"type": "balances", "balances": self.balances_of(account)})

    def _on_trade(self, event: Event, time_ns: int) -> None:
        instrument = self.instruments[event.symbol]
        self.last_prices[event.symbol] = event.price
        trade = {
            "price": instrument.format_price(event.price),
            "quantity": instrument.format_quantity(event.quantity),
            "side": _SIDES[event.side],
            "seq": event.seq,
            "index": event.index,
            "time": time_ns,
        }
        self.tapes[event.symbol].append(trade)
        self.hub.publish(("trades", instrument.symbol), trade)
        quote_amount = instrument.notional(event.price, event.quantity)
        for name, series in self.candles[event.symbol].items():
            candle = series.add_trade(time_ns, event.price, event.quantity, quote_amount)
            self.hub.publish(("candles", instrument.symbol, name),
                             {"type": "candle", "symbol": instrument.symbol, "interval": name,
                              "candle": self.format_candle(instrument, candle)})

    def _publish_order_event(self, event: Event, account: int, time_ns: int) -> None:
        channel: Channel = ("orders", str(account))
        if self.hub.has_subscribers(channel):
            self.hub.publish(channel, {"type": "order_event", **self.format_order_event(event, account, time_ns)})

    # Output -------------------------------------------------------------
    def _coalesce_book(self, channel: Channel, messages: list[Any]) -> list[Any]:
        instrument = self.by_symbol[channel[1]]
        view = self.books[instrument.id]
        changed_bids: set[int] = set()
        changed_asks: set[int] = set()
        for side, price in messages:
            (changed_bids if side == int(Side.BUY) else changed_asks).add(price)
        view.update_id += 1
        fmt_p, fmt_q = instrument.format_price, instrument.format_quantity
        return [{
            "type": "book",
            "symbol": instrument.symbol,
            "u": view.update_id,
            "seq": view.seq,
            "bids": [[fmt_p(p), fmt_q(view.bids.get(p, 0))] for p in sorted(changed_bids, reverse=True)],
            "asks": [[fmt_p(p), fmt_q(view.asks.get(p, 0))] for p in sorted(changed_asks)],
        }]

    @staticmethod
    def _coalesce_trades(channel: Channel, messages: list[Any]) -> list[Any]:
        return [{"type": "trades", "symbol": channel[1], "trades": messages}]

    def book_snapshot(self, symbol: str, depth: int = 50) -> dict[str, Any]:
        instrument = self.by_symbol[symbol]
        view = self.books[instrument.id]
        bids, asks = view.depth(depth)
        fmt_p, fmt_q = instrument.format_price, instrument.format_quantity
        return {
            "type": "book_snapshot",
            "symbol": symbol,
            "u": view.update_id,
            "seq": view.seq,
            "bids": [[fmt_p(p), fmt_q(q)] for p, q in bids],
            "asks": [[fmt_p(p), fmt_q(q)] for p, q in asks],
        }

    @staticmethod
    def format_candle(instrument: Instrument, candle: Candle) -> dict[str, Any]:
        return {
            "start": candle.start // 1_000_000_000,
            "open": instrument.format_price(candle.open),
            "high": instrument.format_price(candle.high),
            "low": instrument.format_price(candle.low),
            "close": instrument.format_price(candle.close),
            "volume": instrument.format_quantity(candle.volume),
            "quote_volume": instrument.quote.format(candle.quote_volume),
            "trades": candle.trades,
        }

    def format_order_event(self, event: Event, account: int, time_ns: int) -> dict[str, Any]:
        instrument = self.instruments.get(event.symbol)
        maker = event.kind == _TRADE and account == event.maker_account and event.account != account
        order_id = event.maker_order_id if maker else event.order_id
        leaves = event.maker_leaves if maker else event.leaves
        out: dict[str, Any] = {
            "event": EventKind(event.kind).name.lower(),
            "order_id": str(order_id),
            "symbol": instrument.symbol if instrument else None,
            "seq": event.seq,
            "index": event.index,
            "time": time_ns,
        }
        if instrument is not None:
            out["price"] = instrument.format_price(event.price)
            out["quantity"] = instrument.format_quantity(event.quantity)
            out["leaves"] = instrument.format_quantity(leaves)
        if event.kind == _TRADE:
            out["liquidity"] = "maker" if maker else "taker"
            out["fee"] = self._fee_text(instrument, event, maker)
        if event.reason:
            out["reason"] = Reason(event.reason).name.lower()
        return out

    @staticmethod
    def _fee_text(instrument: Instrument | None, event: Event, maker: bool) -> str | None:
        if instrument is None:
            return None
        fee = event.maker_fee if maker else event.taker_fee
        buyer = (event.side == int(Side.BUY)) != maker
        return (instrument.base if buyer else instrument.quote).format(fee)

    def balances_of(self, account: int) -> list[dict[str, str]]:
        assert self.balances is not None
        out = []
        for asset_id in sorted(self.assets):
            asset = self.assets[asset_id]
            available, held = self.balances(account, asset_id)
            out.append({"asset": asset.code, "available": asset.format(available), "held": asset.format(held)})
        return out
