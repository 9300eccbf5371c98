"""Quoter: a passive market maker's brain, without the orders yet.

It watches the order book and the ticker, works out the two quotes it would rest (around the mid, skewed
against its inventory, never crossing the book) and marks its position to the mid from its fills. It places no
orders: order entry comes with the order gateway. What it saw is in `summary()`, printed by run_strategy.py.

    market_data = {"binance_spot": ["BTC/USDT"]}   # or given by run_strategy.py for the run's venue and symbol
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from framework.events import Trade
from framework.marketdata.values import OrderBook, Ticker
from strategies.position_tracker import PositionTracker

ZERO = Decimal(0)


class Quoter(PositionTracker):
    """Quotes `half_spread_bps` either side of the mid, shifted `skew_bps` per unit of `max_position` held."""

    half_spread_bps = Decimal(5)
    skew_bps = Decimal(10)
    max_position = Decimal(1)  # base units at which the skew is full

    def on_start(self) -> None:
        super().on_start()
        self.books_seen = 0
        self.tickers_seen = 0
        self.crossed = 0  # books whose best bid was not below the best ask (must stay 0)
        self.last_book: dict[str, OrderBook] = {}
        self.last_ticker: dict[str, Ticker] = {}
        self.quotes: dict[str, tuple[Decimal, Decimal]] = {}

    def on_ticker(self, ticker: Ticker) -> None:
        self.tickers_seen += 1
        self.last_ticker[ticker.symbol] = ticker

    def on_order_book(self, book: OrderBook) -> None:
        self.books_seen += 1
        self.last_book[book.symbol] = book
        if not book.bids or not book.asks:
            return
        best_bid, best_ask = book.bids[0][0], book.asks[0][0]
        if best_bid >= best_ask:
            self.crossed += 1
            return
        self.quotes[book.symbol] = self.quote(book.symbol, best_bid, best_ask)

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
        for symbol, ticker in sorted(self.last_ticker.items()):
            lines.append(f"{symbol} ticker: last {ticker.last}, bid {ticker.bid}, ask {ticker.ask}, "
                         f"24h volume {ticker.volume}")
        return lines + super().summary()


def _tick_of(*prices: Decimal) -> Decimal:
    """The finest step the book's prices are written in (their most decimal places)."""
    places = max(-p.as_tuple().exponent for p in prices) if prices else 0
    return Decimal(1).scaleb(-max(places, 0))
