"""Gate account state end to end on the simulator, over real sockets: a pool (SQLite) and a strategy on each
market's connector; after fills, and again after a dropped socket with fills made while it was down, the
strategy's views, what its hooks got and the store's latest states equal the simulator's account exactly.

spot.balances is complete (available, freeze, total). futures.balances has only the wallet: the pipeline completes
what is free and locked from the last state and asks for a REST read, so the checks poll until that read has come.
The handshake and classify are checked here too: the account channels are subscribed after orders and fills, their
acks counted, their updates passed on."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from exchanges.gate import SPEC
from exchanges.gate.account import ACCOUNT_CHANNELS, account_subscriptions, normalize_account, snapshot
from exchanges.gate.stream import GateStream, handshake
from exchanges.simulator import Simulator
from framework.errors import NormalizeError
from framework.events import Market, Source
from framework.pool import ConnectionPool
from framework.venue import Credentials, MessageKind
from tests.exchanges.account_checks import reconnected, started, until_equal

pytestmark = pytest.mark.timeout(30)

CREDS = Credentials(api_key="gate-key-1234", secret="gate-secret-5678")
SPOT_SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
FUTURE_SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


# the handshake ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("market", "user_id"), [(Market.SPOT, None), (Market.FUTURE, "1667201533")])
def test_handshake_ends_with_the_account_subscribes_and_counts_their_acks(market, user_id):
    now = 1_700_000_000_456
    frames = handshake(CREDS, market, now, user_id)
    assert frames[2:] == account_subscriptions(CREDS, market, now, user_id)
    assert [f["channel"] for f in frames[2:]] == list(ACCOUNT_CHANNELS[market])
    assert GateStream().acks_expected(market) == len(frames) == len({f["id"] for f in frames})


@pytest.mark.parametrize("channel", ["spot.balances", "futures.balances", "futures.positions"])
def test_account_updates_are_events(channel):
    assert GateStream().classify({"channel": channel, "event": "update", "result": []}, Market.SPOT) is (
        MessageKind.EVENT)


def test_spec_reads_the_account_with_the_usdt_settle_for_futures():
    rules = SPEC.account
    assert rules.normalize is normalize_account and rules.snapshot is snapshot
    assert (rules.balance_params(Market.SPOT), rules.positions_params(Market.FUTURE)) == ({}, {"settle": "usdt"})


# the REST snapshot ---------------------------------------------------------------------------------------------------
def test_snapshot_reads_gates_position_rows_not_ccxts_unified_figures():
    # ccxt's reading of a cross-margin row: leverage 0, timestamp the open time in seconds, entry "0" once flat
    cross = {"contract": "BTC_USDT", "size": "30", "mode": "single", "leverage": "0", "cross_leverage_limit": "25",
             "entry_price": "64000.5", "liq_price": "0", "mark_price": "64010", "unrealised_pnl": "0.03",
             "realised_pnl": "-0.01", "open_time": 1700000000, "update_time": 1700000100}
    flat = {"contract": "ETH_USDT", "size": "0", "mode": "single", "leverage": "10", "cross_leverage_limit": "0",
            "entry_price": "0", "liq_price": "0", "mark_price": "3000", "unrealised_pnl": "0", "realised_pnl": "2.5"}
    balance = {"total": {"USDT": "1000.5"}, "free": {"USDT": "990.5"}, "used": {"USDT": "10"}}
    positions = [{"info": cross, "leverage": "0", "timestamp": 1700000000000}, {"info": flat, "entryPrice": "0"}]
    wallet, btc, eth = snapshot(Market.FUTURE, balance, positions, 1_700_000_123_456)
    assert (wallet.asset, wallet.free, wallet.locked, wallet.total) == (
        "USDT", Decimal("990.5"), Decimal(10), Decimal("1000.5"))
    assert (btc.symbol, btc.size, btc.contracts, btc.direction.value) == (
        "BTC/USDT:USDT", Decimal("0.0030"), Decimal(30), "long")
    assert (btc.leverage, btc.margin_mode, btc.liquidation_price, btc.mark_price, btc.unrealized_pnl) == (
        Decimal(25), "cross", None, Decimal(64010), Decimal("0.03"))
    assert (eth.direction.value, eth.size, eth.entry_price, eth.leverage) == ("flat", 0, None, Decimal(10))
    assert {e.timestamp for e in (wallet, btc, eth)} == {1_700_000_123_456}
    assert {e.source for e in (wallet, btc, eth)} == {Source.REST}


def test_snapshot_of_a_malformed_position_row_raises():
    with pytest.raises(NormalizeError, match="position snapshot"):
        snapshot(Market.FUTURE, {"total": {}}, [{"info": {"contract": "BTC_USDT", "size": "1"}}], 1)


# end to end ---------------------------------------------------------------------------------------------------------
async def test_spot_balances_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["gate"], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "gate", "spot", SPOT_SYMBOLS)
            await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.0030", "64000.5", parts=2)
            await sim.fill("gate", "spot", "BTC/USDT", "sell", "0.0010", "64001.5")
            await sim.fill("gate", "spot", "ETH/USDT", "sell", "0.5", "3000.25")
            resting = await sim.place_order("gate", "spot", "ETH/USDT", "sell", "0.2", "3100.5")  # locks ETH
            await until_equal(pool, strategy, sim)
            assert strategy.balances["ETH"].locked == Decimal("0.2")
            assert strategy.sources["balance", Source.WEBSOCKET] > 0

            assert await sim.drop("gate", "spot") == 1
            # While the socket is down: the resting order fills, a coin never traded before is bought.
            await sim.fill_order("gate", "spot", resting, "0.2")
            await sim.fill("gate", "spot", "SOL/USDT", "buy", "2", "140.25")
            await reconnected(connection, scheduler)
            await until_equal(pool, strategy, sim)  # the reconnect's REST snapshot alone
            assert strategy.balances["ETH"].locked == 0 and strategy.balances["SOL"].source is Source.REST
            await sim.fill("gate", "spot", "BTC/USDT", "sell", "0.0020", "64010.5")  # sells the rest of what was bought
            await until_equal(pool, strategy, sim)
            await strategy.stop()


async def test_futures_balances_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["gate"], seed=5) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await started(sim, pool, "gate", "future", FUTURE_SYMBOLS)
            await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0030", "64000.5", parts=2)
            await sim.fill("gate", "future", "BTC/USDT:USDT", "sell", "0.0010", "64100.5")  # reduces: PnL
            await sim.fill("gate", "future", "ETH/USDT:USDT", "sell", "0.50", "3000.25")
            await sim.fill("gate", "future", "ETH/USDT:USDT", "buy", "0.80", "2990.75")  # flips to long
            await until_equal(pool, strategy, sim)
            assert strategy.positions["ETH/USDT:USDT"].signed_size == Decimal("0.30")
            assert strategy.sources["position", Source.WEBSOCKET] > 0

            assert await sim.drop("gate", "future") == 1
            # While the socket is down: BTC is closed, ETH flips to short.
            await sim.fill("gate", "future", "BTC/USDT:USDT", "sell", "0.0020", "64200.5")
            await sim.fill("gate", "future", "ETH/USDT:USDT", "sell", "0.50", "3010.25")
            await reconnected(connection, scheduler)
            await until_equal(pool, strategy, sim)  # the reconnect's REST snapshot alone
            eth = strategy.positions["ETH/USDT:USDT"]
            assert (eth.signed_size, eth.source) == (Decimal("-0.20"), Source.REST)
            await sim.fill("gate", "future", "ETH/USDT:USDT", "buy", "0.10", "3005.5")  # reduces the short
            await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0010", "64300.5")  # opens again
            await until_equal(pool, strategy, sim)
            assert strategy.positions["ETH/USDT:USDT"].signed_size == Decimal("-0.10")
            await strategy.stop()
