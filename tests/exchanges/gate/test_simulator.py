"""Gate on the simulator, over real sockets: signed subscriptions and their refusals, what is pushed to whom,
pings, the futures user id, REST signatures and history paging, and ccxt's fetch_my_trades against it."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest

from exchanges.connector import Credentials
from exchanges.gate import SPEC
from exchanges.gate.auth import channel_auth, rest_headers
from exchanges.gate.normalize import normalize
from exchanges.gate.stream import GateStream, handshake
from exchanges.simulator import Simulator
from framework.errors import AuthError
from framework.events import Market, OrderStatus, Side, Trade, now_ms
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy
from framework.strategy import BaseStrategy

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0  # seconds a frame the test expects may take
QUIET = 0.3  # seconds of silence that show nothing was pushed


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["gate"]) as simulator:
        yield simulator


def request(creds: Credentials, channel: str, payload: list, *, event: str = "subscribe", time_s: int | None = None,
            request_id: int = 7) -> dict:
    time_s = now_ms() // 1000 if time_s is None else time_s
    return {
        "time": time_s, "id": request_id, "channel": channel, "event": event, "payload": payload,
        "auth": channel_auth(creds.api_key, creds.secret, channel, event, time_s),
    }


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict:
    message = await ws.receive(timeout=WAIT)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data, parse_float=Decimal)


async def assert_quiet(ws: aiohttp.ClientWebSocketResponse) -> None:
    with pytest.raises(TimeoutError):
        message = await ws.receive(timeout=QUIET)
        pytest.fail(f"expected nothing, got {message}")


async def subscribed(http: aiohttp.ClientSession, sim: Simulator, market: str, *requests: dict):
    ws = await http.ws_connect(sim.endpoints("gate", market).ws)
    for message in requests:
        await ws.send_json(message)
        reply = await receive(ws)
        assert (reply["error"], reply["result"]) == (None, {"status": "success"}), reply
    return ws


def bad(creds: Credentials, **fields) -> Credentials:
    return Credentials(**{"api_key": creds.api_key, "secret": creds.secret, **fields})


# signed subscriptions ---------------------------------------------------------------------------------------------
async def test_spot_subscribe_is_acked_with_request_id_and_a_fill_arrives_as_usertrade_then_order(sim):
    creds = sim.credentials_for("gate")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("gate", "spot").ws)
        await ws.send_json(request(creds, "spot.usertrades", ["!all"], request_id=42))
        ack = await receive(ws)
        assert (ack["id"], ack["channel"], ack["event"], ack["error"], ack["result"]) == (
            42, "spot.usertrades", "subscribe", None, {"status": "success"},
        )
        await ws.send_json(request(creds, "spot.orders", ["BTC_USDT"]))
        await receive(ws)

        order, [fill] = await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.25", "65000.5", client_order_id="alpha-1")
        put, trade_frame, finish = [await receive(ws) for _ in range(3)]
        assert [f["channel"] for f in (put, trade_frame, finish)] == ["spot.orders", "spot.usertrades", "spot.orders"]
        assert [put["result"][0]["event"], finish["result"][0]["event"]] == ["put", "finish"]
        row = trade_frame["result"][0]
        assert (row["text"], row["currency_pair"], row["amount"], row["price"]) == (
            "t-alpha-1", "BTC_USDT", "0.25", "65000.5",
        )
        assert row["create_time_ms"].startswith(f"{fill.time}.")  # sub-millisecond digits, as Gate sends them

        [trade] = normalize(trade_frame, Market.SPOT)
        assert (trade.trade_id, trade.order_id, trade.client_order_id, trade.side) == (
            fill.trade_id, order.order_id, "alpha-1", Side.BUY,
        )
        assert (trade.amount, trade.price, trade.timestamp, trade.fee_cost) == (
            fill.amount, fill.price, fill.time, fill.fee,
        )
        [update] = normalize(finish, Market.SPOT)
        assert (update.status, update.filled, update.client_order_id) == (
            OrderStatus.FILLED, Decimal("0.25"), "alpha-1",
        )
        await ws.close()


@pytest.mark.parametrize(
    ("market", "channel", "change", "label"),
    [
        ("spot", "spot.orders", {"secret": "0" * 48}, "INVALID_SIGNATURE"),
        ("spot", "spot.usertrades", {"api_key": "someone-else"}, "INVALID_KEY"),
        ("future", "futures.usertrades", {"secret": "0" * 48}, "INVALID_SIGNATURE"),
    ],
)
async def test_bad_key_or_signature_gets_code_4_with_gates_label_and_no_data(sim, market, channel, change, label):
    creds = sim.credentials_for("gate")
    user_id = str(sim.venue("gate").user_id)
    payload = [user_id, "!all"] if market == "future" else ["!all"]
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("gate", market).ws)
        await ws.send_json(request(bad(creds, **change), channel, payload))
        reply = await receive(ws)
        assert reply["error"]["code"] == 4 and reply["result"] is None
        assert json.loads(reply["error"]["message"])["label"] == label
        with pytest.raises(AuthError):
            GateStream().classify(reply, Market(market))
        await sim.fill("gate", market, "BTC/USDT" + (":USDT" if market == "future" else ""), "buy", "0.01", "100")
        await assert_quiet(ws)
        await ws.close()


async def test_request_time_more_than_a_minute_old_gets_request_expired(sim):
    creds = sim.credentials_for("gate")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("gate", "spot").ws)
        await ws.send_json(request(creds, "spot.orders", ["!all"], time_s=now_ms() // 1000 - 120))
        reply = await receive(ws)
        assert reply["error"]["code"] == 4
        assert json.loads(reply["error"]["message"]) == {
            "label": "REQUEST_EXPIRED", "message": "gap between request Timestamp and server time exceeds 60",
        }
        await ws.close()


async def test_private_channel_without_auth_is_refused(sim):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("gate", "spot").ws)
        await ws.send_json({"time": now_ms() // 1000, "channel": "spot.orders", "event": "subscribe",
                            "payload": ["!all"]})
        reply = await receive(ws)
        assert reply["error"] == {"code": 4, "message": "Authentication fail"}
        await sim.fill("gate", "spot", "BTC/USDT", "sell", "1", "100")
        await assert_quiet(ws)
        await ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [("not json", 1), ('{"time": 1, "channel": "spot.margin_balances", "event": "subscribe"}', 2),
     ('{"time": 1, "channel": "futures.orders", "event": "subscribe"}', 2)],
    ids=["text", "unknown-channel", "futures-channel-on-spot"],
)
async def test_malformed_or_unknown_requests_get_gates_error_codes(sim, frame, code):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("gate", "spot").ws)
        await ws.send_str(frame)
        assert (await receive(ws))["error"]["code"] == code
        await ws.close()


# what is pushed to whom -------------------------------------------------------------------------------------------
async def test_only_the_subscribed_channel_is_pushed(sim):
    creds = sim.credentials_for("gate")
    async with aiohttp.ClientSession() as http:
        ws = await subscribed(http, sim, "spot", request(creds, "spot.usertrades", ["!all"]))
        _, fills = await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.3", "100", parts=3)
        channels = [(await receive(ws))["channel"] for _ in fills]
        assert channels == ["spot.usertrades"] * 3
        await assert_quiet(ws)  # no spot.orders frames
        await ws.close()


async def test_a_pair_subscription_gets_that_pair_only(sim):
    creds = sim.credentials_for("gate")
    async with aiohttp.ClientSession() as http:
        ws = await subscribed(http, sim, "spot", request(creds, "spot.usertrades", ["ETH_USDT"]))
        await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.1", "100")
        await assert_quiet(ws)
        _, [fill] = await sim.fill("gate", "spot", "ETH/USDT", "sell", "2", "3200")
        frame = await receive(ws)
        assert (frame["result"][0]["id"], frame["result"][0]["currency_pair"]) == (int(fill.trade_id), "ETH_USDT")
        await ws.close()


async def test_unsubscribe_stops_the_pushes(sim):
    creds = sim.credentials_for("gate")
    async with aiohttp.ClientSession() as http:
        ws = await subscribed(http, sim, "spot", request(creds, "spot.usertrades", ["!all"]),
                              request(creds, "spot.usertrades", ["!all"], event="unsubscribe"))
        await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.1", "100")
        await assert_quiet(ws)
        await ws.close()


async def test_two_sockets_each_get_their_own_subscriptions(sim):
    creds = sim.credentials_for("gate")
    async with asyncio.timeout(15), aiohttp.ClientSession() as http:
        orders = await subscribed(http, sim, "spot", request(creds, "spot.orders", ["!all"]))
        trades = await subscribed(http, sim, "spot", request(creds, "spot.usertrades", ["!all"]))
        await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.1", "100")
        assert [(await receive(orders))["channel"] for _ in range(2)] == ["spot.orders"] * 2
        assert (await receive(trades))["channel"] == "spot.usertrades"
        await assert_quiet(orders)
        await assert_quiet(trades)
        await orders.close()
        await trades.close()


@pytest.mark.parametrize(("market", "ping", "pong"), [("spot", "spot.ping", "spot.pong"),
                                                      ("future", "futures.ping", "futures.pong")])
async def test_application_ping_gets_the_pong_channel(sim, market, ping, pong):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("gate", market).ws)
        frame = GateStream().ping(now_ms(), Market(market))  # what the connection sends
        assert frame["channel"] == ping
        await ws.send_json(frame)
        reply = await receive(ws)
        assert (reply["channel"], reply["event"], reply["result"]) == (pong, "", None)
        assert GateStream().classify(reply, Market(market)).value == "pong"
        await ws.close()


class Quiet(BaseStrategy):
    pass


def fast_keepalive(monkeypatch, interval: float = 0.05, silence: float = 0.4) -> None:
    monkeypatch.setattr(SPEC.stream, "ping_interval", interval)
    monkeypatch.setattr(SPEC.stream, "silence_limit", silence)


def seen_pings(monkeypatch, sim: Simulator, *, answer: bool = True) -> list[str]:
    """The ping channels the simulator receives; `answer=False`: it swallows them (a socket gone quiet)."""
    venue, seen = sim.venue("gate"), []
    on_message = venue.on_message

    async def recording(session, message):
        if isinstance(message, dict) and str(message.get("channel", "")).endswith(".ping"):
            seen.append(message["channel"])
            if not answer:
                return
        await on_message(session, message)

    monkeypatch.setattr(venue, "on_message", recording)
    return seen


@pytest.mark.parametrize(("market", "ping"), [("spot", "spot.ping"), ("future", "futures.ping")])
async def test_a_connection_pings_its_market_channel_and_pongs_keep_a_quiet_socket_alive(
        sim, monkeypatch, tmp_path, market, ping):
    fast_keepalive(monkeypatch)
    seen = seen_pings(monkeypatch, sim)
    async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        strategy = Quiet("quiet", [sim.connector("gate", market)], pool=pool)
        await strategy.start()
        await asyncio.sleep(1.0)  # 2.5 silence limits with no data at all
        status = pool.get_connection_status()["connections"][f"gate_{market}"]
        assert (status["status"], status["reconnects"]) == ("connected", 0)
        assert len(seen) >= 10 and set(seen) == {ping}
        await strategy.stop()


async def test_pings_without_pongs_count_as_a_lost_socket_and_reconnect(sim, monkeypatch, tmp_path):
    fast_keepalive(monkeypatch)
    seen_pings(monkeypatch, sim, answer=False)
    async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        policy = reconnect_policy(initial=0.01, maximum=0.05, jitter=0.01, give_up_after=10)
        strategy = Quiet("deaf", [sim.connector("gate", "spot", retry_policy=policy)], pool=pool)
        await strategy.start()
        async with asyncio.timeout(WAIT):
            while pool.get_connection_status()["connections"]["gate_spot"]["reconnects"] < 1:
                await asyncio.sleep(0.02)
        await strategy.stop()
    assert "no message for" in pool.sync_log.path.read_text()


# futures: the user id, contracts ----------------------------------------------------------------------------------
async def test_futures_subscription_needs_the_user_id_that_account_detail_gives(sim):
    creds = sim.credentials_for("gate")
    endpoints = sim.endpoints("gate", "future")
    async with aiohttp.ClientSession() as http:
        user_id = await GateStream().open_listen_key(http, creds, Market.FUTURE, endpoints, now_ms())
        assert user_id == str(sim.venue("gate").user_id)
        ws = await http.ws_connect(endpoints.ws)
        await ws.send_json(request(creds, "futures.orders", [str(int(user_id) + 1), "!all"]))
        refused = await receive(ws)
        assert refused["error"]["code"] == 2 and user_id in refused["error"]["message"]
        for message in handshake(creds, Market.FUTURE, now_ms(), user_id):
            await ws.send_json(message)
            assert (await receive(ws))["result"] == {"status": "success"}
        await ws.close()


async def test_futures_fill_is_signed_contracts_as_exact_json_numbers(sim):
    creds = sim.credentials_for("gate")
    user_id = str(sim.venue("gate").user_id)
    async with aiohttp.ClientSession() as http:
        ws = await subscribed(http, sim, "future", *handshake(creds, Market.FUTURE, now_ms(), user_id)[:2])
        order, [first, second] = await sim.fill("gate", "future", "BTC/USDT:USDT", "sell", "0.0110", "64999.9",
                                                client_order_id="beta-1", parts=2)
        texts = [(await ws.receive(timeout=WAIT)).data for _ in range(5)]  # put, (trade, order) × 2
        frames = [json.loads(text, parse_float=Decimal) for text in texts]
        assert [f["channel"] for f in frames] == ["futures.orders"] + ["futures.usertrades", "futures.orders"] * 2
        assert '"size":-55,' in texts[1] and '"size":-110,' in texts[0]  # 0.0055 BTC = 55 contracts of 0.0001
        assert f'"fee":{first.fee},' in texts[1]  # a JSON number with the ledger's exact digits

        trades = [e for f in frames for e in normalize(f, Market.FUTURE) if isinstance(e, Trade)]
        seen = [(t.trade_id, t.order_id, t.side, t.amount, t.price, t.timestamp, t.client_order_id) for t in trades]
        assert seen == [
            (f.trade_id, order.order_id, Side.SELL, f.amount / Decimal("0.0001"), f.price, f.time, "beta-1")
            for f in (first, second)
        ]
        [last] = normalize(frames[-1], Market.FUTURE)
        assert (last.status, last.filled, last.amount, last.timestamp) == (
            OrderStatus.FILLED, Decimal(110), Decimal(110), second.time,
        )
        await ws.close()


# REST: signatures -------------------------------------------------------------------------------------------------
async def signed_get(http, sim, market: str, path: str, query: str = "", *, creds: Credentials | None = None,
                     signed_path: str | None = None, headers: dict | None = None) -> tuple[int, object, dict]:
    creds = creds or sim.credentials_for("gate")
    base = sim.endpoints("gate", market).rest
    mount = f"/gate_{market}"
    signed = rest_headers(creds.api_key, creds.secret, "GET", signed_path or mount + path, query, "", now_ms())
    url = base + path + (f"?{query}" if query else "")
    async with http.get(url, headers={**signed, **(headers or {})}) as response:
        return response.status, json.loads(await response.text(), parse_float=Decimal), dict(response.headers)


async def test_account_detail_checks_the_signature_over_the_request_path(sim):
    async with aiohttp.ClientSession() as http:
        status, body, _ = await signed_get(http, sim, "future", "/account/detail")
        assert (status, body["user_id"]) == (200, sim.venue("gate").user_id)
        # ccxt signs the live path ('/api/v4' + path) whatever its base URL: accepted as the same request.
        status, _, _ = await signed_get(http, sim, "future", "/account/detail", signed_path="/api/v4/account/detail")
        assert status == 200
        status, body, _ = await signed_get(http, sim, "future", "/account/detail",
                                           signed_path="/gate_future/spot/my_trades")
        assert (status, body) == (401, {"label": "INVALID_SIGNATURE", "message": "Signature mismatch"})


@pytest.mark.parametrize(
    ("change", "headers", "label"),
    [
        ({"secret": "0" * 48}, {}, "INVALID_SIGNATURE"),
        ({"api_key": "nobody"}, {}, "INVALID_KEY"),
        ({}, {"Timestamp": str(now_ms() // 1000 - 3600)}, "REQUEST_EXPIRED"),
        ({}, {"SIGN": ""}, "MISSING_REQUIRED_HEADER"),
    ],
)
async def test_badly_signed_rest_calls_get_401_with_gates_label(sim, change, headers, label):
    creds = bad(sim.credentials_for("gate"), **change)
    async with aiohttp.ClientSession() as http:
        status, body, _ = await signed_get(http, sim, "spot", "/spot/my_trades", creds=creds, headers=headers)
        assert (status, body["label"]) == (401, label)


async def test_user_id_lookup_with_a_wrong_secret_raises_auth_error(sim):
    creds = bad(sim.credentials_for("gate"), secret="0" * 48)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AuthError, match="401"):
            await GateStream().open_listen_key(http, creds, Market.FUTURE, sim.endpoints("gate", "future"), now_ms())


# REST: history ----------------------------------------------------------------------------------------------------
async def test_spot_my_trades_pages_newest_first_and_filters_pair_and_order(sim):
    order, fills = await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.5", "100", client_order_id="gamma-1", parts=5)
    _, [eth] = await sim.fill("gate", "spot", "ETH/USDT", "sell", "1", "3000")
    async with aiohttp.ClientSession() as http:
        pages = []
        for page in (1, 2, 3):
            status, rows, _ = await signed_get(http, sim, "spot", "/spot/my_trades",
                                               f"currency_pair=BTC_USDT&limit=2&page={page}")
            assert status == 200
            pages.append([row["id"] for row in rows])
        assert pages == [[fills[4].trade_id, fills[3].trade_id], [fills[2].trade_id, fills[1].trade_id],
                         [fills[0].trade_id]]
        _, rows, _ = await signed_get(http, sim, "spot", "/spot/my_trades")
        assert [row["id"] for row in rows] == [eth.trade_id] + [f.trade_id for f in reversed(fills)]
        _, rows, _ = await signed_get(http, sim, "spot", "/spot/my_trades",
                                      f"currency_pair=BTC_USDT&order_id={order.order_id}&limit=1")
        [row] = rows
        assert row == {
            "id": fills[4].trade_id, "create_time": str(fills[4].time // 1000),
            "create_time_ms": f"{fills[4].time}.{int(fills[4].trade_id) % 1000:03d}", "currency_pair": "BTC_USDT",
            "side": "buy", "role": row["role"], "amount": "0.1", "price": "100", "order_id": order.order_id,
            "fee": str(fills[4].fee), "fee_currency": "USDT", "point_fee": "0", "gt_fee": "0", "amend_text": "-",
            "sequence_id": fills[4].trade_id, "text": "t-gamma-1",
        }


async def test_spot_my_trades_time_window_and_limits_follow_the_docs(sim):
    await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.1", "100")
    now_s = now_ms() // 1000
    async with aiohttp.ClientSession() as http:
        _, rows, _ = await signed_get(http, sim, "spot", "/spot/my_trades", f"from={now_s - 5}&to={now_s + 5}")
        assert len(rows) == 1
        # only `from`, 8 days ago: the 7 days after it, which end before the fill
        _, rows, _ = await signed_get(http, sim, "spot", "/spot/my_trades", f"from={now_s - 8 * 86400}")
        assert rows == []
        month = f"from={now_s - 31 * 86400}&to={now_s}"
        status, body, _ = await signed_get(http, sim, "spot", "/spot/my_trades", month)
        assert (status, body) == (400, {"label": "INVALID_PARAM_VALUE", "message": "invalid time range"})
        status, body, _ = await signed_get(http, sim, "spot", "/spot/my_trades", "limit=1001")
        assert (status, body["label"]) == (400, "INVALID_PARAM_VALUE") and "`limit`" in body["message"]


async def test_futures_my_trades_offset_last_id_contract_and_pagination_headers(sim):
    _, fills = await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0004", "60000", parts=4)
    await sim.fill("gate", "future", "ETH/USDT:USDT", "buy", "0.02", "3000")
    async with aiohttp.ClientSession() as http:
        status, rows, headers = await signed_get(http, sim, "future", "/futures/usdt/my_trades",
                                                 "contract=BTC_USDT&limit=2&offset=1")
        assert status == 200 and (headers["X-Pagination-Limit"], headers["X-Pagination-Offset"]) == ("2", "1")
        assert [row["id"] for row in rows] == [int(fills[2].trade_id), int(fills[1].trade_id)]
        assert (rows[0]["size"], rows[0]["price"], rows[0]["contract"]) == (1, "60000", "BTC_USDT")
        _, rows, _ = await signed_get(http, sim, "future", "/futures/usdt/my_trades",
                                      f"contract=BTC_USDT&last_id={fills[1].trade_id}")
        assert [row["id"] for row in rows] == [int(fills[0].trade_id)]


async def test_futures_timerange_rows_carry_trade_id_and_decimal_sizes_on_request(sim):
    _, [fill] = await sim.fill("gate", "future", "ETH/USDT:USDT", "sell", "0.015", "3000.5")
    now_s = now_ms() // 1000
    async with aiohttp.ClientSession() as http:
        _, [row], _ = await signed_get(http, sim, "future", "/futures/usdt/my_trades_timerange",
                                       f"contract=ETH_USDT&from={now_s - 5}&to={now_s + 5}",
                                       headers={"X-Gate-Size-Decimal": "1"})
        assert (row["trade_id"], row["size"], row["create_time"]) == (
            fill.trade_id, "-1.5", Decimal(fill.time).scaleb(-3),  # 0.015 ETH = 1.5 contracts of 0.01
        )
        _, rows, _ = await signed_get(http, sim, "future", "/futures/usdt/my_trades_timerange", f"to={now_s - 5}")
        assert rows == []


# ccxt's fetch_my_trades (what a REST backfill calls) --------------------------------------------------------------
def ccxt_gate(sim: Simulator, market: str):
    ccxt_async = pytest.importorskip("ccxt.async_support")
    creds = sim.credentials_for("gate")
    exchange = ccxt_async.gate({"apiKey": creds.api_key, "secret": creds.secret})
    for api in ("spot", "futures", "account"):
        exchange.urls["api"]["private"][api] = sim.endpoints("gate", market).rest
    swap = market == "future"
    base, quote, raw = ("BTC", "USDT", "BTC_USDT")
    exchange.set_markets([{
        "id": raw, "symbol": f"{base}/{quote}" + (":USDT" if swap else ""), "base": base, "quote": quote,
        "settle": quote if swap else None, "baseId": base, "quoteId": quote, "settleId": "usdt" if swap else None,
        "type": "swap" if swap else "spot", "spot": not swap, "swap": swap, "future": False, "option": False,
        "contract": swap, "linear": True if swap else None, "inverse": False if swap else None,
        "contractSize": Decimal("0.0001") if swap else None, "active": True, "precision": {}, "limits": {},
    }])
    return exchange


@pytest.mark.parametrize("market", ["spot", "future"])
async def test_ccxt_fetch_my_trades_reads_the_simulators_history(sim, market):
    symbol = "BTC/USDT" + (":USDT" if market == "future" else "")
    _, fills = await sim.fill("gate", market, symbol, "sell", "0.0030", "64000.5", parts=3)
    exchange = ccxt_gate(sim, market)
    try:
        trades = await exchange.fetch_my_trades(symbol, since=fills[0].time - 1000, limit=100)
    finally:
        await exchange.close()
    assert [t["id"] for t in trades] == [f.trade_id for f in fills]
    for trade, fill in zip(trades, fills, strict=True):
        assert (trade["order"], trade["side"], Decimal(str(trade["price"]))) == (fill.order_id, "sell", fill.price)
        if market == "spot":
            assert (Decimal(str(trade["amount"])), trade["timestamp"]) == (fill.amount, fill.time)
        else:
            assert Decimal(str(trade["amount"])) == fill.amount / Decimal("0.0001")  # contracts, as ccxt counts
            # ccxt reads futures `create_time` (float seconds) with int(float × 1000): it may be 1 ms short.
            assert fill.time - trade["timestamp"] in (0, 1)
