"""MEXC order entry: the rules (REST-only spot, futures closed, client ids, what each MEXC error code means) and the
simulator's side over real HTTP and sockets — place / query / cancel through the key's ccxt client against the
matching engine's ledger, the private stream reporting the same client id, the engine's faults, refused signatures,
duplicate client ids, and the contract order endpoints' code 1002."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import ccxt
import pytest

from exchanges.connector import Credentials
from exchanges.mexc import SPEC
from exchanges.mexc.normalize import normalize
from exchanges.mexc.orders import (
    CLIENT_ID_MAX, FUTURES_CLOSED, ORDERS, VALIDITY_MS, cancel, classify, client_id, place, query,
)  # fmt: skip
from exchanges.mexc.proto import PushDataV3ApiWrapper
from exchanges.mexc.stream import MexcStream
from exchanges.simulator import Simulator
from exchanges.simulator.orders import ClientIdPolicy
from framework.backfill import rest_client
from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Side, Trade, now_ms
from framework.orders.model import OrderRef, OrderRequest, OutcomeKind
from framework.venue import Endpoints

pytestmark = pytest.mark.timeout(60)

STREAM = MexcStream()
WAIT = 5.0
ORDERS_CHANNEL, DEALS_CHANNEL = "spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb"
N = 1_733_000_000_000_123  # a client-id number of the gateway's form (ms × 1000 + seq)


# rules ----------------------------------------------------------------------------------------------------------
def test_rules_are_spot_rest_only_with_futures_closed_by_the_venue():
    assert SPEC.orders is ORDERS
    assert ORDERS.markets == frozenset({Market.SPOT})
    assert ORDERS.ws is None  # MEXC has no WebSocket order entry
    assert ORDERS.rest.amend is None  # nor an amend
    assert ORDERS.closed == {Market.FUTURE: FUTURES_CLOSED}
    assert "1002" in FUTURES_CLOSED and "Contract not allow place order!" in FUTURES_CLOSED
    assert "2022-07-25" in FUTURES_CLOSED
    assert ORDERS.conditional == frozenset() and ORDERS.prepare is None and not ORDERS.renames_on_cancel
    assert ORDERS.rest.validity_ms == VALIDITY_MS == 5000 and ORDERS.rest.rate == 12.0
    assert "12 requests/second" in ORDERS.notes and "1002" in ORDERS.notes


def test_client_id_is_the_prefix_and_the_number_in_base_36():
    cid = client_id(Market.SPOT, "mm1-", N)
    assert cid.startswith("mm1-") and int(cid[4:], 36) == N
    assert len(cid) <= CLIENT_ID_MAX
    ids = {client_id(Market.SPOT, "s_", N + i) for i in range(2000)}
    assert len(ids) == 2000  # unique for unique n
    assert all(len(i) <= 32 and all(c.isalnum() or c in "_-" for c in i) for i in ids)
    assert client_id(Market.SPOT, "a", 0) == "a0"


@pytest.mark.parametrize("prefix", ["", "mm 1", "mm.1", "mm/1", "mm:1", "ä"])
def test_client_id_refuses_a_prefix_outside_mexc_characters(prefix):
    with pytest.raises(ValueError, match="letters, digits, _ or -"):
        client_id(Market.SPOT, prefix, N)


def test_client_id_refuses_a_prefix_too_long_for_32_characters():
    digits = len(client_id(Market.SPOT, "a", N)) - 1
    assert len(client_id(Market.SPOT, "p" * (32 - digits), N)) == 32
    with pytest.raises(ValueError, match=f"at most {32 - digits}"):
        client_id(Market.SPOT, "p" * (33 - digits), N)


# what each code means -------------------------------------------------------------------------------------------
def _raised(status: int, body: str) -> Exception:
    """The exception ccxt's mexc raises for this HTTP answer (its handle_errors, then the HTTP status)."""
    client = ccxt.mexc()
    try:
        response = json.loads(body)
    except ValueError:
        response = None
    try:
        client.handle_errors(status, "", "https://api.mexc.com/api/v3/order", "POST", {}, body, response, {}, "")
        client.handle_http_status_code(status, "", "https://api.mexc.com/api/v3/order", "POST", body)
    except Exception as exc:  # noqa: BLE001 - the test wants whatever ccxt raises
        return exc
    raise AssertionError(f"ccxt raised nothing for {status} {body}")


