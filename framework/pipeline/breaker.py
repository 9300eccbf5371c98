"""`CircuitBreaker`: one consumer's closed → open → half-open state, checked synchronously per event.

Our own, not pybreaker/aiobreaker/purgatory/circuitbreaker: those wrap calls (decorator or context
manager), count consecutive failures only (no error rate over a window) and read the wall clock; the bus
needs a bare `allow()` on its hot path, rate-or-streak opening and an injected clock."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Callable

from framework.pipeline.config import BreakerConfig


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN


class CircuitBreaker:
    """Closed: every call allowed; opens after `failure_threshold` failures in a row or when failures/calls
    over the last `window_seconds` (one-second buckets) exceed `max_error_rate_percent` with at least
    `min_calls_for_rate` calls. Open: `allow()` is False until `cool_down_seconds` passed, then the breaker is
    half-open and `allow()` is True exactly once; the trial's success closes it, its failure opens it again
    for a fresh cool-down. `on_change(name, old, new)` is called on every transition."""

    __slots__ = (
        "name", "_threshold", "_cool_down", "_rate", "_min_calls", "_clock", "state", "opened_count",
        "on_change", "_streak", "_opened_at", "_trial_out", "_buckets", "_calls", "_failures", "_bucket_s",
        "_window_calls", "_window_failures",
    )

    def __init__(self, name: str, config: BreakerConfig, max_error_rate_percent: float,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[str, BreakerState, BreakerState], None] | None = None) -> None:
        self.name = name
        self._threshold = config.failure_threshold
        self._cool_down = config.cool_down_seconds
        self._rate = float(max_error_rate_percent) / 100.0
        self._min_calls = config.min_calls_for_rate
        self._clock = clock
        self.on_change = on_change
        self.state = _CLOSED
        self.opened_count = 0
        self._streak = 0
        self._opened_at = 0.0
        self._trial_out = False
        n = max(1, int(config.window_seconds))
        self._buckets = n
        self._calls = [0] * n  # calls per second, ring indexed by int(second) % n
        self._failures = [0] * n
        self._bucket_s = [-1] * n  # the second each slot holds
        self._window_calls = 0  # sums over the live slots, kept in step
        self._window_failures = 0

    def allow(self) -> bool:
        """May the next event go to the consumer? Cheap when closed (one attribute compare)."""
        state = self.state
        if state is _CLOSED:
            return True
        if state is _OPEN:
            if self._clock() - self._opened_at < self._cool_down:
                return False
            self._move(_HALF_OPEN)
            self._trial_out = True
            return True
        if self._trial_out:  # half-open with the one trial still running
            return False
        self._trial_out = True
        return True

    def record_success(self) -> None:
        state = self.state
        if state is _HALF_OPEN:
            self._close()
            return
        if state is _OPEN:
            return  # a late result of a call let through before opening
        self._streak = 0
        self._count(False)

    def record_failure(self) -> None:
        state = self.state
        if state is _HALF_OPEN:
            self._open()
            return
        if state is _OPEN:
            return  # a late result of a call let through before opening
        self._streak += 1
        self._count(True)
        if self._streak >= self._threshold:
            self._open()
        elif self._window_calls >= self._min_calls and self._window_failures > self._rate * self._window_calls:
            self._open()

    def reset(self) -> None:
        """Closed, with no memory of earlier calls (`opened_count` kept)."""
        self._close()

    def as_dict(self) -> dict[str, Any]:
        self._expire(int(self._clock()))
        return {
            "name": self.name,
            "state": self.state.value,
            "opened_count": self.opened_count,
            "consecutive_failures": self._streak,
            "window_calls": self._window_calls,
            "window_failures": self._window_failures,
        }

    def _count(self, failed: bool) -> None:
        second = int(self._clock())
        slot = second % self._buckets
        if self._bucket_s[slot] != second:
            self._expire(second)
            self._bucket_s[slot] = second
        self._calls[slot] += 1
        self._window_calls += 1
        if failed:
            self._failures[slot] += 1
            self._window_failures += 1

    def _expire(self, second: int) -> None:
        """Empty the slots that fell out of the window (at most one pass over `window_seconds` slots)."""
        oldest = second - self._buckets
        for slot in range(self._buckets):
            if self._bucket_s[slot] != -1 and self._bucket_s[slot] <= oldest:
                self._window_calls -= self._calls[slot]
                self._window_failures -= self._failures[slot]
                self._calls[slot] = self._failures[slot] = 0
                self._bucket_s[slot] = -1

    def _clear_window(self) -> None:
        self._streak = 0
        self._calls = [0] * self._buckets
        self._failures = [0] * self._buckets
        self._bucket_s = [-1] * self._buckets
        self._window_calls = self._window_failures = 0

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._trial_out = False
        self.opened_count += 1
        self._clear_window()
        self._move(_OPEN)

    def _close(self) -> None:
        self._trial_out = False
        self._clear_window()
        self._move(_CLOSED)

    def _move(self, new: BreakerState) -> None:
        old = self.state
        self.state = new
        if old is not new and self.on_change is not None:
            self.on_change(self.name, old, new)
