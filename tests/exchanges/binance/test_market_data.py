"""Binance public market data on the simulator, read by ccxt.pro 4.5.90 exactly as the framework reads it:
ticker, diff book over a REST snapshot (with its sequence checks), trades, candles, un-watches, and what the
venue does with a symbol it does not list."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest

from exchanges.binance.market_data import MARKET_DATA
from exchanges.simulator import Simulator
from framework.events import ConnectionKey, Market, now_ms
from framework.marketdata.client import ccxt_client

MARKETS = [("spot", "BTC/USDT"), ("future", "ETH/USDT:USDT")]
DEPTH = 20


def dec(value) -> Decimal:
    return Decimal(str(value))


def levels(side) -> list[tuple[Decimal, Decimal]]:
    return [(dec(price), dec(amount)) for price, amount in side]


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def streams(sim: Simulator, market: str) -> set[str]:
    """Every stream the venue has a public socket of this market subscribed to."""
    return {name for s in sim.sessions("binance", market) if s.public for name in s.state["streams"]}


def public_session(sim: Simulator, market: str, stream: str):
    return next(s for s in sim.sessions("binance", market) if s.public and stream in s.state["streams"])


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["binance"], market_rate=0, seed=424242) as simulator:
        yield simulator


@pytest.fixture
async def clients(sim):
    """ccxt.pro clients of the simulator, one per market they are asked for; all closed at the end."""
    made = []

    def make(market: str, *symbols: str):
        exchange = ccxt_client(ConnectionKey(exchange="binance", market=market), MARKET_DATA,
                               sim.endpoints("binance", market), symbols)
        made.append(exchange)
        return exchange

    yield make
    for exchange in made:
        await exchange.close()


async def first_after_one_step(sim: Simulator, market: str, symbol: str, stream: str, watch):
    """Start a watch, wait until the venue has its stream, move the market once and return what ccxt gives."""
    task = asyncio.ensure_future(watch)
    await until(lambda: stream in streams(sim, market) or task.done())
    await sim.step_market("binance", market, symbol)
    return await asyncio.wait_for(task, 5)


async def next_book(sim: Simulator, market: str, symbol: str, exchange):
    """The ccxt book after one more step that changed the book (watch registered before the step)."""
    task = asyncio.ensure_future(exchange.watch_order_book(symbol, MARKET_DATA.book_limit(Market.parse(market), DEPTH)))
    await asyncio.sleep(0)
    while True:
        (step,) = await sim.step_market("binance", market, symbol)
        if step.book is not None:
            return await asyncio.wait_for(task, 5)


def assert_book_is_the_simulators(book, sim: Simulator, market: str, symbol: str) -> None:
    symbol_market = sim.market("binance", market, symbol)
    bids, asks = symbol_market.book(DEPTH)
    assert book["nonce"] == symbol_market.seq
    assert (levels(book["bids"][:DEPTH]), levels(book["asks"][:DEPTH])) == (bids, asks)


# --- the values ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("market", "symbol"), MARKETS)
async def test_watch_ticker_gives_the_simulators_figures(sim, clients, market, symbol):
    exchange = clients(market, symbol)
    raw = symbol.split(":")[0].replace("/", "").lower()
    ticker = await first_after_one_step(sim, market, symbol, f"{raw}@ticker", exchange.watch_ticker(symbol))
    sm = sim.market("binance", market, symbol)
    assert ticker["symbol"] == symbol
    assert [dec(ticker[k]) for k in ("last", "open", "high", "low", "baseVolume", "quoteVolume")] == [
        sm.last, sm.open, sm.high, sm.low, sm.volume, sm.quote_volume]
    assert ticker["timestamp"] == sm.time
    if market == "spot":  # the spot 24hrTicker carries the best levels; the USD-M one does not
        assert (dec(ticker["bid"]), dec(ticker["bidVolume"])) == sm.best_bid()
        assert (dec(ticker["ask"]), dec(ticker["askVolume"])) == sm.best_ask()
    else:
        assert ticker["bid"] is None and ticker["ask"] is None


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
async def test_watch_trades_gives_the_simulators_trades(sim, clients, market, symbol):
    exchange = clients(market, symbol)
    sm = sim.market("binance", market, symbol)
    raw = sm.symbol.split(":")[0].replace("/", "").lower()
    sm.take("sell", now_ms())  # a trade for the next step, whatever the dice say
    trades = await first_after_one_step(sim, market, symbol, f"{raw}@trade", exchange.watch_trades(symbol))
    published = {str(t.trade_id): t for t in sm.trades}
    assert [(t["side"], dec(t["price"]), dec(t["amount"]), t["timestamp"]) for t in trades] == [
        (published[t["id"]].side.value, published[t["id"]].price, published[t["id"]].amount, published[t["id"]].time)
        for t in trades]
    assert trades[0]["side"] == "sell" and trades[0]["symbol"] == symbol
    assert MARKET_DATA.contract_size(Market.parse(market), symbol) is None  # amounts are base units already


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
async def test_watch_ohlcv_gives_the_simulators_current_bar(sim, clients, market, symbol):
    exchange = clients(market, symbol)
    sm = sim.market("binance", market, symbol)
    sm.take("buy", now_ms())
    raw = symbol.split(":")[0].replace("/", "").lower()
    candles = await first_after_one_step(sim, market, symbol, f"{raw}@kline_1m", exchange.watch_ohlcv(symbol, "1m"))
    bar = sm.candle("1m")
    start, *figures = candles[-1]
    assert start == bar.start
    assert [dec(x) for x in figures] == [bar.open, bar.high, bar.low, bar.close, bar.volume]
    assert bar.volume > 0


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
async def test_order_book_is_the_snapshot_then_every_diff(sim, clients, market, symbol):
    exchange = clients(market, symbol)
    limit = MARKET_DATA.book_limit(Market.parse(market), DEPTH)
    book = await asyncio.wait_for(exchange.watch_order_book(symbol, limit), 5)  # the REST snapshot
    assert_book_is_the_simulators(book, sim, market, symbol)
    for _ in range(12):
        book = await next_book(sim, market, symbol, exchange)
        assert_book_is_the_simulators(book, sim, market, symbol)


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
async def test_a_lost_diff_fails_the_watch_and_the_next_watch_resyncs(sim, clients, market, symbol):
    exchange = clients(market, symbol)
    limit = MARKET_DATA.book_limit(Market.parse(market), DEPTH)
    await asyncio.wait_for(exchange.watch_order_book(symbol, limit), 5)
    await next_book(sim, market, symbol, exchange)
    sim.book_fault("binance", market, symbol, "gap")
    task = asyncio.ensure_future(exchange.watch_order_book(symbol, limit))
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        while not task.done():  # the gap's step sends nothing; the next diff does not follow on
            await sim.step_market("binance", market, symbol)
            await asyncio.wait({task}, timeout=0.1)
    failed = task.exception()
    assert failed is not None and "binance" in str(failed)
    async with asyncio.timeout(5):  # as the framework does: watch again on an error
        while True:
            try:
                book = await exchange.watch_order_book(symbol, limit)
                break
            except Exception:  # noqa: BLE001 - a diff of the old subscription may still fail one more watch
                continue
    assert_book_is_the_simulators(book, sim, market, symbol)
    for _ in range(3):
        assert_book_is_the_simulators(await next_book(sim, market, symbol, exchange), sim, market, symbol)


def test_book_limit_leaves_room_below_the_depth_and_keeps_to_the_venues_limits():
    assert [MARKET_DATA.book_limit(Market.FUTURE, d) for d in (1, 10, 20, 50, 100, 200, 1000)] == [
        50, 50, 100, 500, 500, 1000, 1000]


# --- un-watching --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("market", "symbol"), MARKETS)
async def test_un_watch_stops_each_stream_at_the_venue(sim, clients, market, symbol):
    exchange = clients(market, symbol)
    raw = symbol.split(":")[0].replace("/", "").lower()
    limit = MARKET_DATA.book_limit(Market.parse(market), DEPTH)
    await asyncio.wait_for(exchange.watch_order_book(symbol, limit), 5)
    watches = {f"{raw}@ticker": lambda: exchange.watch_ticker(symbol),
               f"{raw}@trade": lambda: exchange.watch_trades(symbol),
               f"{raw}@kline_1m": lambda: exchange.watch_ohlcv(symbol, "1m")}
    for stream, watch in watches.items():
        sim.market("binance", market, symbol).take("buy", now_ms())
        await first_after_one_step(sim, market, symbol, stream, watch())
    assert streams(sim, market) == {*watches, f"{raw}@depth@100ms"}
    sessions = [public_session(sim, market, stream) for stream in streams(sim, market)]

    await asyncio.wait_for(exchange.un_watch_ticker(symbol), 5)
    await asyncio.wait_for(exchange.un_watch_trades(symbol), 5)
    await asyncio.wait_for(exchange.un_watch_ohlcv(symbol, "1m"), 5)
    await asyncio.wait_for(exchange.un_watch_order_book(symbol), 5)
    assert streams(sim, market) == set()
    sent = [s.sent for s in sessions]
    sim.market("binance", market, symbol).take("sell", now_ms())
    await sim.step_market("binance", market, symbol, 3)
    assert [s.sent for s in sessions] == sent  # the same sockets, nothing more on them


# --- what the venue does not have ---------------------------------------------------------------------------

@pytest.mark.parametrize(("market", "symbol"), [("spot", "BTC/EUR"), ("future", "BTC/BUSD:BUSD")])
async def test_a_symbol_the_venue_does_not_list(sim, clients, market, symbol):
    """The REST snapshot says -1121 Invalid symbol (ccxt: BadSymbol); its streams are acked and stay silent."""
    import ccxt

    exchange = clients(market, symbol)
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        await asyncio.wait_for(exchange.watch_order_book(symbol, 100), 5)
    raw = symbol.split(":")[0].replace("/", "").lower()
    task = asyncio.ensure_future(exchange.watch_trades(symbol))
    await until(lambda: f"{raw}@trade" in streams(sim, market))
    await sim.step_market("binance", market, symbol, 3)  # even a market stepped by hand sends nothing
    await asyncio.sleep(0.2)
    assert not task.done()
    task.cancel()


async def test_stream_requests_answered_as_the_venue_does(sim):
    async with aiohttp.ClientSession() as http, http.ws_connect(sim.endpoints("binance", "spot").ws + "/ws/0") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth@100ms"], "id": 1})
        assert await ws.receive_json(timeout=5) == {"result": None, "id": 1}
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@depth@250ms"], "id": 2})  # USD-M only
        assert await ws.receive_json(timeout=5) == {"error": {"code": 2, "msg": "Invalid request: invalid stream"},
                                                    "id": 2}
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 3})
        assert await ws.receive_json(timeout=5) == {"result": None, "id": 3}
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 4})
        assert await ws.receive_json(timeout=5) == {"result": ["btcusdt@depth@100ms"], "id": 4}
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": "x"})
        assert (await ws.receive_json(timeout=5))["error"]["msg"] == (
            "Invalid request: request ID must be an unsigned integer")
        (step,) = await sim.step_market("binance", "spot", "BTC/USDT")
        event = await ws.receive_json(timeout=5)
        assert (event["e"], event["s"], event["U"], event["u"]) == (
            "depthUpdate", "BTCUSDT", step.book.first_seq, step.book.seq)
        assert all(len(price.split(".")[1]) == 8 for price, _ in event["b"] + event["a"])


async def test_usdm_delivers_a_stream_only_on_its_own_path(sim):
    """/public carries depth and trade, /market ticker and klines; the wrong path acks and stays silent."""
    base = sim.endpoints("binance", "future").ws
    async with aiohttp.ClientSession() as http, http.ws_connect(base + "/public/ws/0") as public, \
            http.ws_connect(base + "/market/ws/1") as market:
        for ws in (public, market):
            await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@ticker", "ethusdt@depth"], "id": 7})
            assert await ws.receive_json(timeout=5) == {"result": None, "id": 7}
        (step,) = await sim.step_market("binance", "future", "ETH/USDT:USDT")
        while step.book is None:
            (step,) = await sim.step_market("binance", "future", "ETH/USDT:USDT")
        depth = await public.receive_json(timeout=5)
        assert (depth["e"], depth["pu"], depth["U"], depth["u"]) == (
            "depthUpdate", step.book.prev_seq, step.book.first_seq, step.book.seq)
        assert (await market.receive_json(timeout=5))["e"] == "24hrTicker"
        await sim.step_market("binance", "future", "ETH/USDT:USDT")
        assert (await market.receive_json(timeout=5))["e"] == "24hrTicker"  # no depthUpdate on /market


async def test_rest_depth_snapshot(sim):
    sm = sim.market("binance", "future", "BTC/USDT:USDT")
    async with aiohttp.ClientSession() as http:
        url = sim.endpoints("binance", "future").rest + "/fapi/v1/depth"
        async with http.get(url, params={"symbol": "BTCUSDT", "limit": "5"}) as response:
            body = await response.json()
        bids, asks = sm.book(5)
        assert body["lastUpdateId"] == sm.seq
        assert body["bids"] == [[str(p), str(a)] for p, a in bids] and len(body["asks"]) == len(asks) == 5
        async with http.get(url, params={"symbol": "BTCEUR"}) as response:
            assert (response.status, await response.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
        spot = sim.endpoints("binance", "spot").rest + "/api/v3/depth"
        async with http.get(spot, params={"symbol": "ETHBTC"}) as response:
            body = await response.json()
        assert set(body) == {"lastUpdateId", "bids", "asks"} and len(body["bids"]) == 50  # all the simulator has
