"""PositionTracker through the simulator: the same position in base coins gives the same PnL on every futures venue,
whether the venue counts coins (Binance, Bybit, Bitget, Hyperliquid) or contracts (Gate, MEXC)."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import pytest

from exchanges import get_exchange
from exchanges.simulator import Simulator
from exchanges.symbols import contract_size
from framework.backfill import Backfiller
from framework.events import ConnectionKey, Market, Source
from framework.pool import ConnectionPool
from strategies.position_tracker import PositionTracker

FUTURES = [
    ("binance", "BTC/USDT:USDT"),
    ("bybit", "BTC/USDT:USDT"),
    ("mexc", "BTC/USDT:USDT"),
    ("gate", "BTC/USDT:USDT"),
    ("bitget", "BTC/USDT:USDT"),
    ("hyperliquid", "BTC/USDC:USDC"),
]
# Long 0.03 at 60000.5 (three partial fills), sell 0.05 at 61000 (closes the long, opens a 0.02 short), buy 0.02 back
# at 59000.25: realized 0.03 × 999.5 + 0.02 × 1999.75 = 29.985 + 39.995.
ORDERS = [("buy", "0.03", "60000.5", 3), ("sell", "0.05", "61000", 1), ("buy", "0.02", "59000.25", 2)]
REALIZED = Decimal("69.98")


class Tracker(PositionTracker):
    def on_start(self) -> None:
        super().on_start()
        self.trades, self.updates = [], []

    def on_trade(self, trade) -> None:
        super().on_trade(trade)
        self.trades.append(trade)

    def on_order_update(self, update) -> None:
        super().on_order_update(update)
        self.updates.append(update)


@pytest.mark.parametrize("exchange, symbol", [pytest.param(*f, id=f[0]) for f in FUTURES])
async def test_same_base_position_gives_same_pnl_on_every_futures_venue(exchange, symbol, tmp_path):
    async with asyncio.timeout(60), Simulator(exchanges=[exchange]) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            tracker = Tracker("units", [sim.connector(exchange, "future")], pool=pool)
            await tracker.start()
            ledger_fills, orders = [], []
            for side, amount, price, parts in ORDERS:
                order, fills = await sim.fill(exchange, "future", symbol, side, amount, price, parts=parts)
                orders.append((order.order_id, Decimal(amount)))
                ledger_fills += fills
            while len(tracker.trades) < len(ledger_fills):
                await asyncio.sleep(0.01)
            await pool.flush(5)

            book = tracker.books[symbol]
            assert book.realized_pnl == REALIZED, tracker.summary()
            assert book.position == 0 and book.volume == Decimal("0.10") and book.fills == len(ledger_fills)
            (line,) = tracker.summary()  # what run_strategy prints at the end
            quote = symbol.split("/")[1].split(":")[0]
            assert re.match(rf"{re.escape(symbol)}: {len(ledger_fills)} fills, volume 0\.10*, position 0(\.0+)? @ 0, "
                            rf"realized PnL 69\.9800 {quote}, fees ", line), line
            # Every fill, as delivered and as read back from the store, in the simulator's base coins; the venue's
            # own figure stays in `amount` (contracts on Gate and MEXC: base / the size the simulator used).
            by_id = {f.trade_id: f for f in ledger_fills}
            stored = await pool.store.fetch_trades()
            assert len(stored) == len(ledger_fills)
            for trade in [*tracker.trades, *stored]:
                fill = by_id[trade.trade_id]
                assert trade.base_amount == fill.amount
                size = contract_size(exchange, trade.symbol_raw)
                assert trade.amount == (fill.amount / size if size else fill.amount)
            for order_id, amount in orders:
                final = [u for u in tracker.updates if u.order_id == order_id and u.status.value == "filled"]
                assert final and final[-1].base_amount == amount and final[-1].base_filled == amount
            await tracker.stop()


@pytest.mark.parametrize("exchange, symbol", [pytest.param(*f, id=f[0]) for f in FUTURES])
async def test_backfilled_fills_carry_the_same_base_amounts_as_the_simulators(exchange, symbol):
    spec = get_exchange(exchange)
    async with asyncio.timeout(60), Simulator(exchanges=[exchange]) as sim:
        ledger_fills = []
        for side, amount, price, parts in ORDERS:
            _, fills = await sim.fill(exchange, "future", symbol, side, amount, price, parts=parts)
            ledger_fills += fills
        key = ConnectionKey(exchange=exchange, market="future")
        filler = Backfiller(key, spec.backfill, sim.credentials_for(exchange), spec.stream.endpoints(Market.FUTURE),
                            sim.endpoints(exchange, "future"))
        try:
            fetched = await filler.fetch(symbol, min(f.time for f in ledger_fills) - 5000)
        finally:
            await filler.close()
    assert {t.source for t in fetched} == {Source.REST}
    assert {t.trade_id: t.base_amount for t in fetched} == {f.trade_id: f.amount for f in ledger_fills}
