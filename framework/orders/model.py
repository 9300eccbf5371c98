"""The order vocabulary shared by the gateway and the venues: what a strategy asks (`OrderRequest`, `OrderRef`),
what one attempt on one path came to (`Outcome`), an order's life (`OrderState`) and what a strategy is told
(`Execution`)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import attrs

from framework.events import Market, OrderStatus, Side, to_decimal, to_optional_decimal


class OrderType(StrEnum):
    LIMIT = "limit"  # good till cancelled
    MARKET = "market"
    IOC = "ioc"  # limit, immediate or cancel
    POST_ONLY = "post_only"  # limit, rejected (or cancelled) rather than taking


class Path(StrEnum):
    WEBSOCKET = "websocket"
    REST = "rest"


class OrderState(StrEnum):
    """An order's life as the gateway knows it. `acked`: the venue took the request (an ack is not a placement);
    `open` and on: the private stream or a query confirmed it. `unknown`: the outcome is being reconciled."""

    PENDING = "pending"  # has its client id, not sent yet (waiting for a slot, the rate budget)
    SENT = "sent"
    ACKED = "acked"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @classmethod
    def of(cls, status: OrderStatus) -> OrderState:
        return _FROM_STATUS[status]


FINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED})
_FROM_STATUS = {
    OrderStatus.NEW: OrderState.OPEN, OrderStatus.PARTIALLY_FILLED: OrderState.PARTIALLY_FILLED,
    OrderStatus.FILLED: OrderState.FILLED, OrderStatus.CANCELED: OrderState.CANCELED,
    OrderStatus.REJECTED: OrderState.REJECTED, OrderStatus.EXPIRED: OrderState.EXPIRED,
}


@attrs.frozen(kw_only=True)
class OrderRequest:
    """One order as the venue is asked for it. `amount` is in base units (the venue module turns it into
    contracts); `price` is None for market orders. `trigger_price` + `trigger` make a conditional (TP/SL) order."""

    market: Market = attrs.field(converter=Market.parse)
    symbol: str
    side: Side = attrs.field(converter=Side.parse)
    amount: Decimal = attrs.field(converter=to_decimal)
    price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    order_type: OrderType = attrs.field(default=OrderType.LIMIT, converter=OrderType)
    client_order_id: str
    reduce_only: bool = False
    trigger_price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    trigger: str | None = None  # "take_profit" | "stop_loss"


@attrs.frozen(kw_only=True)
class OrderRef:
    """The order a cancel, amend or query names: by venue order id when known (venues that rename client ids on
    cancel), else by client id."""

    market: Market = attrs.field(converter=Market.parse)
    symbol: str
    client_order_id: str
    order_id: str | None = None
    side: Side | None = attrs.field(default=None, converter=lambda v: None if v is None else Side.parse(v))  # amends
    amount: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    conditional: bool = False  # a TP/SL order (the venue's conditional order endpoints)


@attrs.frozen(kw_only=True)
class Amend:
    """A change to an open order: the new price and/or the new total amount (base units)."""

    ref: OrderRef
    amount: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    client_order_id: str | None = None  # a fresh client id, for venues whose amend makes a new order


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"  # the venue says the order exists (with its id, maybe its state)
    ACKED = "acked"  # the venue took the request; the order is confirmed by the stream (or a query) later
    REJECTED = "rejected"  # definite: the venue refused it, it was not executed; never retried elsewhere
    NOT_FOUND = "not_found"  # a query's or cancel's answer: the venue has no such order (now)
    AMBIGUOUS = "ambiguous"  # sent, outcome unknown (timeout, no ack, disconnect, 5xx, "status unknown")
    NOT_SENT = "not_sent"  # the request never left (no connection, send failed before a byte went)


@attrs.frozen(kw_only=True)
class Outcome:
    kind: OutcomeKind
    order_id: str | None = None
    client_order_id: str | None = None  # the venue's client id when it differs from the one asked (a rename)
    status: OrderStatus | None = None  # the order's state when the answer carries it
    filled: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)  # base units
    amount: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    price: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    average: Decimal | None = attrs.field(default=None, converter=to_optional_decimal)
    code: str | None = attrs.field(default=None, converter=lambda v: None if v is None else str(v))
    message: str = ""
    server_ms: float | None = None  # the venue's own handling time when the answer says it (Gate x_in/x_out)
    retry_after: float | None = None  # seconds the venue asked us to wait (rate limits)

    @property
    def final(self) -> bool:
        return self.kind is OutcomeKind.REJECTED


def accepted(order_id: Any = None, **fields: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.ACCEPTED, order_id=None if order_id in (None, "") else str(order_id), **fields)


def acked(order_id: Any = None, **fields: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.ACKED, order_id=None if order_id in (None, "") else str(order_id), **fields)


def rejected(code: Any, message: str, **fields: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.REJECTED, code=code, message=message, **fields)


def not_found(code: Any = None, message: str = "no such order", **fields: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.NOT_FOUND, code=code, message=message, **fields)


def ambiguous(message: str, code: Any = None, **fields: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.AMBIGUOUS, code=code, message=message, **fields)


def not_sent(message: str, **fields: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.NOT_SENT, message=message, **fields)


@attrs.frozen(kw_only=True)
class Prepared:
    """A request made ready once, before its first attempt, by venues whose retries must resend the very same
    signed bytes (Hyperliquid: the nonce makes a resend idempotent, a re-sign would place twice).
    `expires_at` (ms): the venue executes it no later than this (its expiresAfter)."""

    payload: Any
    expires_at: int | None = None


@attrs.frozen(kw_only=True)
class Execution:
    """What `on_execution` gets: one change of one of the strategy's orders. `kind`: "acked", "open", "fill",
    "amended", "canceled", "filled", "rejected", "expired", "unknown" (being reconciled). `order` is the order's
    state after it (a snapshot); `fill` the fill for kind "fill"."""

    kind: str
    order: Any  # framework.orders.order.OrderSnapshot
    fill: Any = None  # framework.events.Trade
    timestamp: int = 0

    @property
    def final(self) -> bool:
        return self.kind in ("filled", "canceled", "rejected", "expired")
