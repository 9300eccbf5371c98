"""Bitget public market data: ccxt.pro 4.5.90 against the simulator's `/v2/ws/public`, spot and USDT-FUTURES.

ccxt gives floats: each is compared as `Decimal(str(x))` with the simulator's Decimals. Sizes are in the base
coin on both markets (contract_size None). A watch is started before the market steps, so that step's frames
resolve it (`watch_stepping`).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from decimal import Decimal

import aiohttp
import ccxt
import pytest

from exchanges.bitget.market_data import MARKET_DATA
from exchanges.simulator import Simulator
from framework.connection import decode_frame
from framework.events import ConnectionKey, Market
from framework.marketdata.client import add_markets, ccxt_client

SYMBOL = {Market.SPOT: "BTC/USDT", Market.FUTURE: "BTC/USDT:USDT"}
MARKETS = [pytest.param(Market.SPOT, id="spot"), pytest.param(Market.FUTURE, id="future")]
DEPTH = 20
# On a checksum mismatch ccxt unsubscribes the book (the waiting watch gets UnsubscribeError), then rejects the
# book's next watch with ChecksumError.
RESYNC_ERRORS = (ccxt.UnsubscribeError, ccxt.ChecksumError)


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bitget"], market_rate=0, seed=20240611) as simulator:
        yield simulator


@pytest.fixture
async def client(sim, request):
    """A ccxt.pro bitget of the test's market, pointed at the simulator (closed after the test)."""
    market = request.node.callspec.params["market"]
    key = ConnectionKey(exchange="bitget", market=market)
    exchange = ccxt_client(key, MARKET_DATA, sim.endpoints("bitget", market), [SYMBOL[market]])
    yield exchange
    await exchange.close()


def dec(value) -> Decimal:
    return Decimal(str(value))


def top(side, depth: int = DEPTH) -> list[tuple[Decimal, Decimal]]:
    return [(dec(level[0]), dec(level[1])) for level in side[:depth]]


async def watch_stepping(sim: Simulator, market: Market, watch):
    """Start `watch()`, then step the market once: returns (what the watch gave, the step)."""
    task = asyncio.ensure_future(watch())
    await asyncio.sleep(0)  # the watch's future exists before the step's frames go out
    (step,) = await sim.step_market("bitget", market, SYMBOL[market])
    return await asyncio.wait_for(task, 5), step


async def settle() -> None:
    """Let the frames already sent reach ccxt's handlers."""
    await asyncio.sleep(0.05)


async def synced_book(sim: Simulator, client, market: Market, tries: int = 12):
    """Watch the book as the framework does (a ccxt error: watch again) until its top levels are the simulator's."""
    symbol = SYMBOL[market]
    limit = MARKET_DATA.book_limit(market, DEPTH)
    for _ in range(tries):
        try:
            await watch_stepping(sim, market, lambda: client.watch_order_book(symbol, limit))
        except ccxt.BaseError:
            continue
        await settle()
        book = client.orderbooks.get(symbol)
        expected = sim.market("bitget", market, symbol).book(DEPTH)
        if book is not None and (top(book["bids"]), top(book["asks"])) == expected:
            return book
    pytest.fail(f"ccxt's book never matched the simulator's top {DEPTH} levels")


def apply(levels: dict, changes) -> None:
    """Book changes onto {price: size} (size zero: the level goes)."""
    for price, size in changes:
        if Decimal(size):
            levels[price] = size
        else:
            levels.pop(price, None)


def public_session(sim: Simulator, market: Market):
    (session,) = [s for s in sim.sessions("bitget", market) if s.public]
    return session


@pytest.mark.parametrize("market", MARKETS)
async def test_ticker(sim, client, market):
    symbol = SYMBOL[market]
    state = sim.market("bitget", market, symbol)
    state.trade_chance = 1.0
    await sim.step_market("bitget", market, symbol, 3)

    def figures(ticker) -> list[Decimal]:
        assert ticker["symbol"] == symbol
        return [dec(ticker[k]) for k in ("bid", "bidVolume", "ask", "askVolume", "last", "open", "high", "low",
                                         "baseVolume", "quoteVolume")]

    def expected() -> list[Decimal]:
        return [*state.best_bid(), *state.best_ask(), state.last, state.open, state.high, state.low, state.volume,
                state.quote_volume]

    assert figures(await asyncio.wait_for(client.watch_ticker(symbol), 5)) == expected()  # the snapshot
    for _ in range(4):
        ticker, step = await watch_stepping(sim, market, lambda: client.watch_ticker(symbol))
        assert figures(ticker) == expected()
        assert ticker["timestamp"] == step.time
    assert state.volume > 0 and state.high > state.low


