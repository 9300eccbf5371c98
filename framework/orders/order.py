"""One order's life in the gateway (`Order`, live and updated as the venue reports) and the frozen snapshot of
it a strategy's `on_execution` gets (`OrderSnapshot`)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import attrs

from framework.events import ConnectionKey, Side, now_ms
from framework.orders.model import OrderRef, OrderRequest, OrderState, OrderType, Path


@attrs.frozen(kw_only=True)
class OrderSnapshot:
    key: ConnectionKey
    strategy_id: str
    client_order_id: str
    order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    amount: Decimal
    price: Decimal | None
    state: OrderState
    filled: Decimal
    average: Decimal | None
    path: Path | None
    attempts: int
    ack_latency_ms: float | None
    reason: str
    created: int
    updated: int
    parent: str | None = None  # a TP/SL order: its entry's client id
    kind: str = "entry"  # entry | take_profit | stop_loss


class Order:
    """What `place_order` returns: the order as the gateway knows it now (its fields change as the venue reports).

    `state` is an OrderState; `final` once filled, canceled, rejected or expired; `reason` says why a rejection
    (or an unknown outcome) is what it is. `await order.wait_final(timeout)` waits for a final state."""

    def __init__(self, key: ConnectionKey, strategy_id: str, request: OrderRequest, *, parent: str | None = None,
                 kind: str = "entry") -> None:
        self.key = key
        self.strategy_id = strategy_id
        self.request = request
        self.client_order_id = request.client_order_id
        self.order_id: str | None = None
        self.state = OrderState.PENDING
        self.filled = Decimal(0)
        self.average: Decimal | None = None
        self.amount = request.amount
        self.price = request.price
        self.path: Path | None = None  # the path of the attempt that placed it
        self.attempts = 0
        self.ack_latency_ms: float | None = None
        self.reason = ""
        self.created = now_ms()
        self.updated = self.created
        self.sent_at: float | None = None  # loop time of the first send (latencies)
        self.expires_at = 0  # ms: no attempt sent so far can execute after this (validity + clock skew)
        self.maybe_placed = False  # an attempt may have reached the venue
        self.confirmed = False  # the stream (or a query) showed the order at the venue
        self.prepared: Any = None  # Prepared (venues that resend the same signed request)
        self.parent = parent
        self.kind = kind
        self.children: list[Order] = []  # its TP/SL orders
        self.protect: dict[str, Decimal] = {}  # take_profit / stop_loss prices to place once it fills
        self.fill_keys: set[tuple] = set()  # fills already reported
        self.fills_total = Decimal(0)  # what those fills add up to (base units)
        self.final_due: Any = None  # a filled state waiting for its fills (a timer handle)
        self.recovered = False  # taken over from an earlier process's unfinished request
        self.final_reported = False
        self._final = asyncio.Event()
        self._placed = asyncio.Event()  # the placement's outcome is settled (open or final)
        self._heard = asyncio.Event()  # news of it (stream, late answer): wakes a reconciliation early

    # what strategies read ------------------------------------------------------------------------------
    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def order_type(self) -> OrderType:
        return self.request.order_type

    @property
    def final(self) -> bool:
        return self.final_reported or self.state.is_final

    @property
    def status(self) -> OrderState:
        return self.state

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    def ref(self, *, by_order_id: bool = True) -> OrderRef:
        return OrderRef(market=self.request.market, symbol=self.symbol, client_order_id=self.client_order_id,
                        order_id=self.order_id if by_order_id else None, side=self.side, amount=self.amount,
                        price=self.price, conditional=self.request.trigger_price is not None)

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            key=self.key, strategy_id=self.strategy_id, client_order_id=self.client_order_id, order_id=self.order_id,
            symbol=self.symbol, side=self.side, order_type=self.order_type, amount=self.amount, price=self.price,
            state=self.state, filled=self.filled, average=self.average, path=self.path, attempts=self.attempts,
            ack_latency_ms=self.ack_latency_ms, reason=self.reason, created=self.created, updated=self.updated,
            parent=self.parent, kind=self.kind,
        )

    async def wait_final(self, timeout: float | None = None) -> bool:
        """Wait until the order is final; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._final.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _heard_set(self) -> None:
        self._heard.set()

    async def _heard_wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, waking early when news of the order comes."""
        self._heard.clear()
        try:
            await asyncio.wait_for(self._heard.wait(), max(0.0, timeout))
        except TimeoutError:
            pass

    async def wait_placed(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._placed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def __repr__(self) -> str:
        return (f"Order({self.client_order_id} {self.side.value} {self.amount} {self.symbol} @ {self.price} "
                f"{self.state.value} filled={self.filled} id={self.order_id} path={self.path and self.path.value})")
