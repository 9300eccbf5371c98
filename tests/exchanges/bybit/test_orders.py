"""Bybit order entry: the rules (client ids, the /v5/trade frames, what each retCode means) and, on the simulator
over real sockets, place / amend / cancel on the trade socket and over REST through ccxt, reconciliation by query,
the engine's faults, duplicate orderLinkIds and refused signatures — every outcome held against the ledger."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from decimal import Decimal

import aiohttp
import pytest

from exchanges.bybit import SPEC
from exchanges.bybit.normalize import normalize
from exchanges.bybit.orders import (
    AMBIGUOUS_CODES, LINK_ID_MAX, ORDERS, VALIDITY_MS, classify, client_id, decode, encode, login, login_answer,
    request_id, trade_url,
)
from exchanges.bybit.stream import LIVE, handshake
from exchanges.simulator import Simulator
from framework.backfill import rest_client
from framework.connection import decode_frame
from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Side, Trade, now_ms
from framework.orders.model import Amend, OrderRef, OrderRequest, OutcomeKind
from framework.venue import Credentials, Endpoints

SYMBOL = {Market.SPOT: "BTC/USDT", Market.FUTURE: "BTC/USDT:USDT"}
MARKETS = [pytest.param(Market.SPOT, id="spot"), pytest.param(Market.FUTURE, id="future")]
CREDS = Credentials(api_key="key-0001", secret="secret-0001")
NOW = 1_711_001_595_207


def req(market: Market = Market.FUTURE, **fields) -> OrderRequest:
    values = {"market": market, "symbol": SYMBOL[market], "side": "buy", "amount": "0.010", "price": "65000.5",
              "order_type": "limit", "client_order_id": "mm1-abc"}
    return OrderRequest(**{**values, **fields})


def ref(market: Market = Market.FUTURE, **fields) -> OrderRef:
    return OrderRef(**{"market": market, "symbol": SYMBOL[market], "client_order_id": "mm1-abc", **fields})


# client ids -----------------------------------------------------------------------------------------------------
def test_client_id_is_the_prefix_then_the_number_in_base_36():
    n = 1_711_001_595_207_123
    coid = client_id(Market.SPOT, "mm1", n)
    prefix, _, digits = coid.partition("-")
    assert (prefix, int(digits, 36)) == ("mm1", n)
    assert client_id(Market.FUTURE, "mm1", n + 1) != coid


def test_client_id_fits_bybits_36_characters_and_charset():
    n = 10**18
    longest = "p" * (LINK_ID_MAX - 1 - len(client_id(Market.SPOT, "p", n).split("-")[1]))
    assert len(client_id(Market.SPOT, longest, n)) == LINK_ID_MAX
    with pytest.raises(ValueError, match="at most 36"):
        client_id(Market.SPOT, longest + "x", n)
    for bad in ("", "a b", "a.b", "ü", "a/b"):
        with pytest.raises(ValueError, match="letters, digits"):
            client_id(Market.SPOT, bad, 1)
    assert client_id(Market.SPOT, "A_b-9", 35) == "A_b-9-z"


def test_request_ids_differ_and_fit_36_characters():
    ids = {request_id(n) for n in range(1, 1000)}
    assert len(ids) == 999 and max(len(i) for i in ids) <= 36


# the trade socket's frames --------------------------------------------------------------------------------------
def test_trade_url_sits_beside_the_private_stream():
    assert trade_url(Market.SPOT, LIVE) == "wss://stream.bybit.com/v5/trade"
    sim = Endpoints(ws="ws://127.0.0.1:8123/bybit_future", rest="http://127.0.0.1:8123/bybit_future")
    assert trade_url(Market.FUTURE, sim) == "ws://127.0.0.1:8123/bybit_future/v5/trade"


def test_login_is_the_private_streams_auth_signed_over_get_realtime_expires():
    [frame] = login(CREDS, Market.SPOT, NOW, "r-1")
    api_key, expires, signature = frame["args"]
    assert (frame["op"], frame["reqId"], api_key) == ("auth", "r-1", "key-0001")
    assert expires > NOW
    expected = hmac.new(b"secret-0001", f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    assert signature == expected


def test_login_answer_reads_the_trade_sockets_auth_reply():
    ok = {"retCode": 0, "retMsg": "OK", "op": "auth", "connId": "cnt5leec0hvan15eukcg-2t"}  # the guideline's example
    assert login_answer(ok, Market.SPOT).kind is OutcomeKind.ACCEPTED
    refused = login_answer({"retCode": 10004, "retMsg": "Invalid sign", "op": "auth"}, Market.SPOT)
    assert (refused.kind, refused.code, refused.message) == (OutcomeKind.REJECTED, "10004", "Invalid sign")
    assert login_answer({"retCode": 0, "op": "pong"}, Market.SPOT) is None


def test_place_frame_carries_the_window_header_and_bybits_args():
    frame = encode("place", req(), CREDS, Market.FUTURE, "r-7", NOW, None)
    assert frame == {
        "reqId": "r-7", "header": {"X-BAPI-TIMESTAMP": str(NOW), "X-BAPI-RECV-WINDOW": str(VALIDITY_MS)},
        "op": "order.create",
        "args": [{"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                  "price": "65000.5", "timeInForce": "GTC", "qty": "0.010", "orderLinkId": "mm1-abc"}]}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"order_type": "ioc"}, {"orderType": "Limit", "timeInForce": "IOC"}),
    ({"order_type": "post_only"}, {"orderType": "Limit", "timeInForce": "PostOnly"}),
    ({"order_type": "market", "price": None}, {"orderType": "Market"}),
    ({"reduce_only": True}, {"reduceOnly": True}),
    ({"symbol": "BTC/USDC:USDC", "amount": "1E-3"}, {"symbol": "BTCPERP", "qty": "0.001"}),
])
def test_linear_order_args(fields, expected):
    [args] = encode("place", req(**fields), CREDS, Market.FUTURE, "r", NOW, None)["args"]
    assert expected.items() <= args.items()
    if fields.get("order_type") == "market":
        assert "price" not in args and "timeInForce" not in args


def test_spot_market_orders_are_in_the_base_coin():
    [args] = encode("place", req(Market.SPOT, order_type="market", price=None), CREDS, Market.SPOT, "r", NOW,
                    None)["args"]
    assert (args["category"], args["orderType"], args["marketUnit"], args["qty"]) == ("spot", "Market", "baseCoin",
                                                                                      "0.010")


@pytest.mark.parametrize(("side", "trigger", "direction"), [
    ("sell", "take_profit", 1), ("sell", "stop_loss", 2), ("buy", "take_profit", 2), ("buy", "stop_loss", 1)])
def test_linear_tp_sl_is_a_reduce_only_conditional_market_order(side, trigger, direction):
    request = req(side=side, price=None, order_type="market", trigger_price="64000", trigger=trigger,
                  reduce_only=True)
    [args] = encode("place", request, CREDS, Market.FUTURE, "r", NOW, None)["args"]
    assert {"orderType": "Market", "triggerPrice": "64000", "triggerDirection": direction, "reduceOnly": True,
            "closeOnTrigger": True}.items() <= args.items()


def test_spot_tp_sl_is_a_tpsl_order():
    request = req(Market.SPOT, side="sell", price=None, order_type="market", trigger_price="70000",
                  trigger="take_profit", reduce_only=True)
    [args] = encode("place", request, CREDS, Market.SPOT, "r", NOW, None)["args"]
    assert {"orderType": "Market", "triggerPrice": "70000", "orderFilter": "tpslOrder",
            "marketUnit": "baseCoin"}.items() <= args.items()
    assert "reduceOnly" not in args and "triggerDirection" not in args


def test_amend_and_cancel_name_the_order_by_id_when_known():
    amend = encode("amend", Amend(ref=ref(), amount="0.020", price="64000"), CREDS, Market.FUTURE, "r", NOW, None)
    assert (amend["op"], amend["args"]) == ("order.amend", [{"category": "linear", "symbol": "BTCUSDT",
                                                             "orderLinkId": "mm1-abc", "qty": "0.020",
                                                             "price": "64000"}])
    cancel = encode("cancel", ref(Market.SPOT, order_id="1834"), CREDS, Market.SPOT, "r", NOW, None)
    assert cancel["args"] == [{"category": "spot", "symbol": "BTCUSDT", "orderId": "1834", "orderFilter": "Order"}]
    conditional = encode("cancel", ref(Market.SPOT, conditional=True), CREDS, Market.SPOT, "r", NOW, None)
    assert conditional["args"][0]["orderFilter"] == "tpslOrder"


@pytest.mark.parametrize(("op", "subject", "match"), [
    ("place", req(price=None), "positive price"),
    ("place", req(Market.SPOT, reduce_only=True), "no reduce-only"),
    ("place", req(symbol="BTC/USD:BTC"), "inverse"),
    ("place", req(client_order_id="has space"), "not a Bybit orderLinkId"),
    ("place", req(trigger_price="1", trigger="stop"), "take_profit"),
    ("amend", Amend(ref=ref()), "new amount or a new price"),
    ("query", ref(), "REST"),
])
def test_requests_bybit_cannot_take_are_value_errors(op, subject, match):
    with pytest.raises(ValueError, match=match):
        encode(op, subject, CREDS, Market.FUTURE, "r", NOW, None)


# what the answers mean ------------------------------------------------------------------------------------------
GUIDE_ACK = {  # docs/v5/websocket/trade/guideline.mdx "Response Example"
    "reqId": "test-005", "retCode": 0, "retMsg": "OK", "op": "order.create",
    "data": {"orderId": "a4c1718e-fe53-4659-a118-1f6ecce04ad9", "orderLinkId": ""}, "retExtInfo": {},
    "header": {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9", "X-Bapi-Limit-Reset-Timestamp": "1711001595208",
               "Traceid": "38b7977b430f9bd228f4b19724794dfd", "Timenow": "1711001595209"},
    "connId": "cnt5leec0hvan15eukcg-2v"}
CCXT_REFUSAL = {  # ccxt pro/bybit.py handle_error_message's sample
    "reqId": "1", "retCode": 170131, "retMsg": "Insufficient balance.", "op": "order.create", "data": {},
    "header": {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "19", "X-Bapi-Limit-Reset-Timestamp": "1714236608944",
               "Traceid": "3d7168a137bf32a947b7e5e6a575ac7f", "Timenow": "1714236608946"},
    "connId": "cojifin88smerbj9t560-406"}


def answer(code: int, op: str = "order.create", req_id: str | None = "r-9", msg: str = "x", **extra) -> dict:
    frame = {"retCode": code, "retMsg": msg, "op": op, "data": {}, "retExtInfo": {}, "connId": "c"} | extra
    return frame if req_id is None else {"reqId": req_id, **frame}


def test_an_ack_is_acked_with_the_order_id_not_a_placement():
    req_id, outcome = decode(GUIDE_ACK, Market.FUTURE)
    assert (req_id, outcome.kind, outcome.status) == ("test-005", OutcomeKind.ACKED, None)
    assert outcome.order_id == "a4c1718e-fe53-4659-a118-1f6ecce04ad9"


def test_a_business_refusal_is_final():
    req_id, outcome = decode(CCXT_REFUSAL, Market.SPOT)
    assert (req_id, outcome.kind, outcome.code, outcome.message) == ("1", OutcomeKind.REJECTED, "170131",
                                                                     "Insufficient balance.")


@pytest.mark.parametrize("code", sorted(AMBIGUOUS_CODES))
def test_status_unknown_codes_are_ambiguous(code):
    for op in ("order.create", "order.amend", "order.cancel"):
        assert decode(answer(code, op), Market.FUTURE)[1].kind is OutcomeKind.AMBIGUOUS


@pytest.mark.parametrize("code", [110072, 170141, 10014])
def test_a_duplicate_order_link_id_means_the_order_exists_ambiguous_until_queried(code):
    outcome = decode(answer(code), Market.FUTURE)[1]
    assert (outcome.kind, outcome.code) == (OutcomeKind.AMBIGUOUS, str(code))


@pytest.mark.parametrize("code", [110001, 170213, 170143])
def test_order_does_not_exist_is_not_found_for_cancel_and_amend(code):
    for op in ("order.cancel", "order.amend"):
        assert decode(answer(code, op), Market.SPOT)[1].kind is OutcomeKind.NOT_FOUND
    assert decode(answer(code, "order.create"), Market.SPOT)[1].kind is OutcomeKind.REJECTED


@pytest.mark.parametrize("code", [10001, 10002, 10003, 10004, 10005, 10404, 110003, 110007, 110008, 110010, 110017,
                                  170131, 170139, 170142, 170218, 30209])
def test_every_other_code_is_a_final_rejection(code):
    assert decode(answer(code), Market.FUTURE)[1].kind is OutcomeKind.REJECTED


def test_an_error_naming_no_request_is_ambiguous_for_every_request_in_flight():
    req_id, outcome = decode(answer(10005, req_id=None), Market.SPOT)
    assert (req_id, outcome.kind, outcome.code) == (None, OutcomeKind.AMBIGUOUS, "10005")
    legacy = {"success": False, "ret_msg": "error:invalid op", "conn_id": "c", "request": {"op": "", "args": None}}
    assert decode(legacy, Market.SPOT)[0] is None and decode(legacy, Market.SPOT)[1].kind is OutcomeKind.AMBIGUOUS


def test_pongs_logins_and_stream_frames_are_not_answers():
    pong = {"retCode": 0, "retMsg": "OK", "op": "pong", "data": ["1711002002529"], "connId": "c"}
    for frame in (pong, {"retCode": 0, "op": "auth"}, {"topic": "order", "data": []}, "pong", None):
        assert decode(frame, Market.SPOT) is None


def test_a_rate_limit_answer_says_when_to_retry():
    header = {"X-Bapi-Limit-Reset-Timestamp": "1711001596207", "Timenow": "1711001595707"}
    outcome = decode(answer(10006, header=header), Market.FUTURE)[1]
    assert (outcome.kind, outcome.retry_after) == (OutcomeKind.AMBIGUOUS, 0.5)
    assert classify("not a code", "?").kind is OutcomeKind.AMBIGUOUS


def test_spec_exports_the_rules():
    rules = SPEC.orders
    assert rules is ORDERS and rules.markets == {Market.SPOT, Market.FUTURE}
    assert rules.ws.ops == {"place", "amend", "cancel"} and rules.ws.validity_ms == rules.rest.validity_ms == 5000
    assert rules.conditional == {Market.SPOT, Market.FUTURE} and not rules.renames_on_cancel


# on the simulator ------------------------------------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bybit"], seed=5) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def recv(ws, timeout: float = 3.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


class Trader:
    """A raw socket on the simulator's /v5/trade speaking through the venue rules: encode out, decode in."""

    def __init__(self, ws, market: Market, credentials: Credentials) -> None:
        self.ws, self.market, self.credentials, self.n = ws, market, credentials, 0

    async def login(self):
        self.n += 1
        for frame in login(self.credentials, self.market, now_ms(), request_id(self.n)):
            await self.ws.send_json(frame)
        return login_answer(await recv(self.ws), self.market)

    async def send(self, op: str, subject, now: int | None = None) -> str:
        self.n += 1
        req_id = request_id(self.n)
        await self.ws.send_json(encode(op, subject, self.credentials, self.market, req_id,
                                       now_ms() if now is None else now, None))
        return req_id

    async def answer(self, timeout: float = 3.0):
        while True:
            decoded = decode(await recv(self.ws, timeout), self.market)
            if decoded is not None:
                return decoded

    async def request(self, op: str, subject, now: int | None = None):
        req_id = await self.send(op, subject, now)
        answered, outcome = await self.answer()
        assert answered == req_id
        return outcome


