"""Bybit simulator plugin on a real socket: login refusals, acks, topics, ping/pong, pushes, REST history via ccxt."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import attrs
import ccxt.async_support as ccxt_async
import pytest

from exchanges.bybit.auth import auth_args
from exchanges.bybit.normalize import normalize
from exchanges.bybit.stream import LIVE, BybitStream, handshake
from exchanges.simulator import Simulator
from exchanges.simulator.venues.bybit import BybitSim
from framework.venue import MessageKind
from framework.backfill import Backfiller, BackfillRules
from framework.connection import decode_frame
from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Side, Trade, now_ms

SYMBOL = {Market.SPOT: "BTC/USDT", Market.FUTURE: "BTC/USDT:USDT"}
CATEGORY = {Market.SPOT: "spot", Market.FUTURE: "linear"}
MARKETS = [pytest.param(Market.SPOT, id="spot"), pytest.param(Market.FUTURE, id="future")]
DAY_MS = 24 * 3600 * 1000


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bybit"], seed=7) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def recv(ws, timeout: float = 3.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


async def assert_silent(ws, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        msg = await asyncio.wait_for(ws.receive(), seconds)
        pytest.fail(f"expected no frame, got {msg}")


def auth(api_key: str, secret: str, now: int | None = None, req_id: str = "a1") -> dict:
    return {"req_id": req_id, "op": "auth", "args": auth_args(api_key, secret, now_ms() if now is None else now)}


async def logged_in(http, sim: Simulator, market: Market, *topics: str):
    """A raw socket on `/bybit_<market>`, authenticated and subscribed (acks consumed)."""
    creds = sim.credentials_for("bybit")
    ws = await http.ws_connect(sim.endpoints("bybit", market).ws)
    await ws.send_json(auth(creds.api_key, creds.secret))
    assert (await recv(ws))["success"] is True
    if topics:
        await ws.send_json({"op": "subscribe", "args": list(topics)})
        assert (await recv(ws))["success"] is True
    return ws


async def frames_until_filled(ws, timeout: float = 3.0) -> list[dict]:
    """Every frame up to the order row that says Filled."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv(ws)
            frames.append(frame)
            if frame["topic"].startswith("order") and frame["data"][0]["orderStatus"] == "Filled":
                return frames


# login ---------------------------------------------------------------------------------------------------------
async def test_client_handshake_gets_bybit_auth_and_subscribe_acks(sim, http):
    creds = sim.credentials_for("bybit")
    ws = await http.ws_connect(sim.endpoints("bybit", "future").ws)
    for message in handshake(creds, Market.FUTURE, now_ms()):  # sent back to back, as the client does
        await ws.send_json(message)
    auth_ack, sub_ack, account_ack = await recv(ws), await recv(ws), await recv(ws)
    conn_id = auth_ack["conn_id"]
    assert isinstance(conn_id, str) and conn_id
    assert auth_ack == {"req_id": auth_ack["req_id"], "success": True, "ret_msg": "", "op": "auth",
                        "conn_id": conn_id}
    assert auth_ack["req_id"].startswith("auth-") and sub_ack["req_id"].startswith("subscribe-")
    assert sub_ack == {"req_id": sub_ack["req_id"], "success": True, "ret_msg": "", "op": "subscribe",
                       "conn_id": conn_id}
    stream = BybitStream()
    assert account_ack == {**sub_ack, "req_id": account_ack["req_id"]} and account_ack["req_id"].startswith("account-")
    acks = (auth_ack, sub_ack, account_ack)
    assert [stream.classify(m, Market.FUTURE) for m in acks] == [MessageKind.ACK] * stream.acks_expected(Market.FUTURE)
    assert sim.sessions("bybit", "future")[0].subscriptions == {"order", "execution", "wallet", "position"}


