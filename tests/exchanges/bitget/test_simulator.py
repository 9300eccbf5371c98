"""Bitget simulator plugin on a real socket: login refusals, per-arg acks, channels, text ping, pushes, REST fills."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest

from exchanges.bitget.auth import login_message
from exchanges.bitget.normalize import normalize
from exchanges.simulator import Simulator
from framework.connection import decode_frame
from framework.events import Market, OrderStatus, OrderUpdate, Trade, now_ms

SYMBOL = {Market.SPOT: "BTC/USDT", Market.FUTURE: "BTC/USDT:USDT"}
INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}
FILLS_PATH = {Market.SPOT: "/api/v2/spot/trade/fills", Market.FUTURE: "/api/v2/mix/order/fills"}
MARKETS = [pytest.param(Market.SPOT, id="spot"), pytest.param(Market.FUTURE, id="future")]


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bitget"]) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def ws_url(sim: Simulator, market: Market) -> str:
    return f"{sim.endpoints('bitget', market).ws}/v2/ws/private"


async def recv(ws, timeout: float = 3.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


async def assert_silent(ws, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        msg = await asyncio.wait_for(ws.receive(), seconds)
        pytest.fail(f"expected no frame, got {msg}")


def subscribe(market: Market, *channels: str, inst_id: str = "default") -> dict:
    return {"op": "subscribe",
            "args": [{"instType": INST_TYPE[market], "channel": c, "instId": inst_id} for c in channels]}


async def logged_in(http, sim: Simulator, market: Market, *channels: str, inst_id: str = "default"):
    """A raw socket, logged in and subscribed (acks consumed)."""
    creds = sim.credentials_for("bitget")
    ws = await http.ws_connect(ws_url(sim, market))
    await ws.send_json(login_message(creds.api_key, creds.secret, creds.passphrase, now_ms()))
    assert await recv(ws) == {"event": "login", "code": 0, "msg": ""}
    if channels:
        await ws.send_json(subscribe(market, *channels, inst_id=inst_id))
        for _ in channels:
            assert (await recv(ws))["event"] == "subscribe"
    return ws


def signed_headers(creds, method: str, path: str, query: str, timestamp: int | None = None) -> dict:
    """Bitget REST auth, written out independently of the plugin: base64 HMAC-SHA256 of ts+METHOD+path?query."""
    ts = str(now_ms() if timestamp is None else timestamp)
    payload = f"{ts}{method}{path}{'?' + query if query else ''}"
    signature = base64.b64encode(hmac.new(creds.secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()
    return {"ACCESS-KEY": creds.api_key, "ACCESS-SIGN": signature, "ACCESS-TIMESTAMP": ts,
            "ACCESS-PASSPHRASE": creds.passphrase, "Content-Type": "application/json"}


async def get_fills(http, sim: Simulator, market: Market, params: dict, creds=None, **header_changes):
    creds = creds or sim.credentials_for("bitget")
    query = urlencode(sorted(params.items()))
    headers = signed_headers(creds, "GET", FILLS_PATH[market], query)
    headers.update(header_changes)
    headers = {k: v for k, v in headers.items() if v is not None}
    url = f"{sim.endpoints('bitget', market).rest}{FILLS_PATH[market]}" + (f"?{query}" if query else "")
    async with http.get(url, headers=headers) as response:
        return response.status, json.loads(await response.text(), parse_float=Decimal)


def rows_of(market: Market, body: dict) -> list[dict]:
    return body["data"] if market is Market.SPOT else body["data"]["fillList"]


# login ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
async def test_good_login_is_acked_then_each_subscribed_arg_is_acked_once(sim, http, market):
    creds = sim.credentials_for("bitget")
    async with asyncio.timeout(10):
        ws = await http.ws_connect(ws_url(sim, market))
        await ws.send_json(login_message(creds.api_key, creds.secret, creds.passphrase, now_ms()))
        await ws.send_json(subscribe(market, "orders", "fill"))
        assert await recv(ws) == {"event": "login", "code": 0, "msg": ""}
        for channel in ("orders", "fill"):
            assert await recv(ws) == {
                "event": "subscribe", "arg": {"instType": INST_TYPE[market], "channel": channel, "instId": "default"}}
        await ws.close()


def _bad_login(creds, field: str) -> dict:
    message = login_message(creds.api_key, creds.secret, creds.passphrase, now_ms())
    arg = message["args"][0]
    if field == "secret":
        arg.update(login_message(creds.api_key, "0" * len(creds.secret), creds.passphrase, now_ms())["args"][0])
    elif field == "api_key":
        arg["apiKey"] = "0" * len(creds.api_key)
    elif field == "passphrase":
        arg["passphrase"] = "wrong"
    elif field == "expired":
        arg.update(login_message(creds.api_key, creds.secret, creds.passphrase, now_ms() - 60_000)["args"][0])
    elif field == "timestamp":
        arg["timestamp"] = "yesterday"
    return message


@pytest.mark.parametrize("field, code, msg", [
    ("secret", 30015, "Invalid sign"),
    ("api_key", 30011, "Invalid ACCESS_KEY"),
    ("passphrase", 30012, "Invalid ACCESS_PASSPHRASE"),
    ("timestamp", 30013, "Invalid ACCESS_TIMESTAMP"),
    ("expired", 30014, "Request timestamp expired"),
])
async def test_refused_login_gets_bitgets_error_and_no_data(sim, http, field, code, msg):
    creds = sim.credentials_for("bitget")
    async with asyncio.timeout(10):
        ws = await http.ws_connect(ws_url(sim, Market.SPOT))
        await ws.send_json(_bad_login(creds, field))
        assert await recv(ws) == {"event": "error", "code": code, "msg": msg}
        await ws.send_json(subscribe(Market.SPOT, "orders", "fill"))
        for _ in range(2):
            error = await recv(ws)
            assert (error["event"], error["code"]) == ("error", 30004)
        await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.01", "100")
        await assert_silent(ws)
        assert not ws.closed  # Bitget keeps a refused socket open: the client must stop on its own
        await ws.close()


async def test_login_timestamp_in_milliseconds_is_accepted_too(sim, http):
    creds = sim.credentials_for("bitget")
    message = login_message(creds.api_key, creds.secret, creds.passphrase, now_ms())
    arg = message["args"][0]
    arg["timestamp"] = str(now_ms())
    arg["sign"] = base64.b64encode(hmac.new(creds.secret.encode(), f"{arg['timestamp']}GET/user/verify".encode(),
                                            hashlib.sha256).digest()).decode()
    async with asyncio.timeout(10):
        ws = await http.ws_connect(ws_url(sim, Market.SPOT))
        await ws.send_json(message)
        assert await recv(ws) == {"event": "login", "code": 0, "msg": ""}
        await ws.close()


async def test_subscribe_before_login_gets_30004_and_no_data(sim, http):
    async with asyncio.timeout(10):
        ws = await http.ws_connect(ws_url(sim, Market.FUTURE))
        await ws.send_json(subscribe(Market.FUTURE, "fill"))
        error = await recv(ws)
        assert error["event"] == "error" and error["code"] == 30004
        assert error["arg"] == {"instType": "USDT-FUTURES", "channel": "fill", "instId": "default"}
        await sim.fill("bitget", "future", "BTC/USDT:USDT", "buy", "0.01", "100")
        await assert_silent(ws)
        await ws.close()


# subscriptions and keepalive -----------------------------------------------------------------------------------
async def test_unknown_channel_gets_30001_doesnt_exist(sim, http):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, Market.SPOT)
        await ws.send_json(subscribe(Market.SPOT, "candle1m"))
        error = await recv(ws)
        assert error["code"] == 30001 and "doesn't exist" in error["msg"]
        await ws.close()


async def test_text_ping_gets_text_pong(sim, http):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, Market.FUTURE)
        await ws.send_str("ping")
        msg = await asyncio.wait_for(ws.receive(), 3)
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, "pong")
        await ws.close()
    assert sim.venue("bitget").client_silence_limit == 120.0  # Bitget: no "ping" for 2 minutes closes the socket


async def test_json_ping_is_not_bitgets_keepalive(sim, http):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, Market.SPOT)
        await ws.send_json({"op": "ping"})
        error = await recv(ws)
        assert error["event"] == "error" and error["code"] == 30002
        await ws.close()


@pytest.mark.parametrize("market", MARKETS)
async def test_only_subscribed_channel_is_pushed(sim, http, market):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, market, "fill")
        _, fills = await sim.fill("bitget", market, SYMBOL[market], "buy", "0.02", "100.5", parts=2)
        for fill in fills:
            push = await recv(ws)
            assert push["arg"]["channel"] == "fill" and push["data"][0]["tradeId"] == fill.trade_id
        await assert_silent(ws)  # no `orders` pushes
        await ws.close()


async def test_symbol_subscription_gets_only_its_symbol_with_the_symbol_echoed(sim, http):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, Market.SPOT, "orders", inst_id="ETHUSDT")
        await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.01", "100")
        await assert_silent(ws)
        await sim.fill("bitget", "spot", "ETH/USDT", "buy", "0.01", "100")
        push = await recv(ws)
        assert push["arg"] == {"instType": "SPOT", "channel": "orders", "instId": "ETHUSDT"}
        assert push["data"][0]["instId"] == "ETHUSDT"
        await ws.close()


async def test_unsubscribe_is_acked_and_stops_pushes(sim, http):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, Market.FUTURE, "orders")
        unsub = subscribe(Market.FUTURE, "orders") | {"op": "unsubscribe"}
        await ws.send_json(unsub)
        assert await recv(ws) == {"event": "unsubscribe", "arg": unsub["args"][0]}
        await sim.fill("bitget", "future", "BTC/USDT:USDT", "buy", "0.01", "100")
        await assert_silent(ws)
        await ws.close()


# pushes ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
async def test_pushes_normalize_to_the_ledgers_fills_and_a_filled_order(sim, http, market):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, market, "orders", "fill")
        order, fills = await sim.fill("bitget", market, SYMBOL[market], "buy", "0.030", "65000.5",
                                      client_order_id="alpha-1", parts=3, is_maker=False)
        pushes = [await recv(ws) for _ in range(1 + 2 * len(fills))]  # order created, then orders+fill per fill
        await ws.close()
    assert all(p["action"] == "snapshot" and type(p["ts"]) is int for p in pushes)
    events = [e for p in pushes for e in normalize(p, market)]
    updates = [e for e in events if isinstance(e, OrderUpdate)]
    assert [u.status for u in updates] == [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED,
                                           OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert all(u.order_id == order.order_id and u.client_order_id == "alpha-1" for u in updates)
    assert updates[-1].filled == Decimal("0.030") and updates[-1].amount == Decimal("0.030")
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(trades) == 2 * len(fills)  # each fill on both channels, with one dedup key
    by_id: dict[str, set] = {}
    for trade in trades:
        by_id.setdefault(trade.trade_id, set()).add(
            (trade.dedup_key, trade.amount, trade.price, trade.cost, trade.fee_cost, trade.fee_currency,
             trade.is_maker, trade.timestamp, trade.client_order_id, trade.symbol, trade.side.value))
    for fill in fills:
        assert by_id[fill.trade_id] == {(
            ("bitget", market.value, "default", SYMBOL[market], fill.trade_id, fill.order_id), fill.amount,
            fill.price, fill.cost, fill.fee, "USDT", False, fill.time, "alpha-1", SYMBOL[market], "buy")}


@pytest.mark.parametrize("market, fill_fee_sign", [(Market.SPOT, 1), (Market.FUTURE, -1)])
async def test_wire_fee_signs_follow_bitget(sim, http, market, fill_fee_sign):
    async with asyncio.timeout(10):
        ws = await logged_in(http, sim, market, "orders", "fill")
        _, (fill,) = await sim.fill("bitget", market, SYMBOL[market], "sell", "0.5", "200", is_maker=True)
        pushes = [await recv(ws) for _ in range(3)]
        await ws.close()
    orders_row = pushes[1]["data"][0]
    fill_row = pushes[2]["data"][0]
    assert Decimal(orders_row["fillFee"]) == -fill.fee  # orders: "negative value" = paid
    assert Decimal(fill_row["feeDetail"][0]["totalFee"]) == fill_fee_sign * fill.fee
    assert (orders_row["tradeScope"], fill_row["tradeScope"]) == ("M", "maker")
    client_key = "clientOid" if market is Market.SPOT else "clientOId"  # the futures docs spell it clientOId
    assert orders_row[client_key]  # Bitget fills in a clientOid when the order had none


# REST fills ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
async def test_signed_fills_request_returns_newest_first_in_bitgets_shape(sim, http, market):
    _, fills = await sim.fill("bitget", market, SYMBOL[market], "buy", "0.3", "101.5", parts=3)
    params = {"symbol": "BTCUSDT"} | ({"productType": "USDT-FUTURES"} if market is Market.FUTURE else {})
    status, body = await get_fills(http, sim, market, params)
    assert status == 200 and body["code"] == "00000" and body["msg"] == "success"
    rows = rows_of(market, body)
    assert [r["tradeId"] for r in rows] == [f.trade_id for f in reversed(fills)]
    row, fill = rows[0], fills[-1]
    fee = row["feeDetail"] if market is Market.SPOT else row["feeDetail"][0]
    assert Decimal(fee["totalFee"]) == -fill.fee and fee["feeCoin"] == "USDT"
    assert row["orderId"] == fill.order_id and row["cTime"] == str(fill.time) and row["side"] == "buy"
    if market is Market.SPOT:
        assert (Decimal(row["priceAvg"]), Decimal(row["size"]), Decimal(row["amount"])) == (
            fill.price, fill.amount, fill.cost)
    else:
        assert (Decimal(row["price"]), Decimal(row["baseVolume"]), Decimal(row["quoteVolume"])) == (
            fill.price, fill.amount, fill.cost)
        assert body["data"]["endId"] == fills[0].trade_id


@pytest.mark.parametrize("market", MARKETS)
async def test_id_less_than_pages_through_every_fill_once(sim, http, market):
    _, fills = await sim.fill("bitget", market, SYMBOL[market], "buy", "0.7", "100", parts=7)
    base = {"symbol": "BTCUSDT", "limit": "3"} | ({"productType": "USDT-FUTURES"} if market is Market.FUTURE else {})
    seen, cursor = [], None
    async with asyncio.timeout(10):
        while True:
            _, body = await get_fills(http, sim, market, base | ({"idLessThan": cursor} if cursor else {}))
            rows = rows_of(market, body)
            if not rows:
                break
            assert len(rows) <= 3
            seen += [r["tradeId"] for r in rows]
            cursor = rows[-1]["tradeId"]
    assert seen == [f.trade_id for f in reversed(fills)]


async def test_start_and_end_time_bound_the_rows(sim, http):
    _, first = await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.1", "100")
    await asyncio.sleep(0.02)
    _, second = await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.1", "100")
    await asyncio.sleep(0.02)
    _, third = await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.1", "100")
    window = {"symbol": "BTCUSDT", "startTime": str(second[0].time), "endTime": str(second[0].time)}
    _, body = await get_fills(http, sim, Market.SPOT, window)
    assert [r["tradeId"] for r in body["data"]] == [second[0].trade_id]
    _, body = await get_fills(http, sim, Market.SPOT, {"symbol": "BTCUSDT", "startTime": str(second[0].time)})
    assert [r["tradeId"] for r in body["data"]] == [third[0].trade_id, second[0].trade_id]
    _, body = await get_fills(http, sim, Market.SPOT, {"symbol": "BTCUSDT", "endTime": str(second[0].time)})
    assert [r["tradeId"] for r in body["data"]] == [second[0].trade_id, first[0].trade_id]
    _, body = await get_fills(http, sim, Market.SPOT, {"symbol": "ETHUSDT"})
    assert body["data"] == []


@pytest.mark.parametrize("market", MARKETS)
async def test_time_range_over_90_days_or_older_than_90_days_is_refused(sim, http, market):
    """Bitget keeps 90 days of fills and one request spans at most 90 days (ccxt/ccxt#21502: code 43111)."""
    await sim.fill("bitget", market, SYMBOL[market], "buy", "0.1", "100")
    day, now = 24 * 3600 * 1000, now_ms()
    base = {"symbol": "BTCUSDT"} | ({"productType": "USDT-FUTURES"} if market is Market.FUTURE else {})
    for start, end in ((now - 91 * day, now), (now - 100 * day, now - 95 * day)):
        status, body = await get_fills(http, sim, market, base | {"startTime": str(start), "endTime": str(end)})
        assert (status, body["code"], body["data"]) == (400, "43111", None)
    status, body = await get_fills(http, sim, market, base | {"startTime": str(now - 89 * day), "endTime": str(now)})
    assert status == 200 and len(rows_of(market, body)) == 1


@pytest.mark.parametrize("headers, code", [
    ({"ACCESS-KEY": None}, "40001"),
    ({"ACCESS-SIGN": None}, "40002"),
    ({"ACCESS-PASSPHRASE": None}, "40011"),
    ({"ACCESS-KEY": "bg_not_our_key"}, "40037"),
    ({"ACCESS-PASSPHRASE": "wrong"}, "40012"),
    ({"ACCESS-SIGN": base64.b64encode(b"0" * 32).decode()}, "40009"),
])
async def test_bad_rest_auth_is_refused_with_bitgets_code_and_no_rows(sim, http, headers, code):
    await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.1", "100")
    status, body = await get_fills(http, sim, Market.SPOT, {"symbol": "BTCUSDT"}, **headers)
    assert status == 400 and body["code"] == code and body["data"] is None


async def test_rest_request_signed_with_a_wrong_secret_or_stale_clock_is_refused(sim, http):
    creds = sim.credentials_for("bitget")
    url = f"{sim.endpoints('bitget', 'spot').rest}/api/v2/spot/trade/fills?symbol=BTCUSDT"
    wrong = type(creds)(api_key=creds.api_key, secret="0" * len(creds.secret), passphrase=creds.passphrase)
    async with http.get(url, headers=signed_headers(wrong, "GET", FILLS_PATH[Market.SPOT], "symbol=BTCUSDT")) as r:
        assert (await r.json())["code"] == "40009"
    stale = signed_headers(creds, "GET", FILLS_PATH[Market.SPOT], "symbol=BTCUSDT", timestamp=now_ms() - 60_000)
    async with http.get(url, headers=stale) as r:
        assert (await r.json())["code"] == "40008"


async def test_futures_fills_need_a_product_type(sim, http):
    status, body = await get_fills(http, sim, Market.FUTURE, {"symbol": "BTCUSDT"})
    assert status == 400 and body["code"] == "40019"
    _, body = await get_fills(http, sim, Market.FUTURE, {"productType": "COIN-FUTURES"})
    assert body["data"]["fillList"] == []


# ccxt against the simulator ----------------------------------------------------------------------------------------
def _ccxt_market(swap: bool) -> dict:
    return {
        "id": "BTCUSDT", "symbol": "BTC/USDT:USDT" if swap else "BTC/USDT", "base": "BTC", "quote": "USDT",
        "settle": "USDT" if swap else None, "baseId": "BTC", "quoteId": "USDT", "settleId": "USDT" if swap else None,
        "type": "swap" if swap else "spot", "spot": not swap, "swap": swap, "future": False, "option": False,
        "margin": False, "contract": swap, "linear": True if swap else None, "inverse": False if swap else None,
        "contractSize": 1 if swap else None, "active": True, "precision": {}, "limits": {},
    }


@pytest.mark.parametrize("market", MARKETS)
async def test_ccxt_fetch_my_trades_reads_the_simulators_fills(sim, market):
    ccxt_async = pytest.importorskip("ccxt.async_support")
    _, fills = await sim.fill("bitget", market, SYMBOL[market], "sell", "0.02", "64999.9", parts=2)
    creds = sim.credentials_for("bitget")
    exchange = ccxt_async.bitget({"apiKey": creds.api_key, "secret": creds.secret, "password": creds.passphrase})
    try:
        exchange.urls["api"]["spot"] = sim.endpoints("bitget", "spot").rest
        exchange.urls["api"]["mix"] = sim.endpoints("bitget", "future").rest
        exchange.set_markets([_ccxt_market(swap=False), _ccxt_market(swap=True)])
        since = fills[0].time
        trades = await asyncio.wait_for(exchange.fetch_my_trades(SYMBOL[market], since, 100), 10)
    finally:
        await exchange.close()
    assert sorted(t["id"] for t in trades) == sorted(f.trade_id for f in fills)
    by_id = {t["id"]: t for t in trades}
    for fill in fills:
        trade = by_id[fill.trade_id]
        assert trade["order"] == fill.order_id and trade["side"] == "sell" and trade["timestamp"] == fill.time
        assert Decimal(str(trade["price"])) == fill.price and Decimal(str(trade["amount"])) == fill.amount
        assert Decimal(str(trade["fee"]["cost"])) == fill.fee and trade["fee"]["currency"] == "USDT"
