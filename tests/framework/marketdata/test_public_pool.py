"""Public connections in the pool: one per (venue, market) however many strategies watch it, a stream un-watched
at the venue when its last watcher leaves, the connection closed with its last watcher; a symbol the venue does
not list fails start() with its nearest listed ones; a frame ccxt cannot read is a dead letter and the stream
goes on; a stream that keeps failing is reported degraded, with the reason."""

import asyncio
import time
from decimal import Decimal

import pytest

from exchanges.simulator import Simulator
from framework.errors import ConfigError
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy, StrategyState
from tests.framework.marketdata.helpers import FAST, until

KEY = "bybit_spot"


class BookWatcher(BaseStrategy):
    def on_start(self):
        self.books = []

    def on_order_book(self, book):
        self.books.append(book)


class TickerWatcher(BaseStrategy):
    def on_start(self):
        self.tickers = []

    def on_ticker(self, ticker):
        self.tickers.append(ticker)




def public_sessions(sim):
    return [s for s in sim.sessions("bybit", "spot") if s.public]


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bybit"], market_rate=50, seed=3) as sim:
        yield sim


@pytest.fixture
async def pool(tmp_path):
    async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs", market_backoff=FAST) as pool:
        yield pool


async def test_two_strategies_share_one_public_connection_and_the_last_closes_it(sim, pool):
    async with asyncio.timeout(30):
        conn = sim.connector("bybit", "spot", backfill=False)
        a = BookWatcher("a", [conn], pool=pool, market_data={KEY: ["BTC/USDT"]})
        b = BookWatcher("b", [conn], pool=pool, market_data={KEY: ["BTC/USDT"]})
        c = TickerWatcher("c", [conn], pool=pool, market_data={KEY: ["ETH/USDT"]})
        await a.start()
        await b.start()
        await c.start()
        await until(lambda: a.books and b.books and c.tickers, "data for all three")
        assert len(public_sessions(sim)) == 1  # one socket for the three
        status = pool.get_connection_status()
        public = status["public_connections"][KEY]
        assert public["watchers"] == {"book BTC/USDT": ["a", "b"], "ticker ETH/USDT": ["c"]}
        assert public["watching"] == {"book": ["BTC/USDT"], "ticker": ["ETH/USDT"]} and public["state"] == "live"

        await c.stop()  # the last ticker watcher: un-watched at the venue, the book stays
        session = public_sessions(sim)[0]
        await until(lambda: not any("ETH" in topic for topic in session.subscriptions), "ETH un-watched at the venue")
        seen = len(a.books)
        await until(lambda: len(a.books) > seen + 3, "books still coming")
        await a.stop()  # b still watches the book
        assert pool.get_connection_status()["public_connections"][KEY]["watchers"] == {"book BTC/USDT": ["b"]}
        await b.stop()
        assert pool.get_connection_status()["public_connections"] == {}
        await until(lambda: not public_sessions(sim), "the public socket closed")


async def test_a_symbol_the_venue_does_not_list_fails_start_naming_the_nearest(sim, pool):
    s = BookWatcher("s", [sim.connector("bybit", "spot", backfill=False)], pool=pool,
                    market_data={KEY: ["BTC/USTD"]})
    with pytest.raises(ConfigError, match=r"BTC/USTD is not listed on bybit spot: nearest BTC/USDT"):
        await s.start()
    assert s.state is StrategyState.FAILED
    status = pool.get_connection_status()
    assert status["public_connections"] == {} and status["connections"] == {}  # nothing left open


async def test_a_malformed_public_frame_is_a_dead_letter_and_the_stream_goes_on(sim, pool):
    async with asyncio.timeout(30):
        s = BookWatcher("s", [sim.connector("bybit", "spot", backfill=False)], pool=pool,
                        market_data={KEY: ["BTC/USDT"]})
        await s.start()
        await until(lambda: s.books, "a first book")
        session = public_sessions(sim)[0]
        await session.send('{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[["x"]]}}')
        seen = len(s.books)
        await until(lambda: len(s.books) > seen + 5, "books after the bad frame")
        public = pool.public_connection("bybit", "spot")
        assert public.dead_letters >= 1
        await pool.flush(5)
        letters = await pool.store.fetch_dead_letters()
        assert any("market data frame not readable" in letter["error"] for letter in letters)
        await s.stop()


