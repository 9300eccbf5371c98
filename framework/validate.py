"""What of a frame can be trusted: each event's values (pure, the clock passed in), and the rows normalize refused.

A poisoned fill or a row no market can hold becomes a dead letter with its reason, never a row, never silence.
"""

from __future__ import annotations

import json

import attrs

from framework.account import BalanceUpdate, PositionUpdate, account_problem
from framework.errors import NormalizeError
from framework.events import Event, OrderUpdate, Trade

EARLIEST_MS = 1_262_304_000_000  # 2010-01-01T00:00:00Z: no venue we read traded before
FUTURE_TOLERANCE_MS = 10 * 60 * 1000  # a clock this far ahead of ours is not skew: the stamp is poisoned


def problem(event: Event, now_ms: int, future_tolerance_ms: int = FUTURE_TOLERANCE_MS) -> str | None:
    """Why `event` cannot be trusted, in one line; None when its values are sane.

    A fill needs a timestamp in 2010-01-01 .. now + tolerance, a positive amount and no negative price or
    cost (a fee may be negative: a rebate). An order update needs that timestamp range and no negative
    amount or filled (an amount of 0 is a spot market buy sized in quote coin, before it fills).
    """
    stamp = event.timestamp
    if not EARLIEST_MS <= stamp <= now_ms + future_tolerance_ms:
        return f"timestamp {stamp} is outside 2010-01-01 .. now+{_duration(future_tolerance_ms)}"
    if isinstance(event, Trade):
        if event.amount <= 0:
            return f"amount {event.amount} is not positive"
        if event.price < 0:
            return f"price {event.price} is negative"
        if event.cost < 0:
            return f"cost {event.cost} is negative"
    elif isinstance(event, OrderUpdate):
        if event.amount < 0:
            return f"amount {event.amount} is negative"
        if event.filled < 0:
            return f"filled {event.filled} is negative"
    elif isinstance(event, (BalanceUpdate, PositionUpdate)):
        return account_problem(event, now_ms, EARLIEST_MS, future_tolerance_ms)
    return None


def _duration(ms: int) -> str:
    if ms % 60_000 == 0:
        return f"{ms // 60_000}min"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def as_raw(event: Event) -> object:
    """What a rejected event is kept as: the venue's own frame when it has one, else its fields as JSON text."""
    if event.raw is not None:
        return event.raw
    fields = event.to_dict() if isinstance(event, Trade) else attrs.asdict(event, filter=lambda a, _: a.name != "raw")
    return json.dumps(fields, default=str, separators=(",", ":"))


class RowsRejected(NormalizeError):
    """Some rows of a frame cannot be recorded (an unknown market, a symbol not knowable offline), the others can.

    `events` are the good rows' events; `rejected` is one (frame holding that row alone, reason) per bad row,
    so each is kept as its own dead letter and replays by itself after a fix. A caller that knows only
    NormalizeError keeps the whole frame instead: nothing is lost either way.
    """

    def __init__(self, events: list[Event], rejected: list[tuple[object, str]], raw: object = None) -> None:
        reasons = "; ".join(reason for _, reason in rejected)
        super().__init__(f"{len(rejected)} row(s) not recorded: {reasons}", raw=raw)
        self.events = events
        self.rejected = rejected
