"""The audit finds what the store lacks or got wrong, against the venue's own history."""

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

from exchanges.simulator import Simulator
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

ROOT = Path(__file__).resolve().parents[2]


async def test_audit_reports_missing_and_mismatched_fills_and_exits_1(tmp_path):
    db = tmp_path / "audit.sqlite"
    async with Simulator(exchanges=["binance"]) as sim:
        async with ConnectionPool(f"sqlite:///{db}", tmp_path / "logs") as pool:
            strategy = BaseStrategy("a", [sim.connector("binance", "spot")], symbols=["BTC/USDT"], pool=pool)
            await strategy.start()
            fills = []
            for i in range(5):
                fills += (await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.01", f"100.{i}"))[1]
            async with asyncio.timeout(10):
                while pool.trade_sync.stored < 5:
                    await asyncio.sleep(0.02)
            await pool.flush(5)
            await strategy.stop()

        creds = sim.credentials_for("binance")
        env = {**os.environ, "BINANCE_API_KEY": creds.api_key, "BINANCE_API_SECRET": creds.secret}
        cmd = [sys.executable, str(ROOT / "scripts" / "audit_trades.py"), "--exchange", "binance", "--market", "spot",
               "--since", "1h", "--db", str(db), "--rest-url", sim.endpoints("binance", "spot").rest]

        async def audit() -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, out.decode() + err.decode()

        code, out = await audit()
        assert code == 0, out
        assert "venue fills: 5, stored fills: 5" in out and "missing: 0, duplicated: 0, mismatched: 0" in out

        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM trades WHERE trade_id = ?", (fills[1].trade_id,))
            conn.execute("UPDATE trades SET price = '999' WHERE trade_id = ?", (fills[3].trade_id,))
        code, out = await audit()
        assert code == 1
        assert "missing: 1, duplicated: 0, mismatched: 1" in out
        assert f"missing BTC/USDT trade {fills[1].trade_id}" in out
        assert f"mismatched trade {fills[3].trade_id}: price: venue 100.3 / store 999" in out
