"""Bitget account state end to end on the simulator, real sockets: a ConnectionPool and a strategy on
`sim.connector`; after fills (and across a dropped socket) the strategy's views, its hooks and the store hold
exactly the simulator's account, from the `account` / `positions` pushes and the REST snapshot each (re)connect
takes. Plus the stream rules and the snapshot reader without a socket."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from exchanges.bitget import SPEC
from exchanges.bitget.account import fetch_snapshot
from exchanges.simulator import Simulator
from framework.account import Direction
from framework.errors import NormalizeError
from framework.events import Market, Source
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.venue import MessageKind
from tests.exchanges.account_checks import AccountWatcher, account_problems, until, until_equal

FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=3)
RECONNECT = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)


async def started(sim: Simulator, pool: ConnectionPool, market: Market) -> tuple[AccountWatcher, object]:
    connector = sim.connector("bitget", market, retry_policy=RECONNECT)
    strategy = AccountWatcher(f"account-{market.value}", [connector], pool=pool)
    await strategy.start()
    scheduler = pool.scheduler(connector.key)
    scheduler.retry_policy = FAST_REST
    await until(lambda: scheduler.snapshots == 1)  # the first connect's REST snapshot is in
    return strategy, scheduler


async def dropped(sim: Simulator, market: Market, scheduler, fills) -> None:
    """Cut the socket, keep it down while `fills` happen, then wait for the new socket's REST snapshot."""
    sim.refuse_connections("bitget", market, 0.5)
    assert await sim.drop("bitget", market) == 1
    await fills()
    await until(lambda: scheduler.snapshots == 2)
    assert scheduler.snapshot_error is None


async def test_spot_balances_follow_fills_and_orders_across_a_reconnect(tmp_path):
    async with (asyncio.timeout(10), Simulator(exchanges=["bitget"], seed=11) as sim,
                ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool):
        strategy, scheduler = await started(sim, pool, Market.SPOT)
        await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.25", "64000.5", parts=2)
        await sim.fill("bitget", "spot", "ETH/USDT", "sell", "1.5", "3100.25", parts=3)
        resting = await sim.place_order("bitget", "spot", "BTC/USDT", "buy", "0.1", "63000")  # locks 6300 USDT
        await sim.fill("bitget", "spot", "SOL/USDT", "buy", "3", "150.125")
        await until_equal(pool, strategy, sim)
        assert strategy.balances["USDT"].locked == Decimal("6300") and strategy.balances["ETH"].total == Decimal("98.5")

        async def while_down():
            await sim.fill("bitget", "spot", "ETH/USDT", "sell", "98.5", "3050")  # every ETH sold: 0 left
            await sim.fill_order("bitget", "spot", resting, "0.1")  # the lock is spent
            await sim.fill("bitget", "spot", "SOL/USDT", "sell", "1", "151")

        await dropped(sim, Market.SPOT, scheduler, while_down)
        await sim.fill("bitget", "spot", "BTC/USDT", "sell", "0.05", "64100")
        await sim.place_order("bitget", "spot", "ETH/USDT", "buy", "2", "3000")
        await until_equal(pool, strategy, sim)
        eth = strategy.balances["ETH"]
        assert (eth.free, eth.locked, eth.total) == (0, 0, 0)
        assert strategy.balances["USDT"].locked == Decimal("6000")
        await strategy.stop()


