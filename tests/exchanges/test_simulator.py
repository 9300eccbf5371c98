"""The simulator's own machinery (not a venue's protocol): raw frame injection, ids across runs."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from exchanges.connector import Credentials, ExchangeConnector
from exchanges.simulator import Simulator
from framework.venue import Endpoints
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
             "--strategy", "position_tracker",  # fills from the simulator's autopilot (10/s), not its own orders
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
        _, scheduler = pool.build_connection(sim.connector("bybit", "future", backfill_overlap_ms=1000,
                                                           backfill_retry_policy=fast))
        assert scheduler.backfiller.overlap_ms == 1000 and scheduler.backfiller.retry_policy is fast
        _, default = pool.build_connection(sim.connector("bybit", "future"))
        assert default.backfiller.overlap_ms == 60_000
        with pytest.raises(ConfigError, match="backfill_overlap_ms"):
            sim.connector("bybit", "future", backfill_overlap_ms=-1)


async def _wait_for_file(path, proc, timeout=20.0):
    async with asyncio.timeout(timeout):
        while not path.exists():
            assert proc.returncode is None, "the simulator exited before writing its state file"
            await asyncio.sleep(0.05)
    return json.loads(path.read_text())


async def test_standalone_simulator_is_driven_from_another_process_through_its_state_file(tmp_path):
    state_file = tmp_path / "sim.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exchanges.simulator", "--port", "0", "--state-file", str(state_file),
        "--exchange", "bybit", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            state = await _wait_for_file(state_file, proc)
            assert oct(state_file.stat().st_mode & 0o777) == "0o600" and state["pid"] == proc.pid
            entry = state["keys"]["bybit_future"]
            assert entry["ws"].startswith("ws://127.0.0.1:") and set(state["keys"]) == {"bybit_spot", "bybit_future"}
            control = state["control"]
            connector = ExchangeConnector(
                "bybit", "future", credentials=Credentials(**entry["credentials"]),
                endpoints=Endpoints(ws=entry["ws"], rest=entry["rest"]),
            )
            key = {"exchange": "bybit", "market": "future"}
            async with aiohttp.ClientSession() as http, \
                    ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
                strategy = Recorder("remote", [connector], pool=pool)
                await strategy.start()

                async def call(path, **body):
                    if path in ("ledger", "sessions"):
                        async with http.get(f"{control}/{path}", params=key) as resp:
                            return resp.status, await resp.json()
                    async with http.post(f"{control}/{path}", json={**key, **body}) as resp:
                        return resp.status, await resp.json()

                status, made = await call("fill", symbol="BTC/USDT:USDT", side="sell", amount="0.030",
                                          price="65000.5", client_order_id="remote-1", parts=3)
                assert status == 200 and [f["amount"] for f in made["fills"]] == ["0.010", "0.010", "0.010"]
                await _until(lambda: len(strategy.trades) == 3)
                assert {t.trade_id for t in strategy.trades} == {f["trade_id"] for f in made["fills"]}

                status, ledger = await call("ledger")
                assert ledger["fills"] == made["fills"] and ledger["fills"][0]["side"] == "sell"
                assert ledger["expected"][0]["amount"] == "0.010" and ledger["expected"][0]["price"] == "65000.5"
                assert (await call("sessions"))[1]["sessions"] == 1

                status, rendered = await call("render_fill", symbol="BTC/USDT:USDT", amount="-1", price="65000",
                                              time=2**63)
                assert status == 200 and rendered["frames"] and str(2**63) in rendered["frames"][0]["text"]
                assert rendered["fill"]["amount"] == "-1"
                assert rendered["fill"]["trade_id"] in rendered["frames"][0]["text"]
                assert (await call("ledger"))[1]["fills"] == made["fills"]  # a rendered fill is not a fill
                assert (await call("inject_raw", text='{"topic":"execution","data":[{'))[1] == {"sockets": 1}

                assert (await call("autopilot/start", symbol="BTC/USDT:USDT", rate=50,
                                   client_order_id_prefixes=["remote", None]))[0] == 200
                await _until(lambda: len(strategy.trades) >= 8)
                assert (await call("autopilot/stop"))[1] == {"stopped": 1}
                assert (await call("drop", mid_frame=True))[1] == {"sockets": 1}
                status, error = await call("fill", exchange="kraken", symbol="X/Y", side="buy", amount="1", price="1")
                assert status == 400 and "unknown exchange 'kraken'" in error["error"]
                await strategy.stop()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
