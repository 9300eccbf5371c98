"""Bitget order entry: the pure rules (client ids, trade-op frames, what every answer code means) and, on the
simulator over real sockets, WebSocket trading on the private socket (granted or not) and REST through ccxt —
place, amend, cancel, query, TP/SL plans, duplicates, faults — each checked against the simulator's ledger."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from decimal import ROUND_DOWN, Decimal

import aiohttp
import ccxt
import pytest

from exchanges.bitget import SPEC
from exchanges.bitget.auth import login_message
from exchanges.bitget.normalize import normalize
from exchanges.bitget.orders import ORDERS, _failure, client_id
from exchanges.bitget.rest import BACKFILL
from exchanges.simulator import Simulator
from framework.backfill import rest_client
from framework.connection import decode_frame
from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Side, now_ms
from framework.orders.model import Amend, OrderRef, OrderRequest, OutcomeKind
from framework.venue import Credentials, MessageKind

SYMBOL = {Market.SPOT: "BTC/USDT", Market.FUTURE: "BTC/USDT:USDT"}
INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}
MARKETS = [pytest.param(Market.SPOT, id="spot"), pytest.param(Market.FUTURE, id="future")]
WS = ORDERS.ws
REST = ORDERS.rest


def order(market: Market, coid: str, *, side="buy", amount="0.01", price="1000", order_type="limit", **kw):
    return OrderRequest(market=market, symbol=SYMBOL[market], side=side, amount=amount, price=price,
                        order_type=order_type, client_order_id=coid, **kw)


def ref(market: Market, coid: str, **kw) -> OrderRef:
    return OrderRef(market=market, symbol=SYMBOL[market], client_order_id=coid, **kw)


# pure: client ids ----------------------------------------------------------------------------------------------------
def test_client_id_is_prefix_dash_base36_and_unique_per_n():
    n = 1_764_000_000_000 * 1000 + 7
    made = client_id(Market.SPOT, "mm_1", n)
    prefix, _, digits = made.rpartition("-")
    assert prefix == "mm_1" and int(digits, 36) == n and len(made) <= 50
    assert len({client_id(Market.FUTURE, "s", n + i) for i in range(1000)}) == 1000


@pytest.mark.parametrize("prefix", ["", "has space", "dot.ted", "ütf", "a/b"])
def test_client_id_refuses_a_prefix_outside_the_charset(prefix):
    with pytest.raises(ValueError, match="letters, digits"):
        client_id(Market.SPOT, prefix, 1)


def test_client_id_refuses_a_prefix_that_leaves_no_room_within_50_characters():
    n = 1_764_000_000_000 * 1000
    longest = "p" * (50 - 1 - len(client_id(Market.SPOT, "p", n).split("-")[1]))
    assert len(client_id(Market.SPOT, longest, n)) == 50
    with pytest.raises(ValueError, match="longer than 50"):
        client_id(Market.SPOT, longest + "p", n)


def test_request_ids_fit_the_trade_ops_id_rule():
    import re

    for n in (0, 7, 10**18):
        rid = WS.request_id(n)
        assert re.fullmatch(r"[0-9A-Za-z_:#\-+\s]{1,40}", rid) and rid.startswith("ts")


# pure: frames --------------------------------------------------------------------------------------------------------
def test_encode_futures_place_is_the_docs_request_shape():
    """The contract Place-Order-Channel request example: sizes in the base coin, margin coin and mode, clientOid."""
    frame = WS.encode("place", order(Market.FUTURE, "testBTC0123", amount="2", price="501"), None, Market.FUTURE,
                      "NEWtestBTC0123", 0, None)
    assert frame == {"op": "trade", "args": [{
        "id": "NEWtestBTC0123", "instType": "USDT-FUTURES", "instId": "BTCUSDT", "channel": "place-order",
        "params": {"orderType": "limit", "side": "buy", "size": "2", "price": "501", "marginCoin": "USDT",
                   "force": "gtc", "marginMode": "crossed", "clientOid": "testBTC0123", "reduceOnly": "NO"}}]}


def test_encode_spot_order_types_and_exact_decimals():
    ioc = WS.encode("place", order(Market.SPOT, "a-1", amount="0.000123450", price="65000.10", order_type="ioc"),
                    None, Market.SPOT, "ts1", 0, None)["args"][0]["params"]
    assert (ioc["orderType"], ioc["force"], ioc["size"], ioc["price"]) == ("limit", "ioc", "0.000123450", "65000.10")
    post = WS.encode("place", order(Market.SPOT, "a-2", order_type="post_only"), None, Market.SPOT, "ts2", 0, None)
    assert post["args"][0]["params"]["force"] == "post_only"
    sell = WS.encode("place", order(Market.SPOT, "a-3", side="sell", price=None, order_type="market"), None,
                     Market.SPOT, "ts3", 0, None)["args"][0]["params"]
    assert sell["orderType"] == "market" and "price" not in sell and sell["size"] == "0.01"
    # a spot market buy is sized in the quote coin: amount × the reference price
    buy = WS.encode("place", order(Market.SPOT, "a-4", amount="0.5", price="64000.2", order_type="market"), None,
                    Market.SPOT, "ts4", 0, None)["args"][0]["params"]
    assert buy["size"] == "32000.10" and "price" not in buy


def test_encode_cancel_names_the_client_id_and_refuses_what_the_socket_cannot_do():
    cancel = WS.encode("cancel", ref(Market.FUTURE, "a-1", order_id="99"), None, Market.FUTURE, "ts9", 0, None)
    assert cancel["args"][0]["channel"] == "cancel-order" and cancel["args"][0]["params"] == {"clientOid": "a-1"}
    with pytest.raises(ValueError, match="amend"):
        WS.encode("amend", Amend(ref=ref(Market.FUTURE, "a-1"), price="2"), None, Market.FUTURE, "ts9", 0, None)
    with pytest.raises(ValueError, match="query"):
        WS.encode("query", ref(Market.SPOT, "a-1"), None, Market.SPOT, "ts9", 0, None)
    with pytest.raises(ValueError, match="REST"):
        WS.encode("place", order(Market.FUTURE, "a-5", side="sell", price=None, order_type="market",
                                 trigger_price="900", trigger="stop_loss", reduce_only=True),
                  None, Market.FUTURE, "ts9", 0, None)
    with pytest.raises(ValueError, match="quote coin"):
        WS.encode("place", order(Market.SPOT, "a-6", price=None, order_type="market"), None, Market.SPOT, "ts9", 0,
                  None)
    with pytest.raises(ValueError, match="reduce-only"):
        WS.encode("place", order(Market.SPOT, "a-7", reduce_only=True), None, Market.SPOT, "ts9", 0, None)


# pure: what the answers mean -----------------------------------------------------------------------------------------
def _answer(event: str, channel: str, code, msg: str, params: dict, inst: str = "SPOT") -> dict:
    return {"event": event, "arg": [{"id": "1", "instType": inst, "channel": channel, "instId": "BTCUSDT",
                                     "params": params}], "code": code, "msg": msg, "ts": 1763955799473}


# Answers captured from the live venue (gocryptotrader's Bitget WS order tests) and Bitget's code table.
DECODED = [
    (_answer("trade", "place-order", 0, "Success", {"orderId": "1376695893517410304", "clientOid": "a0e0"}),
     OutcomeKind.ACCEPTED, None),
    (_answer("error", "place-order", 43027, "The minimum order value 1 is not met", {"size": "0.0001"}),
     OutcomeKind.REJECTED, "43027"),
    (_answer("error", "cancel-order", 43001, "The order does not exist", {"orderId": "12345"}),
     OutcomeKind.NOT_FOUND, "43001"),
    (_answer("trade", "cancel-order", 0, "Success", {"orderId": "1376695893517410304"}), OutcomeKind.ACCEPTED, None),
    (_answer("error", "place-order", 40774, "The order type for unilateral position must also be the unilateral "
                                            "position type", {"size": "1"}, "USDT-FUTURES"),
     OutcomeKind.REJECTED, "40774"),
    (_answer("error", "cancel-order", 41101, "Param orderId=1234 error", {"orderId": "1234"}, "USDT-FUTURES"),
     OutcomeKind.REJECTED, "41101"),
    (_answer("error", "cancel-order", 40768, "Order does not exist", {"clientOid": "x"}, "USDT-FUTURES"),
     OutcomeKind.NOT_FOUND, "40768"),
    (_answer("error", "place-order", 43012, "Insufficient balance", {}), OutcomeKind.REJECTED, "43012"),
    (_answer("error", "place-order", 40010, "Request timed out", {}), OutcomeKind.AMBIGUOUS, "40010"),
    (_answer("error", "place-order", 45001, "Unknown error", {}), OutcomeKind.AMBIGUOUS, "45001"),
    (_answer("error", "place-order", 40725, "service return an error", {}), OutcomeKind.AMBIGUOUS, "40725"),
    (_answer("error", "place-order", 40015, "System is abnormal, please try again later", {}),
     OutcomeKind.AMBIGUOUS, "40015"),
    (_answer("error", "place-order", 429, "Too Many Requests", {}), OutcomeKind.AMBIGUOUS, "429"),
    (_answer("error", "place-order", 43118, "clientOrderId duplicate", {}), OutcomeKind.AMBIGUOUS, "43118"),
    (_answer("error", "place-order", 45034, "clientOid duplicate", {}, "USDT-FUTURES"), OutcomeKind.AMBIGUOUS,
     "45034"),
    (_answer("error", "place-order", 40301, "Permission has not been obtained yet.", {}), OutcomeKind.NOT_SENT,
     "40301"),
    (_answer("error", "place-order", 30004, "User not logged in", {}), OutcomeKind.NOT_SENT, "30004"),
]


@pytest.mark.parametrize(("frame", "kind", "code"), DECODED)
def test_decode_classifies_each_answer(frame, kind, code):
    req_id, outcome = WS.decode(frame, Market.SPOT)
    assert req_id == "1" and outcome.kind is kind and outcome.code == code


def test_decode_a_place_success_carries_the_order_id_and_client_id():
    _, outcome = WS.decode(DECODED[0][0], Market.SPOT)
    assert (outcome.order_id, outcome.client_order_id) == ("1376695893517410304", "a0e0")


def test_decode_an_error_naming_no_request_makes_every_request_ambiguous_but_leaves_the_streams_frames():
    assert WS.decode({"event": "error", "code": 30016, "msg": "Param error"}, Market.SPOT)[0] is None
    assert WS.decode({"event": "error", "code": 30016, "msg": "Param error"}, Market.SPOT)[1].kind is \
        OutcomeKind.AMBIGUOUS
    for frame in [
        {"event": "error", "code": 30015, "msg": "Invalid sign"},  # the stream's login answer
        {"event": "error", "code": 30001, "msg": "doesn't exist", "arg": {"instType": "SPOT", "channel": "x"}},
        {"event": "subscribe", "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"}},
        {"event": "login", "code": 0, "msg": ""},
        {"action": "snapshot", "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"}, "data": []},
        "pong",
    ]:
        assert WS.decode(frame, Market.SPOT) is None, frame


def test_the_private_stream_leaves_trade_answers_to_the_order_gateway():
    stream = SPEC.stream
    for frame, _, _ in DECODED:
        assert stream.classify(frame, Market.SPOT) is MessageKind.IGNORE


@pytest.mark.parametrize(("exc", "op", "kind"), [
    # ccxt maps 40010 "Request timed out" to AuthenticationError: Bitget's code decides, not ccxt's class
    (ccxt.AuthenticationError('bitget {"code":"40010","msg":"Request timed out","data":null}'), "place",
     OutcomeKind.AMBIGUOUS),
    (ccxt.OrderNotFound('bitget {"code":"40109","msg":"The data of the order cannot be found"}'), "query",
     OutcomeKind.NOT_FOUND),
    (ccxt.InsufficientFunds('bitget {"code":"43012","msg":"Insufficient balance"}'), "place", OutcomeKind.REJECTED),
    (ccxt.InvalidOrder('bitget {"code":"45034","msg":"clientOid duplicate"}'), "place", OutcomeKind.AMBIGUOUS),
    (ccxt.PermissionDenied('bitget {"code":"40014","msg":"Incorrect permissions"}'), "place", OutcomeKind.REJECTED),
    (ccxt.ExchangeError('bitget {"code":"40768","msg":"Order does not exist"}'), "cancel", OutcomeKind.NOT_FOUND),
    (ccxt.ExchangeNotAvailable("bitget 503 Service Unavailable simulated failure"), "place", OutcomeKind.AMBIGUOUS),
    (ccxt.RequestTimeout("bitget POST timed out"), "cancel", OutcomeKind.AMBIGUOUS),
])
def test_rest_failures_are_read_by_bitgets_code(exc, op, kind):
    assert _failure(exc, op).kind is kind


# loopback: WebSocket trading on the private socket ------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bitget"], seed=5) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


class Socket:
    """A raw private socket, logged in with the stream's handshake; requests by our encode, answers by our decode,
    every other frame kept (the stream's pushes)."""

    def __init__(self, ws, market: Market) -> None:
        self.ws, self.market, self.pushes, self.n = ws, market, [], 0

    async def request(self, op: str, subject) -> tuple[str, object]:
        self.n += 1
        req_id = WS.request_id(self.n)
        await self.ws.send_json(WS.encode(op, subject, None, self.market, req_id, now_ms(), None))
        return req_id, await self.answer(req_id)

    async def answer(self, req_id: str, timeout: float = 3.0):
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frame()
                decoded = WS.decode(frame, self.market)
                if decoded is not None:
                    assert decoded[0] == req_id, decoded
                    return decoded[1]
                self.pushes.append(frame)

    async def frame(self):
        msg = await self.ws.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        return decode_frame(msg.data)

    async def updates(self, count: int, timeout: float = 3.0) -> list[OrderUpdate]:
        """The order updates the stream pushed (from the `orders` channel), at least `count` of them."""
        async with asyncio.timeout(timeout):
            while True:
                found = [e for f in self.pushes for e in normalize(f, self.market) if isinstance(e, OrderUpdate)]
                if len(found) >= count:
                    return found
                self.pushes.append(await self.frame())


async def connected(http, sim: Simulator, market: Market, creds: Credentials | None = None) -> Socket:
    creds = creds or sim.credentials_for("bitget")
    ws = await http.ws_connect(f"{sim.endpoints('bitget', market).ws}/v2/ws/private")
    await ws.send_json(login_message(creds.api_key, creds.secret, creds.passphrase, now_ms()))
    socket = Socket(ws, market)
    first = await socket.frame()
    if first.get("event") == "login":
        await ws.send_json({"op": "subscribe", "args": [{"instType": INST_TYPE[market], "channel": "orders",
                                                         "instId": "default"}]})
        assert (await socket.frame())["event"] == "subscribe"
    return socket


def resting_price(sim: Simulator, market: Market, side: str) -> Decimal:
    public = sim.market("bitget", market, SYMBOL[market])
    return public.best_bid()[0] - 50 if side == "buy" else public.best_ask()[0] + 50


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_place_then_cancel_on_a_granted_account_moves_the_ledger_and_the_stream(sim, http, market):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        socket = await connected(http, sim, market)
        price = resting_price(sim, market, "buy")
        _, placed = await socket.request("place", order(market, "s1-a", amount="0.013", price=price))
        assert placed.kind is OutcomeKind.ACCEPTED and placed.client_order_id == "s1-a"
        held = sim.ledger("bitget", market).orders[placed.order_id]
        assert (held.client_order_id, held.amount, held.price, held.status) == ("s1-a", Decimal("0.013"), price,
                                                                                OrderStatus.NEW)
        _, canceled = await socket.request("cancel", ref(market, "s1-a"))
        assert canceled.kind is OutcomeKind.ACCEPTED and canceled.order_id == placed.order_id
        assert held.status is OrderStatus.CANCELED
        updates = await socket.updates(2)
        assert [(u.client_order_id, u.order_id, u.status) for u in updates[:2]] == [
            ("s1-a", placed.order_id, OrderStatus.NEW), ("s1-a", placed.order_id, OrderStatus.CANCELED)]
        assert updates[0].amount == Decimal("0.013") and updates[0].price == price


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_trading_is_refused_for_an_account_without_the_grant_and_nothing_executes(sim, http, market):
    async with asyncio.timeout(10):
        socket = await connected(http, sim, market)  # ws_trading defaults to False
        _, outcome = await socket.request("place", order(market, "s1-b", price=resting_price(sim, market, "buy")))
        assert outcome.kind is OutcomeKind.NOT_SENT and outcome.code == "40301"
        _, probe = await socket.request("cancel", ref(market, "never-placed"))  # what a start-up probe sees
        assert probe.kind is OutcomeKind.NOT_SENT and probe.code == "40301"
        assert sim.ledger("bitget", market).orders == {}


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_entitlement_probe_is_accepted_when_granted_and_rejected_when_not(sim, http, market):
    async with asyncio.timeout(10):
        socket = await connected(http, sim, market)
        _, refused = await socket.request("probe", None)
        assert refused.kind is OutcomeKind.REJECTED and refused.code == "40301"
        sim.venue("bitget").ws_trading = True
        _, granted = await socket.request("probe", None)
        assert granted.kind is OutcomeKind.ACCEPTED
        _, missing = await socket.request("cancel", ref(market, "never-placed"))  # an ordinary cancel: not found
        assert missing.kind is OutcomeKind.NOT_FOUND and missing.code == ("43001" if market is Market.SPOT
                                                                          else "40768")
        assert sim.ledger("bitget", market).orders == {}


@pytest.mark.parametrize(("event", "code", "kind"), [
    ("error", 43001, OutcomeKind.ACCEPTED), ("error", 40768, OutcomeKind.ACCEPTED),
    ("error", 40301, OutcomeKind.REJECTED), ("error", 40010, OutcomeKind.AMBIGUOUS),
    ("error", 30004, OutcomeKind.NOT_SENT),
])
def test_decode_reads_the_probes_answer_by_its_client_id(event, code, kind):
    frame = WS.encode("probe", None, None, Market.FUTURE, "ts1", 0, None)
    assert frame["args"][0]["channel"] == "cancel-order"
    answer = {"event": event, "arg": frame["args"], "code": code, "msg": "m"}
    assert WS.decode(answer, Market.FUTURE) == ("ts1", WS.decode(answer, Market.FUTURE)[1])
    assert WS.decode(answer, Market.FUTURE)[1].kind is kind


async def test_ws_trading_refused_by_the_engines_login_fault_for_that_socket_only(sim, http):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        sim.orders.refuse_logins("bitget", Market.SPOT)
        refused = await connected(http, sim, Market.SPOT)
        _, outcome = await refused.request("place", order(Market.SPOT, "s1-c", price="1000"))
        assert outcome.kind is OutcomeKind.NOT_SENT and outcome.code == "40301"
        fresh = await connected(http, sim, Market.SPOT)
        _, outcome = await fresh.request("place", order(Market.SPOT, "s1-c", price="1000"))
        assert outcome.kind is OutcomeKind.ACCEPTED
        assert [o.client_order_id for o in sim.ledger("bitget", "spot").orders.values()] == ["s1-c"]


async def test_ws_trade_before_login_is_not_sent_and_a_bad_login_signature_executes_nothing(sim, http):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        real = sim.credentials_for("bitget")
        forged = Credentials(api_key=real.api_key, secret="0" * 48, passphrase=real.passphrase)
        socket = await connected(http, sim, Market.SPOT, forged)  # login answered 30015 Invalid sign
        _, outcome = await socket.request("place", order(Market.SPOT, "s1-d", price="1000"))
        assert outcome.kind is OutcomeKind.NOT_SENT and outcome.code == "30004"
        assert sim.ledger("bitget", "spot").orders == {}


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_market_order_fills_at_the_book_and_the_stream_reports_it(sim, http, market):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        socket = await connected(http, sim, market)
        _, outcome = await socket.request("place", order(market, "s1-e", side="sell", amount="0.02", price=None,
                                                         order_type="market"))
        assert outcome.kind is OutcomeKind.ACCEPTED
        held = sim.ledger("bitget", market).orders[outcome.order_id]
        assert held.status is OrderStatus.FILLED and held.filled == Decimal("0.02") and held.order_type == "market"
        updates = await socket.updates(2)
        assert updates[-1].status is OrderStatus.FILLED and updates[-1].filled == Decimal("0.02")
        assert updates[0].price is None  # a market order's price is "0" on the wire


async def test_ws_spot_market_buy_spends_its_quote_size_at_the_ask(sim, http):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        socket = await connected(http, sim, Market.SPOT)
        public = sim.market("bitget", "spot", "BTC/USDT")
        ask = public.best_ask()[0]
        _, outcome = await socket.request("place", order(Market.SPOT, "s1-f", amount="0.5", price=ask,
                                                         order_type="market"))
        held = sim.ledger("bitget", "spot").orders[outcome.order_id]
        assert held.amount == (Decimal("0.5") * ask / ask).quantize(public.lot, rounding=ROUND_DOWN)
        assert held.status is OrderStatus.FILLED


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_duplicate_client_id_is_ambiguous_and_places_nothing_more(sim, http, market):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        socket = await connected(http, sim, market)
        price = resting_price(sim, market, "buy")
        _, first = await socket.request("place", order(market, "s1-g", price=price))
        await socket.request("cancel", ref(market, "s1-g"))
        _, again = await socket.request("place", order(market, "s1-g", price=price))  # never twice, even when done
        assert again.kind is OutcomeKind.AMBIGUOUS and again.code == ("43118" if market is Market.SPOT else "45034")
        assert [o.order_id for o in sim.ledger("bitget", market).orders.values()] == [first.order_id]


async def test_ws_ioc_that_does_not_cross_expires_and_bitget_reports_it_cancelled(sim, http):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        socket = await connected(http, sim, Market.FUTURE)
        _, outcome = await socket.request("place", order(Market.FUTURE, "s1-i", order_type="ioc",
                                                         price=resting_price(sim, Market.FUTURE, "buy")))
        held = sim.ledger("bitget", "future").orders[outcome.order_id]
        assert held.status is OrderStatus.EXPIRED and held.filled == 0
        updates = await socket.updates(2)
        assert [u.status for u in updates] == [OrderStatus.NEW, OrderStatus.CANCELED]  # Bitget has no "expired"
        assert updates[1].status_raw == "canceled"


async def test_ws_post_only_that_would_take_is_rejected_and_rests_nothing(sim, http):
    async with asyncio.timeout(10):
        sim.venue("bitget").ws_trading = True
        socket = await connected(http, sim, Market.FUTURE)
        above_ask = sim.market("bitget", "future", "BTC/USDT:USDT").best_ask()[0] + 10
        _, outcome = await socket.request("place", order(Market.FUTURE, "s1-h", price=above_ask,
                                                         order_type="post_only"))
        assert outcome.kind is OutcomeKind.REJECTED
        assert sim.ledger("bitget", "future").orders == {}


async def test_ws_engine_faults_come_out_as_the_gateway_must_read_them(sim, http):
    async with asyncio.timeout(15):
        sim.venue("bitget").ws_trading = True
        sim.orders.faults.ack_delay = 0.2
        socket = await connected(http, sim, Market.SPOT)
        ledger = sim.ledger("bitget", "spot")
        # "unknown": Bitget's "Request timed out" — ambiguous, whether or not it executed
        sim.orders.fault("bitget", "spot", "unknown")
        _, outcome = await socket.request("place", order(Market.SPOT, "f-1", price="1000"))
        assert outcome.kind is OutcomeKind.AMBIGUOUS and outcome.code == "40010"
        # "lose": no answer at all, nothing placed
        sim.orders.fault("bitget", "spot", "lose")
        socket.n += 1
        await socket.ws.send_json(WS.encode("place", order(Market.SPOT, "f-2", price="1000"), None, Market.SPOT,
                                            WS.request_id(socket.n), now_ms(), None))
        with pytest.raises(TimeoutError):
            await socket.answer(WS.request_id(socket.n), timeout=0.5)
        assert not [o for o in ledger.orders.values() if o.client_order_id == "f-2"]
        # "delay_ack": the stream reports the order before its answer comes
        sim.orders.fault("bitget", "spot", "delay_ack")
        _, outcome = await socket.request("place", order(Market.SPOT, "f-3", price="1000"))
        assert outcome.kind is OutcomeKind.ACCEPTED
        pushed = [u for u in await socket.updates(1) if u.client_order_id == "f-3"]
        assert pushed and pushed[0].order_id == outcome.order_id
        # "disconnect": the socket is cut mid-request
        sim.orders.fault("bitget", "spot", "disconnect")
        socket.n += 1
        await socket.ws.send_json(WS.encode("place", order(Market.SPOT, "f-4", price="1000"), None, Market.SPOT,
                                            WS.request_id(socket.n), now_ms(), None))
        msg = await socket.ws.receive()
        while msg.type is aiohttp.WSMsgType.TEXT:  # the order's push may come before the cut
            msg = await socket.ws.receive()
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR)


