"""The simulator's book of record: orders and the fills they produced, per (venue, market)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Iterator

import attrs

from framework.events import Market, OrderStatus, Side


IDS_PER_MS = 1000  # room for this many ids per millisecond before ids run ahead of the clock


class ClockIds:
    """Order and trade ids as a venue makes them: numeric, increasing, never reused across runs or processes.

    The next id is max(previous + 1, now in ms × 1000): a later run (or another simulator in this
    process, which shares one instance) starts above every id an earlier one gave, as long as that one
    made fewer than 1000 ids per ms on average. Two processes making ids in the same millisecond
    could meet; one simulator process serves a scenario, so that does not happen here.
    """

    def __init__(self, clock=time.time_ns) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()  # simulators of one process may live on different threads' loops

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, self._clock() // 1_000_000 * IDS_PER_MS)
            return self._last


PROCESS_IDS = ClockIds()  # every simulator of this process draws from it


@attrs.define(kw_only=True)
class SimOrder:
    order_id: str
    client_order_id: str | None
    symbol: str  # unified, e.g. BTC/USDT or BTC/USDT:USDT
    side: Side
    amount: Decimal
    price: Decimal
    order_type: str = "limit"
    filled: Decimal = Decimal(0)
    filled_cost: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.NEW
    time_in_force: str = "gtc"  # gtc | ioc | post_only
    reduce_only: bool = False
    trigger_price: Decimal | None = None  # a TP/SL order: rests untriggered until the market reaches it
    trigger: str | None = None  # "take_profit" | "stop_loss"
    created: int
    updated: int

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def average(self) -> Decimal:
        return self.filled_cost / self.filled if self.filled else Decimal(0)


@attrs.frozen(kw_only=True)
class SimFill:
    trade_id: str
    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    fee: Decimal  # positive: paid by the account
    fee_currency: str
    is_maker: bool
    time: int

    @property
    def cost(self) -> Decimal:
        return self.amount * self.price


class Ledger:
    """Every order and fill of one (venue, market) account, in the order they happened."""

    def __init__(self, exchange: str, market: Market, ids: Iterator[int] | None = None) -> None:
        self.exchange = exchange
        self.market = market
        self.orders: dict[str, SimOrder] = {}
        self.fills: list[SimFill] = []
        self._ids = ids or PROCESS_IDS

    def next_id(self) -> str:
        return str(next(self._ids))

    def new_order(
        self, symbol: str, side: Side | str, amount: Decimal, price: Decimal, client_order_id: str | None, now: int
    ) -> SimOrder:
        order = SimOrder(
            order_id=self.next_id(), client_order_id=client_order_id, symbol=symbol, side=Side.parse(side),
            amount=amount, price=price, created=now, updated=now,
        )
        self.orders[order.order_id] = order
        return order

    def fill(self, order: SimOrder, amount: Decimal, price: Decimal, *, is_maker: bool, fee_rate: Decimal,
             fee_currency: str, now: int) -> SimFill:
        if amount <= 0 or amount > order.remaining:
            raise ValueError(f"cannot fill {amount} of order {order.order_id} with {order.remaining} left")
        fill = SimFill(
            trade_id=self.next_id(), order_id=order.order_id, client_order_id=order.client_order_id,
            symbol=order.symbol, side=order.side, amount=amount, price=price,
            fee=(amount * price * fee_rate).quantize(Decimal("0.00000001")), fee_currency=fee_currency,
            is_maker=is_maker, time=now,
        )
        order.filled += amount
        order.filled_cost += amount * price
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        order.updated = now
        self.fills.append(fill)
        return fill

    def cancel(self, order: SimOrder, now: int) -> None:
        order.status = OrderStatus.CANCELED
        order.updated = now

    def fills_between(self, symbol: str | None, start: int | None, end: int | None) -> list[SimFill]:
        """Fills in time order, optionally for one symbol and a [start, end] ms window."""
        return [
            f for f in self.fills
            if (symbol is None or f.symbol == symbol)
            and (start is None or f.time >= start)
            and (end is None or f.time <= end)
        ]

