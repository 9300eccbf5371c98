"""Monitor: true numbers in the report, alerts that fire once and resolve once per transition (fake clock,
counters set by hand, a fake RSS), JSON export, restart, health."""

import asyncio
import json

import attrs
import pytest

from framework.errors import ConfigError
from framework.pipeline.breaker import BreakerState, CircuitBreaker
from framework.pipeline.channels import Channel, Lane
from framework.pipeline.config import BASIC, AlertConfig, PerformanceConfig, PipelineConfig
from framework.pipeline.monitor import Alert, Monitor

MB = 1_048_576


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Depths:
    """A consumer's queue sizes, set by the test."""

    def __init__(self) -> None:
        self.now = {lane: 0 for lane in Lane}

    def __call__(self) -> dict:
        return dict(self.now)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def rss():
    return {"bytes": 50 * MB}


@pytest.fixture
def monitor(clock, rss):
    return Monitor(PipelineConfig(), clock=clock, rss_bytes=lambda: rss["bytes"], wall_ms=lambda: 1_700_000_000_000)


def transitions(alerts):
    return [(a.name, a.scope, a.severity, a.state) for a in alerts]


def handle(stats, lane, n, latency_ms=1.0):
    for _ in range(n):
        stats.lanes[lane].enqueued += 1
        stats.lanes[lane].record(int(latency_ms * 1_000_000))


def test_report_has_true_latency_percentiles(monitor):
    stats = monitor.consumer("s1", "strategy", Depths())
    for ms in range(1, 101):  # 1 ms … 100 ms
        stats.lanes[Lane.CRITICAL].record(ms * 1_000_000)
    report = monitor.get_performance_report()
    latency = report["consumers"]["s1"]["lanes"]["critical"]["latency_ms"]
    assert latency["count"] == 100
    assert latency["p50"] == pytest.approx(50.0, rel=0.01)
    assert latency["p90"] == pytest.approx(90.0, rel=0.01)
    assert latency["p99"] == pytest.approx(99.0, rel=0.01)
    assert latency["max"] == pytest.approx(100.0, rel=0.01)
    assert report["latency_ms"]["critical"] == latency
    assert report["consumers"]["s1"]["latency_ms"] == latency
    assert report["latency_ms"]["low"]["count"] == 0


def test_latency_survives_an_alert_check(monitor):
    stats = monitor.consumer("s1", "strategy", Depths())
    handle(stats, Lane.HIGH, 10, latency_ms=2.0)
    monitor.check_alerts()
    handle(stats, Lane.HIGH, 10, latency_ms=4.0)
    latency = monitor.get_performance_report()["consumers"]["s1"]["lanes"]["high"]["latency_ms"]
    assert latency["count"] == 20
    assert latency["max"] == pytest.approx(4.0, rel=0.01)
    assert latency["p50"] == pytest.approx(2.0, rel=0.01)


def test_report_counts_and_rates(monitor, clock, rss):
    depths = Depths()
    store = monitor.consumer("store", "store", depths)
    strategy = monitor.consumer("s1", "strategy", Depths())
    monitor.published[Channel.TRADE] += 30
    monitor.published[Channel.TICKER] += 70
    monitor.invalid += 2
    monitor.duplicates += 3
    handle(store, Lane.CRITICAL, 30)
    handle(strategy, Lane.CRITICAL, 30)
    strategy.lanes[Lane.HIGH].enqueued += 70
    strategy.lanes[Lane.HIGH].coalesced += 20
    handle(strategy, Lane.HIGH, 40)
    strategy.lanes[Lane.HIGH].enqueued -= 40  # handle() counted them once more
    strategy.lanes[Lane.HIGH].dropped += 7
    strategy.lanes[Lane.CRITICAL].errors += 3
    strategy.timeouts += 1
    strategy.dead_letters += 2
    strategy.lanes[Lane.HIGH].note_depth(12)
    depths.now[Lane.CRITICAL] = 4
    rss["bytes"] = 123 * MB
    clock.now += 10

    report = monitor.get_performance_report()
    assert report["uptime_seconds"] == 10
    assert report["published"]["total"] == 100
    assert report["published"]["per_channel"]["trade"] == 30
    assert report["invalid"] == 2 and report["duplicates"] == 3
    assert report["throughput_msgs_per_sec"]["overall"] == 10.0
    assert report["throughput_msgs_per_sec"]["per_channel"]["ticker"] == 7.0
    assert report["throughput_msgs_per_sec"]["per_consumer"] == {"store": 3.0, "s1": 7.0}
    assert report["memory"]["rss_mb"] == 123.0
    s1 = report["consumers"]["s1"]
    assert (s1["kind"], s1["enqueued"], s1["handled"], s1["errors"], s1["timeouts"], s1["dead_letters"]) == (
        "strategy", 100, 70, 4, 1, 2)
    assert s1["error_rate_percent"] == pytest.approx(100 * 4 / 70)
    assert (s1["dropped"], s1["coalesced"]) == (7, 20)
    assert s1["drop_rate_percent"] == pytest.approx(7.0)
    assert s1["lanes"]["high"]["high_water"] == 12
    assert report["queues"] == {"store": {"size": 4, "high_water": 4}, "s1": {"size": 0, "high_water": 12}}
    assert report["totals"] == {"enqueued": 130, "handled": 100, "errors": 4, "timeouts": 1, "dropped": 7,
                                "coalesced": 20, "dead_letters": 2, "error_rate_percent": 4.0,
                                "drop_rate_percent": pytest.approx(100 * 7 / 130)}
    assert report["breakers"] == {}
    assert report["alerts"] == []
    assert report["healthy"] is True


