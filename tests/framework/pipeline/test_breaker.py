"""CircuitBreaker driven by a fake clock: opening on a streak or on a rate, cool-down, one half-open trial."""

import pytest

from framework.pipeline.breaker import BreakerState, CircuitBreaker
from framework.pipeline.config import BreakerConfig


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


def make(clock, **overrides):
    changes = []
    config = BreakerConfig(**{"failure_threshold": 3, "cool_down_seconds": 5.0, "window_seconds": 10.0,
                              "min_calls_for_rate": 20, **overrides})
    breaker = CircuitBreaker("store", config, 5.0, clock=clock,
                             on_change=lambda name, old, new: changes.append((name, old, new)))
    return breaker, changes


def test_opens_after_consecutive_failures(clock):
    breaker, changes = make(clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow() is True
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow() is False
    assert breaker.opened_count == 1
    assert changes == [("store", BreakerState.CLOSED, BreakerState.OPEN)]


def test_a_success_breaks_the_streak(clock):
    breaker, _ = make(clock)
    for _ in range(10):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
        clock.now += 2  # spread over time so the error rate (2/3 per second) is judged too: min calls not reached
    assert breaker.state is BreakerState.CLOSED


def test_opens_on_error_rate_in_window(clock):
    breaker, _ = make(clock, failure_threshold=100)
    # 19 successes then 2 failures: 21 calls, 9.5 % > 5 %
    for _ in range(19):
        breaker.record_success()
        clock.now += 0.25
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED  # 1/20 = 5 %, not above
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 1


def test_rate_is_judged_from_min_calls_on(clock):
    breaker, _ = make(clock, failure_threshold=100)
    for _ in range(5):
        breaker.record_success()
    for _ in range(7):
        breaker.record_failure()
        breaker.record_success()
    assert breaker.as_dict()["window_calls"] == 19
    assert breaker.state is BreakerState.CLOSED  # 7 failures in 19 calls, but fewer than min_calls_for_rate
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN  # 8/20 = 40 % once 20 calls were seen


def test_old_calls_leave_the_window(clock):
    breaker, _ = make(clock, failure_threshold=100)
    for _ in range(2):
        breaker.record_failure()
    clock.now += 11  # the two failures are now out of the 10 s window
    for _ in range(19):
        breaker.record_success()
    assert breaker.as_dict()["window_calls"] == 19
    assert breaker.as_dict()["window_failures"] == 0
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED  # 1/20 = 5 %, the old failures forgotten


def test_stays_open_during_cool_down(clock):
    breaker, _ = make(clock)
    for _ in range(3):
        breaker.record_failure()
    for _ in range(49):
        clock.now += 0.1
        assert breaker.allow() is False
    assert breaker.state is BreakerState.OPEN


def test_half_open_lets_exactly_one_trial(clock):
    breaker, changes = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5.0
    assert breaker.allow() is True
    assert breaker.state is BreakerState.HALF_OPEN
    assert [breaker.allow() for _ in range(5)] == [False] * 5
    assert changes[-1] == ("store", BreakerState.OPEN, BreakerState.HALF_OPEN)


def test_trial_success_closes(clock):
    breaker, changes = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5.0
    assert breaker.allow() is True
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert [breaker.allow() for _ in range(3)] == [True] * 3
    assert [new for _, _, new in changes] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED  # the streak started again from zero


def test_trial_failure_reopens_with_a_fresh_cool_down(clock):
    breaker, _ = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 7.0
    assert breaker.allow() is True
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 2
    clock.now += 4.9
    assert breaker.allow() is False
    clock.now += 0.1
    assert breaker.allow() is True
    assert breaker.state is BreakerState.HALF_OPEN


def test_late_results_while_open_change_nothing(clock):
    breaker, _ = make(clock)
    for _ in range(3):
        breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 1


def test_as_dict_reports_state_and_counts(clock):
    breaker, _ = make(clock)
    breaker.record_success()
    breaker.record_failure()
    assert breaker.as_dict() == {"name": "store", "state": "closed", "opened_count": 0, "consecutive_failures": 1,
                                 "window_calls": 2, "window_failures": 1}