@pytest.mark.parametrize(("op", "status", "body", "kind"), [
    # final: MEXC refused the request, nothing executed
    ("place", 400, '{"code":30004,"msg":"Insufficient position"}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":10101,"msg":"Insufficient balance"}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":30002,"msg":"The minimum transaction volume cannot be less than:5USDT"}',
     OutcomeKind.REJECTED),
    ("place", 400, '{"code":30087,"msg":"Order price exceeds allowed range"}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":30041,"msg":"current order type can not place order"}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":-1121,"msg":"Invalid symbol."}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":700002,"msg":"Signature for this request is not valid."}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":700003,"msg":"Timestamp for this request is outside of the recvWindow."}',
     OutcomeKind.REJECTED),
    ("place", 400, '{"code":700008,"msg":"Illegal characters found in parameter"}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":10072,"msg":"Api key info invalid"}', OutcomeKind.REJECTED),
    ("place", 400, '{"code":70011,"msg":"Pair user ban trade apikey."}', OutcomeKind.REJECTED),
    ("place", 200, '{"success":false,"code":1002,"message":"Contract not allow place order!"}', OutcomeKind.REJECTED),
    # ambiguous: "execution status UNKNOWN", rate limits, codes the table does not have
    ("place", 500, '{"code":500,"msg":"Internal error"}', OutcomeKind.AMBIGUOUS),
    ("place", 503, '{"code":503,"msg":"service not available, please try again"}', OutcomeKind.AMBIGUOUS),
    ("place", 504, '{"code":504,"msg":"Gateway Time-out"}', OutcomeKind.AMBIGUOUS),
    ("place", 429, '{"code":429,"msg":"Too Many Requests"}', OutcomeKind.AMBIGUOUS),
    ("place", 502, "<html>Bad Gateway</html>", OutcomeKind.AMBIGUOUS),
    ("place", 400, '{"code":987654,"msg":"something new"}', OutcomeKind.AMBIGUOUS),
    # not found: the query's and the cancel's own codes
    ("query", 400, '{"code":-2013,"msg":"Order does not exist."}', OutcomeKind.NOT_FOUND),
    ("cancel", 400, '{"code":-2011,"msg":"Unknown order sent."}', OutcomeKind.NOT_FOUND),
    ("cancel", 400, '{"code":-2013,"msg":"Order does not exist."}', OutcomeKind.NOT_FOUND),
])
def test_each_mexc_error_code_has_its_meaning(op, status, body, kind):
    outcome = classify(_raised(status, body), op)
    assert outcome.kind is kind
    code = json.loads(body).get("code") if body.startswith("{") else None
    if code is not None:
        assert outcome.code == str(code)


def test_a_timeout_is_ambiguous_and_a_refused_connection_not_sent():
    assert classify(ccxt.RequestTimeout("mexc POST https://api.mexc.com/api/v3/order"), "place").kind \
        is OutcomeKind.AMBIGUOUS
    refused = aiohttp.ClientConnectorError(None, OSError(111, "Connection refused"))
    try:
        raise ccxt.NetworkError("mexc POST https://api.mexc.com/api/v3/order") from refused
    except ccxt.NetworkError as exc:
        assert classify(exc, "place").kind is OutcomeKind.NOT_SENT