# loopback: REST through ccxt ------------------------------------------------------------------------------------------
def client_for(sim: Simulator, market: Market, credentials: Credentials | None = None):
    return rest_client(ConnectionKey(exchange="bitget", market=market), BACKFILL,
                       credentials or sim.credentials_for("bitget"), SPEC.stream.endpoints(market),
                       sim.endpoints("bitget", market), [SYMBOL[market]])


@pytest.mark.parametrize("market", MARKETS)
async def test_rest_place_query_cancel_query(sim, market):
    async with asyncio.timeout(10):
        client = client_for(sim, market)
        try:
            price = resting_price(sim, market, "sell")
            placed = await REST.place(client, order(market, "r1-a", side="sell", amount="0.125", price=price), None)
            assert placed.kind is OutcomeKind.ACCEPTED and placed.client_order_id == "r1-a"
            held = sim.ledger("bitget", market).orders[placed.order_id]
            assert (held.side, held.amount, held.price) == (Side.SELL, Decimal("0.125"), price)
            state = await REST.query(client, ref(market, "r1-a"))
            assert (state.kind, state.order_id, state.status, state.amount, state.filled, state.price) == (
                OutcomeKind.ACCEPTED, placed.order_id, OrderStatus.NEW, Decimal("0.125"), Decimal(0), price)
            canceled = await REST.cancel(client, ref(market, "r1-a"))
            assert canceled.kind is OutcomeKind.ACCEPTED and held.status is OrderStatus.CANCELED
            assert (await REST.query(client, ref(market, "r1-a"))).status is OrderStatus.CANCELED
            missing = await REST.cancel(client, ref(market, "r1-a"))
            assert missing.kind is OutcomeKind.REJECTED and missing.code == "45055"  # done: cannot be cancelled
        finally:
            await client.close()


