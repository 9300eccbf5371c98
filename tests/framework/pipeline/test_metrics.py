"""/metrics on 127.0.0.1 port 0: scraped with urllib, parsed with prometheus_client, values equal the monitor's."""

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from framework.pipeline.breaker import CircuitBreaker
from framework.pipeline.channels import Channel, Lane
from framework.pipeline.config import PipelineConfig
from framework.pipeline.metrics import MetricsServer
from framework.pipeline.monitor import Monitor

MB = 1_048_576


def scrape(server):
    with urllib.request.urlopen(server.url, timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def monitor():
    clock = {"now": 100.0}
    monitor = Monitor(PipelineConfig(), clock=lambda: clock["now"], rss_bytes=lambda: 700 * MB)
    depths = {Lane.CRITICAL: 4, Lane.HIGH: 1}
    breaker = CircuitBreaker("store", monitor.config.breaker, 5.0, clock=lambda: clock["now"])
    store = monitor.consumer("store", "store", lambda: depths, breaker=breaker)
    strategy = monitor.consumer("s1", "strategy", lambda: {})
    monitor.published[Channel.TRADE] = 12
    monitor.published[Channel.BOOK] = 40
    for ms in range(1, 101):
        store.lanes[Lane.CRITICAL].enqueued += 1
        store.lanes[Lane.CRITICAL].record(ms * 1_000_000)
    strategy.lanes[Lane.HIGH].enqueued = 40
    strategy.lanes[Lane.HIGH].coalesced = 9
    strategy.lanes[Lane.HIGH].dropped = 3
    strategy.lanes[Lane.HIGH].errors = 2
    strategy.dead_letters = 5
    for _ in range(5):
        breaker.record_failure()
    monitor.check_alerts()
    return monitor


def test_scrape_equals_the_monitor(monitor):
    server = MetricsServer(monitor)
    server.start()
    try:
        assert server.port > 0
        samples = scrape(server)
    finally:
        server.stop()
    report = monitor.get_performance_report()

    def value(metric, **labels):
        return samples[(metric, tuple(sorted(labels.items())))]

    assert value("tradesync_events_published_total", channel="trade") == 12
    assert value("tradesync_events_published_total", channel="book") == 40
    assert value("tradesync_consumer_handled_total", consumer="store", lane="critical") == 100
    assert value("tradesync_consumer_enqueued_total", consumer="s1", lane="high") == 40
    assert value("tradesync_consumer_coalesced_total", consumer="s1", lane="high") == 9
    assert value("tradesync_consumer_dropped_total", consumer="s1", lane="high") == 3
    assert value("tradesync_consumer_errors_total", consumer="s1", lane="high") == 2
    assert value("tradesync_dead_letters_total", consumer="s1") == 5
    assert value("tradesync_consumer_queue_depth", consumer="store", lane="critical") == 4
    assert value("tradesync_consumer_queue_depth", consumer="store", lane="high") == 1
    assert value("tradesync_consumer_queue_depth", consumer="s1", lane="low") == 0
    latency = report["consumers"]["store"]["lanes"]["critical"]["latency_ms"]
    assert value("tradesync_consumer_latency_seconds", consumer="store", lane="critical", quantile="0.5") == \
        pytest.approx(latency["p50"] / 1000)
    assert value("tradesync_consumer_latency_seconds", consumer="store", lane="critical", quantile="0.99") == \
        pytest.approx(0.099, rel=0.01)
    assert value("tradesync_process_rss_bytes") == 700 * MB
    assert value("tradesync_breaker_open", consumer="store") == 1
    assert value("tradesync_breaker_opened_total", consumer="store") == 1
    assert value("tradesync_alert_active", name="memory", scope="pipeline", severity="critical") == 1
    assert value("tradesync_alert_active", name="breaker", scope="store", severity="critical") == 1
    assert value("tradesync_healthy") == 0


def test_scrape_reads_counters_at_scrape_time(monitor):
    server = MetricsServer(monitor)
    server.start()
    try:
        before = scrape(server)[("tradesync_events_published_total", (("channel", "trade"),))]
        monitor.published[Channel.TRADE] += 8
        after = scrape(server)[("tradesync_events_published_total", (("channel", "trade"),))]
    finally:
        server.stop()
    assert (before, after) == (12, 20)


def test_extra_source_is_exposed(monitor):
    server = MetricsServer(monitor)
    server.add_source(lambda: [("tradesync_spool_files", {"strategy": "s1"}, 3.0)])
    with server:
        samples = scrape(server)
    assert samples[("tradesync_spool_files", (("strategy", "s1"),))] == 3.0


def test_start_and_stop_are_idempotent_and_free_the_port(monitor):
    server = MetricsServer(monitor)
    server.start()
    port = server.port
    server.start()
    assert server.port == port
    server.stop()
    server.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
