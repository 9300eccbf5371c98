"""Bybit public market data on the simulator, read by ccxt.pro 4.5.90 over real sockets: tickers, books, trades
and candles equal the simulator's own figures on spot and linear; the wire speaks Bybit's acks, errors and
update ids; a left-out book change is healed by Bybit's re-sent snapshot; un-watches stop the pushes."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator, Callable

import aiohttp
import ccxt
import pytest

from exchanges.bybit.market_data import MARKET_DATA
from exchanges.simulator import Simulator
from exchanges.simulator.market import MarketStep
from exchanges.simulator.venues.bybit import PUBLIC_PATHS, public_trade_id
from framework.connection import decode_frame
from framework.events import ConnectionKey, Market
from framework.marketdata.client import add_markets, ccxt_client

SYMBOL = {Market.SPOT: "BTC/USDT", Market.FUTURE: "BTC/USDT:USDT"}
MARKETS = [pytest.param(Market.SPOT, id="spot"), pytest.param(Market.FUTURE, id="future")]
DEPTH = 20  # the framework's default book depth


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bybit"], market_rate=0, seed=90210) as simulator:
        yield simulator


@asynccontextmanager
async def client(sim: Simulator, market: Market, *symbols: str) -> AsyncIterator[Any]:
    exchange = ccxt_client(ConnectionKey(exchange="bybit", market=market), MARKET_DATA,
                           sim.endpoints("bybit", market), symbols or [SYMBOL[market]])
    try:
        yield exchange
    finally:
        await exchange.close()


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def base(market: Market, symbol: str, amount: Any) -> Decimal:
    """A ccxt amount in base units (Bybit counts linear sizes in the base coin already)."""
    size = MARKET_DATA.contract_size(market, symbol)
    return dec(amount) * (dec(size) if size is not None else 1)


def ccxt_book(exchange: Any, market: Market, symbol: str, depth: int) -> tuple[list, list]:
    book = exchange.orderbooks[symbol]
    return tuple([(dec(level[0]), base(market, symbol, level[1])) for level in side[:depth]]
                 for side in (book["bids"], book["asks"]))


async def settled(pair: Callable[[], tuple[Any, Any]], timeout: float = 3.0) -> tuple[Any, Any]:
    """(got, wanted) once they agree, or as they stand when `timeout` runs out (the caller asserts)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got, wanted = pair()
        if got == wanted or asyncio.get_running_loop().time() > deadline:
            return got, wanted
        await asyncio.sleep(0.01)


async def step_until_trade(sim: Simulator, market: Market, symbol: str) -> MarketStep:
    for _ in range(50):
        (step,) = await sim.step_market("bybit", market, symbol)
        if step.trades:
            return step
    raise AssertionError("no trade in 50 steps")


async def subscribed(sim: Simulator, market: Market, topic: str, watch: Any) -> asyncio.Future:
    """A watch running once the simulator holds its topic (a trade watch gets no first push to wait for)."""
    future = asyncio.ensure_future(watch)
    got, _ = await settled(lambda: (any(topic in s.subscriptions for s in sim.sessions("bybit", market)), True))
    assert got, f"{topic} never subscribed"
    return future


def public_session(sim: Simulator, market: Market):
    (session,) = [s for s in sim.sessions("bybit", market) if s.public]
    return session


def test_rules_pick_bybits_book_depths_and_the_served_symbols():
    assert [MARKET_DATA.book_limit(Market.FUTURE, d) for d in (1, 2, 20, 50, 51, 200, 500, 5000)] == [
        1, 50, 50, 50, 200, 200, 1000, 1000]
    assert "BTC/USDC:USDC" in MARKET_DATA.listed(Market.FUTURE)
    assert "BTC/USD:BTC" not in MARKET_DATA.listed(Market.FUTURE)  # inverse: not on /v5/public/linear
    assert MARKET_DATA.ccxt_market(Market.FUTURE, "BTC/USDC:USDC")["id"] == "BTCPERP"