@pytest.mark.parametrize("market", MARKETS)
async def test_rest_query_and_cancel_of_an_unknown_client_id_are_not_found(sim, market):
    async with asyncio.timeout(10):
        client = client_for(sim, market)
        try:
            assert (await REST.query(client, ref(market, "nobody"))).kind is OutcomeKind.NOT_FOUND
            assert (await REST.cancel(client, ref(market, "nobody"))).kind is OutcomeKind.NOT_FOUND
        finally:
            await client.close()


@pytest.mark.parametrize("market", MARKETS)
async def test_rest_partial_fill_shows_in_the_query(sim, market):
    async with asyncio.timeout(10):
        client = client_for(sim, market)
        try:
            placed = await REST.place(client, order(market, "r1-p", amount="0.3",
                                                    price=resting_price(sim, market, "buy")), None)
            await sim.fill_order("bitget", market, sim.ledger("bitget", market).orders[placed.order_id], "0.1")
            state = await REST.query(client, ref(market, "r1-p"))
            assert (state.status, state.filled, state.amount) == (OrderStatus.PARTIALLY_FILLED, Decimal("0.1"),
                                                                  Decimal("0.3"))
        finally:
            await client.close()


async def test_rest_futures_amend_changes_size_and_price_under_a_new_client_id(sim, http):
    async with asyncio.timeout(10):
        client = client_for(sim, Market.FUTURE)
        socket = await connected(http, sim, Market.FUTURE)  # the private stream's view of it
        try:
            price = resting_price(sim, Market.FUTURE, "buy")
            placed = await REST.place(client, order(Market.FUTURE, "r1-m", amount="0.2", price=price), None)
            original = ref(Market.FUTURE, "r1-m", order_id=placed.order_id, amount="0.2", price=price)
            amended = await REST.amend(client, Amend(ref=original, amount="0.35", price=price - 1,
                                                     client_order_id="r1-m2"))
            assert amended.kind is OutcomeKind.ACKED and amended.client_order_id == "r1-m2"
            held = sim.ledger("bitget", "future").orders[placed.order_id]
            assert (held.amount, held.price, held.client_order_id) == (Decimal("0.35"), price - 1, "r1-m2")
            state = await REST.query(client, ref(Market.FUTURE, "r1-m2"))
            assert (state.amount, state.price) == (Decimal("0.35"), price - 1)
            pushed = (await socket.updates(2))[1]
            assert (pushed.client_order_id, pushed.order_id, pushed.amount, pushed.price, pushed.status) == (
                "r1-m2", placed.order_id, Decimal("0.35"), price - 1, OrderStatus.NEW)
            # a price alone: the order's amount goes with it (Bitget takes them together)
            moved = await REST.amend(client, Amend(ref=ref(Market.FUTURE, "r1-m2", amount="0.35", price=price - 1),
                                                   price=price - 2, client_order_id="r1-m3"))
            assert moved.kind is OutcomeKind.ACKED and (held.amount, held.price) == (Decimal("0.35"), price - 2)
            reused = await REST.amend(client, Amend(ref=ref(Market.FUTURE, "r1-m3", amount="0.35", price=price),
                                                    price=price - 3, client_order_id="r1-m2"))
            assert reused.kind is OutcomeKind.AMBIGUOUS and reused.code == "45034" and held.price == price - 2
            gone = await REST.amend(client, Amend(ref=ref(Market.FUTURE, "nobody", amount="1", price="1"),
                                                  price="2", client_order_id="r1-m4"))
            assert gone.kind is OutcomeKind.NOT_FOUND
        finally:
            await client.close()


