"""Binance order entry: the rules (client ids, the signed WebSocket-API frames, what every answer means) and the
simulator's side over real sockets and HTTP — place / amend / cancel / query on the spot WS-API socket the user
stream rides and on USD-M ws-fapi, the same through the key's ccxt client, USD-M TP/SL as algo orders, the
engine's faults, duplicate client ids (unique among open orders), refused signatures. Values are checked against
the simulator's ledger and the user stream's reports."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from decimal import Decimal

import aiohttp
import attrs
import ccxt
import pytest

from exchanges.binance import SPEC
from exchanges.binance.auth import sign, ws_api_payload
from exchanges.binance.normalize import normalize
from exchanges.binance.orders import (
    ID_LIMIT, ORDERS, VALIDITY_MS, WS_FAPI_LIVE, canceled_name, client_id, decode, encode, exception_outcome,
    request_id,
)  # fmt: skip
from exchanges.binance.stream import LIVE_ENDPOINTS, handshake
from exchanges.simulator import Simulator
from exchanges.simulator.orders import ClientIdPolicy
from framework.backfill import rest_client
from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Trade, now_ms
from framework.orders.model import Amend, OrderRef, OrderRequest, OutcomeKind
from framework.venue import Credentials, Endpoints

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0
N = 1_733_000_000_000_123  # a client-id number of the gateway's form (ms × 1000 + seq)
SPOT, FUTURE = Market.SPOT, Market.FUTURE
SYMBOL = {SPOT: "BTC/USDT", FUTURE: "BTC/USDT:USDT"}
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def _hmac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _signed_ok(params: dict, secret: str) -> bool:
    """The docs' rule, computed here: every param but `signature`, sorted by name, `k=v&…`, hex HMAC-SHA256."""
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
    return params["signature"] == _hmac(secret, payload)


def order(market: Market, cid: str, price: Decimal | str | None, amount: str = "0.0100", side: str = "buy",
          **fields) -> OrderRequest:
    return OrderRequest(market=market, symbol=SYMBOL[market], side=side, amount=amount, price=price,
                        client_order_id=cid, **fields)


def ref(market: Market, cid: str, order_id: str | None = None, **fields) -> OrderRef:
    return OrderRef(market=market, symbol=SYMBOL[market], client_order_id=cid, order_id=order_id, **fields)


# rules ----------------------------------------------------------------------------------------------------------
def test_rules_put_spot_on_the_shared_ws_api_socket_and_usdm_on_ws_fapi():
    assert SPEC.orders is ORDERS
    assert ORDERS.markets == frozenset({SPOT, FUTURE}) and ORDERS.closed == {}
    assert ORDERS.conditional == frozenset({FUTURE}) and ORDERS.renames_on_cancel and ORDERS.prepare is None
    ws = ORDERS.ws
    assert ws.shared and ws.ops == frozenset({"place", "cancel", "amend", "query"}) and not ws.opt_in
    assert ws.validity_ms == ORDERS.rest.validity_ms == VALIDITY_MS == 5000
    assert ws.url(SPOT, LIVE_ENDPOINTS[SPOT]) is None  # the user stream's own socket
    assert ws.url(FUTURE, LIVE_ENDPOINTS[FUTURE]) == WS_FAPI_LIVE == "wss://ws-fapi.binance.com/ws-fapi/v1"
    sim_endpoints = Endpoints(ws="ws://127.0.0.1:1/binance_future", rest="http://127.0.0.1:1/binance_future")
    assert ws.url(FUTURE, sim_endpoints) == "ws://127.0.0.1:1/binance_future/ws-fapi/v1"
    assert ws.request_id(7) == "ts-7" and ws.request_id(36) == "ts-10"
    assert "unique among OPEN orders" in ORDERS.notes and "recvWindow" in ORDERS.notes


def test_client_id_is_the_prefix_and_the_number_in_base_36_with_room_for_the_cancel_rename():
    cid = client_id(SPOT, "mm_1", N)
    assert cid.startswith("mm_1-") and int(cid[5:], 36) == N
    assert len(canceled_name(cid)) <= 36 and ID_LIMIT == 34
    assert len({client_id(FUTURE, "s", N + i) for i in range(3000)}) == 3000
    longest = "p" * (ID_LIMIT - 1 - len(cid[5:]))
    assert len(client_id(SPOT, longest, N)) == ID_LIMIT
    with pytest.raises(ValueError, match="too long"):
        client_id(SPOT, longest + "p", N)
    for bad in ("", "a.b", "x y", "é", "a/b"):
        with pytest.raises(ValueError, match="letters, digits"):
            client_id(SPOT, bad, N)


def test_signature_formula_matches_the_docs_vector():
    # web-socket-api.md "SIGNED request example (HMAC)", ASCII example.
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000000",
              "price": "52000.00", "recvWindow": 100, "timestamp": 1645423376532, "apiKey": DOC_KEY}
    assert sign(DOC_SECRET, ws_api_payload(params)) == \
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_encode_place_writes_exact_amounts_the_validity_window_and_a_signature_over_the_sorted_params():
    creds = Credentials(api_key=DOC_KEY, secret=DOC_SECRET)
    frame = encode("place", order(SPOT, "mm-1", "52000.10", "0.01000"), creds, SPOT, "ts-1", 1645423376532)
    assert frame["id"] == "ts-1" and frame["method"] == "order.place"
    params = frame["params"]
    assert {k: v for k, v in params.items() if k != "signature"} == {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000",
        "price": "52000.10", "newClientOrderId": "mm-1", "newOrderRespType": "RESULT", "apiKey": DOC_KEY,
        "recvWindow": 5000, "timestamp": 1645423376532}
    assert _signed_ok(params, DOC_SECRET)


