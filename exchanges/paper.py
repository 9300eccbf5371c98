"""PaperFeed: realistic fills pushed through a MockConnector (orders filled in parts, fees, replays)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from framework.events import OrderStatus, now_ms
from exchanges.mock import MockConnector

_START_PRICES = {"BTC": Decimal("65000"), "ETH": Decimal("3200"), "SOL": Decimal("150")}


class PaperFeed:
    """Places imaginary orders for a strategy and fills them in 1–3 parts on a random walk.

    Every order gets a client order id with the strategy's prefix, its order updates (new →
    partially filled → filled) and its fills; `replay_ratio` of the fills are sent a second time,
    as a venue does after a reconnect, so dedup has work to do.
    """

    def __init__(
        self,
        connector: MockConnector,
        symbol: str,
        client_order_id_prefix: str,
        *,
        rate: float = 20.0,
        replay_ratio: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.connector = connector
        self.symbol = symbol
        self.prefix = client_order_id_prefix
        self.rate = rate
        self.replay_ratio = replay_ratio
        self._random = random.Random(seed)
        base = symbol.split("/")[0]
        self.price = _START_PRICES.get(base, Decimal("100"))
        self.fee_currency = symbol.split("/")[1].split(":")[0] if "/" in symbol else "USDT"
        self.orders = 0
        self.fills_sent = 0
        self.replays_sent = 0

    def _step_price(self) -> Decimal:
        move = Decimal(self._random.randint(-20, 20)) / Decimal(10000)  # up to ±0.2%
        self.price = (self.price * (1 + move)).quantize(Decimal("0.01"))
        return self.price

    def _amount(self) -> Decimal:
        return (Decimal(self._random.randint(1, 500)) / Decimal(1000)).quantize(Decimal("0.001"))

    async def run(self, stop: asyncio.Event) -> None:
        """Push orders and fills until `stop` is set."""
        interval = 1.0 / self.rate
        run_id = now_ms()
        while not stop.is_set():
            await self._one_order(run_id)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    async def _one_order(self, run_id: int) -> None:
        self.orders += 1
        side = self._random.choice(("buy", "sell"))
        price = self._step_price()
        amount = self._amount()
        order_id = f"{run_id}{self.orders:06d}"
        client_id = f"{self.prefix}-{run_id}-{self.orders}"
        common = dict(symbol=self.symbol, side=side, order_id=order_id, client_order_id=client_id)
        await self.connector.push_order_update(**common, amount=amount, price=price, status=OrderStatus.NEW)
        parts = self._random.randint(1, 3)
        filled = Decimal(0)
        for part in range(parts):
            qty = amount - filled if part == parts - 1 else (amount / parts).quantize(Decimal("0.001"))
            if qty <= 0:
                continue
            filled += qty
            maker = self._random.random() < 0.6
            fee_rate = Decimal("0.0002") if maker else Decimal("0.0004")
            trade = await self.connector.push_trade(
                **common,
                amount=qty,
                price=price,
                trade_id=f"{order_id}{part}",
                fee_cost=(qty * price * fee_rate).quantize(Decimal("0.00000001")),
                fee_currency=self.fee_currency,
                is_maker=maker,
            )
            self.fills_sent += 1
            status = OrderStatus.FILLED if filled == amount else OrderStatus.PARTIALLY_FILLED
            await self.connector.push_order_update(**common, amount=amount, price=price, status=status, filled=filled)
            if self._random.random() < self.replay_ratio:
                await self.connector.push_trade(
                    **common,
                    amount=trade.amount,
                    price=trade.price,
                    trade_id=trade.trade_id,
                    fee_cost=trade.fee_cost,
                    fee_currency=trade.fee_currency,
                    is_maker=trade.is_maker,
                    timestamp=trade.timestamp,
                )
                self.replays_sent += 1
