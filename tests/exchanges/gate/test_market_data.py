"""Gate public market data on the simulator, read by ccxt.pro 4.5.90 as the framework builds it: tickers, books
(spot.obu's full push and deltas; futures deltas over the REST snapshot), trades and candles give the simulator's
exact figures in both markets; gaps resync; un-watches unsubscribe; an unlisted pair gets Gate's error. Then the
wire itself: futures sizes with and without `X-Gate-Size-Decimal`, pings, refusals and the book snapshot."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Awaitable, Callable

import aiohttp
import ccxt
import pytest

from exchanges.gate.market_data import MARKET_DATA
from exchanges.simulator import Simulator
from framework.events import ConnectionKey, Market
from framework.marketdata.client import ccxt_client

pytestmark = pytest.mark.timeout(60)

SEED = 20260901
WAIT = 5.0  # seconds a value the test expects may take
STEP_WAIT = 1.0  # seconds a watch gets after a step before the market steps again (a step may send it nothing)
SYMBOLS = {"spot": "BTC/USDT", "future": "BTC/USDT:USDT"}
PAIR = "BTC_USDT"
BOOK_LEVEL = {"spot": "50", "future": "100"}  # what ccxt subscribes for the framework's default depth (20)
MARKETS = pytest.mark.parametrize("market", ["spot", "future"])


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["gate"], market_rate=0, seed=SEED) as simulator:
        yield simulator


@asynccontextmanager
async def client(sim: Simulator, market: str, *symbols: str):
    exchange = ccxt_client(ConnectionKey(exchange="gate", market=market), MARKET_DATA, sim.endpoints("gate", market),
                           symbols or [SYMBOLS[market]])
    try:
        yield exchange
    finally:
        await exchange.close()


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def size(market: str) -> Decimal:
    return MARKET_DATA.contract_size(Market.parse(market), SYMBOLS[market]) or Decimal(1)


def limit(market: str) -> int:
    return MARKET_DATA.book_limit(Market.parse(market), 20)


def topics(sim: Simulator, market: str) -> list[dict]:
    return [s.state.get("public", {}) for s in sim.sessions("gate", market) if s.public]


def subscribed(sim: Simulator, market: str, kind: str, key: Any) -> Callable[[], bool]:
    return lambda: any(key in t.get(kind, ()) for t in topics(sim, market))


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.005)


async def stepped(sim: Simulator, market: str, watch: Awaitable, ready: Callable[[], bool] | None = None) -> Any:
    """Start a watch (once `ready`: its topic subscribed), step the market until the watch gives something, and
    return it: the market does not move on before the watch has had the frames of the last step."""
    task = asyncio.ensure_future(watch)
    if ready is not None:
        await until(ready)
    else:
        await asyncio.sleep(0.02)
    for _ in range(10):
        await sim.step_market("gate", market, SYMBOLS[market])
        done, _ = await asyncio.wait({task}, timeout=STEP_WAIT)
        if done:
            return task.result()
    return await asyncio.wait_for(task, WAIT)


async def open_book(sim: Simulator, market: str, exchange: Any) -> Any:
    """The first book: spot's comes with the subscription (the full push), futures' after a delta and the
    REST snapshot it makes ccxt fetch."""
    watch = exchange.watch_order_book(SYMBOLS[market], limit(market))
    ready = subscribed(sim, market, "book", (PAIR, BOOK_LEVEL[market]))
    if market == "spot":
        task = asyncio.ensure_future(watch)
        await until(ready)
        return await asyncio.wait_for(task, WAIT)
    return await stepped(sim, market, watch, ready)


def same_book(sim: Simulator, market: str, book: Any) -> bool:
    """The ccxt book (contracts × contract size on futures) is the simulator's whole book, at its sequence."""
    public = sim.market("gate", market, SYMBOLS[market])
    bids, asks = public.book()
    scale = size(market)
    theirs = ([(dec(p), dec(a) * scale) for p, a in book["bids"]], [(dec(p), dec(a) * scale) for p, a in book["asks"]])
    return theirs == (bids, asks) and book["nonce"] == public.seq


