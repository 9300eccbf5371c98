"""Order entry on every venue, through the pool, the gateway and the strategy API, against the simulator: an order
that takes liquidity fills and its fills reach the strategy that placed it (not the other one on the key); a resting
order is confirmed, read back, amended where the venue can, and cancelled; WebSocket where the venue has it, then
REST when told to prefer it; every order exactly once in the simulator's book of record."""

import asyncio
import tempfile
from decimal import Decimal

import pytest

from exchanges.simulator import Simulator
from framework.events import Market
from framework.orders import OrderError, OrderState, Path, WebSocketTradingConfig, setup_websocket_trading
from framework.pool import ConnectionPool
from framework.store import open_store
from framework.strategy import BaseStrategy

# (exchange, market, symbol, prefixes of the two strategies, the path a first order takes, amend possible)
PAIRS = [
    ("binance", "spot", "BTC/USDT", ("ta", "tb"), Path.WEBSOCKET, True),
    ("binance", "future", "BTC/USDT:USDT", ("ta", "tb"), Path.WEBSOCKET, True),
    ("bybit", "spot", "BTC/USDT", ("ta", "tb"), Path.WEBSOCKET, True),
    ("bybit", "future", "BTC/USDT:USDT", ("ta", "tb"), Path.WEBSOCKET, True),
    ("gate", "spot", "BTC/USDT", ("ta", "tb"), Path.WEBSOCKET, True),
    ("gate", "future", "BTC/USDT:USDT", ("ta", "tb"), Path.WEBSOCKET, True),
    ("bitget", "spot", "BTC/USDT", ("ta", "tb"), Path.REST, False),  # WS trading is granted per account
    ("bitget", "future", "BTC/USDT:USDT", ("ta", "tb"), Path.REST, True),
    ("mexc", "spot", "BTC/USDT", ("ta", "tb"), Path.REST, False),
    ("hyperliquid", "future", "BTC/USDC:USDC", ("0xaa", "0xbb"), Path.WEBSOCKET, True),
]
CONFIG = WebSocketTradingConfig(ack_timeout_seconds=2.0, confirm_timeout_seconds=2.0, order_timeout_seconds=20.0)


class Recorder(BaseStrategy):
    def on_start(self) -> None:
        self.trades = []
        self.executions = []

    def on_trade(self, trade) -> None:
        self.trades.append(trade)

    def on_execution(self, execution) -> None:
        self.executions.append(execution)


