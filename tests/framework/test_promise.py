"""The promise across restarts, bad values and slow strategies (issue 7): in-process scenarios.

Every fill of the account reaches the store once and the strategy that owns it once. Each test here
reproduces one way that broke: a value the database cannot take, a restart after a gap, a first start,
fills stored while no strategy was listening, replays past the dedup memory, a late fee, a blocking
hook, a slow strategy, a database down at start. Kills of real processes are in tests/chaos.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal

import pytest

from exchanges.mock import MockConnector
from exchanges.simulator import Simulator
from framework.events import Trade
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy
from tests.chaos.tcp_proxy import TcpProxy
from tests.conftest import make_schema_url
from framework.errors import StoreError
from tests.framework.flaky_store import FlakyStore

pytestmark = pytest.mark.timeout(90)


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = getattr(self, "trades", [])
        self.amended_trades = getattr(self, "amended_trades", [])

    def on_trade(self, trade):
        self.trades.append(trade)

    def on_trade_amended(self, trade):
        self.amended_trades.append(trade)


async def until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def fill(trade_id: str, *, coid: str | None = None, symbol: str = "BTC/USDT", fee: str | None = "0.1",
         timestamp: int | None = None, amount: str = "1") -> Trade:
    return Trade(exchange="binance", market="spot", symbol=symbol, symbol_raw=symbol.replace("/", ""),
                 trade_id=trade_id, order_id=f"o{trade_id}", client_order_id=coid, side="buy", amount=amount,
                 price="100", cost=str(Decimal(amount) * 100), fee_cost=fee, fee_currency="USDT" if fee else None,
                 timestamp=timestamp or int(time.time() * 1000))


# 1. one value the database cannot take ---------------------------------------------------------------
@pytest.mark.parametrize("poison", [2**63, -(2**63) - 1])
async def test_a_value_the_database_cannot_take_is_a_dead_letter_and_storage_goes_on(store_url, tmp_path, poison):
    """A fill past validation whose timestamp the driver cannot take: that row is dead-lettered, every
    other row of its batch and every later fill is stored, and the pool stops cleanly."""
    pool = ConnectionPool(store_url, tmp_path / "logs", spool_dir=tmp_path / "spool")
    await pool.start()
    try:
        good = [fill(str(i)) for i in range(5)]
        bad = fill("bad", timestamp=1)
        object.__setattr__(bad, "timestamp", poison)  # as if a venue module let it through
        for trade in good[:2] + [bad] + good[2:]:
            pool.trade_sync.accept(trade)
        await pool.flush(10)
        later = fill("later")
        pool.trade_sync.accept(later)
        await pool.flush(10)
        stored = {t.trade_id for t in await pool.store.fetch_trades()}
        assert stored == {t.trade_id for t in good} | {"later"}
        letters = await pool.store.fetch_dead_letters()
        assert len(letters) == 1 and '"trade_id":"bad"' in letters[0]["raw"].replace(" ", "")
        assert pool.trade_sync.stats()["dead_letters"] == 1
    finally:
        await pool.stop()  # must not raise


async def test_an_unexpected_error_in_the_store_dead_letters_the_batch_and_the_writer_goes_on(tmp_path):
    class Buggy:
        def __init__(self, inner):
            self.inner, self.url = inner, inner.url

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def insert_trades(self, trades):
            if any(t.trade_id == "boom" for t in trades):
                raise OverflowError("a bug nobody foresaw")
            return await self.inner.insert_trades(trades)

        async def write_batch(self, trades, fee_copies, orders, dead_rows):
            if any(t.trade_id == "boom" for t in trades):
                raise OverflowError("a bug nobody foresaw")
            return await self.inner.write_batch(trades, fee_copies, orders, dead_rows)

    from framework.store import open_store

    store = Buggy(open_store(f"sqlite:///{tmp_path / 'b.sqlite'}"))
    async with ConnectionPool(store=store, log_dir=tmp_path / "logs") as pool:
        s = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        for trade in [fill("1"), fill("boom"), fill("2")]:
            pool.trade_sync.accept(trade)
        await pool.flush(10)
        pool.trade_sync.accept(fill("3"))
        await pool.flush(10)
        assert sorted(t.trade_id for t in await store.fetch_trades()) == ["1", "2", "3"]
        assert [letter["error"].startswith("unexpected error") for letter in await store.fetch_dead_letters()] == [True]
        assert sorted(t.trade_id for t in s.trades) == ["1", "2", "3"]
        await s.stop()


# 2 and 3. coverage marks, not max(timestamp) ----------------------------------------------------------
def _connector(sim, exchange, market, **kwargs):
    return sim.connector(exchange, market, retry_policy=reconnect_policy(initial=0.05, maximum=0.2, jitter=0.01),
                         backfill_overlap_ms=100,
                         backfill_retry_policy=rest_call_policy(initial=0.02, maximum=0.05, jitter=0.01, attempts=2),
                         **kwargs)


async def _stored_ids(pool, key) -> Counter:
    return Counter(t.trade_id for t in await pool.store.fetch_trades(key))


async def test_a_restart_whose_catch_up_never_finished_fetches_the_gap_on_the_next_start(tmp_path):
    """Run, stop; the venue fills on; restart, a live fill is stored, the catch-up does not finish
    (REST failing) and the process stops; the next start must still fetch the gap."""
    url = f"sqlite:///{tmp_path / 'gap.sqlite'}"
    async with Simulator(exchanges=["binance"]) as sim:
        symbol = "BTC/USDT"
        async with ConnectionPool(url, tmp_path / "logs") as pool:
            s = Recorder("s", [_connector(sim, "binance", "spot")], symbols=[symbol], pool=pool)
            await s.start()
            await sim.fill("binance", "spot", symbol, "buy", "0.1", "100", client_order_id="s-1")
            await until(lambda: len(s.trades) == 1)
            await s.stop()
        for i in range(5):  # the gap: fills while nothing listens
            await sim.fill("binance", "spot", symbol, "buy", "0.1", "101", client_order_id=f"s-gap{i}")
        await asyncio.sleep(0.5)  # the gap ends well beyond the overlap
        sim.fail_rest("binance", "spot", [500] * 100_000)
        async with ConnectionPool(url, tmp_path / "logs") as pool:
            s = Recorder("s", [_connector(sim, "binance", "spot")], symbols=[symbol], pool=pool)
            await s.start()
            await sim.fill("binance", "spot", symbol, "sell", "0.1", "102", client_order_id="s-live")
            await until(lambda: any(t.client_order_id == "s-live" for t in s.trades))
            await asyncio.sleep(0.5)
            await s.stop()
        sim.faults.rest_failures.clear()
        async with ConnectionPool(url, tmp_path / "logs") as pool:
            s = Recorder("s", [_connector(sim, "binance", "spot")], symbols=[symbol], pool=pool)
            await s.start()
            ledger = {f.trade_id for f in sim.ledger("binance", "spot").fills}
            async with asyncio.timeout(20):
                while set((await _stored_ids(pool, s.exchange_connectors[0].key))) != ledger:
                    await asyncio.sleep(0.1)
            await pool.flush(10)
            gap = {t.client_order_id for t in s.trades}
            assert {f"s-gap{i}" for i in range(5)} <= gap  # delivered at this start, being s's own
            await s.stop()
        assert set((await _count_in(url)).values()) == {1}


async def _count_in(url) -> Counter:
    from framework.store import open_store

    store = open_store(url)
    await store.start()
    try:
        return Counter(t.trade_id for t in await store.fetch_trades())
    finally:
        await store.stop()


@pytest.mark.parametrize("exchange, market, symbol", [("binance", "spot", "BTC/USDT"),
                                                      ("bybit", "future", "BTC/USDT:USDT"),
                                                      ("hyperliquid", "future", "BTC/USDC:USDC")])
async def test_a_first_start_on_an_empty_store_reads_back_the_lookback(tmp_path, exchange, market, symbol):
    async with Simulator(exchanges=[exchange]) as sim:
        for i in range(3):
            await sim.fill(exchange, market, symbol, "buy", "0.1", "100", client_order_id=f"s-before{i}")
        url = f"sqlite:///{tmp_path / 'first.sqlite'}"
        async with ConnectionPool(url, tmp_path / "logs", backfill_since_ms=3_600_000) as pool:
            s = Recorder("s", [_connector(sim, exchange, market)], symbols=[symbol], pool=pool)
            await s.start()
            ledger = {f.trade_id for f in sim.ledger(exchange, market).fills}
            key = s.exchange_connectors[0].key
            async with asyncio.timeout(20):
                while set(await _stored_ids(pool, key)) != ledger:
                    await asyncio.sleep(0.1)
            last_fill = sim.ledger(exchange, market).fills[-1].time
            async with asyncio.timeout(20):  # the start-up backfill finishes: the mark covers them all
                while not ((marks := await pool.store.get_coverage(key))
                           and all(v >= last_fill for v in marks.values())):
                    await asyncio.sleep(0.1)
            await s.stop()


# 4. stored but never delivered ------------------------------------------------------------------------------
async def test_fills_stored_while_the_strategy_was_stopped_are_delivered_at_its_next_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as pool:
        mock = MockConnector("binance", "spot")
        s = Recorder("s", [mock], pool=pool)
        other = Recorder("other", [mock], pool=pool)
        await s.start()
        await other.start()
        await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id="1", client_order_id="s-1")
        await pool.flush(5)
        await s.stop()
        # s is stopped: its own fills wait in the store (the other strategy on the symbol must not get them)
        await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id="2", client_order_id="s-2")
        await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id="3", client_order_id="s-3")
        await pool.flush(5)
        assert [t.trade_id for t in other.trades] == []
        s2 = Recorder("s", [mock], pool=pool)
        await s2.start()
        await pool.flush(5)
        assert [(t.trade_id, t.redelivered) for t in s2.trades] == [("2", False), ("3", False)]
        await s2.stop()
        await other.stop()
    async with ConnectionPool(url, tmp_path / "logs") as pool:  # a new process: nothing comes twice
        s3 = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s3.start()
        await pool.flush(5)
        assert s3.trades == []
        await s3.stop()


async def test_a_slow_strategys_queued_fills_at_stop_come_at_its_next_start(tmp_path):
    class Slow(Recorder):
        async def on_trade(self, trade):
            await asyncio.sleep(0.05)
            self.trades.append(trade)

    url = f"sqlite:///{tmp_path / 'slow.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as pool:
        mock = MockConnector("binance", "spot")
        s = Slow("s", [mock], pool=pool)
        await s.start()
        for i in range(40):
            await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=str(i), client_order_id=f"s-{i}")
        await pool.trade_sync.progress.wait_until(pool.trade_sync.progress.submitted, 5)
        await s.stop(timeout=0.3)  # most are still queued
        first = [t.trade_id for t in s.trades]
        assert 0 < len(first) < 40
        s2 = Slow("s", [mock], pool=pool)
        await s2.start()
        await pool.flush(10)
        assert first + [t.trade_id for t in s2.trades] == [str(i) for i in range(40)]
        await s2.stop()


async def test_hyperliquid_snapshot_at_start_is_delivered_once(tmp_path):
    async with Simulator(exchanges=["hyperliquid"]) as sim:
        symbol = "BTC/USDC:USDC"
        await sim.fill("hyperliquid", "future", symbol, "buy", "0.1", "100", client_order_id=None)
        url = f"sqlite:///{tmp_path / 'hl.sqlite'}"
        async with ConnectionPool(url, tmp_path / "logs") as pool:
            s = Recorder("s", [_connector(sim, "hyperliquid", "future", backfill=False)], symbols=[symbol], pool=pool)
            await s.start()
            await until(lambda: len(s.trades) == 1)
            await sim.fill("hyperliquid", "future", symbol, "sell", "0.1", "101")
            await until(lambda: len(s.trades) == 2)
            await pool.flush(5)
            assert Counter(t.trade_id for t in s.trades) == Counter(
                f.trade_id for f in sim.ledger("hyperliquid", "future").fills)
            await s.stop()


# 5. never delivered twice -------------------------------------------------------------------------------------
async def test_replays_past_the_dedup_memory_are_not_delivered_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs", recent_capacity=5) as pool:
        mock = MockConnector("binance", "spot")
        s = Recorder("s", [mock], pool=pool)
        await s.start()
        for i in range(20):
            await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=str(i), order_id="o", timestamp=1_700_000_000_000 + i)
        await pool.flush(5)
        for i in range(20):  # a venue replays them all (the memory holds 5)
            await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=str(i), order_id="o", timestamp=1_700_000_000_000 + i)
        await pool.flush(5)
        assert Counter(t.trade_id for t in s.trades) == Counter(str(i) for i in range(20))
        await s.stop()


# 7. a late fee ----------------------------------------------------------------------------------------------------
async def test_a_fee_arriving_after_a_restart_completes_the_stored_fill(tmp_path):
    url = f"sqlite:///{tmp_path / 'fee.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as pool:
        s = Recorder("s", [MockConnector("binance", "future")], pool=pool)
        await s.start()
        await s.exchange_connectors[0].push_trade("BTC/USDT:USDT", "buy", "1", "100", trade_id="9", order_id="8",
                                                  client_order_id="s-1", fee_cost=None)
        await pool.flush(5)
        await s.stop()
    async with ConnectionPool(url, tmp_path / "logs") as pool:  # ORDER_TRADE_UPDATE with the fee, after a restart
        s = Recorder("s", [MockConnector("binance", "future")], pool=pool)
        await s.start()
        await s.exchange_connectors[0].push_trade("BTC/USDT:USDT", "buy", "1", "100", trade_id="9", order_id="8",
                                                  client_order_id="s-1", fee_cost="0.02", fee_currency="USDT")
        await pool.flush(5)
        (stored,) = await pool.store.fetch_trades()
        assert (stored.fee_cost, stored.fee_currency) == (Decimal("0.02"), "USDT")
        assert s.trades == [] and [(t.trade_id, t.fee_cost) for t in s.amended_trades] == [("9", Decimal("0.02"))]
        await s.stop()


# 8. a blocking hook, a slow strategy --------------------------------------------------------------------------------
async def test_a_blocking_sync_hook_delays_only_its_own_strategy(tmp_path):
    class Blocking(Recorder):
        def on_trade(self, trade):
            time.sleep(0.5)
            self.trades.append(trade)

    async with ConnectionPool(f"sqlite:///{tmp_path / 'b.sqlite'}", tmp_path / "logs") as pool:
        mock = MockConnector("binance", "spot")
        blocked, fast = Blocking("blocked", [mock], pool=pool), Recorder("fast", [mock], pool=pool)
        await blocked.start()
        await fast.start()
        started = time.monotonic()
        for i in range(50):
            await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=str(i))
        await until(lambda: len(fast.trades) == 50, 5)
        assert time.monotonic() - started < 2.0  # the loop, the store and the other strategy went on
        assert len(await pool.store.fetch_trades()) == 50
        assert len(blocked.trades) < 10
        t0 = time.monotonic()
        await blocked.stop(timeout=0.5)
        assert time.monotonic() - t0 < 2.0 and blocked.state.value == "stopped"
        await fast.stop()


async def test_a_slow_async_strategy_reads_from_the_store_instead_of_growing_memory(tmp_path):
    class Slow(Recorder):
        max_inbox = 50
        peak = 0

        async def on_trade(self, trade):
            Slow.peak = max(Slow.peak, len(self._inbox))
            await asyncio.sleep(0.001)
            self.trades.append(trade)

    async with ConnectionPool(f"sqlite:///{tmp_path / 'm.sqlite'}", tmp_path / "logs") as pool:
        mock = MockConnector("binance", "spot")
        s = Slow("s", [mock], pool=pool)
        await s.start()
        for i in range(1500):
            await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=f"{i:05d}")
        await pool.flush(30)
        assert [t.trade_id for t in s.trades] == [f"{i:05d}" for i in range(1500)]  # all, once, in order
        assert Slow.peak <= 50 and s.caught_up > 0
        await s.stop()


# 11. the database down at start ------------------------------------------------------------------------------------------
@pytest.mark.postgres
async def test_start_with_the_database_down_spools_then_stores_and_delivers(pg_server, tmp_path):
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    import uuid

    schema = f"t_down_{uuid.uuid4().hex[:8]}"
    url = make_schema_url(pg_server.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"), schema)
    proxy.cut()
    try:
        t0 = time.monotonic()
        pool = ConnectionPool(url, tmp_path / "logs", spool_dir=tmp_path / "spool")
        await pool.start()
        assert time.monotonic() - t0 < 10
        mock = MockConnector("binance", "spot")
        s = Recorder("s", [mock], pool=pool)
        await s.start()
        for i in range(10):
            await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=str(i))
        await until(lambda: pool.trade_sync.stats()["spooled"] == 10)
        proxy.restore()
        await until(lambda: len(s.trades) == 10, 30)
        await pool.flush(10)
        assert sorted(t.trade_id for t in await pool.store.fetch_trades()) == sorted(str(i) for i in range(10))
        assert Counter(t.trade_id for t in s.trades) == Counter(str(i) for i in range(10))
        await s.stop()
        await pool.stop()
    finally:
        await proxy.stop()
        import psycopg

        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_a_clean_stop_before_catching_up_keeps_the_fills_of_an_unclean_end_marked(tmp_path, monkeypatch):
    """After a kill, the fills a strategy may have seen come marked redelivered; if it is stopped
    cleanly (no hook running) before it got through them, they must still come marked after."""
    import framework.pool

    monkeypatch.setattr(framework.pool, "CATCH_UP_PAGE", 2)
    url = f"sqlite:///{tmp_path / 'u.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as pool:
        for i in range(6):
            pool.trade_sync.accept(fill(str(i), coid=f"s-{i}"))
        await pool.flush(5)
        await pool.store.set_delivery("s", 0, True, "s")  # what a process killed at position 0 leaves
        read = pool.store.trades_after
        calls = []

        async def slow_read(*args):
            calls.append(args)
            if len(calls) > 1:
                await asyncio.sleep(0.5)  # the store is slow: the stop below comes mid catch-up
            return await read(*args)

        pool.store.trades_after = slow_read
        s = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        await until(lambda: len(s.trades) >= 2)
        await s.stop(timeout=0.1)  # clean: no hook is running; most of the marked range is still ahead
        assert s.busy_in is None
        pool.store.trades_after = read
        seen = [(t.trade_id, t.redelivered) for t in s.trades]
        s2 = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s2.start()
        await pool.flush(5)
        rest = [(t.trade_id, t.redelivered) for t in s2.trades]
        assert seen + rest == [(str(i), True) for i in range(6)]
        await s2.stop()


async def test_a_stop_in_the_middle_of_a_catch_up_leaves_the_rest_for_the_next_start(tmp_path, monkeypatch):
    import framework.pool

    monkeypatch.setattr(framework.pool, "CATCH_UP_PAGE", 2)

    class Slow(Recorder):
        async def on_trade(self, trade):
            await asyncio.sleep(0.1)
            self.trades.append(trade)

    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as pool:
        s = Slow("s", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        await s.stop()  # s is known: what is stored from now on is its own
        for i in range(8):
            pool.trade_sync.accept(fill(str(i), coid=f"s-{i}"))
        await pool.flush(5)
        s = Slow("s", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        await until(lambda: len(s.trades) >= 1)
        await s.stop()  # mid catch-up: the pages not read yet are not skipped
        first = [t.trade_id for t in s.trades]
        s2 = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s2.start()
        await pool.flush(5)
        assert first + [t.trade_id for t in s2.trades] == [str(i) for i in range(8)]
        await s2.stop()


async def mock_more(strategy, pool) -> None:
    """A later fill still reaches it: the skip of what it saw covers just those fills."""
    await strategy.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", "100", trade_id="y",
                                                     client_order_id="s-y")
    await pool.flush(5)
    assert [(t.trade_id, t.redelivered) for t in strategy.trades] == [("y", False)]


async def test_a_fill_seen_from_the_spool_then_stored_after_a_clean_stop_does_not_come_again(tmp_path):
    """During an outage a strategy gets a fill from the spool; it stops cleanly before the stored copy
    (and its seq) exists; the database comes back and stores it. At the next start that fill must not
    come again (and were it kept nowhere, only marked redelivered)."""

    from framework.store import open_store

    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    store = FlakyStore(open_store(url))
    async with ConnectionPool(store=store, log_dir=tmp_path / "logs", spool_dir=tmp_path / "spool") as pool:
        mock = MockConnector("binance", "spot")
        s = Recorder("s", [mock], pool=pool)
        await s.start()
        store.down = True
        await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id="x", client_order_id="s-x")
        await until(lambda: [t.trade_id for t in s.trades] == ["x"])  # from the spool
        await s.stop()
        store.down = False
        await pool.flush(10)  # stored now, after s stopped
    async with ConnectionPool(url, tmp_path / "logs", spool_dir=tmp_path / "spool") as pool:
        s2 = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s2.start()
        await pool.flush(5)
        assert s2.trades == []
        await mock_more(s2, pool)
        await s2.stop()


async def test_what_a_strategy_saw_from_the_spool_survives_a_kill_of_the_next_start_while_the_store_is_down(tmp_path):
    """A clean stop keeps the fills a strategy saw from the spool beside it. The next start reads them, but with
    the store down it cannot write that it is running (unclean from here on); killed then, the start after must
    still skip those fills, not deliver them again unmarked (process chaos, bybit_future seed 190828143)."""

    from framework.store import open_store

    class DownAtStart(FlakyStore):
        async def start(self):
            if self.down:
                raise StoreError("database unreachable")
            await self.inner.start()

    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    store = FlakyStore(open_store(url))
    async with ConnectionPool(store=store, log_dir=tmp_path / "logs", spool_dir=tmp_path / "spool") as pool:
        s = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        store.down = True
        await s.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", "100", trade_id="x",
                                                  client_order_id="s-x")
        await until(lambda: [t.trade_id for t in s.trades] == ["x"])  # from the spool
        await s.stop()  # clean: "x" is kept beside the spool
        store.down = False
        await pool.flush(10)

    down = DownAtStart(open_store(url), down=True)
    killed = ConnectionPool(store=down, log_dir=tmp_path / "logs", spool_dir=tmp_path / "spool")
    await killed.start()  # the store is unreachable: it runs on the spool
    s_killed = Recorder("s", [MockConnector("binance", "spot")], pool=killed)
    await s_killed.start()
    await asyncio.sleep(0.1)
    # kill -9: nothing more is written; every task just ends
    for task in [s_killed._task, killed.trade_sync._task, *killed.pipeline._tasks, *killed._tasks]:
        if task is not None:
            task.cancel()
    await asyncio.sleep(0.05)
    killed.sync_log.close()

    async with ConnectionPool(url, tmp_path / "logs", spool_dir=tmp_path / "spool") as pool:
        s3 = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s3.start()
        await pool.flush(5)
        assert [(t.trade_id, t.redelivered) for t in s3.trades] in ([], [("x", True)])
        await mock_more(s3, pool)
        await s3.stop()