@pytest.mark.parametrize("market, kind, expected", [
    (SPOT, "post_only", {"type": "LIMIT_MAKER"}),
    (FUTURE, "post_only", {"type": "LIMIT", "timeInForce": "GTX"}),
    (SPOT, "ioc", {"type": "LIMIT", "timeInForce": "IOC"}),
    (FUTURE, "market", {"type": "MARKET"}),
])
def test_encode_maps_order_types(market, kind, expected):
    creds = Credentials(api_key="k", secret="s")
    price = None if kind == "market" else "100"
    params = encode("place", order(market, "a-1", price, order_type=kind), creds, market, "ts-1", 1)["params"]
    assert {k: params[k] for k in expected} == expected
    assert ("timeInForce" in params) == ("timeInForce" in expected) and ("price" in params) == (price is not None)


def test_encode_reduce_only_and_tp_sl_are_usdm_only():
    creds = Credentials(api_key="k", secret="s")
    params = encode("place", order(FUTURE, "a-1", "100", reduce_only=True), creds, FUTURE, "ts-1", 1)["params"]
    assert params["reduceOnly"] == "true"
    with pytest.raises(ValueError, match="reduce-only"):
        encode("place", order(SPOT, "a-1", "100", reduce_only=True), creds, SPOT, "ts-1", 1)
    tp = order(FUTURE, "tp-1", None, side="sell", order_type="market", trigger_price="70000.5", trigger="take_profit")
    frame = encode("place", tp, creds, FUTURE, "ts-2", 1)
    assert frame["method"] == "algoOrder.place"
    assert {k: frame["params"][k] for k in ("algoType", "type", "triggerPrice", "reduceOnly", "clientAlgoId")} == {
        "algoType": "CONDITIONAL", "type": "TAKE_PROFIT_MARKET", "triggerPrice": "70000.5", "reduceOnly": "true",
        "clientAlgoId": "tp-1"}
    sl = order(FUTURE, "sl-1", None, side="sell", order_type="market", trigger_price="60000", trigger="stop_loss")
    assert encode("place", sl, creds, FUTURE, "ts-3", 1)["params"]["type"] == "STOP_MARKET"
    with pytest.raises(ValueError, match="USD-M only"):
        encode("place", order(SPOT, "x-1", None, order_type="market", trigger_price="1", trigger="stop_loss"),
               creds, SPOT, "ts-4", 1)


def test_encode_cancel_amend_and_query_name_the_order_as_binance_wants():
    creds = Credentials(api_key="k", secret="s")
    cancel = encode("cancel", ref(SPOT, "a-1", "42"), creds, SPOT, "ts-1", 1)
    assert cancel["method"] == "order.cancel"
    assert cancel["params"]["orderId"] == "42" and cancel["params"]["newClientOrderId"] == "a-1-c"
    assert "origClientOrderId" not in cancel["params"]
    cancel = encode("cancel", ref(FUTURE, "a-1"), creds, FUTURE, "ts-1", 1)["params"]
    assert cancel["origClientOrderId"] == "a-1" and "newClientOrderId" not in cancel  # ws-fapi has no rename
    algo = encode("cancel", ref(FUTURE, "tp-1", "9", conditional=True), creds, FUTURE, "ts-1", 1)
    assert algo["method"] == "algoOrder.cancel" and algo["params"]["algoId"] == "9"

    known = ref(SPOT, "a-1", "42", side="buy", amount="0.5", price="100")
    smaller = encode("amend", Amend(ref=known, amount="0.3"), creds, SPOT, "ts-2", 1)
    assert smaller["method"] == "order.amend.keepPriority"
    assert smaller["params"]["newQty"] == "0.3" and smaller["params"]["newClientOrderId"] == "a-1"
    moved = encode("amend", Amend(ref=known, price="101", client_order_id="a-2"), creds, SPOT, "ts-3", 1)
    assert moved["method"] == "order.cancelReplace"
    assert {k: moved["params"][k] for k in ("cancelOrderId", "cancelNewClientOrderId", "newClientOrderId",
                                            "quantity", "price", "side", "cancelReplaceMode")} == {
        "cancelOrderId": "42", "cancelNewClientOrderId": "a-1-c", "newClientOrderId": "a-2", "quantity": "0.5",
        "price": "101", "side": "BUY", "cancelReplaceMode": "STOP_ON_FAILURE"}
    modify = encode("amend", Amend(ref=ref(FUTURE, "f-1", side="sell", amount="2", price="3000"), price="3001"),
                    creds, FUTURE, "ts-4", 1)
    assert modify["method"] == "order.modify"
    assert {k: modify["params"][k] for k in ("origClientOrderId", "side", "quantity", "price")} == {
        "origClientOrderId": "f-1", "side": "SELL", "quantity": "2", "price": "3001"}
    with pytest.raises(ValueError, match="side"):
        encode("amend", Amend(ref=ref(FUTURE, "f-1"), price="1"), creds, FUTURE, "ts-5", 1)
    with pytest.raises(ValueError, match="cannot be amended"):
        encode("amend", Amend(ref=ref(FUTURE, "tp-1", conditional=True), price="1"), creds, FUTURE, "ts-6", 1)
    with pytest.raises(ValueError, match="over REST"):
        encode("query", ref(FUTURE, "tp-1", conditional=True), creds, FUTURE, "ts-7", 1)
    query = encode("query", ref(SPOT, "a-1"), creds, SPOT, "ts-8", 1)
    assert query["method"] == "order.status" and query["params"]["origClientOrderId"] == "a-1"
    assert all(_signed_ok(f["params"], "s") for f in (cancel and algo, smaller, moved, modify, query))


