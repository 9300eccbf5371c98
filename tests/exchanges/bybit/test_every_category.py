"""Every Bybit fill on the account is recorded in its true market, or kept as a dead letter: over a real socket."""

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


def _row(category: str, symbol: str, exec_id: str, **fields) -> dict:
    return {"category": category, "symbol": symbol, "execId": exec_id, "orderId": f"o-{exec_id}",
            "orderLinkId": "", "side": "Buy", "execType": "Trade", "execQty": "1000", "execPrice": "64000",
            "execValue": "0.015625", "execFee": "0.000008594", "isMaker": False, "execTime": "1746270400353",
            **fields}


async def test_inverse_fills_are_recorded_and_option_fills_dead_lettered_on_the_future_socket(tmp_path):
    frame = {"topic": "execution", "id": "386825804_BTCUSD_1", "creationTime": 1746270400355, "data": [
        _row("inverse", "BTCUSD", "inv-perp"),
        _row("inverse", "BTCUSDM25", "inv-dated", execQty="500", execValue="0.0078125"),
        _row("option", "BTC-27JUN25-70000-C", "opt-1", execQty="0.1", execPrice="1500", execValue="150"),
        _row("spot", "BTCUSDT", "spot-1", execType="", execFee="", execQty="0.01", execValue=""),  # the spot socket's
    ]}
    async with asyncio.timeout(60), Simulator(exchanges=["bybit"]) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            s = Recorder("s1", [sim.connector("bybit", "future")], pool=pool)
            await s.start()
            assert await sim.inject_raw("bybit", "future", json.dumps(frame)) == 1
            async with asyncio.timeout(10):
                while len(s.trades) < 2:
                    await asyncio.sleep(0.01)
            await pool.flush(5)

            stored = {t.trade_id: t for t in await pool.store.fetch_trades()}
            assert sorted(stored) == ["inv-dated", "inv-perp"]
            perp, dated = stored["inv-perp"], stored["inv-dated"]
            assert (perp.market, perp.symbol, perp.amount, perp.cost, perp.fee_currency) == (
                Market.FUTURE, "BTC/USD:BTC", Decimal("1000"), Decimal("0.015625"), "BTC")
            assert (dated.symbol, dated.symbol_raw, dated.amount) == ("BTC/USD:BTC-250627", "BTCUSDM25", Decimal("500"))
            (letter,) = await pool.store.fetch_dead_letters()
            assert "'option' fills are not recorded" in letter["error"]
            assert [row["execId"] for row in json.loads(letter["raw"])["data"]] == ["opt-1"]
            status = pool.get_connection_status()["connections"]["bybit_future"]
            assert status["reconnects"] == 0 and status["status"] == "connected"
