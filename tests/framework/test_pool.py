import asyncio

import pytest

from exchanges.mock import MockConnector
from framework.errors import ConfigError, LifecycleError
from framework.events import Trade
from framework.pool import (
    ConnectionPool,
    get_connection_pool,
    initialize_connection_pool,
    shutdown_connection_pool,
)
from framework.strategy import BaseStrategy, StrategyState


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades, self.updates = [], []

    def on_trade(self, trade):
        self.trades.append(trade)

    def on_order_update(self, update):
        self.updates.append(update)


class Exploding(Recorder):
    def on_trade(self, trade):
        raise RuntimeError("strategy bug")


def connections(pool):
    return pool.get_connection_status()["connections"]


async def test_sharing_scenario_status_at_every_step(pool):
    s1 = Recorder("strategy_1", [MockConnector("binance", "spot"), MockConnector("bybit", "spot")], pool=pool)
    s2 = Recorder("strategy_2", [MockConnector("binance", "spot"), MockConnector("binance", "futures")], pool=pool)

    await s1.start()
    status = pool.get_connection_status()
    assert status["total_connections"] == 2 and status["total_strategies"] == 1
    assert {k: v["subscriber_count"] for k, v in status["connections"].items()} == {"binance_spot": 1, "bybit_spot": 1}
    assert all(v["status"] == "connected" and v["error"] is None for v in status["connections"].values())
    assert status["strategies"] == {"strategy_1": ["binance_spot", "bybit_spot"]}

    await s2.start()
    status = pool.get_connection_status()
    assert status["total_connections"] == 3 and status["total_strategies"] == 2
    assert {k: v["subscriber_count"] for k, v in status["connections"].items()} == {
        "binance_spot": 2, "bybit_spot": 1, "binance_future": 1,
    }
    assert status["strategies"]["strategy_2"] == ["binance_spot", "binance_future"]

    await s1.stop()
    status = pool.get_connection_status()
    assert status["total_connections"] == 2 and status["total_strategies"] == 1
    assert {k: v["subscriber_count"] for k, v in status["connections"].items()} == {
        "binance_spot": 1, "binance_future": 1,
    }
    assert "bybit_spot" not in status["connections"]

    await s2.stop()
    status = pool.get_connection_status()
    assert status["total_connections"] == 0 and status["total_strategies"] == 0
    assert status["connections"] == {} and status["strategies"] == {}
    assert s1.state is StrategyState.STOPPED and s2.state is StrategyState.STOPPED


async def test_twenty_strategies_starting_at_once_open_one_connection(pool):
    opened = []

    build = pool.build_connection

    def counting_slow_build(connector):  # the pool builds a key's connection from its connector
        opened.append(connector.key)
        connection, scheduler = build(connector)
        original = connection._open

        async def slow_open():
            await asyncio.sleep(0.05)  # a real socket takes a while: others arrive meanwhile
            await original()

        connection._open = slow_open
        return connection, scheduler

    pool.build_connection = counting_slow_build

    strategies = [Recorder(f"s{i}", [MockConnector("binance", "spot")], pool=pool) for i in range(20)]
    await asyncio.gather(*(s.start() for s in strategies))
    status = pool.get_connection_status()
    assert len(opened) == 1
    assert status["total_connections"] == 1 and status["connections"]["binance_spot"]["subscriber_count"] == 20
    await asyncio.gather(*(s.stop() for s in strategies))
    assert pool.get_connection_status()["total_connections"] == 0


async def test_fill_with_client_order_id_prefix_goes_only_to_its_owner(pool):
    a = Recorder("alpha", [MockConnector("binance", "spot")], pool=pool)
    b = Recorder("beta", [MockConnector("binance", "spot")], pool=pool)
    await a.start()
    await b.start()
    connector = MockConnector("binance", "spot")
    connector.bind_pool(pool)
    mine = await connector.push_trade("BTC/USDT", "buy", "1", "100", client_order_id="beta-42")
    await pool.flush(5)
    assert a.trades == [] and b.trades == [mine]
    await a.stop()
    await b.stop()


async def test_longest_prefix_wins(pool):
    short = Recorder("s1", [MockConnector("binance", "spot")], pool=pool)
    long = Recorder("s10", [MockConnector("binance", "spot")], pool=pool)
    await short.start()
    await long.start()
    connector = short.exchange_connectors[0]
    fill = await connector.push_trade("BTC/USDT", "sell", "2", "3", client_order_id="s10-7")
    await pool.flush(5)
    assert long.trades == [fill] and short.trades == []


