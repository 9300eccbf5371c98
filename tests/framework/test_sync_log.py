import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import framework.sync_log as sync_log
from exchanges.mock import MockConnector
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy
from framework.sync_log import TradeSyncLogger, mask, register_secret
from framework.report import read_log, summarize

ROOT = Path(__file__).resolve().parents[2]


class Quiet(BaseStrategy):
    pass


async def test_log_file_name_and_content(tmp_path):
    async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Quiet("quiet", [MockConnector("paperx", "spot")], pool=pool)
        await s.start()
        c = s.exchange_connectors[0]
        await c.push_trade("BTC/USDT", "buy", "1", "2", trade_id="t1", order_id="o1")
        await c.push_trade("BTC/USDT", "buy", "1", "2", trade_id="t1", order_id="o1")
        await c.push_trade("ETH/USDT", "sell", "3", "4", trade_id="t2", order_id="o2")
        await c.push_raw('{"type": "trade", "symbol": "BTCUSDT"}')
        await pool.flush(5)
        await s.stop()
    files = list((tmp_path / "logs" / "trade_sync").iterdir())
    assert len(files) == 1
    assert re.fullmatch(r"trade_sync_\d{8}_\d{6}\.log", files[0].name)
    assert files[0] == pool.sync_log.path
    text = files[0].read_text()
    assert "connection event | key=paperx_spot status=connected" in text
    assert "trade fetch start | exchange=paperx symbol=* source=websocket" in text
    summary = summarize(read_log(files[0]))
    assert summary["fills"] == {
        ("paperx", "spot", "BTC/USDT", "mock"): [1, 1],
        ("paperx", "spot", "ETH/USDT", "mock"): [1, 0],
    }
    assert summary["connections"]["paperx_spot"] == {"connecting": 1, "connected": 1, "closed": 1}
    (problem,) = summary["problems"]
    assert "dead letter" in problem and "paperx_spot" in problem
    assert "duplicate_ids=t1" in text


async def test_no_secret_in_the_log(tmp_path, monkeypatch):
    secret = "s3cr3t-ABCDEFGHIJKLMNOP-never-log-me"
    api_key = "key-0123456789-abcdef"
    register_secret(secret)
    register_secret(api_key)
    log = TradeSyncLogger(tmp_path)
    log.open()
    log.error("login refused", detail=f"signature over {secret} with {api_key}")
    log.event(f"odd message with {secret}")
    log.close()
    text = log.path.read_text()
    assert secret not in text and api_key not in text
    assert mask(secret) in text and text.count("mnop-never-log-me") == 0
    assert mask(api_key).endswith("cdef")


def test_mask_keeps_only_the_last_four():
    assert mask("abcdefgh") == "****efgh"
    assert mask("abc") == "****"
    assert mask(None) == ""


class Crashing(BaseStrategy):
    def on_trade(self, trade):
        raise RuntimeError("boom in on_trade")


async def test_a_strategy_failure_is_logged_at_error(tmp_path):
    async with asyncio.timeout(30):
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            s = Crashing("crashy", [MockConnector("paperx", "spot")], pool=pool)
            await s.start()
            await s.exchange_connectors[0].push_trade("BTC/USDT", "buy", "1", "2", trade_id="t1", order_id="o1")
            await pool.flush(5)
            await s.stop()
    (failed,) = [line for line in pool.sync_log.path.read_text().splitlines() if "status=failed" in line]
    assert " | ERROR   | strategy event | strategy=crashy status=failed hook=on_trade" in failed
    assert "boom in on_trade" in failed


_SAME_SECOND = """
import sys, time
import framework.sync_log as sync_log
sync_log._PROCESS_STARTED = "20250102_030405"  # both processes believe they started in the same second
log = sync_log.TradeSyncLogger(sys.argv[1])
while time.time() < float(sys.argv[2]):  # open at the same moment as the other process
    pass
log.open()
log.event("hello", who=sys.argv[3])
log.close()
print(log.path)
"""


def test_two_processes_started_in_the_same_second_write_two_logs(tmp_path):
    go = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", _SAME_SECOND, str(tmp_path), str(go), who], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for who in ("first", "second")]
    paths = [Path(p.communicate(timeout=30)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    names = sorted(p.name for p in (tmp_path / "trade_sync").iterdir())
    assert names == ["trade_sync_20250102_030405.log", "trade_sync_20250102_030405_2.log"]
    assert sorted(p.name for p in paths) == names
    for path, who in zip(paths, ("first", "second")):
        text = path.read_text()
        assert f"who={who}" in text and text.count("hello") == 1  # each process alone in its file


def test_a_name_taken_by_another_process_gets_the_next_suffix(tmp_path):
    taken = tmp_path / "trade_sync" / f"trade_sync_{sync_log._PROCESS_STARTED}.log"
    taken.parent.mkdir()
    taken.write_text("another process's line\n")
    log = TradeSyncLogger(tmp_path)
    log.open()
    log.event("mine")
    log.close()
    assert log.path.name == f"trade_sync_{sync_log._PROCESS_STARTED}_2.log"
    assert taken.read_text() == "another process's line\n" and "mine" in log.path.read_text()
