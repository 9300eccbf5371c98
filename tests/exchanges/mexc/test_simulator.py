"""MEXC on the simulator, over real sockets: spot listenKeys, subscriptions and protobuf pushes, contract login,
filters and JSON-number pushes, refusals with MEXC's own errors, keepalive rules, REST history and ccxt against it."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest

from exchanges.connector import Credentials
from exchanges.mexc.auth import login_message, sign, signed_spot_query
from exchanges.mexc.normalize import normalize
from exchanges.mexc.proto import PushDataV3ApiWrapper
from exchanges.mexc.stream import MexcStream, handshake
from exchanges.simulator import Simulator
from framework.venue import MessageKind
from framework.errors import AuthError, ConnectionLost, SubscriptionError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, now_ms

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0  # seconds a frame the test expects may take
QUIET = 0.3  # seconds of silence that show nothing was pushed
ORDERS, DEALS = "spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb"
ACCOUNT = "spot@private.account.v3.api.pb"
STREAM = MexcStream()
SIZE = Decimal("0.0001")  # BTC_USDT contract size the client converts with


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["mexc"]) as simulator:
        yield simulator


def bad(creds: Credentials, **fields) -> Credentials:
    return Credentials(**{"api_key": creds.api_key, "secret": creds.secret, **fields})


async def receive(ws: aiohttp.ClientWebSocketResponse):
    """The next frame: decoded JSON (exact decimals) for text, a decoded PushDataV3ApiWrapper for binary."""
    message = await ws.receive(timeout=WAIT)
    if message.type is aiohttp.WSMsgType.BINARY:
        return PushDataV3ApiWrapper.FromString(message.data)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data, parse_float=Decimal)


async def assert_quiet(ws: aiohttp.ClientWebSocketResponse) -> None:
    with pytest.raises(TimeoutError):
        message = await ws.receive(timeout=QUIET)
        pytest.fail(f"expected nothing, got {message}")


async def listen_key(http: aiohttp.ClientSession, sim: Simulator) -> str:
    return await STREAM.open_listen_key(http, sim.credentials_for("mexc"), Market.SPOT,
                                        sim.endpoints("mexc", "spot"), now_ms())


async def spot_socket(http: aiohttp.ClientSession, sim: Simulator, *channels: str):
    """A spot socket on a fresh listenKey, subscribed to `channels` (acked once)."""
    key = await listen_key(http, sim)
    ws = await http.ws_connect(STREAM.ws_url(Market.SPOT, sim.endpoints("mexc", "spot"), key))
    if channels:
        await ws.send_json({"method": "SUBSCRIPTION", "params": list(channels)})
        assert await receive(ws) == {"id": 0, "code": 0, "msg": ",".join(channels)}
    return ws


async def contract_socket(http: aiohttp.ClientSession, sim: Simulator, *messages: dict):
    ws = await http.ws_connect(STREAM.ws_url(Market.FUTURE, sim.endpoints("mexc", "future"), None))
    for message in messages:
        await ws.send_json(message)
        reply = await receive(ws)
        assert reply["data"] == "success", reply
    return ws


# spot: listenKey, subscription, protobuf pushes ---------------------------------------------------------------------------
async def test_spot_subscription_is_acked_once_and_a_fill_arrives_as_protobuf_order_then_deal(sim):
    creds = sim.credentials_for("mexc")
    async with aiohttp.ClientSession() as http:
        key = await listen_key(http, sim)
        ws = await http.ws_connect(STREAM.ws_url(Market.SPOT, sim.endpoints("mexc", "spot"), key))
        for message in handshake(creds, Market.SPOT, now_ms(), key):
            await ws.send_json(message)
        ack = await receive(ws)
        assert ack == {"id": 0, "code": 0, "msg": f"{ORDERS},{DEALS},{ACCOUNT}"}
        assert STREAM.classify(ack, Market.SPOT) is MessageKind.ACK

        order, [fill] = await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.250", "65000.5", client_order_id="alpha-1")
        pushes = [await receive(ws) for _ in range(6)]  # with the account's: USDT locked, then BTC and USDT moved
        new, filled, deal = [p for p in pushes if p.channel != ACCOUNT]
        assert [(p.channel, p.WhichOneof("body"), p.symbol) for p in (new, filled, deal)] == [
            (ORDERS, "privateOrders", "BTCUSDT"), (ORDERS, "privateOrders", "BTCUSDT"), (DEALS, "privateDeals", "BTCUSDT"),
        ]
        assert (new.privateOrders.status, filled.privateOrders.status) == (1, 2)  # new, filled
        body = filled.privateOrders
        assert (body.id, body.clientId, body.quantity, body.price, body.cumulativeQuantity, body.tradeType) == (
            order.order_id, "alpha-1", "0.25", "65000.5", "0.25", 1,
        )
        assert (deal.privateDeals.quantity, deal.privateDeals.amount, deal.privateDeals.feeCurrency) == (
            "0.25", "16250.125", "USDT",
        )

        frames = [p.SerializeToString() for p in (new, filled, deal)]
        [trade] = normalize(frames[2], Market.SPOT)
        assert (trade.trade_id, trade.order_id, trade.client_order_id, trade.side, trade.symbol) == (
            fill.trade_id, order.order_id, "alpha-1", Side.BUY, "BTC/USDT",
        )
        assert (trade.amount, trade.price, trade.timestamp, trade.fee_cost, trade.is_maker) == (
            fill.amount, fill.price, fill.time, fill.fee, fill.is_maker,
        )
        [update] = normalize(frames[1], Market.SPOT)
        assert (update.status, update.filled, update.timestamp) == (OrderStatus.FILLED, Decimal("0.25"), fill.time)
        await ws.close()


async def test_spot_order_without_client_id_has_an_empty_client_id_and_partial_fills_count_up(sim):
    async with aiohttp.ClientSession() as http:
        ws = await spot_socket(http, sim, ORDERS)
        await sim.fill("mexc", "spot", "BTC/USDT", "sell", "0.3", "100", parts=3)
        updates = [(await receive(ws)).SerializeToString() for _ in range(4)]
        events = [e for frame in updates for e in normalize(frame, Market.SPOT)]
        assert all(isinstance(e, OrderUpdate) and e.client_order_id is None and e.side is Side.SELL for e in events)
        assert [(e.status, e.filled) for e in events] == [
            (OrderStatus.NEW, 0), (OrderStatus.PARTIALLY_FILLED, Decimal("0.1")),
            (OrderStatus.PARTIALLY_FILLED, Decimal("0.2")), (OrderStatus.FILLED, Decimal("0.3")),
        ]
        await assert_quiet(ws)  # deals not subscribed: no privateDeals
        await ws.close()


async def test_only_the_subscribed_deals_channel_is_pushed(sim):
    async with aiohttp.ClientSession() as http:
        ws = await spot_socket(http, sim, DEALS)
        _, fills = await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.2", "100", parts=2)
        pushes = [await receive(ws) for _ in fills]
        assert [(p.channel, p.privateDeals.tradeId) for p in pushes] == [(DEALS, f.trade_id) for f in fills]
        await assert_quiet(ws)
        await ws.close()


async def test_unsubscription_is_acked_and_stops_the_pushes(sim):
    async with aiohttp.ClientSession() as http:
        ws = await spot_socket(http, sim, ORDERS, DEALS)
        await ws.send_json({"method": "UNSUBSCRIPTION", "params": [ORDERS, DEALS]})
        assert await receive(ws) == {"id": 0, "code": 0, "msg": f"{ORDERS},{DEALS}"}
        await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.1", "100")
        await assert_quiet(ws)
        await ws.close()


@pytest.mark.parametrize("channel", ["spot@private.deals.v3.api", "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"],
                         ids=["legacy-json", "public"])
async def test_other_channels_are_refused_as_blocked_and_get_nothing(sim, channel):
    async with aiohttp.ClientSession() as http:
        ws = await spot_socket(http, sim)
        await ws.send_json({"method": "SUBSCRIPTION", "params": [channel]})
        reply = await receive(ws)
        assert reply == {"id": 0, "code": 0, "msg": f"Not Subscribed successfully! [{channel}].  Reason： Blocked! "}
        with pytest.raises(SubscriptionError):
            STREAM.classify(reply, Market.SPOT)
        await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.1", "100")
        await assert_quiet(ws)
        await ws.close()


async def test_socket_without_listen_key_is_public_and_private_channels_are_refused(sim):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("mexc", "spot").ws + "/ws")
        await ws.send_json({"method": "SUBSCRIPTION", "params": [DEALS]})
        assert (await receive(ws))["msg"].startswith(f"Not Subscribed successfully! [{DEALS}]")
        await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.1", "100")
        await assert_quiet(ws)
        await ws.close()


@pytest.mark.parametrize("key", ["not-a-key", ""], ids=["unknown", "empty"])
async def test_unknown_listen_key_gets_the_invalid_listen_key_text_and_is_closed(sim, key):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{sim.endpoints('mexc', 'spot').ws}/ws?listenKey={key}")
        message = await ws.receive(timeout=WAIT)
        assert (message.type, message.data) == (aiohttp.WSMsgType.TEXT, "Invalid listen key")
        assert STREAM.classify(message.data, Market.SPOT) is MessageKind.LISTEN_KEY_EXPIRED
        assert (await ws.receive(timeout=WAIT)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_expired_listen_keys_refuse_new_sockets_and_their_put(sim):
    creds, endpoints = sim.credentials_for("mexc"), sim.endpoints("mexc", "spot")
    async with aiohttp.ClientSession() as http:
        key = await listen_key(http, sim)
        sim.venue("mexc").expire_listen_keys()
        ws = await http.ws_connect(STREAM.ws_url(Market.SPOT, endpoints, key))
        assert (await ws.receive(timeout=WAIT)).data == "Invalid listen key"
        await ws.close()
        with pytest.raises(ConnectionLost, match="730708"):  # the keeper's failure ends the session: a new key
            await STREAM.keep_listen_key(http, creds, Market.SPOT, endpoints, key, now_ms())


@pytest.mark.parametrize("ping", [{"method": "PING"}, {"method": "ping"}])
async def test_spot_ping_in_either_case_gets_pong(sim, ping):
    async with aiohttp.ClientSession() as http:
        ws = await spot_socket(http, sim)
        await ws.send_json(ping)
        reply = await receive(ws)
        assert reply == {"id": 0, "code": 0, "msg": "PONG"}
        assert STREAM.classify(reply, Market.SPOT) is MessageKind.PONG
        await ws.close()


@pytest.mark.parametrize("frame", ["hello", '{"method": "SUBSCRIPTION"}', '{"method": "LIST_SUBSCRIPTIONS"}'],
                         ids=["text", "no-params", "unknown-method"])
async def test_malformed_spot_requests_get_msg_format_invalid_which_the_client_ignores(sim, frame):
    async with aiohttp.ClientSession() as http:
        ws = await spot_socket(http, sim)
        await ws.send_str(frame)
        reply = await receive(ws)
        assert reply == {"id": 0, "code": 0, "msg": "msg format invalid"}
        assert STREAM.classify(reply, Market.SPOT) is MessageKind.IGNORE
        await ws.close()


async def test_spot_socket_without_a_valid_subscription_is_dropped_after_the_grace(sim):
    sim.venue("mexc").subscription_grace = 0.3  # MEXC: 30 s
    async with aiohttp.ClientSession() as http:
        idle = await spot_socket(http, sim)
        subscribed = await spot_socket(http, sim, DEALS)
        await idle.send_json({"method": "PING"})  # pings do not count as a subscription
        await receive(idle)
        closing = await idle.receive(timeout=WAIT)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await asyncio.sleep(0.4)
        _, [fill] = await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.1", "100")
        assert (await receive(subscribed)).privateDeals.tradeId == fill.trade_id
        await subscribed.close()


async def test_silent_socket_is_closed_after_the_silence_limit(sim):
    sim.venue("mexc").client_silence_limit = 0.3  # MEXC: 60 s
    async with aiohttp.ClientSession() as http:
        ws = await contract_socket(http, sim)
        closing = await ws.receive(timeout=WAIT)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_delete_closes_the_keys_sockets_and_put_extends_a_live_key(sim):
    creds, endpoints = sim.credentials_for("mexc"), sim.endpoints("mexc", "spot")
    async with aiohttp.ClientSession() as http:
        ws = await spot_socket(http, sim, DEALS)
        key = sim.sessions("mexc", "spot")[0].state["listen_key"]
        before = sim.venue("mexc").listen_keys[key]
        await asyncio.sleep(0.01)
        await STREAM.keep_listen_key(http, creds, Market.SPOT, endpoints, key, now_ms())
        assert sim.venue("mexc").listen_keys[key] > before
        query = signed_spot_query(creds.secret, {}, now_ms())
        async with http.get(f"{endpoints.rest}/api/v3/userDataStream?{query}",
                            headers={"X-MEXC-APIKEY": creds.api_key}) as response:
            assert (await response.json())["listenKey"] == [key]
        query = signed_spot_query(creds.secret, {"listenKey": key}, now_ms())
        async with http.delete(f"{endpoints.rest}/api/v3/userDataStream?{query}",
                               headers={"X-MEXC-APIKEY": creds.api_key}) as response:
            assert (response.status, await response.json()) == (200, {"listenKey": key})
        assert (await ws.receive(timeout=WAIT)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


# spot REST signing -----------------------------------------------------------------------------------------------------------
async def spot_get(http, sim, path: str, query: str, *, api_key: str | None = "default"):
    creds = sim.credentials_for("mexc")
    headers = {} if api_key is None else {"X-MEXC-APIKEY": creds.api_key if api_key == "default" else api_key}
    async with http.get(f"{sim.endpoints('mexc', 'spot').rest}{path}?{query}", headers=headers) as response:
        return response.status, json.loads(await response.text(), parse_float=Decimal)


def signed(secret: str, params: dict) -> str:
    query = urlencode(params)
    return f"{query}&signature={sign(secret, query)}"


@pytest.mark.parametrize(
    ("case", "code", "msg"),
    [
        ("wrong-secret", 700002, "Signature for this request is not valid."),
        ("unknown-key", 10072, "Api key info invalid"),
        ("no-key", 400, "api key required"),
        ("no-signature", 700004, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."),
        ("stale", 700003, "Timestamp for this request is outside of the recvWindow."),
        ("future", 700003, "Timestamp for this request is outside of the recvWindow."),
        ("window", 700005, "recvWindow must less than 60000"),
    ],
)
async def test_badly_signed_spot_requests_get_mexcs_error_body(sim, case, code, msg):
    creds = sim.credentials_for("mexc")
    now = now_ms()
    params = {"symbol": "BTCUSDT", "timestamp": now}
    query, api_key = signed(creds.secret, params), "default"
    if case == "wrong-secret":
        query = signed("0" * len(creds.secret), params)
    elif case == "unknown-key":
        api_key = "mx0someoneelse"
    elif case == "no-key":
        api_key = None
    elif case == "no-signature":
        query = urlencode(params)
    elif case == "stale":
        query = signed(creds.secret, {**params, "timestamp": now - 6000})  # default recvWindow 5000
    elif case == "future":
        query = signed(creds.secret, {**params, "timestamp": now + 2000})  # only 1 s ahead is accepted
    elif case == "window":
        query = signed(creds.secret, {**params, "recvWindow": 70000})
    async with aiohttp.ClientSession() as http:
        status, body = await spot_get(http, sim, "/api/v3/myTrades", query, api_key=api_key)
    assert (status, body) == (400, {"code": code, "msg": msg})


async def test_a_wider_recv_window_accepts_an_older_timestamp(sim):
    creds = sim.credentials_for("mexc")
    query = signed(creds.secret, {"symbol": "BTCUSDT", "recvWindow": 60000, "timestamp": now_ms() - 30000})
    async with aiohttp.ClientSession() as http:
        assert await spot_get(http, sim, "/api/v3/myTrades", query) == (200, [])


async def test_listen_key_with_a_wrong_secret_or_clock_raises_auth_error(sim):
    creds, endpoints = sim.credentials_for("mexc"), sim.endpoints("mexc", "spot")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AuthError, match="700002"):
            await STREAM.open_listen_key(http, bad(creds, secret="0" * 48), Market.SPOT, endpoints, now_ms())
        with pytest.raises(AuthError, match="700003.*clock"):
            await STREAM.open_listen_key(http, creds, Market.SPOT, endpoints, now_ms() - 600_000)
    assert sim.venue("mexc").listen_keys == {}


# contract: login, filter, JSON pushes -----------------------------------------------------------------------------------------
async def test_contract_login_and_filter_are_acked_and_a_fill_is_exact_json_numbers_in_contracts(sim):
    creds = sim.credentials_for("mexc")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(STREAM.ws_url(Market.FUTURE, sim.endpoints("mexc", "future"), None))
        for message in handshake(creds, Market.FUTURE, now_ms()):
            await ws.send_json(message)
        login, filtered = await receive(ws), await receive(ws)
        assert (login["channel"], login["data"], filtered["channel"], filtered["data"]) == (
            "rs.login", "success", "rs.personal.filter", "success",
        )
        assert [STREAM.classify(m, Market.FUTURE) for m in (login, filtered)] == [MessageKind.ACK] * 2

        order, [first, second] = await sim.fill("mexc", "future", "BTC/USDT:USDT", "sell", "0.0110", "64999.9",
                                                client_order_id="beta-1", parts=2)
        texts = [(await ws.receive(timeout=WAIT)).data for _ in range(9)]  # new, (order, deal, position, asset) × 2
        texts = [t for t in texts if t.startswith('{"channel":"push.personal.order')]
        frames = [json.loads(text, parse_float=Decimal) for text in texts]
        assert [f["channel"] for f in frames] == ["push.personal.order"] + [
            "push.personal.order", "push.personal.order.deal"] * 2
        assert '"vol":55,' in texts[2] and '"vol":110,' in texts[0]  # 0.0055 BTC = 55 contracts of 0.0001
        assert f'"fee":{first.fee.normalize()},' in texts[2] and '"price":64999.9,' in texts[2]
        assert (frames[2]["data"]["side"], frames[2]["data"]["isTaker"]) == (3, not first.is_maker)

        events = [e for f in frames for e in normalize(f, Market.FUTURE)]
        trades = [e for e in events if isinstance(e, Trade)]
        assert [(t.trade_id, t.order_id, t.side, t.amount, t.price, t.timestamp, t.client_order_id, t.fee_cost)
                for t in trades] == [
            (f.trade_id, order.order_id, Side.SELL, f.amount / SIZE, f.price, f.time, "beta-1", f.fee)
            for f in (first, second)
        ]  # fmt: skip
        updates = [e for e in events if isinstance(e, OrderUpdate)]
        assert [(u.status, u.filled) for u in updates] == [
            (OrderStatus.NEW, 0), (OrderStatus.PARTIALLY_FILLED, 55), (OrderStatus.FILLED, 110),
        ]
        assert (updates[-1].amount, updates[-1].timestamp) == (110, second.time)
        await ws.close()


async def test_contract_order_without_client_id_gets_mexcs_generated_external_oid(sim):
    creds = sim.credentials_for("mexc")
    async with aiohttp.ClientSession() as http:
        ws = await contract_socket(http, sim, *handshake(creds, Market.FUTURE, now_ms()))
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.001", "100")
        oids = {(await receive(ws))["data"]["externalOid"] for _ in range(3)}
        (oid,) = oids
        assert oid.startswith("_m_") and len(oid) == 35
        await ws.close()


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"secret": "0" * 48}, "Signature verification failed!"),
        ({"api_key": "mx0someoneelse"}, "Api key info invalid"),
        ({"stale": True}, "Request time is invalid"),
    ],
    ids=["wrong-secret", "unknown-key", "stale-reqTime"],
)
async def test_refused_contract_login_gets_rs_error_and_no_data(sim, change, text):
    creds = sim.credentials_for("mexc")
    stale = change.pop("stale", False)
    message = login_message(**{"api_key": creds.api_key, "secret": creds.secret, **change},
                            now_ms=now_ms() - (60_000 if stale else 0))
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("mexc", "future").ws + "/edge")
        await ws.send_json(message)
        reply = await receive(ws)
        assert (reply["channel"], reply["data"]) == ("rs.error", text)
        with pytest.raises(AuthError, match=text):
            STREAM.classify(reply, Market.FUTURE)
        await ws.send_json({"method": "personal.filter"})
        assert (await receive(ws))["channel"] == "rs.error"  # not logged in
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.001", "100")
        await assert_quiet(ws)
        await ws.close()


async def test_login_pushes_every_channel_until_a_filter_narrows_it(sim):
    creds = sim.credentials_for("mexc")
    async with aiohttp.ClientSession() as http:
        ws = await contract_socket(http, sim, login_message(creds.api_key, creds.secret, now_ms()))
        await sim.fill("mexc", "future", "ETH/USDT:USDT", "buy", "0.02", "3000")
        assert [(await receive(ws))["channel"] for _ in range(5)] == [
            "push.personal.order", "push.personal.order", "push.personal.order.deal", "push.personal.position",
            "push.personal.asset"]
        await ws.send_json({"method": "personal.filter",
                            "param": {"filters": [{"filter": "order.deal", "rules": ["ETH_USDT"]}]}})
        assert (await receive(ws))["channel"] == "rs.personal.filter"
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.001", "100")
        await assert_quiet(ws)  # BTC_USDT deals and every order are filtered out
        _, [fill] = await sim.fill("mexc", "future", "ETH/USDT:USDT", "sell", "0.01", "3001")
        deal = await receive(ws)
        assert (deal["channel"], deal["data"]["id"], deal["data"]["vol"]) == ("push.personal.order.deal",
                                                                              int(fill.trade_id), 1)
        await assert_quiet(ws)
        await ws.close()


async def test_login_with_subscribe_false_pushes_nothing_until_a_filter(sim):
    creds = sim.credentials_for("mexc")
    async with aiohttp.ClientSession() as http:
        quiet_login = {**login_message(creds.api_key, creds.secret, now_ms()), "subscribe": False}
        ws = await contract_socket(http, sim, quiet_login)
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.001", "100")
        await assert_quiet(ws)
        await ws.send_json({"method": "personal.filter", "param": {"filters": []}})  # empty: everything
        await receive(ws)
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.001", "100")
        assert len([await receive(ws) for _ in range(3)]) == 3
        await ws.close()


async def test_contract_ping_gets_pong_with_the_server_time(sim):
    async with aiohttp.ClientSession() as http:
        ws = await contract_socket(http, sim)
        before = now_ms()
        await ws.send_json(STREAM.ping(now_ms(), Market.FUTURE))
        reply = await receive(ws)
        assert reply["channel"] == "pong" and before <= reply["data"] <= now_ms()
        assert STREAM.classify(reply, Market.FUTURE) is MessageKind.PONG
        await ws.close()


# REST history --------------------------------------------------------------------------------------------------------------
async def test_spot_my_trades_rows_paging_and_filters(sim):
    creds = sim.credentials_for("mexc")
    order, fills = await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.5", "100.5", client_order_id="gamma-1",
                                  parts=5)
    await sim.fill("mexc", "spot", "ETH/USDT", "sell", "1", "3000")
    async with aiohttp.ClientSession() as http:
        query = signed(creds.secret, {"symbol": "BTCUSDT", "startTime": fills[0].time, "limit": 2,
                                      "timestamp": now_ms()})
        status, rows = await spot_get(http, sim, "/api/v3/myTrades", query)
        assert status == 200 and [r["id"] for r in rows] == [fills[0].trade_id, fills[1].trade_id]
        assert rows[0] == {
            "symbol": "BTCUSDT", "id": fills[0].trade_id, "orderId": order.order_id, "orderListId": -1,
            "price": "100.5", "qty": "0.1", "quoteQty": "10.05", "commission": str(fills[0].fee.normalize()),
            "commissionAsset": "USDT", "time": fills[0].time, "isBuyer": True, "isMaker": fills[0].is_maker,
            "isBestMatch": True, "isSelfTrade": False, "clientOrderId": "gamma-1",
        }
        # no startTime: the latest `limit`, in time order
        _, rows = await spot_get(http, sim, "/api/v3/myTrades",
                                 signed(creds.secret, {"symbol": "BTCUSDT", "limit": 2, "timestamp": now_ms()}))
        assert [r["id"] for r in rows] == [fills[3].trade_id, fills[4].trade_id]
        # limit above 100 is held at 100; orderId filters; endTime bounds
        _, rows = await spot_get(http, sim, "/api/v3/myTrades", signed(creds.secret, {
            "symbol": "BTCUSDT", "orderId": order.order_id, "limit": 500, "timestamp": now_ms()}))
        assert [r["id"] for r in rows] == [f.trade_id for f in fills]
        _, rows = await spot_get(http, sim, "/api/v3/myTrades", signed(creds.secret, {
            "symbol": "BTCUSDT", "endTime": fills[0].time - 1, "timestamp": now_ms()}))
        assert rows == []
        status, body = await spot_get(http, sim, "/api/v3/myTrades", signed(creds.secret, {"timestamp": now_ms()}))
        assert (status, body["code"]) == (400, 700004) and "'symbol'" in body["msg"]


async def contract_get(http, sim, query: dict, *, creds: Credentials | None = None, stamp: int | None = None,
                       signed_params: dict | None = None):
    creds = creds or sim.credentials_for("mexc")
    stamp = now_ms() if stamp is None else stamp
    ordered = urlencode(sorted((signed_params if signed_params is not None else query).items()))
    headers = {"ApiKey": creds.api_key, "Request-Time": str(stamp), "Content-Type": "application/json",
               "Signature": sign(creds.secret, f"{creds.api_key}{stamp}{ordered}")}
    url = f"{sim.endpoints('mexc', 'future').rest}/api/v1/private/order/list/order_deals?{urlencode(query)}"
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        return json.loads(await response.text(), parse_float=Decimal)


async def test_contract_order_deals_pages_newest_first_with_rows_in_contracts(sim):
    _, fills = await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0004", "60000", parts=4)
    await sim.fill("mexc", "future", "ETH/USDT:USDT", "buy", "0.02", "3000")
    async with aiohttp.ClientSession() as http:
        body = await contract_get(http, sim, {"symbol": "BTC_USDT", "page_num": 1, "page_size": 3})
        assert (body["success"], body["code"]) == (True, 0)
        assert [row["id"] for row in body["data"]] == [int(f.trade_id) for f in reversed(fills[1:])]
        body = await contract_get(http, sim, {"symbol": "BTC_USDT", "page_num": 2, "page_size": 3})
        [row] = body["data"]
        assert row == {
            "id": int(fills[0].trade_id), "symbol": "BTC_USDT", "side": 1, "vol": 1, "price": 60000,
            "feeCurrency": "USDT", "fee": fills[0].fee.normalize(), "timestamp": fills[0].time, "profit": 0,
            "isTaker": not fills[0].is_maker, "category": 1, "orderId": int(fills[0].order_id), "positionMode": 1,
            "reduceOnly": False,
        }
        # unsorted query, signed over the sorted parameters: accepted (the server sorts)
        body = await contract_get(http, sim, {"symbol": "BTC_USDT", "page_size": 1, "page_num": 1})
        assert [row["id"] for row in body["data"]] == [int(fills[3].trade_id)]
        body = await contract_get(http, sim, {"symbol": "BTC_USDT", "end_time": fills[0].time - 1})
        assert body["data"] == []


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("wrong-secret", 602, "Signature verification failed!"),
        ("unknown-key", 401, "Unauthorized"),
        ("stale", 513, "Invalid request(for open api serves time more or less than 10s)"),
        ("signed-other-params", 602, "Signature verification failed!"),
        ("no-symbol", 600, "Parameter error"),
        ("page-size", 600, "Parameter error"),
        ("span", 6003, "Time range error"),
    ],
)
async def test_bad_contract_history_requests_get_success_false_with_mexcs_code(sim, case, code, message):
    creds, query, kwargs = sim.credentials_for("mexc"), {"symbol": "BTC_USDT"}, {}
    if case == "wrong-secret":
        kwargs["creds"] = bad(creds, secret="0" * 48)
    elif case == "unknown-key":
        kwargs["creds"] = bad(creds, api_key="mx0someoneelse")
    elif case == "stale":
        kwargs["stamp"] = now_ms() - 11_000
    elif case == "signed-other-params":
        kwargs["signed_params"] = {"symbol": "ETH_USDT"}
    elif case == "no-symbol":
        query = {"page_num": 1}
    elif case == "page-size":
        query["page_size"] = 101
    elif case == "span":
        query.update(start_time=0, end_time=91 * 86_400_000)
    async with aiohttp.ClientSession() as http:
        body = await contract_get(http, sim, query, **kwargs)
    assert body == {"success": False, "code": code, "message": message}


# ccxt's fetch_my_trades (what a REST backfill calls) ---------------------------------------------------------------------
def ccxt_mexc(sim: Simulator, market: str):
    ccxt_async = pytest.importorskip("ccxt.async_support")
    creds = sim.credentials_for("mexc")
    exchange = ccxt_async.mexc({"apiKey": creds.api_key, "secret": creds.secret})
    exchange.urls["api"]["spot"]["private"] = sim.endpoints("mexc", "spot").rest
    exchange.urls["api"]["contract"]["private"] = sim.endpoints("mexc", "future").rest + "/api/v1/private"
    swap = market == "future"
    exchange.set_markets([{
        "id": "BTC_USDT" if swap else "BTCUSDT", "symbol": "BTC/USDT" + (":USDT" if swap else ""), "base": "BTC",
        "quote": "USDT", "settle": "USDT" if swap else None, "baseId": "BTC", "quoteId": "USDT",
        "settleId": "USDT" if swap else None, "type": "swap" if swap else "spot", "spot": not swap, "swap": swap,
        "future": False, "option": False, "contract": swap, "linear": True if swap else None,
        "inverse": False if swap else None, "contractSize": SIZE if swap else None, "active": True, "precision": {},
        "limits": {},
    }])
    return exchange


@pytest.mark.parametrize("market", ["spot", "future"])
async def test_ccxt_fetch_my_trades_reads_the_simulators_history(sim, market):
    symbol = "BTC/USDT" + (":USDT" if market == "future" else "")
    _, fills = await sim.fill("mexc", market, symbol, "buy", "0.0030", "64000.5", parts=3)
    exchange = ccxt_mexc(sim, market)
    try:
        trades = await exchange.fetch_my_trades(symbol, since=fills[0].time - 1000, limit=100)
    finally:
        await exchange.close()
    assert [t["id"] for t in trades] == [f.trade_id for f in fills]
    for trade, fill in zip(trades, fills):
        assert (trade["order"], trade["side"], trade["timestamp"]) == (fill.order_id, "buy", fill.time)
        assert Decimal(str(trade["price"])) == fill.price
        assert trade["takerOrMaker"] == ("maker" if fill.is_maker else "taker")
        expected = fill.amount if market == "spot" else fill.amount / SIZE  # contracts, as ccxt counts them
        assert Decimal(str(trade["amount"])) == expected


async def test_two_sockets_on_one_key_each_get_their_own_subscriptions(sim):
    async with asyncio.timeout(15), aiohttp.ClientSession() as http:
        orders = await spot_socket(http, sim, ORDERS)
        key = sim.sessions("mexc", "spot")[0].state["listen_key"]
        deals = await http.ws_connect(STREAM.ws_url(Market.SPOT, sim.endpoints("mexc", "spot"), key))
        await deals.send_json({"method": "SUBSCRIPTION", "params": [DEALS]})
        await receive(deals)
        await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.1", "100")
        assert [(await receive(orders)).channel for _ in range(2)] == [ORDERS] * 2
        assert (await receive(deals)).channel == DEALS
        await assert_quiet(orders)
        await assert_quiet(deals)
        await orders.close()
        await deals.close()