# the wire: signing ------------------------------------------------------------------------------------------------
def _hmac(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_signature_formula_matches_the_docs_vector():
    # MEXC's "SIGNED Endpoint Examples for POST /api/v3/order", example 2 (query string).
    total = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert _hmac("45d0b3c26f2644f19bfb98b07741b2f5", total) == \
        "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"


async def test_the_new_order_request_is_signed_over_its_query_with_the_validity_window():
    creds = Credentials(api_key="mx0aBYs33eIilxBWC5", secret="45d0b3c26f2644f19bfb98b07741b2f5")
    client = rest_client(ConnectionKey(exchange="mexc", market="spot"), SPEC.backfill, creds,
                         SPEC.stream.endpoints(Market.SPOT), SPEC.stream.endpoints(Market.SPOT), ["BTC/USDT"])
    try:
        signed = client.sign("order", ["spot", "private"], "POST", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "11",
            "newClientOrderId": "mm1-abc"})
    finally:
        await client.close()
    query = urlsplit(signed["url"]).query
    unsigned, _, signature = query.rpartition("&signature=")
    assert signature == _hmac(creds.secret, unsigned)  # the docs' formula, computed here
    params = dict(parse_qsl(unsigned))
    assert params["newClientOrderId"] == "mm1-abc" and params["recvWindow"] == "5000"
    assert signed["headers"]["X-MEXC-APIKEY"] == creds.api_key and signed["body"] is None


# loopback ----------------------------------------------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["mexc"], seed=11, market_rate=0) as simulator:
        yield simulator


@pytest.fixture
async def client(sim):
    exchange = rest_client(ConnectionKey(exchange="mexc", market="spot"), SPEC.backfill, sim.credentials_for("mexc"),
                           SPEC.stream.endpoints(Market.SPOT), sim.endpoints("mexc", "spot"),
                           ["BTC/USDT", "ETH/USDT"])
    yield exchange
    await exchange.close()


def limit(cid: str, price: Decimal, amount: str = "0.0100", side: str = "buy", **fields) -> OrderRequest:
    return OrderRequest(market="spot", symbol="BTC/USDT", side=side, amount=amount, price=price,
                        client_order_id=cid, **fields)


def ref(cid: str, order_id: str | None = None) -> OrderRef:
    return OrderRef(market="spot", symbol="BTC/USDT", client_order_id=cid, order_id=order_id)


def away(sim: Simulator) -> Decimal:
    """A buy price well under the book: the order rests."""
    return sim.market("mexc", "spot", "BTC/USDT").best_bid()[0] - 1000


async def spot_stream(http: aiohttp.ClientSession, sim: Simulator):
    key = await STREAM.open_listen_key(http, sim.credentials_for("mexc"), Market.SPOT, sim.endpoints("mexc", "spot"),
                                       now_ms())
    ws = await http.ws_connect(STREAM.ws_url(Market.SPOT, sim.endpoints("mexc", "spot"), key))
    await ws.send_json({"method": "SUBSCRIPTION", "params": [ORDERS_CHANNEL, DEALS_CHANNEL]})
    ack = await ws.receive(timeout=WAIT)
    assert json.loads(ack.data)["msg"] == f"{ORDERS_CHANNEL},{DEALS_CHANNEL}"
    return ws


async def events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list:
    """The next `count` events the client's normalize reads off the private stream."""
    found: list = []
    while len(found) < count:
        message = await ws.receive(timeout=WAIT)
        assert message.type is aiohttp.WSMsgType.BINARY, message
        found += normalize(message.data, Market.SPOT)
    return found


async def test_place_query_cancel_a_limit_order_as_the_ledger_and_the_private_stream_have_it(sim, client):
    async with asyncio.timeout(20), aiohttp.ClientSession() as http:
        ws = await spot_stream(http, sim)
        cid, price = client_id(Market.SPOT, "mm1-", N), away(sim)
        placed = await place(client, limit(cid, price))
        assert placed.kind is OutcomeKind.ACCEPTED and placed.status is None  # MEXC's answer has no status
        order = sim.ledger("mexc", "spot").orders[placed.order_id]
        assert (order.client_order_id, order.side, order.amount, order.price, order.status) == \
            (cid, Side.BUY, Decimal("0.0100"), price, OrderStatus.NEW)
        assert (placed.amount, placed.price) == (Decimal("0.01"), price)
        [update] = await events(ws, 1)
        assert isinstance(update, OrderUpdate)
        assert (update.client_order_id, update.order_id, update.status, update.order_type) == \
            (cid, placed.order_id, OrderStatus.NEW, "limit")

        found = await query(client, ref(cid))
        assert (found.kind, found.order_id, found.status, found.filled, found.amount, found.client_order_id) == \
            (OutcomeKind.ACCEPTED, placed.order_id, OrderStatus.NEW, 0, Decimal("0.01"), cid)

        cancelled = await cancel(client, ref(cid, placed.order_id))
        assert (cancelled.kind, cancelled.status, cancelled.order_id) == \
            (OutcomeKind.ACCEPTED, OrderStatus.CANCELED, placed.order_id)
        assert order.status is OrderStatus.CANCELED
        [update] = await events(ws, 1)
        assert (update.client_order_id, update.status) == (cid, OrderStatus.CANCELED)
        again = await cancel(client, ref(cid))  # MEXC: -2011 for a finished order too
        assert (again.kind, again.code) == (OutcomeKind.NOT_FOUND, "-2011")
        assert (await query(client, ref(cid))).status is OrderStatus.CANCELED  # still queryable
        await ws.close()


