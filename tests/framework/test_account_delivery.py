"""Balances and positions through the pipeline (issue 10): validated (an insane one is a dead letter), stored
(latest state and history), handed to the strategies on the key (positions: those whose symbols take it) through
on_balance / on_position, with `self.balances` / `self.positions` always the newest state."""

import asyncio
from decimal import Decimal

import pytest

from exchanges.mock import MockConnector
from framework.account import BalanceUpdate, PositionUpdate
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

T = 1_764_000_000_000


class Account(BaseStrategy):
    def on_start(self):
        self.seen = []

    def on_balance(self, balance):
        self.seen.append(("balance", balance.asset, balance.total))

    def on_position(self, position):
        self.seen.append(("position", position.symbol, position.signed_size))


def balance(asset, total, t, **kw):
    return BalanceUpdate(exchange="bybit", market="future", asset=asset, free=total, locked="0", total=total,
                         timestamp=t, **kw)


def position(symbol, size, t, direction="long"):
    return PositionUpdate(exchange="bybit", market="future", symbol=symbol, symbol_raw=symbol.split(":")[0].replace(
        "/", ""), direction=direction, size=size, entry_price="100", timestamp=t)


async def test_states_reach_the_hooks_views_and_store(tmp_path):
    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        connector = MockConnector("bybit", "future")
        everything = Account("all", [connector], pool=pool)
        eth_only = Account("eth", [connector], symbols=["ETH/USDT:USDT"], pool=pool)
        await everything.start()
        await eth_only.start()
        connection = connector._connection()
        connection.emit([balance("USDT", "1000.5", T + 10, source="rest"), position("BTC/USDT:USDT", "0.5", T + 10),
                         position("ETH/USDT:USDT", "2", T + 10, direction="short")])
        connection.emit([balance("USDT", "999", T + 5)])  # older than the snapshot: history only, no hook
        connection.emit([balance("USDT", "998.75", T + 20)])
        await pool.flush(5)
        assert everything.seen == [("balance", "USDT", Decimal("1000.5")),
                                   ("position", "BTC/USDT:USDT", Decimal("0.5")),
                                   ("position", "ETH/USDT:USDT", Decimal("-2")), ("balance", "USDT", Decimal("998.75"))]
        assert everything.stale_account_updates == 1
        assert [s for s in eth_only.seen if s[0] == "position"] == [("position", "ETH/USDT:USDT", Decimal("-2"))]
        assert everything.balances["USDT"].total == Decimal("998.75")
        assert everything.positions["BTC/USDT:USDT"].size == Decimal("0.5")
        assert everything.positions["bybit_future", "ETH/USDT:USDT"].signed_size == Decimal("-2")
        (stored,) = await pool.store.fetch_balances()
        assert stored.total == Decimal("998.75")
        assert {p.symbol: p.signed_size for p in await pool.store.fetch_positions()} == {
            "BTC/USDT:USDT": Decimal("0.5"), "ETH/USDT:USDT": Decimal("-2")}
        history, _ = await pool.store.account_history()
        assert [b.total for b in history] == [Decimal("1000.5"), Decimal("999"), Decimal("998.75")]


async def test_an_insane_state_is_a_dead_letter(tmp_path):
    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        connector = MockConnector("binance", "spot")
        s = Account("s", [connector], pool=pool)
        await s.start()
        connector._connection().emit([BalanceUpdate(exchange="binance", market="spot", asset="BTC", free="-1",
                                                    locked="0", total="-1", timestamp=T)])
        await pool.flush(5)
        assert s.seen == [] and "BTC" not in s.balances
        (letter,) = await pool.store.fetch_dead_letters()
        assert "spot free -1 is negative" in letter["error"]


def test_a_view_asks_to_name_an_asset_held_on_two_keys():
    s = Account("s")
    s.balances._take(balance("USDT", "1", T))
    s.balances._take(BalanceUpdate(exchange="binance", market="spot", asset="USDT", free="2", locked="0", total="2",
                                   timestamp=T))
    with pytest.raises(KeyError, match="USDT is in several balances"):
        s.balances["USDT"]
    assert s.balances["binance_spot", "USDT"].total == Decimal("2") and list(s.balances) == ["USDT"]
