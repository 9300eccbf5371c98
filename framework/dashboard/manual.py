"""Manual orders from the page: `prepare` checks a request and holds it under a confirmation id for 60 s,
`confirm` places it through the process's order entry (WebSocket first, REST fallback) as the strategy
"dashboard-manual" on the run's keys, and answers once the venue took it: the order, the path and the latency."""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from typing import Any, Iterable

import attrs

from framework.dashboard.state import order_item_of_snapshot
from framework.errors import ConfigError
from framework.events import Market, to_decimal
from framework.orders import OrderError
from framework.strategy import BaseStrategy

STRATEGY_ID = "dashboard-manual"
PREFIX = "dash"
HEX_PREFIX = "0xda5"  # Hyperliquid client ids are hex cloids
CONFIRM_SECONDS = 60
SIDES = {"long": "buy", "short": "sell"}
ORDER_TYPES = ("market", "limit")


class ManualOrderError(ValueError):
    """A request that cannot be placed as it is: one line saying what to change (HTTP 400)."""


class ManualStrategy(BaseStrategy):
    """The owner of the dashboard's orders: their fills and executions are routed here by the client id prefix, so
    they never reach another strategy on the key."""

    def on_start(self) -> None:
        self.executions = 0

    def on_execution(self, execution: Any) -> None:
        self.executions += 1


@attrs.frozen(kw_only=True)
class ManualOrder:
    key: str
    symbol: str
    side: str  # buy | sell
    order_type: str
    amount: Decimal
    price: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None

    def summary(self) -> str:
        direction = "long (buy)" if self.side == "buy" else "short (sell)"
        where = f"at {self.price}" if self.price is not None else "at the market"
        line = f"{direction} {self.amount} {self.symbol} {where} ({self.order_type}) on {self.key}"
        protect = [f"take profit {self.take_profit}" if self.take_profit is not None else "",
                   f"stop loss {self.stop_loss}" if self.stop_loss is not None else ""]
        protect = [p for p in protect if p]
        return line + (f"; {', '.join(protect)} once it fills" if protect else "")


