"""A state machine over subscribe / unsubscribe / strategy crash: open sockets == keys with subscribers."""

import asyncio
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from exchanges.mock import MockConnector
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy, StrategyState

KEYS = [("binance", "spot"), ("binance", "future"), ("bybit", "spot"), ("gate", "future")]
IDS = [f"s{i}" for i in range(5)]


class Crashy(BaseStrategy):
    def on_trade(self, trade):
        if trade.client_order_id == f"{self.strategy_id}-crash":
            raise RuntimeError("crash on purpose")


class PoolMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="pool-sm-"))
        self.pool = ConnectionPool(f"sqlite:///{self.dir / 't.sqlite'}", self.dir / "logs")
        self.run(self.pool.start())
        self.opened = 0
        self.closed = 0
        self.strategies: dict[str, Crashy] = {}
        self.model: dict[str, set[tuple[str, str]]] = {}

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 10))

    def connector(self, exchange, market):
        if not getattr(self.pool, "counted", False):  # the pool builds connections: count what it opens and closes
            machine, build = self, self.pool.build_connection

            def counting_build(connector):
                connection, scheduler = build(connector)
                original_close = connection._close
                machine.opened += 1

                async def close():
                    machine.closed += 1
                    await original_close()

                connection._close = close
                return connection, scheduler

            self.pool.build_connection = counting_build
            self.pool.counted = True
        return MockConnector(exchange, market)

    @rule(strategy_id=st.sampled_from(IDS), keys=st.sets(st.sampled_from(KEYS), min_size=1, max_size=3))
    def start(self, strategy_id, keys):
        if strategy_id in self.strategies:
            return
        strategy = Crashy(strategy_id, [self.connector(*k) for k in sorted(keys)], pool=self.pool)
        self.run(strategy.start())
        self.strategies[strategy_id] = strategy
        self.model[strategy_id] = set(keys)

    @precondition(lambda self: self.strategies)
    @rule(data=st.data())
    def stop(self, data):
        strategy_id = data.draw(st.sampled_from(sorted(self.strategies)))
        self.run(self.strategies.pop(strategy_id).stop())
        self.model.pop(strategy_id)

    @precondition(lambda self: self.strategies)
    @rule(data=st.data())
    def crash(self, data):
        strategy_id = data.draw(st.sampled_from(sorted(self.strategies)))
        strategy = self.strategies.pop(strategy_id)
        key = sorted(self.model.pop(strategy_id))[0]
        connector = MockConnector(*key)
        connector.bind_pool(self.pool)
        self.run(connector.push_trade("BTC/USDT", "buy", "1", "1", client_order_id=f"{strategy_id}-crash"))
        self.run(self.pool.flush(5))
        for _ in range(50):  # the strategy releases its keys from its own task
            if strategy_id not in self.pool.get_connection_status()["strategies"]:
                break
            self.run(asyncio.sleep(0.002))
        assert strategy.state is StrategyState.FAILED

    @invariant()
    def open_sockets_equal_keys_with_subscribers(self):
        status = self.pool.get_connection_status()
        wanted = {f"{e}_{m}" for keys in self.model.values() for e, m in keys}
        assert set(status["connections"]) == wanted
        assert self.opened - self.closed == len(wanted)
        for key, info in status["connections"].items():
            expected = sum(1 for keys in self.model.values() if key in {f"{e}_{m}" for e, m in keys})
            assert info["subscriber_count"] == expected
        assert set(status["strategies"]) == set(self.model)

    def teardown(self):
        for strategy in list(self.strategies.values()):
            self.run(strategy.stop())
        status = self.pool.get_connection_status()
        assert status["total_connections"] == 0 and self.opened == self.closed
        self.run(self.pool.stop())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


PoolMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestPoolStateMachine = PoolMachine.TestCase