# ccxt.pro reads the simulator's figures -------------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
async def test_watch_ticker_gives_the_simulators_figures(sim, market):
    symbol = SYMBOL[market]
    public = sim.market("bybit", market, symbol)

    def figures(ticker: dict) -> dict:
        got = {k: dec(ticker[k]) for k in ("last", "open", "high", "low", "quoteVolume")}
        # ccxt takes a price24hPcnt of 0 for "none" and works the change out itself (exact past 4 or 6 places).
        got["percentage"] = dec(ticker["percentage"]).quantize(Decimal("0.0001"))
        got["baseVolume"] = base(market, symbol, ticker["baseVolume"])
        if market is Market.FUTURE:  # spot tickers carry no book top
            got.update(bid=dec(ticker["bid"]), ask=dec(ticker["ask"]),
                       bidVolume=base(market, symbol, ticker["bidVolume"]),
                       askVolume=base(market, symbol, ticker["askVolume"]))
        return got

    def wanted() -> dict:
        change = (public.last - public.open) / public.open
        venue = change.quantize(Decimal("0.0001" if market is Market.SPOT else "0.000001"))  # as Bybit writes it
        want = {"last": public.last, "open": public.open, "high": public.high, "low": public.low,
                "quoteVolume": public.quote_volume, "baseVolume": public.volume,
                "percentage": ((venue or change) * 100).quantize(Decimal("0.0001"))}
        if market is Market.FUTURE:
            (bid, bid_size), (ask, ask_size) = public.best_bid(), public.best_ask()
            want.update(bid=bid, ask=ask, bidVolume=bid_size, askVolume=ask_size)
        return want

    async with client(sim, market) as exchange:
        ticker = await asyncio.wait_for(exchange.watch_ticker(symbol), 5)
        assert ticker["symbol"] == symbol and figures(ticker) == wanted()
        if market is Market.SPOT:
            assert ticker["bid"] is None and ticker["ask"] is None
        for _ in range(3):  # linear: deltas merged into the last ticker; spot: fresh snapshots
            await step_until_trade(sim, market, symbol)
        got, want = await settled(lambda: (figures(exchange.tickers[symbol]), wanted()))
        assert got == want and public.volume > 0
        await sim.step_market("bybit", market, symbol)  # linear: the book top moves on in a ticker delta
        got, want = await settled(lambda: (figures(exchange.tickers[symbol]), wanted()))
        assert got == want


@pytest.mark.parametrize("market", MARKETS)
async def test_watch_order_book_follows_the_simulators_book(sim, market):
    symbol = SYMBOL[market]
    public = sim.market("bybit", market, symbol)
    limit = MARKET_DATA.book_limit(market, DEPTH)
    assert limit == 50
    async with client(sim, market) as exchange:
        book = await asyncio.wait_for(exchange.watch_order_book(symbol, limit), 5)
        assert len(book["bids"]) == len(book["asks"]) == 50  # the simulator's whole book
        assert ccxt_book(exchange, market, symbol, 50) == public.book(50)
        await sim.step_market("bybit", market, symbol, 30)
        got, want = await settled(lambda: (ccxt_book(exchange, market, symbol, 50), public.book(50)))
        assert got == want
        watch = asyncio.ensure_future(exchange.watch_order_book(symbol, limit))
        await asyncio.sleep(0.05)
        await sim.step_market("bybit", market, symbol)
        book = await asyncio.wait_for(watch, 5)  # returns on the step's delta
        assert ccxt_book(exchange, market, symbol, DEPTH) == public.book(DEPTH)
        assert len(book["bids"]) == len(book["asks"]) == 50


@pytest.mark.parametrize("market", MARKETS)
async def test_level_1_book_is_a_snapshot_of_the_top(sim, market):
    symbol = {Market.SPOT: "ETH/USDC", Market.FUTURE: "ETH/USDC:USDC"}[market]  # ETHUSDC, ETHPERP
    public = sim.market("bybit", market, symbol)
    async with client(sim, market, symbol) as exchange:
        book = await asyncio.wait_for(exchange.watch_order_book(symbol, 1), 5)
        assert (len(book["bids"]), len(book["asks"])) == (1, 1)
        await sim.step_market("bybit", market, symbol, 20)
        got, want = await settled(lambda: (ccxt_book(exchange, market, symbol, 50), public.book(1)))
        assert got == want


@pytest.mark.parametrize("market", MARKETS)
async def test_a_left_out_change_is_healed_by_the_resent_snapshot(sim, market):
    """ccxt reads no `u`: between the gap and Bybit's re-sent snapshot its book is quietly stale."""
    symbol = SYMBOL[market]
    public = sim.market("bybit", market, symbol)
    async with client(sim, market) as exchange:
        await asyncio.wait_for(exchange.watch_order_book(symbol, 50), 5)
        await sim.step_market("bybit", market, symbol, 3)
        before, _ = await settled(lambda: (ccxt_book(exchange, market, symbol, 50), public.book(50)))
        sim.book_fault("bybit", market, symbol, "gap")
        await sim.step_market("bybit", market, symbol)
        await asyncio.sleep(0.05)
        assert ccxt_book(exchange, market, symbol, 50) == before != public.book(50)
        await sim.step_market("bybit", market, symbol)
        got, want = await settled(lambda: (ccxt_book(exchange, market, symbol, 50), public.book(50)))
        assert got == want
        sim.book_fault("bybit", market, symbol, "checksum")  # Bybit has no checksum: nothing to corrupt
        await sim.step_market("bybit", market, symbol, 3)
        got, want = await settled(lambda: (ccxt_book(exchange, market, symbol, 50), public.book(50)))
        assert got == want