async def trader(http, sim: Simulator, market: Market, credentials: Credentials | None = None,
                 logged_in: bool = True) -> Trader:
    url = ORDERS.ws.url(market, sim.endpoints("bybit", market))
    ws = await http.ws_connect(url)
    t = Trader(ws, market, credentials or sim.credentials_for("bybit"))
    if logged_in:
        assert (await t.login()).kind is OutcomeKind.ACCEPTED
    return t


async def private_stream(http, sim: Simulator, market: Market):
    """The private stream as the connector opens it (its handshake; three acks read)."""
    ws = await http.ws_connect(sim.endpoints("bybit", market).ws)
    for frame in handshake(sim.credentials_for("bybit"), market, now_ms()):
        await ws.send_json(frame)
    for _ in range(3):
        assert (await recv(ws))["success"] is True
    return ws


async def events_until(ws, market: Market, done) -> list:
    """Normalized stream events until `done(events)` holds."""
    events: list = []
    async with asyncio.timeout(5):
        while not done(events):
            events += normalize(await recv(ws), market)
    return events


def updates(events, coid: str) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate) and e.client_order_id == coid]


def placed(sim: Simulator, market: Market, coid: str):
    return [o for o in sim.ledger("bybit", market).orders.values() if o.client_order_id == coid]


