"""Every (venue, market) pair's account on the simulator, through the pool and a strategy (issue 10): after a seeded
sequence of fills — with every socket dropped half-way — the strategy's views and the store hold exactly the
balances and positions the venue reports for the simulator's account."""

import asyncio
import random
from decimal import Decimal

import pytest

from exchanges import EXCHANGES, get_exchange
from exchanges.simulator import Simulator
from framework.events import Market
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

PAIRS = [(exchange, market) for exchange in EXCHANGES for market in sorted(get_exchange(exchange).markets)]


def symbol_of(exchange: str, market: Market) -> str:
    if exchange == "hyperliquid":
        return "BTC/USDC:USDC"
    return "BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT"


class Account(BaseStrategy):
    def on_start(self):
        self.balance_calls = self.position_calls = 0

    def on_balance(self, balance):
        self.balance_calls += 1

    def on_position(self, position):
        self.position_calls += 1


def test_every_venue_reads_its_account():
    assert [name for name in EXCHANGES if get_exchange(name).account is None] == []


def differences(sim, exchange, market, strategy, stored_b, stored_p) -> list[str]:
    """What the strategy's views or the store hold that is not the venue's report of the simulator's account."""
    account, venue = sim.account(exchange, market), sim.venue(exchange)
    key = f"{exchange}_{market.value}"
    found = []
    for asset in account.balances:
        want = tuple(Decimal(v) for v in venue.expected_balance(account, asset))
        view = strategy.balances.all().get((key, asset))
        got = (view.free, view.locked, view.total) if view is not None else None
        if got != want:
            found.append(f"view {asset} {got} != {want}")
        row = stored_b.get(asset)
        got = (row.free, row.locked, row.total) if row is not None else None
        if got != want:
            found.append(f"store {asset} {got} != {want}")
    for symbol, held in account.positions.items():
        view = strategy.positions.all().get((key, symbol, "net"))
        if (view.signed_size if view else Decimal(0)) != held.size:
            found.append(f"view {symbol} {view and view.signed_size} != {held.size}")
        row = stored_p.get(symbol)
        if (row.signed_size if row else Decimal(0)) != held.size:
            found.append(f"store {symbol} {row and row.signed_size} != {held.size}")
        if held.size and view is not None and view.entry_price != held.entry_price:
            found.append(f"view {symbol} entry {view.entry_price} != {held.entry_price}")
    return found


async def settled(sim, exchange, market, strategy, pool, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await pool.flush(5)
        stored_b = {b.asset: b for b in await pool.store.fetch_balances()}
        stored_p = {p.symbol: p for p in await pool.store.fetch_positions()}
        found = differences(sim, exchange, market, strategy, stored_b, stored_p)
        if not found:
            return
        if loop.time() > deadline:
            raise AssertionError("; ".join(found[:6]))
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("exchange, market", PAIRS, ids=[f"{e}_{m.value}" for e, m in PAIRS])
async def test_a_pair_keeps_the_venues_account_through_fills_and_a_drop(exchange, market, tmp_path):
    if get_exchange(exchange).account is None:
        pytest.fail(f"{exchange} does not read its account yet")
    symbol = symbol_of(exchange, market)
    rng = random.Random(f"{exchange}-{market.value}")
    async with asyncio.timeout(60), Simulator(exchanges=[exchange], market_rate=0, seed=11) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            s = Account("acct", [sim.connector(exchange, market, backfill=False)], pool=pool)
            await s.start()
            for n in range(8):
                if n == 4:
                    await sim.drop(exchange, market)  # the reconnect's REST snapshot and the stream bring it back
                side = rng.choice(("buy", "sell"))
                amount = Decimal(rng.randint(1, 40)) / 100
                price = Decimal(65000 + rng.randint(-300, 300))
                await sim.fill(exchange, market, symbol, side, amount, price, client_order_id=f"acct-{n}")
                await asyncio.sleep(0.05)
            await settled(sim, exchange, market, s, pool)
            assert s.balance_calls > 0
            if market is Market.FUTURE:
                assert s.position_calls > 0
            await s.stop()
