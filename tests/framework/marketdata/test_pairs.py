"""Every (venue, market) pair against the simulator, through the pool and a strategy: tickers, books, public
trades and candles arrive with the simulator's exact decimals (amounts in base units), and after a missing delta,
a corrupt checksum (venues that have one), dropped sockets and a stall the strategy's book equals the
simulator's again while the market moves on."""

import asyncio
from decimal import Decimal

import pytest

from exchanges import EXCHANGES, get_exchange
from exchanges.simulator import Simulator
from framework.events import Market
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy
from tests.framework.marketdata.helpers import FAST, until

PAIRS = [(exchange, market) for exchange in EXCHANGES for market in sorted(get_exchange(exchange).markets)]
DEPTH = 10


def symbol_of(exchange: str, market: Market) -> str:
    if exchange == "hyperliquid":
        return "BTC/USDC:USDC"
    return "BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT"


class Watcher(BaseStrategy):
    book_depth = DEPTH
    candles = "1m"

    def on_start(self):
        self.book = None
        self.ticker = None
        self.trades = []
        self.bars = {}

    def on_ticker(self, ticker):
        self.ticker = ticker

    def on_order_book(self, book):
        assert book.bids[0][0] < book.asks[0][0]
        self.book = book

    def on_public_trade(self, trade):
        self.trades.append(trade)

    def on_candle(self, candle):
        self.bars[candle.start] = candle




def same_book(strategy, sim_market):
    bids, asks = sim_market.book(DEPTH)
    book = strategy.book
    return book is not None and list(book.bids) == bids and list(book.asks) == asks


@pytest.mark.parametrize("exchange, market", PAIRS, ids=[f"{e}_{m.value}" for e, m in PAIRS])
async def test_a_pair_streams_all_four_kinds_exactly_and_resyncs_its_book(exchange, market, tmp_path):
    spec = get_exchange(exchange)
    if spec.market_data is None:
        pytest.fail(f"{exchange} has no market data rules")
    symbol = symbol_of(exchange, market)
    async with asyncio.timeout(60), Simulator(exchanges=[exchange], market_rate=0, seed=9) as sim:
        pool = ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs", market_backoff=FAST)
        async with pool:
            s = Watcher("w", [sim.connector(exchange, market, backfill=False)], pool=pool,
                        market_data={f"{exchange}_{market.value}": [symbol]})
            await s.start()
            public = sim.market(exchange, market, symbol)
            for _ in range(200):  # until every stream is live (each kind subscribed and answered once)
                if s.book is not None and s.ticker is not None and s.trades and s.bars:
                    break
                await sim.step_market(exchange, market, symbol)
                await asyncio.sleep(0.03)
            before = {t.trade_id for t in public.trades}
            await asyncio.sleep(0.2)  # what those steps sent has arrived
            for _ in range(20):
                await sim.step_market(exchange, market, symbol)
                await asyncio.sleep(0.005)
            await until(lambda: same_book(s, public), "the book to equal the simulator's")
            fresh = [t for t in public.trades if t.trade_id not in before]
            assert fresh
            expected = [(t.price, t.amount, t.side.value) for t in fresh]  # ids: the venue's own spelling

            def tape():
                return [(t.price, t.amount, t.side) for t in s.trades[-len(expected):]]

            await until(lambda: tape() == expected, "every public trade, in order")
            bar = public.candle("1m")
            await until(lambda: bar.start in s.bars and s.bars[bar.start].close == bar.close, "the 1m candle")
            got = s.bars[bar.start]
            assert (got.open, got.high, got.low, got.close) == (bar.open, bar.high, bar.low, bar.close)
            if got.volume is not None:  # base units; a venue whose candle gives only the quote volume: that
                await until(lambda: s.bars[bar.start].volume == bar.volume, "the candle's base volume")
            else:
                await until(lambda: s.bars[bar.start].quote_volume == bar.quote_volume, "the candle's quote volume")
            # Hyperliquid's ticker (activeAssetCtx) has no last trade price: ccxt's last is the book's mid (midPx).
            # MEXC spot's (bookTicker) has only the best bid and ask. What a ticker has must be the simulator's.
            last = (public.best_bid()[0] + public.best_ask()[0]) / 2 if exchange == "hyperliquid" else public.last

            def ticker_right():
                t = s.ticker
                if t is None or (t.last is None and t.bid is None):
                    return False
                return ((t.last is None or t.last == last) and (t.bid is None or t.bid == public.best_bid()[0])
                        and (t.ask is None or t.ask == public.best_ask()[0]))

            await until(ticker_right, "a ticker with the simulator's figures")
            if exchange != "hyperliquid" and (exchange, market) != ("mexc", Market.SPOT):
                assert s.ticker.last == public.last

            faults = ["gap", "checksum", "drop", "stall"]
            if not sim.venue(exchange).has_checksum:
                faults.remove("checksum")
            for fault in faults:
                if fault == "drop":  # every socket cut: ccxt's watches fail, ours watch again (a new socket)
                    await sim.drop(exchange, market)
                elif fault == "stall":  # the socket stays, what the market does meanwhile is never sent
                    sim.stall(exchange, market)
                else:
                    sim.book_fault(exchange, market, symbol, fault)
                await sim.step_market(exchange, market, symbol, 3)
                sim.stall(exchange, market, False)
                for _ in range(100):  # the market moves on: the book must come back to the simulator's
                    await asyncio.sleep(0.05)
                    if same_book(s, public):
                        break
                    await sim.step_market(exchange, market, symbol)
                await until(lambda: same_book(s, public), f"the book to resync after a {fault} fault", timeout=2)
            status = pool.get_connection_status()["public_connections"][f"{exchange}_{market.value}"]
            assert status["watchers"][f"book {symbol}"] == ["w"]
            await s.stop()
            assert pool.get_connection_status()["public_connections"] == {}
