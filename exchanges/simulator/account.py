"""The simulator's accounts: one per (venue, market) (the simulator has one set of credentials per venue), moved
by its orders and fills. The book of record the account tests compare a strategy's views and the store with.

Spot: every listed coin starts with a balance; an open order locks what it may spend (a buy its cost in the
quote coin, a sell its amount), a fill moves the coins and charges the fee in its currency. Futures (linear,
settled in the quote): one wallet per settle coin, positions in base units per symbol (one-way mode), a fill
opening or adding moves the average entry, reducing realizes PnL into the wallet; the fee is charged to the
wallet. Margin in use (`locked`) is |size| × entry / leverage; `free` is the wallet less that. Inverse
contracts are not kept here.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from exchanges.simulator.ledger import SimFill, SimOrder
from framework.events import Market, Side

START_QUOTE = Decimal(1_000_000)  # each quote / settle coin at the start
START_BASE = Decimal(100)  # each other coin at the start (spot)
LEVERAGE = Decimal(10)
QUOTES = ("USDT", "USDC", "FDUSD", "USD")
ZERO = Decimal(0)
ENTRY_STEP = Decimal("0.00000001")  # an average entry price is kept to 8 places


@attrs.define
class SimBalance:
    asset: str
    free: Decimal
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@attrs.define
class SimPosition:
    symbol: str
    size: Decimal = ZERO  # signed, base units: + long, - short
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    leverage: Decimal = LEVERAGE
    mark_price: Decimal = ZERO  # the price of its last fill (the simulator keeps no mark price apart)
    updated: int = 0

    @property
    def direction(self) -> str:
        return "long" if self.size > 0 else "short" if self.size < 0 else "flat"

    @property
    def margin(self) -> Decimal:
        return abs(self.size) * self.entry_price / self.leverage

    @property
    def unrealized_pnl(self) -> Decimal:
        return (self.mark_price - self.entry_price) * self.size if self.size else ZERO

    @property
    def liquidation_price(self) -> Decimal | None:
        """Where the position's margin is gone (isolated-style estimate, maintenance margin left out)."""
        if not self.size:
            return None
        move = self.entry_price / self.leverage
        return self.entry_price - move if self.size > 0 else self.entry_price + move


class SimAccount:
    """One (venue, market) account's balances (and positions on futures)."""

    def __init__(self, exchange: str, market: Market) -> None:
        self.exchange = exchange
        self.market = market
        self.balances: dict[str, SimBalance] = {}
        self.positions: dict[str, SimPosition] = {}
        self.updated = 0  # ms of the last change

    def balance(self, asset: str) -> SimBalance:
        found = self.balances.get(asset)
        if found is None:
            start = START_QUOTE if asset in QUOTES or self.market is Market.FUTURE else START_BASE
            found = self.balances[asset] = SimBalance(asset, start)
        return found

    def position(self, symbol: str) -> SimPosition:
        found = self.positions.get(symbol)
        if found is None:
            found = self.positions[symbol] = SimPosition(symbol)
        return found

    # what the simulator's orders and fills do --------------------------------------------------------------
    def placed(self, order: SimOrder, now: int) -> list[str]:
        """An order rests: on spot it locks what it may spend. Returns the assets it changed."""
        return self._lock(order, order.amount, now)

    def _lock(self, order: SimOrder, amount: Decimal, now: int) -> list[str]:
        """Spot: move what `amount` of the order may spend from free to locked (a negative amount: back)."""
        if self.market is not Market.SPOT:
            return []
        base, quote = _coins(order.symbol)
        asset, value = (quote, amount * order.price) if order.side is Side.BUY else (base, amount)
        balance = self.balance(asset)
        balance.free -= value
        balance.locked += value
        self.updated = now
        return [asset]

    def filled(self, order: SimOrder, fill: SimFill) -> tuple[list[str], list[str]]:
        """A fill: coins (spot) or the position and wallet (futures) move, the fee is charged.
        Returns (assets changed, symbols changed)."""
        self.updated = fill.time
        base, quote = _coins(fill.symbol)
        if self.market is Market.SPOT:
            buy = fill.side is Side.BUY
            spent, got = (self.balance(quote), self.balance(base)) if buy else (self.balance(base), self.balance(quote))
            locked = fill.amount * order.price if buy else fill.amount  # what the order locked for this part
            spent.locked -= locked
            spent.free += locked - (fill.cost if buy else fill.amount)
            got.free += fill.amount if buy else fill.cost
            self.balance(fill.fee_currency).free -= fill.fee
            return sorted({base, quote, fill.fee_currency}), []
        wallet = self.balance(quote)
        position = self.position(fill.symbol)
        signed = fill.amount if fill.side is Side.BUY else -fill.amount
        if position.size == 0 or (position.size > 0) == (signed > 0):
            total = position.size + signed
            average = (position.entry_price * abs(position.size) + fill.price * fill.amount) / abs(total)
            position.entry_price = average.quantize(ENTRY_STEP)  # venues keep a finite average, not 28 digits
            position.size = total
        else:
            closed = min(abs(signed), abs(position.size))
            pnl = (fill.price - position.entry_price) * closed * (1 if position.size > 0 else -1)
            position.realized_pnl += pnl
            wallet.free += pnl
            position.size += signed
            if position.size == 0:
                position.entry_price = ZERO
            elif (position.size > 0) != (signed < 0):  # flipped: the rest opened at this price
                position.entry_price = fill.price
        wallet.free -= fill.fee
        position.mark_price = fill.price
        position.updated = fill.time
        self._margin(quote)
        return [quote], [fill.symbol]

    def placed_remaining(self, order: SimOrder, now: int) -> list[str]:
        """An amended order locks its remaining part again, at its new terms (spot)."""
        return self._lock(order, order.remaining, now)

    def canceled(self, order: SimOrder, now: int) -> list[str]:
        """An order's unfilled part stops locking coins (spot)."""
        return self._lock(order, -order.remaining, now)

    def _margin(self, settle: str) -> None:
        """Futures: the wallet's locked part is the margin its positions use."""
        wallet = self.balance(settle)
        used = sum((p.margin for p in self.positions.values() if _coins(p.symbol)[1] == settle), ZERO)
        total = wallet.total
        wallet.locked = used
        wallet.free = total - used


def _coins(symbol: str) -> tuple[str, str]:
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]
