"""Account state events: a balance of one asset and a position in one contract, as a venue reported them.

Each venue's `account.py` turns its private account channels (and the REST snapshot ccxt fetches on every
(re)connect) into these; the store keeps the latest state per (exchange, market, account, asset | symbol
[, position side]) and a history. A state older than the one kept never replaces it: the snapshot taken on a
reconnect is not undone by a delta the venue sent before it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

import attrs

from framework.events import (
    ConnectionKey,
    Market,
    Source,
    _optional_str,
    connection_key,
    now_ms,
    to_optional_decimal,
)


class PositionSide(StrEnum):
    """Which position of a symbol this is: the one net position (one-way mode), or one leg in hedge mode."""

    NET = "net"
    LONG = "long"
    SHORT = "short"


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


@attrs.frozen(kw_only=True)
class BalanceUpdate:
    """One asset's balance. Absolute figures (`free`, `locked`, `total`) when the venue sends them; a venue
    message that only says how a balance moved (Binance spot `balanceUpdate`) carries `delta` instead, and
    the absolute figures are None.

    Futures accounts: `total` is the wallet (margin) balance without unrealized PnL where the venue keeps them
    apart, `free` what is available for new orders, `locked` the rest (margin in use, orders).
    """

    channel: ClassVar[str] = "balance"
    exchange: str
    market: Market = attrs.field(converter=Market.parse)
    account: str = "default"
    asset: str = attrs.field(converter=lambda v: str(v).upper())
    free: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    locked: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    total: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    delta: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    reason: str | None = attrs.field(default=None, converter=_optional_str)  # the venue's why (Binance `m`)
    timestamp: int = attrs.field(converter=int)  # venue time, ms (a REST snapshot: when it was taken)
    received_at: int = attrs.field(factory=now_ms, eq=False)
    source: Source = attrs.field(default=Source.WEBSOCKET, converter=Source.parse, eq=False)
    raw: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def key(self) -> ConnectionKey:
        return connection_key(self.exchange, self.market, self.account)

    @property
    def state_key(self) -> tuple[str, str, str, str]:
        return (self.exchange, self.market.value, self.account, self.asset)

    @property
    def is_delta(self) -> bool:
        """Only a movement, no absolute figure: it goes to the history, not over the latest state."""
        return self.free is None and self.locked is None and self.total is None


@attrs.frozen(kw_only=True)
class PositionUpdate:
    """One position in one contract. `size` is in base units whatever the venue counts (contracts × contract
    size on Gate and MEXC futures; the venue's own count stays in `contracts`); 0 means closed (flat)."""

    channel: ClassVar[str] = "position"
    exchange: str
    market: Market = attrs.field(converter=Market.parse)
    account: str = "default"
    symbol: str
    symbol_raw: str
    position_side: PositionSide = attrs.field(default=PositionSide.NET, converter=PositionSide)
    direction: Direction = attrs.field(converter=Direction)
    size: Decimal = attrs.field(converter=to_optional_decimal)
    contracts: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    entry_price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    mark_price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    unrealized_pnl: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    realized_pnl: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    leverage: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    liquidation_price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    margin_mode: str | None = attrs.field(default=None, converter=_optional_str)  # "cross" | "isolated"
    timestamp: int = attrs.field(converter=int)
    received_at: int = attrs.field(factory=now_ms, eq=False)
    source: Source = attrs.field(default=Source.WEBSOCKET, converter=Source.parse, eq=False)
    raw: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def key(self) -> ConnectionKey:
        return connection_key(self.exchange, self.market, self.account)

    @property
    def state_key(self) -> tuple[str, str, str, str, str]:
        return (self.exchange, self.market.value, self.account, self.symbol, self.position_side.value)

    @property
    def signed_size(self) -> Decimal:
        """+size long, -size short, 0 flat."""
        return -self.size if self.direction is Direction.SHORT else self.size


AccountEvent = BalanceUpdate | PositionUpdate


def account_problem(event: AccountEvent, now: int, earliest: int, future_tolerance_ms: int) -> str | None:
    """Why an account event cannot be trusted, in one line (framework.validate's rules for these); None if sane."""
    if not earliest <= event.timestamp <= now + future_tolerance_ms:
        return f"timestamp {event.timestamp} is outside the sane range"
    if isinstance(event, BalanceUpdate):
        if event.is_delta and event.delta is None:
            return "a balance update with no figure at all"
        if event.market is Market.SPOT:
            for name in ("free", "locked", "total"):
                value = getattr(event, name)
                if value is not None and value < 0:
                    return f"spot {name} {value} is negative"
        return None
    if event.size < 0:
        return f"position size {event.size} is negative (the direction says short)"
    if (event.size == 0) != (event.direction is Direction.FLAT):
        return f"position size {event.size} does not fit direction {event.direction.value}"
    for name in ("entry_price", "liquidation_price", "mark_price"):
        value = getattr(event, name)
        if value is not None and value < 0:
            return f"{name} {value} is negative"
    if event.leverage is not None and event.leverage <= 0:
        return f"leverage {event.leverage} is not positive"
    return None
