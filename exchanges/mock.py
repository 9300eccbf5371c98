"""MockConnector: a connector with no socket; tests push fills, order updates or raw frames through it.

What is pushed flows through the same pool, TradeSync and strategy path as a real venue's frames.
A raw frame is normalized by the venue's own `SPEC.normalize` when the venue is built, else by the
mock wire format below.
"""

from __future__ import annotations

import itertools
from typing import Any

from framework.connection import MockConnection
from framework.errors import ConfigError, LifecycleError, NormalizeError
from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Source, Trade, now_ms, to_decimal
from exchanges.symbols import unify

__all__ = ["MockConnection", "MockConnector", "normalize_mock"]

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def normalize_mock(message: Any, market: Market, exchange: str = "mock") -> list[Trade | OrderUpdate]:
    """The mock wire format: `{"type": "trade" | "order_update", "symbol": "BTCUSDT", ...}`.

    Fields are the Trade / OrderUpdate field names (`symbol` is the venue symbol). Anything that is
    not a dict with a known `type` is an ack (`[]`) when it says so, else malformed.
    """
    if not isinstance(message, dict):
        raise NormalizeError(f"mock frame must be a JSON object, got {type(message).__name__}", raw=message)
    kind = message.get("type")
    if kind in ("ack", "pong"):
        return []
    try:
        raw_symbol = str(message["symbol"])
        common = {
            "exchange": exchange,
            "market": market,
            "symbol": unify(exchange, market, raw_symbol),
            "symbol_raw": raw_symbol,
            "order_id": message["order_id"],
            "client_order_id": message.get("client_order_id"),
            "side": message["side"],
            "timestamp": message["timestamp"],
            "raw": message,
        }
        if kind == "trade":
            amount, price = to_decimal(message["amount"]), to_decimal(message["price"])
            return [
                Trade(
                    **common,
                    trade_id=message["trade_id"],
                    amount=amount,
                    price=price,
                    cost=message.get("cost") or amount * price,
                    fee_cost=message.get("fee_cost"),
                    fee_currency=message.get("fee_currency"),
                    is_maker=message.get("is_maker"),
                    source=Source.MOCK,
                )
            ]
        if kind == "order_update":
            return [
                OrderUpdate(
                    **common,
                    order_type=message.get("order_type", "limit"),
                    status=message["status"],
                    status_raw=message.get("status_raw", message["status"]),
                    amount=message["amount"],
                    price=message.get("price"),
                    filled=message.get("filled", "0"),
                )
            ]
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise NormalizeError(f"malformed mock {kind} frame: {exc!r}", raw=message) from None
    raise NormalizeError(f"unknown mock frame type {kind!r}", raw=message)


class MockConnector:
    """A venue connector that opens no socket. Same key rules as a real one (`binance_spot`, …)."""

    is_mock = True

    def __init__(self, exchange: str, market_type: str | Market, account: str = "default") -> None:
        self.key = ConnectionKey(exchange=exchange, market=market_type, account=account)
        self.credentials = None
        self._pool: Any = None  # the pool that holds this key's connection (set by the pool)

    @property
    def exchange(self) -> str:
        return self.key.exchange

    @property
    def market(self) -> Market:
        return self.key.market

    def __repr__(self) -> str:
        return f"MockConnector({self.key})"

    # pool side ---------------------------------------------------------------------------------
    def bind_pool(self, pool: Any) -> None:
        self._pool = pool

    def normalize(self, message: Any, market: Market) -> list[Trade | OrderUpdate]:
        """The venue's own normalize when the venue is built, else the mock wire format."""
        from exchanges import get_exchange

        try:
            normalize = get_exchange(self.key.exchange).normalize
        except ConfigError:
            return normalize_mock(message, market, self.key.exchange)
        return normalize(message, market)

    def _connection(self) -> MockConnection:
        connection = self._pool.connection(self.key) if self._pool is not None else None
        if connection is None:
            raise LifecycleError(
                f"{self!r} has no open connection: start a strategy that uses it before pushing events"
            )
        return connection

    # test side ---------------------------------------------------------------------------------
    async def push_trade(
        self,
        symbol: str,
        side: str,
        amount: Any,
        price: Any,
        trade_id: str | None = None,
        order_id: str | None = None,
        client_order_id: str | None = None,
        fee_cost: Any = None,
        fee_currency: str | None = None,
        *,
        is_maker: bool | None = None,
        timestamp: int | None = None,
    ) -> Trade:
        """Inject one fill as if the venue had sent it; returns the Trade that entered the pipeline."""
        amount, price = to_decimal(amount), to_decimal(price)
        symbol_raw = symbol.replace("/", "").split(":")[0]
        trade = Trade(
            exchange=self.key.exchange,
            market=self.key.market,
            account=self.key.account,
            symbol=symbol if "/" in symbol else unify(self.key.exchange, self.key.market, symbol),
            symbol_raw=symbol_raw,
            trade_id=trade_id or _next_id("T"),
            order_id=order_id or _next_id("O"),
            client_order_id=client_order_id,
            side=side,
            amount=amount,
            price=price,
            cost=amount * price,
            fee_cost=fee_cost,
            fee_currency=fee_currency,
            is_maker=is_maker,
            timestamp=timestamp or now_ms(),
            source=Source.MOCK,
        )
        self._inject(trade)
        return trade

    async def push_order_update(
        self,
        symbol: str,
        side: str,
        amount: Any,
        price: Any = None,
        status: str | OrderStatus = OrderStatus.NEW,
        filled: Any = "0",
        order_id: str | None = None,
        client_order_id: str | None = None,
        order_type: str = "limit",
        *,
        status_raw: str | None = None,
        timestamp: int | None = None,
    ) -> OrderUpdate:
        """Inject one order update; returns the OrderUpdate that entered the pipeline."""
        status = OrderStatus(status)
        update = OrderUpdate(
            exchange=self.key.exchange,
            market=self.key.market,
            account=self.key.account,
            symbol=symbol if "/" in symbol else unify(self.key.exchange, self.key.market, symbol),
            symbol_raw=symbol.replace("/", "").split(":")[0],
            order_id=order_id or _next_id("O"),
            client_order_id=client_order_id,
            side=side,
            order_type=order_type,
            status=status,
            status_raw=status_raw or status.value.upper(),
            amount=amount,
            price=price,
            filled=filled,
            timestamp=timestamp or now_ms(),
        )
        self._inject(update)
        return update

    async def push_raw(self, frame: str | bytes | dict | list) -> None:
        """Inject a raw frame, read as a socket reads it: the venue's frame rules and classify when the venue
        is built (acks and pongs pass, events are normalized), else the mock wire format. A frame that cannot
        be decoded or normalized becomes a dead letter, never an exception."""
        self._connection().on_message(frame, self._stream())

    def _stream(self) -> Any:
        """The venue's stream rules when the venue is built, else None (every frame is a mock event)."""
        from exchanges import get_exchange

        try:
            return get_exchange(self.key.exchange).stream
        except ConfigError:
            return None

    def _inject(self, event: Trade | OrderUpdate) -> None:
        connection = self._connection()
        connection.messages += 1
        connection.last_message = now_ms()
        connection.emit([event])

