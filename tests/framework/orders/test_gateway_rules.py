"""The gateway's idempotency rules against an in-memory venue whose every answer the test decides: a rejection is
final, a request that never left goes to REST at once, an ambiguous one is looked up and re-placed only once the
venue says it has no such order *and* the request can no longer execute, a signed request is resent as it is, an
ack is not a placement. Each test counts the orders the venue holds in the end."""

import asyncio
from decimal import Decimal

import attrs

from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Side, Trade, now_ms
from framework.orders.channel import TradingChannel
from framework.orders.config import WebSocketTradingConfig
from framework.orders.gateway import OrderGateway
from framework.orders.metrics import OrderMetrics
from framework.orders.model import (
    OrderRequest, OrderState, OutcomeKind, Path, Prepared, accepted, acked, ambiguous, not_found, not_sent, rejected,
)
from framework.orders.order import Order
from framework.venue import Credentials, ExchangeSpec, OrderRules, RestOrderRules, WsTradingRules

KEY = ConnectionKey(exchange="fakex", market=Market.SPOT)
VALIDITY_MS = 300


class FakeVenue:
    """Orders by client id; `script` gives the next answers per path ("ok", "ack", "reject", "lose", "late",
    "ambiguous-after", "not-sent", "dup"): the venue executes on ok/ack/lose-after… and answers as told."""

    def __init__(self) -> None:
        self.orders: dict[str, dict] = {}
        self.script: dict[str, list[str]] = {"ws": [], "rest": []}
        self.requests: dict[str, int] = {"ws": 0, "rest": 0}
        self.late: list = []  # (when, payload) executions still to come
        self.nonces: set[int] = set()
        self.gateway: OrderGateway | None = None

    def execute(self, request: OrderRequest, nonce: int | None = None) -> str:
        if nonce is not None:
            if nonce in self.nonces:
                return "dup-nonce"
            self.nonces.add(nonce)
        existing = self.orders.get(request.client_order_id)
        if existing is not None and existing["status"] == "open":
            return "dup"
        oid = str(len(self.orders) + 1)
        self.orders[request.client_order_id] = {"id": oid, "status": "open", "request": request}
        if self.gateway is not None:  # the private stream shows it a moment later
            asyncio.get_running_loop().call_later(0.01, self.stream, request.client_order_id)
        return oid

    def stream(self, coid: str) -> None:
        order = self.orders[coid]
        request = order["request"]
        self.gateway.on_order_update(OrderUpdate(
            exchange="fakex", market=Market.SPOT, symbol=request.symbol, symbol_raw="BTCUSDT", order_id=order["id"],
            client_order_id=coid, side=request.side, order_type="limit", status=OrderStatus.NEW, status_raw="NEW",
            amount=request.amount, price=request.price, filled=Decimal(0), timestamp=now_ms()))

    async def answer(self, path: str, request: OrderRequest, prepared) -> object:
        self.requests[path] += 1
        step = self.script[path].pop(0) if self.script[path] else "ok"
        nonce = prepared.payload if prepared is not None else None
        if step == "not-sent":
            return not_sent("socket down")
        if step == "reject":
            return rejected("-2010", "insufficient balance")
        if step == "lose":
            return ambiguous("no answer")
        if step == "ambiguous-after":
            oid = self.execute(request, nonce)
            return ambiguous("5xx status unknown")
        if step == "late":  # executes after the client gave up, still inside its validity window
            asyncio.get_running_loop().call_later(VALIDITY_MS / 2000, self.execute, request, nonce)
            return ambiguous("no answer")
        oid = self.execute(request, nonce)
        if oid == "dup":
            return rejected("-2010", "Duplicate order sent.")
        if oid == "dup-nonce":
            return rejected("nonce", "Invalid nonce: duplicate nonce")
        return acked(oid) if step == "ack" else accepted(oid, status=OrderStatus.NEW)

    async def query(self, client, ref) -> object:
        order = self.orders.get(ref.client_order_id)
        if order is None:
            return not_found()
        status = {"open": OrderStatus.NEW, "filled": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED}
        filled = order["request"].amount if order["status"] == "filled" else 0
        return accepted(order["id"], status=status[order["status"]], filled=filled)


class FakeChannel(TradingChannel):
    def __init__(self, venue: FakeVenue, rules: WsTradingRules) -> None:
        super().__init__(KEY, rules, Credentials())
        self.venue = venue
        self.state = "ready"

    async def request(self, op, subject, prepared, timeout, on_late=None, on_sent=None):
        if op == "place":
            return await self.venue.answer("ws", subject, prepared)
        return await self.venue.query(None, subject)

    async def start(self):
        pass

    async def stop(self):
        pass


