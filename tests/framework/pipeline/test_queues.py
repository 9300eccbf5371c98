"""LaneQueues: each lane's overflow policy (coalesce, drop oldest, catch up, newest state per entity) and the
weighted order the lanes are served in."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.pipeline.channels import Channel, Lane
from framework.pipeline.queues import LaneQueues


def drain(queues: LaneQueues) -> list[tuple[Lane, tuple]]:
    taken = []
    while (item := queues.take()) is not None:
        taken.append(item)
    return taken


@given(updates=st.lists(st.tuples(st.sampled_from(["k1", "k2"]), st.sampled_from(["BTC", "ETH", "SOL"])),
                        max_size=60))
def test_high_lane_coalesces_to_exactly_the_newest_state_per_key_and_symbol(updates):
    queues = LaneQueues(max_size=10)
    for version, entity in enumerate(updates):
        queues.put(Lane.HIGH, Channel.BOOK, {"entity": entity, "version": version}, version, entity)

    newest: dict[tuple, int] = {}
    for version, entity in enumerate(updates):
        newest[entity] = version
    first_seen = list(dict.fromkeys(updates))  # a coalesced entity keeps its place in line
    taken = drain(queues)
    assert [(lane, item[1]) for lane, item in taken] == [
        (Lane.HIGH, {"entity": entity, "version": newest[entity]}) for entity in first_seen]
    counters = queues.counters[Lane.HIGH]
    assert counters.coalesced == len(updates) - len(newest)
    assert counters.enqueued == len(updates)
    assert counters.dropped == 0


def test_high_lane_past_its_bound_drops_the_stalest_entity_and_counts_it():
    queues = LaneQueues(max_size=3)
    for n in range(5):
        queues.put(Lane.HIGH, Channel.TICKER, n, n, ("k", f"S{n}"))
    assert [item[1] for _, item in drain(queues)] == [2, 3, 4]
    assert queues.counters[Lane.HIGH].dropped == 2
    assert queues.counters[Lane.HIGH].high_water == 3


@pytest.mark.parametrize("lane, channel", [(Lane.MEDIUM, Channel.OHLC), (Lane.MEDIUM, Channel.PUBLIC_TRADE),
                                           (Lane.LOW, Channel.HEARTBEAT), (Lane.LOW, Channel.CONNECTION)])
@pytest.mark.parametrize("published", [1, 10, 11, 250])
def test_medium_and_low_lanes_keep_the_newest_max_size_and_count_every_drop(lane, channel, published):
    queues = LaneQueues(max_size=10)
    for n in range(published):
        queues.put(lane, channel, n, n)
    assert [(taken_lane, item[1]) for taken_lane, item in drain(queues)] == [
        (lane, n) for n in range(max(0, published - 10), published)]
    assert queues.counters[lane].dropped == max(0, published - 10)
    assert queues.counters[lane].enqueued == published
    assert queues.counters[lane].high_water == min(published, 10)


@pytest.mark.parametrize("multiplier", [1.0, 2.0, 3.0, 4.0])
def test_full_lanes_are_served_in_the_ratio_multiplier_squared_to_multiplier_to_one(multiplier):
    weight = int(multiplier)
    cycle = weight * weight + weight + 1
    queues = LaneQueues(max_size=1000, priority_multiplier=multiplier)
    for n in range(1000):
        queues.put(Lane.HIGH, Channel.BOOK, n, n, ("k", n))
        queues.put(Lane.MEDIUM, Channel.OHLC, n, n)
        queues.put(Lane.LOW, Channel.METRICS, n, n)

    first = [queues.take()[0] for _ in range(10 * cycle)]
    assert Counter(first) == {Lane.HIGH: 10 * weight * weight, Lane.MEDIUM: 10 * weight, Lane.LOW: 10}
    # LOW is served long before HIGH is empty: within every cycle of the pattern
    assert first.index(Lane.LOW) < cycle
    assert len(queues.high) == 1000 - 10 * weight * weight


def test_an_empty_lane_gives_its_turns_to_the_others():
    queues = LaneQueues(max_size=100, priority_multiplier=2.0)
    for n in range(5):
        queues.put(Lane.LOW, Channel.ALERT, n, n)
    for n in range(3):
        queues.put(Lane.HIGH, Channel.BOOK, n, n, ("k", n))
    assert [lane for lane, _ in drain(queues)] == [Lane.HIGH] * 3 + [Lane.LOW] * 5


def test_critical_is_served_before_any_other_lane_whatever_the_turn():
    queues = LaneQueues(max_size=100)
    for n in range(50):
        queues.put(Lane.HIGH, Channel.BOOK, n, n, ("k", n))
        queues.put(Lane.LOW, Channel.HEARTBEAT, n, n)
    queues.take()
    queues.take()
    queues.put(Lane.CRITICAL, Channel.TRADE, "fill", 0)
    assert queues.take() == (Lane.CRITICAL, (Channel.TRADE, "fill", 0))


def test_fills_past_the_critical_bound_are_not_queued_but_mark_the_consumer_lagging():
    queues = LaneQueues(max_size=3)
    for n in range(5):
        queues.put(Lane.CRITICAL, Channel.TRADE, n, n)
    assert queues.lagging is True
    assert queues.counters[Lane.CRITICAL].overflowed == 2
    # once lagging, later fills also wait for the catch-up (never ahead of the ones it will read)
    drain(queues)
    queues.put(Lane.CRITICAL, Channel.TRADE, 5, 5)
    assert queues.counters[Lane.CRITICAL].overflowed == 3
    assert len(queues.critical) == 0


def test_order_states_past_the_critical_bound_keep_the_newest_per_order_in_order():
    queues = LaneQueues(max_size=3)
    sequence = [("A", 1), ("B", 1), ("A", 2), ("C", 1), ("B", 2), ("A", 3), ("C", 2)]
    for n, (order, version) in enumerate(sequence):
        queues.put(Lane.CRITICAL, Channel.ORDER_UPDATE, (order, version), n, order)
    taken = [item[1] for _, item in drain(queues)]
    assert taken == [("A", 1), ("B", 1), ("A", 2), ("B", 2), ("A", 3), ("C", 2)]
    for order in "ABC":  # per order: in order, ending with its newest state
        versions = [v for o, v in taken if o == order]
        assert versions == sorted(versions) and versions[-1] == max(v for o, v in sequence if o == order)
    assert queues.counters[Lane.CRITICAL].coalesced == 1
    assert queues.lagging is False and queues.states_behind is None


def test_order_states_past_max_size_orders_aside_are_left_to_the_store_from_the_earliest_time():
    class State:
        def __init__(self, order, timestamp):
            self.order, self.timestamp = order, timestamp

    queues = LaneQueues(max_size=2)
    for n, order in enumerate("ABCDE"):  # A, B fill the queue; C, D are kept aside; E is past the bound
        queues.put(Lane.CRITICAL, Channel.ORDER_UPDATE, State(order, 1000 + n), n, order)
    queues.put(Lane.CRITICAL, Channel.ORDER_UPDATE, State("C", 900), 9, "C")  # the store has it now
    assert queues.states_behind == 900
    assert [item[1].order for _, item in drain(queues)] == ["A", "B", "C", "D"]
    assert queues.counters[Lane.CRITICAL].overflowed == 2 and queues.counters[Lane.CRITICAL].coalesced == 0
