"""A consumer's bounded queues, one per lane, each with its overflow policy, and the order they are served in.

CRITICAL is served first, always. HIGH, MEDIUM and LOW share what is left by weight (`priority_multiplier`
squared, `priority_multiplier`, 1), so a flood of HIGH traffic cannot starve LOW forever.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any, Hashable, Sequence

from framework.pipeline.channels import Channel, Lane

Item = tuple[Channel, Any, int]  # (channel, event, enqueued at: perf_counter_ns)


class LaneCounters:
    """Counts of one lane of one consumer (the monitor reads them; the bus writes them on the hot path)."""

    __slots__ = ("enqueued", "handled", "dropped", "coalesced", "overflowed", "high_water")

    def __init__(self) -> None:
        self.enqueued = 0  # put into the queue
        self.handled = 0  # taken by the consumer and handled (or failed)
        self.dropped = 0  # MEDIUM/LOW: pushed out by newer ones; HIGH: a (key, symbol) pushed out past the bound
        self.coalesced = 0  # replaced by a newer state of the same entity before the consumer took it
        self.overflowed = 0  # CRITICAL fills that did not fit: read back from the store instead (never lost)
        self.high_water = 0  # the deepest the queue has been


class LaneQueues:
    """Bounded per lane (`max_size` each). Overflow: CRITICAL fills set `lagging` (the consumer reads them
    back from the store, by seq), CRITICAL state updates (orders, balances, positions) keep the newest per
    entity for up to `max_size` entities, then set `states_behind` (read back from the store); HIGH coalesces to the newest per (key, symbol); MEDIUM and LOW drop their oldest. Counted."""

    def __init__(self, max_size: int, priority_multiplier: float = 2.0,
                 counters: Sequence[LaneCounters] | None = None) -> None:
        self.max_size = max_size
        self.counters = list(counters) if counters is not None else [LaneCounters() for _ in Lane]
        self.critical: deque[Item] = deque()
        self.state_overflow: OrderedDict[Hashable, Item] = OrderedDict()  # CRITICAL states beyond the bound
        self.lagging = False  # a fill did not fit: the consumer must read fills from the store
        # States did not fit either (max_size entities kept aside): the venue time of the earliest one not kept;
        # the consumer reads the latest states since then back from the store.
        self.states_behind: int | None = None
        self.high: OrderedDict[Hashable, Item] = OrderedDict()
        self.medium: deque[Item] = deque()
        self.low: deque[Item] = deque()
        weight = max(1, round(priority_multiplier))
        self._pattern = [Lane.HIGH] * (weight * weight) + [Lane.MEDIUM] * weight + [Lane.LOW]
        self._turn = 0

    def __len__(self) -> int:
        return (len(self.critical) + len(self.state_overflow) + len(self.high) + len(self.medium)
                + len(self.low))

    def depth(self) -> dict[Lane, int]:
        return {Lane.CRITICAL: len(self.critical) + len(self.state_overflow), Lane.HIGH: len(self.high),
                Lane.MEDIUM: len(self.medium), Lane.LOW: len(self.low)}

    def put(self, lane: Lane, channel: Channel, event: Any, enqueued_ns: int, entity: Hashable = None) -> None:
        """Queue one event. `entity` names what a state update is about: (key, symbol) for HIGH, the order
        (or asset, or position) for a CRITICAL state."""
        counters = self.counters[lane]
        counters.enqueued += 1
        item = (channel, event, enqueued_ns)
        if lane is Lane.CRITICAL:
            queue = self.critical
            if channel is Channel.TRADE:
                if self.lagging or len(queue) >= self.max_size:
                    self.lagging = True  # stored already: read back from the store, in order, never lost
                    counters.overflowed += 1
                    return
            elif self.state_overflow or self.states_behind is not None or len(queue) >= self.max_size:
                overflow = self.state_overflow  # behind what overflowed before it: states keep their order
                if self.states_behind is not None:  # past the bound: the store has the latest state
                    self.states_behind = min(self.states_behind, getattr(event, "timestamp", 0))
                    counters.overflowed += 1
                elif entity in overflow:
                    counters.coalesced += 1
                    del overflow[entity]
                    overflow[entity] = item
                elif len(overflow) < self.max_size:
                    overflow[entity] = item
                else:
                    self.states_behind = getattr(event, "timestamp", 0)
                    counters.overflowed += 1
                return
            queue.append(item)
            if len(queue) > counters.high_water:
                counters.high_water = len(queue)
            return
        if lane is Lane.HIGH:
            high = self.high
            if high.setdefault(entity, item) is not item:  # one lookup when it is new
                counters.coalesced += 1
                high[entity] = item  # keeps its place in line, carries the newest state
                return
            size = len(high)
            if size > self.max_size:
                high.popitem(last=False)  # the oldest entity (never the one just added: max_size >= 1)
                counters.dropped += 1
                size -= 1
            if size > counters.high_water:
                counters.high_water = size
            return
        queue = self.medium if lane is Lane.MEDIUM else self.low
        if len(queue) >= self.max_size:
            queue.popleft()
            counters.dropped += 1
        queue.append(item)
        if len(queue) > counters.high_water:
            counters.high_water = len(queue)

    def take(self) -> tuple[Lane, Item] | None:
        """The next item to handle: CRITICAL first, then the other lanes by weight; None when all are empty."""
        if self.critical:
            return Lane.CRITICAL, self.critical.popleft()
        if self.state_overflow:
            return Lane.CRITICAL, self.state_overflow.popitem(last=False)[1]
        if not (self.high or self.medium or self.low):
            return None
        pattern, count = self._pattern, len(self._pattern)
        for _ in range(count):
            lane = pattern[self._turn]
            self._turn = (self._turn + 1) % count
            if lane is Lane.HIGH and self.high:
                return lane, self.high.popitem(last=False)[1]
            if lane is Lane.MEDIUM and self.medium:
                return lane, self.medium.popleft()
            if lane is Lane.LOW and self.low:
                return lane, self.low.popleft()
        return None  # unreachable: some lane is non-empty and every lane is in the pattern

    def clear(self) -> None:
        self.critical.clear()
        self.state_overflow.clear()
        self.high.clear()
        self.medium.clear()
        self.low.clear()