async def test_rest_futures_amend_without_a_new_client_id_derives_one_that_keeps_the_prefix(sim):
    async with asyncio.timeout(10):
        client = client_for(sim, Market.FUTURE)
        try:
            price = resting_price(sim, Market.FUTURE, "buy")
            coid = client_id(Market.FUTURE, "mm", 1_764_000_000_000_123)
            placed = await REST.place(client, order(Market.FUTURE, coid, amount="0.2", price=price), None)
            change = Amend(ref=ref(Market.FUTURE, coid, amount="0.2", price=price), price=price - 1)
            amended = await REST.amend(client, change)
            new_id = amended.client_order_id
            assert amended.kind is OutcomeKind.ACKED and new_id.startswith("mm-") and len(new_id) == len(coid)
            held = sim.ledger("bitget", "future").orders[placed.order_id]
            assert (held.client_order_id, held.price) == (new_id, price - 1)
            retried = await REST.amend(client, change)  # the same amend again: the same new id, refused as taken
            assert retried.kind is OutcomeKind.AMBIGUOUS and held.price == price - 1
        finally:
            await client.close()


async def test_rest_spot_has_no_amend(sim):
    async with asyncio.timeout(10):
        client = client_for(sim, Market.SPOT)
        try:
            outcome = await REST.amend(client, Amend(ref=ref(Market.SPOT, "x", amount="1", price="1"), price="2",
                                                     client_order_id="y"))
            assert outcome.kind is OutcomeKind.REJECTED and outcome.code == "NotSupported"
        finally:
            await client.close()


