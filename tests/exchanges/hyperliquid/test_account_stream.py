"""Hyperliquid account state end to end on the simulator, over a real socket: a pool (SQLite) and a strategy on the
perp connector (the venue's one market). After fills, and again after a dropped socket with fills made while it
was down, the strategy's views, what its hooks got and the store's latest states are the simulator's account as
the venue reports it (`expected_balance`: accountValue counts unrealized PnL) and its positions exactly.

Every `clearinghouseState` push is the whole state and leaves closed positions out: the connection hands the
positions it holds open to the account normalize, which reports the missing ones flat (a close while connected);
the snapshot on reconnect is the same state read over REST."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.hyperliquid import SPEC
from exchanges.hyperliquid.account import normalize_account, rest_snapshot
from exchanges.simulator import Simulator
from framework.account import PositionUpdate
from framework.errors import NormalizeError
from framework.events import Market, Source
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy

EXCHANGE, MARKET = "hyperliquid", "future"
BTC, ETH, SOL = "BTC/USDC:USDC", "ETH/USDC:USDC", "SOL/USDC:USDC"
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=6)
SAMPLES = json.loads((Path(__file__).parents[2] / "data/exchanges/hyperliquid.account.samples.json").read_text())
DOCS = SAMPLES[0]["raw"]  # the docs' sample: a USDC balance and an isolated ETH long at time 1708622398623


def held(symbol: str, size: str = "1", exchange: str = EXCHANGE, direction: str = "long") -> PositionUpdate:
    return PositionUpdate(exchange=exchange, market=MARKET, account="acct", symbol=symbol,
                          symbol_raw=symbol.split("/")[0], direction=direction, size=size, timestamp=1)


# the rules -----------------------------------------------------------------------------------------------------------
def test_spec_reads_the_account_with_positions_in_full_and_its_own_snapshot():
    rules = SPEC.account
    assert (rules.normalize, rules.fetch, rules.positions_in_full) == (normalize_account, rest_snapshot, True)
    assert rules.positions == frozenset({Market.FUTURE})


def test_held_positions_the_push_leaves_out_come_back_flat_at_its_time():
    events = normalize_account(DOCS, Market.FUTURE, held=[
        held(ETH), held(BTC, "0.5", direction="short"), held(SOL, "0", direction="flat"),
        held(BTC, exchange="bybit"), "not a position"])
    balance, eth, btc = events  # ETH listed, BTC closed; the flat SOL, bybit's and the junk skipped
    assert (eth.symbol, eth.direction.value, eth.size) == (ETH, "long", Decimal("0.0335"))
    assert (btc.symbol, btc.symbol_raw, btc.direction.value, btc.size, btc.contracts) == (BTC, "BTC", "flat", 0, 0)
    assert btc.timestamp == balance.timestamp == 1708622398623 and btc.account == "acct" and btc.raw is DOCS
    assert normalize_account(DOCS, Market.FUTURE) == [balance, eth]


class FakeClient:
    def __init__(self, info):
        self.info, self.params = info, []

    async def fetch_balance(self, params):
        self.params.append(params)
        return {"info": self.info, "USDC": {}}


async def test_rest_snapshot_is_one_fetch_balance_read_as_the_push():
    client = FakeClient(DOCS["data"]["clearinghouseState"])
    events = await rest_snapshot(client, Market.FUTURE, 0)
    assert events == normalize_account(DOCS, Market.FUTURE) and all(e.source is Source.REST for e in events)
    assert client.params == [{"enableUnifiedMargin": False}]  # no userAbstraction round trip, never the spot state
    with pytest.raises(NormalizeError, match="clearinghouseState answer"):
        await rest_snapshot(FakeClient({"balances": []}), Market.FUTURE, 0)  # a spot state is not this account


# end to end ---------------------------------------------------------------------------------------------------------


class AccountTracker(BaseStrategy):
    """The newest balance and position each hook was given, and how many came from the stream and from REST."""

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


def differences(where: str, balances: dict, positions: dict, sim: Simulator) -> list[str]:
    """How `balances` (asset → BalanceUpdate) and `positions` (symbol → PositionUpdate) differ from the venue's view
    of the simulator's account. An asset or position only one side has is a difference unless it is at zero there;
    a flat position's entry is not compared (the push that closes it has none, the REST snapshot's store row keeps
    its last)."""
    account = sim.account(EXCHANGE, MARKET)
    venue = sim.venue(EXCHANGE)
    found = []
    for asset in sorted(set(balances) | set(account.balances)):
        seen = balances.get(asset)
        got = None if seen is None else (seen.free, seen.locked, seen.total)
        want = venue.expected_balance(account, asset) if asset in account.balances else None
        if got != want and not (got is None and not any(want)) and not (want is None and not any(got)):
            found.append(f"{where}: {asset} free/locked/total {got}, the venue's {want}")
    for symbol in sorted(set(positions) | set(account.positions)):
        seen, held = positions.get(symbol), account.positions.get(symbol)
        got = None if seen is None or not seen.size else (
            seen.signed_size, seen.direction.value, seen.entry_price)
        want = None if held is None or not held.size else (held.size, held.direction, held.entry_price)
        if got != want:
            found.append(f"{where}: {symbol} size/direction/entry {got}, the simulator's {want}")
    return found


async def all_differences(pool: ConnectionPool, strategy: AccountTracker, sim: Simulator) -> list[str]:
    await pool.flush(5)
    key = strategy.exchange_connectors[0].key
    stored_balances = {b.asset: b for b in await pool.store.fetch_balances(key)}
    stored_positions = {p.symbol: p for p in await pool.store.fetch_positions(key)}
    return [
        *differences("view", {a: strategy.balances[a] for a in strategy.balances},
                     {s: strategy.positions[s] for s in strategy.positions}, sim),
        *differences("hooks", strategy.hooked_balances, strategy.hooked_positions, sim),
        *differences("store", stored_balances, stored_positions, sim),
    ]


async def until_equal(pool: ConnectionPool, strategy: AccountTracker, sim: Simulator, timeout: float = 4.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while found := await all_differences(pool, strategy, sim):
        assert loop.time() < deadline, "\n".join(found)
        await asyncio.sleep(0.05)


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def started(sim: Simulator, pool: ConnectionPool):
    """The strategy on the perp connector, live, with its first REST snapshot in (a fill in the same millisecond
    as that answer could otherwise be older than it and still be stamped the same)."""
    policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
    strategy = AccountTracker("hl-account", [sim.connector(EXCHANGE, MARKET, retry_policy=policy)],
                              symbols=[BTC, ETH, SOL], pool=pool)
    await strategy.start()
    key = strategy.exchange_connectors[0].key
    scheduler = pool.scheduler(key)
    scheduler.backfiller.retry_policy = FAST_REST
    await until(lambda: pool.connection(key).live and scheduler.snapshots >= 1)
    return strategy, pool.connection(key), scheduler


async def test_usdc_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=[EXCHANGE], seed=11) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool)
            await sim.fill(EXCHANGE, MARKET, BTC, "buy", "0.030", "65000.5", parts=2)
            await sim.fill(EXCHANGE, MARKET, BTC, "buy", "0.013", "65123.7")  # adds: an average entry
            await sim.fill(EXCHANGE, MARKET, BTC, "sell", "0.011", "65050")  # reduces: realized PnL
            await sim.fill(EXCHANGE, MARKET, ETH, "sell", "0.5", "3200.1")
            await sim.fill(EXCHANGE, MARKET, ETH, "buy", "0.8", "3190.3")  # flips long
            await sim.fill(EXCHANGE, MARKET, SOL, "sell", "3", "150.25")
            await sim.fill(EXCHANGE, MARKET, SOL, "buy", "3", "149.75")  # closed: left out of the next push
            await until_equal(pool, strategy, sim)
            assert strategy.positions[ETH].signed_size == Decimal("0.3")
            assert strategy.positions[ETH].entry_price == Decimal("3190.3")
            sol = strategy.positions[SOL]
            assert (sol.size, sol.direction.value, sol.source) == (0, "flat", Source.WEBSOCKET)  # from `held`
            usdc = strategy.balances["USDC"]
            assert usdc.total != sim.account(EXCHANGE, MARKET).balance("USDC").total  # uPnL counted, as the venue

            assert await sim.drop(EXCHANGE, MARKET) == 1
            # While the socket is down: ETH closed (neither the state pushed on subscribe nor the REST snapshot
            # lists it), BTC flips short, SOL reopens.
            await sim.fill(EXCHANGE, MARKET, ETH, "sell", "0.3", "3210.9")
            await sim.fill(EXCHANGE, MARKET, BTC, "sell", "0.050", "64990.1")
            await sim.fill(EXCHANGE, MARKET, SOL, "buy", "2", "151.5")
            sessions, snapshots = connection.live_sessions, scheduler.snapshots
            await until(lambda: connection.live and connection.live_sessions > sessions
                        and scheduler.snapshots > snapshots)
            await until_equal(pool, strategy, sim)
            assert strategy.positions[ETH].size == 0
            assert strategy.positions[BTC].signed_size == Decimal("-0.018")

            await sim.fill(EXCHANGE, MARKET, BTC, "buy", "0.018", "64800.7")  # closed on the new socket
            await sim.fill(EXCHANGE, MARKET, SOL, "sell", "0.5", "152.25", parts=2)
            await until_equal(pool, strategy, sim)
            assert strategy.positions[BTC].size == 0 and strategy.positions[SOL].signed_size == Decimal("1.5")
            assert all(strategy.sources[channel, source] for channel in ("balance", "position")
                       for source in (Source.WEBSOCKET, Source.REST))
            assert connection.live_sessions == 2 and connection.malformed == 0  # no reconnect but the drop
            assert await pool.store.fetch_dead_letters() == []
            await strategy.stop()