# answers: every code of the facts file ------------------------------------------------------------------------
PLACED = {"symbol": "BTCUSDT", "orderId": 12569099453, "orderListId": -1, "clientOrderId": "4d96324ff9d44481926157ec08158a40",
          "transactTime": 1660801715639, "price": "23416.10000000", "origQty": "0.00847000", "executedQty": "0.00000000",
          "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC",
          "type": "LIMIT", "side": "SELL", "workingTime": 1660801715639, "selfTradePreventionMode": "NONE"}
CANCELED = {**PLACED, "origClientOrderId": "4d96324ff9d44481926157", "clientOrderId": "91fe37ce9e69c90d6358c0",
            "executedQty": "0.00001000", "status": "CANCELED"}
ALGO = {"algoId": 3000000000003505, "clientAlgoId": "0Xkl1p621E4EryvufmYre1", "algoType": "CONDITIONAL",
        "orderType": "TAKE_PROFIT", "symbol": "BTCUSDT", "side": "SELL", "quantity": "1.000", "algoStatus": "NEW",
        "triggerPrice": "120000.00", "price": "160000.00"}


def _error(status: int, code: int, msg: str, **data) -> dict:
    body = {"code": code, "msg": msg}
    if data:
        body["data"] = data
    return {"id": "ts-5", "status": status, "error": body}


@pytest.mark.parametrize("frame, kind", [
    (_error(400, -2010, "Order would immediately match and take."), OutcomeKind.REJECTED),
    (_error(400, -2010, "Account has insufficient balance for requested action."), OutcomeKind.REJECTED),
    (_error(400, -2010, "Duplicate order sent."), OutcomeKind.AMBIGUOUS),  # our earlier attempt placed it
    (_error(400, -4116, "ClientOrderId is duplicated."), OutcomeKind.AMBIGUOUS),
    (_error(400, -20132, "The client algo id is duplicated"), OutcomeKind.AMBIGUOUS),
    (_error(400, -5022, "Due to the order could not be executed as maker, the Post Only order will be rejected."),
     OutcomeKind.REJECTED),
    (_error(400, -2011, "Unknown order sent."), OutcomeKind.NOT_FOUND),
    (_error(400, -2011, "Order was not canceled due to cancel restrictions."), OutcomeKind.REJECTED),
    (_error(400, -2013, "Order does not exist."), OutcomeKind.NOT_FOUND),
    (_error(400, -2038, "Unknown order sent."), OutcomeKind.NOT_FOUND),
    (_error(400, -2038, "Order amend (quantity increase) is not supported."), OutcomeKind.REJECTED),
    (_error(400, -2022, "Order cancel-replace failed.", cancelResult="FAILURE", newOrderResult="NOT_ATTEMPTED",
            cancelResponse={"code": -2011, "msg": "Unknown order sent."}, newOrderResponse=None),
     OutcomeKind.NOT_FOUND),
    (_error(400, -2022, "Order cancel-replace failed.", cancelResult="FAILURE", newOrderResult="FAILURE",
            cancelResponse={"code": -2011, "msg": "Order was not canceled due to cancel restrictions."},
            newOrderResponse={"code": -2010, "msg": "Order would immediately match and take."}),
     OutcomeKind.REJECTED),
    (_error(409, -2021, "Order cancel-replace partially failed.", cancelResult="FAILURE",
            newOrderResult="SUCCESS", cancelResponse={"code": -2011, "msg": "Unknown order sent."},
            newOrderResponse=PLACED), OutcomeKind.ACCEPTED),
    (_error(400, -1013, "Filter failure: LOT_SIZE"), OutcomeKind.REJECTED),
    (_error(400, -1021, "Timestamp for this request is outside of the recvWindow."), OutcomeKind.REJECTED),
    (_error(400, -1022, "Signature for this request is not valid."), OutcomeKind.REJECTED),
    (_error(401, -2015, "Invalid API-key, IP, or permissions for action."), OutcomeKind.REJECTED),
    (_error(403, -1003, "WAF"), OutcomeKind.REJECTED),
    (_error(400, -1008, "Server is currently overloaded with other requests."), OutcomeKind.REJECTED),
    (_error(500, -1006, "An unexpected response was received from the message bus. Execution status unknown."),
     OutcomeKind.AMBIGUOUS),
    (_error(400, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status "
                        "unknown."), OutcomeKind.AMBIGUOUS),
    (_error(400, -1000, "An unknown error occurred while processing the request."), OutcomeKind.AMBIGUOUS),
    (_error(400, -1001, "Internal error; unable to process your request. Please try again."), OutcomeKind.AMBIGUOUS),
    (_error(503, -1008, "Server is currently overloaded"), OutcomeKind.AMBIGUOUS),  # 5XX: status unknown
    (_error(502, 0, "bad gateway"), OutcomeKind.AMBIGUOUS),
])
def test_decode_classifies_each_error_code(frame, kind):
    req_id, outcome = decode(frame, SPOT)
    assert req_id == "ts-5" and outcome.kind is kind
    assert outcome.kind is not OutcomeKind.REJECTED or outcome.code == str(frame["error"]["code"])


