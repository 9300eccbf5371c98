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
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy

pytestmark = pytest.mark.timeout(30)

FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=6)
SPOT_SYMBOLS = ["BTC/USDT", "ETH/USDT", "BTC/USDC", "SOL/USDT"]
FUTURE_SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


class Ledger(BaseStrategy):
    """The newest balance and position its hooks were handed, by asset and by symbol."""

    def on_start(self):
        self.handed_balances: dict = {}
        self.handed_positions: dict = {}

    def on_balance(self, balance):
        self.handed_balances[balance.asset] = balance

    def on_position(self, position):
        self.handed_positions[position.symbol] = position


def _balance_differences(where: str, seen: dict, account) -> list[str]:
    """How `seen` (asset -> BalanceUpdate) differs from the simulator's balances: free, locked and total exactly;
    an asset on one side only is a difference unless it is at zero."""
    found = []
    for asset in sorted(set(seen) | set(account.balances)):
        held, got = account.balances.get(asset), seen.get(asset)
        if held is None:
            if (got.free, got.locked, got.total) != (0, 0, 0):
                found.append(f"{where}: {asset} {got.total} is not in the simulator's account")
        elif got is None:
            if held.total:
                found.append(f"{where}: {asset} {held.total} is missing")
        elif (got.free, got.locked, got.total) != (held.free, held.locked, held.total):
            found.append(f"{where}: {asset} free/locked/total {got.free}/{got.locked}/{got.total}, "
                         f"the simulator's {held.free}/{held.locked}/{held.total}")
    return found


def _position_differences(where: str, seen: dict, account) -> list[str]:
    """How `seen` (symbol -> PositionUpdate) differs from the simulator's positions: signed size in base units and
    direction, and the entry price of an open one; a flat position on one side only is no difference."""
    found = []
    for symbol in sorted(set(seen) | set(account.positions)):
        held, got = account.positions.get(symbol), seen.get(symbol)
        if held is None or not held.size:
            if got is not None and (got.size or got.direction.value != "flat"):
                found.append(f"{where}: {symbol} {got.direction.value} {got.signed_size}, the simulator's is flat")
        elif got is None:
            found.append(f"{where}: {symbol} {held.size} is missing")
        elif (got.signed_size, got.direction.value, got.entry_price) != (held.size, held.direction,
                                                                          held.entry_price):
            found.append(f"{where}: {symbol} size/direction/entry {got.signed_size}/{got.direction.value}/"
                         f"{got.entry_price}, the simulator's {held.size}/{held.direction}/{held.entry_price}")
    return found


async def _differences(pool: ConnectionPool, strategy: Ledger, sim: Simulator, market: str) -> list[str]:
    await pool.flush(5)
    key = strategy.exchange_connectors[0].key
    account = sim.account("mexc", market)
    stored_balances = {b.asset: b for b in await pool.store.fetch_balances(key)}
    stored_positions = {p.symbol: p for p in await pool.store.fetch_positions(key)}
    found = [
        *_balance_differences("view", {a: strategy.balances[a] for a in strategy.balances}, account),
        *_balance_differences("hook", strategy.handed_balances, account),
        *_balance_differences("store", stored_balances, account),
        *_position_differences("view", {s: strategy.positions[s] for s in strategy.positions}, account),
        *_position_differences("hook", strategy.handed_positions, account),
        *_position_differences("store", stored_positions, account),
    ]
    if not account.balances:
        found.append("the simulator's account is empty: nothing reached it")
    return found


async def _until_equal(pool: ConnectionPool, strategy: Ledger, sim: Simulator, market: str,
                       timeout: float = 4.0) -> None:
    """Poll until the strategy and the store hold the simulator's account."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while found := await _differences(pool, strategy, sim, market):
        assert loop.time() < deadline, "\n".join(found)
        await asyncio.sleep(0.05)


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def _started(sim: Simulator, pool: ConnectionPool, market: str, symbols: list[str]):
    """A strategy on the market's connector, live, its first REST snapshot in (a fill in the very millisecond that
    snapshot is stamped with could otherwise be left out of it and its push be taken as older)."""
    policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
    strategy = Ledger(f"mexc-{market}", [sim.connector("mexc", market, retry_policy=policy)], symbols=symbols,
                      pool=pool)
    await strategy.start()
    key = strategy.exchange_connectors[0].key
    scheduler = pool.scheduler(key)
    scheduler.backfiller.retry_policy = FAST_REST
    await _until(lambda: pool.connection(key).live and scheduler.snapshots >= 1)
    return strategy, pool.connection(key), scheduler


async def _reconnected(connection, scheduler) -> None:
    """Wait for a dropped socket to be live again and for that session's REST snapshot."""
    sessions, snapshots = connection.live_sessions, scheduler.snapshots
    await _until(lambda: connection.live and connection.live_sessions > sessions and scheduler.snapshots > snapshots)