def far_price(sim: Simulator, market: Market, side: str) -> Decimal:
    """A limit price that rests: well below the bid for a buy, above the ask for a sell."""
    book = sim.market("bybit", market, SYMBOL[market])
    return (book.best_bid()[0] * Decimal("0.9") if side == "buy" else book.best_ask()[0] * Decimal("1.1")).quantize(
        Decimal("0.1"))


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_place_amend_cancel_reach_the_ledger_and_the_private_stream(sim, http, market):
    async with asyncio.timeout(15):
        stream = await private_stream(http, sim, market)
        t = await trader(http, sim, market)
        coid = client_id(market, "mm1", now_ms() * 1000)
        price = far_price(sim, market, "buy")
        outcome = await t.request("place", req(market, client_order_id=coid, price=price))
        [order] = placed(sim, market, coid)
        assert (outcome.kind, outcome.order_id) == (OutcomeKind.ACKED, order.order_id)
        assert (order.side, order.amount, order.price, order.status) == (Side.BUY, Decimal("0.010"), price,
                                                                         OrderStatus.NEW)
        [new] = updates(await events_until(stream, market, lambda e: updates(e, coid)), coid)
        assert (new.order_id, new.status, new.amount, new.price) == (order.order_id, OrderStatus.NEW,
                                                                      Decimal("0.010"), price)

        lower = price - 1
        amended = await t.request("amend", Amend(ref=ref(market, client_order_id=coid), amount="0.025", price=lower))
        assert (amended.kind, order.amount, order.price) == (OutcomeKind.ACKED, Decimal("0.025"), lower)
        [change] = updates(await events_until(stream, market, lambda e: updates(e, coid)), coid)
        assert (change.amount, change.price, change.status) == (Decimal("0.025"), lower, OrderStatus.NEW)

        cancelled = await t.request("cancel", ref(market, client_order_id=coid, order_id=order.order_id))
        assert (cancelled.kind, order.status) == (OutcomeKind.ACKED, OrderStatus.CANCELED)
        [gone] = updates(await events_until(stream, market, lambda e: updates(e, coid)), coid)
        assert (gone.status, gone.status_raw) == (OrderStatus.CANCELED, "Cancelled")

        again = await t.request("cancel", ref(market, client_order_id=coid))
        assert again.kind is OutcomeKind.REJECTED and again.code == ("170142" if market is Market.SPOT else "110008")
        missing = await t.request("cancel", ref(market, client_order_id="mm1-nosuch"))
        assert (missing.kind, missing.code) == (OutcomeKind.NOT_FOUND,
                                                "170213" if market is Market.SPOT else "110001")


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_market_order_fills_in_base_units_and_its_fills_carry_the_client_id(sim, http, market):
    async with asyncio.timeout(15):
        stream = await private_stream(http, sim, market)
        t = await trader(http, sim, market)
        coid = client_id(market, "mm1", now_ms() * 1000 + 1)
        outcome = await t.request("place", req(market, client_order_id=coid, order_type="market", price=None,
                                               amount="0.004"))
        [order] = placed(sim, market, coid)
        assert (outcome.kind, order.status, order.filled) == (OutcomeKind.ACKED, OrderStatus.FILLED,
                                                              Decimal("0.004"))
        events = await events_until(stream, market, lambda e: any(
            u.status is OrderStatus.FILLED for u in updates(e, coid)))
        trades = [e for e in events if isinstance(e, Trade)]
        assert [(t.client_order_id, t.order_id, t.amount) for t in trades] == [(coid, order.order_id,
                                                                               Decimal("0.004"))]
        assert updates(events, coid)[-1].amount == Decimal("0.004")  # spot: baseCoin, read as the base amount


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_duplicate_order_link_id_is_refused_and_read_as_ambiguous(sim, http, market):
    async with asyncio.timeout(10):
        t = await trader(http, sim, market)
        request = req(market, client_order_id="mm1-dup", price=far_price(sim, market, "buy"))
        assert (await t.request("place", request)).kind is OutcomeKind.ACKED
        (await t.request("cancel", ref(market, client_order_id="mm1-dup")))
        second = await t.request("place", request)  # even after the first is cancelled: always unique
        assert (second.kind, second.code) == (OutcomeKind.AMBIGUOUS, "170141" if market is Market.SPOT else "110072")
        assert len(placed(sim, market, "mm1-dup")) == 1


