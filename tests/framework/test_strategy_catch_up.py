"""A strategy's catch-up from the store and the fills it already saw from the spool: its durable position never
passes a fill its hook has not run yet, so a kill at any moment loses nothing (process chaos, hyperliquid_future
seed 629201525: 21 fills of the blocking strategy never delivered)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from exchanges.mock import MockConnector
from framework.pool import ConnectionPool
from framework.store import open_store
from framework.strategy import BaseStrategy
from tests.framework.flaky_store import FlakyStore

pytestmark = pytest.mark.timeout(30)


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append((trade.trade_id, trade.redelivered))


async def until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def kill(pool: ConnectionPool, *strategies: BaseStrategy) -> None:
    """kill -9: nothing more is written; every task just ends (a worker thread stuck in a hook is left behind)."""
    for task in [*(s._task for s in strategies), pool.trade_sync._task, *pool.pipeline._tasks, *pool._tasks]:
        if task is not None:
            task.cancel()


async def test_a_kill_while_a_blocking_hook_catches_up_before_a_fill_seen_from_the_spool_loses_nothing(
        tmp_path, monkeypatch):
    """Fills a1..a5 wait in the store for a stopped strategy; after them comes the stored copy of fill x, which the
    strategy already saw from the spool (kept beside it at a clean stop). Its next start reads them back in one page:
    x is skipped, but the position must not jump to x while a1..a5 are still ahead of a blocking hook — killed
    then, the start after would begin past them and they would never come."""
    import framework.pool

    monkeypatch.setattr(framework.pool, "POSITION_EVERY", 0.05)
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    spool, logs = tmp_path / "spool", tmp_path / "logs"
    store = FlakyStore(open_store(url))
    async with ConnectionPool(store=store, log_dir=logs, spool_dir=spool) as pool:
        mock = MockConnector("binance", "spot")
        other = Recorder("other", [mock], pool=pool)  # keeps the key's connection open while "s" is stopped
        await other.start()
        s = Recorder("s", [mock], pool=pool)
        await s.start()
        await s.stop()  # "s" is known: its fills wait for it
        store.down = True
        for i in range(1, 6):  # spooled while "s" is stopped: it never sees them
            await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=f"a{i}", client_order_id=f"s-a{i}")
        await until(lambda: pool.trade_sync.spooled >= 5)
        s = Recorder("s", [mock], pool=pool)
        await s.start()
        await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id="x", client_order_id="s-x")
        await until(lambda: s.trades == [("x", False)])  # from the spool: no seq yet
        await s.stop()  # clean: "x" is kept beside the spool
        store.down = False
        await pool.flush(10)  # stored now: a1..a5, then x
        await other.stop()
        assert other.trades == []

    release = threading.Event()

    class Blocking(Recorder):
        def on_trade(self, trade):
            super().on_trade(trade)
            if trade.trade_id == "a2":
                release.wait(10)  # a sync hook busy for a while: the kill comes meanwhile

    killed = ConnectionPool(url, logs, spool_dir=spool)
    await killed.start()
    blocking = Blocking("s", [MockConnector("binance", "spot")], pool=killed)
    try:
        await blocking.start()
        await until(lambda: [t for t, _ in blocking.trades] == ["a1", "a2"])
        await asyncio.sleep(0.3)  # the delivery position is written every 0.05 s meanwhile
        kill(killed, blocking)
        seen = [t for t, _ in blocking.trades]  # the process dies here: its hook runs no further
        await asyncio.sleep(0.05)
    finally:
        release.set()
        killed.sync_log.close()

    async with ConnectionPool(url, logs, spool_dir=spool) as pool:
        s3 = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s3.start()
        await pool.flush(5)
        await s3.stop()
    assert seen == ["a1", "a2"]
    assert {"a3", "a4", "a5"} <= {t for t, _ in s3.trades}, f"never delivered after the kill: {s3.trades}"
    assert all(redelivered for _, redelivered in s3.trades)  # after a kill: marked


async def push(mock: MockConnector, trade_id: str) -> None:
    await mock.push_trade("BTC/USDT", "buy", "1", "100", trade_id=trade_id, client_order_id=f"s-{trade_id}")


async def stopped_with_fills(pool: ConnectionPool, mock: MockConnector, count: int) -> list[str]:
    """"s" known and stopped, `count` of its fills stored meanwhile; another strategy keeps the key's socket open."""
    other = Recorder("other", [mock], pool=pool)
    await other.start()
    s = Recorder("s", [mock], pool=pool)
    await s.start()
    await s.stop()
    ids = [f"f{i}" for i in range(count)]
    for trade_id in ids:
        await push(mock, trade_id)
    await pool.flush(5)
    return ids