async def test_spot_balances_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["mexc"], seed=5) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await _started(sim, pool, "spot", SPOT_SYMBOLS)
            assert len(strategy.balances) == 12  # the snapshot: every coin MEXC lists for the account
            await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.250", "65000.5", parts=2)
            await sim.fill("mexc", "spot", "ETH/USDT", "sell", "1.5", "3000.25")
            await sim.fill("mexc", "spot", "BTC/USDC", "sell", "0.0123", "64999.99")
            resting = await sim.place_order("mexc", "spot", "SOL/USDT", "buy", "3", "150.125")  # locks USDT
            await _until_equal(pool, strategy, sim, "spot")
            assert strategy.balances["USDT"].locked == Decimal("450.375")
            assert strategy.balances["USDT"].source.value == "websocket"

            assert await sim.drop("mexc", "spot") == 1
            # While the socket is down: every ETH sold (the snapshot must say 0), the resting order half filled.
            eth = sim.account("mexc", "spot").balances["ETH"].total
            await sim.fill("mexc", "spot", "ETH/USDT", "sell", eth, "3001.5")
            await sim.fill_order("mexc", "spot", resting, "1.5")
            await _reconnected(connection, scheduler)
            await _until_equal(pool, strategy, sim, "spot")  # the snapshot alone
            assert strategy.balances["ETH"].total == 0 and strategy.balances["ETH"].source.value == "rest"

            await sim.fill("mexc", "spot", "ETH/USDT", "buy", "0.75", "2999.75")
            await sim.fill_order("mexc", "spot", resting, "1.5")
            await _until_equal(pool, strategy, sim, "spot")
            assert strategy.balances["ETH"].total == Decimal("0.75") and strategy.balances["USDT"].locked == 0
            assert connection.malformed == 0 and scheduler.snapshot_error is None
            assert await pool.store.fetch_dead_letters() == []
            await strategy.stop()


async def test_contract_wallet_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["mexc"], seed=5) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await _started(sim, pool, "future", FUTURE_SYMBOLS)
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0100", "65000.5", parts=2)
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0050", "65100.3")  # adds: a new entry
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "sell", "0.0200", "64900.1")  # flips short
            await sim.fill("mexc", "future", "ETH/USDT:USDT", "sell", "0.30", "3000.25")
            await sim.fill("mexc", "future", "SOL/USDT:USDT", "buy", "2", "150.5")
            await sim.fill("mexc", "future", "SOL/USDT:USDT", "sell", "2", "151")  # closed: flat
            await _until_equal(pool, strategy, sim, "future")
            assert strategy.positions["BTC/USDT:USDT"].signed_size == Decimal("-0.005")
            assert strategy.positions["SOL/USDT:USDT"].size == 0
            assert strategy.balances["USDT"].locked > 0  # the position margin
            assert strategy.positions["BTC/USDT:USDT"].source.value == "websocket"

            assert await sim.drop("mexc", "future") == 1
            # While the socket is down: ETH closed (the snapshot leaves it out: flat from the store's view), the
            # BTC short grows at a new average.
            await sim.fill("mexc", "future", "ETH/USDT:USDT", "buy", "0.30", "2990.5")
            await sim.fill("mexc", "future", "BTC/USDT:USDT", "sell", "0.0050", "64950.3")
            await _reconnected(connection, scheduler)
            await _until_equal(pool, strategy, sim, "future")  # the snapshot alone
            assert strategy.positions["ETH/USDT:USDT"].size == 0
            assert strategy.positions["BTC/USDT:USDT"].source.value == "rest"

            await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0150", "64800.7")  # flips long
            await sim.fill("mexc", "future", "SOL/USDT:USDT", "sell", "1", "152.25")  # reopens short
            await _until_equal(pool, strategy, sim, "future")
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