@pytest.mark.parametrize("market", MARKETS)
async def test_rest_duplicate_client_id_is_ambiguous_and_places_once(sim, market):
    async with asyncio.timeout(10):
        client = client_for(sim, market)
        try:
            request = order(market, "r1-d", price=resting_price(sim, market, "buy"))
            first = await REST.place(client, request, None)
            again = await REST.place(client, request, None)  # a retry whose first attempt landed
            assert first.kind is OutcomeKind.ACCEPTED and again.kind is OutcomeKind.AMBIGUOUS
            assert [o.order_id for o in sim.ledger("bitget", market).orders.values()] == [first.order_id]
            assert (await REST.query(client, ref(market, "r1-d"))).order_id == first.order_id
        finally:
            await client.close()


async def test_rest_engine_faults_and_http_failures_are_ambiguous_and_the_query_tells_the_truth(sim):
    async with asyncio.timeout(15):
        client = client_for(sim, Market.FUTURE)
        client.timeout = 2000
        ledger = sim.ledger("bitget", "future")
        try:
            for n, fault in enumerate(("unknown", "disconnect", "unknown", "disconnect", "drop_ack")):
                sim.orders.fault("bitget", "future", fault)
                coid = f"rf-{n}"
                outcome = await REST.place(client, order(Market.FUTURE, coid, price="1000"), None)
                assert outcome.kind is OutcomeKind.AMBIGUOUS, (fault, outcome)
                exists = any(o.client_order_id == coid for o in ledger.orders.values())
                found = await REST.query(client, ref(Market.FUTURE, coid))
                assert found.kind is (OutcomeKind.ACCEPTED if exists else OutcomeKind.NOT_FOUND), fault
            sim.fail_rest("bitget", "future", [503, 429])
            for status in (503, 429):
                outcome = await REST.place(client, order(Market.FUTURE, f"rh-{status}", price="1000"), None)
                assert outcome.kind is OutcomeKind.AMBIGUOUS, status
            assert not [o for o in ledger.orders.values() if o.client_order_id.startswith("rh-")]
        finally:
            await client.close()


