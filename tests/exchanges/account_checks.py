"""What every venue's account-stream test checks end to end, kept once: a strategy on one connector of the
simulator, and whether its views, what its hooks were given and the store's latest states are the simulator's
account as that venue reports it.

The account compared with is the one the strategy's connector trades (its key names the exchange and the market),
so a test cannot compare one market's states with another's account. Balances are compared with
`sim.venue(exchange).expected_balance`, not with the account's own figures: a venue may report a balance its own way
(Hyperliquid's total is accountValue, which counts unrealized PnL), and for every other venue it is the account's."""

from __future__ import annotations

import asyncio
from collections import Counter

from exchanges.simulator import Simulator
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy

# REST reads retried fast: a snapshot that fails once must not outlast a test's few seconds
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=6)
NOTHING = (0, 0, 0)  # free/locked/total of an asset one side does not list
FLAT = (0, "flat", None)  # size/direction/entry of a position one side does not list


class AccountWatcher(BaseStrategy):
    """Keeps the newest state its hooks were given, per asset and per symbol (the views hold the newest by time,
    the hooks what was handed last: both must end as the account), and counts them by channel and source."""

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


def balance_problems(where: str, got: dict, account, venue) -> list[str]:
    """Every way `got` (asset -> BalanceUpdate) differs from the account's balances as `venue` reports them, free,
    locked and total exactly. An asset only one side lists is no problem while it is at zero on the other: a
    snapshot may list coins never traded, and a coin sold out may be left out of one."""
    problems = []
    for asset in sorted({*got, *account.balances}):
        seen = got.get(asset)
        have = NOTHING if seen is None else (seen.free, seen.locked, seen.total)
        want = venue.expected_balance(account, asset) if asset in account.balances else NOTHING
        if have != want:
            problems.append(f"{where}: {asset} free/locked/total {have}, the venue's {want}")
    return problems


def position_problems(where: str, got: dict, account) -> list[str]:
    """Every way `got` (symbol -> PositionUpdate) differs from the account's positions: signed size in base units,
    direction, and the entry price of an open one. A flat position's entry is not compared (venues write it 0 or
    leave it out, and one closed while the socket was down is flat from the store's view with no entry), and a
    flat position only one side lists is no problem (REST lists leave flat positions out)."""
    problems = []
    for symbol in sorted({*got, *account.positions}):
        seen, held = got.get(symbol), account.positions.get(symbol)
        have = FLAT if seen is None else (
            seen.signed_size, seen.direction.value, seen.entry_price if seen.size else None)
        want = FLAT if held is None else (held.size, held.direction, held.entry_price if held.size else None)
        if have != want:
            problems.append(f"{where}: {symbol} size/direction/entry {have}, the simulator's {want}")
    return problems


async def account_problems(pool: ConnectionPool, strategy: AccountWatcher, sim: Simulator) -> list[str]:
    """How the strategy's views, its hooks and the store (flushed first) differ from the simulator's account of the
    strategy's connector; an empty account is one too (else fills that never reached it would pass)."""
    await pool.flush(5)
    key = strategy.exchange_connectors[0].key
    account, venue = sim.account(key.exchange, key.market), sim.venue(key.exchange)
    stored_balances = {b.asset: b for b in await pool.store.fetch_balances(key)}
    stored_positions = {p.symbol: p for p in await pool.store.fetch_positions(key)}
    problems = [
        *balance_problems("view", {a: strategy.balances[a] for a in strategy.balances}, account, venue),
        *balance_problems("hook", strategy.hooked_balances, account, venue),
        *balance_problems("store", stored_balances, account, venue),
        *position_problems("view", {s: strategy.positions[s] for s in strategy.positions}, account),
        *position_problems("hook", strategy.hooked_positions, account),
        *position_problems("store", stored_positions, account),
    ]
    if not account.balances:
        problems.append("the simulator's account is empty: the fills did not reach it")
    return problems


async def until_equal(pool: ConnectionPool, strategy: AccountWatcher, sim: Simulator, timeout: float = 4.0) -> None:
    """Poll until the strategy and the store hold the simulator's account: pushes, the REST reads a wallet-only
    push asks for and the reconnect's snapshot are all on their way when a fill returns. Fails with every problem
    left at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while problems := await account_problems(pool, strategy, sim):
        assert loop.time() < deadline, "\n".join(problems)
        await asyncio.sleep(0.05)


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def started(sim: Simulator, pool: ConnectionPool, exchange: str, market: str, symbols: list[str]):
    """An AccountWatcher on the market's connector, live, with its first REST snapshot in (a fill made while that
    read is on its way could land in the millisecond its answer is stamped with, which then says the older state
    as new). Returns the strategy, its connection and its backfill scheduler."""
    policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
    strategy = AccountWatcher(f"{exchange}-{market}", [sim.connector(exchange, market, retry_policy=policy)],
                              symbols=symbols, pool=pool)
    await strategy.start()
    key = strategy.exchange_connectors[0].key
    scheduler = pool.scheduler(key)
    scheduler.backfiller.retry_policy = FAST_REST
    connection = pool.connection(key)
    await until(lambda: connection.live and scheduler.snapshots >= 1)
    assert scheduler.snapshot_error is None
    return strategy, connection, scheduler


async def reconnected(connection, scheduler) -> None:
    """Wait for a socket the simulator dropped to be live in a new session, and for that session's REST snapshot."""
    sessions, snapshots = connection.live_sessions, scheduler.snapshots
    await until(lambda: connection.live and connection.live_sessions > sessions and scheduler.snapshots > snapshots)
