"""The order chaos suite: seeded order requests through strategies on every venue with order entry, while the
simulator loses requests, drops and delays acks, executes late, answers "status unknown", cuts connections
mid-request, reorders acks and execution reports, and refuses a WebSocket trading login. In the end, for every
request: exactly one order at the venue (the simulator's book of record) or a definite rejection with none, the
gateway's view of each order equal to the venue's, and every final state handed to on_execution exactly once.

`TRADESYNC_ORDER_CHAOS_SEED` replays one seed; `TRADESYNC_ORDER_CHAOS_REQUESTS` sets the requests per pair."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from collections import Counter
from decimal import Decimal

import pytest

from exchanges.simulator import Simulator
from framework.events import Market, OrderStatus
from framework.orders import OrderError, OrderState, WebSocketTradingConfig, setup_websocket_trading
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

SEED = int(os.environ.get("TRADESYNC_ORDER_CHAOS_SEED", "0")) or random.randrange(1, 10**6)
REQUESTS = int(os.environ.get("TRADESYNC_ORDER_CHAOS_REQUESTS", "300"))
ONLY = os.environ.get("TRADESYNC_ORDER_CHAOS_PAIRS")  # e.g. "mexc_spot,bitget_future": a subset

# (exchange, market, symbol, client id prefix): every pair with order entry; WS trading on all but MEXC
# (REST only) and Bitget (opt-in: granted in the simulator here).
PAIRS = [
    ("binance", "spot", "BTC/USDT", "cx"),
    ("binance", "future", "BTC/USDT:USDT", "cx"),
    ("bybit", "spot", "BTC/USDT", "cx"),
    ("bybit", "future", "BTC/USDT:USDT", "cx"),
    ("gate", "spot", "BTC/USDT", "cx"),
    ("gate", "future", "BTC/USDT:USDT", "cx"),
    ("hyperliquid", "future", "BTC/USDC:USDC", "0xc4"),
    ("bitget", "spot", "BTC/USDT", "cx"),
    ("bitget", "future", "BTC/USDT:USDT", "cx"),
    ("mexc", "spot", "BTC/USDT", "cx"),
]
if ONLY:
    PAIRS = [p for p in PAIRS if f"{p[0]}_{p[1]}" in ONLY.split(",")]
FAULT_RATES = {"lose": 0.03, "drop_ack": 0.03, "delay_ack": 0.03, "delay_exec": 0.02, "unknown": 0.03,
               "disconnect": 0.02, "reorder": 0.05}
CONFIG = WebSocketTradingConfig(max_concurrent_orders=20, ack_timeout_seconds=0.5, confirm_timeout_seconds=1.0,
                                order_timeout_seconds=30.0, clock_skew_ms=200, websocket_retry_attempts=50,
                                websocket_opt_in=frozenset({"bitget"}))


class Trader(BaseStrategy):
    def on_start(self) -> None:
        self.finals: Counter[str] = Counter()  # client id -> final executions seen
        self.kinds: Counter[str] = Counter()

    def on_execution(self, execution) -> None:
        self.kinds[execution.kind] += 1
        if execution.final:
            self.finals[execution.order.client_order_id] += 1


async def _one(strategy: Trader, sim: Simulator, exchange: str, market: str, symbol: str, rng: random.Random,
               orders: list) -> None:
    public = sim.market(exchange, market, symbol)
    bid, ask = public.best_bid()[0], public.best_ask()[0]
    side = rng.choice(("buy", "sell"))
    kind = rng.choices(("limit", "ioc", "market", "passive"), (3, 2, 1, 4))[0]
    tick = Decimal("0.1")
    if kind == "market":
        price, order_type = None, "market"
    elif kind == "passive":  # rests a while: amended or cancelled later, or filled as the book moves
        price, order_type = (bid - tick * rng.randint(0, 3)) if side == "buy" else (ask + tick * rng.randint(0, 3)), "limit"
    else:
        price, order_type = (ask if side == "buy" else bid), kind
    amount = Decimal(rng.randint(1, 5)) / 1000
    order = await strategy.place_order(symbol, side, amount, price=price, order_type=order_type)
    orders.append(order)
    if order.final or order_type != "limit":
        return
    await asyncio.sleep(rng.random() * 0.3)
    roll = rng.random()
    if roll < 0.2:
        try:
            await strategy.amend_order(order, price=price - tick if side == "buy" else price + tick)
        except OrderError:
            pass  # refused (it filled meanwhile, or the venue has no amend): the order is as the venue says
    if roll < 0.8:
        await strategy.cancel_order(order)


async def _run_pair(sim: Simulator, pool: ConnectionPool, exchange: str, market: str, symbol: str, prefix: str,
                    rng: random.Random) -> tuple[Trader, list]:
    strategy = Trader(f"chaos-{exchange}-{market}", [sim.connector(exchange, market)], symbols=[symbol], pool=pool,
                      client_order_id_prefix=prefix)
    await strategy.start()
    orders: list = []
    pending: set[asyncio.Task] = set()
    for n in range(REQUESTS):
        if len(pending) >= 15:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.add(asyncio.create_task(_one(strategy, sim, exchange, market, symbol, rng, orders)))
        if n % 97 == 50:
            await sim.drop(exchange, market)  # every socket of the key, mid-traffic
        if n % 150 == 100:
            sim.orders.refuse_logins(exchange, market, 1)
        await asyncio.sleep(0.005)
    await asyncio.gather(*pending)
    return strategy, orders


def _check(sim: Simulator, exchange: str, market: str, strategy: Trader, orders: list) -> list[str]:
    """The gateway's orders against the simulator's book of record. An order is matched by its client ids (the
    one asked, the one after an amend renamed it) and by its venue order id (Binance renames a cancelled order's
    client id)."""
    problems = []
    ledger = sim.ledger(exchange, Market.parse(market))
    by_coid: dict[str, list] = {}
    for sim_order in ledger.orders.values():
        by_coid.setdefault(sim_order.client_order_id, []).append(sim_order)
    names = {o.request.client_order_id for o in orders} | {o.client_order_id for o in orders}
    ids = {o.order_id for o in orders if o.order_id}
    for order in orders:
        found = {p.order_id: p for name in {order.request.client_order_id, order.client_order_id}
                 for p in by_coid.get(name, [])}
        if order.order_id and order.order_id in ledger.orders:
            found[order.order_id] = ledger.orders[order.order_id]
        placed = list(found.values())
        if order.state is OrderState.REJECTED:
            if placed:
                problems.append(f"{order.client_order_id}: rejected here ({order.reason}), yet at the venue: "
                                f"{[(p.order_id, p.status.value) for p in placed]}")
            continue
        if len(placed) != 1:
            problems.append(f"{order.client_order_id}: {len(placed)} orders at the venue ({order.state.value})")
            continue
        venue = placed[0]
        if order.state is OrderState.UNKNOWN:
            problems.append(f"{order.client_order_id}: still unknown")
        elif order.final and _ended(order.state.value) != _ended(venue.status.value):
            problems.append(f"{order.client_order_id}: {order.state.value} here, {venue.status.value} at the venue")
        elif not order.final and venue.status.is_terminal:
            problems.append(f"{order.client_order_id}: {order.state.value} here, {venue.status.value} at the venue")
        elif order.filled != venue.filled and order.final:
            problems.append(f"{order.client_order_id}: filled {order.filled} here, {venue.filled} at the venue")
    strays = [o.client_order_id for o in ledger.orders.values()
              if (o.client_order_id or "").startswith(strategy.client_order_id_prefix)
              and o.client_order_id not in names and o.order_id not in ids]
    if strays:
        problems.append(f"orders at the venue the gateway does not know: {strays[:5]}")
    for order in orders:
        seen = strategy.finals[order.client_order_id] + (
            strategy.finals[order.request.client_order_id] if order.client_order_id != order.request.client_order_id
            else 0)
        if order.final and seen != 1:
            problems.append(f"{order.client_order_id}: final state reached on_execution {seen} times")
    return problems


def _ended(state: str) -> str:
    """An unfilled remainder's end: venues call an IOC's 'expired' or 'canceled' (Bitget, Bybit): the same here."""
    return "canceled" if state == "expired" else state


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_order_chaos_every_request_ends_in_one_order_or_a_definite_rejection():
    rng = random.Random(SEED)
    print(f"order chaos seed {SEED} (replay: TRADESYNC_ORDER_CHAOS_SEED={SEED}), {REQUESTS} requests per pair")
    directory = tempfile.mkdtemp()
    async with Simulator(seed=SEED, market_rate=20) as sim:
        sim.venue("bitget").ws_trading = True
        sim.orders.faults.rates = dict(FAULT_RATES)
        sim.orders.faults.ack_delay = 1.0
        sim.orders.faults.exec_delay = 1.0
        pool = ConnectionPool(f"sqlite:///{directory}/chaos.db", log_dir=directory)
        await pool.start()
        trading = await setup_websocket_trading(pool, CONFIG)
        runs = await asyncio.gather(*(_run_pair(sim, pool, ex, mk, sym, prefix, random.Random(rng.random()))
                                      for ex, mk, sym, prefix in PAIRS))
        sim.orders.faults.rates = {}
        # let open orders settle: cancel what rests, let background reconciliation finish
        for strategy, orders in runs:
            await strategy.cancel_all_orders(timeout=30)
        for _ in range(300):
            if all(o.final for _, orders in runs for o in orders):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # the last fills and final states reach the strategies
        problems = []
        for (exchange, market, _, _), (strategy, orders) in zip(PAIRS, runs):
            await strategy.drained()
            problems += [f"{exchange}_{market} {p}" for p in _check(sim, exchange, market, strategy, orders)]
        metrics = trading.get_metrics()
        print("faults applied", sim.orders.faults_applied, "fallbacks", metrics["fallback_events"],
              "double orders prevented", metrics["double_orders_prevented"])
        total = sum(len(orders) for _, orders in runs)
        for strategy, _ in runs:
            await strategy.stop()
        await pool.stop()
    assert total == REQUESTS * len(PAIRS)
    assert sum(sim.orders.faults_applied.values()) > total * 0.05  # the faults really happened
    assert not problems, f"seed {SEED}: " + "\n".join(problems[:40])
