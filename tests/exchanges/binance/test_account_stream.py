"""Binance account state end to end on the simulator, over real sockets: a pool (SQLite) and a strategy on each
market's connector; after fills, and again after a dropped socket with fills made while it was down, the
strategy's views, what its hooks got and the store's latest states equal the simulator's account exactly.

Spot `outboundAccountPosition` is complete (free and locked). USD-M `ACCOUNT_UPDATE` has only the wallet: the
pipeline completes its free and locked from the last state and asks for a REST read, so USD-M checks poll until
that read has come."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

from exchanges.simulator import Simulator
from framework.events import Source
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy

FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=6)
SPOT_SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"]
FUTURE_SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


class AccountWatcher(BaseStrategy):
    """Keeps the newest state its hooks were given, per asset and per symbol, and counts where states came from."""

    def on_start(self):
        self.hooked_balances: dict = {}
        self.hooked_positions: dict = {}
        self.sources: Counter = Counter()

    def on_balance(self, balance):
        self.hooked_balances[balance.asset] = balance
        self.sources[balance.channel, balance.source] += 1

    def on_position(self, position):
        self.hooked_positions[position.symbol] = position
        self.sources[position.channel, position.source] += 1


def _balance_problems(where: str, got: dict, account) -> list[str]:
    """Every way `got` (asset -> BalanceUpdate) differs from the simulator's balances; an asset only one side has
    is a problem unless it is at zero there."""
    problems = []
    for asset in sorted(set(got) | set(account.balances)):
        held, seen = account.balances.get(asset), got.get(asset)
        if held is None:
            if (seen.free, seen.locked, seen.total) != (0, 0, 0):
                problems.append(f"{where}: {asset} {seen.total} is not in the simulator's account")
        elif seen is None:
            if held.total:
                problems.append(f"{where}: {asset} {held.total} missing")
        elif (seen.free, seen.locked, seen.total) != (held.free, held.locked, held.total):
            problems.append(f"{where}: {asset} free/locked/total {seen.free}/{seen.locked}/{seen.total}, "
                            f"the simulator {held.free}/{held.locked}/{held.total}")
    return problems


def _position_problems(where: str, got: dict, account) -> list[str]:
    """Every way `got` (symbol -> PositionUpdate) differs from the simulator's positions (signed size in base
    units, direction, and the entry price of an open one); a flat position only one side has is no problem.

    A flat position's entry is not compared: the stream writes it "0", and a position closed while the socket
    was down is flat from the reconnect's snapshot (the REST rows leave it out), which keeps its last entry."""
    problems = []
    for symbol in sorted(set(got) | set(account.positions)):
        held, seen = account.positions.get(symbol), got.get(symbol)
        if held is None:
            if seen.size:
                problems.append(f"{where}: {symbol} {seen.signed_size} is not in the simulator's account")
        elif seen is None:
            if held.size:
                problems.append(f"{where}: {symbol} {held.size} missing")
        elif (seen.signed_size, seen.direction.value, seen.entry_price if held.size else None) != (
                held.size, held.direction, held.entry_price if held.size else None):
            problems.append(f"{where}: {symbol} size/direction/entry {seen.signed_size}/{seen.direction.value}/"
                            f"{seen.entry_price}, the simulator {held.size}/{held.direction}/{held.entry_price}")
    return problems


async def _problems(pool: ConnectionPool, strategy: AccountWatcher, sim: Simulator, market: str) -> list[str]:
    await pool.flush(5)
    key = strategy.exchange_connectors[0].key
    account = sim.account("binance", market)
    stored_balances = {b.asset: b for b in await pool.store.fetch_balances(key)}
    stored_positions = {p.symbol: p for p in await pool.store.fetch_positions(key)}
    problems = [
        *_balance_problems("view", {a: strategy.balances[a] for a in strategy.balances}, account),
        *_balance_problems("hook", strategy.hooked_balances, account),
        *_balance_problems("store", stored_balances, account),
        *_position_problems("view", {s: strategy.positions[s] for s in strategy.positions}, account),
        *_position_problems("hook", strategy.hooked_positions, account),
        *_position_problems("store", stored_positions, account),
    ]
    if not account.balances:
        problems.append("the simulator's account is empty: the fills did not reach it")
    return problems