async def test_a_market_order_fills_at_the_book_and_its_fill_carries_the_client_id(sim, client):
    async with asyncio.timeout(20), aiohttp.ClientSession() as http:
        ws = await spot_stream(http, sim)
        ask = sim.market("mexc", "spot", "BTC/USDT").best_ask()[0]
        placed = await place(client, OrderRequest(market="spot", symbol="BTC/USDT", side="buy", amount="0.005",
                                                  order_type="market", client_order_id="tk-1"))
        assert placed.kind is OutcomeKind.ACCEPTED and placed.price is None
        got = await events(ws, 3)  # the order, then the fill's order state and the deal
        trades = [e for e in got if isinstance(e, Trade)]
        updates = [e for e in got if isinstance(e, OrderUpdate)]
        assert [(t.client_order_id, t.amount, t.price, t.order_id) for t in trades] == \
            [("tk-1", Decimal("0.005"), ask, placed.order_id)]
        assert updates[0].order_type == "market" and updates[-1].status is OrderStatus.FILLED
        assert {u.client_order_id for u in updates} == {"tk-1"}
        order = sim.ledger("mexc", "spot").orders[placed.order_id]
        assert (order.status, order.filled) == (OrderStatus.FILLED, Decimal("0.005"))
        found = await query(client, ref("tk-1"))
        assert (found.status, found.filled, found.average) == (OrderStatus.FILLED, Decimal("0.005"), ask)
        gone = await cancel(client, ref("tk-1"))
        assert (gone.kind, gone.code) == (OutcomeKind.NOT_FOUND, "-2011")
        await ws.close()


async def test_ioc_and_post_only_orders(sim, client):
    book = sim.market("mexc", "spot", "BTC/USDT")
    ioc = await place(client, limit("ioc-1", away(sim), order_type="ioc"))
    assert ioc.kind is OutcomeKind.ACCEPTED
    for _ in range(50):  # the engine expires what it could not fill right after answering
        if sim.ledger("mexc", "spot").orders[ioc.order_id].status.is_terminal:
            break
        await asyncio.sleep(0.02)
    expired = await query(client, ref("ioc-1"))
    assert (expired.status, expired.filled) == (OrderStatus.CANCELED, 0)  # MEXC says CANCELED for it

    crossing = await place(client, limit("po-1", book.best_ask()[0], order_type="post_only"))
    assert (crossing.kind, crossing.code) == (OutcomeKind.REJECTED, "30041")
    assert all(o.client_order_id != "po-1" for o in sim.ledger("mexc", "spot").orders.values())
    resting = await place(client, limit("po-2", away(sim), order_type="post_only"))
    assert resting.kind is OutcomeKind.ACCEPTED
    assert sim.ledger("mexc", "spot").orders[resting.order_id].time_in_force == "post_only"
    assert (await query(client, ref("po-2"))).status is OrderStatus.NEW


async def test_an_unknown_client_id_is_not_found_to_query_and_cancel(sim, client):
    missing = await query(client, ref("never-sent"))
    assert (missing.kind, missing.code) == (OutcomeKind.NOT_FOUND, "-2013")
    assert (await cancel(client, ref("never-sent"))).kind is OutcomeKind.NOT_FOUND
    other = await place(client, OrderRequest(market="spot", symbol="ETH/USDT", side="buy", amount="0.1",
                                             price="100", client_order_id="eth-1"))
    assert other.kind is OutcomeKind.ACCEPTED
    assert (await query(client, ref("eth-1"))).kind is OutcomeKind.NOT_FOUND  # asked within BTCUSDT
    assert (await cancel(client, ref("eth-1"))).kind is OutcomeKind.NOT_FOUND
    assert sim.ledger("mexc", "spot").orders[other.order_id].status is OrderStatus.NEW


