"""tradesync: a strategy framework where every fill reaches its strategy and the store exactly once."""

from framework.errors import (
    AuthError,
    ConfigError,
    ConnectionLost,
    ExchangeError,
    FrameworkError,
    LifecycleError,
    NormalizeError,
    RateLimited,
    StoreError,
    SubscriptionError,
)
from framework.events import (
    ConnectionKey,
    EventType,
    Market,
    OrderStatus,
    OrderUpdate,
    Side,
    Trade,
)

__all__ = [
    "AuthError",
    "ConfigError",
    "ConnectionKey",
    "ConnectionLost",
    "EventType",
    "ExchangeError",
    "FrameworkError",
    "LifecycleError",
    "Market",
    "NormalizeError",
    "OrderStatus",
    "OrderUpdate",
    "RateLimited",
    "Side",
    "StoreError",
    "SubscriptionError",
    "Trade",
]