@pytest.mark.parametrize("market", MARKETS)
async def test_order_book_follows_the_simulator(sim, client, market):
    symbol = SYMBOL[market]
    book = await asyncio.wait_for(client.watch_order_book(symbol, MARKET_DATA.book_limit(market, DEPTH)), 5)
    state = sim.market("bitget", market, symbol)
    assert (top(book["bids"], 50), top(book["asks"], 50)) == state.book(50)  # the `books` snapshot: all levels
    for _ in range(8):
        book, step = await watch_stepping(sim, market, lambda: client.watch_order_book(symbol))
        assert step.book is not None
        await settle()
        assert (top(book["bids"]), top(book["asks"])) == state.book(DEPTH)
    assert book["timestamp"] == step.time


@pytest.mark.parametrize("market", MARKETS)
async def test_wrong_checksum_resyncs(sim, client, market):
    """A wrong checksum: ccxt unsubscribes the book and raises; watching again subscribes again, and the new
    snapshot is the simulator's book, which then follows the updates."""
    symbol = SYMBOL[market]
    stale = await synced_book(sim, client, market)
    sim.book_fault("bitget", market, symbol, "checksum")
    with pytest.raises(RESYNC_ERRORS):
        await watch_stepping(sim, market, lambda: client.watch_order_book(symbol))
    assert not sim.faults.book_faults[("bitget", market, symbol)]
    assert await synced_book(sim, client, market) is not stale  # a new book, from a new snapshot
    for _ in range(3):
        book, _step = await watch_stepping(sim, market, lambda: client.watch_order_book(symbol))
        await settle()
        assert (top(book["bids"]), top(book["asks"])) == sim.market("bitget", market, symbol).book(DEPTH)


@pytest.mark.parametrize("market", MARKETS)
async def test_lost_update_resyncs(sim, client, market):
    """ccxt reads no sequence number on Bitget: a lost update shows as the first later update after which ccxt's
    top 25 levels differ from the simulator's (the checksum covers those). Each step checks ccxt against that
    prediction (made here from the steps' own changes); then watching again resyncs. (Sizes are absolute, so
    later updates of the same levels can also mend the loss unseen: then ccxt's book is right without an error.)"""
    symbol = SYMBOL[market]
    state = sim.market("bitget", market, symbol)
    stale = await synced_book(sim, client, market)
    session = public_session(sim, market)
    sim.book_fault("bitget", market, symbol, "gap")
    state.trade_chance = 1.0  # the lost update changes the best level at least
    sent = session.sent
    await sim.step_market("bitget", market, symbol)
    assert session.sent == sent  # the book moved, its update never went out
    state.trade_chance = 0.0
    seen = {side: {dec(level[0]): dec(level[1]) for level in stale[side]} for side in ("bids", "asks")}
    detected = False
    for _ in range(10):
        task = asyncio.ensure_future(client.watch_order_book(symbol))
        await asyncio.sleep(0)
        (step,) = await sim.step_market("bitget", market, symbol)
        for side, changes in (("bids", step.book.bids), ("asks", step.book.asks)):
            apply(seen[side], changes)
        predicted = (sorted(seen["bids"].items(), reverse=True)[:25], sorted(seen["asks"].items())[:25])
        if predicted != state.book(25):
            with pytest.raises(RESYNC_ERRORS):
                await asyncio.wait_for(task, 5)
            detected = True
            break
        book = await asyncio.wait_for(task, 5)
        await settle()
        assert (top(book["bids"], 25), top(book["asks"], 25)) == predicted
    resynced = await synced_book(sim, client, market)
    assert (resynced is not stale) == detected  # a new book from a new snapshot only after the error
    book, _step = await watch_stepping(sim, market, lambda: client.watch_order_book(symbol))
    await settle()
    assert (top(book["bids"], 25), top(book["asks"], 25)) == state.book(25)


@pytest.mark.parametrize("market", MARKETS)
async def test_trades(sim, client, market):
    symbol = SYMBOL[market]
    state = sim.market("bitget", market, symbol)
    state.trade_chance = 1.0
    before = await sim.step_market("bitget", market, symbol, 3)
    trades = await asyncio.wait_for(client.watch_trades(symbol), 5)  # the snapshot: the recent trades
    assert [t["id"] for t in trades] == [str(t.trade_id) for s in before for t in s.trades]
    for _ in range(3):
        trades, step = await watch_stepping(sim, market, lambda: client.watch_trades(symbol))
        got = trades[-len(step.trades):]
        assert [(t["id"], dec(t["price"]), dec(t["amount"]), t["side"], t["timestamp"]) for t in got] == [
            (str(t.trade_id), t.price, t.amount, t.side.value, t.time) for t in step.trades]
        assert all(t["symbol"] == symbol for t in got)