async def test_a_query_the_order_lookup_misses_finds_an_open_order_among_the_open_orders(sim, client):
    placed = await place(client, limit("lag-1", away(sim)))
    sim.venue("mexc").forgotten_orders.add(placed.order_id)  # the lookup answers -2013 (as MEXC's can, ccxt#21614)
    found = await query(client, ref("lag-1"))
    assert (found.kind, found.order_id, found.status) == (OutcomeKind.ACCEPTED, placed.order_id, OrderStatus.NEW)
    assert (await cancel(client, ref("lag-1", placed.order_id))).status is OrderStatus.CANCELED
    gone = await query(client, ref("lag-1"))  # not open either: truly not found now
    assert (gone.kind, gone.code) == (OutcomeKind.NOT_FOUND, "-2013")
    older, newer = await place(client, limit("lag-2", away(sim))), await place(client, limit("lag-2", away(sim)))
    sim.venue("mexc").forgotten_orders.update({older.order_id, newer.order_id})
    assert (await query(client, ref("lag-2"))).order_id == newer.order_id  # the newest, as the lookup would
    assert (await query(client, ref("lag-2", older.order_id))).order_id == older.order_id


async def test_duplicate_client_ids_are_not_checked_and_a_query_names_the_newest(sim, client):
    assert sim.venue("mexc").client_id_policy == ClientIdPolicy.FREE
    first = await place(client, limit("dup-1", away(sim)))
    second = await place(client, limit("dup-1", away(sim) - 1))
    assert first.kind is second.kind is OutcomeKind.ACCEPTED and first.order_id != second.order_id
    assert [o.order_id for o in sim.ledger("mexc", "spot").orders.values() if o.client_order_id == "dup-1"] == \
        [first.order_id, second.order_id]
    assert (await query(client, ref("dup-1"))).order_id == second.order_id
    sim.venue("mexc").client_id_policy = ClientIdPolicy.OPEN_UNIQUE  # a stricter venue, for a test that wants one
    third = await place(client, limit("dup-1", away(sim)))
    assert (third.kind, third.code) == (OutcomeKind.REJECTED, "26")
    assert len([o for o in sim.ledger("mexc", "spot").orders.values() if o.client_order_id == "dup-1"]) == 2


async def test_a_wrong_signature_is_refused_and_nothing_executes(sim):
    wrong = Credentials(api_key=sim.credentials_for("mexc").api_key, secret="0" * 48)
    exchange = rest_client(ConnectionKey(exchange="mexc", market="spot"), SPEC.backfill, wrong,
                           SPEC.stream.endpoints(Market.SPOT), sim.endpoints("mexc", "spot"), ["BTC/USDT"])
    try:
        refused = await place(exchange, limit("bad-1", Decimal("1000")))
        assert (refused.kind, refused.code) == (OutcomeKind.REJECTED, "700002")
        assert sim.ledger("mexc", "spot").orders == {} and sim.orders.requests == 0
        asked = await query(exchange, ref("bad-1"))
        assert asked.kind is OutcomeKind.AMBIGUOUS  # a refused query says nothing about the order
    finally:
        await exchange.close()


async def _signed(http: aiohttp.ClientSession, sim: Simulator, method: str, params: dict, *, age_ms: int = 0,
                  tamper: dict | None = None) -> tuple[int, dict]:
    """A request signed here (the docs' formula), `age_ms` old; `tamper` changes parameters after signing."""
    creds = sim.credentials_for("mexc")
    query = urlencode({**params, "recvWindow": 5000, "timestamp": now_ms() - age_ms})
    signature = _hmac(creds.secret, query)
    if tamper:
        query = urlencode({**dict(parse_qsl(query)), **tamper})
    url = f"{sim.endpoints('mexc', 'spot').rest}/api/v3/order?{query}&signature={signature}"
    async with http.request(method, url, headers={"X-MEXC-APIKEY": creds.api_key}) as response:
        return response.status, await response.json()


