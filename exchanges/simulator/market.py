"""The simulator's public market: one seeded price process per (venue, market, symbol) drives its order book,
public trades, ticker and candles. Venue plugins render its steps in their own wire formats.

The book always holds `DEPTH` levels a side on the symbol's tick grid. A step moves the mid a few ticks
(levels fall off the top of one side and appear on the other), changes a few amounts and may trade at the
best price; each step's book change lists every level that changed (amount 0: removed) and advances the
book's sequence by 1-3 (venues with ranged updates show first..last). Private fills the autopilot makes
`take` the best price the book shows, so a buy fills at the best ask it published.
"""

from __future__ import annotations

import random
import zlib
from decimal import Decimal
from typing import Iterable

import attrs

from framework.events import Market, Side

DEPTH = 50  # levels a side
TIMEFRAMES_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
                 "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}
_PRICES = {"BTC": ("65000", "0.1", "0.001"), "ETH": ("3200", "0.01", "0.01"), "SOL": ("150", "0.01", "1"),
           "BNB": ("600", "0.01", "1"), "LTC": ("80", "0.01", "1"), "AVAX": ("30", "0.001", "1")}
_DEFAULT = ("1.5", "0.0001", "1")  # XRP, DOGE, ADA, LINK and the rest: (price, tick, lot)


def instrument(symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    """(start price, tick, lot in base units) of a unified symbol; inverse contracts count whole USD."""
    base = symbol.split("/")[0]
    price, tick, lot = _PRICES.get(base, _DEFAULT)
    return Decimal(price), Decimal(tick), Decimal(lot)


@attrs.frozen
class BookChange:
    """The levels one step changed (amount 0: removed), best first, and the sequence it moved the book to."""

    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    first_seq: int  # the first update id this change covers (prev_seq + 1)
    seq: int  # the book's sequence after it
    prev_seq: int  # the book's sequence before it


@attrs.frozen
class TradeTick:
    trade_id: int
    price: Decimal
    amount: Decimal  # base units
    side: Side  # the taker's side
    time: int


@attrs.frozen
class MarketStep:
    symbol: str
    time: int
    book: BookChange | None  # None: the book did not change (a trade-only step cannot happen; kept for faults)
    trades: tuple[TradeTick, ...]


@attrs.define
class CandleBar:
    start: int  # ms, aligned to the timeframe
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)  # base units
    quote_volume: Decimal = Decimal(0)
    count: int = 0  # trades in the bar (Hyperliquid's `n`, Binance's kline `n`)


