"""Every Hyperliquid fill of the wallet is recorded in its true market, or kept as a dead letter: over a real socket."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from exchanges.simulator import Simulator
from framework.events import Market
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


def _fill(coin: str, tid: int, **fields) -> dict:
    return {"coin": coin, "px": "5912.5", "sz": "0.2", "side": "B", "time": 1_760_000_000_000, "startPosition": "0",
            "dir": "Open Long", "closedPnl": "0", "hash": "0x" + "cd" * 32, "oid": tid + 1000, "crossed": True,
            "fee": "0.53", "tid": tid, "feeToken": "USDC", **fields}


async def test_hip3_and_spot_fills_are_stored_in_their_market_and_an_unknown_spot_index_dead_lettered(tmp_path):
    async with asyncio.timeout(60), Simulator(exchanges=["hyperliquid"]) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            s = Recorder("s1", [sim.connector("hyperliquid", "future")], pool=pool)
            await s.start()
            wallet = sim.credentials_for("hyperliquid").wallet_address.lower()
            fills = [_fill("xyz:SP500", 71), _fill("PURR/USDC", 72, px="0.1875", sz="400", feeToken="PURR"),
                     _fill("@107", 73)]
            frame = {"channel": "userFills", "data": {"user": wallet, "fills": fills}}
            assert await sim.inject_raw("hyperliquid", "future", json.dumps(frame)) == 1
            async with asyncio.timeout(10):
                while not s.trades:  # the HIP-3 fill, on this socket's own key
                    await asyncio.sleep(0.01)
            await pool.flush(5)
            assert [t.trade_id for t in s.trades] == ["71"]

            stored = {t.trade_id: t for t in await pool.store.fetch_trades()}
            assert sorted(stored) == ["71", "72"]
            hip3, spot = stored["71"], stored["72"]
            assert (hip3.market, hip3.symbol, hip3.symbol_raw, hip3.cost) == (
                Market.FUTURE, "XYZ-SP500/USDC:USDC", "xyz:SP500", Decimal("1182.50"))
            assert (spot.market, spot.symbol, spot.amount, spot.fee_currency) == (
                Market.SPOT, "PURR/USDC", Decimal("400"), "PURR")
            (letter,) = await pool.store.fetch_dead_letters()
            assert "spot coin '@107' has no symbol offline" in letter["error"]
            assert [f["tid"] for f in json.loads(letter["raw"])["data"]["fills"]] == [73]
            status = pool.get_connection_status()["connections"]["hyperliquid_future"]
            assert status["reconnects"] == 0 and status["status"] == "connected"
