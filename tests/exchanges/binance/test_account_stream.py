"""Binance account state end to end on the simulator, over real sockets: a pool (SQLite) and a strategy on each
market's connector; after fills, and again after a dropped socket with fills made while it was down, the
strategy's views, what its hooks got and the store's latest states equal the simulator's account exactly.

Spot `outboundAccountPosition` is complete (free and locked). USD-M `ACCOUNT_UPDATE` has only the wallet: the
pipeline completes its free and locked from the last state and asks for a REST read, so USD-M checks poll until
that read has come."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from exchanges.simulator import Simulator
from framework.events import Source
from framework.pool import ConnectionPool
from tests.exchanges.account_checks import reconnected, started, until_equal

SPOT_SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"]
FUTURE_SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


async def test_spot_balances_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["binance"], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "binance", "spot", SPOT_SYMBOLS)
            await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.010", "65000.5", parts=2)
            await sim.fill("binance", "spot", "ETH/USDT", "sell", "0.5", "3000.25")
            await sim.fill("binance", "spot", "ETH/BTC", "buy", "1.5", "0.05123")
            resting = await sim.place_order("binance", "spot", "SOL/USDT", "buy", "3", "140.25")  # locks USDT
            await until_equal(pool, strategy, sim)
            assert strategy.balances["USDT"].locked == Decimal("420.75")

            assert await sim.drop("binance", "spot") == 1
            # While the socket is down: every BTC sold (the REST snapshot must say 0, not leave BTC out), the
            # resting order half filled.
            btc = sim.account("binance", "spot").balances["BTC"].total
            await sim.fill("binance", "spot", "BTC/USDT", "sell", btc, "65100.25")
            await sim.fill_order("binance", "spot", resting, "1.5")
            await reconnected(connection, scheduler)
            await sim.fill("binance", "spot", "ETH/USDT", "sell", "0.75", "3001.5")
            await sim.fill_order("binance", "spot", resting, "1.5")
            await until_equal(pool, strategy, sim)
            assert strategy.balances["BTC"].total == 0 and strategy.balances["USDT"].locked == 0
            assert strategy.sources["balance", Source.WEBSOCKET] and strategy.sources["balance", Source.REST]
            assert connection.live_sessions == 2 and connection.malformed == 0  # no reconnect but the drop
            await strategy.stop()


async def test_usdm_wallet_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["binance"], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "binance", "future", FUTURE_SYMBOLS)
            await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.010", "65000.5", parts=2)
            await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.005", "65100")  # adds: a new entry
            await sim.fill("binance", "future", "BTC/USDT:USDT", "sell", "0.020", "64900.1")  # flips short
            await sim.fill("binance", "future", "ETH/USDT:USDT", "sell", "0.30", "3000.25")
            await sim.fill("binance", "future", "SOL/USDT:USDT", "buy", "2", "150.5")
            await sim.fill("binance", "future", "SOL/USDT:USDT", "sell", "2", "151")  # closed: flat
            await until_equal(pool, strategy, sim)
            assert strategy.positions["BTC/USDT:USDT"].signed_size == Decimal("-0.005")
            assert strategy.positions["SOL/USDT:USDT"].size == 0

            assert await sim.drop("binance", "future") == 1
            # While the socket is down: ETH closed (the snapshot leaves it out: flat from the store's view), BTC
            # short grows.
            await sim.fill("binance", "future", "ETH/USDT:USDT", "buy", "0.30", "2990.5")
            await sim.fill("binance", "future", "BTC/USDT:USDT", "sell", "0.005", "64950.3")
            await reconnected(connection, scheduler)
            await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.015", "64800.7")  # flips long
            await sim.fill("binance", "future", "SOL/USDT:USDT", "sell", "1", "152.25")  # reopens short
            await until_equal(pool, strategy, sim)
            assert strategy.positions["ETH/USDT:USDT"].size == 0
            assert strategy.positions["BTC/USDT:USDT"].signed_size == Decimal("0.005")
            assert all(strategy.sources[channel, source] for channel in ("balance", "position")
                       for source in (Source.WEBSOCKET, Source.REST))
            assert connection.live_sessions == 2 and connection.malformed == 0  # no reconnect but the drop
            await strategy.stop()
