"""The narrow interface a connection publishes through: events, dead letters, lifecycle and gap notices, backpressure.

Connections know only this; the pool hands each one a sink of the event pipeline for its key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol, Sequence

import attrs

from framework.events import ConnectionKey, Event


class Notice(StrEnum):
    LIVE = "live"  # a session is logged in and subscribed (events flow from here on)
    DROPPED = "dropped"  # the live session ended; a reconnect is under way
    SYMBOLS = "symbols"  # a strategy with symbols of its own joined the key


@attrs.frozen(kw_only=True)
class GapNotice:
    """What the backfill scheduler needs to know of a stream: its sessions and where a gap began."""

    kind: Notice
    session: int  # the live session number this is about (1 = the first)
    gap_since: int | None = None  # LIVE after a drop: when the previous session was lost (ms)


class EventSink(Protocol):
    key: ConnectionKey

    def publish(self, events: Sequence[Event]) -> tuple[int, int]:
        """Hand ready events on; returns (events taken, dead letters written for insane ones). Never blocks."""

    def dead_letter(self, raw: Any, error: str) -> None:
        """Keep a frame or row that could not be read, with its error."""

    def status(self, status: str, **fields: Any) -> None:
        """A lifecycle change of the connection (connected, reconnecting, closed, failed, listen_key_kept…)."""

    def notice(self, notice: GapNotice) -> None:
        """A session went live or dropped: the backfill scheduler fills gaps from these."""

    @property
    def congested(self) -> bool:
        """True while the store writer is past its high-water mark: a socket reader should `await room()`."""

    async def room(self) -> None:
        """Wait until the store writer has room again."""

    def open_positions(self) -> tuple:
        """The key's positions held open now (the newest state of each, from the stream and REST snapshots)."""