def test_report_without_latency_tracking_has_no_histograms(clock):
    monitor = Monitor(BASIC, clock=clock, rss_bytes=lambda: MB)
    stats = monitor.consumer("s1", "strategy", Depths())
    stats.lanes[Lane.CRITICAL].record(5_000_000)
    report = monitor.get_performance_report()
    assert stats.lanes[Lane.CRITICAL].histogram is None
    assert report["consumers"]["s1"]["handled"] == 1
    assert report["consumers"]["s1"]["latency_ms"] is None
    assert report["latency_ms"]["critical"] is None


def test_export_writes_the_report_as_json(monitor, tmp_path):
    stats = monitor.consumer("s1", "strategy", Depths())
    handle(stats, Lane.CRITICAL, 3)
    path = monitor.export_performance_data(tmp_path / "out" / "perf.json")
    assert path == tmp_path / "out" / "perf.json"
    data = json.loads(path.read_text())
    assert data["consumers"]["s1"]["handled"] == 3
    assert data == json.loads(json.dumps(monitor.get_performance_report()))
    assert [p.name for p in path.parent.iterdir()] == ["perf.json"]  # no temp file left


def test_consumer_registration_is_idempotent_and_kind_checked(monitor):
    first = monitor.consumer("s1", "strategy", Depths())
    first.lanes[Lane.LOW].enqueued = 5
    again = monitor.consumer("s1", "strategy", Depths())
    assert again is first and again.lanes[Lane.LOW].enqueued == 5
    with pytest.raises(ConfigError, match="consumer 'x' has kind 'robot': use one of store, strategy, component"):
        monitor.consumer("x", "robot", Depths())
    monitor.remove_consumer("s1")
    monitor.remove_consumer("s1")
    assert monitor.get_performance_report()["consumers"] == {}


def test_restart_zeroes_in_place_and_keeps_registrations(monitor, clock, rss):
    stats = monitor.consumer("s1", "strategy", Depths())
    lane = stats.lanes[Lane.CRITICAL]
    handle(stats, Lane.CRITICAL, 5, latency_ms=80)
    lane.dropped, lane.errors, lane.high_water = 1, 2, 9
    stats.dead_letters = 3
    monitor.published[Channel.TRADE] = 5
    monitor.invalid = 1
    rss["bytes"] = 900 * MB
    assert monitor.check_alerts()
    clock.now += 20
    monitor.restart()
    assert monitor.consumers["s1"] is stats and stats.lanes[Lane.CRITICAL] is lane
    assert monitor.active_alerts == {}
    report = monitor.get_performance_report()
    assert report["uptime_seconds"] == 0
    assert report["published"]["total"] == 0 and report["invalid"] == 0
    assert report["totals"] == {"enqueued": 0, "handled": 0, "errors": 0, "timeouts": 0, "dropped": 0,
                                "coalesced": 0, "dead_letters": 0, "error_rate_percent": 0.0,
                                "drop_rate_percent": 0.0}
    assert report["consumers"]["s1"]["lanes"]["critical"]["high_water"] == 0
    assert report["consumers"]["s1"]["lanes"]["critical"]["latency_ms"]["count"] == 0


