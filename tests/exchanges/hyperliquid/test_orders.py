"""Hyperliquid order entry: cloids, the signed-once actions, every answer's meaning; then on the simulator over a
real socket (`post` beside the private subscriptions) and over REST through ccxt: place, amend, cancel, query,
resends of the same bytes, expiry, a wrong signature and the engine's faults, held to the simulator's ledger."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import ccxt
import coincurve
import pytest
from Crypto.Hash import keccak

from exchanges.hyperliquid import SPEC
from exchanges.hyperliquid.normalize import normalize
from exchanges.hyperliquid.orders import (
    ORDERS,
    VALIDITY_MS,
    NonceAllocator,
    client_id,
    decode,
    encode,
    order_wire,
    prepare,
    rest_amend,
    rest_cancel,
    rest_place,
    rest_query,
    wire_number,
)
from exchanges.hyperliquid.stream import HyperliquidStream, handshake
from exchanges.simulator import Simulator
from exchanges.simulator.venues.hyperliquid import (
    HyperliquidSim,
    _address_of,
    _recovered_signer,
    _Refused,
)
from framework.backfill import rest_client
from framework.connection import decode_frame
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, connection_key, now_ms
from framework.orders.model import Amend, OrderRef, OrderRequest, OutcomeKind, Prepared
from framework.venue import Credentials, Endpoints
from tests.exchanges.conftest import load_auth_vectors

EXCHANGE, FUTURE = "hyperliquid", Market.FUTURE
BTC = "BTC/USDC:USDC"
PREFIX = "0x1a2b"
KEY = "0x" + "0123456789" * 6 + "0123"  # the SDK tests' private key
VECTORS = {v["id"]: v for v in load_auth_vectors("hyperliquid")}


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def address(secret: str) -> str:
    public = coincurve.PrivateKey(bytes.fromhex(secret[2:])).public_key.format(compressed=False)
    return "0x" + keccak256(public[1:])[-20:].hex()


def order(n: int = 1, *, side: str = "buy", amount: str = "0.01", price: str | None = "60000", kind: str = "limit",
          **extra) -> OrderRequest:
    return OrderRequest(market=FUTURE, symbol=BTC, side=side, amount=amount, price=price, order_type=kind,
                        client_order_id=client_id(FUTURE, PREFIX, n), **extra)


def ref(request: OrderRequest, **extra) -> OrderRef:
    return OrderRef(market=FUTURE, symbol=request.symbol, client_order_id=request.client_order_id, **extra)


def post(payload: dict, req_id: int = 7, kind: str = "action") -> dict:
    return {"channel": "post", "data": {"id": req_id, "response": {"type": kind, "payload": payload}}}


def statuses(*entries, kind: str = "order") -> dict:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": list(entries)}}}


# client ids ---------------------------------------------------------------------------------------------------------
def test_client_id_is_a_cloid_that_starts_with_the_prefix_and_numbers_the_order_in_hex():
    cloid = client_id(FUTURE, PREFIX, 1718000000123456)
    assert cloid == "0x1a2b00000000000000061a830bbb4240" and len(cloid) == 34
    assert cloid.startswith(PREFIX) and int(cloid[6:], 16) == 1718000000123456
    assert client_id(FUTURE, "0x", 5) == "0x" + "0" * 31 + "5"
    assert len({client_id(FUTURE, PREFIX, n) for n in range(1000)}) == 1000


def test_client_id_takes_a_prefix_of_16_hex_digits_and_any_64_bit_number():
    longest = "0x" + "f" * 16
    assert client_id(FUTURE, longest, 2**64 - 1) == longest + "f" * 16
    with pytest.raises(ValueError, match="does not fit"):
        client_id(FUTURE, longest, 2**64)
    with pytest.raises(ValueError, match="does not fit"):
        client_id(FUTURE, PREFIX, -1)


@pytest.mark.parametrize("prefix, reason", [
    ("scalper", "0x and lowercase hex"),  # a strategy name: not a cloid
    ("0x1A2B", "0x and lowercase hex"),  # the venue echoes lowercase: routing would miss
    ("0x12g4", "0x and lowercase hex"),
    ("1a2b", "0x and lowercase hex"),
    ("0x" + "a" * 17, "too long"),
])
def test_client_id_refuses_a_prefix_that_cannot_make_a_cloid(prefix, reason):
    with pytest.raises(ValueError, match=reason):
        client_id(FUTURE, prefix, 1)


# the wire and the signature -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, wire", [("65000.0", "65000"), ("0.0100", "0.01"), ("1e-8", "0.00000001"),
                                        ("-0.0", "0"), ("1670.1", "1670.1")])
def test_wire_number_is_the_sdks_float_to_wire(text, wire):
    assert wire_number(Decimal(text)) == wire


def test_wire_number_refuses_more_than_8_decimals():
    with pytest.raises(ValueError, match="8 decimals"):
        wire_number(Decimal("0.000000001"))


def test_order_wire_limit_ioc_post_only_in_the_sdks_key_order():
    wire = order_wire(order(3, price="65000.50"))
    assert list(wire) == ["a", "b", "p", "s", "r", "t", "c"]
    assert wire == {"a": 0, "b": True, "p": "65000.5", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}},
                    "c": client_id(FUTURE, PREFIX, 3)}
    assert order_wire(order(kind="ioc", side="sell"))["t"] == {"limit": {"tif": "Ioc"}}
    assert order_wire(order(kind="post_only"))["t"] == {"limit": {"tif": "Alo"}}


def test_a_market_order_is_an_ioc_limit_5_percent_through_its_reference_price():
    buy, sell = order_wire(order(kind="market", price="65000")), order_wire(order(kind="market", side="sell",
                                                                                  price="0.123456"))
    assert (buy["p"], buy["t"]) == ("68250", {"limit": {"tif": "Ioc"}})
    assert sell["p"] == "0.11729"  # 0.1172832 up to 5 significant figures: still through the price
    with pytest.raises(ValueError, match="reference price"):
        order_wire(order(kind="market", price=None))


def test_tp_sl_are_reduce_only_market_trigger_orders():
    wire = order_wire(order(side="sell", price=None, trigger_price="70000", trigger="take_profit"))
    assert wire["r"] is True and wire["p"] == "66500"
    assert wire["t"] == {"trigger": {"isMarket": True, "triggerPx": "70000", "tpsl": "tp"}}
    assert order_wire(order(trigger_price="50000", trigger="stop_loss"))["t"]["trigger"]["tpsl"] == "sl"


def test_an_unknown_coin_has_no_asset_index_offline():
    request = OrderRequest(market=FUTURE, symbol="NOPE/USDC:USDC", side="buy", amount="1", price="1",
                           client_order_id=client_id(FUTURE, PREFIX, 1))
    with pytest.raises(ValueError, match="ASSET_INDEX"):
        order_wire(request)


def test_the_simulators_oracle_recovers_the_sdk_vectors_signers():
    for name in ("hl-l1-order-mainnet", "hl-l1-order-cloid-mainnet", "hl-l1-dummy-mainnet"):
        vector = VECTORS[name]
        signer = _recovered_signer(vector["action"], vector["nonce"], None, vector["expected_signature"])
        assert signer == address(vector["private_key"]) == _address_of(vector["private_key"])
    testnet = VECTORS["hl-l1-order-testnet"]  # signed for source "b": the mainnet oracle recovers someone else
    assert _recovered_signer(testnet["action"], 0, None, testnet["expected_signature"]) != address(KEY)


def test_prepare_signs_once_with_a_fresh_nonce_and_expires_after_the_validity():
    credentials = Credentials(secret=KEY, wallet_address="0x" + "11" * 20)
    now = now_ms()
    first, second = (prepare(order(n), credentials, FUTURE, now) for n in (1, 2))
    payload = first.payload
    assert payload["action"] == {"type": "order", "orders": [order_wire(order(1))], "grouping": "na"}
    assert second.payload["nonce"] > payload["nonce"] >= now  # the same millisecond: still two nonces
    assert payload["expiresAfter"] == first.expires_at == now + VALIDITY_MS and payload["vaultAddress"] is None
    signer = _recovered_signer(payload["action"], payload["nonce"], payload["expiresAfter"], payload["signature"])
    assert signer == address(KEY)  # recomputed independently, expiresAfter in the hash
    tampered = dict(payload["action"], grouping="normalTpsl")
    assert _recovered_signer(tampered, payload["nonce"], payload["expiresAfter"], payload["signature"]) != signer


def test_nonce_allocator_is_monotonic_within_a_millisecond_and_follows_the_clock():
    nonces = NonceAllocator()
    assert [nonces.next(1000) for _ in range(3)] == [1000, 1001, 1002]
    assert nonces.next(999) == 1003 and nonces.next(5000) == 5000


def test_every_attempt_sends_the_prepared_bytes_unchanged():
    credentials = Credentials(secret=KEY, wallet_address="0x" + "11" * 20)
    prepared = prepare(order(), credentials, FUTURE, now_ms())
    frames = [encode("place", order(), credentials, FUTURE, str(n), now_ms(), prepared) for n in (1, 2)]
    assert frames[0]["request"] == frames[1]["request"] == {"type": "action", "payload": prepared.payload}
    assert (frames[0]["method"], frames[0]["id"], frames[1]["id"]) == ("post", 1, 2)  # numbers, as the venue wants


def test_cancel_amend_and_query_frames():
    credentials = Credentials(secret=KEY, wallet_address="0x" + "AB" * 20)
    request = order(9)
    cancel = encode("cancel", ref(request), credentials, FUTURE, "3", now_ms())["request"]["payload"]
    assert cancel["action"] == {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": request.client_order_id}]}
    by_oid = OrderRef(market=FUTURE, symbol=BTC, client_order_id="scalper-1", order_id="77")
    assert encode("cancel", by_oid, credentials, FUTURE, "4", now_ms())["request"]["payload"]["action"] == {
        "type": "cancel", "cancels": [{"a": 0, "o": 77}]}
    amend = Amend(ref=ref(request, side="buy", amount="0.01", price="60000"), price="60100")
    modify = encode("amend", amend, credentials, FUTURE, "5", now_ms())["request"]["payload"]["action"]
    assert modify == {"type": "batchModify", "modifies": [{"oid": request.client_order_id, "order": order_wire(
        order(9, price="60100"))}]}
    with pytest.raises(ValueError, match="restates the order"):
        encode("amend", Amend(ref=ref(request), price="1"), credentials, FUTURE, "6", now_ms())
    query = encode("query", ref(request, order_id="88"), credentials, FUTURE, "8", now_ms())
    assert query == {"method": "post", "id": 8, "request": {"type": "info", "payload": {
        "type": "orderStatus", "user": "0x" + "ab" * 20, "oid": request.client_order_id}}}  # a modify keeps it
    assert encode("query", by_oid, credentials, FUTURE, "9", now_ms())["request"]["payload"]["oid"] == 77


# what answers mean --------------------------------------------------------------------------------------------------
DOCS_RESTING = {"channel": "post", "data": {"id": 256, "response": {"type": "action", "payload": {
    "status": "ok", "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": 88383}}]}}}}}}


def test_the_docs_resting_answer_is_accepted_open_with_its_oid():
    req_id, outcome = decode(DOCS_RESTING, FUTURE)
    assert (req_id, outcome.kind, outcome.order_id, outcome.status) == ("256", OutcomeKind.ACCEPTED, "88383",
                                                                        OrderStatus.NEW)


@pytest.mark.parametrize("payload, kind, code", [
    (statuses({"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}}), OutcomeKind.ACCEPTED, None),
    (statuses({"error": "Insufficient margin to place order. asset=0"}), OutcomeKind.REJECTED, "insufficient_margin"),
    (statuses({"error": "Post only order would have immediately matched, bbo was 1.23@1.24. asset=0"}),
     OutcomeKind.REJECTED, "would_cross"),
    (statuses({"error": "Order has invalid price."}), OutcomeKind.REJECTED, "order_refused"),
    (statuses({"error": "Cannot modify canceled or filled order"}), OutcomeKind.REJECTED, "not_open"),
    (statuses("success", kind="cancel"), OutcomeKind.ACCEPTED, None),
    (statuses({"error": "Order was never placed, already canceled, or filled. asset=0"}, kind="cancel"),
     OutcomeKind.NOT_FOUND, "not_open_or_unknown"),
    (statuses("waitingForFill"), OutcomeKind.ACKED, None),
    ({"status": "ok", "response": {"type": "default"}}, OutcomeKind.ACCEPTED, None),
    # a whole action refused: final only when the same bytes always meet it
    ({"status": "err", "response": "User or API Wallet 0x0123 does not exist."}, OutcomeKind.REJECTED,
     "action_refused"),
    ({"status": "err", "response": "Invalid nonce: duplicate nonce 1741107452532"}, OutcomeKind.AMBIGUOUS,
     "duplicate_nonce"),
    ({"status": "err", "response": "Invalid nonce: nonce too low 1776584283874 < 1776584799101"},
     OutcomeKind.AMBIGUOUS, "invalid_nonce"),
    ({"status": "err", "response": "Action already expired"}, OutcomeKind.AMBIGUOUS, "expired"),
    ({"status": "err", "response": "Too many cumulative requests sent (37986 > 10436) for cumulative volume traded "
                                   "$437.92."}, OutcomeKind.AMBIGUOUS, "rate_limit"),
    (statuses({"resting": {"oid": 1}}, {"resting": {"oid": 2}}), OutcomeKind.AMBIGUOUS, None),  # not one order's
    ("junk", OutcomeKind.AMBIGUOUS, None),
])
def test_action_answers(payload, kind, code):
    req_id, outcome = decode(post(payload), FUTURE)
    assert (req_id, outcome.kind, outcome.code) == ("7", kind, code)


def test_a_filled_answer_carries_what_filled_at_what_average():
    _, outcome = decode(post(statuses({"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}})), FUTURE)
    assert (outcome.order_id, outcome.filled, outcome.average, outcome.status) == (
        "77747314", Decimal("0.02"), Decimal("1891.4"), None)  # an IOC's rest may be cancelled: the stream says


@pytest.mark.parametrize("payload, kind", [
    ("500 Internal Server Error", OutcomeKind.AMBIGUOUS),
    ("502 Bad Gateway", OutcomeKind.AMBIGUOUS),
    ("429 Too Many Requests", OutcomeKind.AMBIGUOUS),
    ("422 Unprocessable Entity: Failed to deserialize the JSON body into the target type", OutcomeKind.REJECTED),
    ("timed out", OutcomeKind.AMBIGUOUS),
])
def test_post_error_answers_mirror_the_http_status(payload, kind):
    assert decode(post(payload, kind="error"), FUTURE)[1].kind is kind


def test_order_status_answers():
    data = {"status": "order", "order": {"order": {
        "coin": "ETH", "side": "A", "limitPx": "2412.7", "sz": "0.0026", "oid": 1, "timestamp": 1724361546645,
        "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0", "children": [], "isPositionTpsl": False,
        "reduceOnly": True, "orderType": "Limit", "origSz": "0.0076", "tif": "Gtc", "cloid": None},
        "status": "open", "statusTimestamp": 1724361546645}}
    req_id, outcome = decode(post({"type": "orderStatus", "data": data}, 8, kind="info"), FUTURE)
    assert (req_id, outcome.kind, outcome.order_id, outcome.status) == ("8", OutcomeKind.ACCEPTED, "1",
                                                                        OrderStatus.PARTIALLY_FILLED)
    assert (outcome.amount, outcome.filled, outcome.price) == (Decimal("0.0076"), Decimal("0.0050"),
                                                               Decimal("2412.7"))
    data["order"]["status"] = "marginCanceled"
    assert decode(post({"type": "orderStatus", "data": data}, kind="info"), FUTURE)[1].status is OrderStatus.CANCELED
    unknown = decode(post({"type": "orderStatus", "data": {"status": "unknownOid"}}, kind="info"), FUTURE)[1]
    assert unknown.kind is OutcomeKind.NOT_FOUND


def test_frames_that_are_not_answers_are_left_to_the_stream():
    for frame in ({"channel": "orderUpdates", "data": []}, {"channel": "pong"}, "Websocket connection established.",
                  {"channel": "error", "data": "Already subscribed: {\"type\":\"userFills\"}"},
                  {"channel": "error", "data": "Cannot send more than 2000 messages per minute."}):
        assert decode(frame, FUTURE) is None


def test_a_post_the_venue_could_not_parse_is_refused_by_its_echoed_id_or_else_uncorrelated():
    echoed = {"channel": "error", "data": 'Error parsing JSON into valid websocket request: {"method":"post","id":12,'
                                          '"request":{"type":"action"}}'}
    req_id, outcome = decode(echoed, FUTURE)
    assert (req_id, outcome.kind) == ("12", OutcomeKind.REJECTED)
    cut = {"channel": "error", "data": 'Error parsing JSON into valid websocket request: {"method":"post",'}
    assert decode(cut, FUTURE)[0] is None and decode(cut, FUTURE)[1].kind is OutcomeKind.AMBIGUOUS
    assert decode({"channel": "post", "data": {"response": {}}}, FUTURE)[1].kind is OutcomeKind.AMBIGUOUS


def test_rules_in_the_spec():
    assert SPEC.orders is ORDERS and ORDERS.ws.shared and ORDERS.ws.url is None
    assert (ORDERS.ws.max_in_flight, ORDERS.ws.validity_ms, ORDERS.rest.validity_ms) == (100, VALIDITY_MS,
                                                                                       VALIDITY_MS)
    assert ORDERS.ws.ops == {"place", "cancel", "amend", "query"} and ORDERS.ws.request_id(41) == "41"
    assert ORDERS.prepare is prepare and ORDERS.markets == {FUTURE} and not ORDERS.renames_on_cancel
    assert ORDERS.market_reference  # a market order needs the book's price: the gateway gives it


# REST rules with a stand-in client ----------------------------------------------------------------------------------
class Venue:
    """A ccxt client stand-in: answers (or raises) in order, keeps what it was sent."""

    walletAddress = "0x" + "11" * 20
    secret = KEY

    def __init__(self, *exchange, info=()) -> None:
        self.exchange, self.info, self.sent, self.asked = list(exchange), list(info), [], []

    async def private_post_exchange(self, payload):
        self.sent.append(json.dumps(payload))
        return self._next(self.exchange.pop(0))

    async def public_post_info(self, body):
        self.asked.append(body)
        return self._next(self.info.pop(0))

    @staticmethod
    def _next(answer):
        if isinstance(answer, BaseException):
            raise answer
        return answer


def refused(body: dict) -> ccxt.ExchangeError:
    """How ccxt raises on a `status: err` answer (handle_errors: `hyperliquid <body>`)."""
    return ccxt.ExchangeError("hyperliquid " + json.dumps(body))


OPEN = {"status": "order", "order": {"order": {"coin": "BTC", "side": "B", "limitPx": "60000.0", "sz": "0.01",
                                               "oid": 5, "timestamp": 1, "origSz": "0.01", "cloid": None},
                                     "status": "open", "statusTimestamp": 1}}


def prepared_order(n: int = 1) -> tuple[OrderRequest, Prepared]:
    request = order(n)
    return request, prepare(request, Credentials(secret=KEY, wallet_address=Venue.walletAddress), FUTURE, now_ms())


async def test_rest_place_sends_the_prepared_payload_as_it_is():
    request, prepared = prepared_order()
    venue = Venue(statuses({"resting": {"oid": 5}}))
    outcome = await rest_place(venue, request, prepared)
    assert (outcome.kind, outcome.order_id) == (OutcomeKind.ACCEPTED, "5")
    assert venue.sent == [json.dumps(prepared.payload)]


async def test_rest_place_settles_a_duplicate_nonce_by_the_cloid():
    request, prepared = prepared_order()
    duplicate = refused({"status": "err", "response": f"Invalid nonce: duplicate nonce {prepared.payload['nonce']}"})
    venue = Venue(duplicate, info=[OPEN])
    outcome = await rest_place(venue, request, prepared)
    assert (outcome.kind, outcome.order_id, outcome.status) == (OutcomeKind.ACCEPTED, "5", OrderStatus.NEW)
    assert venue.asked == [{"type": "orderStatus", "user": Venue.walletAddress, "oid": request.client_order_id}]
    missing = ccxt.OrderNotFound('hyperliquid {"status":"unknownOid"}')
    outcome = await rest_place(Venue(duplicate, info=[missing]), request, prepared)
    assert (outcome.kind, outcome.code) == (OutcomeKind.AMBIGUOUS, "duplicate_nonce")  # the nonce was taken


async def test_rest_place_expired_and_nowhere_is_a_definite_rejection():
    request, prepared = prepared_order()
    expired = refused({"status": "err", "response": "Action already expired"})
    outcome = await rest_place(Venue(expired, info=[{"status": "unknownOid"}]), request, prepared)
    assert (outcome.kind, outcome.code) == (OutcomeKind.REJECTED, "expired")
    outcome = await rest_place(Venue(expired, info=[OPEN]), request, prepared)
    assert (outcome.kind, outcome.order_id) == (OutcomeKind.ACCEPTED, "5")  # an earlier attempt placed it
    outcome = await rest_place(Venue(expired, info=[ccxt.RequestTimeout("hyperliquid timed out")]), request, prepared)
    assert (outcome.kind, outcome.code) == (OutcomeKind.AMBIGUOUS, "expired")


async def test_rest_errors_per_order_and_in_transport():
    request, prepared = prepared_order()
    margin = ccxt.InsufficientFunds("hyperliquid " + json.dumps(statuses({"error": "Insufficient margin to place "
                                                                                   "order. asset=0"})))
    assert (await rest_place(Venue(margin), request, prepared)).kind is OutcomeKind.REJECTED
    assert (await rest_place(Venue(ccxt.NetworkError("reset")), request, prepared)).kind is OutcomeKind.AMBIGUOUS
    assert (await rest_place(Venue(ccxt.ExchangeNotAvailable("hyperliquid POST 500")), request, prepared)
            ).kind is OutcomeKind.AMBIGUOUS
    assert (await rest_query(Venue(info=[ccxt.OrderNotFound("x")]), ref(request))).kind is OutcomeKind.NOT_FOUND


# on the simulator ---------------------------------------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=[EXCHANGE], seed=7, market_rate=0) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def rest(sim):
    endpoints = sim.endpoints(EXCHANGE, FUTURE)
    client = rest_client(connection_key(EXCHANGE, FUTURE, "acct"), SPEC.backfill, sim.credentials_for(EXCHANGE),
                         endpoints, endpoints, [BTC])
    yield client
    await client.close()


class Socket:
    """A raw socket with the private subscriptions, posting through the rules and keeping the stream's events."""

    def __init__(self, ws, credentials: Credentials) -> None:
        self.ws, self.credentials, self.events, self.n = ws, credentials, [], 100

    @classmethod
    async def open(cls, http, sim, credentials: Credentials | None = None) -> Socket:
        credentials = credentials or sim.credentials_for(EXCHANGE)
        url = HyperliquidStream().ws_url(FUTURE, sim.endpoints(EXCHANGE, FUTURE), None)
        socket = cls(await http.ws_connect(url), credentials)
        for frame in handshake(sim.credentials_for(EXCHANGE), FUTURE, now_ms()):
            await socket.ws.send_json(frame)
        return socket

    async def send(self, op: str, subject, prepared: Prepared | None = None) -> str:
        self.n += 1
        await self.ws.send_json(encode(op, subject, self.credentials, FUTURE, str(self.n), now_ms(), prepared))
        return str(self.n)

    async def answer(self, req_id: str, timeout: float = 3.0):
        """Read until the answer to `req_id`; stream events are kept on the way."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                assert msg.type is aiohttp.WSMsgType.TEXT, msg
                frame = decode_frame(msg.data)
                decoded = decode(frame, FUTURE)
                if decoded is None:
                    self.events += normalize(frame, FUTURE)
                    continue
                assert decoded[0] == req_id, decoded
                return decoded[1]

    async def call(self, op: str, subject, prepared: Prepared | None = None):
        return await self.answer(await self.send(op, subject, prepared))

    async def until(self, check, timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while not check(self.events):
                msg = await self.ws.receive()
                frame = decode_frame(msg.data)
                if decode(frame, FUTURE) is None:
                    self.events += normalize(frame, FUTURE)


def below_book(sim, offset: str = "1000") -> str:
    return str(sim.market(EXCHANGE, FUTURE, BTC).best_bid()[0] - Decimal(offset))


def ledger_orders(sim):
    return list(sim.ledger(EXCHANGE, FUTURE).orders.values())


async def test_ws_place_amend_query_cancel_land_in_the_ledger_and_on_the_stream(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        request = order(11, price=below_book(sim))
        placed = await socket.call("place", request, prepare(request, socket.credentials, FUTURE, now_ms()))
        (booked,) = ledger_orders(sim)
        assert (placed.kind, placed.order_id, placed.status) == (OutcomeKind.ACCEPTED, booked.order_id,
                                                                 OrderStatus.NEW)
        assert (booked.client_order_id, booked.side, booked.amount, booked.price, booked.time_in_force) == (
            request.client_order_id, Side.BUY, Decimal("0.01"), request.price, "gtc")
        await socket.until(lambda events: any(isinstance(e, OrderUpdate) for e in events))
        update = next(e for e in socket.events if isinstance(e, OrderUpdate))
        assert (update.client_order_id, update.order_id, update.status) == (
            request.client_order_id, booked.order_id, OrderStatus.NEW)
        assert update.client_order_id.startswith(PREFIX)  # routing finds the placing strategy by it

        new_price = request.price - 5
        amend = Amend(ref=ref(request, side="buy", amount="0.01", price=request.price), price=new_price,
                      amount="0.02")
        amended = await socket.call("amend", amend)
        assert (amended.kind, amended.order_id) == (OutcomeKind.ACCEPTED, booked.order_id)
        assert (booked.price, booked.amount, booked.status) == (new_price, Decimal("0.02"), OrderStatus.NEW)

        queried = await socket.call("query", ref(request))
        assert (queried.kind, queried.order_id, queried.status, queried.amount, queried.price) == (
            OutcomeKind.ACCEPTED, booked.order_id, OrderStatus.NEW, Decimal("0.02"), new_price)

        cancelled = await socket.call("cancel", ref(request))
        assert (cancelled.kind, cancelled.status, booked.status) == (OutcomeKind.ACCEPTED, OrderStatus.CANCELED,
                                                                     OrderStatus.CANCELED)
        await socket.until(lambda events: any(isinstance(e, OrderUpdate) and e.status is OrderStatus.CANCELED
                                              for e in events))
        again = await socket.call("cancel", ref(request))
        assert (again.kind, again.code) == (OutcomeKind.NOT_FOUND, "not_open_or_unknown")
        assert (await socket.call("query", ref(request))).status is OrderStatus.CANCELED
        unknown = await socket.call("query", ref(order(12)))
        assert unknown.kind is OutcomeKind.NOT_FOUND


async def test_a_market_order_fills_at_the_book_and_its_fill_carries_the_cloid(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        ask = sim.market(EXCHANGE, FUTURE, BTC).best_ask()[0]
        request = order(21, kind="market", price=str(ask), amount="0.003")
        outcome = await socket.call("place", request, prepare(request, socket.credentials, FUTURE, now_ms()))
        assert outcome.kind is OutcomeKind.ACCEPTED
        await socket.until(lambda events: any(isinstance(e, Trade) for e in events))
        fill = next(e for e in socket.events if isinstance(e, Trade))
        (booked,) = ledger_orders(sim)
        assert (booked.status, booked.filled, booked.time_in_force) == (OrderStatus.FILLED, Decimal("0.003"), "ioc")
        assert (fill.client_order_id, fill.order_id, fill.amount, fill.price) == (
            request.client_order_id, booked.order_id, Decimal("0.003"), ask)


async def test_a_resend_of_the_same_bytes_is_a_duplicate_nonce_and_rest_finds_the_order(sim, http, rest):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        request = order(31, price=below_book(sim))
        prepared = prepare(request, socket.credentials, FUTURE, now_ms())
        assert (await socket.call("place", request, prepared)).kind is OutcomeKind.ACCEPTED
        resent = await socket.call("place", request, prepared)
        assert (resent.kind, resent.code) == (OutcomeKind.AMBIGUOUS, "duplicate_nonce")
        over_rest = await rest_place(rest, request, prepared)
        (booked,) = ledger_orders(sim)  # one order, three attempts
        assert (over_rest.kind, over_rest.order_id, over_rest.status) == (OutcomeKind.ACCEPTED, booked.order_id,
                                                                          OrderStatus.NEW)


async def test_bytes_that_never_reached_the_venue_land_once_over_rest(sim, rest):
    async with asyncio.timeout(15):
        request = order(41, price=below_book(sim))
        prepared = prepare(request, sim.credentials_for(EXCHANGE), FUTURE, now_ms())
        outcome = await rest_place(rest, request, prepared)
        (booked,) = ledger_orders(sim)
        assert (outcome.kind, outcome.order_id, booked.client_order_id) == (OutcomeKind.ACCEPTED, booked.order_id,
                                                                            request.client_order_id)


async def test_the_venue_takes_a_cloid_twice_so_only_the_nonce_guards_a_retry(sim, rest):
    async with asyncio.timeout(15):  # ClientIdPolicy.FREE: two signings of one order are two orders
        request = order(51, price=below_book(sim))
        credentials = sim.credentials_for(EXCHANGE)
        for _ in range(2):
            outcome = await rest_place(rest, request, prepare(request, credentials, FUTURE, now_ms()))
            assert outcome.kind is OutcomeKind.ACCEPTED
        assert [o.client_order_id for o in ledger_orders(sim)] == [request.client_order_id] * 2


async def test_an_expired_action_is_not_executed(sim, http, rest):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        request = order(61, price=below_book(sim))
        stale = prepare(request, socket.credentials, FUTURE, now_ms() - VALIDITY_MS - 1)
        outcome = await socket.call("place", request, stale)
        assert (outcome.kind, outcome.code, outcome.message) == (OutcomeKind.AMBIGUOUS, "expired",
                                                                 "Action already expired")
        settled = await rest_place(rest, request, stale)  # expired and no such cloid: it never executed
        assert (settled.kind, settled.code) == (OutcomeKind.REJECTED, "expired")
        assert ledger_orders(sim) == []


async def test_an_action_executed_late_after_its_expiry_is_refused_by_the_engine(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        sim.orders.faults.exec_delay = 1.2
        sim.orders.fault(EXCHANGE, FUTURE, "delay_exec")
        request = order(62, price=below_book(sim))
        outcome = await socket.call("place", request, prepare(request, socket.credentials, FUTURE,
                                                              now_ms() - VALIDITY_MS + 800))
        assert (outcome.kind, outcome.code) == (OutcomeKind.AMBIGUOUS, "expired")
        assert sim.orders.faults_applied == {"delay_exec": 1} and ledger_orders(sim) == []  # taken, then too late


async def test_a_wrong_signature_is_refused_and_nothing_executes(sim, http, rest):
    async with asyncio.timeout(15):
        impostor = Credentials(secret="0x" + "42" * 32, wallet_address=sim.credentials_for(EXCHANGE).wallet_address)
        socket = await Socket.open(http, sim, impostor)
        request = order(71, price=below_book(sim))
        outcome = await socket.call("place", request, prepare(request, impostor, FUTURE, now_ms()))
        assert outcome.kind is OutcomeKind.REJECTED
        assert outcome.message == f"User or API Wallet {address(impostor.secret)} does not exist."
        over_rest = await rest_place(rest, request, prepare(request, impostor, FUTURE, now_ms()))
        assert over_rest.kind is OutcomeKind.REJECTED
        assert ledger_orders(sim) == []


async def test_the_wallets_own_key_signs_too(sim, http):
    async with asyncio.timeout(15):  # the simulator's secret is an API wallet's; the wallet's key is accepted too
        own = "0x" + "17" * 32
        credentials = Credentials(secret=own, wallet_address=address(own))
        async with Simulator({EXCHANGE: credentials}, exchanges=[EXCHANGE], market_rate=0) as other:
            socket = await Socket.open(http, other)
            request = order(72, price=str(other.market(EXCHANGE, FUTURE, BTC).best_bid()[0] - 1000))
            outcome = await socket.call("place", request, prepare(request, credentials, FUTURE, now_ms()))
            assert outcome.kind is OutcomeKind.ACCEPTED and len(ledger_orders(other)) == 1


async def test_per_order_refusals_are_final(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        ask = sim.market(EXCHANGE, FUTURE, BTC).best_ask()[0]
        crossing = order(81, kind="post_only", price=str(ask))
        outcome = await socket.call("place", crossing, prepare(crossing, socket.credentials, FUTURE, now_ms()))
        assert (outcome.kind, outcome.code) == (OutcomeKind.REJECTED, "would_cross")
        assert outcome.message.startswith("Post only order would have immediately matched") and "asset=0" in \
            outcome.message
        gone = Amend(ref=ref(order(82), side="buy", amount="0.01", price="60000"), price="60001")
        refused_amend = await socket.call("amend", gone)
        assert (refused_amend.kind, refused_amend.code) == (OutcomeKind.REJECTED, "not_open")
        assert ledger_orders(sim) == []


async def test_status_unknown_from_the_engine_is_ambiguous_on_both_paths(sim, http, rest):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        sim.orders.fault(EXCHANGE, FUTURE, "unknown", "unknown")
        request = order(91, price=below_book(sim))
        outcome = await socket.call("place", request, prepare(request, socket.credentials, FUTURE, now_ms()))
        assert (outcome.kind, outcome.code) == (OutcomeKind.AMBIGUOUS, "500")
        other = order(92, price=below_book(sim))
        assert (await rest_place(rest, other, prepare(other, socket.credentials, FUTURE, now_ms()))
                ).kind is OutcomeKind.AMBIGUOUS
        # whatever the engine did, the ledger and the venue's answer to a query agree
        for asked in (request, other):
            placed = [o for o in ledger_orders(sim) if o.client_order_id == asked.client_order_id]
            found = await rest_query(rest, ref(asked))
            assert found.kind is (OutcomeKind.ACCEPTED if placed else OutcomeKind.NOT_FOUND)


async def test_a_dropped_ack_leaves_the_order_placed_and_a_query_finds_it(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        sim.orders.fault(EXCHANGE, FUTURE, "drop_ack")
        request = order(93, price=below_book(sim))
        req_id = await socket.send("place", request, prepare(request, socket.credentials, FUTURE, now_ms()))
        with pytest.raises(TimeoutError):
            await socket.answer(req_id, timeout=0.5)
        (booked,) = ledger_orders(sim)
        found = await socket.call("query", ref(request))
        assert (found.kind, found.order_id, found.status) == (OutcomeKind.ACCEPTED, booked.order_id, OrderStatus.NEW)


async def test_a_reordered_ack_comes_after_the_orders_update(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        sim.orders.fault(EXCHANGE, FUTURE, "reorder")
        request = order(94, price=below_book(sim))
        req_id = await socket.send("place", request, prepare(request, socket.credentials, FUTURE, now_ms()))
        seen_before = []
        async with asyncio.timeout(3):
            while True:
                frame = decode_frame((await socket.ws.receive()).data)
                decoded = decode(frame, FUTURE)
                if decoded is not None:
                    break
                seen_before += [e for e in normalize(frame, FUTURE) if isinstance(e, OrderUpdate)]
        assert decoded[0] == req_id and decoded[1].kind is OutcomeKind.ACCEPTED
        assert [u.client_order_id for u in seen_before] == [request.client_order_id]


async def test_a_disconnect_mid_request_cuts_the_shared_socket(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        sim.orders.fault(EXCHANGE, FUTURE, "disconnect")
        request = order(95, price=below_book(sim))
        await socket.send("place", request, prepare(request, socket.credentials, FUTURE, now_ms()))
        async with asyncio.timeout(3):
            while (msg := await socket.ws.receive()).type is aiohttp.WSMsgType.TEXT:
                assert decode(decode_frame(msg.data), FUTURE) is None  # no answer before the cut
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def test_rest_place_query_amend_cancel_through_ccxt(sim, rest):
    async with asyncio.timeout(15):
        request = order(101, price=below_book(sim), side="buy")
        placed = await rest_place(rest, request, prepare(request, sim.credentials_for(EXCHANGE), FUTURE, now_ms()))
        (booked,) = ledger_orders(sim)
        assert (placed.kind, placed.order_id) == (OutcomeKind.ACCEPTED, booked.order_id)
        by_cloid = await rest_query(rest, ref(request, order_id=booked.order_id))
        assert (by_cloid.kind, by_cloid.status, by_cloid.amount) == (OutcomeKind.ACCEPTED, OrderStatus.NEW,
                                                                     Decimal("0.01"))
        no_cloid = OrderRef(market=FUTURE, symbol=BTC, client_order_id="-", order_id=booked.order_id)
        by_oid = await rest_query(rest, no_cloid)
        assert (by_oid.kind, by_oid.order_id) == (OutcomeKind.ACCEPTED, booked.order_id)
        amended = await rest_amend(rest, Amend(ref=ref(request, order_id=booked.order_id, side="buy", amount="0.01",
                                                       price=request.price), amount="0.03"))
        assert amended.kind is OutcomeKind.ACCEPTED and booked.amount == Decimal("0.03")
        cancelled = await rest_cancel(rest, ref(request))
        assert (cancelled.kind, booked.status) == (OutcomeKind.ACCEPTED, OrderStatus.CANCELED)
        assert (await rest_cancel(rest, ref(request))).kind is OutcomeKind.NOT_FOUND
        assert (await rest_query(rest, ref(request))).status is OrderStatus.CANCELED
        assert (await rest_query(rest, ref(order(102)))).kind is OutcomeKind.NOT_FOUND


async def test_rest_faults_are_ambiguous_and_a_refused_connection_is_not_sent(sim, rest):
    async with asyncio.timeout(15):
        request = order(111, price=below_book(sim))
        prepared = prepare(request, sim.credentials_for(EXCHANGE), FUTURE, now_ms())
        sim.fail_rest(EXCHANGE, FUTURE, [502])
        assert (await rest_place(rest, request, prepared)).kind is OutcomeKind.AMBIGUOUS
        sim.orders.fault(EXCHANGE, FUTURE, "lose")  # the request never reached the engine: no answer, no order
        rest.timeout = 1000
        assert (await rest_place(rest, request, prepared)).kind is OutcomeKind.AMBIGUOUS
        assert ledger_orders(sim) == []
    endpoints = sim.endpoints(EXCHANGE, FUTURE)
    nobody = Endpoints(ws=endpoints.ws, rest="http://127.0.0.1:9")  # nothing listens: the request never leaves
    closed = rest_client(connection_key(EXCHANGE, FUTURE, "acct"), SPEC.backfill, sim.credentials_for(EXCHANGE),
                         endpoints, nobody, [BTC])
    try:
        outcome = await rest_place(closed, request, prepared)
    finally:
        await closed.close()
    assert outcome.kind is OutcomeKind.NOT_SENT


async def test_a_take_profit_rests_untriggered_with_its_trigger(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        ask = sim.market(EXCHANGE, FUTURE, BTC).best_ask()[0]
        request = order(121, side="sell", price=None, trigger_price=str(ask + 5000), trigger="take_profit")
        outcome = await socket.call("place", request, prepare(request, socket.credentials, FUTURE, now_ms()))
        (booked,) = ledger_orders(sim)
        assert (outcome.kind, outcome.order_id) == (OutcomeKind.ACCEPTED, booked.order_id)
        assert (booked.trigger, booked.trigger_price, booked.reduce_only, booked.order_type) == (
            "take_profit", ask + 5000, True, "market")
        found = await socket.call("query", ref(request))
        assert (found.kind, found.status, found.message) == (OutcomeKind.ACCEPTED, OrderStatus.NEW, "open")

        bid = sim.market(EXCHANGE, FUTURE, BTC).best_bid()[0]
        reached = order(122, side="sell", price=None, trigger_price=str(bid - 10), trigger="take_profit")
        assert (await socket.call("place", reached, prepare(reached, socket.credentials, FUTURE, now_ms()))
                ).kind is OutcomeKind.ACCEPTED
        await sim.orders.match(EXCHANGE, FUTURE, BTC)  # the market step's check: its trigger price is reached
        await socket.until(lambda events: any(isinstance(e, Trade) for e in events))
        update = next(e for e in socket.events if isinstance(e, OrderUpdate))
        fill = next(e for e in socket.events if isinstance(e, Trade))
        assert (update.client_order_id, update.status_raw, fill.client_order_id, fill.side) == (
            reached.client_order_id, "triggered", reached.client_order_id, Side.SELL)
        assert (await socket.call("query", ref(reached))).status is OrderStatus.FILLED


async def test_an_info_post_the_venue_cannot_read_is_a_422(sim, http):
    async with asyncio.timeout(15):
        socket = await Socket.open(http, sim)
        await socket.ws.send_json({"method": "post", "id": 5, "request": {"type": "info", "payload": {"type": "x"}}})
        assert (await socket.answer("5")).kind is OutcomeKind.REJECTED
        await socket.ws.send_json({"method": "post", "id": "five", "request": {"type": "action"}})
        async with asyncio.timeout(3):
            while (decoded := decode(decode_frame((await socket.ws.receive()).data), FUTURE)) is None:
                pass
        assert decoded[0] is None and decoded[1].kind is OutcomeKind.AMBIGUOUS  # no numeric id echoed to go by


async def test_the_book_a_market_order_is_priced_from_reads_through_ccxt(sim, rest):
    async with asyncio.timeout(15):
        book = await rest.fetch_order_book(BTC, 5)  # what the gateway's reference_price reads
        public = sim.market(EXCHANGE, FUTURE, BTC)
        ask, bid = (Decimal(str(book[side][0][0])) for side in ("asks", "bids"))  # ccxt's floats, by their text
        assert (ask, bid) == (public.best_ask()[0], public.best_bid()[0])
        request = order(141, kind="market", price=str(ask), amount="0.002")
        placed = await rest_place(rest, request, prepare(request, sim.credentials_for(EXCHANGE), FUTURE, now_ms()))
        (booked,) = ledger_orders(sim)
        assert (placed.kind, booked.status, booked.filled) == (OutcomeKind.ACCEPTED, OrderStatus.FILLED,
                                                               Decimal("0.002"))


async def test_another_users_order_status_is_unknown(sim, rest):
    async with asyncio.timeout(15):
        request = order(131, price=below_book(sim))
        await rest_place(rest, request, prepare(request, sim.credentials_for(EXCHANGE), FUTURE, now_ms()))
        rest.walletAddress = "0x" + "cd" * 20
        assert (await rest_query(rest, ref(request))).kind is OutcomeKind.NOT_FOUND


# the simulator's nonce book -----------------------------------------------------------------------------------------
def test_the_simulator_keeps_the_100_highest_nonces_per_signer():
    venue, now = HyperliquidSim(), 10**12
    for nonce in range(now, now + 100):
        venue._use_nonce("0xa", nonce, now)
    with pytest.raises(_Refused, match=f"duplicate nonce {now + 5}"):
        venue._use_nonce("0xa", now + 5, now)
    with pytest.raises(_Refused, match=f"nonce too low {now - 1} < {now}"):
        venue._use_nonce("0xa", now - 1, now)
    venue._use_nonce("0xa", now + 500, now)  # the smallest goes: a nonce above it is taken
    venue._use_nonce("0xa", now + 150, now)
    with pytest.raises(_Refused, match="nonce too low"):
        venue._use_nonce("0xa", now + 1, now)
    venue._use_nonce("0xb", now - 1, now)  # per signer
    with pytest.raises(_Refused, match="outside"):
        venue._use_nonce("0xc", now + 2 * 24 * 3600 * 1000, now)