@pytest.mark.parametrize("market", MARKETS)
async def test_rest_wrong_signature_is_refused_and_nothing_executes(sim, market):
    async with asyncio.timeout(10):
        real = sim.credentials_for("bitget")
        client = client_for(sim, market, Credentials(api_key=real.api_key, secret="0" * 48,
                                                     passphrase=real.passphrase))
        try:
            outcome = await REST.place(client, order(market, "r1-s", price="1000"), None)
            assert outcome.kind is OutcomeKind.REJECTED and outcome.code == "40009"
            assert sim.ledger("bitget", market).orders == {}
        finally:
            await client.close()


async def test_rest_request_signed_outside_its_window_is_refused(sim, http):
    """Signed independently of ccxt and the plugin: a timestamp 31 s old gets 40008 and places nothing."""
    async with asyncio.timeout(10):
        creds = sim.credentials_for("bitget")
        path = "/api/v2/spot/trade/place-order"
        body = json.dumps({"symbol": "BTCUSDT", "side": "buy", "orderType": "limit", "force": "gtc",
                           "price": "1000", "size": "0.01", "clientOid": "r1-w"})
        ts = str(now_ms() - 31_000)
        sign = base64.b64encode(hmac.new(creds.secret.encode(), f"{ts}POST{path}{body}".encode(),
                                         hashlib.sha256).digest()).decode()
        headers = {"ACCESS-KEY": creds.api_key, "ACCESS-SIGN": sign, "ACCESS-TIMESTAMP": ts,
                   "ACCESS-PASSPHRASE": creds.passphrase, "Content-Type": "application/json"}
        async with http.post(sim.endpoints("bitget", "spot").rest + path, data=body, headers=headers) as response:
            answer = await response.json()
        assert answer["code"] == "40008" and sim.ledger("bitget", "spot").orders == {}
        headers["ACCESS-TIMESTAMP"] = str(now_ms())  # the same body, fresh but unsigned for it
        async with http.post(sim.endpoints("bitget", "spot").rest + path, data=body, headers=headers) as response:
            assert (await response.json())["code"] == "40009"
        assert sim.ledger("bitget", "spot").orders == {}