def test_decode_reads_the_order_out_of_each_success_shape():
    _, placed = decode({"id": "ts-1", "status": 200, "result": PLACED}, SPOT)
    assert placed.kind is OutcomeKind.ACCEPTED and placed.order_id == "12569099453"
    assert placed.status is OrderStatus.NEW and placed.amount == Decimal("0.00847000") and placed.filled == 0
    assert placed.price == Decimal("23416.10000000") and placed.client_order_id == PLACED["clientOrderId"]
    full = {**PLACED, "executedQty": "0.00847000", "status": "FILLED", "fills": []}
    assert decode({"id": "ts-1", "status": 200, "result": full}, SPOT)[1].status is OrderStatus.FILLED
    _, canceled = decode({"id": "ts-2", "status": 200, "result": CANCELED}, SPOT)
    assert canceled.status is OrderStatus.CANCELED and canceled.client_order_id == "91fe37ce9e69c90d6358c0"
    assert canceled.filled == Decimal("0.00001000")
    amended = {"transactTime": 1, "executionId": 16, "amendedOrder": {
        "symbol": "BTCUSDT", "orderId": 12, "origClientOrderId": "my_test_order1", "clientOrderId": "my_test_order1",
        "price": "5.00000000", "qty": "5.00000000", "executedQty": "0.00000000", "status": "NEW"}}
    _, outcome = decode({"id": "ts-3", "status": 200, "result": amended}, SPOT)
    assert outcome.order_id == "12" and outcome.amount == Decimal("5.00000000")
    replaced = {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": CANCELED,
                "newOrderResponse": {**PLACED, "orderId": 12569099454, "clientOrderId": "bX5wROblo6YeDwa9iTLeyY"}}
    _, outcome = decode({"id": "ts-4", "status": 200, "result": replaced}, SPOT)
    assert (outcome.order_id, outcome.client_order_id) == ("12569099454", "bX5wROblo6YeDwa9iTLeyY")
    partial = _error(409, -2021, "Order cancel-replace partially failed.", cancelResult="SUCCESS",
                     newOrderResult="FAILURE", cancelResponse=CANCELED,
                     newOrderResponse={"code": -2010, "msg": "Order would immediately match and take."})
    _, outcome = decode(partial, SPOT)
    assert outcome.kind is OutcomeKind.REJECTED and outcome.status is OrderStatus.CANCELED
    assert outcome.order_id == "12569099453" and "immediately match" in outcome.message
    _, algo = decode({"id": "ts-6", "status": 200, "result": ALGO}, FUTURE)
    assert (algo.kind, algo.order_id, algo.status) == (OutcomeKind.ACCEPTED, "3000000000003505", OrderStatus.NEW)
    assert algo.amount == Decimal("1.000") and algo.client_order_id == "0Xkl1p621E4EryvufmYre1"
    _, algo_cancel = decode({"id": "ts-7", "status": 200, "result": {
        "algoId": 3000000000003505, "clientAlgoId": "0Xkl1p621E4EryvufmYre1", "code": "200", "msg": "success"}}, FUTURE)
    assert algo_cancel.status is OrderStatus.CANCELED and algo_cancel.order_id == "3000000000003505"


def test_decode_takes_only_our_answers_and_makes_uncorrelated_errors_ambiguous():
    revoked = {"id": None, "status": 401, "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions."}}
    req_id, outcome = decode(revoked, SPOT)
    assert req_id is None and outcome.kind is OutcomeKind.AMBIGUOUS and outcome.code == "-2015"
    assert decode({"id": 1733000000000, "status": 200, "result": {"subscriptionId": 0}}, SPOT) is None  # stream's
    assert decode({"id": 1733000000000, "status": 400, "error": {"code": -1022, "msg": "x"}}, SPOT) is None
    assert decode({"subscriptionId": 0, "event": {"e": "executionReport"}}, SPOT) is None
    assert decode({"e": "ORDER_TRADE_UPDATE", "o": {}}, FUTURE) is None
    assert decode("pong", SPOT) is None
    banned = _error(418, -1003, "Way too much request weight used; IP banned.", retryAfter=now_ms() + 120_000)
    _, outcome = decode(banned, SPOT)
    assert outcome.kind is OutcomeKind.REJECTED and 100 < outcome.retry_after <= 120


@pytest.mark.parametrize("exc, kind", [
    (ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), OutcomeKind.AMBIGUOUS),
    (ccxt.InvalidOrder('binance {"code":-2010,"msg":"Order would immediately match and take."}'),
     OutcomeKind.REJECTED),
    (ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}'), OutcomeKind.NOT_FOUND),
    (ccxt.OrderNotFound('binance {"code":-2011,"msg":"Unknown order sent."}'), OutcomeKind.NOT_FOUND),
    (ccxt.RequestTimeout('binance {"code":-1007,"msg":"Timeout waiting for response from backend server."}'),
     OutcomeKind.AMBIGUOUS),
    (ccxt.OperationFailed('binance {"code":-1006,"msg":"An unexpected response was received."}'),
     OutcomeKind.AMBIGUOUS),
    (ccxt.AuthenticationError('binance {"code":-1022,"msg":"Signature for this request is not valid."}'),
     OutcomeKind.REJECTED),
    (ccxt.DDoSProtection('binance 429 Too Many Requests {"code":-1015,"msg":"Too many new orders."}'),
     OutcomeKind.REJECTED),
    (ccxt.ExchangeNotAvailable("binance GET https://api.binance.com/api/v3/order 503 Service Unavailable"),
     OutcomeKind.AMBIGUOUS),
    (ccxt.NetworkError("binance connection reset"), OutcomeKind.AMBIGUOUS),
])
def test_rest_exceptions_are_read_like_the_ws_answers(exc, kind):
    assert exception_outcome(exc).kind is kind


