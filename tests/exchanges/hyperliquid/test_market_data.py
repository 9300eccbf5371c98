"""Hyperliquid public market data: ccxt.pro 4.5.90 against the simulator's `/ws` (perpetuals, `BTC/USDC:USDC`).

ccxt gives floats: each is compared as `Decimal(str(x))` with the simulator's Decimals. Sizes are in the coin
(contract_size None). A subscribe gets the feed's current state at once; later frames come with market steps, so
a watch meant for a step is started before it (`watch_stepping`).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import ccxt
import pytest

from exchanges.hyperliquid.market_data import MARKET_DATA
from exchanges.simulator import Simulator
from exchanges.simulator.market import TIMEFRAMES_MS
from framework.connection import decode_frame
from framework.events import ConnectionKey, Market, Side
from framework.marketdata.client import add_markets, ccxt_client

SYMBOL = "BTC/USDC:USDC"
KEY = ConnectionKey(exchange="hyperliquid", market=Market.FUTURE)
DEPTH = 20  # the framework's default depth, and every l2Book frame's levels a side


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["hyperliquid"], market_rate=0, seed=20240611) as simulator:
        yield simulator


@pytest.fixture
async def client(sim):
    exchange = ccxt_client(KEY, MARKET_DATA, sim.endpoints("hyperliquid", "future"), [SYMBOL])
    yield exchange
    await exchange.close()


@pytest.fixture
async def raw(sim):
    """A plain socket on `/ws`, to read the frames as the venue writes them."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.ws_connect(sim.endpoints("hyperliquid", "future").ws + "/ws") as ws:
            yield ws


def dec(value) -> Decimal:
    return Decimal(str(value))


def top(side, depth: int = DEPTH) -> list[tuple[Decimal, Decimal]]:
    return [(dec(level[0]), dec(level[1])) for level in side[:depth]]


def market(sim: Simulator, symbol: str = SYMBOL):
    return sim.market("hyperliquid", "future", symbol)


async def watch_stepping(sim: Simulator, watch, symbol: str = SYMBOL):
    """Start `watch()`, then step the market once: returns (what the watch gave, the step)."""
    task = asyncio.ensure_future(watch())
    await asyncio.sleep(0.01)  # its subscribe (if any) is answered before the step's frames go out
    (step,) = await sim.step_market("hyperliquid", "future", symbol)
    return await asyncio.wait_for(task, 5), step


async def stepping_until_trades(sim: Simulator, watch, symbol: str = SYMBOL, tries: int = 30):
    """Watch across steps until one traded: (what the watch gave on that step, the step)."""
    for _ in range(tries):
        task = asyncio.ensure_future(watch())
        await asyncio.sleep(0.01)
        (step,) = await sim.step_market("hyperliquid", "future", symbol)
        if step.trades:
            return await asyncio.wait_for(task, 5), step
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    pytest.fail("the market never traded")


