"""The simulator's matching engine: order requests from every venue's WebSocket trading protocol and REST order
endpoints, the venue's client-id rules, resting orders filled by the symbol's price process, and the order-entry
faults (a lost request, a dropped or late ack, a late execution, "status unknown", a cut connection, a refused
login, the execution report before the ack).

Venue plugins translate their wire format to a `SimRequest` and a `SimResult` back; the engine owns what happens.
Its ledger is the book of record the order chaos suite holds the gateway to."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Protocol

import attrs
from loguru import logger

from framework.events import Market, OrderStatus, Side, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.account import SimAccount
    from exchanges.simulator.ledger import Ledger, SimOrder
    from exchanges.simulator.market import SymbolMarket
    from exchanges.simulator.venues.base import VenueSim


class EngineHost(Protocol):
    """The running simulator as the engine sees it (`server.Simulator` is one)."""

    def venue(self, exchange: str) -> VenueSim: ...

    def ledger(self, exchange: str, market: Market | str) -> Ledger: ...

    def account(self, exchange: str, market: Market | str) -> SimAccount: ...

    def market(self, exchange: str, market: Market | str, symbol: str) -> SymbolMarket: ...

    async def announce_order(self, exchange: str, market: Market | str, order: SimOrder,
                             assets: Iterable[str] = ()) -> None: ...

    async def cancel_order(self, exchange: str, market: Market | str, order: SimOrder,
                           status: OrderStatus = OrderStatus.CANCELED) -> None: ...

    async def fill_order(self, exchange: str, market: Market | str, order: SimOrder, amount: Any, *,
                         is_maker: bool | None = None, price: Any = None) -> Any: ...

# What an op may go wrong with (the chaos suite draws them; a test names them one by one).
ORDER_FAULTS = ("lose", "drop_ack", "delay_ack", "delay_exec", "unknown", "disconnect", "reorder")


class ClientIdPolicy:
    """How a venue treats a client id it has seen before."""

    OPEN_UNIQUE = "open_unique"  # Binance: unique among open orders; reusable once the earlier one is done
    ALWAYS_UNIQUE = "always_unique"  # Bybit: never twice
    OVERRIDE = "override"  # Gate: accepted again; the id then names the newer order
    FREE = "free"  # no check (Hyperliquid's cloid: not documented as a dedup key)


@attrs.frozen(kw_only=True)
class SimRequest:
    """One order request as a venue plugin read it off the wire (amounts and prices in the ledger's units)."""

    op: str  # "place" | "cancel" | "amend" | "query"
    symbol: str
    client_order_id: str | None = None
    order_id: str | None = None
    side: Side | None = None
    amount: Decimal | None = None
    price: Decimal | None = None
    order_type: str = "limit"  # limit | market | ioc | post_only
    reduce_only: bool = False
    trigger_price: Decimal | None = None  # a conditional order, triggered at this price
    trigger: str | None = None  # "take_profit" | "stop_loss"
    valid_until: int | None = None  # ms: the venue never executes it later (recvWindow, expiresAfter …)
    rename_to: str | None = None  # cancel: the client id the cancelled order carries afterwards (Binance)
    new_client_order_id: str | None = None  # amend that makes a new order (Binance cancelReplace)


@attrs.frozen(kw_only=True)
class SimResult:
    """What the engine did. kind: "ok" (order = its state now), "reject" (reason, message: nothing executed),
    "not_found", "unknown" (the venue's 'execution status unknown' answer; it may or may not have executed)."""

    kind: str
    order: Any = None  # SimOrder (a live reference: render it at once)
    reason: str = ""  # reject: invalid | duplicate_client_id | would_cross | expired | not_open | insufficient
    message: str = ""


Answer = Callable[[SimResult], Awaitable[None]]


@attrs.define
class OrderFaults:
    queued: dict = attrs.field(factory=dict)  # (exchange, market) -> [fault, …] for the next order requests
    rates: dict = attrs.field(factory=dict)  # fault -> probability per request (the chaos suite)
    paths: frozenset = frozenset({"ws", "rest"})  # which paths the drawn faults hit
    ops: frozenset = frozenset({"place", "cancel", "amend"})  # which ops the drawn faults hit
    ack_delay: float = 3.0  # seconds a late ack (delay_ack) comes after the execution
    exec_delay: float = 3.0  # seconds a late execution (delay_exec) waits
    refuse_logins: dict = attrs.field(factory=dict)  # (exchange, market) -> WS trading logins still to refuse


class OrderEngine:
    """One per simulator: every (venue, market)'s orders, matched against the symbol's public book."""

    def __init__(self, sim: EngineHost, seed: int | None = None) -> None:
        self.sim = sim
        self.faults = OrderFaults()
        self._random = random.Random(seed)
        self.requests = 0  # order requests handled (any op, any path)
        self.faults_applied: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self.conditional: dict[tuple[str, Market], list[SimOrder]] = {}  # untriggered TP/SL orders
        # Orders placed through order entry, per (venue, market): the ones the book fills (an order a test made
        # with Simulator.place_order rests until the test fills it).
        self.placed: dict[tuple[str, Market], dict[str, SimOrder]] = {}

    # faults ------------------------------------------------------------------------------------------------------
    def fault(self, exchange: str, market: Market | str, *faults: str) -> None:
        """The next order requests of a (venue, market) go wrong this way, one fault each, in order."""
        for fault in faults:
            if fault not in ORDER_FAULTS:
                raise ValueError(f"unknown order fault {fault!r}: use one of {', '.join(ORDER_FAULTS)}")
        self.faults.queued.setdefault((exchange, Market.parse(market)), []).extend(faults)

    def refuse_logins(self, exchange: str, market: Market | str, count: int = 1) -> None:
        """The next `count` WS trading logins of a (venue, market) are refused (the venue's own error)."""
        key = (exchange, Market.parse(market))
        self.faults.refuse_logins[key] = self.faults.refuse_logins.get(key, 0) + count

    def login_refused(self, exchange: str, market: Market) -> bool:
        """For plugins: whether this WS trading login is to be refused (counts it down)."""
        left = self.faults.refuse_logins.get((exchange, market), 0)
        if left > 0:
            self.faults.refuse_logins[(exchange, market)] = left - 1
            return True
        return False

    def _draw(self, exchange: str, market: Market, op: str, path: str) -> str | None:
        queued = self.faults.queued.get((exchange, market))
        if queued:
            return queued.pop(0)
        if not self.faults.rates or op not in self.faults.ops or path not in self.faults.paths:
            return None
        roll = self._random.random()
        for fault, rate in self.faults.rates.items():
            if roll < rate:
                return fault
            roll -= rate
        return None

    # requests ----------------------------------------------------------------------------------------------------
    def submit(self, exchange: str, market: Market, request: SimRequest, answer: Answer, *, path: str = "ws",
               transport: Any = None) -> None:
        """Handle a WS request in its own task (a late ack must not hold up the socket's other requests)."""
        task = asyncio.create_task(self.handle(exchange, market, request, answer, path=path, transport=transport),
                                   name=f"sim-order-{exchange}_{market.value}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def call(self, exchange: str, market: Market, request: SimRequest, *, transport: Any = None
                   ) -> SimResult | None:
        """Handle a REST request: its result, or None when a fault leaves it unanswered (the connection is cut)."""
        results: list[SimResult] = []

        async def keep(result: SimResult) -> None:
            results.append(result)

        await self.handle(exchange, market, request, keep, path="rest", transport=transport)
        return results[0] if results else None

    async def handle(self, exchange: str, market: Market, request: SimRequest, answer: Answer, *, path: str,
                     transport: Any = None) -> None:
        self.requests += 1
        fault = None if request.op == "query" else self._draw(exchange, market, request.op, path)
        if fault is not None:
            self.faults_applied[fault] = self.faults_applied.get(fault, 0) + 1
            logger.bind(exchange=exchange, market=market.value, op=request.op, fault=fault,
                        client_order_id=request.client_order_id).debug("simulator order fault")
        rng = self._random
        try:
            if fault == "lose":
                return  # never reached the venue
            if fault == "delay_exec":
                await asyncio.sleep(self.faults.exec_delay)
            executes = fault not in ("unknown", "disconnect") or rng.random() < 0.5
            if not executes:
                if fault == "unknown":
                    await answer(SimResult(kind="unknown", message="execution status unknown"))
                else:
                    _cut(transport)
                return
            result, push = self._execute(exchange, market, request)
            if fault == "drop_ack":
                await push()
                return
            if fault == "disconnect":
                await push()
                _cut(transport)
                return
            if fault == "unknown":
                await push()
                await answer(SimResult(kind="unknown", message="execution status unknown"))
                return
            if fault == "reorder":
                await push()
                await answer(result)
                return
            if fault == "delay_ack":
                await push()
                await asyncio.sleep(self.faults.ack_delay)
                await answer(result)
                return
            await answer(result)
            await push()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a rendering bug in a plugin must show, not kill the simulator
            logger.exception("simulator order request failed")

    # the matching engine -----------------------------------------------------------------------------------------
    def _execute(self, exchange: str, market: Market, request: SimRequest) -> tuple[SimResult, Callable]:
        """Do the request on the book of record now; returns its result and a coroutine function that pushes what
        it did to the private streams (order, fills, account), for the caller to order against the answer."""
        now = now_ms()
        if request.valid_until is not None and now > request.valid_until:
            return _reject("expired", "request outside its validity window (not executed)")
        op = getattr(self, f"_{request.op}")
        return op(exchange, market, request, now)

    def _ledger(self, exchange: str, market: Market):
        return self.sim.ledger(exchange, market)

    def find(self, exchange: str, market: Market | str, *, order_id: str | None = None,
             client_order_id: str | None = None) -> SimOrder | None:
        """An order by venue id, else by client id (the newest with it: Gate's 'the latter overrides')."""
        ledger = self._ledger(exchange, Market.parse(market))
        if order_id is not None:
            return ledger.orders.get(str(order_id))
        if client_order_id is None:
            return None
        found = None
        for order in ledger.orders.values():
            if order.client_order_id == client_order_id:
                found = order
        return found

    def _place(self, exchange: str, market: Market, request: SimRequest, now: int) -> tuple[SimResult, Callable]:
        venue = self.sim.venue(exchange)
        ledger = self._ledger(exchange, market)
        if request.side is None or request.amount is None or request.amount <= 0:
            return _reject("invalid", "amount must be positive")
        limit = request.order_type != "market"
        if limit and (request.price is None or request.price <= 0):
            return _reject("invalid", "price must be positive for a limit order")
        coid = request.client_order_id
        policy = getattr(venue, "client_id_policy", ClientIdPolicy.FREE)
        if coid is not None and policy != ClientIdPolicy.FREE and policy != ClientIdPolicy.OVERRIDE:
            for order in ledger.orders.values():
                if order.client_order_id == coid and (
                        policy == ClientIdPolicy.ALWAYS_UNIQUE or not order.status.is_terminal):
                    return _reject("duplicate_client_id", "duplicate client order id")
        public = self.sim.market(exchange, market, request.symbol)
        if request.trigger_price is not None:
            order = ledger.new_order(request.symbol, request.side, request.amount,
                                     request.price or request.trigger_price, coid, now)
            order.order_type, order.trigger_price, order.trigger = "market", request.trigger_price, request.trigger
            order.reduce_only = request.reduce_only
            self.conditional.setdefault((exchange, market), []).append(order)
            return SimResult(kind="ok", order=order), _nothing
        buy = request.side is Side.BUY
        ask, bid = public.best_ask()[0], public.best_bid()[0]
        crosses = request.order_type == "market" or (request.price >= ask if buy else request.price <= bid)
        if request.order_type == "post_only" and crosses:
            return _reject("would_cross", "post-only order would take liquidity")
        price = (ask if buy else bid) if request.order_type == "market" else request.price
        order = ledger.new_order(request.symbol, request.side, request.amount, price, coid, now)
        order.order_type = "market" if request.order_type == "market" else "limit"
        order.time_in_force = {"ioc": "ioc", "market": "ioc", "post_only": "post_only"}.get(request.order_type, "gtc")
        order.reduce_only = request.reduce_only
        self.placed.setdefault((exchange, market), {})[order.order_id] = order
        sim = self.sim
        assets = sim.account(exchange, market).placed(order, now)

        async def push() -> None:
            await sim.announce_order(exchange, market, order, assets)
            if crosses and order.status is OrderStatus.NEW:
                taken = public.take(request.side, now_ms())  # at the book's price (a limit buy above the ask: the ask)
                await sim.fill_order(exchange, market, order, order.remaining, is_maker=False, price=taken)
            elif order.time_in_force == "ioc" and order.status is OrderStatus.NEW:
                await sim.cancel_order(exchange, market, order, status=OrderStatus.EXPIRED)

        return SimResult(kind="ok", order=order), push

    def _lookup(self, exchange: str, market: Market, request: SimRequest) -> SimOrder | None:
        if request.order_id is not None:
            return self.find(exchange, market, order_id=request.order_id)
        return self.find(exchange, market, client_order_id=request.client_order_id)

    def _cancel(self, exchange: str, market: Market, request: SimRequest, now: int) -> tuple[SimResult, Callable]:
        order = self._lookup(exchange, market, request)
        if order is None:
            return SimResult(kind="not_found", message="order does not exist"), _nothing
        if order.status.is_terminal:
            return _reject("not_open", f"order is {order.status.value}", order)
        if request.rename_to is not None:
            order.client_order_id = request.rename_to
        pending = self.conditional.get((exchange, market), [])
        untriggered = order in pending
        if untriggered:
            pending.remove(order)
        sim = self.sim
        # An untriggered TP/SL order never locked anything (it locks when it triggers): nothing to give back.
        assets = [] if untriggered else sim.account(exchange, market).canceled(order, now)
        self._ledger(exchange, market).cancel(order, now)

        async def push() -> None:
            await sim.announce_order(exchange, market, order, assets)

        return SimResult(kind="ok", order=order), push

    def _amend(self, exchange: str, market: Market, request: SimRequest, now: int) -> tuple[SimResult, Callable]:
        order = self._lookup(exchange, market, request)
        if order is None:
            return SimResult(kind="not_found", message="order does not exist"), _nothing
        if order.status.is_terminal:
            return _reject("not_open", f"order is {order.status.value}", order)
        if request.amount is not None and request.amount <= order.filled:
            return _reject("invalid", "new amount is not above what has filled")
        if request.price is not None and request.price <= 0:
            return _reject("invalid", "price must be positive")
        sim = self.sim
        account = sim.account(exchange, market)
        changed = account.canceled(order, now)  # unlock at the old terms, lock again at the new
        if request.amount is not None:
            order.amount = request.amount
        if request.price is not None:
            order.price = request.price
        if request.new_client_order_id is not None:
            order.client_order_id = request.new_client_order_id
        changed = sorted({*changed, *account.placed_remaining(order, now)})
        order.updated = now

        async def push() -> None:
            await sim.announce_order(exchange, market, order, assets=changed)

        return SimResult(kind="ok", order=order), push

    def _query(self, exchange: str, market: Market, request: SimRequest, now: int) -> tuple[SimResult, Callable]:
        order = self._lookup(exchange, market, request)
        venue = self.sim.venue(exchange)
        if order is None or order.order_id in venue.forgotten_orders:
            return SimResult(kind="not_found", message="order does not exist"), _nothing
        return SimResult(kind="ok", order=order), _nothing

    # resting orders ----------------------------------------------------------------------------------------------
    def resting(self) -> set[tuple[str, Market, str]]:
        """(exchange, market, symbol) with open orders or untriggered TP/SL: their markets keep moving."""
        found = set()
        for (exchange, market), orders in self.placed.items():
            for order_id, order in list(orders.items()):
                if order.status.is_terminal:
                    del orders[order_id]
                else:
                    found.add((exchange, market, order.symbol))
        for (exchange, market), orders in self.conditional.items():
            found.update((exchange, market, o.symbol) for o in orders)
        return found

    async def match(self, exchange: str, market: Market, symbol: str) -> None:
        """After a market step: fill the resting orders the book now crosses (as maker, sometimes in part), and
        trigger the TP/SL orders whose price was reached (filled at the market)."""
        public = self.sim.market(exchange, market, symbol)
        bid, ask = public.best_bid()[0], public.best_ask()[0]
        for order in [o for o in self.placed.get((exchange, market), {}).values()
                      if o.symbol == symbol and not o.status.is_terminal]:
            if order.updated > public.time:
                continue  # placed or changed after this step's book: it waits for the next step
            if (order.side is Side.BUY and order.price >= ask) or (order.side is Side.SELL and order.price <= bid):
                amount = order.remaining
                step = Decimal(1).scaleb(amount.as_tuple().exponent)
                if amount > step and self._random.random() < 0.3:
                    amount = (amount / 2).quantize(step) or step
                await self.sim.fill_order(exchange, market, order, amount, is_maker=True)
        pending = self.conditional.get((exchange, market), [])
        for order in [o for o in pending if o.symbol == symbol]:
            mark = bid if order.side is Side.SELL else ask
            above = order.trigger_price <= mark
            long_exit = order.side is Side.SELL
            hit = (above if (order.trigger == "take_profit") == long_exit else not above)
            if hit:
                pending.remove(order)
                order.price = mark
                account = self.sim.account(exchange, market)
                await self.sim.announce_order(exchange, market, order, account.placed(order, now_ms()))
                await self.sim.fill_order(exchange, market, order, order.remaining, is_maker=False)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _reject(reason: str, message: str, order: Any = None) -> tuple[SimResult, Callable]:
    return SimResult(kind="reject", reason=reason, message=message, order=order), _nothing


async def _nothing() -> None:
    return None


def _cut(transport: Any) -> None:
    if transport is not None:
        transport.abort()