async def test_a_catch_up_cut_short_by_the_store_leaves_no_gap_before_the_live_fills_queued_meanwhile(
        tmp_path, monkeypatch):
    """The catch-up reads a page, a live fill is stored and queued behind it, then the store fails before the next
    page: the live fill must not be handed over before the pages not read yet (its seq would pass them)."""
    import framework.pool
    from framework.errors import StoreError

    monkeypatch.setattr(framework.pool, "CATCH_UP_PAGE", 2)
    async with ConnectionPool(f"sqlite:///{tmp_path / 'g.sqlite'}", tmp_path / "logs") as pool:
        mock = MockConnector("binance", "spot")
        ids = await stopped_with_fills(pool, mock, 6)
        read, calls = pool.store.trades_after, []

        async def read_then_fail(*args):
            calls.append(args)
            if len(calls) == 2:  # between the first and second page
                await push(mock, "live")
                await pool.trade_sync.wait_stored(5)  # stored, and queued for "s"
                raise StoreError("database unreachable")
            return await read(*args)

        pool.store.trades_after = read_then_fail
        s = Recorder("s", [mock], pool=pool)
        await s.start()
        await until(lambda: "live" in [t for t, _ in s.trades])
        await pool.flush(5)
        assert [t for t, _ in s.trades] == [*ids, "live"]
        await s.stop()


async def test_a_stop_mid_catch_up_with_live_fills_queued_leaves_the_pages_not_read_for_the_next_start(
        tmp_path, monkeypatch):
    import framework.pool

    monkeypatch.setattr(framework.pool, "CATCH_UP_PAGE", 2)
    async with ConnectionPool(f"sqlite:///{tmp_path / 's.sqlite'}", tmp_path / "logs") as pool:
        mock = MockConnector("binance", "spot")
        ids = await stopped_with_fills(pool, mock, 6)
        read, calls, stopping = pool.store.trades_after, [], []

        async def read_then_stop(*args):
            calls.append(args)
            if len(calls) == 2:  # between the first and second page: a live fill queued, then a clean stop
                await push(mock, "live")
                await pool.trade_sync.wait_stored(5)
                stopping.append(asyncio.create_task(s.stop()))
                await asyncio.sleep(0.05)
            return await read(*args)

        pool.store.trades_after = read_then_stop
        s = Recorder("s", [mock], pool=pool)
        await s.start()
        await until(lambda: bool(stopping))
        await stopping[0]
        pool.store.trades_after = read
        first = [t for t, _ in s.trades]
        s2 = Recorder("s", [mock], pool=pool)
        await s2.start()
        await pool.flush(5)
        assert first + [t for t, _ in s2.trades] == [*ids, "live"]
        assert not any(redelivered for _, redelivered in s.trades + s2.trades)  # a clean stop
        await s2.stop()


async def test_a_kill_after_a_catch_up_met_fills_whose_spooled_copies_were_still_queued_loses_none(
        tmp_path, monkeypatch):
    """Mid catch-up the store goes away: fills y and x reach the strategy from the spool (queued behind the page it
    is on), then are stored. The catch-up meets their stored copies before its hook saw the spooled ones: it must
    not pass over them (the position would then cover x while y's hook runs; killed then, x never comes)."""
    import framework.pool

    monkeypatch.setattr(framework.pool, "CATCH_UP_PAGE", 2)
    monkeypatch.setattr(framework.pool, "POSITION_EVERY", 0.05)
    url, logs, spool = f"sqlite:///{tmp_path / 'q.sqlite'}", tmp_path / "logs", tmp_path / "spool"
    store = FlakyStore(open_store(url))
    release = threading.Event()

    class BlockingOnY(Recorder):
        def on_trade(self, trade):
            super().on_trade(trade)
            if trade.trade_id == "y":
                release.wait(10)

    killed = ConnectionPool(store=store, log_dir=logs, spool_dir=spool)
    await killed.start()
    try:
        mock = MockConnector("binance", "spot")
        ids = await stopped_with_fills(killed, mock, 4)
        read, calls = store.trades_after, []

        async def outage_between_pages(*args):
            calls.append(args)
            if len(calls) == 2:
                store.down = True
                await push(mock, "y")
                await push(mock, "x")
                await until(lambda: killed.trade_sync.spooled >= 2)  # durable: handed to "s" from the spool
                store.down = False
                await until(lambda: killed.trade_sync.spooled == 0)  # stored now, after f0..f3
            return await read(*args)

        store.trades_after = outage_between_pages
        s = BlockingOnY("s", [mock], pool=killed)
        await s.start()
        await until(lambda: "y" in [t for t, _ in s.trades])
        await asyncio.sleep(0.3)  # the delivery position is written every 0.05 s meanwhile
        kill(killed, s)
        seen = [t for t, _ in s.trades]
        await asyncio.sleep(0.05)
    finally:
        release.set()
        killed.sync_log.close()
    assert seen == [*ids, "y"]

    async with ConnectionPool(url, logs, spool_dir=spool) as pool:
        s2 = Recorder("s", [MockConnector("binance", "spot")], pool=pool)
        await s2.start()
        await pool.flush(5)
        await s2.stop()
    assert "x" in [t for t, _ in s2.trades], f"x never delivered: {s2.trades}"