@pytest.mark.parametrize(
    ("field", "ret_msg"),
    [("secret", "Invalid sign"), ("api_key", "Invalid apikey")],
)
async def test_wrong_credentials_are_refused_and_get_no_data(sim, http, field, ret_msg):
    creds = sim.credentials_for("bybit")
    bad = {"api_key": creds.api_key, "secret": creds.secret, field: "0" * 24}
    ws = await http.ws_connect(sim.endpoints("bybit", "spot").ws)
    await ws.send_json(auth(bad["api_key"], bad["secret"]))
    await ws.send_json({"req_id": "s1", "op": "subscribe", "args": ["order", "execution"]})
    refused, unauthorized = await recv(ws), await recv(ws)
    assert refused == {"req_id": "a1", "success": False, "ret_msg": ret_msg, "op": "auth",
                       "conn_id": refused["conn_id"]}
    assert unauthorized["success"] is False and unauthorized["ret_msg"] == "Request not authorized"
    assert unauthorized["op"] == "subscribe" and unauthorized["req_id"] == "s1"
    with pytest.raises(Exception, match=ret_msg):
        BybitStream().classify(refused, Market.SPOT)
    await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "100.5")
    await assert_silent(ws)


async def test_non_ascii_signature_is_refused_not_crashed(sim, http):
    creds = sim.credentials_for("bybit")
    ws = await http.ws_connect(sim.endpoints("bybit", "spot").ws)
    expires = now_ms() + 10_000
    await ws.send_json({"op": "auth", "args": [creds.api_key, expires, "\u00e9\ud800" * 32]})
    assert (await recv(ws))["ret_msg"] == "Invalid sign"
    await ws.send_json({"op": "ping"})
    assert (await recv(ws))["op"] == "pong"  # the socket is still served


async def test_expired_login_is_a_params_error(sim, http):
    creds = sim.credentials_for("bybit")
    ws = await http.ws_connect(sim.endpoints("bybit", "spot").ws)
    await ws.send_json(auth(creds.api_key, creds.secret, now=now_ms() - 60_000))  # expires 50 s ago
    reply = await recv(ws)
    assert (reply["success"], reply["ret_msg"], reply["op"]) == (False, "Params Error", "auth")
    assert not sim.sessions("bybit", "spot")[0].authenticated


async def test_malformed_auth_args_are_a_params_error(sim, http):
    ws = await http.ws_connect(sim.endpoints("bybit", "spot").ws)
    await ws.send_json({"op": "auth", "args": ["key-only"]})
    reply = await recv(ws)
    assert (reply["success"], reply["ret_msg"], reply["op"]) == (False, "Params Error", "auth")
    assert "req_id" not in reply  # echoed only when the request had one


async def test_subscribe_before_auth_is_not_authorized(sim, http):
    ws = await http.ws_connect(sim.endpoints("bybit", "future").ws)
    await ws.send_json({"req_id": "early", "op": "subscribe", "args": ["execution"]})
    reply = await recv(ws)
    assert reply == {"req_id": "early", "success": False, "ret_msg": "Request not authorized", "op": "subscribe",
                     "conn_id": reply["conn_id"]}
    await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy", "0.010", "100.5")
    await assert_silent(ws)


async def test_unknown_topic_is_refused_and_nothing_is_subscribed(sim, http):
    ws = await logged_in(http, sim, Market.SPOT)
    await ws.send_json({"op": "subscribe", "args": ["order", "executions"]})
    reply = await recv(ws)
    assert (reply["success"], reply["ret_msg"]) == (False, "error:handler not found,topic:executions")
    assert sim.sessions("bybit", "spot")[0].subscriptions == set()


# keepalive -------------------------------------------------------------------------------------------------------
async def test_ping_gets_the_private_pong_before_and_after_login(sim, http):
    stream = BybitStream()
    ws = await http.ws_connect(sim.endpoints("bybit", "spot").ws)
    before = now_ms()
    await ws.send_json(stream.ping(before))
    pong = await recv(ws)
    assert pong == {"req_id": f"ping-{before}", "op": "pong", "args": [pong["args"][0]], "conn_id": pong["conn_id"]}
    assert before <= int(pong["args"][0]) <= now_ms()
    assert stream.classify(pong, Market.SPOT) is MessageKind.PONG
    creds = sim.credentials_for("bybit")
    await ws.send_json(auth(creds.api_key, creds.secret))
    await recv(ws)
    await ws.send_json({"op": "ping"})
    assert (await recv(ws))["op"] == "pong"


def test_silence_limit_is_bybits_ten_minutes():
    assert BybitSim.client_silence_limit == 600.0
    assert BybitSim.client_silence_limit > BybitStream.ping_interval


