"""A connection's life as the pool sees it: status, counters, and frames turned into events."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Callable, Iterable

import attrs
from loguru import logger

from framework.errors import NormalizeError
from framework.events import ConnectionKey, Event, Market, now_ms

if TYPE_CHECKING:
    from framework.pool import ConnectionPool


class ConnectionStatus(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"
    FAILED = "failed"


def decode_frame(frame: str | bytes) -> Any:
    """A text frame as JSON with exact decimals (numbers keep their text); bytes stay bytes."""
    if isinstance(frame, (bytes, bytearray)):
        return bytes(frame)
    try:
        return json.loads(frame, parse_float=Decimal)
    except ValueError:
        return frame  # venues with plain-text frames ("pong")


class BaseConnection:
    """What every connection shares: status for `get_connection_status()`, and the frame → event path.

    Subclasses open (or simulate) the socket in `_open()` and close it in `_close()`; every frame
    they read goes through `on_frame()`, every ready event through `emit()`.
    """

    def __init__(
        self,
        key: ConnectionKey,
        pool: ConnectionPool,
        normalize: Callable[[Any, Market], list[Event]],
    ) -> None:
        self.key = key
        self.pool = pool
        self._normalize = normalize
        self._log = logger.bind(key=str(key))
        self.status = ConnectionStatus.CREATED
        self.error: str | None = None
        self.opened_at: int | None = None
        self.last_message: int | None = None
        self.messages = 0
        self.events = 0
        self.malformed = 0
        self.reconnects = 0

    async def start(self) -> None:
        if self.status in (ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED):
            return
        self._set_status(ConnectionStatus.CONNECTING)
        try:
            await self._open()
        except BaseException as exc:
            self.error = str(exc)
            self._set_status(ConnectionStatus.FAILED, error=str(exc))
            raise
        self.opened_at = now_ms()
        self._set_status(ConnectionStatus.CONNECTED)

    async def stop(self) -> None:
        if self.status in (ConnectionStatus.CLOSED, ConnectionStatus.CREATED):
            self.status = ConnectionStatus.CLOSED
            return
        try:
            await self._close()
        finally:
            self._set_status(ConnectionStatus.CLOSED)

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    def _set_status(self, status: ConnectionStatus, **fields: Any) -> None:
        self.status = status
        self.pool.sync_log.connection(str(self.key), status.value, **fields)

    def on_frame(self, frame: Any, received_at: int | None = None) -> None:
        """A raw frame (decoded JSON or bytes) from the venue: normalize and emit, or keep as dead letter."""
        self.messages += 1
        self.last_message = received_at or now_ms()
        try:
            events = self._normalize(frame, self.key.market)
        except NormalizeError as exc:
            self.malformed += 1
            self._log.bind(error=str(exc)).warning("malformed frame kept as dead letter")
            self.pool.dead_letter(self.key, frame, str(exc))
            return
        if events:
            self.emit(self._for_account(events))

    def _for_account(self, events: list[Event]) -> Iterable[Event]:
        if self.key.account == "default":
            return events
        return [attrs.evolve(e, account=self.key.account) for e in events]

    def emit(self, events: Iterable[Event]) -> None:
        count = self.pool.dispatch(self.key, events)
        self.events += count

    def status_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "error": self.error,
            "opened_at": self.opened_at,
            "last_message": self.last_message,
            "messages": self.messages,
            "events": self.events,
            "malformed": self.malformed,
            "reconnects": self.reconnects,
        }
