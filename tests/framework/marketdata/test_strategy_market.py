"""Market data as a strategy gets it: what it declares becomes a plan, books and tickers a slow strategy has not
taken are replaced by the newest, trades and candles queue (bounded), and fills always go first."""

import asyncio
import time
from decimal import Decimal

import pytest

from exchanges.mock import MockConnector
from framework.errors import ConfigError
from framework.events import ConnectionKey
from framework.marketdata.feed import Watch
from framework.marketdata.values import Candle, OrderBook, PublicTrade, Ticker
from framework.pipeline.channels import Channel
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy, StrategyState
from tests.framework.test_strategy_runs import push_fills

KEY = ConnectionKey(exchange="binance", market="spot")
FUT = ConnectionKey(exchange="bybit", market="future")


class Books(BaseStrategy):
    def on_order_book(self, book):
        pass


class Everything(BaseStrategy):
    def on_ticker(self, ticker):
        pass

    def on_order_book(self, book):
        pass

    def on_public_trade(self, trade):
        pass


def test_the_plan_follows_the_hooks_written():
    s = Books("b", market_data={"binance_spot": ["BTC/USDT", "ETH/USDT"]})
    assert s.market_plan() == {KEY: [Watch("book", "BTC/USDT"), Watch("book", "ETH/USDT")]}
    s = Everything("e", market_data={"bybit_future": "BTC/USDT:USDT"})
    assert sorted(s.market_plan()[FUT]) == sorted(
        Watch(k, "BTC/USDT:USDT") for k in ("ticker", "book", "public_trade"))


@pytest.mark.parametrize("candles, expected", [
    ("1m", {KEY: [Watch("ohlc", "BTC/USDT", "1m")]}),
    (["1m", "5m"], {KEY: [Watch("ohlc", "BTC/USDT", "1m"), Watch("ohlc", "BTC/USDT", "5m")]}),
    ({"1m": ["BTC/USDT"]}, {KEY: [Watch("ohlc", "BTC/USDT", "1m")]}),
    ({"binance_spot": ["5m"]}, {KEY: [Watch("ohlc", "BTC/USDT", "5m")]}),
    ({"bybit_future": {"1h": ["ETH/USDT:USDT"]}}, {FUT: [Watch("ohlc", "ETH/USDT:USDT", "1h")]}),
])
def test_every_form_of_candles(candles, expected):
    class Bars(BaseStrategy):
        def on_candle(self, candle):
            pass

    plan = Bars("c", market_data={"binance_spot": ["BTC/USDT"]}, candles=candles).market_plan()
    assert {k: [w for w in v if w.kind == "ohlc"] for k, v in plan.items()} == expected