class ManualTrading:
    """The dashboard's order desk on the run's connectors (none: manual orders are off)."""

    def __init__(self, pool: Any, connectors: Iterable[Any] = (), symbols: Iterable[str] = (), *,
                 confirm_seconds: float = CONFIRM_SECONDS, clock: Any = time.monotonic) -> None:
        self.pool = pool
        self.connectors = {str(c.key): c for c in connectors}
        self.symbols = list(symbols)
        self.confirm_seconds = confirm_seconds
        self.clock = clock
        self.strategy: ManualStrategy | None = None
        self._pending: dict[str, tuple[ManualOrder, float]] = {}

    async def start(self) -> None:
        if self.strategy is not None or not self.connectors:
            return
        from framework.orders import setup_websocket_trading

        if getattr(self.pool, "trading", None) is None:
            await setup_websocket_trading(self.pool)
        hex_ids = any(c.key.exchange == "hyperliquid" for c in self.connectors.values())
        strategy = ManualStrategy(STRATEGY_ID, list(self.connectors.values()), symbols=self.symbols or None,
                                  pool=self.pool, client_order_id_prefix=HEX_PREFIX if hex_ids else PREFIX)
        await strategy.start()
        self.strategy = strategy

    async def stop(self, timeout: float = 5.0) -> None:
        strategy, self.strategy = self.strategy, None
        if strategy is not None:
            await strategy.stop(timeout)  # its orders stay at the venue: they are the user's

    # the two steps ---------------------------------------------------------------------------------------------
    def prepare(self, body: Any) -> dict[str, Any]:
        """Check a request; its confirmation id, a summary to show, and how long the id is good for."""
        order = self._checked(body)
        now = self.clock()
        for cid, (_, expires) in list(self._pending.items()):
            if expires <= now:
                del self._pending[cid]
        confirmation_id = secrets.token_urlsafe(16)
        self._pending[confirmation_id] = (order, now + self.confirm_seconds)
        return {"confirmation_id": confirmation_id, "summary": order.summary(),
                "expires_in": int(self.confirm_seconds)}

    async def confirm(self, confirmation_id: Any) -> dict[str, Any]:
        """Place a prepared order (once: the id is spent whatever the outcome) and answer once the venue took it."""
        if not isinstance(confirmation_id, str) or not confirmation_id:
            raise ManualOrderError("confirmation_id is missing: review the order first (POST /api/manual-trade/prepare)")
        found = self._pending.pop(confirmation_id, None)
        if found is None:
            raise ManualOrderError("unknown or already used confirmation_id: review the order again")
        order, expires = found
        if expires <= self.clock():
            raise ManualOrderError("the confirmation expired: review the order again")
        if self.strategy is None or getattr(self.pool, "trading", None) is None:
            raise ManualOrderError("manual orders are not running: start the dashboard with an order entry key")
        started = time.perf_counter()
        try:
            placed = await self.pool.trading.place(
                self.strategy, order.symbol, order.side, order.amount, price=order.price,
                order_type=order.order_type, exchange=order.key, take_profit=order.take_profit,
                stop_loss=order.stop_loss)
        except (OrderError, ConfigError) as exc:
            raise ManualOrderError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        elapsed = (time.perf_counter() - started) * 1000
        latency = placed.ack_latency_ms if placed.ack_latency_ms is not None else elapsed
        return {"order": order_item_of_snapshot(placed.snapshot()),
                "path": None if placed.path is None else placed.path.value,
                "latency_ms": round(latency, 3)}

    # checks --------------------------------------------------------------------------------------------------
    def _checked(self, body: Any) -> ManualOrder:
        if not self.connectors:
            raise ManualOrderError("manual orders are off: this dashboard was started without an order entry key")
        if not isinstance(body, dict):
            raise ManualOrderError("the body must be a JSON object: {key, symbol, side, order_type, amount, price?}")
        key = body.get("key")
        connector = self.connectors.get(key) if isinstance(key, str) else None
        if connector is None:
            raise ManualOrderError(f"key must be one of {', '.join(sorted(self.connectors))}, got {key!r}")
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or "/" not in symbol:
            raise ManualOrderError(f"symbol must be a unified symbol like BTC/USDT, got {symbol!r}")
        market = connector.key.market
        if (market is Market.FUTURE) != (":" in symbol):
            raise ManualOrderError(f"{symbol} is not a {market.value} symbol of {key}")
        side = SIDES.get(body.get("side"))  # type: ignore[arg-type]
        if side is None:
            raise ManualOrderError(f"side must be long or short, got {body.get('side')!r}")
        order_type = body.get("order_type")
        if order_type not in ORDER_TYPES:
            raise ManualOrderError(f"order_type must be market or limit, got {order_type!r}")
        amount = _number(body, "amount", required=True)
        price = _number(body, "price", required=order_type == "limit")
        take_profit = _number(body, "take_profit")
        stop_loss = _number(body, "stop_loss")
        rules = connector.spec.orders
        if rules is None or market not in rules.markets:
            reason = rules.closed.get(market) if rules is not None else None
            raise ManualOrderError(f"{key} takes no orders here" + (f": {reason}" if reason else ""))
        if (take_profit is not None or stop_loss is not None) and market not in rules.conditional:
            raise ManualOrderError(f"{key} has no take-profit / stop-loss orders: leave them out")
        return ManualOrder(key=key, symbol=symbol, side=side, order_type=order_type, amount=amount,
                           price=price if order_type == "limit" else None, take_profit=take_profit,
                           stop_loss=stop_loss)


def _number(body: dict[str, Any], name: str, *, required: bool = False) -> Decimal | None:
    """A positive number sent as text (or an integer); floats are refused (not exact)."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ManualOrderError(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ManualOrderError(f"{name} must be a decimal number written as a string, e.g. \"0.01\"")
    try:
        number = to_decimal(value)
    except (TypeError, ValueError):
        raise ManualOrderError(f"{name} is not a number: {value!r}") from None
    if number <= 0:
        raise ManualOrderError(f"{name} must be positive, got {value}")
    return number

