"""Quoter: a small passive market maker.

It watches the order book and the ticker, works out two quotes (around the mid, skewed against its inventory,
never crossing the book), rests them as limit orders through the order gateway, and when the wanted price moves
`requote_ticks` ticks away it cancels and quotes again. Its fills come back through on_trade (position, PnL
marked to the mid) and every order change through on_execution. What it did is in `summary()`, printed by
run_strategy.py.

    market_data = {"binance_spot": ["BTC/USDT"]}   # or given by run_strategy.py for the run's venue and symbol
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from framework.events import Trade
from framework.marketdata.values import OrderBook, Ticker
from strategies.position_tracker import PositionTracker

ZERO = Decimal(0)


class Quoter(PositionTracker):
    """Quotes `half_spread_bps` either side of the mid, shifted `skew_bps` per unit of `max_position` held."""

    half_spread_bps = Decimal(0)  # 0: join the best bid and ask
    skew_bps = Decimal(10)
    max_position = Decimal(1)  # base units at which the skew is full (and past which it stops adding)
    places_orders = True  # run_strategy.py: real orders (no simulated fills; --live needs --confirm-live)
    order_size = Decimal("0.01")  # base units per quote
    requote_ticks = 3  # cancel and quote again when the wanted price moved this many ticks away
    requote_interval = 0.25  # seconds between looks at its quotes

    def on_start(self) -> None:
        super().on_start()
        self.books_seen = 0
        self.tickers_seen = 0
        self.crossed = 0  # books whose best bid was not below the best ask (must stay 0)
        self.last_book: dict[str, OrderBook] = {}
        self.last_ticker: dict[str, Ticker] = {}
        self.quotes: dict[str, tuple[Decimal, Decimal]] = {}
        self.resting: dict[tuple[str, str], Any] = {}  # (symbol, side) -> its open quote (framework.orders.Order)
        self.executions: Counter[str] = Counter()
        self.requotes = 0
        self.order_errors: list[str] = []
        self._next_look = 0.0

    async def on_ticker(self, ticker: Ticker) -> None:
        self.tickers_seen += 1
        self.last_ticker[ticker.symbol] = ticker
        if ticker.symbol not in self.last_book and ticker.bid and ticker.ask and ticker.bid < ticker.ask:
            await self._quote_top(ticker.symbol, ticker.bid, ticker.ask)  # no book yet: quote off the ticker

    async def on_order_book(self, book: OrderBook) -> None:
        self.books_seen += 1
        self.last_book[book.symbol] = book
        if not book.bids or not book.asks:
            return
        best_bid, best_ask = book.bids[0][0], book.asks[0][0]
        if best_bid >= best_ask:
            self.crossed += 1
            return
        await self._quote_top(book.symbol, best_bid, best_ask)

    async def _quote_top(self, symbol: str, best_bid: Decimal, best_ask: Decimal) -> None:
        self.quotes[symbol] = self.quote(symbol, best_bid, best_ask)
        now = asyncio.get_running_loop().time()
        if self.places_orders and now >= self._next_look:
            self._next_look = now + self.requote_interval
            await self.work_quotes(symbol, _tick_of(best_bid, best_ask))

    async def work_quotes(self, symbol: str, tick: Decimal) -> None:
        """Rest a bid and an ask at the wanted prices: keep a quote still close enough, else cancel it and quote
        again; no new bid past +max_position held, no new ask past -max_position."""
        bid, ask = self.quotes[symbol]
        held = self.books[symbol].position if symbol in self.books else ZERO
        for side, price in (("buy", bid), ("sell", ask)):
            order = self.resting.get((symbol, side))
            if order is not None and order.final:
                self.resting.pop((symbol, side))
                order = None
            if order is not None and order.price is not None and abs(order.price - price) >= tick * self.requote_ticks:
                await self.cancel_order(order)
                self.requotes += 1
                self.resting.pop((symbol, side), None)
                order = None
            if order is None and (held < self.max_position if side == "buy" else held > -self.max_position):
                try:
                    placed = await self.place_order(symbol, side, self.order_size, price=price, order_type="limit")
                except Exception as exc:  # noqa: BLE001 - a refused setup is shown in the summary, quoting goes on
                    self.order_errors.append(f"{type(exc).__name__}: {exc}")
                    self.places_orders = len(self.order_errors) < 3
                    return
                if not placed.final:
                    self.resting[(symbol, side)] = placed

    def on_execution(self, execution: Any) -> None:
        self.executions[execution.kind] += 1

    def on_trade(self, trade: Trade) -> None:
        super().on_trade(trade)
        book = self.last_book.get(trade.symbol)
        if book is not None and book.bids and book.asks:
            self.quotes[trade.symbol] = self.quote(trade.symbol, book.bids[0][0], book.asks[0][0])

    def quote(self, symbol: str, best_bid: Decimal, best_ask: Decimal) -> tuple[Decimal, Decimal]:
        """(bid, ask) to rest: mid ± half spread, moved against the position; passive (never through the book)."""
        mid = (best_bid + best_ask) / 2
        held = self.books[symbol].position if symbol in self.books else ZERO
        lean = max(min(held / self.max_position, Decimal(1)), Decimal(-1)) if self.max_position else ZERO
        center = mid * (1 - lean * self.skew_bps / 10_000)
        half = mid * self.half_spread_bps / 10_000
        tick = _tick_of(best_bid, best_ask)
        bid = min((center - half).quantize(tick, rounding=ROUND_FLOOR), best_bid)
        ask = max((center + half).quantize(tick, rounding=ROUND_CEILING), best_ask)
        return bid, ask

    def unrealized(self, symbol: str) -> Decimal | None:
        book, last = self.books.get(symbol), self.last_book.get(symbol)
        if book is None or last is None or last.mid is None or book.inverse or not book.position:
            return None
        return (last.mid - book.avg_price) * book.position

    def summary(self) -> list[str]:
        lines = [f"market data: {self.books_seen} books, {self.tickers_seen} tickers, crossed books {self.crossed}"]
        for symbol, book in sorted(self.last_book.items()):
            bid, ask = book.best_bid, book.best_ask
            line = f"{symbol}: best bid {bid[0]} x {bid[1]}, best ask {ask[0]} x {ask[1]} (seq {book.seq})"
            if symbol in self.quotes:
                line += f"; would quote {self.quotes[symbol][0]} / {self.quotes[symbol][1]}"
            unrealized = self.unrealized(symbol)
            if unrealized is not None:
                line += f"; unrealized PnL at mid {unrealized.quantize(Decimal('1e-4'))}"
            lines.append(line)
        if self.executions or self.order_errors:
            counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.executions.items()))
            lines.append(f"orders: {counts}; re-quotes (cancel and place again) {self.requotes}; "
                         f"resting now {sum(1 for o in self.resting.values() if not o.final)}")
            lines += [f"order entry error: {error}" for error in self.order_errors[:3]]
        for symbol, ticker in sorted(self.last_ticker.items()):
            lines.append(f"{symbol} ticker: last {ticker.last}, bid {ticker.bid}, ask {ticker.ask}, "
                         f"24h volume {ticker.volume}")
        return lines + super().summary()


def _tick_of(*prices: Decimal) -> Decimal:
    """The finest step the book's prices are written in (their most decimal places)."""
    places = max(-p.as_tuple().exponent for p in prices) if prices else 0
    return Decimal(1).scaleb(-max(places, 0))