# ccxt.pro against the simulator ---------------------------------------------------------------------------------
@MARKETS
async def test_watch_ticker_gives_the_simulators_figures(sim, market):
    symbol = SYMBOLS[market]
    public = sim.market("gate", market, symbol)
    public.trade_chance = 1.0
    async with client(sim, market) as exchange:
        for _ in range(3):
            ready = subscribed(sim, market, "tickers", PAIR)
            ticker = await stepped(sim, market, exchange.watch_ticker(symbol), ready)
            assert ticker["symbol"] == symbol
            assert [dec(ticker[k]) for k in ("last", "high", "low")] == [public.last, public.high, public.low]
            assert (dec(ticker["baseVolume"]), dec(ticker["quoteVolume"])) == (public.volume, public.quote_volume)
            if market == "spot":
                assert (dec(ticker["bid"]), dec(ticker["ask"])) == (public.best_bid()[0], public.best_ask()[0])
            else:  # futures.tickers has no best bid or ask; baseVolume is its coins, volume_24h its contracts
                assert ticker["bid"] is None and ticker["ask"] is None
                assert dec(ticker["info"]["volume_24h"]) * size(market) == public.volume


@MARKETS
async def test_order_book_is_the_simulators_after_every_step(sim, market):
    async with client(sim, market) as exchange:
        book = await open_book(sim, market, exchange)
        assert same_book(sim, market, book) and len(book["bids"]) == len(book["asks"]) == 50
        for _ in range(6):
            book = await stepped(sim, market, exchange.watch_order_book(SYMBOLS[market], limit(market)))
            assert same_book(sim, market, book)


@MARKETS
async def test_watch_trades_gives_the_simulators_trades(sim, market):
    symbol = SYMBOLS[market]
    sim.market("gate", market, symbol).trade_chance = 1.0
    async with client(sim, market) as exchange:
        ready = subscribed(sim, market, "trades", PAIR)
        for _ in range(3):
            task = asyncio.ensure_future(exchange.watch_trades(symbol))
            await until(ready)
            [step] = await sim.step_market("gate", market, symbol)
            trades = await asyncio.wait_for(task, WAIT)
            assert step.trades
            got = [(t["id"], dec(t["price"]), dec(t["amount"]) * size(market), t["side"], t["timestamp"])
                   for t in trades[-len(step.trades):]]
            assert got == [(str(t.trade_id), t.price, t.amount, t.side.value, t.time) for t in step.trades]


@MARKETS
async def test_watch_ohlcv_gives_the_simulators_bar(sim, market):
    symbol = SYMBOLS[market]
    public = sim.market("gate", market, symbol)
    public.trade_chance = 1.0
    async with client(sim, market) as exchange:
        for _ in range(3):
            bars = await stepped(sim, market, exchange.watch_ohlcv(symbol, "1m"),
                                 subscribed(sim, market, "candles", ("1m", PAIR)))
            bar = public.candle("1m")
            start, o, h, low, c, volume = bars[-1]
            assert (start, dec(o), dec(h), dec(low), dec(c)) == (bar.start, bar.open, bar.high, bar.low, bar.close)
            if market == "spot":  # ccxt reads Gate's `v`, the quote volume, as the candle's volume
                assert dec(volume) == bar.quote_volume and bar.volume > 0
            else:  # contracts
                assert dec(volume) * size(market) == bar.volume


@MARKETS
async def test_a_lost_book_change_is_resynced(sim, market):
    """Futures: ccxt sees `U` past its nonce + 1, rejects the watch (ChecksumError) and the next watch subscribes
    again over a new snapshot. Spot: ccxt would not notice; Gate resends the full book and ccxt resets on it."""
    symbol = SYMBOLS[market]
    async with client(sim, market) as exchange:
        await open_book(sim, market, exchange)
        sim.book_fault("gate", market, symbol, "gap")
        errors = []
        for _ in range(8):  # as the framework does: on a ccxt error, watch again
            try:
                book = await stepped(sim, market, exchange.watch_order_book(symbol, limit(market)))
            except ccxt.BaseError as exc:
                errors.append(exc)
                continue
            if same_book(sim, market, book):
                break
        else:
            pytest.fail(f"the book never matched the simulator's again (errors: {errors!r})")
        if market == "future":
            assert errors and isinstance(errors[0], ccxt.ChecksumError)
        else:
            assert not errors