# loopback: TP/SL plans ------------------------------------------------------------------------------------------------
def tpsl(coid: str, trigger: str, trigger_price) -> OrderRequest:
    return order(Market.FUTURE, coid, side="sell", amount="0.05", price=None, order_type="market",
                 reduce_only=True, trigger_price=trigger_price, trigger=trigger)


async def test_rest_stop_loss_plan_rests_is_found_and_cancelled(sim):
    async with asyncio.timeout(10):
        client = client_for(sim, Market.FUTURE)
        try:
            bid = sim.market("bitget", "future", "BTC/USDT:USDT").best_bid()[0]
            placed = await REST.place(client, tpsl("r1-sl", "stop_loss", bid - 500), None)
            assert placed.kind is OutcomeKind.ACCEPTED
            held = sim.ledger("bitget", "future").orders[placed.order_id]
            assert (held.trigger, held.trigger_price, held.side, held.reduce_only) == (
                "stop_loss", bid - 500, Side.SELL, True)
            plan = ref(Market.FUTURE, "r1-sl", conditional=True)
            state = await REST.query(client, plan)
            assert (state.kind, state.status, state.amount) == (OutcomeKind.ACCEPTED, OrderStatus.NEW, Decimal("0.05"))
            # an untriggered plan is not an order: the order endpoints do not know it
            assert (await REST.query(client, ref(Market.FUTURE, "r1-sl"))).kind is OutcomeKind.NOT_FOUND
            assert (await REST.cancel(client, plan)).kind is OutcomeKind.ACCEPTED
            assert held.status is OrderStatus.CANCELED
            assert (await REST.query(client, plan)).status is OrderStatus.CANCELED
            assert (await REST.cancel(client, ref(Market.FUTURE, "nobody", conditional=True))).kind is \
                OutcomeKind.NOT_FOUND
        finally:
            await client.close()


