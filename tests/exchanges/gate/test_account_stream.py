"""Gate account state end to end on the simulator, over real sockets: a pool (SQLite) and a strategy on each
market's connector; after fills, and again after a dropped socket with fills made while it was down, the
strategy's views, what its hooks got and the store's latest states equal the simulator's account exactly.

spot.balances is complete (available, freeze, total). futures.balances has only the wallet: the pipeline completes
what is free and locked from the last state and asks for a REST read, so the checks poll until that read has come.
The handshake and classify are checked here too: the account channels are subscribed after orders and fills, their
acks counted, their updates passed on."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from exchanges.gate import SPEC
from exchanges.gate.account import ACCOUNT_CHANNELS, account_subscriptions, normalize_account, snapshot
from exchanges.gate.stream import GateStream, handshake
from exchanges.simulator import Simulator
from framework.errors import NormalizeError
from framework.events import Market, Source
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy
from framework.venue import Credentials, MessageKind

pytestmark = pytest.mark.timeout(30)

CREDS = Credentials(api_key="gate-key-1234", secret="gate-secret-5678")
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=6)
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
class AccountWatcher(BaseStrategy):
    """The newest state its hooks were given, per asset and per symbol, and where states came from."""

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
    """How `got` (asset -> BalanceUpdate) differs from the simulator's balances (free, locked, total); an asset one
    side lacks is a problem unless the other holds it at zero."""
    problems = []
    for asset in sorted(set(got) | set(account.balances)):
        held, seen = account.balances.get(asset), got.get(asset)
        figures = None if seen is None else (seen.free, seen.locked, seen.total)
        if held is None:
            if figures != (0, 0, 0):
                problems.append(f"{where}: {asset} {figures} is not in the simulator's account")
        elif figures != (held.free, held.locked, held.total) and (figures is not None or held.total):
            problems.append(f"{where}: {asset} free/locked/total {figures}, the simulator "
                            f"{(held.free, held.locked, held.total)}")
    return problems


def _position_problems(where: str, got: dict, account) -> list[str]:
    """How `got` (symbol -> PositionUpdate) differs from the simulator's positions: signed size in base units,
    direction, entry price (none once flat: Gate writes 0, the stream reads it as none)."""
    problems = []
    for symbol in sorted(set(got) | set(account.positions)):
        held, seen = account.positions.get(symbol), got.get(symbol)
        state = None if seen is None else (seen.signed_size, seen.direction.value, seen.entry_price)
        if held is None:
            if seen.size:
                problems.append(f"{where}: {symbol} {state} is not in the simulator's account")
        elif state != (held.size, held.direction, held.entry_price or None) and (state is not None or held.size):
            problems.append(f"{where}: {symbol} size/direction/entry {state}, the simulator "
                            f"{(held.size, held.direction, held.entry_price)}")
    return problems


async def _problems(pool: ConnectionPool, strategy: AccountWatcher, sim: Simulator, market: str) -> list[str]:
    await pool.flush(5)
    key = strategy.exchange_connectors[0].key
    account = sim.account("gate", market)
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
    """Poll until the strategy and the store hold the simulator's account (futures wait for the REST read)."""
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
    """A strategy on the market's connector, live, its first REST snapshot taken."""
    policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
    strategy = AccountWatcher(f"acct-{market}", [sim.connector("gate", market, retry_policy=policy)],
                              symbols=symbols, pool=pool)
    await strategy.start()
    key = strategy.exchange_connectors[0].key
    scheduler = pool.scheduler(key)
    scheduler.backfiller.retry_policy = FAST_REST
    await _until(lambda: pool.connection(key).live and scheduler.snapshots >= 1)
    return strategy, pool.connection(key), scheduler


async def _reconnected(connection, scheduler) -> None:
    """Wait for a socket the simulator dropped to be live again, and for that session's REST snapshot."""
    sessions, snapshots = connection.live_sessions, scheduler.snapshots
    await _until(lambda: connection.live and connection.live_sessions > sessions and scheduler.snapshots > snapshots)


async def test_spot_balances_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["gate"], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await _started(sim, pool, "spot", SPOT_SYMBOLS)
            await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.0030", "64000.5", parts=2)
            await sim.fill("gate", "spot", "BTC/USDT", "sell", "0.0010", "64001.5")
            await sim.fill("gate", "spot", "ETH/USDT", "sell", "0.5", "3000.25")
            resting = await sim.place_order("gate", "spot", "ETH/USDT", "sell", "0.2", "3100.5")  # locks ETH
            await _until_equal(pool, strategy, sim, "spot")
            assert strategy.balances["ETH"].locked == Decimal("0.2")
            assert strategy.sources["balance", Source.WEBSOCKET] > 0

            assert await sim.drop("gate", "spot") == 1
            # While the socket is down: the resting order fills, a coin never traded before is bought.
            await sim.fill_order("gate", "spot", resting, "0.2")
            await sim.fill("gate", "spot", "SOL/USDT", "buy", "2", "140.25")
            await _reconnected(connection, scheduler)
            await _until_equal(pool, strategy, sim, "spot")  # the reconnect's REST snapshot alone
            assert strategy.balances["ETH"].locked == 0 and strategy.balances["SOL"].source is Source.REST
            await sim.fill("gate", "spot", "BTC/USDT", "sell", "0.0020", "64010.5")  # sells the rest of what was bought
            await _until_equal(pool, strategy, sim, "spot")
            await strategy.stop()


async def test_futures_balances_and_positions_reach_the_strategy_and_the_store_and_survive_a_reconnect(tmp_path):
    async with asyncio.timeout(10), Simulator(exchanges=["gate"], seed=5) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            strategy, connection, scheduler = await _started(sim, pool, "future", FUTURE_SYMBOLS)
            await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0030", "64000.5", parts=2)
            await sim.fill("gate", "future", "BTC/USDT:USDT", "sell", "0.0010", "64100.5")  # reduces: PnL
            await sim.fill("gate", "future", "ETH/USDT:USDT", "sell", "0.50", "3000.25")
            await sim.fill("gate", "future", "ETH/USDT:USDT", "buy", "0.80", "2990.75")  # flips to long
            await _until_equal(pool, strategy, sim, "future")
            assert strategy.positions["ETH/USDT:USDT"].signed_size == Decimal("0.30")
            assert strategy.sources["position", Source.WEBSOCKET] > 0

            assert await sim.drop("gate", "future") == 1
            # While the socket is down: BTC is closed, ETH flips to short.
            await sim.fill("gate", "future", "BTC/USDT:USDT", "sell", "0.0020", "64200.5")
            await sim.fill("gate", "future", "ETH/USDT:USDT", "sell", "0.50", "3010.25")
            await _reconnected(connection, scheduler)
            await _until_equal(pool, strategy, sim, "future")  # the reconnect's REST snapshot alone
            eth = strategy.positions["ETH/USDT:USDT"]
            assert (eth.signed_size, eth.source) == (Decimal("-0.20"), Source.REST)
            await sim.fill("gate", "future", "ETH/USDT:USDT", "buy", "0.10", "3005.5")  # reduces the short
            await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0010", "64300.5")  # opens again
            await _until_equal(pool, strategy, sim, "future")
            assert strategy.positions["ETH/USDT:USDT"].signed_size == Decimal("-0.10")
            await strategy.stop()