def make_gateway(venue: FakeVenue, *, prepare=None, **config) -> OrderGateway:
    async def rest_place(client, request, prepared):
        return await venue.answer("rest", request, prepared)

    async def rest_cancel(client, ref):
        order = venue.orders.get(ref.client_order_id)
        if order is None:
            return not_found()
        order["status"] = "canceled"
        return accepted(order["id"], status=OrderStatus.CANCELED)

    ws = WsTradingRules(encode=lambda *a: None, decode=lambda m, market: None, ops=frozenset({"place", "query"}),
                        validity_ms=VALIDITY_MS)
    rules = OrderRules(markets=frozenset({Market.SPOT}), client_id=lambda market, prefix, n: f"{prefix}-{n}",
                       ws=ws, prepare=prepare,
                       rest=RestOrderRules(place=rest_place, cancel=rest_cancel, query=venue.query,
                                           validity_ms=VALIDITY_MS))
    spec = ExchangeSpec(name="fakex", markets=frozenset({Market.SPOT}), credentials_required=(),
                        handshake=lambda *a: [], normalize=lambda *a: [], orders=rules)
    settings = dict(ack_timeout_seconds=0.2, confirm_timeout_seconds=0.3, order_timeout_seconds=5.0,
                    clock_skew_ms=50)
    settings.update(config)
    executions = []
    gateway = OrderGateway(KEY, spec, Credentials(), None, WebSocketTradingConfig(**settings), OrderMetrics(),
                           emit=lambda order, execution: executions.append(execution))
    gateway.channel = FakeChannel(venue, ws)
    gateway._rest = lambda op, subject, symbol, *extra: getattr(gateway.rules.rest, op)(None, subject, *extra)
    gateway.executions = executions
    venue.gateway = gateway
    return gateway


_N = iter(range(1, 10**6))


def new_order() -> Order:
    request = OrderRequest(market=Market.SPOT, symbol="BTC/USDT", side=Side.BUY, amount="0.01", price="65000",
                           client_order_id=f"s1-{next(_N)}")
    return Order(KEY, "s1", request)


async def test_an_answered_request_is_one_order_acked_then_open_from_the_stream():
    venue = FakeVenue()
    gateway = make_gateway(venue)
    order = await gateway.place(new_order())
    assert order.state is OrderState.ACKED and order.path is Path.WEBSOCKET
    await asyncio.sleep(0.05)
    assert order.state is OrderState.OPEN and order.confirmed
    assert len(venue.orders) == 1 and venue.requests == {"ws": 1, "rest": 0}
    assert [e.kind for e in gateway.executions] == ["acked", "open"]


async def test_a_rejection_is_final_and_never_retried_over_rest():
    venue = FakeVenue()
    venue.script["ws"] = ["reject"]
    gateway = make_gateway(venue)
    order = await gateway.place(new_order())
    assert order.state is OrderState.REJECTED and "insufficient" in order.reason
    assert venue.requests == {"ws": 1, "rest": 0} and venue.orders == {}
    assert [e.kind for e in gateway.executions] == ["rejected"]


async def test_a_request_that_never_left_goes_to_rest_at_once():
    venue = FakeVenue()
    venue.script["ws"] = ["not-sent"]
    gateway = make_gateway(venue)
    order = await gateway.place(new_order())
    assert order.path is Path.REST and venue.requests == {"ws": 1, "rest": 1}
    assert len(venue.orders) == 1
    assert gateway.metrics.fallbacks["websocket_not_sent"] == 1


async def test_an_ambiguous_request_that_executed_is_found_not_placed_again():
    venue = FakeVenue()
    venue.script["ws"] = ["ambiguous-after"]
    gateway = make_gateway(venue)
    order = await gateway.place(new_order())
    assert len(venue.orders) == 1 and venue.requests["rest"] == 0
    assert order.order_id == "1" and order.confirmed


async def test_a_lost_request_is_placed_again_only_after_its_validity_passed():
    venue = FakeVenue()
    venue.script["ws"] = ["lose"]
    gateway = make_gateway(venue)
    started = now_ms()
    order = await gateway.place(new_order())
    assert len(venue.orders) == 1 and venue.requests == {"ws": 1, "rest": 1}
    assert now_ms() - started >= VALIDITY_MS  # it waited the window out before placing again
    assert order.path is Path.REST and gateway.metrics.fallbacks["ambiguous_absent"] == 1