@pytest.mark.parametrize("market", MARKETS)
async def test_watch_trades_gives_the_simulators_trades(sim, market):
    symbol = SYMBOL[market]
    async with client(sim, market) as exchange:
        watch = await subscribed(sim, market, "publicTrade.BTCUSDT", exchange.watch_trades(symbol))
        step = await step_until_trade(sim, market, symbol)
        trades = await asyncio.wait_for(watch, 5)
        got = [(t["id"], t["timestamp"], t["side"], dec(t["price"]), base(market, symbol, t["amount"]), t["symbol"])
               for t in trades]
        assert got == [(public_trade_id(market, t.trade_id), t.time, t.side.value, t.price, t.amount, symbol)
                       for t in step.trades]


@pytest.mark.parametrize("market", MARKETS)
async def test_watch_ohlcv_gives_the_simulators_candle(sim, market):
    symbol = SYMBOL[market]
    public = sim.market("bybit", market, symbol)

    def last_candle() -> tuple[list, list]:
        row = exchange.ohlcvs[symbol]["1m"][-1]
        bar = public.candle("1m")
        return ([row[0], *map(dec, row[1:5]), base(market, symbol, row[5])],
                [bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume])

    async with client(sim, market) as exchange:
        candles = await asyncio.wait_for(exchange.watch_ohlcv(symbol, "1m"), 5)
        assert len(candles) == 1
        got, want = last_candle()
        assert got == want
        for _ in range(3):
            await step_until_trade(sim, market, symbol)
        got, want = await settled(last_candle)
        assert got == want and want[5] > 0


# un-watching --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
async def test_un_watch_stops_every_topic(sim, market):
    symbol = SYMBOL[market]
    async with client(sim, market) as exchange:
        await asyncio.wait_for(exchange.watch_ticker(symbol), 5)
        await asyncio.wait_for(exchange.watch_order_book(symbol, 50), 5)
        await asyncio.wait_for(exchange.watch_ohlcv(symbol, "1m"), 5)
        trades = await subscribed(sim, market, "publicTrade.BTCUSDT", exchange.watch_trades(symbol))
        await step_until_trade(sim, market, symbol)
        await asyncio.wait_for(trades, 5)
        session = public_session(sim, market)
        assert len(session.subscriptions) == 4
        # On linear, ccxt un-watches `orderbook.500` unless told the limit (see the next test).
        await asyncio.wait_for(exchange.un_watch_order_book(symbol, {"limit": 50}), 5)
        await asyncio.wait_for(exchange.un_watch_ticker(symbol), 5)
        await asyncio.wait_for(exchange.un_watch_trades(symbol), 5)
        await asyncio.wait_for(exchange.un_watch_ohlcv(symbol, "1m"), 5)
        assert session.subscriptions == set()
        sent = session.sent
        await step_until_trade(sim, market, symbol)
        await sim.step_market("bybit", market, symbol, 5)
        assert session.sent == sent
        assert symbol not in exchange.orderbooks and symbol not in exchange.tickers


async def test_spot_un_watch_order_book_needs_no_limit(sim):
    symbol = SYMBOL[Market.SPOT]
    async with client(sim, Market.SPOT) as exchange:
        await asyncio.wait_for(exchange.watch_order_book(symbol, 50), 5)
        await asyncio.wait_for(exchange.un_watch_order_book(symbol), 5)
        assert public_session(sim, Market.SPOT).subscriptions == set()


async def test_linear_un_watch_order_book_without_a_limit_misses_the_topic(sim):
    """ccxt 4.5.90 un-watches `orderbook.500.<id>` on linear by default, a depth Bybit took offline in 2025:
    refused, and the book stays subscribed."""
    symbol = SYMBOL[Market.FUTURE]
    async with client(sim, Market.FUTURE) as exchange:
        await asyncio.wait_for(exchange.watch_order_book(symbol, 50), 5)
        with pytest.raises(ccxt.ExchangeError, match="handler not found,topic:orderbook.500.BTCUSDT"):
            await asyncio.wait_for(exchange.un_watch_order_book(symbol), 5)
        assert public_session(sim, Market.FUTURE).subscriptions == {"orderbook.50.BTCUSDT"}


