"""Prometheus exposition of the pipeline monitor: a collector that reads the monitor's report at scrape
time (nothing per event), and `MetricsServer`, the /metrics endpoint on 127.0.0.1."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from loguru import logger
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from framework.pipeline.monitor import Monitor

ExtraSource = Callable[[], Iterable[tuple[str, dict[str, str], float]]]

_LANE_COUNTERS = (
    ("handled", "Handler calls finished (failed ones included)"),
    ("enqueued", "Events offered to the consumer's lane queue"),
    ("dropped", "Events the lane's overflow policy dropped"),
    ("coalesced", "Events replaced in the queue by a newer one for the same key"),
    ("errors", "Handler calls that raised"),
)


class MonitorCollector(Collector):
    """Turns `monitor.get_performance_report()` into `tradesync_*` metric families at each scrape."""

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor
        self._sources: list[ExtraSource] = []

    def add_source(self, source: ExtraSource) -> None:
        """Also expose the gauges `source()` returns as (name, labels, value) at each scrape."""
        self._sources.append(source)

    def collect(self) -> Iterable[Any]:
        report = self._monitor.get_performance_report()
        consumers = report["consumers"]

        published = CounterMetricFamily("tradesync_events_published", "Events published on the bus", labels=["channel"])
        for channel, n in report["published"]["per_channel"].items():
            published.add_metric([channel], n)
        yield published
        yield CounterMetricFamily("tradesync_events_invalid", "Events refused as invalid", value=report["invalid"])
        yield CounterMetricFamily("tradesync_events_duplicate", "Events dropped as duplicates",
                                  value=report["duplicates"])

        for key, text in _LANE_COUNTERS:
            family = CounterMetricFamily(f"tradesync_consumer_{key}", text, labels=["consumer", "lane"])
            for name, consumer in consumers.items():
                for lane, stats in consumer["lanes"].items():
                    family.add_metric([name, lane], stats[key])
            yield family

        depth = GaugeMetricFamily("tradesync_consumer_queue_depth", "Events waiting in the lane queue now",
                                  labels=["consumer", "lane"])
        high = GaugeMetricFamily("tradesync_consumer_queue_high_water", "Deepest the lane queue has been",
                                 labels=["consumer", "lane"])
        latency = GaugeMetricFamily("tradesync_consumer_latency_seconds", "Enqueue-to-handled latency quantiles",
                                    labels=["consumer", "lane", "quantile"])
        for name, consumer in consumers.items():
            for lane, stats in consumer["lanes"].items():
                depth.add_metric([name, lane], stats["queue_size"])
                high.add_metric([name, lane], stats["high_water"])
                if stats["latency_ms"] is not None:
                    for quantile, key in (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"), ("1", "max")):
                        latency.add_metric([name, lane, quantile], stats["latency_ms"][key] / 1000)
        yield depth
        yield high
        yield latency

        timeouts = CounterMetricFamily("tradesync_consumer_timeouts", "Handler calls cut off", labels=["consumer"])
        dead = CounterMetricFamily("tradesync_dead_letters", "Events given up on and kept aside", labels=["consumer"])
        breaker = GaugeMetricFamily("tradesync_breaker_open", "1 while the consumer's breaker is open or half-open",
                                    labels=["consumer"])
        opened = CounterMetricFamily("tradesync_breaker_opened", "Times the consumer's breaker opened",
                                     labels=["consumer"])
        for name, consumer in consumers.items():
            timeouts.add_metric([name], consumer["timeouts"])
            dead.add_metric([name], consumer["dead_letters"])
            if consumer["breaker"] is not None:
                breaker.add_metric([name], 0 if consumer["breaker"]["state"] == "closed" else 1)
                opened.add_metric([name], consumer["breaker"]["opened_count"])
        yield timeouts
        yield dead
        yield breaker
        yield opened

        yield GaugeMetricFamily("tradesync_process_rss_bytes", "Resident memory of this process",
                                value=report["memory"]["rss_mb"] * 1_048_576)
        yield GaugeMetricFamily("tradesync_healthy", "1 when no critical alert fires and no breaker is open",
                                value=1 if report["healthy"] else 0)
        alerts = GaugeMetricFamily("tradesync_alert_active", "1 for each firing alert",
                                   labels=["name", "scope", "severity"])
        for alert in report["alerts"]:
            alerts.add_metric([alert["name"], alert["scope"], alert["severity"]], 1)
        yield alerts

        extra: dict[str, GaugeMetricFamily] = {}
        for source in self._sources:
            for name, labels, value in source():
                family = extra.get(name)
                if family is None:
                    family = extra[name] = GaugeMetricFamily(name, "Extra pipeline gauge", labels=sorted(labels))
                family.add_metric([labels[k] for k in sorted(labels)], value)
        yield from extra.values()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no stderr line per scrape
        pass


class MetricsServer:
    """Serves /metrics for one monitor on `host` (127.0.0.1) and `port` (0: a free one, read `port` after
    `start()`), from a named daemon thread. `start()` and `stop()` are idempotent."""

    def __init__(self, monitor: Monitor, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = MonitorCollector(monitor)
        self.registry.register(self.collector)
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started, else the one asked for."""
        return self._server.server_port if self._server is not None else self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/metrics"

    def add_source(self, source: ExtraSource) -> None:
        self.collector.add_source(source)

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = make_server(self._host, self._port, make_wsgi_app(self.registry), handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"metrics-http-{self.port}", daemon=True)
        self._thread.start()
        logger.bind(host=self._host, port=self.port).info("metrics endpoint serving")

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
        logger.bind(host=self._host).info("metrics endpoint stopped")

    def __enter__(self) -> MetricsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