async def test_fill_without_owner_goes_to_strategies_by_symbol(pool):
    btc = Recorder("btc", [MockConnector("binance", "spot")], symbols=["BTC/USDT"], pool=pool)
    eth = Recorder("eth", [MockConnector("binance", "spot")], symbols=["ETHUSDT"], pool=pool)
    anything = Recorder("all", [MockConnector("binance", "spot")], pool=pool)
    for s in (btc, eth, anything):
        await s.start()
    connector = btc.exchange_connectors[0]
    f_btc = await connector.push_trade("BTC/USDT", "buy", "1", "100", client_order_id="manual-1")
    f_eth = await connector.push_trade("ETH/USDT", "buy", "1", "10")
    await pool.flush(5)
    assert btc.trades == [f_btc]
    assert eth.trades == [f_eth]  # matched by its raw symbol
    assert anything.trades == [f_btc, f_eth]


async def test_each_fill_is_stored_once_however_many_strategies_receive_it(pool):
    strategies = [Recorder(f"s{i}", [MockConnector("binance", "spot")], pool=pool) for i in range(3)]
    for s in strategies:
        await s.start()
    fill = await strategies[0].exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", "100")
    await pool.flush(5)
    assert all(s.trades == [fill] for s in strategies)
    assert await pool.store.fetch_trades() == [fill]


async def test_duplicate_fill_reaches_strategy_once(pool):
    s = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
    await s.start()
    connector = s.exchange_connectors[0]
    first = await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="t1", order_id="o1")
    await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="t1", order_id="o1")
    await pool.flush(5)
    assert s.trades == [first]
    assert pool.trade_sync.stats()["stored"] == 1 and pool.trade_sync.stats()["duplicates"] == 1


async def test_hook_exception_fails_only_that_strategy(pool):
    bad = Exploding("bad", [MockConnector("binance", "spot"), MockConnector("bybit", "spot")], pool=pool)
    good = Recorder("good", [MockConnector("binance", "spot")], pool=pool)
    await bad.start()
    await good.start()
    connector = good.exchange_connectors[0]
    first = await connector.push_trade("BTC/USDT", "buy", "1", "100")
    await pool.flush(5)
    await asyncio.sleep(0.05)  # the failed strategy releases its keys from its own task
    assert bad.state is StrategyState.FAILED and isinstance(bad.error, RuntimeError)
    status = pool.get_connection_status()
    assert status["strategies"] == {"good": ["binance_spot"]}
    assert list(status["connections"]) == ["binance_spot"]  # bybit_spot had only the failed strategy
    second = await connector.push_trade("BTC/USDT", "sell", "1", "101")
    await pool.flush(5)
    assert good.trades == [first, second]
    assert len(await pool.store.fetch_trades()) == 2
    with pytest.raises(LifecycleError):
        await bad.start()
    await bad.stop()  # stopping a failed strategy is allowed and does nothing more
    assert bad.state is StrategyState.FAILED


async def test_exception_in_on_start_marks_failed_and_releases(pool):
    class BadStart(Recorder):
        def on_start(self):
            raise ValueError("bad config")

    s = BadStart("s", [MockConnector("binance", "spot")], pool=pool)
    with pytest.raises(ValueError):
        await s.start()
    assert s.state is StrategyState.FAILED
    assert pool.get_connection_status()["total_connections"] == 0


async def test_lifecycle_is_idempotent_and_async_with_works(pool):
    s = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
    with pytest.raises(LifecycleError):
        await s.stop()  # never started
    async with s:
        await s.start()
        assert s.state is StrategyState.RUNNING
        assert pool.get_connection_status()["connections"]["binance_spot"]["subscriber_count"] == 1
    assert s.state is StrategyState.STOPPED
    await s.stop()
    assert s.state is StrategyState.STOPPED
    await s.start()  # a stopped strategy may run again
    assert s.state is StrategyState.RUNNING
    await s.stop()


