"""The one exception tree of the framework: what failed, and whether a retry can help."""

from __future__ import annotations

from typing import Any

from framework.sync_log import redact


class FrameworkError(Exception):
    """Base of every error the framework raises on purpose."""


class ConfigError(FrameworkError):
    """Bad or missing configuration or credentials: fail fast, never retried."""


class LifecycleError(FrameworkError):
    """An object was asked to make a transition its current state does not allow."""


class StoreError(FrameworkError):
    """The trade store could not read or write. `transient`: the store is unreachable (retry later),
    else the data itself was refused (retrying cannot help)."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class ExchangeError(FrameworkError):
    """Something a venue (or its stream) did; carries the venue's name."""

    def __init__(self, exchange: str, message: str) -> None:
        super().__init__(f"{exchange}: {redact(message)}")  # no signature, signed URL or listenKey in it
        self.exchange = exchange


class AuthError(ExchangeError):
    """The venue refused our credentials or signature: never retried."""


class SubscriptionError(ExchangeError):
    """The venue refused a subscription."""


class ConnectionLost(ExchangeError):
    """The socket closed or went silent: reconnect and backfill."""


class RateLimited(ExchangeError):
    """The venue asked us to slow down."""

    def __init__(self, exchange: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(exchange, message)
        self.retry_after = retry_after


class NormalizeError(FrameworkError):
    """A frame could not be turned into events; it is kept with this error, the stream goes on."""

    def __init__(self, message: str, raw: Any = None) -> None:
        super().__init__(message)
        self.raw = raw
