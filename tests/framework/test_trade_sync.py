"""Dedup, storage and decimals through the whole path: MockConnector → pool → TradeSync → store."""

import asyncio
import itertools
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges.mock import MockConnector
from framework.events import Trade
from framework.pool import ConnectionPool
from tests.framework.flaky_store import FlakyStore
from framework.strategy import BaseStrategy
from framework.store import open_store

decimal_texts = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999999"), places=8).map(str)


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


fill_specs = st.lists(
    st.tuples(
        st.sampled_from(["BTC/USDT", "ETH/USDT"]),
        st.integers(1, 6),  # trade id: small, so keys collide across symbols and orders
        st.integers(1, 3),  # order id: a self-trade gives one trade id to two orders
        decimal_texts,
        decimal_texts,
        st.sampled_from(["buy", "sell"]),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda s: (s[0], s[1], s[2]),
)


@st.composite
def interleavings(draw):
    fills = draw(fill_specs)
    order = draw(st.lists(st.integers(0, len(fills) - 1), min_size=len(fills), max_size=4 * len(fills)))
    order = order + list(range(len(fills)))  # every fill at least once, some many times, any order
    order = draw(st.permutations(order))
    flushes = draw(st.sets(st.integers(0, len(order))))
    return fills, order, flushes


def run_dedup_example(store_url, tmp_path, example):
    fills, order, flushes = example
    run = uuid.uuid4().hex[:8]  # examples share one store: keep their keys apart

    async def scenario():
        async with ConnectionPool(store_url, tmp_path / "logs") as pool:
            strategy = Recorder(f"r{run}", [MockConnector("binance", "spot")], pool=pool)
            await strategy.start()
            connector = strategy.exchange_connectors[0]
            sent = {}
            for position, index in enumerate(order):
                if position in flushes:
                    await pool.flush(5)
                symbol, tid, oid, amount, price, side = fills[index]
                trade = await connector.push_trade(
                    symbol, side, amount, price, trade_id=f"{run}-{tid}", order_id=f"{run}-{oid}", fee_cost="0.1"
                )
                sent.setdefault(trade.dedup_key, trade)
            await pool.flush(10)
            stored = [t for t in await pool.store.fetch_trades() if t.trade_id.startswith(run)]
            await strategy.stop()
            return sent, stored, strategy.trades

    sent, stored, delivered = asyncio.run(scenario())
    assert sorted(t.dedup_key for t in stored) == sorted(sent)  # one row per key, none missing
    for trade in stored:
        original = sent[trade.dedup_key]
        assert trade == original
        assert str(trade.amount) == str(original.amount) and str(trade.price) == str(original.price)
    assert sorted(t.dedup_key for t in delivered) == sorted(sent)  # each fill reached the strategy once


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(example=interleavings())
def test_dedup_under_any_interleaving_sqlite(tmp_path, example):
    run_dedup_example(f"sqlite:///{tmp_path / 'dedup.sqlite'}", tmp_path, example)


@pytest.mark.postgres
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(example=interleavings())
def test_dedup_under_any_interleaving_postgres(pg_url, tmp_path, example):
    run_dedup_example(pg_url, tmp_path, example)


@pytest.mark.postgres
async def test_same_fills_from_two_pools_into_one_postgres_give_one_row_each(pg_url, tmp_path):
    pools = [ConnectionPool(pg_url, tmp_path / f"logs{i}") for i in range(2)]
    for pool in pools:
        await pool.start()
    strategies = [Recorder(f"p{i}", [MockConnector("bybit", "future")], pool=p) for i, p in enumerate(pools)]
    for s in strategies:
        await s.start()

    async def push_all(connector):
        for i in range(200):
            await connector.push_trade(
                "BTC/USDT:USDT", "buy", "0.010", f"65000.{i:02d}", trade_id=str(i), order_id=str(i // 4)
            )
            if i % 25 == 0:
                await asyncio.sleep(0)  # let the two pools' writers interleave

    await asyncio.gather(*(push_all(s.exchange_connectors[0]) for s in strategies))
    for pool in pools:
        await pool.flush(10)
    rows = await pools[0].store.fetch_trades()
    assert len(rows) == 200 and len({t.dedup_key for t in rows}) == 200
    stored = [p.trade_sync.stats()["stored"] for p in pools]
    duplicates = [p.trade_sync.stats()["duplicates"] for p in pools]
    assert sum(stored) == 200 and sum(duplicates) == 200  # each fill written by exactly one pool
    for s in strategies:
        await s.stop()
    for pool in pools:
        await pool.stop()


async def test_decimals_survive_exactly(store):
    texts = ["0.00000001", "1.10000000", "65000.12345678", "123456789012345.123456789012", "1E-8", "100"]
    trades = [
        Trade(
            exchange="gate", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTC_USDT", trade_id=str(i),
            order_id="1", side="sell", amount=text, price=text, cost=text, fee_cost=f"-{text}",
            fee_currency="USDT", timestamp=i,
        )
        for i, text in enumerate(texts)
    ]
    assert [seq is not None for seq in await store.insert_trades(trades)] == [True] * len(texts)
    stored = {t.trade_id: t for t in await store.fetch_trades()}
    for i, text in enumerate(texts):
        got = stored[str(i)]
        assert got.amount == Decimal(text) and got.amount.as_tuple() == Decimal(text).as_tuple()
        assert got.fee_cost == -Decimal(text)
        assert got == trades[i]


async def test_store_reports_new_and_duplicate_per_row(store):
    make = lambda tid: Trade(  # noqa: E731
        exchange="binance", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id=tid, order_id="1",
        side="buy", amount="1", price="1", cost="1", timestamp=1,
    )
    new = lambda seqs: [seq is not None for seq in seqs]  # noqa: E731
    assert new(await store.insert_trades([make("a"), make("b")])) == [True, True]
    assert new(await store.insert_trades([make("c"), make("a"), make("d"), make("b")])) == [True, False, True, False]


async def test_restart_replay_is_a_duplicate_and_not_redelivered(tmp_path):
    url = f"sqlite:///{tmp_path / 'restart.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as pool:
        s = Recorder("r", [MockConnector("hyperliquid", "future")], pool=pool)
        await s.start()
        await s.exchange_connectors[0].push_trade("BTC/USDC:USDC", "buy", "1", "2", trade_id="7", order_id="8")
        await pool.flush(5)
        await s.stop()
    async with ConnectionPool(url, tmp_path / "logs") as pool:  # a new process: memory is empty
        s = Recorder("r", [MockConnector("hyperliquid", "future")], pool=pool)
        await s.start()
        await s.exchange_connectors[0].push_trade("BTC/USDC:USDC", "buy", "1", "2", trade_id="7", order_id="8")
        await pool.flush(5)
        assert s.trades == []  # the snapshot replay of an already stored fill is not a new fill
        assert pool.trade_sync.stats()["duplicates"] == 1


async def test_store_outage_keeps_fills_and_writes_them_when_it_returns(tmp_path):
    store = FlakyStore(open_store(f"sqlite:///{tmp_path / 'flaky.sqlite'}"), down=True)
    async with ConnectionPool(store=store, log_dir=tmp_path / "logs") as pool:
        s = Recorder("r", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        sent = [await s.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", str(p)) for p in range(1, 6)]
        await asyncio.wait_for(_until(lambda: len(s.trades) == 5), 5)  # strategies keep receiving
        await asyncio.wait_for(_until(lambda: pool.trade_sync.stats()["spooled"] == 5), 5)
        assert pool.trade_sync.stats()["write_errors"] >= 1 and pool.trade_sync.pending == 0  # on disk, not RAM
        spool = pool.trade_sync.spool.path
        assert spool.exists() and spool.parent == tmp_path / "spool"
        later = await s.exchange_connectors[0].push_trade("BTC/USDT", "sell", "2", "7")  # behind the spool
        store.down = False
        await pool.flush(10)
        assert await store.fetch_trades() == sent + [later]
        assert not spool.exists()


async def test_fills_spooled_when_the_process_stopped_are_written_at_the_next_start(tmp_path):
    class DownStore:
        """A real SQLite store whose server is 'unreachable': every write fails, transiently."""

        def __init__(self, inner):
            self.inner, self.url = inner, inner.url

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def insert_trades(self, trades):
            from framework.errors import StoreError

            raise StoreError("connection refused")

        async def write_batch(self, *batch):
            from framework.errors import StoreError

            raise StoreError("connection refused")

    url = f"sqlite:///{tmp_path / 'spooled.sqlite'}"
    async with ConnectionPool(store=DownStore(open_store(url)), log_dir=tmp_path / "logs") as pool:
        s = Recorder("r", [MockConnector("gate", "spot")], pool=pool)
        await s.start()
        sent = [await s.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", f"{p}.5") for p in range(1, 4)]
        await asyncio.wait_for(_until(lambda: pool.trade_sync.write_errors >= 1), 5)
        await s.stop()
        pool_spool = pool.trade_sync.spool.path
    assert pool_spool.exists()  # stopped with the store down: nothing lost, all on disk
    async with ConnectionPool(url, tmp_path / "logs") as pool:  # the next start, store reachable
        assert pool.trade_sync.spool.path == pool_spool
        await pool.flush(10)
        assert await pool.store.fetch_trades() == sent
    assert not pool_spool.exists()


async def _until(predicate):
    for _ in itertools.count():
        if predicate():
            return
        await asyncio.sleep(0.01)


async def test_a_later_copy_of_a_fill_completes_its_missing_fee(store_url, tmp_path):
    # Binance USD-M sends TRADE_LITE (no commission) before ORDER_TRADE_UPDATE (with it): same dedup key.
    async with ConnectionPool(store_url, tmp_path / "logs") as pool:
        s = Recorder("r", [MockConnector("binance", "future")], pool=pool)
        await s.start()
        c = s.exchange_connectors[0]
        first = await c.push_trade("BTC/USDT:USDT", "buy", "0.040", "64089.20", trade_id="109100866", order_id="1")
        await pool.flush(5)
        await c.push_trade("BTC/USDT:USDT", "buy", "0.040", "64089.20", trade_id="109100866", order_id="1",
                           fee_cost="0.00102542", fee_currency="USDT")
        await c.push_trade("BTC/USDT:USDT", "buy", "0.040", "64089.20", trade_id="109100866", order_id="1",
                           fee_cost="9", fee_currency="XXX")  # a fee already stored is never overwritten
        await pool.flush(5)
        (stored,) = await pool.store.fetch_trades()
        assert str(stored.fee_cost) == "0.00102542" and stored.fee_currency == "USDT"
        assert s.trades == [first] and pool.trade_sync.stats()["duplicates"] == 2