async def test_ws_wrong_signature_is_refused_and_orders_after_it_execute_nothing(sim, http):
    async with asyncio.timeout(10):
        creds = sim.credentials_for("bybit")
        t = await trader(http, sim, Market.SPOT, Credentials(api_key=creds.api_key, secret="wrong"),
                         logged_in=False)
        refused = await t.login()
        assert (refused.kind, refused.code) == (OutcomeKind.REJECTED, "10004")
        await t.send("place", req(Market.SPOT, client_order_id="mm1-nope"))
        req_id, outcome = await t.answer()  # Bybit names no request in this refusal
        assert (req_id, outcome.kind) == (None, OutcomeKind.AMBIGUOUS)
        assert sim.ledger("bybit", "spot").orders == {}


async def test_ws_refused_login_fault_is_a_rejection(sim, http):
    async with asyncio.timeout(10):
        sim.orders.refuse_logins("bybit", "future")
        t = await trader(http, sim, Market.FUTURE, logged_in=False)
        assert (await t.login()).kind is OutcomeKind.REJECTED
        assert (await t.login()).kind is OutcomeKind.ACCEPTED  # the next one goes through


async def test_ws_a_request_outside_its_window_is_refused_and_not_executed(sim, http):
    async with asyncio.timeout(10):
        t = await trader(http, sim, Market.FUTURE)
        stale = await t.request("place", req(client_order_id="mm1-stale"), now=now_ms() - VALIDITY_MS - 1000)
        assert (stale.kind, stale.code) == (OutcomeKind.REJECTED, "10002")
        sim.orders.faults.exec_delay = 0.3
        sim.orders.fault("bybit", "future", "delay_exec")  # reaches the engine after its window
        late = await t.request("place", req(client_order_id="mm1-late", price=far_price(sim, Market.FUTURE, "buy")),
                               now=now_ms() - VALIDITY_MS + 100)
        assert (late.kind, late.code) == (OutcomeKind.REJECTED, "10002")
        assert sim.ledger("bybit", "future").orders == {}