# pushes -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
async def test_fills_push_execution_then_order_rows_that_normalize_to_the_ledger(sim, http, market):
    ws = await logged_in(http, sim, market, "order", "execution")
    order, fills = await sim.fill("bybit", market, SYMBOL[market], "buy", "0.030", "65000.5",
                                  client_order_id="alpha-1", parts=2, is_maker=False)
    new = await recv(ws)
    assert new["topic"] == "order" and new["data"][0]["orderStatus"] == "New"
    frames = await frames_until_filled(ws)
    assert [f["topic"] for f in frames] == ["execution", "order", "execution", "order"]
    assert {row["category"] for f in [new, *frames] for row in f["data"]} == {CATEGORY[market]}
    assert all(isinstance(f["creationTime"], int) for f in frames)
    events = [e for f in frames for e in normalize(f, market)]
    trades = [e for e in events if isinstance(e, Trade)]
    for trade, fill in zip(trades, fills, strict=True):
        assert (trade.trade_id, trade.order_id, trade.client_order_id) == (fill.trade_id, fill.order_id, "alpha-1")
        assert (trade.symbol, trade.symbol_raw, trade.side) == (SYMBOL[market], "BTCUSDT", Side.BUY)
        assert (trade.amount, trade.price, trade.timestamp, trade.is_maker) == (
            fill.amount, fill.price, fill.time, False)
        assert trade.cost == fill.amount * fill.price
    updates = [e for e in events if isinstance(e, OrderUpdate)]
    assert [u.status for u in updates] == [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert (updates[-1].order_id, updates[-1].filled, updates[-1].amount) == (
        order.order_id, Decimal("0.030"), Decimal("0.030"))
    assert normalize(frames[0], Market.FUTURE if market is Market.SPOT else Market.SPOT) == []  # other category


async def test_spot_buy_pays_its_fee_in_base_coin_and_sell_in_quote(sim, http):
    """Bybit's spot fee currency instruction: the fee comes off the coin received."""
    ws = await logged_in(http, sim, Market.SPOT, "execution")
    _, [buy] = await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "65000.5", is_maker=False)
    _, [sell] = await sim.fill("bybit", "spot", "BTC/USDT", "sell", "0.010", "65000.5", is_maker=True)
    bought, sold = normalize(await recv(ws), Market.SPOT)[0], normalize(await recv(ws), Market.SPOT)[0]
    assert (bought.fee_cost, bought.fee_currency) == (buy.fee / buy.price, "BTC") == (Decimal("0.000005"), "BTC")
    assert (sold.fee_cost, sold.fee_currency) == (sell.fee, "USDT")
    assert bought.raw["feeRate"] == "0.0005" and sold.raw["feeRate"] == "0.0002"


async def test_linear_fee_is_in_the_settle_coin(sim, http):
    ws = await logged_in(http, sim, Market.FUTURE, "execution")
    _, [fill] = await sim.fill("bybit", "future", "BTC/USDT:USDT", "sell", "0.010", "65000.5")
    trade = normalize(await recv(ws), Market.FUTURE)[0]
    assert (trade.fee_cost, trade.fee_currency, trade.side) == (fill.fee, "USDT", Side.SELL)


@pytest.mark.parametrize(("market", "status_raw"), [(Market.SPOT, "PartiallyFilledCanceled"),
                                                  (Market.FUTURE, "Cancelled")])
async def test_a_partly_filled_order_cancelled_reads_as_canceled(sim, http, market, status_raw):
    await logged_in(http, sim, market, "order")
    [session] = sim.sessions("bybit", market)
    ledger = sim.ledger("bybit", market)
    order = ledger.new_order(SYMBOL[market], "sell", Decimal("0.050"), Decimal("100.5"), None, now_ms())
    ledger.fill(order, Decimal("0.020"), Decimal("100.5"), is_maker=False, fee_rate=Decimal("0.0005"),
                fee_currency="USDT", now=now_ms())
    ledger.cancel(order, now_ms())
    [frame] = sim.venue("bybit").order_frames(session, order)
    row = frame["data"][0]
    assert (row["orderStatus"], row["leavesQty"], row["cumExecQty"]) == (status_raw, "0", "0.020")
    [update] = normalize(frame, market)
    assert (update.status, update.filled, update.amount) == (OrderStatus.CANCELED, Decimal("0.020"), Decimal("0.050"))