def test_memory_alert_fires_once_and_resolves_once(monitor, rss, clock):
    assert monitor.check_alerts() == []
    rss["bytes"] = 600 * MB
    fired = monitor.check_alerts()
    assert transitions(fired) == [("memory", "pipeline", "critical", "firing")]
    assert fired[0].value == 600.0 and fired[0].threshold == 500.0
    assert fired[0].at_ms == 1_700_000_000_000
    assert "\n" not in fired[0].message
    assert monitor.is_healthy() is False
    for _ in range(3):
        clock.now += 5
        assert monitor.check_alerts() == []
    rss["bytes"] = 400 * MB
    assert transitions(monitor.check_alerts()) == [("memory", "pipeline", "critical", "resolved")]
    assert monitor.check_alerts() == []
    assert monitor.is_healthy() is True


def test_latency_alert_judges_p99_of_the_interval(monitor, clock):
    stats = monitor.consumer("s1", "strategy", Depths())
    handle(stats, Lane.CRITICAL, 100, latency_ms=60)
    clock.now += 5
    fired = monitor.check_alerts()
    assert transitions(fired) == [("latency", "s1", "warning", "firing")]
    assert fired[0].value == pytest.approx(60.0, rel=0.01)
    assert monitor.is_healthy() is True  # a warning only
    handle(stats, Lane.CRITICAL, 100, latency_ms=70)
    clock.now += 5
    assert monitor.check_alerts() == []
    clock.now += 5
    assert monitor.check_alerts() == []  # nothing handled: no evidence, the alert stays
    handle(stats, Lane.CRITICAL, 100, latency_ms=2)  # the slow ones are in the past interval, not this one
    clock.now += 5
    assert transitions(monitor.check_alerts()) == [("latency", "s1", "warning", "resolved")]


def test_error_rate_alert_over_the_interval_not_lifetime(monitor, clock):
    stats = monitor.consumer("s1", "strategy", Depths())
    handle(stats, Lane.CRITICAL, 100)
    stats.lanes[Lane.CRITICAL].errors += 10
    clock.now += 5
    assert transitions(monitor.check_alerts()) == [("error_rate", "s1", "critical", "firing")]
    assert monitor.active_alerts["error_rate:s1"].value == 10.0
    assert monitor.is_healthy() is False
    handle(stats, Lane.CRITICAL, 100)
    stats.lanes[Lane.CRITICAL].errors += 10
    clock.now += 5
    assert monitor.check_alerts() == []
    handle(stats, Lane.CRITICAL, 100)  # lifetime 20/300 = 6.7 % would still fire; this interval is 0 %
    clock.now += 5
    resolved = monitor.check_alerts()
    assert transitions(resolved) == [("error_rate", "s1", "critical", "resolved")]
    assert resolved[0].value == 0.0


def test_drop_rate_alert_fires_and_resolves(monitor, clock):
    stats = monitor.consumer("s1", "strategy", Depths())
    stats.lanes[Lane.MEDIUM].enqueued += 100
    stats.lanes[Lane.MEDIUM].dropped += 3
    clock.now += 5
    fired = monitor.check_alerts()
    assert transitions(fired) == [("drop_rate", "s1", "warning", "firing")]
    assert fired[0].value == 3.0 and fired[0].threshold == 2.0
    stats.lanes[Lane.MEDIUM].enqueued += 100
    stats.lanes[Lane.MEDIUM].dropped += 2
    clock.now += 5
    assert transitions(monitor.check_alerts()) == [("drop_rate", "s1", "warning", "resolved")]  # exactly 2 %


def test_throughput_alert_waits_for_traffic_and_an_interval(monitor, clock):
    clock.now += 5
    assert monitor.check_alerts() == []  # nothing published yet
    clock.now += 5
    assert monitor.check_alerts() == []
    monitor.published[Channel.TRADE] += 50
    clock.now += 5
    assert monitor.check_alerts() == []  # 10 msgs/s
    monitor.published[Channel.TRADE] += 2
    clock.now += 5
    fired = monitor.check_alerts()
    assert transitions(fired) == [("throughput", "pipeline", "warning", "firing")]
    assert fired[0].value == pytest.approx(0.4)
    clock.now += 5
    assert monitor.check_alerts() == []
    monitor.published[Channel.TICKER] += 5
    clock.now += 5
    assert transitions(monitor.check_alerts()) == [("throughput", "pipeline", "warning", "resolved")]


def test_throughput_is_not_judged_at_start(clock):
    monitor = Monitor(PipelineConfig(), clock=clock, rss_bytes=lambda: MB)
    monitor.published[Channel.TRADE] += 1
    clock.now += 30
    assert monitor.check_alerts() == []  # the first check has no earlier interval to compare with


