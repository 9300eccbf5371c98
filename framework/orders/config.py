"""Order entry settings (`WebSocketTradingConfig`), each with a default and a one-line error naming it when bad."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from framework.errors import ConfigError


def _positive(name: str):
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"WebSocketTradingConfig.{name} must be a positive number, got {value!r}")
    return check


def _count(name: str):
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"WebSocketTradingConfig.{name} must be a whole number ≥ 0, got {value!r}")
    return check


def _notional(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float) or isinstance(value, bool):
        raise ConfigError(f"WebSocketTradingConfig.max_notional_per_strategy must be a str, int or Decimal "
                          f"(exact), got {value!r}")
    try:
        amount = Decimal(value)
    except Exception:  # noqa: BLE001 - any unreadable value gets the same message
        raise ConfigError(f"WebSocketTradingConfig.max_notional_per_strategy is not a number: {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ConfigError(f"WebSocketTradingConfig.max_notional_per_strategy must be positive, got {value!r}")
    return amount


@attrs.frozen(kw_only=True)
class WebSocketTradingConfig:
    """How orders go out. Defaults suit a live venue; the simulator runs with them as they are."""

    enabled: bool = True  # False: order entry refused (a strategy calling place_order gets a clear error)
    prefer_websocket: bool = True  # False: REST for every order until set back
    max_concurrent_orders: int = attrs.field(default=10, validator=_positive("max_concurrent_orders"))
    order_timeout_seconds: float = attrs.field(default=60.0, validator=_positive("order_timeout_seconds"))
    ack_timeout_seconds: float = attrs.field(default=5.0, validator=_positive("ack_timeout_seconds"))
    # Seconds an acked order may go without the private stream confirming it before it is queried.
    confirm_timeout_seconds: float = attrs.field(default=5.0, validator=_positive("confirm_timeout_seconds"))
    auto_fallback_on_failure: bool = True  # REST when the WebSocket cannot take a request (never after a rejection)
    websocket_retry_attempts: int = attrs.field(default=3, validator=_count("websocket_retry_attempts"))
    performance_monitoring: bool = True  # latency samples for get_metrics()
    max_notional_per_strategy: Decimal | None = attrs.field(default=None, converter=_notional)  # price × amount
    # Venues whose WebSocket trading is granted per account (Bitget): used only when named here.
    websocket_opt_in: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    rest_rate: float | None = None  # REST requests a second per key (None: the venue's own limits)
    clock_skew_ms: int = attrs.field(default=1000, validator=_count("clock_skew_ms"))  # our clock vs the venue's