async def _until_equal(pool: ConnectionPool, strategy: AccountWatcher, sim: Simulator, market: str,
                       timeout: float = 4.0) -> None:
    """Poll until the strategy and the store hold the simulator's account (USD-M waits for the REST read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while problems := await _problems(pool, strategy, sim, market):
        assert loop.time() < deadline, "\n".join(problems)
        await asyncio.sleep(0.05)


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def _started(sim: Simulator, pool: ConnectionPool, market: str, symbols: list[str]):
    """A strategy on the market's connector, live, with its first REST snapshot taken (fills made while that read
    is on its way could otherwise land in the same millisecond as its answer)."""
    policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
    strategy = AccountWatcher(f"acct-{market}", [sim.connector("binance", market, retry_policy=policy)],
                              symbols=symbols, pool=pool)
    await strategy.start()
    key = strategy.exchange_connectors[0].key
    scheduler = pool.scheduler(key)
    scheduler.backfiller.retry_policy = FAST_REST
    await _until(lambda: pool.connection(key).live and scheduler.snapshots >= 1)
    return strategy, pool.connection(key), scheduler


async def _reconnected(sim: Simulator, connection, scheduler, market: str) -> None:
    """Wait for the socket dropped by `sim.drop` to be live again and for that session's REST snapshot."""
    sessions, snapshots = connection.live_sessions, scheduler.snapshots
    await _until(lambda: connection.live and connection.live_sessions > sessions and scheduler.snapshots > snapshots)


async def test_spot_balances_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["binance"], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await _started(sim, pool, "spot", SPOT_SYMBOLS)
            await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.010", "65000.5", parts=2)
            await sim.fill("binance", "spot", "ETH/USDT", "sell", "0.5", "3000.25")
            await sim.fill("binance", "spot", "ETH/BTC", "buy", "1.5", "0.05123")
            resting = await sim.place_order("binance", "spot", "SOL/USDT", "buy", "3", "140.25")  # locks USDT
            await _until_equal(pool, strategy, sim, "spot")
            assert strategy.balances["USDT"].locked == Decimal("420.75")

            assert await sim.drop("binance", "spot") == 1
            # While the socket is down: every BTC sold (the REST snapshot must say 0, not leave BTC out), the
            # resting order half filled.
            btc = sim.account("binance", "spot").balances["BTC"].total
            await sim.fill("binance", "spot", "BTC/USDT", "sell", btc, "65100.25")
            await sim.fill_order("binance", "spot", resting, "1.5")
            await _reconnected(sim, connection, scheduler, "spot")
            await sim.fill("binance", "spot", "ETH/USDT", "sell", "0.75", "3001.5")
            await sim.fill_order("binance", "spot", resting, "1.5")
            await _until_equal(pool, strategy, sim, "spot")
            assert strategy.balances["BTC"].total == 0 and strategy.balances["USDT"].locked == 0
            assert strategy.sources["balance", Source.WEBSOCKET] and strategy.sources["balance", Source.REST]
            assert connection.live_sessions == 2 and connection.malformed == 0  # no reconnect but the drop
            await strategy.stop()


async def test_usdm_wallet_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["binance"], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await _started(sim, pool, "future", FUTURE_SYMBOLS)
            await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.010", "65000.5", parts=2)
            await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.005", "65100")  # adds: a new entry
            await sim.fill("binance", "future", "BTC/USDT:USDT", "sell", "0.020", "64900.1")  # flips short
            await sim.fill("binance", "future", "ETH/USDT:USDT", "sell", "0.30", "3000.25")
            await sim.fill("binance", "future", "SOL/USDT:USDT", "buy", "2", "150.5")
            await sim.fill("binance", "future", "SOL/USDT:USDT", "sell", "2", "151")  # closed: flat
            await _until_equal(pool, strategy, sim, "future")
            assert strategy.positions["BTC/USDT:USDT"].signed_size == Decimal("-0.005")
            assert strategy.positions["SOL/USDT:USDT"].size == 0

            assert await sim.drop("binance", "future") == 1
            # While the socket is down: ETH closed (the snapshot leaves it out: flat from the store's view), BTC
            # short grows.
            await sim.fill("binance", "future", "ETH/USDT:USDT", "buy", "0.30", "2990.5")
            await sim.fill("binance", "future", "BTC/USDT:USDT", "sell", "0.005", "64950.3")
            await _reconnected(sim, connection, scheduler, "future")
            await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.015", "64800.7")  # flips long
            await sim.fill("binance", "future", "SOL/USDT:USDT", "sell", "1", "152.25")  # reopens short
            await _until_equal(pool, strategy, sim, "future")
            assert strategy.positions["ETH/USDT:USDT"].size == 0
            assert strategy.positions["BTC/USDT:USDT"].signed_size == Decimal("0.005")
            assert all(strategy.sources[channel, source] for channel in ("balance", "position")
                       for source in (Source.WEBSOCKET, Source.REST))
            assert connection.live_sessions == 2 and connection.malformed == 0  # no reconnect but the drop
            await strategy.stop()