def test_queue_size_alert_one_transition_per_level(monitor, clock):
    depths = Depths()
    monitor.consumer("store", "store", depths)
    seen = []
    for critical, high in [(100, 0), (1000, 500), (1000, 600), (1500, 299), (1500, 300), (1800, 300),
                           (1700, 0), (1700, 10), (1000, 0), (0, 0)]:
        depths.now[Lane.CRITICAL], depths.now[Lane.HIGH] = critical, high
        clock.now += 5
        seen.append(transitions(monitor.check_alerts()))
    assert seen == [
        [],
        [("queue_size", "store", "warning", "firing")],  # 1500
        [],  # 1600
        [],  # 1799
        [("queue_size", "store", "critical", "firing")],  # 1800
        [],  # 2100
        [("queue_size", "store", "warning", "firing")],  # 1700: back to warning
        [],
        [("queue_size", "store", "warning", "resolved")],  # 1000
        [],
    ]


def test_breaker_alert_and_health(monitor, clock):
    breaker = CircuitBreaker("store", monitor.config.breaker, 5.0, clock=clock)
    monitor.consumer("store", "store", Depths(), breaker=breaker)
    for _ in range(5):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert monitor.is_healthy() is False
    assert transitions(monitor.check_alerts()) == [("breaker", "store", "critical", "firing")]
    assert monitor.get_performance_report()["breakers"] == {"store": "open"}
    clock.now += 5
    assert breaker.allow() is True
    assert monitor.check_alerts() == []  # half-open: still firing, no new event
    breaker.record_success()
    assert transitions(monitor.check_alerts()) == [("breaker", "store", "critical", "resolved")]
    assert monitor.is_healthy() is True


def test_removed_consumer_alerts_resolve_at_the_next_check(monitor, clock):
    depths = Depths()
    monitor.consumer("s1", "strategy", depths)
    depths.now[Lane.LOW] = 2000
    assert transitions(monitor.check_alerts()) == [("queue_size", "s1", "critical", "firing")]
    monitor.remove_consumer("s1")
    assert monitor.active_alerts == {}
    assert transitions(monitor.check_alerts()) == [("queue_size", "s1", "critical", "resolved")]
    assert monitor.check_alerts() == []


def test_active_alerts_are_in_the_report(monitor, rss):
    rss["bytes"] = 501 * MB
    monitor.check_alerts()
    report = monitor.get_performance_report()
    assert report["healthy"] is False
    assert [(a["name"], a["severity"], a["state"]) for a in report["alerts"]] == [("memory", "critical", "firing")]


async def test_run_emits_each_transition_once():
    rss = {"bytes": 10 * MB}
    config = PipelineConfig(performance=PerformanceConfig(metrics_interval_seconds=0.02))
    monitor = Monitor(config, rss_bytes=lambda: rss["bytes"])
    emitted: list[Alert] = []
    reports: list[dict] = []

    async def until(predicate):
        while not predicate():
            await asyncio.sleep(0.01)

    async with asyncio.timeout(10):
        task = asyncio.create_task(monitor.run(emitted.append, reports.append), name="test-monitor")
        try:
            rss["bytes"] = 600 * MB
            await until(lambda: len(emitted) == 1)
            await asyncio.sleep(0.1)  # several ticks while still high
            rss["bytes"] = 10 * MB
            await until(lambda: len(emitted) == 2)
            await until(lambda: len(reports) >= 2)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert [(a.name, a.state) for a in emitted] == [("memory", "firing"), ("memory", "resolved")]
    assert "consumers" in reports[0]


async def test_run_survives_a_failing_emit():
    rss = {"bytes": 600 * MB}
    config = PipelineConfig(performance=PerformanceConfig(metrics_interval_seconds=0.02),
                            alerts=AlertConfig(max_memory_mb=500))
    monitor = Monitor(config, rss_bytes=lambda: rss["bytes"])
    calls = []

    def emit(alert):
        calls.append(alert.state)
        raise RuntimeError("listener bug")

    async with asyncio.timeout(10):
        task = asyncio.create_task(monitor.run(emit), name="test-monitor")
        try:
            while not calls:
                await asyncio.sleep(0.01)
            rss["bytes"] = MB
            while len(calls) < 2:
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert calls == ["firing", "resolved"]


def test_alert_is_a_frozen_value():
    alert = Alert(name="memory", scope="pipeline", severity="critical", state="firing", value=1.0, threshold=0.5,
                  message="m", at_ms=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        alert.state = "resolved"
    assert alert.key == "memory:pipeline"
