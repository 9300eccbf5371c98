"""MEXC account state end to end on the simulator, over real sockets: a pool (SQLite) and a strategy on each market's
connector. After fills, and again after a dropped socket with fills made while it was down, the strategy's views,
what its hooks were handed and the store's latest states equal the simulator's account exactly.

Spot: the handshake's one SUBSCRIPTION names the account channel with orders and deals; each protobuf
`privateAccount` push is one coin's free and frozen figures, and the REST snapshot (`GET /api/v3/account`) lists
every coin. Contract: the login's `personal.filter` names asset and position; the REST snapshot lists open positions
only, so a position closed while the socket was down comes back flat from the store's view (the scheduler's
`_closed_since`), and the wallet's locked part is the position margin ccxt's own figures leave out."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from exchanges.mexc.account import fetch_snapshot
from exchanges.simulator import Simulator
from framework.events import Market
from framework.pool import ConnectionPool
from tests.exchanges.account_checks import reconnected, started, until_equal

pytestmark = pytest.mark.timeout(30)

SPOT_SYMBOLS = ["BTC/USDT", "ETH/USDT", "BTC/USDC", "SOL/USDT"]
FUTURE_SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


async def test_spot_balances_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["mexc"], seed=5) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "mexc", "spot", SPOT_SYMBOLS)
            assert len(strategy.balances) == 12  # the snapshot: every coin MEXC lists for the account
            await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.250", "65000.5", parts=2)
            await sim.fill("mexc", "spot", "ETH/USDT", "sell", "1.5", "3000.25")
            await sim.fill("mexc", "spot", "BTC/USDC", "sell", "0.0123", "64999.99")
            resting = await sim.place_order("mexc", "spot", "SOL/USDT", "buy", "3", "150.125")  # locks USDT
            await until_equal(pool, strategy, sim)
            assert strategy.balances["USDT"].locked == Decimal("450.375")
            assert strategy.balances["USDT"].source.value == "websocket"

            assert await sim.drop("mexc", "spot") == 1
            # While the socket is down: every ETH sold (the snapshot must say 0), the resting order half filled.
            eth = sim.account("mexc", "spot").balances["ETH"].total
            await sim.fill("mexc", "spot", "ETH/USDT", "sell", eth, "3001.5")
            await sim.fill_order("mexc", "spot", resting, "1.5")
            await reconnected(connection, scheduler)
            await until_equal(pool, strategy, sim)  # the snapshot alone
            assert strategy.balances["ETH"].total == 0 and strategy.balances["ETH"].source.value == "rest"

            await sim.fill("mexc", "spot", "ETH/USDT", "buy", "0.75", "2999.75")
            await sim.fill_order("mexc", "spot", resting, "1.5")
            await until_equal(pool, strategy, sim)
            assert strategy.balances["ETH"].total == Decimal("0.75") and strategy.balances["USDT"].locked == 0
            assert connection.malformed == 0 and scheduler.snapshot_error is None
            assert await pool.store.fetch_dead_letters() == []
            await strategy.stop()


async def test_contract_wallet_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["mexc"], seed=5) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "mexc", "future", FUTURE_SYMBOLS)
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0100", "65000.5", parts=2)
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0050", "65100.3")  # adds: a new entry
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "sell", "0.0200", "64900.1")  # flips short
            await sim.fill("mexc", "future", "ETH/USDT:USDT", "sell", "0.30", "3000.25")
            await sim.fill("mexc", "future", "SOL/USDT:USDT", "buy", "2", "150.5")
            await sim.fill("mexc", "future", "SOL/USDT:USDT", "sell", "2", "151")  # closed: flat
            await until_equal(pool, strategy, sim)
            assert strategy.positions["BTC/USDT:USDT"].signed_size == Decimal("-0.005")
            assert strategy.positions["SOL/USDT:USDT"].size == 0
            assert strategy.balances["USDT"].locked > 0  # the position margin
            assert strategy.positions["BTC/USDT:USDT"].source.value == "websocket"

            assert await sim.drop("mexc", "future") == 1
            # While the socket is down: ETH closed (the snapshot leaves it out: flat from the store's view), the
            # BTC short grows at a new average.
            await sim.fill("mexc", "future", "ETH/USDT:USDT", "buy", "0.30", "2990.5")
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "sell", "0.0050", "64950.3")
            await reconnected(connection, scheduler)
            await until_equal(pool, strategy, sim)  # the snapshot alone
            assert strategy.positions["ETH/USDT:USDT"].size == 0
            assert strategy.positions["BTC/USDT:USDT"].source.value == "rest"

            await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0150", "64800.7")  # flips long
            await sim.fill("mexc", "future", "SOL/USDT:USDT", "sell", "1", "152.25")  # reopens short
            await until_equal(pool, strategy, sim)
            assert strategy.positions["BTC/USDT:USDT"].signed_size == Decimal("0.005")
            assert strategy.positions["SOL/USDT:USDT"].signed_size == Decimal("-1")
            assert connection.malformed == 0 and scheduler.snapshot_error is None
            assert await pool.store.fetch_dead_letters() == []
            await strategy.stop()


class _Client:
    """A ccxt stand-in: its balance answer parsed as ccxt parses it, and a last raw answer that may not be that
    one (another call on the shared client); no open positions."""

    def __init__(self, parsed: dict, last: str) -> None:
        self.parsed, self.last_http_response = parsed, last

    async def fetch_balance(self):
        return {"info": self.parsed}

    async def fetch_positions(self):
        self.last_http_response = '{"success":true,"code":0,"data":[]}'
        return []


async def test_the_snapshot_never_reads_another_answer_with_as_many_rows_as_its_own():
    assets = {"success": True, "code": 0, "data": [{"currency": "USDT", "availableBalance": 10.25,
                                                    "frozenBalance": 0, "positionMargin": 1.5}]}
    deals_page = '{"success":true,"code":0,"data":[{"id":1,"symbol":"BTC_USDT","vol":3,"price":65000.5}]}'
    (balance,) = await fetch_snapshot(_Client(assets, deals_page), Market.FUTURE, 1_700_000_000_000)
    assert (balance.asset, balance.free, balance.locked, balance.total) == (
        "USDT", Decimal("10.25"), Decimal("1.5"), Decimal("11.75"))  # ccxt's own copy, not the deal row
    exact = '{"success":true,"code":0,"data":[{"currency":"USDT","availableBalance":10.2500000000000000001,' \
            '"frozenBalance":0,"positionMargin":1.5}]}'
    (balance,) = await fetch_snapshot(_Client(assets, exact), Market.FUTURE, 1_700_000_000_000)
    assert balance.free == Decimal("10.2500000000000000001")  # the raw answer, where it is the same rows