async def test_order_rows_total_each_orders_fees_across_interleaved_orders_and_a_cleared_ledger(sim, http):
    """The order row's cumExecFee is a running tally (no rescan of the ledger per frame): exact per order,
    orders interleaved, and starting over when the ledger's fills are cleared (as bench/e2e does)."""
    await logged_in(http, sim, Market.FUTURE, "order")
    [session] = sim.sessions("bybit", Market.FUTURE)
    ledger, venue = sim.ledger("bybit", "future"), sim.venue("bybit")

    def fee_total(order):
        [frame] = venue.order_frames(session, order)
        return Decimal(frame["data"][0]["cumExecFee"]), frame["data"][0]["cumFeeDetail"]

    first = ledger.new_order(SYMBOL[Market.FUTURE], "buy", Decimal("1.000"), Decimal("100.5"), None, now_ms())
    second = ledger.new_order(SYMBOL[Market.FUTURE], "sell", Decimal("1.000"), Decimal("200.5"), None, now_ms())
    for n in range(1, 301):
        for order, rate in ((first, "0.0005"), (second, "0.0002")):
            ledger.fill(order, Decimal("0.001"), order.price, is_maker=False, fee_rate=Decimal(rate),
                        fee_currency="USDT", now=now_ms())
        if n in (1, 150, 300):
            for order in (first, second):
                expected = sum((f.fee for f in ledger.fills if f.order_id == order.order_id), Decimal(0))
                assert fee_total(order) == (expected, {"USDT": str(expected)})
    assert fee_total(first)[0] == Decimal("0.300") * Decimal("100.5") * Decimal("0.0005")
    ledger.fills.clear()
    assert fee_total(first) == (Decimal(0), {})
    ledger.fill(first, Decimal("0.001"), first.price, is_maker=True, fee_rate=Decimal("0.0002"),
                fee_currency="USDT", now=now_ms())
    assert fee_total(first) == (ledger.fills[-1].fee, {"USDT": str(ledger.fills[-1].fee)})


async def test_only_subscribed_topics_are_pushed(sim, http):
    ws = await logged_in(http, sim, Market.SPOT, "execution")
    await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "100.5", parts=2)
    assert [(await recv(ws))["topic"] for _ in range(2)] == ["execution", "execution"]
    await assert_silent(ws)  # no order rows


async def test_categorised_topics_see_only_their_category(sim, http):
    spot = await logged_in(http, sim, Market.SPOT, "order.linear")
    await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "100.5")
    await assert_silent(spot)
    await spot.send_json({"op": "subscribe", "args": ["order.spot"]})
    assert (await recv(spot))["success"] is True
    await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "100.5")
    frame = await recv(spot)
    assert frame["topic"] == "order.spot" and frame["data"][0]["category"] == "spot"
    assert normalize(frame, Market.SPOT)[0].status is OrderStatus.NEW


async def test_unsubscribe_stops_the_pushes(sim, http):
    ws = await logged_in(http, sim, Market.FUTURE, "order", "execution")
    await ws.send_json({"req_id": "u1", "op": "unsubscribe", "args": ["order", "execution"]})
    reply = await recv(ws)
    assert (reply["success"], reply["op"], reply["req_id"]) == (True, "unsubscribe", "u1")
    await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy", "0.010", "100.5")
    await assert_silent(ws)


async def test_execution_fast_rows_give_the_same_trade_without_fees(sim, http):
    ws = await logged_in(http, sim, Market.FUTURE, "execution.fast", "execution")
    _, [fill] = await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy", "0.010", "100.5",
                               client_order_id="beta-7")
    fast, full = await recv(ws), await recv(ws)
    assert (fast["topic"], full["topic"]) == ("execution.fast", "execution")  # the low-latency feed first
    assert "execFee" not in fast["data"][0] and "id" not in fast
    [slow_trade], [fast_trade] = normalize(full, Market.FUTURE), normalize(fast, Market.FUTURE)
    assert attrs.evolve(fast_trade, fee_cost=slow_trade.fee_cost, fee_currency="USDT") == slow_trade
    assert (fast_trade.trade_id, fast_trade.client_order_id, fast_trade.fee_cost) == (fill.trade_id, "beta-7", None)


