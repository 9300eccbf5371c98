"""The bus's channels and the priority lane each one rides in (the lane fixes its overflow policy)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Lane(IntEnum):
    """Served in this order: a lower value is never behind a higher one."""

    CRITICAL = 0  # never dropped: fills catch up from the store, state updates keep their newest per entity
    HIGH = 1  # coalesced to the newest per (key, symbol)
    MEDIUM = 2  # bounded, oldest dropped (counted)
    LOW = 3  # bounded, oldest dropped (counted)


class Channel(StrEnum):
    TRADE = "trade"
    ORDER_UPDATE = "order_update"
    EXECUTION = "execution"  # order entry: every ack, fill and final state of an order placed here
    BALANCE = "balance"
    POSITION = "position"
    TICKER = "ticker"
    BOOK = "book"
    OHLC = "ohlc"
    PUBLIC_TRADE = "public_trade"
    CONNECTION = "connection"
    HEARTBEAT = "heartbeat"
    ALERT = "alert"
    METRICS = "metrics"


LANE_OF: dict[Channel, Lane] = {
    Channel.TRADE: Lane.CRITICAL,
    Channel.ORDER_UPDATE: Lane.CRITICAL,
    Channel.EXECUTION: Lane.CRITICAL,
    Channel.BALANCE: Lane.CRITICAL,
    Channel.POSITION: Lane.CRITICAL,
    Channel.TICKER: Lane.HIGH,
    Channel.BOOK: Lane.HIGH,
    Channel.OHLC: Lane.MEDIUM,
    Channel.PUBLIC_TRADE: Lane.MEDIUM,
    Channel.CONNECTION: Lane.LOW,
    Channel.HEARTBEAT: Lane.LOW,
    Channel.ALERT: Lane.LOW,
    Channel.METRICS: Lane.LOW,
}


def channel_named(name: str) -> Channel:
    """A channel from its name; a ValueError lists the names there are."""
    try:
        return Channel(name)
    except ValueError:
        raise ValueError(f"unknown channel {name!r}: use one of {', '.join(c.value for c in Channel)}") from None