@pytest.mark.parametrize("market", MARKETS)
async def test_ohlcv(sim, client, market):
    symbol = SYMBOL[market]
    state = sim.market("bitget", market, symbol)
    state.trade_chance = 1.0

    def current_bar() -> list:
        bar = state.candle("1m")
        return [bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume]

    candles = await asyncio.wait_for(client.watch_ohlcv(symbol, "1m"), 5)
    assert [candles[-1][0], *map(dec, candles[-1][1:])] == current_bar()
    for _ in range(3):
        candles, _step = await watch_stepping(sim, market, lambda: client.watch_ohlcv(symbol, "1m"))
        assert [candles[-1][0], *map(dec, candles[-1][1:])] == current_bar()
    assert state.candle("1m").volume > 0


@pytest.mark.parametrize("market", MARKETS)
async def test_un_watch_stops_each_topic(sim, client, market):
    symbol = SYMBOL[market]
    sim.market("bitget", market, symbol).trade_chance = 1.0
    await watch_stepping(sim, market, lambda: client.watch_trades(symbol))
    await asyncio.wait_for(client.watch_ticker(symbol), 5)
    await asyncio.wait_for(client.watch_order_book(symbol), 5)
    for timeframe in MARKET_DATA.timeframes:  # ccxt's un_watch_ohlcv of "1h" never returns: not among them
        await asyncio.wait_for(client.watch_ohlcv(symbol, timeframe), 5)
    session = public_session(sim, market)
    assert session.state["topics"]["BTCUSDT"] == {"trade", "ticker", "books", "candle1m", "candle5m", "candle15m",
                                                  "candle30m"}
    unwatches = [client.un_watch_trades(symbol), client.un_watch_ticker(symbol), client.un_watch_order_book(symbol),
                 *(client.un_watch_ohlcv(symbol, tf) for tf in MARKET_DATA.timeframes)]
    for unwatch in unwatches:
        assert await asyncio.wait_for(unwatch, 5) is True
    assert session.state["topics"]["BTCUSDT"] == set()
    sent = session.sent
    await sim.step_market("bitget", market, symbol, 3)
    assert session.sent == sent


@pytest.mark.parametrize("market", MARKETS)
async def test_unlisted_symbol_gets_bitgets_error(sim, client, market):
    unlisted = "NOPE/USDT" if market is Market.SPOT else "NOPE/USDT:USDT"
    add_markets(client, ConnectionKey(exchange="bitget", market=market), MARKET_DATA, [unlisted])
    with pytest.raises(ccxt.BadRequest, match="instId:NOPEUSDT doesn't exist"):
        await asyncio.wait_for(client.watch_ticker(unlisted), 5)


async def test_wire_checksum_ping_and_errors(sim):
    """The raw socket: a ping gets "pong", `books` frames carry seq and Bitget's signed CRC32 of the top 25
    levels (recomputed here from the frames alone), a channel or instType this path does not serve is 30001."""
    market, symbol = Market.FUTURE, SYMBOL[Market.FUTURE]
    arg = {"instType": "USDT-FUTURES", "channel": "books", "instId": "BTCUSDT"}
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{sim.endpoints('bitget', market).ws}/v2/ws/public")

        async def recv():
            msg = await asyncio.wait_for(ws.receive(), 3)
            return decode_frame(msg.data)

        await ws.send_str("ping")
        assert await recv() == "pong"
        await ws.send_str(json.dumps({"op": "subscribe", "args": [arg]}))
        assert await recv() == {"event": "subscribe", "arg": arg}
        snapshot = await recv()
        assert snapshot["action"] == "snapshot" and snapshot["arg"] == arg
        book = {side: {p: a for p, a in snapshot["data"][0][side]} for side in ("bids", "asks")}
        state = sim.market("bitget", market, symbol)
        for _ in range(3):
            (step,) = await sim.step_market("bitget", market, symbol)
            update = await recv()
            data = update["data"][0]
            assert update["action"] == "update" and data["seq"] == step.book.seq == state.seq
            for side in ("bids", "asks"):
                apply(book[side], data[side])
            bids = sorted(book["bids"].items(), key=lambda level: -Decimal(level[0]))[:25]
            asks = sorted(book["asks"].items(), key=lambda level: Decimal(level[0]))[:25]
            text = ":".join(f"{b[0]}:{b[1]}:{a[0]}:{a[1]}" for b, a in zip(bids, asks))
            crc = zlib.crc32(text.encode())
            assert data["checksum"] == (crc - 2**32 if crc >= 2**31 else crc)
        for wrong in ({**arg, "channel": "books50"}, {**arg, "instType": "SPOT"}):
            await ws.send_str(json.dumps({"op": "subscribe", "args": [wrong]}))
            error = await recv()
            assert error["event"] == "error" and error["code"] == 30001 and error["arg"] == wrong
            assert error["msg"].endswith("doesn't exist")
        await ws.close()
