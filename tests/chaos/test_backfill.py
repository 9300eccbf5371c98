"""Fills made while the socket is down come back by REST backfill (through ccxt), exactly once."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from exchanges import get_exchange
from exchanges.simulator import Simulator
from framework.backfill import Backfiller
from framework.events import Market
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy

PAIRS = [
    ("binance", "spot", "BTC/USDT"), ("binance", "future", "BTC/USDT:USDT"),
    ("bybit", "spot", "BTC/USDT"), ("bybit", "future", "BTC/USDT:USDT"),
    ("mexc", "spot", "BTC/USDT"), ("mexc", "future", "BTC/USDT:USDT"),
    ("gate", "spot", "BTC/USDT"), ("gate", "future", "BTC/USDT:USDT"),
    ("bitget", "spot", "BTC/USDT"), ("bitget", "future", "BTC/USDT:USDT"),
    ("hyperliquid", "future", "BTC/USDC:USDC"),
]
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=6)


def _ready(exchange: str) -> bool:
    try:
        return get_exchange(exchange).backfill is not None and Simulator(exchanges=[exchange]) is not None
    except Exception:  # noqa: BLE001 - a venue not built yet
        return False


pairs = [pytest.param(*p, id=f"{p[0]}_{p[1]}") for p in PAIRS if _ready(p[0])]


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


async def until(predicate, timeout=20.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def assert_matches_ledger(sim, exchange, market, stored, fills):
    venue = sim.venue(exchange)
    for fill in fills:
        trade = stored[fill.trade_id]
        expected = venue.expected_trade(Market.parse(market), fill)
        got = {name: getattr(trade, name) for name in expected}
        got["side"] = trade.side.value
        assert got == expected, f"{trade.source.value} fill {fill.trade_id}"


@pytest.mark.parametrize("exchange, market, symbol", pairs)
async def test_fills_during_a_disconnect_are_backfilled_once(exchange, market, symbol, tmp_path):
    async with Simulator(exchanges=[exchange], seed=3) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
            s = Recorder("bf", [sim.connector(exchange, market, retry_policy=policy)], symbols=[symbol], pool=pool)
            await s.start()
            connection = pool.connection(s.exchange_connectors[0].key)
            pool.scheduler(s.exchange_connectors[0].key).backfiller.retry_policy = FAST_REST
            _, before = await sim.fill(exchange, market, symbol, "buy", "0.010", "100.1")
            await until(lambda: len(s.trades) == 1)
            if exchange == "hyperliquid":
                sim.venue(exchange).snapshot_limit = 0  # else the resubscribe's snapshot replays the gap first
            sim.refuse_connections(exchange, market, 1.0)
            assert await sim.drop(exchange, market) == 1
            _, during = await sim.fill(exchange, market, symbol, "sell", "0.020", "100.2", parts=2)
            sim.fail_rest(exchange, market, [429, 502])  # the backfill itself meets trouble first
            await until(lambda: len(s.trades) == 1 + len(during))
            _, after = await sim.fill(exchange, market, symbol, "buy", "0.030", "100.3")
            await until(lambda: len(s.trades) == 2 + len(during))
            await pool.flush(5)
            stored = {t.trade_id: t for t in await pool.store.fetch_trades()}
            expected = before + during + after
            assert sorted(stored) == sorted(f.trade_id for f in expected)
            assert {stored[f.trade_id].source.value for f in during} == {"rest"}
            assert_matches_ledger(sim, exchange, market, stored, expected)
            assert sorted(t.trade_id for t in s.trades) == sorted(stored)
            status = pool.get_connection_status()["connections"][f"{exchange}_{market}"]
            assert status["reconnects"] == 1 and status["backfills"] >= 2
            await s.stop()
        log = pool.sync_log.path.read_text()
        assert "status=gap" in log and "source=rest" in log


@pytest.mark.parametrize("exchange, market, symbol", pairs)
async def test_backfill_pages_through_more_fills_than_a_page_holds(exchange, market, symbol, tmp_path):
    async with Simulator(exchanges=[exchange], seed=5) as sim:
        spec = get_exchange(exchange)
        rules = attrs.evolve(spec.backfill, page_limit=7)
        for i in range(40):
            await sim.fill(exchange, market, symbol, "buy" if i % 2 else "sell", "0.001", f"100.{i}")
            if i % 3 == 0:
                await asyncio.sleep(0.003)  # spread them over a few milliseconds, some share one
        fills = sim.ledger(exchange, market).fills
        key = sim.connector(exchange, market).key
        backfiller = Backfiller(key, rules, sim.credentials_for(exchange), spec.stream.endpoints(key.market),
                                sim.endpoints(exchange, market), retry_policy=FAST_REST)
        try:
            trades = await backfiller.fetch(symbol, fills[0].time - 1000)
        finally:
            await backfiller.close()
        assert [t.trade_id for t in trades] == [f.trade_id for f in fills]
        assert_matches_ledger(sim, exchange, market, {t.trade_id: t for t in trades}, fills)


async def test_a_stalled_stream_with_open_orders_is_reconnected_and_backfilled(tmp_path):
    async with Simulator(exchanges=["binance"], seed=9) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
            connector = sim.connector("binance", "future", retry_policy=policy, stall_limit=1.0)
            s = Recorder("st", [connector], symbols=["BTC/USDT:USDT"], pool=pool)
            await s.start()
            pool.scheduler(connector.key).backfiller.retry_policy = FAST_REST
            order = await sim.place_order("binance", "future", "BTC/USDT:USDT", "buy", "0.050", "64000.5")
            first = await sim.fill_order("binance", "future", order, "0.020")
            await until(lambda: len(s.trades) == 1)
            sim.stall("binance", "future")  # the socket stays up, pings are answered, no data comes
            second = await sim.fill_order("binance", "future", order, "0.030")
            await until(lambda: pool.get_connection_status()["connections"]["binance_future"]["reconnects"] == 1)
            sim.stall("binance", "future", False)
            await until(lambda: len(s.trades) == 2)
            await pool.flush(5)
            stored = {t.trade_id: t for t in await pool.store.fetch_trades()}
            assert sorted(stored) == sorted([first.trade_id, second.trade_id])
            assert stored[second.trade_id].source.value == "rest"
            await s.stop()
        log = pool.sync_log.path.read_text()
        assert "treating the stream as stalled" in log


async def test_an_expired_listen_key_is_replaced_and_the_gap_backfilled(tmp_path):
    async with Simulator(exchanges=["binance"], seed=11) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
            s = Recorder("lk", [sim.connector("binance", "future", retry_policy=policy)], symbols=["BTC/USDT:USDT"],
                         pool=pool)
            await s.start()
            first_key = next(iter(sim.venue("binance").listen_keys))
            sim.refuse_connections("binance", "future", 0.5)
            assert await sim.expire_listen_keys("binance", "future") == 1
            _, during = await sim.fill("binance", "future", "BTC/USDT:USDT", "sell", "0.004", "65010.1")
            await until(lambda: len(s.trades) == 1)
            assert next(iter(sim.venue("binance").listen_keys)) != first_key  # a new listenKey was made
            _, after = await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.002", "65011.3")
            await until(lambda: len(s.trades) == 2)
            assert [t.trade_id for t in s.trades] == [during[0].trade_id, after[0].trade_id]
            await s.stop()
        assert "listenKey expired" in pool.sync_log.path.read_text()