# loopback ----------------------------------------------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["binance"], seed=5, market_rate=0) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class Socket:
    """A raw trading socket: requests through ORDERS' encode/decode; what else it reads is kept as normalized
    events (the spot user stream on the same socket)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, market: Market, creds: Credentials) -> None:
        self.ws, self.market, self.creds = ws, market, creds
        self.events: list = []
        self.n = 0

    async def send(self, op: str, subject, now: int | None = None, creds: Credentials | None = None) -> str:
        self.n += 1
        rid = request_id(self.n)
        await self.ws.send_json(encode(op, subject, creds or self.creds, self.market, rid,
                                       now_ms() if now is None else now))
        return rid

    async def answer(self, rid: str, timeout: float = WAIT):
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket ended: {msg.type}")
                frame = json.loads(msg.data)
                decoded = decode(frame, self.market)
                if decoded is None:
                    self.events.extend(normalize(frame, self.market))
                elif decoded[0] == rid:
                    return decoded[1]

    async def request(self, op: str, subject, **kwargs):
        return await self.answer(await self.send(op, subject, **kwargs))

    async def until(self, found, timeout: float = WAIT) -> list:
        """Read stream frames until `found(events)` holds."""
        async with asyncio.timeout(timeout):
            while not found(self.events):
                msg = await self.ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    if decode(frame, self.market) is None:
                        self.events.extend(normalize(frame, self.market))
        return self.events


async def spot_socket(sim: Simulator, http: aiohttp.ClientSession) -> Socket:
    """The spot WS-API socket with the user stream subscribed on it (the shared socket orders ride)."""
    creds = sim.credentials_for("binance")
    ws = await http.ws_connect(sim.endpoints("binance", SPOT).ws)
    await ws.send_json(handshake(creds, SPOT, now_ms())[0])
    ack = await ws.receive_json(timeout=WAIT)
    assert ack["status"] == 200 and decode(ack, SPOT) is None
    return Socket(ws, SPOT, creds)


async def future_sockets(sim: Simulator, http: aiohttp.ClientSession) -> tuple[Socket, Socket]:
    """(the ws-fapi trading socket, the listenKey user stream)."""
    creds = sim.credentials_for("binance")
    endpoints = sim.endpoints("binance", FUTURE)
    async with http.post(endpoints.rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": creds.api_key}) as response:
        key = (await response.json())["listenKey"]
    stream = await http.ws_connect(f"{endpoints.ws}/ws/{key}")
    trading = await http.ws_connect(ORDERS.ws.url(FUTURE, endpoints))
    return Socket(trading, FUTURE, creds), Socket(stream, FUTURE, creds)


def attrs_evolve(value, **changes):
    return attrs.evolve(value, **changes)


def resting(sim: Simulator, market: Market) -> Decimal:
    """A buy price well under the book: the order rests."""
    return sim.market("binance", market, SYMBOL[market]).best_bid()[0] - 1000


def updates(events: list, cid: str) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate) and e.client_order_id == cid]


async def test_spot_ws_place_amend_replace_cancel_query_on_the_user_streams_socket(sim, http):
    socket = await spot_socket(sim, http)
    ledger = sim.ledger("binance", SPOT)
    cid, price = client_id(SPOT, "mm", N), resting(sim, SPOT)
    placed = await socket.request("place", order(SPOT, cid, price, "0.0100"))
    assert placed.kind is OutcomeKind.ACCEPTED and placed.status is OrderStatus.NEW
    booked = ledger.orders[placed.order_id]
    assert (booked.client_order_id, booked.amount, booked.price) == (cid, Decimal("0.0100"), price)
    await socket.until(lambda events: updates(events, cid))
    assert updates(socket.events, cid)[0].order_id == placed.order_id  # the stream names it with our client id

    known = ref(SPOT, cid, placed.order_id, side="buy", amount="0.0100", price=price)
    smaller = await socket.request("amend", Amend(ref=known, amount="0.0040"))  # keepPriority: same order
    assert smaller.kind is OutcomeKind.ACCEPTED and smaller.order_id == placed.order_id
    assert booked.amount == Decimal("0.0040") and booked.client_order_id == cid
    new_cid = client_id(SPOT, "mm", N + 1)
    moved = await socket.request("amend", Amend(ref=attrs_evolve(known, amount="0.0040"), price=price - 5,
                                                client_order_id=new_cid))  # cancelReplace
    assert moved.kind is OutcomeKind.ACCEPTED and moved.client_order_id == new_cid
    assert booked.price == price - 5 and booked.client_order_id == new_cid
    await socket.until(lambda events: updates(events, new_cid))

    canceled = await socket.request("cancel", ref(SPOT, new_cid, placed.order_id))
    assert canceled.kind is OutcomeKind.ACCEPTED and canceled.status is OrderStatus.CANCELED
    assert canceled.client_order_id == canceled_name(new_cid) == booked.client_order_id  # renamed, as Binance does
    assert booked.status is OrderStatus.CANCELED
    await socket.until(lambda events: any(u.status is OrderStatus.CANCELED for u in updates(events, new_cid)))
    # The stream still names the cancelled order by the id it was placed with (`C`), so it routes back.
    queried = await socket.request("query", ref(SPOT, new_cid, placed.order_id))
    assert queried.status is OrderStatus.CANCELED and queried.amount == Decimal("0.0040")
    again = await socket.request("cancel", ref(SPOT, new_cid, placed.order_id))
    assert again.kind is OutcomeKind.NOT_FOUND and again.code == "-2011"
    gone = await socket.request("query", ref(SPOT, "mm-nothing"))
    assert gone.kind is OutcomeKind.NOT_FOUND and gone.code == "-2013"
    assert len(ledger.orders) == 1
    await socket.ws.close()


async def test_spot_ws_market_and_ioc_orders_fill_or_expire_and_the_stream_reports_the_fills(sim, http):
    socket = await spot_socket(sim, http)
    ledger = sim.ledger("binance", SPOT)
    cid = client_id(SPOT, "tk", N)
    taken = await socket.request("place", order(SPOT, cid, None, "0.0300", side="sell", order_type="market"))
    assert taken.kind is OutcomeKind.ACCEPTED
    await socket.until(lambda events: any(isinstance(e, Trade) and e.client_order_id == cid for e in events))
    booked = ledger.orders[taken.order_id]
    assert booked.status is OrderStatus.FILLED and booked.filled == Decimal("0.0300")
    fills = [e for e in socket.events if isinstance(e, Trade) and e.client_order_id == cid]
    assert sum(f.amount for f in fills) == Decimal("0.0300") and fills[0].order_id == taken.order_id
    assert {f.trade_id for f in fills} == {f.trade_id for f in ledger.fills if f.order_id == taken.order_id}

    ioc = client_id(SPOT, "tk", N + 1)
    outcome = await socket.request("place", order(SPOT, ioc, resting(sim, SPOT), order_type="ioc"))
    await socket.until(lambda events: any(u.status is OrderStatus.EXPIRED for u in updates(events, ioc)))
    assert ledger.orders[outcome.order_id].status is OrderStatus.EXPIRED
    crossing = sim.market("binance", SPOT, "BTC/USDT").best_ask()[0] + 10
    refused = await socket.request("place", order(SPOT, client_id(SPOT, "tk", N + 2), crossing,
                                                  order_type="post_only"))
    assert refused.kind is OutcomeKind.REJECTED and refused.code == "-2010" and "match and take" in refused.message
    assert len(ledger.orders) == 2
    await socket.ws.close()


async def test_usdm_ws_fapi_place_modify_query_cancel_and_the_listen_key_stream_reports_them(sim, http):
    trading, stream = await future_sockets(sim, http)
    ledger = sim.ledger("binance", FUTURE)
    cid, price = client_id(FUTURE, "fx", N), resting(sim, FUTURE)
    placed = await trading.request("place", order(FUTURE, cid, price, "0.250"))
    assert placed.kind is OutcomeKind.ACCEPTED and ledger.orders[placed.order_id].amount == Decimal("0.250")
    await stream.until(lambda events: updates(events, cid))
    known = ref(FUTURE, cid, side="buy", amount="0.250", price=price)
    modified = await trading.request("amend", Amend(ref=known, price=price + Decimal("0.5"), amount="0.200"))
    assert modified.kind is OutcomeKind.ACCEPTED and modified.order_id == placed.order_id
    booked = ledger.orders[placed.order_id]
    assert (booked.price, booked.amount) == (price + Decimal("0.5"), Decimal("0.200"))
    queried = await trading.request("query", ref(FUTURE, cid))
    assert (queried.status, queried.price, queried.amount) == (OrderStatus.NEW, booked.price, booked.amount)
    canceled = await trading.request("cancel", ref(FUTURE, cid, placed.order_id))
    assert canceled.status is OrderStatus.CANCELED and canceled.client_order_id == cid  # USD-M keeps the id
    await stream.until(lambda events: any(u.status is OrderStatus.CANCELED for u in updates(events, cid)))
    assert (await trading.request("query", ref(FUTURE, cid))).status is OrderStatus.CANCELED
    refused = await trading.request("place", order(FUTURE, client_id(FUTURE, "fx", N + 1),
                                                   sim.market("binance", FUTURE, SYMBOL[FUTURE]).best_ask()[0] + 1,
                                                   order_type="post_only"))
    assert refused.kind is OutcomeKind.REJECTED and refused.code == "-5022"
    assert len(ledger.orders) == 1
    await trading.ws.close()
    await stream.ws.close()


async def test_usdm_tp_sl_are_algo_orders_that_trigger_into_fills_routed_by_the_client_algo_id(sim, http):
    trading, stream = await future_sockets(sim, http)
    ledger, engine = sim.ledger("binance", FUTURE), sim.orders
    bid = sim.market("binance", FUTURE, SYMBOL[FUTURE]).best_bid()[0]
    far = order(FUTURE, client_id(FUTURE, "tp", N), None, "0.100", side="sell", order_type="market",
                trigger_price=bid + 5000, trigger="take_profit", reduce_only=True)
    waiting = await trading.request("place", far)
    assert waiting.kind is OutcomeKind.ACCEPTED and waiting.status is OrderStatus.NEW
    algo = ledger.orders[waiting.order_id]
    assert (algo.trigger, algo.trigger_price, algo.reduce_only) == ("take_profit", bid + 5000, True)
    client = rest_client(ConnectionKey(exchange="binance", market="future"), SPEC.backfill,
                         sim.credentials_for("binance"), LIVE_ENDPOINTS[FUTURE], sim.endpoints("binance", FUTURE),
                         [SYMBOL[FUTURE]])
    try:
        queried = await ORDERS.rest.query(client, ref(FUTURE, far.client_order_id, conditional=True))
        assert queried.kind is OutcomeKind.ACCEPTED and queried.status is OrderStatus.NEW
        canceled = await trading.request("cancel", ref(FUTURE, far.client_order_id, waiting.order_id,
                                                       conditional=True))
        assert canceled.status is OrderStatus.CANCELED and algo.status is OrderStatus.CANCELED
        after = await ORDERS.rest.query(client, ref(FUTURE, far.client_order_id, waiting.order_id, conditional=True))
        assert after.status is OrderStatus.CANCELED and after.filled == 0
        # The same over REST: place, find by client algo id, cancel.
        rest_tp = attrs_evolve(far, client_order_id=client_id(FUTURE, "tp", N + 1))
        placed = await ORDERS.rest.place(client, rest_tp)
        assert placed.kind is OutcomeKind.ACCEPTED and ledger.orders[placed.order_id].trigger == "take_profit"
        gone = await ORDERS.rest.cancel(client, ref(FUTURE, rest_tp.client_order_id, conditional=True))
        assert gone.status is OrderStatus.CANCELED and ledger.orders[placed.order_id].status is OrderStatus.CANCELED
    finally:
        await client.close()

    stop = order(FUTURE, client_id(FUTURE, "sl", N), None, "0.100", side="sell", order_type="market",
                 trigger_price=bid + 5000, trigger="stop_loss", reduce_only=True)  # a sell stop above: hit at once
    placed = await trading.request("place", stop)
    assert placed.status is OrderStatus.NEW and not ledger.orders[placed.order_id].filled
    await engine.match("binance", FUTURE, SYMBOL[FUTURE])
    fired = ledger.orders[placed.order_id]
    assert fired.status is OrderStatus.FILLED and fired.filled == Decimal("0.100")
    await stream.until(lambda events: any(isinstance(e, Trade) and e.client_order_id == stop.client_order_id
                                          for e in events))
    # Untriggered algo orders stream as ALGO_UPDATE (no order event): only the triggered one reached normalize.
    assert not updates(stream.events, far.client_order_id)
    await trading.ws.close()
    await stream.ws.close()


async def test_rest_place_amend_cancel_query_through_the_ccxt_client_spot_and_usdm(sim):
    for market in (SPOT, FUTURE):
        client = rest_client(ConnectionKey(exchange="binance", market=market), SPEC.backfill,
                             sim.credentials_for("binance"), LIVE_ENDPOINTS[market], sim.endpoints("binance", market),
                             [SYMBOL[market]])
        ledger = sim.ledger("binance", market)
        try:
            cid, price = client_id(market, "rs", N), resting(sim, market)
            placed = await ORDERS.rest.place(client, order(market, cid, price, "0.0500"))
            assert placed.kind is OutcomeKind.ACCEPTED and placed.status is OrderStatus.NEW
            booked = ledger.orders[placed.order_id]
            assert (booked.client_order_id, booked.amount, booked.price) == (cid, Decimal("0.0500"), price)
            known = ref(market, cid, placed.order_id, side="buy", amount="0.0500", price=price)
            smaller = await ORDERS.rest.amend(client, Amend(ref=known, amount="0.0300"))
            assert smaller.kind is OutcomeKind.ACCEPTED and booked.amount == Decimal("0.0300")
            moved = await ORDERS.rest.amend(client, Amend(ref=attrs_evolve(known, amount="0.0300"),
                                                          price=price - 1))
            assert moved.kind is OutcomeKind.ACCEPTED and booked.price == price - 1
            by_cid = await ORDERS.rest.query(client, ref(market, booked.client_order_id))
            assert by_cid.order_id == placed.order_id and by_cid.status is OrderStatus.NEW
            canceled = await ORDERS.rest.cancel(client, ref(market, booked.client_order_id, placed.order_id))
            assert canceled.status is OrderStatus.CANCELED and booked.status is OrderStatus.CANCELED
            # Spot renamed the cancelled order; a query by the id it was placed with still finds it.
            found = await ORDERS.rest.query(client, ref(market, cid))
            assert found.kind is OutcomeKind.ACCEPTED and found.status is OrderStatus.CANCELED
            assert found.order_id == placed.order_id
            missing = await ORDERS.rest.query(client, ref(market, "rs-nothing"))
            assert missing.kind is OutcomeKind.NOT_FOUND
            again = await ORDERS.rest.cancel(client, ref(market, cid, placed.order_id))
            assert again.kind is OutcomeKind.NOT_FOUND
            assert len(ledger.orders) == 1
        finally:
            await client.close()


async def test_engine_faults_give_the_classification_the_gateway_expects_on_ws(sim, http):
    socket = await spot_socket(sim, http)
    ledger = sim.ledger("binance", SPOT)
    price = resting(sim, SPOT)

    sim.orders.fault("binance", SPOT, "unknown")
    cid = client_id(SPOT, "ft", N)
    unknown = await socket.request("place", order(SPOT, cid, price))
    assert unknown.kind is OutcomeKind.AMBIGUOUS and unknown.code == "-1007"
    placed = [o for o in ledger.orders.values() if o.client_order_id == cid]
    assert len(placed) <= 1  # it may or may not have executed, never twice
    truth = await socket.request("query", ref(SPOT, cid))
    assert (truth.kind is OutcomeKind.ACCEPTED) == bool(placed)

    sim.orders.fault("binance", SPOT, "drop_ack")
    dropped = client_id(SPOT, "ft", N + 1)
    rid = await socket.send("place", order(SPOT, dropped, price))
    await socket.until(lambda events: updates(events, dropped))  # executed: the stream says so
    with pytest.raises(TimeoutError):
        await socket.answer(rid, timeout=0.5)  # and no answer ever comes
    assert [o.client_order_id for o in ledger.orders.values()].count(dropped) == 1

    sim.orders.fault("binance", SPOT, "lose")
    lost = client_id(SPOT, "ft", N + 2)
    rid = await socket.send("place", order(SPOT, lost, price))
    with pytest.raises(TimeoutError):
        await socket.answer(rid, timeout=0.5)
    assert (await socket.request("query", ref(SPOT, lost))).kind is OutcomeKind.NOT_FOUND
    assert lost not in {o.client_order_id for o in ledger.orders.values()}

    # The venue re-checks the window before its engine: a request held past it is refused, not executed.
    sim.orders.faults.exec_delay = 0.3
    sim.orders.fault("binance", SPOT, "delay_exec")
    late = client_id(SPOT, "ft", N + 3)
    expired = await socket.request("place", order(SPOT, late, price), now=now_ms() - VALIDITY_MS + 100)
    assert expired.kind is OutcomeKind.REJECTED and expired.code == "-1021"
    assert late not in {o.client_order_id for o in ledger.orders.values()}

    sim.orders.fault("binance", SPOT, "disconnect")
    cut = client_id(SPOT, "ft", N + 4)
    rid = await socket.send("place", order(SPOT, cut, price))
    with pytest.raises(ConnectionError):
        await socket.answer(rid)  # the shared socket is gone, the user stream with it
    assert [o.client_order_id for o in ledger.orders.values()].count(cut) <= 1
    socket = await spot_socket(sim, http)  # a new socket: the query tells whether it executed
    truth = await socket.request("query", ref(SPOT, cut))
    assert (truth.kind is OutcomeKind.ACCEPTED) == (cut in {o.client_order_id for o in ledger.orders.values()})
    await socket.ws.close()


async def test_engine_faults_on_rest_are_ambiguous_and_a_5xx_is_too(sim):
    client = rest_client(ConnectionKey(exchange="binance", market="future"), SPEC.backfill,
                         sim.credentials_for("binance"), LIVE_ENDPOINTS[FUTURE], sim.endpoints("binance", FUTURE),
                         [SYMBOL[FUTURE]])
    ledger = sim.ledger("binance", FUTURE)
    try:
        price = resting(sim, FUTURE)
        for fault in ("unknown", "lose", "disconnect"):
            sim.orders.fault("binance", FUTURE, fault)
            cid = client_id(FUTURE, fault[:2], N)
            outcome = await ORDERS.rest.place(client, order(FUTURE, cid, price))
            assert outcome.kind is OutcomeKind.AMBIGUOUS, (fault, outcome)
            truth = await ORDERS.rest.query(client, ref(FUTURE, cid))
            on_book = [o for o in ledger.orders.values() if o.client_order_id == cid]
            assert len(on_book) <= 1 and (truth.kind is OutcomeKind.ACCEPTED) == bool(on_book)
            assert fault != "lose" or truth.kind is OutcomeKind.NOT_FOUND
        sim.fail_rest("binance", FUTURE, [503])
        outcome = await ORDERS.rest.place(client, order(FUTURE, client_id(FUTURE, "fl", N), price))
        assert outcome.kind is OutcomeKind.AMBIGUOUS
        assert "fl-" not in " ".join(o.client_order_id or "" for o in ledger.orders.values())
    finally:
        await client.close()


async def test_client_ids_are_unique_among_open_orders_only(sim, http):
    assert sim.venue("binance").client_id_policy == ClientIdPolicy.OPEN_UNIQUE
    socket = await spot_socket(sim, http)
    ledger = sim.ledger("binance", SPOT)
    cid, price = client_id(SPOT, "dp", N), resting(sim, SPOT)
    first = await socket.request("place", order(SPOT, cid, price))
    again = await socket.request("place", order(SPOT, cid, price))
    assert first.kind is OutcomeKind.ACCEPTED
    assert again.kind is OutcomeKind.AMBIGUOUS and again.code == "-2010"  # a retry: the first attempt placed it
    assert [o.client_order_id for o in ledger.orders.values()].count(cid) == 1
    ioc = client_id(SPOT, "dp", N + 1)
    await socket.request("place", order(SPOT, ioc, price, order_type="ioc"))
    await socket.until(lambda events: any(u.status is OrderStatus.EXPIRED for u in updates(events, ioc)))
    reused = await socket.request("place", order(SPOT, ioc, price))  # the earlier one is done: accepted
    assert reused.kind is OutcomeKind.ACCEPTED
    assert [o.client_order_id for o in ledger.orders.values()].count(ioc) == 2
    trading, stream = await future_sockets(sim, http)
    fcid = client_id(FUTURE, "dp", N)
    assert (await trading.request("place", order(FUTURE, fcid, resting(sim, FUTURE)))).kind is OutcomeKind.ACCEPTED
    twice = await trading.request("place", order(FUTURE, fcid, resting(sim, FUTURE)))
    assert twice.kind is OutcomeKind.AMBIGUOUS and twice.code == "-4116"
    assert len(sim.ledger("binance", FUTURE).orders) == 1
    for s in (socket, trading, stream):
        await s.ws.close()


async def test_a_wrong_signature_or_key_is_refused_and_nothing_executes(sim, http):
    socket = await spot_socket(sim, http)
    good = sim.credentials_for("binance")
    wrong_secret = Credentials(api_key=good.api_key, secret="0" * 48)
    refused = await socket.request("place", order(SPOT, client_id(SPOT, "sg", N), resting(sim, SPOT)),
                                   creds=wrong_secret)
    assert refused.kind is OutcomeKind.REJECTED and refused.code == "-1022"
    wrong_key = Credentials(api_key="nobody", secret=good.secret)
    refused = await socket.request("place", order(SPOT, client_id(SPOT, "sg", N + 1), resting(sim, SPOT)),
                                   creds=wrong_key)
    assert refused.kind is OutcomeKind.REJECTED and refused.code == "-2015"
    stale = await socket.request("place", order(SPOT, client_id(SPOT, "sg", N + 2), resting(sim, SPOT)),
                                 now=now_ms() - VALIDITY_MS - 1000)
    assert stale.kind is OutcomeKind.REJECTED and stale.code == "-1021"
    trading, stream = await future_sockets(sim, http)
    refused = await trading.request("place", order(FUTURE, client_id(FUTURE, "sg", N), resting(sim, FUTURE)),
                                    creds=wrong_secret)
    assert refused.kind is OutcomeKind.REJECTED and refused.code == "-1022"
    client = rest_client(ConnectionKey(exchange="binance", market="spot"), SPEC.backfill, wrong_secret,
                         LIVE_ENDPOINTS[SPOT], sim.endpoints("binance", SPOT), [SYMBOL[SPOT]])
    try:
        outcome = await ORDERS.rest.place(client, order(SPOT, client_id(SPOT, "sg", N + 3), resting(sim, SPOT)))
        assert outcome.kind is OutcomeKind.REJECTED and outcome.code == "-1022"
    finally:
        await client.close()
    assert not sim.ledger("binance", SPOT).orders and not sim.ledger("binance", FUTURE).orders
    for s in (socket, trading, stream):
        await s.ws.close()
