"""PositionTracker: keeps position, average entry, realized PnL and fees per symbol from its fills."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from framework.events import OrderUpdate, Side, Trade
from framework.strategy import BaseStrategy

ZERO = Decimal(0)


class Book:
    """One symbol's position: signed size, average entry price, realized PnL (quote), fees."""

    def __init__(self) -> None:
        self.position = ZERO
        self.avg_price = ZERO
        self.realized_pnl = ZERO
        self.volume = ZERO
        self.fills = 0
        self.fees: dict[str, Decimal] = defaultdict(Decimal)

    def apply(self, trade: Trade) -> None:
        signed = trade.amount if trade.side is Side.BUY else -trade.amount
        self.fills += 1
        self.volume += trade.amount
        if trade.fee_cost is not None:
            self.fees[trade.fee_currency or "?"] += trade.fee_cost
        if self.position == 0 or (self.position > 0) == (signed > 0):
            # Opening or adding: the average entry moves.
            total = self.position + signed
            self.avg_price = (self.avg_price * abs(self.position) + trade.price * trade.amount) / abs(total)
            self.position = total
            return
        # Reducing, closing or flipping: realize PnL on the closed part.
        closed = min(abs(signed), abs(self.position))
        direction = 1 if self.position > 0 else -1
        self.realized_pnl += (trade.price - self.avg_price) * closed * direction
        self.position += signed
        if self.position == 0:
            self.avg_price = ZERO
        elif (self.position > 0) != (direction > 0):
            self.avg_price = trade.price  # flipped: the remainder opened at this price


class PositionTracker(BaseStrategy):
    """Tracks what its fills did to its position; the smallest useful strategy to start from."""

    def on_start(self) -> None:
        self.books: dict[str, Book] = defaultdict(Book)
        self.open_orders: dict[str, OrderUpdate] = {}

    def on_trade(self, trade: Trade) -> None:
        self.books[trade.symbol].apply(trade)

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.status.is_terminal:
            self.open_orders.pop(update.order_id, None)
        else:
            self.open_orders[update.order_id] = update

    def summary(self) -> list[str]:
        lines = []
        for symbol, book in sorted(self.books.items()):
            fees = ", ".join(f"{v} {k}" for k, v in sorted(book.fees.items())) or "0"
            lines.append(
                f"{symbol}: {book.fills} fills, volume {book.volume}, position {book.position} "
                f"@ {book.avg_price.quantize(Decimal('0.01')) if book.avg_price else 0}, "
                f"realized PnL {book.realized_pnl.quantize(Decimal('0.0001'))}, fees {fees}, "
                f"open orders {sum(1 for o in self.open_orders.values() if o.symbol == symbol)}"
            )
        return lines
