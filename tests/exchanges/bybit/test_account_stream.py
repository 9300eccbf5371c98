"""Bybit account state end to end on the simulator, over real sockets, for spot and linear futures: a pool
(SQLite) and a strategy on the market's connector; after fills, and again after a dropped socket with fills made
while it was down and after it came back, the strategy's views, the states its hooks got last and the store's
latest states equal the simulator's account exactly.

The handshake subscribes `wallet` (and `position` on futures) in a request of its own; Bybit sends no account
snapshot on subscribe, so the state of each (re)connect is the REST read (`account.fetch_snapshot`): the wallet,
then every linear settle coin's positions (USDT, USDC) and the inverse ones. A futures position opened on a USDC
perpetual while the socket is down reaches the strategy only through that read's USDC list; one closed while it
is down is flat from the read (the REST lists leave flat positions out)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from exchanges.bybit.account import POSITION_LISTS, fetch_snapshot
from exchanges.bybit.stream import BybitStream
from exchanges.simulator import Simulator
from framework.errors import SubscriptionError
from framework.events import Market, Source
from framework.pool import ConnectionPool
from tests.exchanges.account_checks import started, until, until_equal

SYMBOLS = {
    "spot": ["BTC/USDT", "ETH/USDT", "BTC/USDC"],
    "future": ["BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USDC:USDC"],
}


async def _dropped_and_back(sim: Simulator, connection, scheduler, market: str, while_down) -> None:
    """Cut the socket, make `while_down`'s fills (no socket hears them), wait for the next live session and its
    REST read."""
    sessions, snapshots = connection.live_sessions, scheduler.snapshots
    assert await sim.drop("bybit", market) == 1
    await while_down()
    await until(lambda: connection.live and connection.live_sessions > sessions and scheduler.snapshots > snapshots)
    assert scheduler.snapshot_error is None


async def test_spot_wallet_reaches_the_strategy_and_the_store_and_survives_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["bybit"], seed=11) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "bybit", "spot", SYMBOLS["spot"])
            assert sim.sessions("bybit", "spot")[0].subscriptions == {"order", "execution", "wallet"}
            await sim.fill("bybit", "spot", "BTC/USDT", "buy", "0.030", "65000.5", parts=2)
            await sim.fill("bybit", "spot", "ETH/USDT", "sell", "0.5", "3000.25")
            await sim.fill("bybit", "spot", "BTC/USDC", "buy", "0.010", "64990.1")
            resting = await sim.place_order("bybit", "spot", "ETH/USDT", "buy", "1", "2900.5")  # locks USDT
            await until_equal(pool, strategy, sim)
            assert strategy.balances["USDT"].locked == Decimal("2900.5")
            assert strategy.sources["balance", Source.WEBSOCKET] > 0

            async def while_down():
                await sim.fill("bybit", "spot", "BTC/USDT", "sell", "0.020", "65100.3", parts=2)
                await sim.fill_order("bybit", "spot", resting, "0.4")  # unlocks part of what it held
                await sim.fill("bybit", "spot", "BTC/USDC", "sell", "0.004", "65010.7")

            rest_before = strategy.sources["balance", Source.REST]
            await _dropped_and_back(sim, connection, scheduler, "spot", while_down)
            await sim.fill("bybit", "spot", "ETH/USDT", "buy", "0.25", "3010.5")  # the new socket's stream
            await until_equal(pool, strategy, sim)
            assert strategy.sources["balance", Source.REST] > rest_before
            assert strategy.balances["USDT"].locked == Decimal("1740.3")
            assert strategy.positions == {}  # a spot connection has no positions


async def test_futures_wallet_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["bybit"], seed=12) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "bybit", "future", SYMBOLS["future"])
            assert sim.sessions("bybit", "future")[0].subscriptions == {"order", "execution", "wallet", "position"}
            btc, eth, btc_usdc = SYMBOLS["future"]
            await sim.fill("bybit", "future", btc, "buy", "0.030", "65000.5", parts=2)  # open
            await sim.fill("bybit", "future", btc, "buy", "0.030", "65210.5")  # add
            await sim.fill("bybit", "future", btc, "sell", "0.070", "65400.1", parts=3)  # reduce, then flip short
            await sim.fill("bybit", "future", eth, "sell", "1.5", "3120.37")
            await until_equal(pool, strategy, sim)
            assert strategy.positions[btc].signed_size == Decimal("-0.010")
            assert strategy.positions[btc].entry_price == Decimal("65400.1")
            assert strategy.sources["position", Source.WEBSOCKET] > 0

            async def while_down():
                await sim.fill("bybit", "future", eth, "buy", "1.5", "3100.37")  # closed: the read leaves it out
                await sim.fill("bybit", "future", btc_usdc, "buy", "0.5", "64999.9")  # only the USDC list has it
                await sim.fill("bybit", "future", btc, "buy", "0.030", "65300.3")  # flips back long

            await _dropped_and_back(sim, connection, scheduler, "future", while_down)
            await sim.fill("bybit", "future", btc, "sell", "0.005", "65350.7")  # the new socket's stream
            await until_equal(pool, strategy, sim)
            usdc, closed = strategy.hooked_positions[btc_usdc], strategy.hooked_positions[eth]
            assert (usdc.source, usdc.signed_size, usdc.entry_price) == (Source.REST, Decimal("0.5"),
                                                                          Decimal("64999.9"))
            assert (closed.source, closed.direction.value, closed.size) == (Source.REST, "flat", 0)
            assert strategy.hooked_positions[btc].source is Source.WEBSOCKET
            assert {"USDT", "USDC"} <= set(strategy.balances)


class _Client:
    """A stand-in ccxt client that records what the snapshot asks."""

    def __init__(self) -> None:
        self.asked: list[dict] = []

    async def fetch_balance(self, params=None):
        return {"info": {"result": {"list": []}, "time": 1_700_000_000_000}}

    async def fetch_positions(self, symbols=None, params=None):
        self.asked.append(params)
        if params.get("subType") == "inverse":
            return [{"info": {"symbol": "BTCUSD", "positionIdx": 0, "side": "Sell", "size": "100", "avgPrice": "65000",
                              "updatedTime": "1700000000000"}}]
        return []


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE], ids=["spot", "future"])
async def test_the_snapshot_asks_every_settle_coin_and_inverse_and_names_their_categories(market):
    client = _Client()
    events = await fetch_snapshot(client, market, 0)
    if market is Market.SPOT:
        assert client.asked == [] and events == []
        return
    assert client.asked == [params for _, params in POSITION_LISTS] == [
        {"settleCoin": "USDT"}, {"settleCoin": "USDC"}, {"subType": "inverse"}]
    (inverse,) = events
    assert (inverse.symbol, inverse.signed_size, inverse.source) == ("BTC/USD:BTC", Decimal("-100"), Source.REST)


def test_a_refused_account_subscription_names_the_account_topics():
    refusal = {"req_id": "account-1", "success": False, "ret_msg": "error:handler not found,topic:wallet",
               "op": "subscribe", "conn_id": "c"}
    with pytest.raises(SubscriptionError, match=r"subscription to wallet, position refused: error:handler"):
        BybitStream().classify(refusal, Market.FUTURE)
    with pytest.raises(SubscriptionError, match=r"subscription to order, execution refused"):
        BybitStream().classify({**refusal, "req_id": "subscribe-1"}, Market.SPOT)