async def recv(ws, timeout: float = 3.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


async def assert_silent(ws, seconds: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        msg = await asyncio.wait_for(ws.receive(), seconds)
        pytest.fail(f"expected no frame, got {msg}")


def request(method: str = "subscribe", **subscription) -> dict:
    return {"method": method, "subscription": subscription}


# ccxt -----------------------------------------------------------------------------------------------------------------
async def test_ticker_is_the_mid_the_best_prices_and_the_day_figures(sim, client):
    first = await asyncio.wait_for(client.watch_ticker(SYMBOL), 5)  # the context comes right after the ack
    bid, ask = market(sim).best_bid()[0], market(sim).best_ask()[0]
    assert dec(first["close"]) == dec(first["last"]) == (bid + ask) / 2
    ticker, step = await stepping_until_trades(sim, lambda: client.watch_ticker(SYMBOL))
    public = market(sim)
    bid, ask = public.best_bid()[0], public.best_ask()[0]
    assert ticker["symbol"] == SYMBOL
    assert dec(ticker["last"]) == dec(ticker["close"]) == (bid + ask) / 2  # ccxt's last is the venue's midPx
    assert (dec(ticker["bid"]), dec(ticker["ask"])) == (bid, ask)
    assert dec(ticker["previousClose"]) == public.open
    assert dec(ticker["quoteVolume"]) == public.quote_volume > 0
    assert Decimal(ticker["info"]["markPx"]) == public.last == step.trades[-1].price
    assert Decimal(ticker["info"]["dayBaseVlm"]) == public.volume


async def test_order_book_is_the_simulators_top_20_after_every_step(sim, client):
    limit = MARKET_DATA.book_limit(Market.FUTURE, DEPTH)
    book = await asyncio.wait_for(client.watch_order_book(SYMBOL, limit), 5)  # the snapshot after the ack
    assert (top(book["bids"]), top(book["asks"])) == market(sim).book(DEPTH)
    assert len(book["bids"]) == len(book["asks"]) == DEPTH
    for _ in range(5):
        book, step = await watch_stepping(sim, lambda: client.watch_order_book(SYMBOL, limit))
        assert step.book is not None
        assert (top(book["bids"]), top(book["asks"])) == market(sim).book(DEPTH)
        assert book["timestamp"] == step.time


async def test_a_lost_snapshot_leaves_the_book_one_behind_and_the_next_resyncs_it(sim, client):
    limit = MARKET_DATA.book_limit(Market.FUTURE, DEPTH)
    await asyncio.wait_for(client.watch_order_book(SYMBOL, limit), 5)
    before = market(sim).book(DEPTH)
    sim.book_fault("hyperliquid", "future", SYMBOL, "gap")
    task = asyncio.ensure_future(client.watch_order_book(SYMBOL, limit))
    await asyncio.sleep(0.01)
    await sim.step_market("hyperliquid", "future", SYMBOL)  # its book frame is left out
    await asyncio.sleep(0.05)
    assert not task.done()  # no sequence to miss: ccxt just waits for the next snapshot
    stale = client.orderbooks[SYMBOL]
    assert (top(stale["bids"]), top(stale["asks"])) == before
    await sim.step_market("hyperliquid", "future", SYMBOL)
    book = await asyncio.wait_for(task, 5)
    assert (top(book["bids"]), top(book["asks"])) == market(sim).book(DEPTH)


async def test_the_checksum_fault_changes_nothing_on_a_venue_without_checksums(sim, client):
    limit = MARKET_DATA.book_limit(Market.FUTURE, DEPTH)
    await asyncio.wait_for(client.watch_order_book(SYMBOL, limit), 5)
    assert not MARKET_DATA.checksum and not sim.venue("hyperliquid").has_checksum
    sim.book_fault("hyperliquid", "future", SYMBOL, "checksum")
    book, step = await watch_stepping(sim, lambda: client.watch_order_book(SYMBOL, limit))
    assert step.book is not None
    assert (top(book["bids"]), top(book["asks"])) == market(sim).book(DEPTH)


async def test_trades_are_the_steps_trades(sim, client):
    trades, step = await stepping_until_trades(sim, lambda: client.watch_trades(SYMBOL))
    got = trades[-len(step.trades):]
    assert [t["id"] for t in got] == [str(t.trade_id) for t in step.trades]
    assert [(dec(t["price"]), dec(t["amount"])) for t in got] == [(t.price, t.amount) for t in step.trades]
    assert [t["side"] for t in got] == [t.side.value for t in step.trades]
    assert [t["timestamp"] for t in got] == [t.time for t in step.trades]
    assert all(t["symbol"] == SYMBOL for t in got)


async def test_a_trades_subscriber_first_gets_the_recent_trades(sim, client):
    steps = await sim.step_market("hyperliquid", "future", SYMBOL, 20)
    recent = [t for s in steps for t in s.trades]
    assert recent
    trades = await asyncio.wait_for(client.watch_trades(SYMBOL), 5)
    assert [(t["id"], dec(t["price"]), dec(t["amount"])) for t in trades] == [
        (str(t.trade_id), t.price, t.amount) for t in recent]


async def test_ohlcv_is_the_open_bar(sim, client):
    for timeframe in MARKET_DATA.timeframes:
        (first,) = (await asyncio.wait_for(client.watch_ohlcv(SYMBOL, timeframe), 5))[-1:]
        bar = market(sim).candle(timeframe)
        assert first[0] == bar.start and first[0] % TIMEFRAMES_MS[timeframe] == 0
    candles, _ = await stepping_until_trades(sim, lambda: client.watch_ohlcv(SYMBOL, "1m"))
    bar = market(sim).candle("1m")
    stamp, *figures = candles[-1]
    assert stamp == bar.start
    assert [dec(x) for x in figures] == [bar.open, bar.high, bar.low, bar.close, bar.volume]
    assert bar.count > 0 and bar.volume > 0


async def test_unwatch_unsubscribes_every_feed_and_a_new_watch_subscribes_again(sim, client):
    limit = MARKET_DATA.book_limit(Market.FUTURE, DEPTH)
    await asyncio.wait_for(client.watch_order_book(SYMBOL, limit), 5)
    await asyncio.wait_for(client.watch_ticker(SYMBOL), 5)
    await asyncio.wait_for(client.watch_ohlcv(SYMBOL, "1m"), 5)
    await sim.step_market("hyperliquid", "future", SYMBOL, 10)  # some trades, so the trades watch returns at once
    await asyncio.wait_for(client.watch_trades(SYMBOL), 5)
    (session,) = sim.sessions("hyperliquid", "future")
    assert session.subscriptions == {"l2Book:BTC", "activeAssetCtx:BTC", "candle:BTC:1m", "trades:BTC"}
    await asyncio.wait_for(client.un_watch_order_book(SYMBOL), 5)
    await asyncio.wait_for(client.un_watch_ticker(SYMBOL), 5)
    await asyncio.wait_for(client.un_watch_ohlcv(SYMBOL, "1m"), 5)
    await asyncio.wait_for(client.un_watch_trades(SYMBOL), 5)
    assert session.subscriptions == set()
    sent = session.sent
    await sim.step_market("hyperliquid", "future", SYMBOL, 5)
    assert session.sent == sent  # nothing goes out for the feeds it left
    book = await asyncio.wait_for(client.watch_order_book(SYMBOL, limit), 5)
    assert (top(book["bids"]), top(book["asks"])) == market(sim).book(DEPTH)
    assert session.subscriptions == {"l2Book:BTC"}


async def test_a_coin_the_venue_does_not_list_is_an_invalid_subscription(sim, client):
    add_markets(client, KEY, MARKET_DATA, ["PEPE/USDC:USDC"])
    with pytest.raises(ccxt.ExchangeError, match=r'Invalid subscription: \{"type":"l2Book","coin":"PEPE"'):
        await asyncio.wait_for(client.watch_order_book("PEPE/USDC:USDC"), 5)
    assert all(not s.subscriptions for s in sim.sessions("hyperliquid", "future"))


async def test_integer_sizes_and_prices_reach_ccxt_exactly(sim, client):
    """DOGE trades whole coins: the venue writes "123.0"."""
    doge = "DOGE/USDC:USDC"
    add_markets(client, KEY, MARKET_DATA, [doge])
    book = await asyncio.wait_for(client.watch_order_book(doge), 5)
    assert (top(book["bids"]), top(book["asks"])) == market(sim, doge).book(DEPTH)
    trades, step = await stepping_until_trades(sim, lambda: client.watch_trades(doge), doge)
    assert [dec(t["amount"]) for t in trades[-len(step.trades):]] == [t.amount for t in step.trades]


# the wire -------------------------------------------------------------------------------------------------------------
async def test_acks_echo_the_subscription_as_the_venue_writes_it_then_the_state_follows(sim, raw):
    await raw.send_json({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}, "id": "7"})
    assert await recv(raw) == {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": {
        "type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None}}}
    book = await recv(raw)
    bids, asks = market(sim).book(DEPTH)
    assert book["channel"] == "l2Book" and book["data"]["coin"] == "BTC"
    assert book["data"]["time"] == market(sim).time
    got = [[(Decimal(level["px"]), Decimal(level["sz"])) for level in side] for side in book["data"]["levels"]]
    assert got == [bids, asks]
    assert {level["n"] for side in book["data"]["levels"] for level in side} == {1}  # a simulated level: one order
    await raw.send_json(request(type="candle", coin="BTC", interval="5m"))
    ack = await recv(raw)
    assert list(ack["data"]["subscription"].items()) == [("type", "candle"), ("interval", "5m"), ("coin", "BTC")]
    candle = (await recv(raw))["data"]
    assert list(candle) == ["t", "T", "s", "i", "o", "c", "h", "l", "v", "n"]
    assert candle["T"] - candle["t"] == 300_000 - 1 and candle["s"] == "BTC" and candle["i"] == "5m"
    await raw.send_json(request(type="activeAssetCtx", coin="BTC"))
    assert (await recv(raw))["data"]["subscription"] == {"type": "activeAssetCtx", "coin": "BTC"}
    context = await recv(raw)
    assert context["channel"] == "activeAssetCtx" and context["data"]["coin"] == "BTC"
    await raw.send_json(request(type="trades", coin="BTC"))
    assert (await recv(raw))["data"]["subscription"] == {"type": "trades", "coin": "BTC"}
    await assert_silent(raw)  # no trades yet: no snapshot


async def test_numbers_drop_trailing_zeros_and_keep_one_decimal_on_integers(sim, raw):
    await raw.send_json(request(type="trades", coin="DOGE"))
    await recv(raw)
    for _ in range(30):
        (step,) = await sim.step_market("hyperliquid", "future", "DOGE/USDC:USDC")
        if step.trades:
            break
    frame = await recv(raw)
    row, trade = frame["data"][0], step.trades[0]
    assert row["sz"] == f"{int(trade.amount)}.0"
    assert row["px"] == format(trade.price.normalize(), "f")
    assert row["side"] == ("B" if trade.side is Side.BUY else "A") and row["tid"] == trade.trade_id
    assert row["hash"].startswith("0x") and len(row["users"]) == 2


async def test_repeats_bad_requests_and_unserved_options_get_the_venues_errors(sim, raw):
    await raw.send_json(request(type="trades", coin="ETH"))
    await recv(raw)
    await raw.send_json(request(type="trades", coin="ETH"))
    assert await recv(raw) == {"channel": "error", "data": 'Already subscribed: {"type":"trades","coin":"ETH"}'}
    await raw.send_json(request("unsubscribe", type="trades", coin="ETH"))
    assert (await recv(raw))["data"] == {"method": "unsubscribe", "subscription": {"type": "trades", "coin": "ETH"}}
    await raw.send_json(request("unsubscribe", type="trades", coin="ETH"))
    assert await recv(raw) == {"channel": "error", "data": 'Already unsubscribed: {"type":"trades","coin":"ETH"}'}
    await raw.send_json(request(type="candle", coin="ETH", interval="7m"))
    assert (await recv(raw))["data"].startswith("Error parsing JSON into valid websocket request: ")
    await raw.send_json(request(type="candle", coin="ETH", interval="2h"))  # a venue interval the simulator lacks
    assert (await recv(raw))["data"] == 'Invalid subscription: {"type":"candle","interval":"2h","coin":"ETH"}'
    await raw.send_json(request(type="l2Book", coin="ETH", nSigFigs=5))  # the simulator does not aggregate
    assert (await recv(raw))["data"] == (
        'Invalid subscription: {"type":"l2Book","coin":"ETH","nSigFigs":5,"mantissa":null}')
    await raw.send_json(request(type="activeAssetCtx", coin=3))
    assert (await recv(raw))["data"].startswith("Error parsing JSON into valid websocket request: ")


async def test_market_feeds_do_not_count_as_tracked_users(sim, raw):
    for coin in ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA", "LTC", "LINK", "AVAX"):
        await raw.send_json(request(type="trades", coin=coin))
        assert (await recv(raw))["channel"] == "subscriptionResponse"  # no trades yet: no snapshot
    for n in range(10):  # the venue's limit of 10 users is all still free
        await raw.send_json(request(type="userFills", user=f"0x{n:040x}"))
        assert (await recv(raw))["channel"] == "subscriptionResponse"
        assert (await recv(raw))["data"]["isSnapshot"] is True
