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
from tests.exchanges.account_checks import reconnected, started, until_equal

EXCHANGE, MARKET = "hyperliquid", "future"
BTC, ETH, SOL = "BTC/USDC:USDC", "ETH/USDC:USDC", "SOL/USDC:USDC"
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


async def test_usdc_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=[EXCHANGE], seed=11) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, EXCHANGE, MARKET, [BTC, ETH, SOL])
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
            await reconnected(connection, scheduler)
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
