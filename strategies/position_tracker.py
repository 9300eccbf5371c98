"""PositionTracker: keeps position, average entry, realized PnL and fees per symbol from its fills."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from framework.events import OrderUpdate, Side, Trade
from framework.strategy import BaseStrategy

ZERO = Decimal(0)
ONE = Decimal(1)


class Book:
    """One symbol's position: signed size, average entry price, realized PnL, fees.

    Sizes are base coins (`Trade.base_amount`), whatever the venue counts (Gate and MEXC futures count
    contracts), and PnL is in the quote currency. A coin-margined (inverse) contract is the exception: its
    position is in the venue's USD contracts and its PnL in the coin, as the venue settles it.
    """

    def __init__(self) -> None:
        self.inverse = False
        self.realized_pnl = ZERO
        self.volume = ZERO  # base coins traded
        self.fills = 0
        self.fees: dict[str, Decimal] = defaultdict(Decimal)
        self._size = ZERO  # signed, in the book's unit
        self._entry = ZERO  # average entry, in the book's price (1 / price on an inverse book)

    @property
    def position(self) -> Decimal:
        """Signed: base coins long (+) or short (-); USD contracts on an inverse book."""
        return -self._size if self.inverse else self._size

    @property
    def avg_price(self) -> Decimal:
        if not self._entry:
            return ZERO
        return ONE / self._entry if self.inverse else self._entry

    def apply(self, trade: Trade) -> None:
        self.fills += 1
        self.volume += trade.base_amount
        if trade.fee_cost is not None:
            self.fees[trade.fee_currency or "?"] += trade.fee_cost
        buy = trade.side is Side.BUY
        if trade.is_inverse:
            # A long of N USD opened at P1 and closed at P2 makes N × (1/P1 - 1/P2) coins: a linear book in
            # 1/price with the sides swapped.
            self.inverse = True
            contracts = trade.amount * (trade.contract_size or ONE)
            self._move(-contracts if buy else contracts, ONE / trade.price)
        else:
            self._move(trade.base_amount if buy else -trade.base_amount, trade.price)

    def _move(self, signed: Decimal, price: Decimal) -> None:
        if self._size == 0 or (self._size > 0) == (signed > 0):
            # Opening or adding: the average entry moves.
            total = self._size + signed
            self._entry = (self._entry * abs(self._size) + price * abs(signed)) / abs(total)
            self._size = total
            return
        # Reducing, closing or flipping: realize PnL on the closed part.
        closed = min(abs(signed), abs(self._size))
        direction = 1 if self._size > 0 else -1
        self.realized_pnl += (price - self._entry) * closed * direction
        self._size += signed
        if self._size == 0:
            self._entry = ZERO
        elif (self._size > 0) != (direction > 0):
            self._entry = price  # flipped: the remainder opened at this price


def pnl_currency(symbol: str, inverse: bool) -> str:
    """The quote of `BTC/USDT:USDT` (USDT); the coin of an inverse `BTC/USD:BTC` (BTC)."""
    base, _, rest = symbol.partition("/")
    return base if inverse else rest.partition(":")[0]


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
            fees = ", ".join(f"{_plain(v)} {k}" for k, v in sorted(book.fees.items())) or "0"
            unit = " USD" if book.inverse else ""
            lines.append(
                f"{symbol}: {book.fills} fills, volume {_plain(book.volume)}, position {_plain(book.position)}{unit} "
                f"@ {book.avg_price.quantize(Decimal('0.01')) if book.avg_price else 0}, "
                f"realized PnL {book.realized_pnl.quantize(Decimal('1e-8' if book.inverse else '1e-4'))} "
                f"{pnl_currency(symbol, book.inverse)}, fees {fees}, "
                f"open orders {sum(1 for o in self.open_orders.values() if o.symbol == symbol)}"
            )
        return lines


def _plain(value: Decimal) -> str:
    """A Decimal as people write it: 0, not 0E-8; no exponent; trailing zeros of exact text dropped."""
    return "0" if value == 0 else format(value.normalize(), "f")
