"""Hyperliquid simulator plugin on a real socket: acks, snapshot, pushes by address, errors, keepalive, `POST /info`."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest

from exchanges.hyperliquid.normalize import normalize
from exchanges.hyperliquid.stream import HyperliquidStream, handshake
from exchanges.simulator import Simulator
from exchanges.simulator.venues.hyperliquid import RETAINED_FILLS, HyperliquidSim
from framework.venue import MessageKind
from framework.connection import decode_frame
from framework.errors import SubscriptionError
from framework.events import Market, OrderStatus, OrderUpdate, Trade, now_ms
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy
from framework.strategy import BaseStrategy

SYMBOL = "BTC/USDC:USDC"
STREAM = HyperliquidStream()
OTHER = "0x" + "ab" * 20
CLOID = "0x" + "0123456789abcdef" * 2


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["hyperliquid"], seed=11) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def wallet(sim: Simulator) -> str:
    return sim.credentials_for("hyperliquid").wallet_address


def ws_url(sim: Simulator) -> str:
    return STREAM.ws_url(Market.FUTURE, sim.endpoints("hyperliquid", "future"), None)


def info_url(sim: Simulator) -> str:
    return sim.endpoints("hyperliquid", "future").rest + "/info"


def subscribe(kind: str, user: str, method: str = "subscribe") -> dict:
    return {"method": method, "subscription": {"type": kind, "user": user}}


async def recv(ws, timeout: float = 3.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


async def assert_silent(ws, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        msg = await asyncio.wait_for(ws.receive(), seconds)
        pytest.fail(f"expected no frame, got {msg}")


async def subscribed(http, sim: Simulator, *kinds: str, user: str | None = None):
    """A raw socket subscribed to `kinds` for `user` (the simulator's wallet by default); acks and snapshots read."""
    ws = await http.ws_connect(ws_url(sim))
    for kind in kinds:
        await ws.send_json(subscribe(kind, user or wallet(sim)))
        assert (await recv(ws))["channel"] == "subscriptionResponse"
        if kind == "userFills":
            assert (await recv(ws))["data"]["isSnapshot"] is True
    return ws


def events(frames) -> list:
    return [e for frame in frames for e in normalize(frame, Market.FUTURE)]


# subscribing -----------------------------------------------------------------------------------------------------
async def test_client_handshake_gets_three_acks_the_fills_snapshot_and_the_account_state(sim, http):
    ws = await http.ws_connect(ws_url(sim))
    messages = handshake(sim.credentials_for("hyperliquid"), Market.FUTURE, now_ms())
    for message in messages:  # back to back, as the client sends them
        await ws.send_json(message)
    ack_fills, snapshot, ack_orders, ack_account, state = [await recv(ws) for _ in range(5)]
    assert ack_fills == {"channel": "subscriptionResponse", "data": messages[0]}
    assert snapshot == {"channel": "userFills", "data": {"isSnapshot": True, "user": wallet(sim), "fills": []}}
    assert ack_orders == {"channel": "subscriptionResponse", "data": messages[1]}
    assert ack_account == {"channel": "subscriptionResponse", "data": messages[2]}
    assert state["channel"] == "clearinghouseState" and state["data"]["user"] == wallet(sim)
    kinds = [STREAM.classify(m, Market.FUTURE) for m in (ack_fills, snapshot, ack_orders, ack_account, state)]
    assert kinds == [MessageKind.ACK, MessageKind.EVENT, MessageKind.ACK, MessageKind.ACK, MessageKind.EVENT]
    assert STREAM.acks_expected(Market.FUTURE) == 3
    assert sim.sessions("hyperliquid", "future")[0].subscriptions == {
        f"userFills:{wallet(sim)}", f"orderUpdates:{wallet(sim)}", f"clearinghouseState:{wallet(sim)}"}


async def test_snapshot_replays_recent_fills_which_normalize_to_the_ledger(sim, http):
    _, fills = await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.030", "65000.5", parts=3)
    ws = await http.ws_connect(ws_url(sim))
    await ws.send_json(subscribe("userFills", wallet(sim)))
    await recv(ws)
    snapshot = await recv(ws)
    assert snapshot["data"]["isSnapshot"] is True and snapshot["data"]["user"] == wallet(sim)
    trades = events([snapshot])
    assert [t.trade_id for t in trades] == [f.trade_id for f in fills]
    assert all(t.amount == f.amount and t.price == f.price and t.timestamp == f.time for t, f in zip(trades, fills))


async def test_snapshot_limit_zero_sends_an_empty_snapshot(sim, http):
    await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.010", "100")
    sim.venue("hyperliquid").snapshot_limit = 0
    ws = await http.ws_connect(ws_url(sim))
    await ws.send_json(subscribe("userFills", wallet(sim)))
    await recv(ws)
    assert (await recv(ws))["data"] == {"isSnapshot": True, "user": wallet(sim), "fills": []}


async def test_checksummed_address_subscribes_the_same_user(sim, http):
    mixed = "0x" + wallet(sim)[2:].upper()
    ws = await http.ws_connect(ws_url(sim))
    await ws.send_json(subscribe("userFills", mixed))
    assert (await recv(ws))["data"]["subscription"]["user"] == mixed  # the request, echoed
    assert (await recv(ws))["data"]["user"] == wallet(sim)
    _, fills = await sim.fill("hyperliquid", "future", SYMBOL, "sell", "0.010", "100")
    assert [t.trade_id for t in events([await recv(ws)])] == [fills[0].trade_id]


@pytest.mark.parametrize("user", ["0x123", "15f43d1f2dee81424afd891943262aa90f22cc2a00", "0x" + "zz" * 20, None])
async def test_malformed_address_gets_the_parse_error_and_no_data(sim, http, user):
    ws = await http.ws_connect(ws_url(sim))
    request = {"method": "subscribe", "subscription": {"type": "userFills", "user": user}}
    await ws.send_json(request)
    error = await recv(ws)
    assert error["channel"] == "error"
    assert error["data"].startswith("Error parsing JSON into valid websocket request: {")
    assert '"type":"userFills"' in error["data"]
    with pytest.raises(SubscriptionError, match="Error parsing JSON"):
        STREAM.classify(error, Market.FUTURE)
    await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.010", "100")
    await assert_silent(ws)


@pytest.mark.parametrize("request_", [
    {"method": "subscribe", "subscription": {"type": "userFillz", "user": OTHER}},
    {"method": "subscribe"},
    {"method": "listen", "subscription": {"type": "userFills", "user": OTHER}},
    ["ping"],
])
async def test_unknown_requests_get_the_parse_error(sim, http, request_):
    ws = await http.ws_connect(ws_url(sim))
    await ws.send_json(request_)
    error = await recv(ws)
    assert error["channel"] == "error" and error["data"].startswith("Error parsing JSON into valid websocket request")


async def test_another_users_subscription_is_acked_with_an_empty_snapshot_and_gets_no_pushes(sim, http):
    await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.010", "100")
    ws = await http.ws_connect(ws_url(sim))
    await ws.send_json(subscribe("userFills", OTHER))
    await ws.send_json(subscribe("orderUpdates", OTHER))
    assert (await recv(ws))["channel"] == "subscriptionResponse"
    assert (await recv(ws))["data"] == {"isSnapshot": True, "user": OTHER, "fills": []}
    assert (await recv(ws))["channel"] == "subscriptionResponse"
    await sim.fill("hyperliquid", "future", SYMBOL, "sell", "0.020", "101")
    await assert_silent(ws)


async def test_order_updates_alone_get_no_fills(sim, http):
    ws = await subscribed(http, sim, "orderUpdates")
    order, _ = await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.010", "100")
    frames = [await recv(ws), await recv(ws)]
    assert [f["channel"] for f in frames] == ["orderUpdates", "orderUpdates"]
    assert [f["data"][0]["status"] for f in frames] == ["open", "filled"]
    assert {f["data"][0]["order"]["oid"] for f in frames} == {int(order.order_id)}
    await assert_silent(ws)


async def test_repeat_subscribe_and_unsubscribe_errors_and_unsubscribe_stops_pushes(sim, http):
    ws = await subscribed(http, sim, "userFills")
    await ws.send_json(subscribe("userFills", wallet(sim)))
    again = await recv(ws)
    assert again == {"channel": "error",
                     "data": f'Already subscribed: {{"type":"userFills","user":"{wallet(sim)}"}}'}
    await ws.send_json(subscribe("userFills", wallet(sim), "unsubscribe"))
    assert await recv(ws) == {"channel": "subscriptionResponse", "data": subscribe("userFills", wallet(sim),
                                                                                   "unsubscribe")}
    await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.010", "100")
    await assert_silent(ws)
    await ws.send_json(subscribe("userFills", wallet(sim), "unsubscribe"))
    assert (await recv(ws))["data"].startswith("Already unsubscribed: ")


async def test_an_eleventh_user_is_refused(sim, http):
    ws = await http.ws_connect(ws_url(sim))
    users = ["0x" + f"{n:040x}" for n in range(1, 12)]
    for user in users[:10]:
        await ws.send_json(subscribe("orderUpdates", user))
        assert (await recv(ws))["channel"] == "subscriptionResponse"
    await ws.send_json(subscribe("orderUpdates", users[10]))
    assert await recv(ws) == {"channel": "error", "data": "Cannot track more than 10 total users."}
    await ws.send_json(subscribe("userFills", users[0]))  # an address already tracked is still fine
    assert (await recv(ws))["channel"] == "subscriptionResponse"


# keepalive ---------------------------------------------------------------------------------------------------------
async def test_ping_gets_pong(sim, http):
    ws = await http.ws_connect(ws_url(sim))
    await ws.send_json(STREAM.ping(now_ms(), Market.FUTURE))
    pong = await recv(ws)
    assert pong == {"channel": "pong"}
    assert STREAM.classify(pong, Market.FUTURE) is MessageKind.PONG


async def test_a_silent_socket_is_closed_after_the_venue_limit(sim, http):
    assert HyperliquidSim.client_silence_limit == 60.0
    sim.venue("hyperliquid").client_silence_limit = 0.3
    ws = await subscribed(http, sim, "orderUpdates")
    msg = await asyncio.wait_for(ws.receive(), 3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


# pushes -------------------------------------------------------------------------------------------------------------
async def test_fill_pushes_normalize_to_the_ledger_and_the_order_ends_filled(sim, http):
    ws = await subscribed(http, sim, "userFills", "orderUpdates")
    order, fills = await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.030", "65000.5", parts=3,
                                  client_order_id="loop-1", is_maker=True)
    frames = [await recv(ws) for _ in range(5)]  # open, 3 fills, filled: no orderUpdates per partial fill
    await assert_silent(ws)
    assert [f["channel"] for f in frames] == ["orderUpdates", "userFills", "userFills", "userFills", "orderUpdates"]
    assert all("isSnapshot" not in f["data"] for f in frames if f["channel"] == "userFills")
    got = events(frames)
    trades = [e for e in got if isinstance(e, Trade)]
    updates = [e for e in got if isinstance(e, OrderUpdate)]
    for trade, fill in zip(trades, fills, strict=True):
        assert (trade.trade_id, trade.order_id, trade.side.value, trade.symbol, trade.symbol_raw) == (
            fill.trade_id, fill.order_id, "buy", SYMBOL, "BTC")
        assert (trade.amount, trade.price, trade.fee_cost, trade.fee_currency) == (
            fill.amount, fill.price, fill.fee, "USDC")
        assert trade.timestamp == fill.time and trade.is_maker is True
        assert trade.client_order_id is None  # "loop-1" is no 128-bit cloid: the venue would not echo it
    assert [(u.status, u.filled) for u in updates] == [(OrderStatus.NEW, 0), (OrderStatus.FILLED, Decimal("0.030"))]
    assert updates[-1].order_id == order.order_id and updates[-1].amount == Decimal("0.030")


async def test_fill_row_has_the_documented_fields(sim, http):
    ws = await subscribed(http, sim, "userFills")
    _, (fill,) = await sim.fill("hyperliquid", "future", SYMBOL, "sell", "0.5", "3200.25", is_maker=False,
                                client_order_id=CLOID)
    (row,) = (await recv(ws))["data"]["fills"]
    assert row == {
        "coin": "BTC", "px": "3200.25", "sz": "0.5", "side": "A", "time": fill.time, "startPosition": "0",
        "dir": "Open Short", "closedPnl": "0.0", "hash": row["hash"], "oid": int(fill.order_id), "crossed": True,
        "fee": str(fill.fee), "tid": int(fill.trade_id), "feeToken": "USDC", "cloid": CLOID,
    }
    assert row["hash"].startswith("0x") and len(row["hash"]) == 66
    (trade,) = events([{"channel": "userFills", "data": {"user": wallet(sim), "fills": [row]}}])
    assert trade.client_order_id == CLOID and trade.is_maker is False


async def test_cloid_is_echoed_in_order_updates(sim, http):
    ws = await subscribed(http, sim, "orderUpdates")
    await sim.fill("hyperliquid", "future", SYMBOL, "buy", "1", "10", client_order_id=CLOID)
    opened, filled = await recv(ws), await recv(ws)
    assert opened["data"][0]["order"]["cloid"] == filled["data"][0]["order"]["cloid"] == CLOID
    assert (filled["data"][0]["order"]["sz"], filled["data"][0]["order"]["origSz"]) == ("0", "1")


async def test_start_position_and_direction_follow_the_position(sim, http):
    ws = await subscribed(http, sim, "userFills")
    await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.03", "100")
    await sim.fill("hyperliquid", "future", SYMBOL, "sell", "0.05", "100")
    await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.01", "100")
    await sim.fill("hyperliquid", "future", "ETH/USDC:USDC", "sell", "1", "100")
    rows = [(await recv(ws))["data"]["fills"][0] for _ in range(4)]
    assert [(r["coin"], r["startPosition"], r["dir"]) for r in rows] == [
        ("BTC", "0", "Open Long"), ("BTC", "0.03", "Long > Short"), ("BTC", "-0.02", "Close Short"),
        ("ETH", "0", "Open Short")]


# end to end ---------------------------------------------------------------------------------------------------------
class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


@pytest.mark.parametrize(("snapshot_limit", "source"), [
    pytest.param(2000, "websocket", id="snapshot-replays-them"),  # the venue's own replay, before the backfill runs
    pytest.param(0, "rest", id="backfill-finds-them"),
])
async def test_fills_missed_while_down_come_back_exactly_once(sim, tmp_path, snapshot_limit, source):
    sim.venue("hyperliquid").snapshot_limit = snapshot_limit
    policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
    async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Recorder("hl", [sim.connector("hyperliquid", "future", retry_policy=policy)], symbols=[SYMBOL], pool=pool)
        await s.start()
        connection = pool.connection(s.exchange_connectors[0].key)
        _, before = await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.010", "100.1")
        async with asyncio.timeout(10):
            while len(s.trades) < 1:
                await asyncio.sleep(0.01)
        sim.refuse_connections("hyperliquid", "future", 0.5)
        assert await sim.drop("hyperliquid", "future") == 1
        _, during = await sim.fill("hyperliquid", "future", SYMBOL, "sell", "0.020", "100.2", parts=2)
        async with asyncio.timeout(10):
            while len(s.trades) < 3 or pool.scheduler(connection.key).backfills < 2:  # the start's, then the gap's
                await asyncio.sleep(0.01)
        await pool.flush(5)
        stored = {t.trade_id: t for t in await pool.store.fetch_trades()}
        assert sorted(stored) == sorted(f.trade_id for f in before + during)
        assert {stored[f.trade_id].source.value for f in during} == {source}
        assert sorted(t.trade_id for t in s.trades) == sorted(stored)
        await s.stop()


# REST ---------------------------------------------------------------------------------------------------------------
async def post_info(http, sim: Simulator, body) -> aiohttp.ClientResponse:
    return await http.post(info_url(sim), json=body)


def place(sim: Simulator, count: int, start: int, symbol: str = SYMBOL) -> list:
    """`count` fills straight into the ledger, one per millisecond from `start` (no socket traffic)."""
    ledger = sim.ledger("hyperliquid", "future")
    fills = []
    for n in range(count):
        order = ledger.new_order(symbol, "buy" if n % 2 else "sell", Decimal("0.001"), Decimal(100), None,
                                 start + n)
        fills.append(ledger.fill(order, Decimal("0.001"), Decimal(100), is_maker=True, fee_rate=Decimal("0.0002"),
                                 fee_currency="USDC", now=start + n))
    return fills


async def test_user_fills_by_time_is_inclusive_oldest_first_and_capped_at_2000(sim, http):
    fills = place(sim, 2100, 1_700_000_000_000)
    body = {"type": "userFillsByTime", "user": wallet(sim), "startTime": fills[10].time, "endTime": fills[20].time}
    rows = await (await post_info(http, sim, body)).json()
    assert [r["tid"] for r in rows] == [int(f.trade_id) for f in fills[10:21]]
    rows = await (await post_info(http, sim, {"type": "userFillsByTime", "user": wallet(sim),
                                              "startTime": fills[0].time})).json()
    assert len(rows) == 2000 and rows[0]["tid"] == int(fills[0].trade_id)
    assert rows[-1]["tid"] == int(fills[1999].trade_id)


async def test_user_fills_gives_the_2000_most_recent_newest_first(sim, http):
    fills = place(sim, 2005, 1_700_000_000_000)
    rows = await (await post_info(http, sim, {"type": "userFills", "user": wallet(sim),
                                              "aggregateByTime": False})).json()
    assert [r["tid"] for r in rows] == [int(f.trade_id) for f in reversed(fills[5:])]


async def test_only_the_10000_most_recent_fills_exist(sim, http):
    fills = place(sim, RETAINED_FILLS + 3, 1_700_000_000_000)
    rows = await (await post_info(http, sim, {"type": "userFillsByTime", "user": wallet(sim), "startTime": 0,
                                              "endTime": fills[5].time})).json()
    assert [r["tid"] for r in rows] == [int(f.trade_id) for f in fills[3:6]]


async def test_another_address_has_no_fills(sim, http):
    place(sim, 3, 1_700_000_000_000)
    response = await post_info(http, sim, {"type": "userFillsByTime", "user": OTHER, "startTime": 0})
    assert response.status == 200 and await response.json() == []


@pytest.mark.parametrize("body", [
    {"type": "userFillsByTime", "user": "0x1", "startTime": 0},
    {"type": "userFillsByTime", "user": OTHER},
    {"type": "userFillsByTime", "user": OTHER, "startTime": "1700000000000"},
    {"type": "userFillz", "user": OTHER},
    ["userFills"],
])
async def test_a_body_that_does_not_parse_gets_422(sim, http, body):
    response = await post_info(http, sim, body)
    assert response.status == 422
    assert await response.text() == "Failed to deserialize the JSON body into the target type"


async def test_history_rows_equal_the_stream_rows_but_for_the_null_cloid(sim, http):
    ws = await subscribed(http, sim, "userFills")
    _, (fill,) = await sim.fill("hyperliquid", "future", SYMBOL, "buy", "0.010", "100.5")
    pushed = (await recv(ws))["data"]["fills"][0]
    (row,) = await (await post_info(http, sim, {"type": "userFills", "user": wallet(sim)})).json()
    assert pushed.pop("cloid") is None and row == pushed and row["tid"] == int(fill.trade_id)