async def test_a_request_executing_late_inside_its_window_is_found_not_doubled():
    venue = FakeVenue()
    venue.script["ws"] = ["late"]  # the first query finds nothing: the order lands a moment later
    gateway = make_gateway(venue)
    order = await gateway.place(new_order())
    await asyncio.sleep(VALIDITY_MS / 1000)
    assert len(venue.orders) == 1 and venue.requests["rest"] == 0
    assert order.confirmed and not order.final


async def test_a_signed_request_is_resent_as_it_is_and_the_nonce_dedups_it():
    venue = FakeVenue()
    venue.script["ws"] = ["ambiguous-after"]
    nonces = iter(range(1000, 2000))
    gateway = make_gateway(venue, prepare=lambda request, credentials, market, now: Prepared(
        payload=next(nonces), expires_at=now + 5000))
    order = await gateway.place(new_order())
    # the resend over REST was refused as a duplicate nonce; the query found the first: one order
    assert len(venue.orders) == 1 and venue.requests == {"ws": 1, "rest": 1}
    assert order.order_id == "1" and order.state is not OrderState.REJECTED
    assert gateway.metrics.fallbacks["resend_signed"] == 1 and gateway.metrics.double_orders_prevented == 1


async def test_an_ack_the_stream_never_confirms_is_queried():
    venue = FakeVenue()
    venue.script["ws"] = ["ack"]
    gateway = make_gateway(venue)
    venue.gateway = None  # the stream shows nothing
    gateway.executions.clear()
    order = await gateway.place(new_order())
    assert order.state is OrderState.ACKED
    await asyncio.sleep(0.6)
    assert order.confirmed and order.state is OrderState.OPEN and len(venue.orders) == 1


async def test_fills_and_the_final_state_reach_executions_once_each():
    venue = FakeVenue()
    gateway = make_gateway(venue)
    order = await gateway.place(new_order())
    await asyncio.sleep(0.05)
    fill = Trade(exchange="fakex", market=Market.SPOT, symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="t1",
                 order_id=order.order_id, client_order_id=order.client_order_id, side=Side.BUY, amount="0.01",
                 price="64990", cost="649.9", timestamp=now_ms(), source="websocket")
    gateway.on_trade(fill)
    gateway.on_trade(fill)  # the same fill again (a backfill's copy)
    update = OrderUpdate(exchange="fakex", market=Market.SPOT, symbol="BTC/USDT", symbol_raw="BTCUSDT",
                         order_id=order.order_id, client_order_id=order.client_order_id, side=Side.BUY,
                         order_type="limit", status=OrderStatus.FILLED, status_raw="FILLED", amount="0.01",
                         price="65000", filled="0.01", timestamp=now_ms())
    gateway.on_order_update(update)
    gateway.on_order_update(attrs.evolve(update, status=OrderStatus.NEW, filled="0"))  # a stale state, late
    kinds = [e.kind for e in gateway.executions]
    assert kinds == ["acked", "open", "fill", "filled"]
    assert order.state is OrderState.FILLED and order.filled == Decimal("0.01") and order.average == Decimal("64990")


async def test_a_cancel_refused_because_it_filled_reports_the_fill():
    venue = FakeVenue()
    gateway = make_gateway(venue)
    order = await gateway.place(new_order())
    await asyncio.sleep(0.05)
    venue.orders[order.client_order_id]["status"] = "filled"  # it filled; the fill's frames are still on the way
    gateway.rules = attrs.evolve(gateway.rules, rest=attrs.evolve(
        gateway.rules.rest, cancel=lambda client, ref: _answer(rejected("-2011", "Unknown order sent."))))
    result = await gateway.cancel(order)
    assert result.state is OrderState.FILLED and result.filled == Decimal("0.01")


async def _answer(outcome):
    return outcome


async def test_unknown_past_the_timeout_then_settled_as_never_placed():
    venue = FakeVenue()
    venue.script["ws"] = ["lose"]
    venue.script["rest"] = ["lose"] * 50
    gateway = make_gateway(venue, order_timeout_seconds=0.4)

    async def failing_query(client, ref):
        return ambiguous("query timed out")

    gateway.rules = attrs.evolve(gateway.rules, rest=attrs.evolve(gateway.rules.rest, query=failing_query))
    order = await gateway.place(new_order())
    assert order.state is OrderState.UNKNOWN and venue.orders == {}
    assert OutcomeKind.AMBIGUOUS  # the venue never answered; it is not called rejected while unsure
    gateway.rules = attrs.evolve(gateway.rules, rest=attrs.evolve(gateway.rules.rest, query=venue.query))
    assert await order.wait_final(8.0)
    assert order.state is OrderState.REJECTED and "never placed" in order.reason and venue.orders == {}
    await gateway.stop()
