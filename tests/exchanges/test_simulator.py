"""The simulator's own machinery (not a venue's protocol): raw frame injection, ids across runs."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from exchanges.simulator import Simulator
from exchanges.simulator.ledger import ClockIds
from framework.errors import ConfigError
from framework.pool import ConnectionPool
from framework.retry import rest_call_policy
from framework.strategy import BaseStrategy

ROOT = Path(__file__).resolve().parents[2]


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


async def _until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_inject_raw_sends_text_and_bytes_as_is_to_every_live_socket():
    async with asyncio.timeout(20), Simulator(exchanges=["hyperliquid"]) as sim:
        url = sim.endpoints("hyperliquid", "future").ws + "/ws"
        async with aiohttp.ClientSession() as http:
            first, second = await http.ws_connect(url), await http.ws_connect(url)
            await _until(lambda: len(sim.sessions("hyperliquid", "future")) == 2)
            truncated = '{"channel":"userFills","data":{"user":"0x12'
            assert await sim.inject_raw("hyperliquid", "future", truncated) == 2
            assert await sim.inject_raw("hyperliquid", "future", b"\x00\xffnot json") == 2
            for ws in (first, second):
                text = await ws.receive(timeout=5)
                assert (text.type, text.data) == (aiohttp.WSMsgType.TEXT, truncated)
                binary = await ws.receive(timeout=5)
                assert (binary.type, binary.data) == (aiohttp.WSMsgType.BINARY, b"\x00\xffnot json")
            await first.close()
            await _until(lambda: len(sim.sessions("hyperliquid", "future")) == 1)
            assert await sim.inject_raw("hyperliquid", "future", "{}") == 1
            assert (await second.receive(timeout=5)).data == "{}"
            await second.close()


async def test_two_simulator_runs_on_one_store_keep_every_fill_of_both(tmp_path):
    url = f"sqlite:///{tmp_path / 't.sqlite'}"
    ledgers = []
    async with asyncio.timeout(40):
        for run in range(2):
            async with Simulator(exchanges=["binance"], seed=7) as sim:  # the same seed: ids must still differ
                async with ConnectionPool(url, tmp_path / "logs") as pool:
                    strategy = Recorder(f"run{run}", [sim.connector("binance", "spot")], pool=pool)
                    await strategy.start()
                    for n in range(3):
                        await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.010", "65000", parts=2)
                    await _until(lambda: len(strategy.trades) == 6)
                    await pool.flush(5)
                    ledgers.append(list(sim.ledger("binance", "spot").fills))
                    stored = await pool.store.fetch_trades()
                    await strategy.stop()
    first, second = ({f.trade_id for f in fills} for fills in ledgers)
    assert len(first) == len(second) == 6 and not first & second
    assert sorted(t.trade_id for t in stored) == sorted(first | second)
    assert all(int(a.trade_id) < int(b.trade_id) for a, b in zip(ledgers[1], ledgers[1][1:]))  # run order kept


def test_a_later_process_starts_above_every_id_an_earlier_one_gave():
    now = [1_700_000_000_000 * 1_000_000]  # ns
    earlier = ClockIds(clock=lambda: now[0])
    burst = [next(earlier) for _ in range(2500)]  # 2.5 ids per µs: runs ahead of the clock, still increasing
    assert burst == list(range(burst[0], burst[0] + 2500)) and burst[0] == 1_700_000_000_000_000
    now[0] += 3_000_000  # 3 ms later a new process (a new instance) starts
    later = ClockIds(clock=lambda: now[0])
    assert next(later) > burst[-1]
    assert len(str(next(later))) == 16  # a numeric id the venues' JSON integers carry exactly


def test_run_strategy_twice_on_one_sqlite_file_stores_the_fills_of_both_runs(tmp_path):
    db = tmp_path / "trades.sqlite"
    counts = []
    for seed in ("7", "7"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "run_strategy.py"), "--duration", "2", "--seed", seed,
             "--db", str(db), "--log-dir", str(tmp_path / "logs")],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(db) as conn:
            counts.append(conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0])
        stored = int(re.search(r"fills stored: (\d+), duplicates skipped: (\d+)", result.stdout)[1])
        assert stored > 5, result.stdout
    assert counts[1] > counts[0] > 5  # the second run added its own fills, none taken for duplicates


async def test_connector_backfill_options_reach_the_backfiller_it_creates(pool):
    async with asyncio.timeout(10), Simulator(exchanges=["bybit"]) as sim:
        fast = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01)
        connection = sim.connector("bybit", "future", backfill_overlap_ms=1000,
                                   backfill_retry_policy=fast).create_connection(pool)
        assert connection.backfiller.overlap_ms == 1000 and connection.backfiller.retry_policy is fast
        default = sim.connector("bybit", "future").create_connection(pool)
        assert default.backfiller.overlap_ms == 60_000
        with pytest.raises(ConfigError, match="backfill_overlap_ms"):
            sim.connector("bybit", "future", backfill_overlap_ms=-1)