async def _until(check, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.timeout(90)
@pytest.mark.parametrize("exchange, market, symbol, prefixes, first_path, amends", PAIRS,
                         ids=[f"{p[0]}_{p[1]}" for p in PAIRS])
async def test_orders_place_fill_route_amend_query_cancel_on_each_venue(exchange, market, symbol, prefixes,
                                                                         first_path, amends):
    directory = tempfile.mkdtemp()
    async with Simulator(exchanges=[exchange], seed=3) as sim:
        pool = ConnectionPool(f"sqlite:///{directory}/orders.db", log_dir=directory)
        await pool.start()
        trading = await setup_websocket_trading(pool, CONFIG)
        mine = Recorder("mine", [sim.connector(exchange, market)], symbols=[symbol], pool=pool,
                        client_order_id_prefix=prefixes[0])
        other = Recorder("other", [sim.connector(exchange, market)], symbols=[symbol], pool=pool,
                         client_order_id_prefix=prefixes[1])
        await mine.start()
        await other.start()
        ledger = sim.ledger(exchange, Market.parse(market))
        book = sim.market(exchange, market, symbol)

        # an order that takes liquidity: filled, its fills to the strategy that placed it
        taker = await mine.place_order(symbol, "buy", "0.01", price=book.best_ask()[0] + 10, order_type="limit")
        assert taker.path is first_path, taker
        assert await taker.wait_final(10), taker
        assert taker.state is OrderState.FILLED and taker.filled == Decimal("0.01")
        assert await _until(lambda: sum(t.base_amount for t in mine.trades) == Decimal("0.01")), mine.trades
        assert all(t.client_order_id == taker.client_order_id for t in mine.trades)
        assert other.trades == [] and other.executions == []
        assert [e.kind for e in mine.executions if e.final] == ["filled"]
        venue = ledger.orders[taker.order_id]
        assert venue.status.value == "filled" and venue.side.value == "buy"

        # a resting order: confirmed, read back, amended (where the venue can), cancelled
        bid = book.best_bid()[0]
        resting = await mine.place_order(symbol, "buy", "0.02", price=bid - 50, order_type="limit")
        assert await _until(lambda: resting.state is OrderState.OPEN), resting
        snapshot = await mine.get_order_status(resting)
        assert snapshot.state is OrderState.OPEN and snapshot.order_id == resting.order_id
        if amends:
            await mine.amend_order(resting, price=bid - 60)
            assert await _until(lambda: ledger.orders.get(resting.order_id) is not None
                                and ledger.orders[resting.order_id].price == bid - 60), ledger.orders
        else:
            with pytest.raises(OrderError):
                await mine.amend_order(resting, price=bid - 60)
        cancelled = await mine.cancel_order(resting)
        assert cancelled.state is OrderState.CANCELED, cancelled
        assert ledger.orders[resting.order_id].status.value == "canceled"

        # REST when told to prefer it
        await trading.force_websocket_preference(False)
        by_rest = await mine.place_order(symbol, "sell", "0.01", price=book.best_ask()[0] + 50, order_type="limit")
        assert by_rest.path is Path.REST and not by_rest.final
        assert (await mine.cancel_order(by_rest)).state is OrderState.CANCELED

        # every order once at the venue, nothing else of ours there
        ours = {taker.order_id, resting.order_id, by_rest.order_id}
        placed = [o for o in ledger.orders.values() if o.order_id in ours]
        assert len(placed) == 3
        strays = [o for o in ledger.orders.values() if o.order_id not in ours]
        assert strays == []
        figures = trading.get_metrics()
        assert figures["orders_placed"] == 3 and figures["orders_filled"] == 1 and figures["orders_canceled"] == 2
        await mine.stop()
        await other.stop()
        await pool.stop()
        store = open_store(f"sqlite:///{directory}/orders.db")
        await store.start()
        stored = {r["client_order_id"]: r for r in await store.fetch_order_requests()}
        await store.stop()
        assert stored[taker.client_order_id]["state"] == "filled"
        assert stored[by_rest.client_order_id]["request_path"] == "rest"


async def test_mexc_futures_orders_are_refused_with_the_venues_reason():
    directory = tempfile.mkdtemp()
    async with Simulator(exchanges=["mexc"]) as sim:
        pool = ConnectionPool(f"sqlite:///{directory}/orders.db", log_dir=directory)
        await pool.start()
        strategy = Recorder("s", [sim.connector("mexc", "future")], symbols=["BTC/USDT:USDT"], pool=pool)
        await strategy.start()
        with pytest.raises(OrderError, match="1002"):
            await strategy.place_order("BTC/USDT:USDT", "buy", "0.01", price="65000")
        assert sim.ledger("mexc", "future").orders == {}
        await strategy.stop()
        await pool.stop()


TPSL = [
    ("binance", "future", "BTC/USDT:USDT", "ta"),
    ("bybit", "future", "BTC/USDT:USDT", "ta"),
    ("gate", "future", "BTC/USDT:USDT", "ta"),
    ("bitget", "future", "BTC/USDT:USDT", "ta"),
    ("hyperliquid", "future", "BTC/USDC:USDC", "0xaa"),
]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("exchange, market, symbol, prefix", TPSL, ids=[f"{p[0]}_{p[1]}" for p in TPSL])
async def test_take_profit_and_stop_loss_go_out_once_the_entry_fills_and_one_cancels_the_other(
        exchange, market, symbol, prefix):
    directory = tempfile.mkdtemp()
    async with Simulator(exchanges=[exchange], seed=5, market_rate=20) as sim:
        pool = ConnectionPool(f"sqlite:///{directory}/orders.db", log_dir=directory)
        await pool.start()
        await setup_websocket_trading(pool, CONFIG)
        mine = Recorder("mine", [sim.connector(exchange, market)], symbols=[symbol], pool=pool,
                        client_order_id_prefix=prefix)
        await mine.start()
        ledger = sim.ledger(exchange, Market.parse(market))
        book = sim.market(exchange, market, symbol)
        bid = book.best_bid()[0]
        # a long entry; its take-profit already reached (it fires at the next step), its stop-loss far below
        entry = await mine.place_order(symbol, "buy", "0.01", price=book.best_ask()[0] + 10,
                                       take_profit=bid - 100, stop_loss=bid - 5000)
        assert await entry.wait_final(10) and entry.state is OrderState.FILLED
        assert await _until(lambda: len(entry.children) == 2, 10), entry.children
        take_profit = next(c for c in entry.children if c.kind == "take_profit")
        stop_loss = next(c for c in entry.children if c.kind == "stop_loss")
        assert take_profit.request.reduce_only and take_profit.side.value == "sell"
        assert take_profit.amount == Decimal("0.01") and take_profit.request.trigger_price == bid - 100
        assert await take_profit.wait_final(15), take_profit
        assert take_profit.state is OrderState.FILLED, take_profit
        assert await stop_loss.wait_final(15), stop_loss  # one cancels the other
        assert stop_loss.state is OrderState.CANCELED, stop_loss
        sells = [o for o in ledger.orders.values() if o.side.value == "sell"]
        assert sorted(o.status.value for o in sells) == ["canceled", "filled"]
        position = sim.account(exchange, Market.parse(market)).position(symbol)
        assert position.size == 0  # in and out
        await mine.stop()
        await pool.stop()