# refusals -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("market", "symbol", "error"),
    [pytest.param(Market.SPOT, "NOPE/USDT", "Invalid symbol :[tickers.NOPEUSDT]", id="spot"),
     pytest.param(Market.FUTURE, "NOPE/USDT:USDT", "error:handler not found,topic:tickers.NOPEUSDT", id="future"),
     pytest.param(Market.FUTURE, "BTC/USD:BTC", "error:handler not found,topic:tickers.BTCUSD", id="inverse")],
)
async def test_an_unlisted_symbol_gets_bybits_error(sim, market, symbol, error):
    async with client(sim, market) as exchange:
        add_markets(exchange, ConnectionKey(exchange="bybit", market=market), MARKET_DATA, [symbol])
        if symbol == "BTC/USD:BTC":  # an inverse contract: ccxt sends it to /inverse, asked here on /linear
            exchange.markets[symbol].update(linear=True, inverse=False)
        with pytest.raises(ccxt.ExchangeError, match=error.replace("[", r"\[").replace("]", r"\]")):
            await asyncio.wait_for(exchange.watch_ticker(symbol), 5)
        ticker = await asyncio.wait_for(exchange.watch_ticker(SYMBOL[market]), 5)  # the socket still serves
        assert ticker["symbol"] == SYMBOL[market]


# the wire -----------------------------------------------------------------------------------------------------
async def recv(ws, timeout: float = 3.0) -> dict:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


@pytest.mark.parametrize("market", MARKETS)
async def test_the_wire_speaks_bybit(sim, market):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("bybit", market).ws + PUBLIC_PATHS[market])
        await ws.send_json({"req_id": 7, "op": "ping"})
        pong = await recv(ws)
        assert pong == {"success": True, "ret_msg": "pong", "conn_id": pong["conn_id"], "req_id": "7", "op": "ping"}
        await ws.send_json({"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
        ack, snapshot = await recv(ws), await recv(ws)
        no_id = {"req_id": ""} if market is Market.FUTURE else {}  # linear writes an empty req_id
        assert ack == {"success": True, "ret_msg": "subscribe" if market is Market.SPOT else "",
                       "conn_id": pong["conn_id"], **no_id, "op": "subscribe"}
        assert snapshot["topic"] == "orderbook.50.BTCUSDT" and snapshot["type"] == "snapshot"
        assert len(snapshot["data"]["b"]) == len(snapshot["data"]["a"]) == 50
        assert snapshot["data"]["b"][0] == ["64999.9", snapshot["data"]["b"][0][1]]  # prices as text, tick scale
        u = snapshot["data"]["u"]
        await sim.step_market("bybit", market, "BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT", 2)
        deltas = [await recv(ws), await recv(ws)]
        assert [(d["type"], d["data"]["u"]) for d in deltas] == [("delta", u + 1), ("delta", u + 2)]
        sim.book_fault("bybit", market, SYMBOL[market], "gap")
        await sim.step_market("bybit", market, SYMBOL[market], 2)
        resent = await recv(ws)
        assert (resent["type"], resent["data"]["u"]) == ("snapshot", u + 4)  # u + 3 never went out

        refusals = [
            (["orderbook.50.BTCUSDT"], "error:already subscribed,topic:orderbook.50.BTCUSDT"),
            (["orderbook.30.BTCUSDT"], "error:handler not found,topic:orderbook.30.BTCUSDT"),
            (["kline.120.BTCUSDT"], "error:handler not found,topic:kline.120.BTCUSDT"),  # not kept here
            (["orderbook.50.btcusdt"], "Invalid symbol :[orderbook.50.btcusdt]" if market is Market.SPOT
             else "error:handler not found,topic:orderbook.50.btcusdt"),
            (["order"], "error:handler not found,topic:order"),
        ]
        if market is Market.SPOT:
            refusals.append(([f"publicTrade.{b}USDT" for b in ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA",
                                                                 "LTC", "LINK", "AVAX", "BTC")], "args size >10"))
        for n, (args, error) in enumerate(refusals):
            await ws.send_json({"req_id": f"r{n}", "op": "subscribe", "args": args})
            reply = await recv(ws)
            assert reply == {"success": False, "ret_msg": error, "conn_id": pong["conn_id"], "req_id": f"r{n}",
                             "op": "subscribe"}
        await ws.send_json({"req_id": "x", "op": "auth", "args": []})
        assert (await recv(ws))["ret_msg"] == "error:invalid op"
        await ws.send_json({"req_id": "u1", "op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]})
        assert (await recv(ws))["success"] is True
        assert public_session(sim, market).subscriptions == set()
        await ws.close()