@pytest.mark.parametrize(
    ("market", "symbol", "raw"),
    [
        (Market.SPOT, "ETH/USDC", "ETHUSDC"),
        (Market.FUTURE, "ETH/USDT:USDT", "ETHUSDT"),
        (Market.FUTURE, "BTC/USDC:USDC", "BTCPERP"),
        (Market.FUTURE, "BTC/USDT:USDT-250221", "BTCUSDT-21FEB25"),
        (Market.FUTURE, "BTC/USDC:USDC-230324", "BTC-24MAR23"),
    ],
)
async def test_symbols_are_written_the_bybit_way_and_read_back(sim, http, market, symbol, raw):
    assert BybitSim().raw_symbol(market, symbol) == raw
    ws = await logged_in(http, sim, market, "execution")
    await sim.fill("bybit", market, symbol, "sell", "1", "10")
    [trade] = normalize(await recv(ws), market)
    assert (trade.symbol_raw, trade.symbol) == (raw, symbol)


# REST history -------------------------------------------------------------------------------------------------------
def signed(creds, query: str, timestamp: int | None = None, recv_window: str = "5000") -> dict:
    """Bybit v5 GET auth, written out independently of the plugin: hex HMAC of ts+key+recvWindow+query."""
    ts = str(now_ms() if timestamp is None else timestamp)
    payload = f"{ts}{creds.api_key}{recv_window}{query}"
    signature = hmac.new(creds.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {"X-BAPI-API-KEY": creds.api_key, "X-BAPI-TIMESTAMP": ts, "X-BAPI-RECV-WINDOW": recv_window,
            "X-BAPI-SIGN": signature}


async def history(http, sim: Simulator, params: dict, headers: dict | None = None, prefix: str = "spot") -> dict:
    query = urlencode(params)
    url = f"{sim.endpoints('bybit', prefix).rest}/v5/execution/list?{query}"
    async with http.get(url, headers=signed(sim.credentials_for("bybit"), query) if headers is None else headers) as r:
        assert r.status == 200
        return await r.json()


async def test_history_unsigned_bad_sign_and_stale_timestamp_are_refused(sim, http):
    await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "100.5")
    creds = sim.credentials_for("bybit")
    query = "category=spot&symbol=BTCUSDT"
    unsigned = await history(http, sim, {"category": "spot", "symbol": "BTCUSDT"}, headers={})
    assert (unsigned["retCode"], unsigned["retMsg"]) == (10003, "API key is invalid.")
    bad = signed(creds, query) | {"X-BAPI-SIGN": "0" * 64}
    refused = await history(http, sim, {"category": "spot", "symbol": "BTCUSDT"}, headers=bad)
    assert refused["retCode"] == 10004
    assert refused["retMsg"] == f"error sign! origin_string[{bad['X-BAPI-TIMESTAMP']}{creds.api_key}5000{query}]"
    stale = await history(http, sim, {"category": "spot", "symbol": "BTCUSDT"},
                          headers=signed(creds, query, timestamp=now_ms() - 6000))
    assert stale["retCode"] == 10002 and "recv_window[5000]" in stale["retMsg"]
    assert unsigned["result"] == refused["result"] == stale["result"] == {}


async def test_history_rows_are_newest_first_in_bybits_shape(sim, http):
    order, fills = await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy", "0.030", "65000.5",
                                  client_order_id="loop-1", parts=3)
    await sim.fill("bybit", "future", "ETH/USDT:USDT", "sell", "1", "3000")
    body = await history(http, sim, {"category": "linear", "symbol": "BTCUSDT"})
    assert (body["retCode"], body["retMsg"], body["result"]["category"]) == (0, "OK", "linear")
    rows = body["result"]["list"]
    assert [r["execId"] for r in rows] == [f.trade_id for f in reversed(fills)]
    assert body["result"]["nextPageCursor"] == ""
    first = rows[-1]
    assert first == first | {
        "symbol": "BTCUSDT", "orderId": order.order_id, "orderLinkId": "loop-1", "side": "Buy",
        "execQty": "0.010", "execPrice": "65000.5", "execValue": "650.0050", "execType": "Trade",
        "execTime": str(fills[0].time), "leavesQty": "0.020", "orderQty": "0.030", "createType": "CreateByUser",
        "feeCurrency": "USDT", "execFee": str(fills[0].fee), "isMaker": fills[0].is_maker,
    }
    assert [r["leavesQty"] for r in rows] == ["0.000", "0.010", "0.020"]