async def test_duplicate_strategy_id_is_refused(pool):
    a = Recorder("same", [MockConnector("binance", "spot")], pool=pool)
    b = Recorder("same", [MockConnector("bybit", "spot")], pool=pool)
    await a.start()
    with pytest.raises(ConfigError, match="already subscribed"):
        await b.start()
    assert pool.get_connection_status()["strategies"] == {"same": ["binance_spot"]}


async def test_order_updates_are_routed_and_kept_at_their_latest_state(pool):
    T0 = 1_700_000_000_000  # a sane time (2023): stamps before 2010 are dead letters
    s = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
    await s.start()
    c = s.exchange_connectors[0]
    await c.push_order_update("BTC/USDT", "buy", "2", "100", status="new", order_id="o1", timestamp=T0 + 1)
    await c.push_order_update("BTC/USDT", "buy", "2", "100", status="filled", filled="2", order_id="o1", timestamp=T0 + 3)
    await pool.flush(5)
    # A late, less-filled update arrives after the final one: it must not overwrite it.
    await c.push_order_update(
        "BTC/USDT", "buy", "2", "100", status="partially_filled", filled="1", order_id="o1", timestamp=T0 + 2
    )
    await pool.flush(5)
    assert [u.status.value for u in s.updates] == ["new", "filled", "partially_filled"]
    (stored,) = await pool.store.fetch_orders()
    assert stored.status.value == "filled" and str(stored.filled) == "2" and stored.timestamp == T0 + 3


async def test_push_before_subscribe_says_what_to_do():
    with pytest.raises(LifecycleError, match="start a strategy"):
        await MockConnector("binance", "spot").push_trade("BTC/USDT", "buy", "1", "1")


async def test_global_pool_functions(tmp_path):
    pool = await initialize_connection_pool(f"sqlite:///{tmp_path / 'g.sqlite'}", tmp_path / "logs")
    try:
        assert get_connection_pool() is pool and pool.running
        with pytest.raises(LifecycleError):
            await initialize_connection_pool()
        s = Recorder("g", [MockConnector("binance", "spot")])  # no pool given: the global one
        await s.start()
        trade = await s.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", "1")
        await pool.flush(5)
        assert s.trades == [trade]
    finally:
        await shutdown_connection_pool()
    assert s.state is StrategyState.RUNNING  # the pool released it; the strategy object is the user's
    assert pool.get_connection_status()["total_connections"] == 0
    await shutdown_connection_pool()  # idempotent


async def test_flush_waits_for_slow_strategy(pool):
    class Slow(Recorder):
        async def on_trade(self, trade):
            await asyncio.sleep(0.01)
            self.trades.append(trade)

    s = Slow("slow", [MockConnector("binance", "spot")], pool=pool)
    await s.start()
    for i in range(20):
        await s.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", str(100 + i))
    await pool.flush(5)
    assert [str(t.price) for t in s.trades] == [str(100 + i) for i in range(20)]


def test_trade_is_the_event_type():
    assert Trade.event_type.value == "trade"


async def test_two_pools_are_independent(tmp_path):
    async with ConnectionPool(f"sqlite:///{tmp_path / 'a.sqlite'}", tmp_path / "a") as a, ConnectionPool(
        f"sqlite:///{tmp_path / 'b.sqlite'}", tmp_path / "b"
    ) as b:
        await a.subscribe_strategy("x", [MockConnector("binance", "spot")])
        assert a.get_connection_status()["total_connections"] == 1
        assert b.get_connection_status()["total_connections"] == 0


async def test_renamed_strategy_with_the_same_prefix_takes_its_fills_over_in_the_next_process(tmp_path):
    url = f"sqlite:///{tmp_path / 't.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as first:
        old = Recorder("alpha-v1", [MockConnector("binance", "spot")], pool=first, client_order_id_prefix="alpha-")
        await old.start()
        await old.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", "100", client_order_id="alpha-1")
        await first.flush(5)
        await old.stop()
    async with ConnectionPool(url, tmp_path / "logs") as second:  # the store remembers alpha-v1 owns "alpha-"
        new = Recorder("alpha-v2", [MockConnector("binance", "spot")], pool=second, client_order_id_prefix="alpha-")
        await new.start()
        mine = await new.exchange_connectors[0].push_trade("BTC/USDT", "sell", "1", "101", client_order_id="alpha-2")
        await second.flush(5)
        assert [t.trade_id for t in new.trades] == [mine.trade_id]
        await new.stop()