async def test_a_request_signed_here_is_accepted_and_a_tampered_one_refused(sim):
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "50000.5",
             "newClientOrderId": "raw-1"}
    async with asyncio.timeout(10), aiohttp.ClientSession() as http:
        status, body = await _signed(http, sim, "POST", order, tamper={"quantity": "2"})
        assert (status, body["code"]) == (400, 700002)
        assert sim.ledger("mexc", "spot").orders == {}
        status, body = await _signed(http, sim, "POST", order)
        assert status == 200 and set(body) >= {"symbol", "orderId", "price", "origQty", "type", "side",
                                               "transactTime"} and "status" not in body
        assert (body["origQty"], body["price"], body["type"]) == ("0.002", "50000.5", "LIMIT")
        assert sim.ledger("mexc", "spot").orders[body["orderId"]].client_order_id == "raw-1"
        status, body = await _signed(http, sim, "POST", {**order, "newClientOrderId": "x" * 33})
        assert (status, body["code"]) == (400, 700008)
        status, body = await _signed(http, sim, "POST", {**order, "type": "FILL_OR_KILL"})
        assert (status, body["code"]) == (400, 30041)
        status, body = await _signed(http, sim, "DELETE", {"symbol": "BTCUSDT"})
        assert (status, body["code"]) == (400, 700004)


async def test_a_request_outside_its_window_when_matched_is_refused_and_not_executed(sim):
    sim.orders.faults.exec_delay = 0.3
    sim.orders.fault("mexc", "spot", "delay_exec")
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "50000",
             "newClientOrderId": "late-1"}
    async with asyncio.timeout(10), aiohttp.ClientSession() as http:
        status, body = await _signed(http, sim, "POST", order, age_ms=4900)  # inside its 5 s at receipt only
        assert (status, body["code"]) == (400, 700003)
        assert sim.ledger("mexc", "spot").orders == {}
        status, body = await _signed(http, sim, "POST", order, age_ms=5200)  # already outside at receipt
        assert (status, body["code"]) == (400, 700003)
        assert sim.ledger("mexc", "spot").orders == {}


@pytest.mark.parametrize("fault", ["lose", "drop_ack", "unknown", "disconnect"])
async def test_a_fault_is_ambiguous_and_the_query_tells_what_happened(sim, client, fault):
    for n in range(6):  # "unknown" and "disconnect" execute at random: both branches come up
        cid = f"{fault[:4]}-{n}"
        sim.orders.fault("mexc", "spot", fault)
        outcome = await place(client, limit(cid, away(sim)))
        assert outcome.kind is OutcomeKind.AMBIGUOUS, outcome
        await asyncio.sleep(0.05)  # the engine's push after a dropped answer
        executed = [o for o in sim.ledger("mexc", "spot").orders.values() if o.client_order_id == cid]
        found = await query(client, ref(cid))
        if executed:
            assert (found.kind, found.order_id, found.status) == \
                (OutcomeKind.ACCEPTED, executed[0].order_id, OrderStatus.NEW)
        else:
            assert (found.kind, found.code) == (OutcomeKind.NOT_FOUND, "-2013")
        assert fault not in ("lose",) or not executed
        assert fault not in ("drop_ack",) or executed


async def test_a_late_answer_is_still_the_order_and_a_cancel_fault_is_ambiguous(sim, client):
    sim.orders.faults.ack_delay = 0.2
    sim.orders.fault("mexc", "spot", "delay_ack")
    late = await place(client, limit("late-ack", away(sim)))
    assert late.kind is OutcomeKind.ACCEPTED and late.order_id in sim.ledger("mexc", "spot").orders
    sim.orders.fault("mexc", "spot", "drop_ack")
    dropped = await cancel(client, ref("late-ack", late.order_id))
    assert dropped.kind is OutcomeKind.AMBIGUOUS
    assert (await query(client, ref("late-ack"))).status is OrderStatus.CANCELED