async def test_rest_take_profit_plan_triggers_and_fills_as_a_reduce_only_market_order(sim):
    async with asyncio.timeout(10):
        client = client_for(sim, Market.FUTURE)
        try:
            bid = sim.market("bitget", "future", "BTC/USDT:USDT").best_bid()[0]
            placed = await REST.place(client, tpsl("r1-tp", "take_profit", bid - 1), None)  # already reached
            await sim.orders.match("bitget", Market.FUTURE, "BTC/USDT:USDT")
            held = sim.ledger("bitget", "future").orders[placed.order_id]
            assert held.status is OrderStatus.FILLED and held.filled == Decimal("0.05")
            state = await REST.query(client, ref(Market.FUTURE, "r1-tp", conditional=True))
            assert state.status is OrderStatus.FILLED
            cancel = await REST.cancel(client, ref(Market.FUTURE, "r1-tp", conditional=True))
            assert cancel.kind is OutcomeKind.REJECTED and cancel.code == "43026"
        finally:
            await client.close()


async def test_rest_tpsl_on_spot_is_refused_before_sending(sim):
    async with asyncio.timeout(10):
        client = client_for(sim, Market.SPOT)
        try:
            outcome = await REST.place(client, order(Market.SPOT, "r1-x", side="sell", price=None,
                                                     order_type="market", trigger_price="1", trigger="stop_loss"),
                                       None)
            assert outcome.kind is OutcomeKind.REJECTED and sim.ledger("bitget", "spot").orders == {}
        finally:
            await client.close()


def test_spec_exports_the_rules():
    assert SPEC.orders is ORDERS and ORDERS.ws.shared and ORDERS.ws.opt_in
    assert ORDERS.ws.ops == frozenset({"place", "cancel", "probe"}) and ORDERS.conditional == frozenset({Market.FUTURE})
    assert ORDERS.rest.amend is not None and not ORDERS.renames_on_cancel