@pytest.mark.parametrize("kwargs, says", [
    ({"market_data": {"binance_spot": ["BTC/USDT"]}}, "writes none of on_ticker"),
    ({"market_data": {"binance": ["BTC/USDT"]}}, "exchange_market"),
    ({"market_data": {"binance_spot": ["BTCUSDT"]}}, "not a unified symbol"),
    ({"market_data": ["BTC/USDT"]}, "must map a key to symbols"),
    ({"market_data": {"binance_spot": ["BTC/USDT"]}, "candles": "1minute"}, "not a timeframe"),
    ({"market_data": {"binance_spot": ["BTC/USDT"]}, "candles": {"1m": ["ETH/USDT"]}}, "in no market_data key"),
    ({"book_depth": 0}, "book_depth must be a positive int"),
])
def test_a_bad_declaration_names_itself(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        BaseStrategy("bad", **kwargs).market_plan()


def book(seq, symbol="BTC/USDT"):
    return OrderBook(key=KEY, symbol=symbol, bids=((Decimal("100.1"), Decimal("2")),),
                     asks=((Decimal("100.2"), Decimal("1")),), seq=seq, timestamp=seq)


def public_trade(n):
    return PublicTrade(key=KEY, symbol="BTC/USDT", trade_id=str(n), price=Decimal("100"), amount=Decimal("0.1"),
                       side="buy", timestamp=n)


async def test_a_slow_strategy_gets_the_newest_book_not_a_backlog_and_its_fills_promptly(tmp_path):
    """on_order_book sleeps 0.2 s; 200 books arrive meanwhile, then fills: the fills are handled before any
    further book, and the books it does see are the newest at each moment (the last is the last published)."""
    class Slow(BaseStrategy):
        def on_start(self):
            self.books, self.fills, self.events = [], [], []

        def on_order_book(self, b):
            time.sleep(0.2)
            self.books.append(b.seq)
            self.events.append(("book", b.seq, time.monotonic()))

        def on_trade(self, trade):
            self.fills.append(trade.trade_id)
            self.events.append(("fill", trade.trade_id, time.monotonic()))

    async with asyncio.timeout(30), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Slow("slow", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        pool.pipeline.watch_market(s, Channel.BOOK, KEY, "BTC/USDT")
        for seq in range(1, 201):
            pool.pipeline.publish_market("book", book(seq), KEY, "BTC/USDT")
            if seq % 20 == 0:
                await asyncio.sleep(0.03)
        sent = time.monotonic()
        ids = await push_fills(s.exchange_connectors[0], 3)
        await pool.flush(10)
        assert s.fills == ids
        fill_at = next(t for kind, _, t in s.events if kind == "fill")
        assert fill_at - sent < 0.5  # at most the book hook running when they came, not the backlog
        assert s.books[-1] == 200 and len(s.books) < 20  # the newest, not 200 sleeps' worth
        assert s.books == sorted(s.books)
        assert s.market_coalesced >= 180 and s.market_handled == len(s.books)


async def test_trades_and_candles_queue_in_order_and_the_oldest_go_past_the_bound(tmp_path):
    class Tape(BaseStrategy):
        max_market_backlog = 50

        def on_start(self):
            self.seen = []

        async def on_public_trade(self, trade):
            self.seen.append(int(trade.trade_id))

    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Tape("tape", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        pool.pipeline.watch_market(s, Channel.PUBLIC_TRADE, KEY, "BTC/USDT")
        for n in range(120):  # all at once: the strategy's task has not run yet
            pool.pipeline.publish_market("public_trade", public_trade(n), KEY, "BTC/USDT")
        await s.drained()
        assert s.seen == list(range(70, 120)) and s.market_dropped == 70


async def test_a_market_hook_that_raises_fails_the_strategy_like_any_hook(tmp_path):
    class Bad(BaseStrategy):
        def on_ticker(self, ticker):
            raise RuntimeError("strategy bug")

    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Bad("bad", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        pool.pipeline.watch_market(s, Channel.TICKER, KEY, "BTC/USDT")
        pool.pipeline.publish_market("ticker", Ticker(key=KEY, symbol="BTC/USDT", bid=Decimal(1), ask=Decimal(2),
                                                      last=Decimal(1)), KEY, "BTC/USDT")
        for _ in range(100):
            if s.state is StrategyState.FAILED:
                break
            await asyncio.sleep(0.02)
        assert s.state is StrategyState.FAILED and "strategy bug" in repr(s.error)


async def test_components_get_market_data_on_their_channels(tmp_path):
    got = []

    class Recorder:
        async def on_ohlc_update(self, candle):
            got.append(candle)

    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        pool.pipeline.register_component("bars", Recorder(), ["ohlc"])
        bar = Candle(key=KEY, symbol="BTC/USDT", timeframe="1m", start=60_000, open=Decimal(1), high=Decimal(2),
                     low=Decimal(1), close=Decimal(2), volume=Decimal(3))
        pool.pipeline.publish_market("ohlc", bar, KEY, "BTC/USDT", "1m")
        await pool.pipeline.drained()
        assert got == [bar]
