"""tradesync: a strategy framework where every fill reaches its strategy and the store exactly once."""

from typing import Any

from loguru import logger

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

# A library's logging is the application's to turn on (loguru's convention): nothing of ours reaches a sink
# until `logger.enable("framework")` / `logger.enable("exchanges")`, which `framework.console.configure_console`
# does for our own programs. The trade sync log file is written either way (it has a logger of its own).
logger.disable("framework")
logger.disable("exchanges")

# Loaded on first use: the pool imports the venue packages, which import this package's errors and events.
_LAZY = {
    "BaseStrategy": "framework.strategy",
    "StrategyState": "framework.strategy",
    "ConnectionPool": "framework.pool",
    "get_connection_pool": "framework.pool",
    "initialize_connection_pool": "framework.pool",
    "shutdown_connection_pool": "framework.pool",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'framework' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AuthError",
    "BaseStrategy",
    "ConnectionPool",
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
    "StrategyState",
    "SubscriptionError",
    "Trade",
    "get_connection_pool",
    "initialize_connection_pool",
    "shutdown_connection_pool",
]