async def test_ccxt_applies_a_spot_delta_that_skips_ids(sim):
    """ccxt reads only `u` of a spot.obu delta: one that skips ids (Gate's rule: resubscribe) is applied."""
    async with client(sim, "spot") as exchange:
        book = await open_book(sim, "spot", exchange)
        nonce = book["nonce"]
        task = asyncio.ensure_future(exchange.watch_order_book(SYMBOLS["spot"], limit("spot")))
        await asyncio.sleep(0.02)
        delta = {"t": 1, "s": f"ob.{PAIR}.50", "U": nonce + 5, "u": nonce + 5, "b": [["1", "2"]], "a": []}
        await sim.inject_raw("gate", "spot", json.dumps({"channel": "spot.obu", "result": delta, "event": "update"}))
        book = await asyncio.wait_for(task, WAIT)
        assert book["nonce"] == nonce + 5 and [1.0, 2.0] in book["bids"]


@MARKETS
async def test_un_watch_unsubscribes_trades_and_book(sim, market):
    symbol = SYMBOLS[market]
    sim.market("gate", market, symbol).trade_chance = 1.0
    async with client(sim, market) as exchange:
        await stepped(sim, market, exchange.watch_trades(symbol), subscribed(sim, market, "trades", PAIR))
        await open_book(sim, market, exchange)
        assert await asyncio.wait_for(exchange.un_watch_trades(symbol), WAIT) is True
        assert await asyncio.wait_for(exchange.un_watch_order_book(symbol), WAIT) is True
        [session] = [s for s in sim.sessions("gate", market) if s.public]
        assert not session.state["public"]["trades"] and not session.state["public"]["book"]
        assert not session.subscriptions
        sent = session.sent
        await sim.step_market("gate", market, symbol, 3)
        assert session.sent == sent
        for un_watch in (exchange.un_watch_ticker(symbol), exchange.un_watch_ohlcv(symbol, "1m")):
            with pytest.raises(ccxt.NotSupported):  # ccxt has neither for Gate: the framework catches this
                await un_watch


@MARKETS
async def test_an_unlisted_pair_gets_gates_error(sim, market):
    symbol = "NOPE/USDT" if market == "spot" else "NOPE/USDT:USDT"
    message = "unknown currency pair: NOPE_USDT" if market == "spot" else "unknown contract NOPE_USDT"
    async with client(sim, market, symbol) as exchange:
        with pytest.raises(ccxt.BadRequest, match=message):
            await asyncio.wait_for(exchange.watch_ticker(symbol), WAIT)
    async with client(sim, market, symbol) as exchange:
        with pytest.raises(ccxt.BadRequest, match=message):
            await asyncio.wait_for(exchange.watch_order_book(symbol, limit(market)), WAIT)
    assert not any(any(t.values()) for t in topics(sim, market))


# the wire ---------------------------------------------------------------------------------------------------------
async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict:
    message = await ws.receive(timeout=WAIT)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


def request(channel: str, payload: list, event: str = "subscribe", request_id: int = 1) -> dict:
    return {"id": request_id, "time": 1, "channel": channel, "event": event, "payload": payload}


async def test_futures_sizes_are_whole_numbers_unless_decimal_sizes_are_asked_for(sim):
    sim.market("gate", "future", SYMBOLS["future"]).trade_chance = 1.0
    url = sim.endpoints("gate", "future").ws + "/v4/ws/usdt"
    async with aiohttp.ClientSession() as http:
        plain = await http.ws_connect(url)
        decimal = await http.ws_connect(url, headers={"X-Gate-Size-Decimal": "1"})
        for ws in (plain, decimal):
            await ws.send_json(request("futures.trades", [PAIR]))
            ack = await receive(ws)
            assert ack["id"] == 1 and ack["error"] is None and ack["result"] == {"status": "success"}
        [step] = await sim.step_market("gate", "future", SYMBOLS["future"])
        contracts = [t.amount / size("future") * (1 if t.side.value == "buy" else -1) for t in step.trades]
        plain_trades = (await receive(plain))["result"]
        decimal_trades = (await receive(decimal))["result"]
        assert [t["size"] for t in plain_trades] == [int(c) for c in contracts]
        assert [t["size"] for t in decimal_trades] == [format(c.normalize(), "f") for c in contracts]
        await decimal.send_json({"time": 1, "channel": "futures.ping"})
        assert (await receive(decimal))["channel"] == "futures.pong"
        await plain.close()
        await decimal.close()