async def test_gateway_failures_and_rate_limits_are_ambiguous(sim, client):
    sim.fail_rest("mexc", "spot", [502, 429])
    failed = await place(client, limit("gw-1", away(sim)))
    assert failed.kind is OutcomeKind.AMBIGUOUS
    limited = await place(client, limit("gw-2", away(sim)))
    assert limited.kind is OutcomeKind.AMBIGUOUS and limited.retry_after == 1.0
    assert sim.ledger("mexc", "spot").orders == {}  # neither reached the venue
    assert (await query(client, ref("gw-1"))).kind is OutcomeKind.NOT_FOUND


async def test_nothing_listening_is_not_sent():
    exchange = rest_client(ConnectionKey(exchange="mexc", market="spot"), SPEC.backfill,
                           Credentials(api_key="k", secret="s"), SPEC.stream.endpoints(Market.SPOT),
                           Endpoints(ws="ws://127.0.0.1:9", rest="http://127.0.0.1:9"), ["BTC/USDT"])
    try:
        outcome = await place(exchange, limit("ns-1", Decimal("1000")))
        assert outcome.kind is OutcomeKind.NOT_SENT
    finally:
        await exchange.close()


# futures: closed ---------------------------------------------------------------------------------------------------
async def test_futures_orders_are_refused_by_the_rules_without_a_request(sim):
    exchange = rest_client(ConnectionKey(exchange="mexc", market="future"), SPEC.backfill,
                           sim.credentials_for("mexc"), SPEC.stream.endpoints(Market.FUTURE),
                           sim.endpoints("mexc", "future"), ["BTC/USDT:USDT"])
    request = OrderRequest(market="future", symbol="BTC/USDT:USDT", side="buy", amount="0.01", price="60000",
                           client_order_id="f-1")
    future_ref = OrderRef(market="future", symbol="BTC/USDT:USDT", client_order_id="f-1")
    try:
        for outcome in (await place(exchange, request), await cancel(exchange, future_ref),
                        await query(exchange, future_ref)):
            assert (outcome.kind, outcome.code, outcome.message) == (OutcomeKind.REJECTED, "1002", FUTURES_CLOSED)
        assert sim.orders.requests == 0 and sim.ledger("mexc", "future").orders == {}
    finally:
        await exchange.close()


async def test_the_simulated_contract_order_endpoints_answer_1002_to_a_signed_request(sim):
    creds = sim.credentials_for("mexc")
    exchange = rest_client(ConnectionKey(exchange="mexc", market="future"), SPEC.backfill, creds,
                           SPEC.stream.endpoints(Market.FUTURE), sim.endpoints("mexc", "future"), ["BTC/USDT:USDT"])
    wrong = rest_client(ConnectionKey(exchange="mexc", market="future"), SPEC.backfill,
                        Credentials(api_key=creds.api_key, secret="0" * 48), SPEC.stream.endpoints(Market.FUTURE),
                        sim.endpoints("mexc", "future"), ["BTC/USDT:USDT"])
    submit = {"symbol": "BTC_USDT", "price": 60000, "vol": 1, "side": 1, "type": 1, "openType": 2,
              "externalOid": "f-1"}
    try:
        with pytest.raises(ccxt.InvalidOrder, match="Contract not allow place order!") as raised:
            await exchange.contractPrivatePostOrderSubmit(submit)
        assert (classify(raised.value, "place").kind, classify(raised.value, "place").code) == \
            (OutcomeKind.REJECTED, "1002")
        with pytest.raises(ccxt.InvalidOrder, match="1002"):
            await exchange.contractPrivatePostOrderCancel(["123"])
        with pytest.raises(ccxt.InvalidOrder, match="1002"):
            await exchange.contractPrivatePostPlanorderPlace({"symbol": "BTC_USDT", "vol": 1, "side": 1})
        with pytest.raises(ccxt.AuthenticationError, match="602"):  # the signature over the body is checked first
            await wrong.contractPrivatePostOrderSubmit(submit)
        assert sim.orders.requests == 0 and sim.ledger("mexc", "future").orders == {}
    finally:
        await exchange.close()
        await wrong.close()