async def test_ws_duplicate_request_id_is_ambiguous(sim, http):
    async with asyncio.timeout(10):
        t = await trader(http, sim, Market.FUTURE)
        frame = encode("place", req(client_order_id="mm1-r1", price=far_price(sim, Market.FUTURE, "buy")),
                       t.credentials, Market.FUTURE, "same-id", now_ms(), None)
        await t.ws.send_json(frame)
        assert (await t.answer())[1].kind is OutcomeKind.ACKED
        await t.ws.send_json({**frame, "args": [{**frame["args"][0], "orderLinkId": "mm1-r2"}]})
        req_id, outcome = await t.answer()
        assert (req_id, outcome.kind, outcome.code) == ("same-id", OutcomeKind.AMBIGUOUS, "20006")
        assert placed(sim, Market.FUTURE, "mm1-r2") == []


def client(sim: Simulator, market: Market, credentials: Credentials | None = None):
    key = ConnectionKey(exchange="bybit", market=market)
    return rest_client(key, SPEC.backfill, credentials or sim.credentials_for("bybit"), LIVE,
                       sim.endpoints("bybit", market), [SYMBOL[market]])


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_faults_are_read_as_the_engine_meant_and_a_query_tells_the_truth(sim, http, market):
    rest = client(sim, market)
    try:
        async with asyncio.timeout(20):
            t = await trader(http, sim, market)
            price = far_price(sim, market, "buy")
            for n in range(4):  # "status unknown": the engine executed it, or not (a coin flip each)
                coid = f"mm1-u{n}"
                sim.orders.fault("bybit", market, "unknown")
                unknown = await t.request("place", req(market, client_order_id=coid, price=price))
                assert (unknown.kind, unknown.code) == (OutcomeKind.AMBIGUOUS,
                                                        "170007" if market is Market.SPOT else "10000")
                found = await ORDERS.rest.query(rest, ref(market, client_order_id=coid))
                executed = placed(sim, market, coid)
                if executed:
                    assert (found.kind, found.order_id, found.status, found.amount, found.price) == (
                        OutcomeKind.ACCEPTED, executed[0].order_id, OrderStatus.NEW, Decimal("0.010"), price)
                else:
                    assert found.kind is OutcomeKind.NOT_FOUND

            sim.orders.fault("bybit", market, "drop_ack")
            await t.send("place", req(market, client_order_id="mm1-d", price=price))
            with pytest.raises(TimeoutError):
                await t.answer(timeout=0.5)
            assert (await ORDERS.rest.query(rest, ref(market, client_order_id="mm1-d"))).kind is OutcomeKind.ACCEPTED

            sim.orders.fault("bybit", market, "lose")
            await t.send("place", req(market, client_order_id="mm1-l", price=price))
            with pytest.raises(TimeoutError):
                await t.answer(timeout=0.5)
            assert (await ORDERS.rest.query(rest, ref(market, client_order_id="mm1-l"))).kind is OutcomeKind.NOT_FOUND
            assert placed(sim, market, "mm1-l") == []

            sim.orders.fault("bybit", market, "disconnect")
            await t.send("place", req(market, client_order_id="mm1-x", price=price))
            msg = await asyncio.wait_for(t.ws.receive(), 3)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            truth = await ORDERS.rest.query(rest, ref(market, client_order_id="mm1-x"))
            assert truth.kind is (OutcomeKind.ACCEPTED if placed(sim, market, "mm1-x") else OutcomeKind.NOT_FOUND)
    finally:
        await rest.close()