async def test_spot_obu_pushes_the_full_book_first_and_allows_one_subscription_per_stream(sim):
    public = sim.market("gate", "spot", SYMBOLS["spot"])
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("gate", "spot").ws + "/ws/v4/")
        await ws.send_json(request("spot.obu", [f"ob.{PAIR}.50"]))
        assert (await receive(ws))["result"] == {"status": "success"}
        full = (await receive(ws))["result"]
        bids, asks = public.book()
        assert full["full"] is True and full["u"] == public.seq and full["s"] == f"ob.{PAIR}.50"
        assert full["b"] == [[str(p), str(a)] for p, a in bids] and full["a"] == [[str(p), str(a)] for p, a in asks]
        await ws.send_json(request("spot.obu", [f"ob.{PAIR}.50"], request_id=2))
        refused = await receive(ws)
        assert refused["error"] == {"code": 2, "message": f"Alert sub ob.{PAIR}.50"} and refused["id"] == 2
        await ws.send_json(request("spot.obu", [f"ob.{PAIR}.20"], request_id=3))
        assert (await receive(ws))["error"]["code"] == 2
        [step] = await sim.step_market("gate", "spot", SYMBOLS["spot"])
        delta = (await receive(ws))["result"]
        assert (delta["U"], delta["u"]) == (step.book.first_seq, step.book.seq) and "full" not in delta
        await ws.send_json(request("spot.obu", [f"ob.{PAIR}.50"], event="unsubscribe", request_id=4))
        assert (await receive(ws))["result"] == {"status": "success"}
        await ws.send_json({"time": 1, "channel": "spot.ping"})
        assert (await receive(ws))["channel"] == "spot.pong"  # and no book push in between
        await ws.close()


async def test_futures_book_snapshot(sim):
    public = sim.market("gate", "future", SYMBOLS["future"])
    url = sim.endpoints("gate", "future").rest + "/api/v4/futures/usdt/order_book"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params={"contract": PAIR}) as resp:
            plain = await resp.json()
        async with http.get(url, params={"contract": PAIR, "limit": "100", "with_id": "true"},
                            headers={"X-Gate-Size-Decimal": "1"}) as resp:
            with_id = await resp.json()
        async with http.get(url, params={"contract": "NOPE_USDT"}) as resp:
            assert resp.status == 400 and (await resp.json())["label"] == "CONTRACT_NOT_FOUND"
    bids, asks = public.book()
    assert "id" not in plain and len(plain["bids"]) == len(plain["asks"]) == 10
    assert plain["bids"][0] == {"p": str(bids[0][0]), "s": int(bids[0][1] / size("future"))}
    assert with_id["id"] == public.seq and len(with_id["asks"]) == 50
    assert with_id["asks"] == [{"p": str(p), "s": format((a / size("future")).normalize(), "f")} for p, a in asks]


def test_rules():
    assert [MARKET_DATA.book_limit(Market.SPOT, d) for d in (5, 20, 50, 51, 400)] == [50, 50, 50, 400, 400]
    assert {MARKET_DATA.book_limit(Market.FUTURE, d) for d in (5, 20, 100, 500)} == {100}
    entry = MARKET_DATA.ccxt_market(Market.FUTURE, "ETH/USDT:USDT")
    assert (entry["id"], entry["settleId"], entry["contractSize"], entry["swap"]) == ("ETH_USDT", "usdt", 0.01, True)
    assert MARKET_DATA.contract_size(Market.SPOT, "ETH/USDT") is None
    assert "BTC/USDT:USDT" in MARKET_DATA.listed(Market.FUTURE) and "BTC/USDT" in MARKET_DATA.listed(Market.SPOT)