async def test_futures_wallet_and_positions_follow_fills_closes_and_flips_across_a_reconnect(tmp_path):
    async with (asyncio.timeout(10), Simulator(exchanges=["bitget"], seed=12) as sim,
                ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool):
        strategy, scheduler = await started(sim, pool, Market.FUTURE)
        for symbol, side, amount, price in [
            ("BTC/USDT:USDT", "buy", "0.3", "100"), ("BTC/USDT:USDT", "buy", "0.1", "104"),
            ("BTC/USDT:USDT", "sell", "0.2", "103"),  # reduced: PnL realized into the wallet
            ("ETH/USDT:USDT", "sell", "2", "50.5"),
            ("SOL/USDT:USDT", "buy", "4", "20"), ("SOL/USDT:USDT", "sell", "6", "25"),  # flipped short
        ]:
            await sim.fill("bitget", "future", symbol, side, amount, price)
        await until_equal(pool, strategy, sim)
        sol = strategy.positions["SOL/USDT:USDT"]
        assert (sol.direction, sol.size, sol.entry_price) == (Direction.SHORT, 2, 25)

        async def while_down():
            await sim.fill("bitget", "future", "BTC/USDT:USDT", "sell", "0.2", "105")  # closed: no longer listed
            await sim.fill("bitget", "future", "ETH/USDT:USDT", "buy", "0.5", "49")
            await sim.fill("bitget", "future", "XRP/USDT:USDT", "buy", "10", "0.5125")  # opened

        await dropped(sim, Market.FUTURE, scheduler, while_down)
        assert strategy.positions["BTC/USDT:USDT"].direction is Direction.FLAT
        await sim.fill("bitget", "future", "SOL/USDT:USDT", "buy", "2", "24")  # closed on the stream
        await sim.fill("bitget", "future", "BTC/USDT:USDT", "buy", "0.5", "106")  # reopened
        await sim.fill("bitget", "future", "ETH/USDT:USDT", "sell", "1", "48")
        await until_equal(pool, strategy, sim)
        assert strategy.positions["SOL/USDT:USDT"].direction is Direction.FLAT
        assert strategy.positions["XRP/USDT:USDT"].size == 10
        await strategy.stop()


async def test_a_fill_pushed_while_the_snapshot_is_answered_is_not_undone_by_it(tmp_path):
    """The wallet is read, a fill moves it and its push arrives, then the snapshot's answer lands: the snapshot is
    stamped with Bitget's time of the read (requestTime), so it is older than the push and the push stays."""
    async with (asyncio.timeout(10), Simulator(exchanges=["bitget"], seed=13) as sim,
                ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool):
        strategy, scheduler = await started(sim, pool, Market.FUTURE)
        account = sim.account("bitget", "future")
        client = scheduler.backfiller._exchange  # the ccxt client the first snapshot made
        read_accounts = client.privateMixGetV2MixAccountAccounts

        async def read_then_fill(params):
            answer = await read_accounts(params)
            await asyncio.sleep(0.005)  # a later millisecond than the read's
            await sim.fill("bitget", "future", "BTC/USDT:USDT", "buy", "0.3", "100")
            await until(lambda: "BTC/USDT:USDT" in strategy.positions)  # the push is in before the answer
            return answer

        client.privateMixGetV2MixAccountAccounts = read_then_fill
        scheduler.refresh_every = 0
        scheduler.refresh_account()
        await until(lambda: scheduler.snapshots == 2)
        assert account.balances["USDT"].locked == 3  # the margin the fill took, after the read
        await until_equal(pool, strategy, sim)
        await strategy.stop()


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE])
async def test_the_rest_snapshot_alone_brings_what_pushes_that_never_came_would_have(market, tmp_path):
    """The stream stalls (no push comes): a REST read puts the views and the store in step, a coin sold to zero
    at zero (spot asks every coin, not only those held) and a position closed meanwhile flat."""
    async with (asyncio.timeout(10), Simulator(exchanges=["bitget"], seed=14) as sim,
                ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool):
        strategy, scheduler = await started(sim, pool, market)
        btc, eth = ("BTC/USDT", "ETH/USDT") if market is Market.SPOT else ("BTC/USDT:USDT", "ETH/USDT:USDT")
        await sim.fill("bitget", market, btc, "buy", "0.3", "100")
        await sim.fill("bitget", market, eth, "buy", "2", "50")
        await until_equal(pool, strategy, sim)
        sim.stall("bitget", market)
        await sim.fill("bitget", market, btc, "sell", "100.3" if market is Market.SPOT else "0.3", "101")
        await sim.fill("bitget", market, eth, "buy", "1", "51")
        await asyncio.sleep(0.1)
        assert await account_problems(pool, strategy, sim)  # nothing came
        scheduler.refresh_every = 0
        scheduler.refresh_account()
        await until(lambda: scheduler.snapshots == 2)
        await until_equal(pool, strategy, sim)
        if market is Market.SPOT:
            assert strategy.balances["BTC"].total == 0 and strategy.balances["BTC"].source is Source.REST
        else:
            assert strategy.positions[btc].direction is Direction.FLAT
            assert strategy.positions[eth].source is Source.REST and strategy.positions[eth].size == 3
        sim.stall("bitget", market, False)
        await strategy.stop()


