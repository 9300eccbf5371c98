"""Frames that could not be normalized are kept, and stored once normalize is fixed."""

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

import importlib
from exchanges.mock import MockConnector
from framework.dead_letters import replay
from framework.events import OrderStatus, Trade
from framework.pool import ConnectionPool
from framework.spool import encode

ROOT = Path(__file__).resolve().parents[2]

FILL = {"subscriptionId": 0, "event": {
    "e": "executionReport", "E": 1611063861489, "s": "BNBUSDT", "c": "m4M6AD5MF3b1ERe65l4SPq", "S": "BUY",
    "o": "LIMIT", "f": "GTC", "q": "2.00000000", "p": "46.90000000", "P": "0", "F": "0", "g": -1, "C": "",
    "x": "TRADE", "X": "PENDING_CANCEL", "r": "NONE", "i": 1296882607, "l": "0.33200000", "z": "0.33200000",
    "L": "46.86600000", "n": "0.00033200", "N": "BNB", "T": 1611063861488, "t": 109747654, "I": 1, "w": False,
    "m": False, "M": True, "O": 1611063861488, "Z": "15.55951200", "Y": "15.55951200", "Q": "0"}}


async def test_dead_letters_are_replayed_after_a_fix(tmp_path, monkeypatch):
    import json

    url = f"sqlite:///{tmp_path / 'dl.sqlite'}"
    async with ConnectionPool(url, tmp_path / "logs") as pool:
        await pool.subscribe_strategy("s", [MockConnector("binance", "spot")])
        connector = MockConnector("binance", "spot")
        connector.bind_pool(pool)
        await connector.push_raw(json.dumps(FILL))  # a status this version does not know yet
        await connector.push_raw('{"subscriptionId": 0, "event": {"e": "executionReport", "s": 5}}')
        await pool.flush(5)
        assert await pool.store.fetch_trades() == []
        letters = await pool.store.fetch_dead_letters()
        assert len(letters) == 2 and "PENDING_CANCEL" in letters[0]["error"]

        # The fix: PENDING_CANCEL is a live order.
        binance_normalize = importlib.import_module("exchanges.binance.normalize")
        monkeypatch.setitem(binance_normalize._STATUSES, "PENDING_CANCEL", OrderStatus.NEW)
        counts = await replay(pool.store)
        assert counts["replayed"] == 1 and counts["still_failing"] == 1 and counts["fills_new"] == 1
        (trade,) = await pool.store.fetch_trades()
        assert trade.trade_id == "109747654" and str(trade.amount) == "0.33200000"
        assert str(trade.price) == "46.86600000" and trade.symbol == "BNB/USDT"
        (order,) = await pool.store.fetch_orders()
        assert order.order_id == "1296882607"
        assert (await replay(pool.store))["letters"] == 1  # the replayed one is done; the broken one stays
        pending = await pool.store.fetch_dead_letters(pending_only=True)
        assert len(pending) == 1 and pending[0]["replay_result"].startswith("still failing")


def test_replay_script_reports_what_it_stored(tmp_path):
    async def make():
        async with ConnectionPool(f"sqlite:///{tmp_path / 'x.sqlite'}", tmp_path / "logs") as pool:
            await pool.subscribe_strategy("s", [MockConnector("paperx", "spot")])
            connector = MockConnector("paperx", "spot")
            connector.bind_pool(pool)
            await connector.push_raw('{"type": "trade", "symbol": "BTCUSDT"}')
            await pool.flush(5)

    asyncio.run(make())
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "replay_dead_letters.py"), "--db",
                             str(tmp_path / "x.sqlite")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr  # a letter still failing
    assert "dead letters replayed: 0 of 1; still failing: 1" in result.stdout


async def test_replay_leaves_a_consumers_letters_to_it_and_counts_them(store):
    missed = Trade(exchange="binance", market="spot", symbol="BNB/USDT", symbol_raw="BNBUSDT", trade_id="9",
                   order_id="1", side="buy", amount="0.332", price="46.866", cost="15.559512", timestamp=1)
    async with asyncio.timeout(30):
        await store.add_dead_letter("binance_spot", encode("trade", missed), "breaker open", 1, "risk")
        await store.add_dead_letter("binance_spot", encode("trade", missed), "refused by the store", 2)
        left: Counter[str] = Counter()
        counts = await replay(store, consumer_letters=left)
        assert (counts["letters"], counts["replayed"], counts["fills_new"]) == (1, 1, 1)
        assert left == {"risk": 1}
        (trade,) = await store.fetch_trades()
        assert trade.trade_id == "9" and str(trade.price) == "46.866"
        (letter,) = await store.fetch_dead_letters(pending_only=True)
        assert letter["consumer"] == "risk" and letter["replay_result"] is None