async def test_history_category_not_path_picks_the_ledger(sim, http):
    _, [fill] = await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy", "0.010", "100.5")
    linear = await history(http, sim, {"category": "linear"}, prefix="spot")  # one REST host serves all, like Bybit
    assert [r["execId"] for r in linear["result"]["list"]] == [fill.trade_id]
    spot = await history(http, sim, {"category": "spot"}, prefix="future")
    assert spot["result"]["list"] == []
    inverse = await history(http, sim, {"category": "inverse"})
    assert inverse["retCode"] == 0 and inverse["result"]["list"] == []
    missing = await history(http, sim, {"symbol": "BTCUSDT"})
    assert missing["retCode"] == 10001


async def test_history_pages_with_limit_and_cursor(sim, http):
    _, fills = await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.005", "100.5", parts=5)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"category": "spot", "symbol": "BTCUSDT", "limit": 2} | ({"cursor": cursor} if cursor else {})
        result = (await history(http, sim, params))["result"]
        seen += [r["execId"] for r in result["list"]]
        pages += 1
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    assert pages == 3 and seen == [f.trade_id for f in reversed(fills)]
    bad = await history(http, sim, {"category": "spot", "cursor": "not-a-cursor"})
    assert bad["retCode"] == 10001


def ids(body: dict) -> list[str]:
    return [row["execId"] for row in body["result"]["list"]]


async def test_history_time_window_follows_the_seven_day_rules(sim, http):
    ledger = sim.ledger("bybit", "spot")
    now = now_ms()
    old_order = ledger.new_order("BTC/USDT", "sell", Decimal(1), Decimal(90), None, now - 10 * DAY_MS)
    old = ledger.fill(old_order, Decimal(1), Decimal(90), is_maker=True, fee_rate=Decimal("0.0002"),
                      fee_currency="USDT", now=now - 10 * DAY_MS)
    _, [recent] = await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "100.5")
    assert ids(await history(http, sim, {"category": "spot"})) == [recent.trade_id]  # last 7 days by default
    assert ids(await history(http, sim, {"category": "spot", "startTime": now - 11 * DAY_MS})) == [old.trade_id]
    assert ids(await history(http, sim, {"category": "spot", "endTime": now - 5 * DAY_MS})) == [old.trade_id]
    both = {"category": "spot", "startTime": now - 11 * DAY_MS, "endTime": now - 4 * DAY_MS - 1}
    assert ids(await history(http, sim, both)) == [old.trade_id]
    too_wide = await history(http, sim, {"category": "spot", "startTime": now - 11 * DAY_MS, "endTime": now})
    assert too_wide["retCode"] == 10001 and "7 days" in too_wide["retMsg"]


async def test_history_filters_by_order_id_before_symbol(sim, http):
    order, fills = await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.010", "100.5", client_order_id="x-1", parts=2)
    await sim.fill("bybit", "spot", "BTC/USDT", "sell", "0.010", "100.5", client_order_id="x-2")
    expected = [f.trade_id for f in reversed(fills)]
    by_id = await history(http, sim, {"category": "spot", "orderId": order.order_id, "symbol": "ETHUSDT"})
    assert [r["execId"] for r in by_id["result"]["list"]] == expected
    by_link = await history(http, sim, {"category": "spot", "orderLinkId": "x-1"})
    assert [r["execId"] for r in by_link["result"]["list"]] == expected
    funding = await history(http, sim, {"category": "spot", "execType": "Funding"})
    assert funding["result"]["list"] == []


def ccxt_client(sim: Simulator) -> ccxt_async.bybit:
    creds = sim.credentials_for("bybit")
    exchange = ccxt_async.bybit({"apiKey": creds.api_key, "secret": creds.secret, "enableRateLimit": False})
    exchange.number = str
    exchange.urls["api"] = {name: sim.endpoints("bybit", "spot").rest for name in exchange.urls["api"]}
    return exchange