async def test_ws_linear_take_profit_waits_untriggered_then_fills_reduce_only(sim, http):
    market = Market.FUTURE
    rest = client(sim, market)
    try:
        async with asyncio.timeout(15):
            t = await trader(http, sim, market)
            book = sim.market("bybit", market, SYMBOL[market])
            above = (book.best_ask()[0] * Decimal("1.5")).quantize(Decimal("0.1"))
            request = req(side="sell", order_type="market", price=None, trigger_price=above, trigger="take_profit",
                          reduce_only=True, client_order_id="mm1-tp")
            assert (await t.request("place", request)).kind is OutcomeKind.ACKED
            [order] = placed(sim, market, "mm1-tp")
            assert (order.trigger_price, order.trigger, order.reduce_only) == (above, "take_profit", True)
            waiting = await ORDERS.rest.query(rest, ref(client_order_id="mm1-tp", conditional=True))
            assert (waiting.kind, waiting.status) == (OutcomeKind.ACCEPTED, OrderStatus.NEW)
            raw = await rest.privateGetV5OrderRealtime({"category": "linear", "symbol": "BTCUSDT",
                                                        "orderLinkId": "mm1-tp"})
            row = raw["result"]["list"][0]
            assert (row["orderStatus"], row["triggerPrice"], row["triggerDirection"], row["reduceOnly"]) == (
                "Untriggered", str(above), 1, True)
            cancelled = await t.request("cancel", ref(client_order_id="mm1-tp", conditional=True))
            assert (cancelled.kind, order.status) == (OutcomeKind.ACKED, OrderStatus.CANCELED)
            raw = await rest.privateGetV5OrderHistory({"category": "linear", "orderLinkId": "mm1-tp"})
            assert raw["result"]["list"][0]["orderStatus"] == "Deactivated"

            below = (book.best_bid()[0] * Decimal("0.5")).quantize(Decimal("0.1"))  # reached at once: it rose past
            hit = req(side="sell", order_type="market", price=None, trigger_price=below, trigger="take_profit",
                      reduce_only=True, client_order_id="mm1-tp2")
            assert (await t.request("place", hit)).kind is OutcomeKind.ACKED
            [fired] = placed(sim, market, "mm1-tp2")
            while fired.status is not OrderStatus.FILLED:
                await asyncio.sleep(0.05)
            assert fired.filled == Decimal("0.010")
    finally:
        await rest.close()