class SymbolMarket:
    """One symbol's public market on one (venue, market)."""

    def __init__(self, exchange: str, market: Market, symbol: str, seed: int | None, ids: Iterable[int],
                 now: int) -> None:
        self.exchange = exchange
        self.market = market
        self.symbol = symbol
        start, self.tick, self.lot = instrument(symbol)
        stable = zlib.crc32(f"{seed}|{exchange}|{market.value}|{symbol}".encode())
        self._random = random.Random(stable)
        self._ids = ids
        self.seq = self._random.randint(1_000, 9_999) * 1000
        mid_ticks = int(start / self.tick)
        self._best_bid = (mid_ticks - 1) * self.tick
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        for i in range(DEPTH):
            self.bids[self._best_bid - i * self.tick] = self._amount()
            self.asks[self._best_bid + (i + 1) * self.tick] = self._amount()
        self.last = start
        self.open = start  # the "24 h" figures count from the simulator's start
        self.high = self.low = start
        self.volume = Decimal(0)
        self.quote_volume = Decimal(0)
        self.trades: list[TradeTick] = []  # the most recent, newest last (kept short)
        self.candles: dict[str, CandleBar] = {}
        self.time = now
        self._taken: list[TradeTick] = []  # trades private fills made, published with the next step
        self.trade_chance = 0.5

    # what venues render -----------------------------------------------------------------------------
    def book(self, depth: int | None = None) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids best first, asks best first), `depth` levels each (all by default)."""
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        return (bids[:depth], asks[:depth]) if depth else (bids, asks)

    def best_bid(self) -> tuple[Decimal, Decimal]:
        price = max(self.bids)
        return price, self.bids[price]

    def best_ask(self) -> tuple[Decimal, Decimal]:
        price = min(self.asks)
        return price, self.asks[price]

    def candle(self, timeframe: str, now: int | None = None) -> CandleBar:
        """The current bar of a timeframe (a new one opens at the last price when its period began)."""
        period = TIMEFRAMES_MS[timeframe]
        start = (now or self.time) // period * period
        bar = self.candles.get(timeframe)
        if bar is None or bar.start != start:
            bar = self.candles[timeframe] = CandleBar(start, self.last, self.last, self.last, self.last)
        return bar

    # moving it ----------------------------------------------------------------------------------------
    def _amount(self) -> Decimal:
        return self.lot * self._random.randint(1, 500)

    def take(self, side: Side | str, now: int) -> Decimal:
        """A private fill's price: a buy takes the best ask, a sell the best bid (published with the next step)."""
        side = Side(side)
        price = self.best_ask()[0] if side is Side.BUY else self.best_bid()[0]
        self._taken.append(TradeTick(next(self._ids), price, self.lot, side, now))
        return price

    def step(self, now: int) -> MarketStep:
        rng = self._random
        self.time = max(now, self.time)
        old_bids, old_asks = dict(self.bids), dict(self.asks)
        trades = list(self._taken)
        self._taken.clear()
        if rng.random() < self.trade_chance:  # a taker hits the best level (up to its amount)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            book = self.asks if side is Side.BUY else self.bids
            price = min(book) if side is Side.BUY else max(book)
            amount = min(book[price], self.lot * rng.randint(1, 50))
            trades.append(TradeTick(next(self._ids), price, amount, side, self.time))
            if amount >= book[price]:
                del book[price]
            else:
                book[price] -= amount
        move = rng.choice((-2, -1, -1, 0, 0, 0, 0, 1, 1, 2))
        self._shift(move)
        for _ in range(rng.randint(1, 4)):  # resting amounts change
            book = self.bids if rng.random() < 0.5 else self.asks
            price = rng.choice(list(book))
            book[price] = self._amount()
        self._refill()
        for trade in trades:
            self._record(trade)
        bids = _changes(old_bids, self.bids, reverse=True)
        asks = _changes(old_asks, self.asks, reverse=False)
        prev = self.seq
        self.seq += rng.randint(1, 3)
        change = BookChange(bids, asks, prev + 1, self.seq, prev) if (bids or asks) else None
        if change is None:
            self.seq = prev
        return MarketStep(self.symbol, self.time, change, tuple(trades))

    def _shift(self, ticks: int) -> None:
        """Move the best bid by `ticks`: the side it moves into loses the levels it crosses."""
        if not ticks:
            return
        self._best_bid += ticks * self.tick
        if ticks > 0:
            for price in [p for p in self.asks if p <= self._best_bid]:
                del self.asks[price]
        else:
            for price in [p for p in self.bids if p > self._best_bid]:
                del self.bids[price]

    def _refill(self) -> None:
        """Exactly DEPTH levels a side on the grid below/above the best bid (new levels get new amounts)."""
        wanted_bids = {self._best_bid - i * self.tick for i in range(DEPTH)}
        wanted_asks = {self._best_bid + (i + 1) * self.tick for i in range(DEPTH)}
        for book, wanted in ((self.bids, wanted_bids), (self.asks, wanted_asks)):
            for price in [p for p in book if p not in wanted]:
                del book[price]
            for price in wanted - book.keys():
                book[price] = self._amount()

    def _record(self, trade: TradeTick) -> None:
        self.last = trade.price
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.volume += trade.amount
        self.quote_volume += trade.amount * trade.price
        self.trades = (self.trades + [trade])[-100:]
        for timeframe in self.candles:
            bar = self.candle(timeframe, trade.time)
            bar.high = max(bar.high, trade.price)
            bar.low = min(bar.low, trade.price)
            bar.close = trade.price
            bar.volume += trade.amount
            bar.quote_volume += trade.amount * trade.price
            bar.count += 1


def _changes(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal], *, reverse: bool
             ) -> tuple[tuple[Decimal, Decimal], ...]:
    changed = [(p, a) for p, a in new.items() if old.get(p) != a]
    changed += [(p, Decimal(0)) for p in old if p not in new]
    return tuple(sorted(changed, reverse=reverse))