async def test_a_book_that_cannot_resync_reports_degraded_then_recovers(sim, pool):
    async with asyncio.timeout(30):
        s = BookWatcher("s", [sim.connector("bybit", "spot", backfill=False)], pool=pool,
                        market_data={KEY: ["BTC/USDT"]})
        await s.start()
        await until(lambda: s.books, "a first book")
        sim.refuse_connections("bybit", "spot", 3.0)
        await sim.drop("bybit", "spot")
        public = pool.public_connection("bybit", "spot")
        await until(lambda: public.state == "degraded", "degraded", timeout=10)
        status = pool.get_connection_status()["public_connections"][KEY]
        assert "book BTC/USDT" in status["failing"] and status["gaps"] >= 1
        seen = len(s.books)
        await until(lambda: public.state == "live" and len(s.books) > seen, "live again", timeout=15)
        assert public.gaps[-1].until is not None
        await s.stop()


async def test_a_slow_strategy_gets_recent_books_and_its_fills_promptly_over_real_sockets(sim, pool):
    """on_order_book sleeps 0.3 s while the simulator moves the book 50 times a second and fills orders: the
    fills reach on_trade within a hook call of being stored, and each book it gets is at most a hook call old."""
    class Slow(BaseStrategy):
        def on_start(self):
            self.books, self.fills = [], []

        def on_order_book(self, book):
            self.books.append(time.time_ns() // 1_000_000 - book.received_at)  # its age when the hook got it
            time.sleep(0.3)

        def on_trade(self, trade):
            self.fills.append((trade.trade_id, time.time_ns() // 1_000_000))

    async with asyncio.timeout(40):
        s = Slow("slow", [sim.connector("bybit", "spot", backfill=False)], pool=pool, market_data={KEY: ["BTC/USDT"]})
        await s.start()
        await until(lambda: s.books, "a first book")
        stored_at = {}
        original = pool.pipeline._stored

        def stored(trades):
            for trade in trades:
                stored_at[trade.trade_id] = time.time_ns() // 1_000_000
            original(trades)

        pool.pipeline.trade_sync.on_stored = stored
        for n in range(6):
            await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.01", "65000", client_order_id=f"slow-{n}")
            await asyncio.sleep(0.25)
        await until(lambda: len(s.fills) == 6, "the six fills")
        waits = [seen - stored_at[trade_id] for trade_id, seen in s.fills]
        assert max(waits) < 450, waits  # at most the 0.3 s hook running when the fill was stored
        public = pool.public_connection("bybit", "spot")
        assert public.published["book"] > 2 * len(s.books)  # most books were replaced, not queued
        assert s.market_coalesced > 0
        assert max(s.books[1:]) < 400, s.books  # never older than the hook call before it
        await s.stop()


async def test_strategies_starting_at_once_open_one_public_connection(sim, pool):
    async with asyncio.timeout(30):
        conn = sim.connector("bybit", "spot", backfill=False)
        strategies = [BookWatcher(f"s{i}", [conn], pool=pool, market_data={KEY: ["BTC/USDT"]}) for i in range(5)]
        await asyncio.gather(*(s.start() for s in strategies))
        await until(lambda: all(s.books for s in strategies), "books for all five")
        assert len(public_sessions(sim)) == 1
        assert pool.get_connection_status()["public_connections"][KEY]["watcher_count"] == 5
        await asyncio.gather(*(s.stop() for s in strategies))
        assert pool.get_connection_status()["public_connections"] == {}


async def test_a_crossed_book_is_never_handed_on_and_is_watched_afresh():
    """A ccxt copy whose best bid is at or above its best ask (a new snapshot merged into an old book) is corrupt:
    strategies never see it, and the book is resynced."""
    from exchanges.bitget.market_data import MARKET_DATA
    from framework.events import ConnectionKey
    from framework.marketdata.feed import PublicConnection, Watch

    published, resyncs = [], []
    conn = PublicConnection(ConnectionKey.parse("bitget_future"), MARKET_DATA, None,
                            lambda kind, value, *rest: published.append(value))

    async def resync(symbol, venue_symbol, reason):
        resyncs.append((symbol, venue_symbol, reason))
        conn._resyncing.discard(venue_symbol)

    conn._resync = resync
    conn._sizes["BTC/USDT:USDT"] = None
    conn.exchange = type("Ccxt", (), {"markets": {"BTC/USDT:USDT": {"id": "BTCUSDT"}}})()
    book = {"bids": [["64999.9", "1"]], "asks": [["64999.5", "2"]], "nonce": 7, "timestamp": 1}
    conn._hand_on(Watch("book", "BTC/USDT:USDT"), book)
    conn._hand_on(Watch("book", "BTC/USDT:USDT"), book)  # while a resync runs: not a second one
    await asyncio.sleep(0)
    assert published == []
    assert resyncs == [("BTC/USDT:USDT", "BTCUSDT", "crossed book: best bid 64999.9 >= best ask 64999.5")]
    conn._hand_on(Watch("book", "BTC/USDT:USDT"), {"bids": [["64999.4", "1"]], "asks": [["64999.5", "2"]]})
    assert [b.bids[0][0] for b in published] == [Decimal("64999.4")]