# REST through ccxt ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
async def test_rest_place_query_amend_cancel(sim, market):
    rest = client(sim, market)
    try:
        async with asyncio.timeout(15):
            price = far_price(sim, market, "sell")
            request = req(market, side="sell", price=price, order_type="post_only", client_order_id="mm1-r")
            outcome = await ORDERS.rest.place(rest, request, None)
            [order] = placed(sim, market, "mm1-r")
            assert (outcome.kind, outcome.order_id, order.time_in_force) == (OutcomeKind.ACKED, order.order_id,
                                                                             "post_only")
            state = await ORDERS.rest.query(rest, ref(market, client_order_id="mm1-r"))
            assert (state.kind, state.order_id, state.status, state.amount, state.price, state.filled) == (
                OutcomeKind.ACCEPTED, order.order_id, OrderStatus.NEW, Decimal("0.010"), price, Decimal(0))

            amended = await ORDERS.rest.amend(rest, Amend(ref=ref(market, order_id=order.order_id), amount="0.030"))
            assert (amended.kind, order.amount, order.price) == (OutcomeKind.ACKED, Decimal("0.030"), price)
            await sim.fill_order("bybit", market, order, Decimal("0.010"))
            state = await ORDERS.rest.query(rest, ref(market, order_id=order.order_id))
            assert (state.status, state.filled, state.amount, state.average) == (
                OrderStatus.PARTIALLY_FILLED, Decimal("0.010"), Decimal("0.030"), price)

            assert (await ORDERS.rest.cancel(rest, ref(market, client_order_id="mm1-r"))).kind is OutcomeKind.ACKED
            assert order.status is OrderStatus.CANCELED
            state = await ORDERS.rest.query(rest, ref(market, client_order_id="mm1-r"))
            assert (state.status, state.filled) == (OrderStatus.CANCELED, Decimal("0.010"))
            again = await ORDERS.rest.cancel(rest, ref(market, client_order_id="mm1-r"))
            assert again.kind is OutcomeKind.REJECTED
            nowhere = ref(market, client_order_id="mm1-none")
            assert (await ORDERS.rest.cancel(rest, nowhere)).kind is OutcomeKind.NOT_FOUND
            assert (await ORDERS.rest.query(rest, nowhere)).kind is OutcomeKind.NOT_FOUND
            crossing = req(market, side="sell", price=far_price(sim, market, "buy"), order_type="post_only",
                           client_order_id="mm1-cross")
            assert (await ORDERS.rest.place(rest, crossing, None)).kind is OutcomeKind.REJECTED
            assert placed(sim, market, "mm1-cross") == []
    finally:
        await rest.close()


@pytest.mark.parametrize("market", MARKETS)
async def test_rest_retry_of_a_placed_order_finds_it_instead_of_placing_twice(sim, market):
    rest = client(sim, market)
    try:
        async with asyncio.timeout(10):
            request = req(market, client_order_id="mm1-twice", price=far_price(sim, market, "buy"))
            first = await ORDERS.rest.place(rest, request, None)
            retry = await ORDERS.rest.place(rest, request, None)  # 110072 / 170141: it exists, here it is
            [order] = placed(sim, market, "mm1-twice")
            assert (first.kind, retry.kind, retry.order_id, retry.status) == (
                OutcomeKind.ACKED, OutcomeKind.ACCEPTED, order.order_id, OrderStatus.NEW)
    finally:
        await rest.close()


async def test_rest_query_falls_back_to_history_after_a_bybit_restart(sim):
    rest = client(sim, Market.SPOT)
    try:
        async with asyncio.timeout(10):
            request = req(Market.SPOT, order_type="market", price=None, client_order_id="mm1-h")
            assert (await ORDERS.rest.place(rest, request, None)).kind is OutcomeKind.ACKED
            assert sim.venue("bybit").forget_closed_orders(sim, "spot") == 1
            raw = await rest.privateGetV5OrderRealtime({"category": "spot", "orderLinkId": "mm1-h"})
            assert raw["result"]["list"] == []
            state = await ORDERS.rest.query(rest, ref(Market.SPOT, client_order_id="mm1-h"))
            assert (state.kind, state.status, state.filled, state.amount) == (
                OutcomeKind.ACCEPTED, OrderStatus.FILLED, Decimal("0.010"), Decimal("0.010"))
    finally:
        await rest.close()