# the stream's rules and the snapshot reader, without a socket ------------------------------------------------------
@pytest.mark.parametrize("market, channel, kind", [
    (Market.SPOT, "account", MessageKind.EVENT),
    (Market.FUTURE, "account", MessageKind.EVENT),
    (Market.FUTURE, "positions", MessageKind.EVENT),
    (Market.SPOT, "positions", MessageKind.IGNORE),  # spot has no positions channel
])
def test_account_pushes_are_events_where_the_market_subscribes_them(market, channel, kind):
    inst_type = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}[market]
    frame = {"action": "snapshot", "arg": {"instType": inst_type, "channel": channel, "coin": "default"}, "data": []}
    assert SPEC.stream.classify(frame, market) is kind


def test_the_account_subscription_is_acked_like_the_others():
    ack = {"event": "subscribe", "arg": {"instType": "USDT-FUTURES", "channel": "positions", "instId": "default"}}
    assert SPEC.stream.classify(ack, Market.FUTURE) is MessageKind.ACK
    assert SPEC.account.positions_in_full and SPEC.account.fetch is fetch_snapshot


class Answers:
    """A ccxt client's endpoint calls, answered from a table (what was asked is kept)."""

    def __init__(self, **answers):
        self.asked = []
        for name, answer in answers.items():
            setattr(self, name, self._call(name, answer))

    def _call(self, name, answer):
        async def call(params):
            self.asked.append((name, params))
            return answer
        return call


FUTURES_ROW = {"marginCoin": "USDT", "available": "1000.5", "crossedMaxAvailable": "990.5", "marginMode": "crossed"}
POSITION_ROW = {"symbol": "BTCUSDT", "holdSide": "long", "posMode": "one_way_mode", "marginMode": "crossed",
                "total": "0.3", "openPriceAvg": "100", "uTime": "1700000000500"}


async def test_the_snapshot_asks_every_spot_coin_and_the_usdt_futures_account_and_positions():
    spot = Answers(privateSpotGetV2SpotAccountAssets={"code": "00000", "requestTime": 1700000000900, "data": [
        {"coin": "ETH", "available": "0", "frozen": "0", "locked": "0", "uTime": "1700000000100"}]})
    [eth] = await fetch_snapshot(spot, Market.SPOT, 1)
    assert spot.asked == [("privateSpotGetV2SpotAccountAssets", {"assetType": "all"})]
    assert (eth.asset, eth.total, eth.timestamp, eth.source) == ("ETH", 0, 1700000000100, Source.REST)
    futures = Answers(
        privateMixGetV2MixAccountAccounts={"code": "00000", "requestTime": 1700000000900, "data": [FUTURES_ROW]},
        privateMixGetV2MixPositionAllPosition={"code": "00000", "data": [POSITION_ROW]})
    wallet, position = await fetch_snapshot(futures, Market.FUTURE, 1700000001000)
    assert futures.asked == [
        ("privateMixGetV2MixAccountAccounts", {"productType": "USDT-FUTURES"}),
        ("privateMixGetV2MixPositionAllPosition", {"productType": "USDT-FUTURES", "marginCoin": "USDT"})]
    assert (wallet.free, wallet.locked, wallet.total) == (Decimal("990.5"), 10, Decimal("1000.5"))
    assert wallet.timestamp == 1700000000900  # the read's time, not the caller's
    assert (position.symbol, position.size, position.timestamp) == ("BTC/USDT:USDT", Decimal("0.3"), 1700000000500)


@pytest.mark.parametrize("answer", [["not", "an", "object"], {"requestTime": "soon", "data": []},
                                    {"requestTime": 1, "data": {"coin": "USDT"}}])
async def test_a_malformed_snapshot_answer_raises_normalize_error(answer):
    with pytest.raises(NormalizeError):
        await fetch_snapshot(Answers(privateSpotGetV2SpotAccountAssets=answer), Market.SPOT, 1)
