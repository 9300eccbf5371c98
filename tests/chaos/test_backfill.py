"""Fills made while the socket is down come back by REST backfill, exactly once."""

import asyncio

from exchanges.simulator import Simulator
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy
from framework.strategy import BaseStrategy


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


async def until(predicate, timeout=15.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_fills_during_a_disconnect_are_backfilled_once(tmp_path):
    async with Simulator(exchanges=["binance"], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
            s = Recorder("bf", [sim.connector("binance", "spot", retry_policy=policy)], symbols=["BTC/USDT"],
                         pool=pool)
            await s.start()
            _, before = await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.010", "100.1")
            await until(lambda: len(s.trades) == 1)
            sim.refuse_connections("binance", "spot", 1.0)
            assert await sim.drop("binance", "spot") == 1
            _, during = await sim.fill("binance", "spot", "BTC/USDT", "sell", "0.020", "100.2", parts=2)
            sim.fail_rest("binance", "spot", [429, 502])  # the backfill itself meets trouble first
            await until(lambda: len(s.trades) == 3)
            _, after = await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.030", "100.3")
            await until(lambda: len(s.trades) == 4)
            await pool.flush(5)
            stored = {t.trade_id: t for t in await pool.store.fetch_trades()}
            expected = before + during + after
            assert sorted(stored) == sorted(f.trade_id for f in expected)
            assert {stored[f.trade_id].source.value for f in during} == {"rest"}
            for fill in expected:
                trade = stored[fill.trade_id]
                assert (trade.order_id, trade.amount, trade.price, trade.fee_cost, trade.timestamp) == (
                    fill.order_id, fill.amount, fill.price, fill.fee, fill.time)
            assert sorted(t.trade_id for t in s.trades) == sorted(stored)
            status = pool.get_connection_status()["connections"]["binance_spot"]
            assert status["reconnects"] == 1 and status["backfills"] >= 2
            await s.stop()
        log = pool.sync_log.path.read_text()
        assert "status=gap" in log and "source=rest" in log