async def test_rest_faults_and_a_wrong_signature(sim):
    market = Market.FUTURE
    rest = client(sim, market)
    wrong = client(sim, market, Credentials(api_key=sim.credentials_for("bybit").api_key, secret="wrong"))
    try:
        async with asyncio.timeout(15):
            price = far_price(sim, market, "buy")
            refused = await ORDERS.rest.place(wrong, req(client_order_id="mm1-w", price=price), None)
            assert (refused.kind, refused.code) == (OutcomeKind.REJECTED, "10004")
            assert placed(sim, market, "mm1-w") == []
            asked = await ORDERS.rest.query(wrong, ref(client_order_id="mm1-w"))  # a refused query says nothing
            assert (asked.kind, asked.code) == (OutcomeKind.AMBIGUOUS, "10004")
            assert "origin_string" in asked.message and sim.credentials_for("bybit").api_key not in asked.message

            sim.fail_rest("bybit", market, [502])
            assert (await ORDERS.rest.place(rest, req(client_order_id="mm1-5", price=price), None)).kind is \
                OutcomeKind.AMBIGUOUS
            assert placed(sim, market, "mm1-5") == []

            sim.orders.fault("bybit", market, "unknown")
            unknown = await ORDERS.rest.place(rest, req(client_order_id="mm1-u", price=price), None)
            assert (unknown.kind, unknown.code) == (OutcomeKind.AMBIGUOUS, "10000")

            sim.orders.fault("bybit", market, "disconnect")
            cut = await ORDERS.rest.place(rest, req(client_order_id="mm1-c", price=price), None)
            assert cut.kind is OutcomeKind.AMBIGUOUS
            truth = await ORDERS.rest.query(rest, ref(client_order_id="mm1-c"))
            assert truth.kind is (OutcomeKind.ACCEPTED if placed(sim, market, "mm1-c") else OutcomeKind.NOT_FOUND)
    finally:
        await rest.close()
        await wrong.close()


async def test_rest_spot_take_profit_is_a_tpsl_order_untriggered(sim):
    rest = client(sim, Market.SPOT)
    try:
        async with asyncio.timeout(10):
            book = sim.market("bybit", "spot", "BTC/USDT")
            above = (book.best_bid()[0] * Decimal("1.5")).quantize(Decimal("0.01"))
            request = req(Market.SPOT, side="sell", order_type="market", price=None, trigger_price=above,
                          trigger="take_profit", client_order_id="mm1-stp")
            assert (await ORDERS.rest.place(rest, request, None)).kind is OutcomeKind.ACKED
            [order] = placed(sim, Market.SPOT, "mm1-stp")
            assert (order.trigger, order.trigger_price) == ("take_profit", above)
            account = sim.account("bybit", "spot")
            before = (account.balance("BTC").locked, account.balance("BTC").free)
            raw = await rest.privateGetV5OrderRealtime({"category": "spot", "orderLinkId": "mm1-stp"})
            row = raw["result"]["list"][0]
            assert (row["orderStatus"], row["stopOrderType"], row["marketUnit"]) == ("Untriggered", "tpslOrder",
                                                                                     "baseCoin")
            cancel = await ORDERS.rest.cancel(rest, ref(Market.SPOT, client_order_id="mm1-stp", conditional=True))
            assert (cancel.kind, order.status) == (OutcomeKind.ACKED, OrderStatus.CANCELED)
            # it locked nothing while untriggered, and gave nothing back when cancelled
            assert (account.balance("BTC").locked, account.balance("BTC").free) == before
            raw = await rest.privateGetV5OrderRealtime({"category": "spot", "orderLinkId": "mm1-stp"})
            assert raw["result"]["list"][0]["orderStatus"] == "Deactivated"
    finally:
        await rest.close()


@pytest.mark.parametrize("market", MARKETS)
async def test_ws_ioc_rest_expires_on_the_stream_and_in_a_query(sim, http, market):
    """Bybit writes an IOC order's unfilled rest as Cancelled (timeInForce IOC): read as EXPIRED, as the ledger has
    it, by the stream and by the REST query alike."""
    rest = client(sim, market)
    try:
        async with asyncio.timeout(15):
            stream = await private_stream(http, sim, market)
            t = await trader(http, sim, market)
            request = req(market, order_type="ioc", price=far_price(sim, market, "buy"), client_order_id="mm1-ioc")
            assert (await t.request("place", request)).kind is OutcomeKind.ACKED
            [order] = placed(sim, market, "mm1-ioc")
            assert order.status is OrderStatus.EXPIRED
            events = await events_until(stream, market, lambda e: any(u.status.is_terminal
                                                                      for u in updates(e, "mm1-ioc")))
            last = updates(events, "mm1-ioc")[-1]
            assert (last.status, last.status_raw, last.raw["timeInForce"]) == (OrderStatus.EXPIRED, "Cancelled",
                                                                               "IOC")
            state = await ORDERS.rest.query(rest, ref(market, client_order_id="mm1-ioc"))
            assert (state.kind, state.status, state.filled) == (OutcomeKind.ACCEPTED, OrderStatus.EXPIRED, Decimal(0))
    finally:
        await rest.close()