@pytest.mark.parametrize("market", MARKETS)
async def test_ccxt_load_markets_and_fetch_my_trades_agree_with_the_stream(sim, http, market):
    ws = await logged_in(http, sim, market, "execution")
    _, fills = await sim.fill("bybit", market, SYMBOL[market], "buy", "0.030", "65000.5", parts=3)
    streamed = {t.trade_id: t for _ in fills for t in normalize(await recv(ws), market)}
    exchange = ccxt_client(sim)
    try:
        async with asyncio.timeout(10):
            await exchange.load_markets()
            assert {"BTC/USDT", "BTC/USDT:USDT", "BTC/USDC:USDC", "ETH/USDT"} <= set(exchange.markets)
            assert exchange.market("BTC/USDC:USDC")["id"] == "BTCPERP"
            rows = await exchange.fetch_my_trades(SYMBOL[market], since=now_ms() - 3_600_000,
                                                  params={"paginate": True})
    finally:
        await exchange.close()
    assert sorted(r["id"] for r in rows) == sorted(streamed)
    for row in rows:
        trade = streamed[row["id"]]
        assert (row["order"], row["symbol"], row["side"], row["timestamp"]) == (
            trade.order_id, trade.symbol, "buy", trade.timestamp)
        assert (Decimal(row["amount"]), Decimal(row["price"]), Decimal(row["cost"])) == (
            trade.amount, trade.price, trade.cost)
        assert (Decimal(row["fee"]["cost"]), row["fee"]["currency"]) == (trade.fee_cost, trade.fee_currency)


async def test_ccxt_cursor_pagination_walks_past_one_page(sim):
    _, fills = await sim.fill("bybit", "future", "BTC/USDT:USDT", "sell", "0.250", "100.5", parts=250)
    exchange = ccxt_client(sim)
    try:
        async with asyncio.timeout(10):
            await exchange.load_markets()
            rows = await exchange.fetch_my_trades("BTC/USDT:USDT", since=now_ms() - 3_600_000,
                                                  params={"paginate": True})
    finally:
        await exchange.close()
    assert len(fills) == 250 and sorted(r["id"] for r in rows) == sorted(f.trade_id for f in fills)


async def test_framework_backfiller_reads_a_window_through_ccxt(sim):
    """The framework's Backfiller with the rules Bybit needs (7-day windows, 100 rows) and offline markets."""
    rules = BackfillRules(
        ccxt_id="bybit",
        options={Market.SPOT: {"defaultType": "spot"}, Market.FUTURE: {"defaultType": "swap"}},
        window_ms=7 * DAY_MS, page_limit=100, raw_symbol=BybitSim().raw_symbol,
    )
    _, fills = await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy", "0.030", "65000.5", parts=3)
    key = ConnectionKey(exchange="bybit", market="future")
    backfiller = Backfiller(key, rules, sim.credentials_for("bybit"), LIVE, sim.endpoints("bybit", "future"))
    try:
        async with asyncio.timeout(10):
            trades = await backfiller.fetch("BTC/USDT:USDT", now_ms() - 3_600_000)
    finally:
        await backfiller.close()
    assert [(t.trade_id, t.order_id, t.amount, t.price, t.timestamp, t.fee_cost) for t in trades] == [
        (f.trade_id, f.order_id, f.amount, f.price, f.time, f.fee) for f in fills]
    assert {t.symbol_raw for t in trades} == {"BTCUSDT"}


async def test_market_time_and_coin_info(sim, http):
    base = sim.endpoints("bybit", "future").rest
    async with http.get(f"{base}/v5/market/time") as r:
        body = await r.json()
    assert body["retCode"] == 0 and abs(int(body["result"]["timeSecond"]) * 1000 - now_ms()) < 2000
    async with http.get(f"{base}/v5/asset/coin/query-info") as r:
        assert (await r.json())["retCode"] == 10003
    async with http.get(f"{base}/v5/asset/coin/query-info?coin=BTC",
                        headers=signed(sim.credentials_for("bybit"), "coin=BTC")) as r:
        assert [row["coin"] for row in (await r.json())["result"]["rows"]] == ["BTC"]
