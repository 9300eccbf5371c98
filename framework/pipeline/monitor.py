"""The pipeline's counters, latency histograms and alerts: cheap stat objects the bus bumps per event,
a performance report read from them, and threshold alerts that fire and resolve once per transition."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import attrs
from hdrh.histogram import HdrHistogram
from loguru import logger

from framework.errors import ConfigError
from framework.events import now_ms
from framework.pipeline.breaker import BreakerState, CircuitBreaker
from framework.pipeline.channels import Channel, Lane
from framework.pipeline.config import PipelineConfig

_HIST_MAX_US = 60_000_000  # one minute: slower handlings are recorded as one minute
KINDS = ("store", "strategy", "component")


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, _HIST_MAX_US, 2)


@attrs.frozen(kw_only=True)
class Alert:
    """One transition of one alert: `state` "firing" (or a change of severity while firing) or "resolved".

    `name`: latency | memory | error_rate | drop_rate | throughput | queue_size | breaker;
    `scope`: a consumer's name or "pipeline"; `value` and `threshold` in the unit the message names."""

    name: str
    scope: str
    severity: str  # "warning" | "critical"
    state: str  # "firing" | "resolved"
    value: float
    threshold: float
    message: str
    at_ms: int

    @property
    def key(self) -> str:
        return f"{self.name}:{self.scope}"

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class LaneStats:
    """One consumer's counters for one lane, bumped by the bus with plain attribute increments:

    - `enqueued`: events offered to this lane's queue (dropped and coalesced ones included);
    - `dropped`: events the overflow policy threw away; `coalesced`: events replaced by a newer one in the queue;
    - `handled`: handler calls finished (failed ones included) — via `record(latency_ns)`;
    - `errors`: handler calls that raised (a subset of `handled`);
    - `high_water`: the deepest this queue has been — via `note_depth(depth)`;
    - `histogram`: enqueue→handled latency in µs (None when latency tracking is off)."""

    __slots__ = ("enqueued", "handled", "dropped", "coalesced", "overflowed", "high_water", "errors", "histogram",
                 "_total")

    def __init__(self, track_latency: bool) -> None:
        self.enqueued = self.handled = self.dropped = self.coalesced = self.high_water = self.errors = 0
        self.overflowed = 0  # CRITICAL fills that did not fit: read back from the store (never lost)
        self.histogram: HdrHistogram | None = _histogram() if track_latency else None  # since the last check
        self._total: HdrHistogram | None = _histogram() if track_latency else None  # earlier checks, merged

    def record(self, latency_ns: int) -> None:
        """One handler call finished, `latency_ns` after its event was enqueued."""
        self.handled += 1
        histogram = self.histogram
        if histogram is not None:
            us = latency_ns // 1000
            histogram.record_value(us if us < _HIST_MAX_US else _HIST_MAX_US)

    def note_depth(self, depth: int) -> None:
        if depth > self.high_water:
            self.high_water = depth

    def zero(self) -> None:
        self.enqueued = self.handled = self.dropped = self.coalesced = self.high_water = self.errors = 0
        self.overflowed = 0
        if self.histogram is not None:
            self.histogram.reset()
            self._total.reset()

    def _roll(self) -> None:
        """Move the interval's latencies into the lifetime histogram (at each alert check)."""
        if self.histogram is not None and self.histogram.get_total_count():
            self._total.add(self.histogram)
            self.histogram.reset()

    def lifetime_histogram(self) -> HdrHistogram | None:
        if self.histogram is None:
            return None
        merged = _histogram()
        merged.add(self._total)
        merged.add(self.histogram)
        return merged


class ConsumerStats:
    """One consumer's stats: `lanes` (a LaneStats per Lane, all four made up front), `errors` (failures
    outside any event: start/stop hooks, the consumer's task dying), `timeouts` (handler calls cut off;
    also counted in `handled`), `dead_letters` (events given up on and kept aside), `depth()` (queue size per
    lane now), `breaker` (its circuit breaker, or None)."""

    __slots__ = ("name", "kind", "lanes", "errors", "timeouts", "dead_letters", "depth", "breaker")

    def __init__(self, name: str, kind: str, depth: Callable[[], dict[Lane, int]],
                 breaker: CircuitBreaker | None, track_latency: bool) -> None:
        self.name = name
        self.kind = kind
        self.lanes: dict[Lane, LaneStats] = {lane: LaneStats(track_latency) for lane in Lane}
        self.errors = self.timeouts = self.dead_letters = 0
        self.depth = depth
        self.breaker = breaker

    def zero(self) -> None:
        self.errors = self.timeouts = self.dead_letters = 0
        for lane in self.lanes.values():
            lane.zero()

    def totals(self) -> dict[str, int]:
        lanes = self.lanes.values()
        return {
            "enqueued": sum(s.enqueued for s in lanes),
            "handled": sum(s.handled for s in lanes),
            "dropped": sum(s.dropped for s in lanes),
            "coalesced": sum(s.coalesced for s in lanes),
            "errors": sum(s.errors for s in lanes) + self.errors + self.timeouts,
        }

    def depths(self) -> dict[Lane, int]:
        try:
            depths = self.depth()
        except Exception:  # a report must not fail because one consumer's queue is gone
            logger.bind(consumer=self.name).opt(exception=True).warning("queue depth unreadable")
            return {lane: 0 for lane in Lane}
        return {lane: int(depths.get(lane, 0)) for lane in Lane}


def _rss_of_this_process() -> Callable[[], int]:
    import psutil

    process = psutil.Process()
    return lambda: process.memory_info().rss


def _latency_ms(histogram: HdrHistogram | None) -> dict[str, float] | None:
    if histogram is None:
        return None
    if not histogram.get_total_count():
        return {"count": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "count": histogram.get_total_count(),
        "p50": histogram.get_value_at_percentile(50) / 1000,
        "p90": histogram.get_value_at_percentile(90) / 1000,
        "p99": histogram.get_value_at_percentile(99) / 1000,
        "max": histogram.get_max_value() / 1000,
    }


def _merged(histograms: list[HdrHistogram | None]) -> HdrHistogram | None:
    present = [h for h in histograms if h is not None]
    if not present:
        return None
    merged = _histogram()
    for h in present:
        merged.add(h)
    return merged


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


_SEVERITY = {  # the one severity of each single-level alert
    "latency": "warning", "memory": "critical", "error_rate": "critical", "drop_rate": "warning",
    "throughput": "warning",
}


class Monitor:
    """Counters the bus bumps (`published[channel]`, `invalid`, `duplicates`, and the ConsumerStats it gets
    from `consumer()`), a report read from them, and alerts checked by `check_alerts()` every
    min(5 s, metrics_interval_seconds) in `run()`. Severities: memory, error_rate and breaker (open or half-open)
    are critical; latency, drop_rate and throughput warnings; queue_size warning or critical by depth."""

    def __init__(self, config: PipelineConfig, *, clock: Callable[[], float] = time.monotonic,
                 rss_bytes: Callable[[], int] | None = None, wall_ms: Callable[[], int] = now_ms) -> None:
        self.config = config
        self._clock = clock
        self._wall_ms = wall_ms
        self._rss_bytes = rss_bytes
        self._track_latency = config.performance.enable_latency_tracking
        self.published: dict[Channel, int] = {channel: 0 for channel in Channel}
        self.invalid = 0
        self.duplicates = 0
        self.consumers: dict[str, ConsumerStats] = {}
        self.active_alerts: dict[str, Alert] = {}
        self._pending: list[Alert] = []  # resolutions for removed consumers, handed out by the next check
        self._started = clock()
        self._last_check: float | None = None
        self._last_published = 0
        self._last_totals: dict[str, dict[str, int]] = {}

    # --- registration -------------------------------------------------------------------------------

    def consumer(self, name: str, kind: str, depth: Callable[[], dict[Lane, int]],
                 breaker: CircuitBreaker | None = None) -> ConsumerStats:
        """The stats of consumer `name`, made on first call; a later call returns the same object
        (with `depth` and `breaker` replaced, counters kept)."""
        if kind not in KINDS:
            raise ConfigError(f"consumer {name!r} has kind {kind!r}: use one of {', '.join(KINDS)}")
        stats = self.consumers.get(name)
        if stats is None:
            stats = self.consumers[name] = ConsumerStats(name, kind, depth, breaker, self._track_latency)
        else:
            stats.depth = depth
            stats.breaker = breaker
        return stats

    def remove_consumer(self, name: str) -> None:
        """Forget a consumer; its firing alerts are resolved by the next `check_alerts()`."""
        if self.consumers.pop(name, None) is None:
            return
        self._last_totals.pop(name, None)
        for key, alert in list(self.active_alerts.items()):
            if alert.scope == name:
                del self.active_alerts[key]
                self._pending.append(attrs.evolve(alert, state="resolved", at_ms=self._wall_ms(),
                                                  message=f"{alert.name} alert resolved: consumer {name} removed"))

    # --- reading ------------------------------------------------------------------------------------

    def rss_bytes(self) -> int:
        if self._rss_bytes is None:
            self._rss_bytes = _rss_of_this_process()
        return int(self._rss_bytes())

    def is_healthy(self) -> bool:
        """No critical alert firing and no breaker open."""
        if any(a.severity == "critical" for a in self.active_alerts.values()):
            return False
        return not any(s.breaker is not None and s.breaker.state is BreakerState.OPEN
                       for s in self.consumers.values())

    def get_performance_report(self) -> dict[str, Any]:
        """A JSON-ready snapshot; rates are averages since start (or `restart()`), latencies in ms."""
        uptime = max(self._clock() - self._started, 0.0)
        per_second = (lambda n: n / uptime) if uptime > 0 else (lambda n: 0.0)
        published_total = sum(self.published.values())
        consumers: dict[str, Any] = {}
        lane_histograms: dict[Lane, list[HdrHistogram | None]] = {lane: [] for lane in Lane}
        totals = {"enqueued": 0, "handled": 0, "errors": 0, "timeouts": 0, "dropped": 0, "coalesced": 0,
                  "dead_letters": 0}
        for name, stats in self.consumers.items():
            depths = stats.depths()
            lanes = {}
            histograms = []
            for lane, lane_stats in stats.lanes.items():
                histogram = lane_stats.lifetime_histogram()
                histograms.append(histogram)
                lane_histograms[lane].append(histogram)
                lanes[lane.name.lower()] = {
                    "enqueued": lane_stats.enqueued, "handled": lane_stats.handled, "dropped": lane_stats.dropped,
                    "coalesced": lane_stats.coalesced, "overflowed": lane_stats.overflowed, "errors": lane_stats.errors, "queue_size": depths[lane],
                    "high_water": max(lane_stats.high_water, depths[lane]), "latency_ms": _latency_ms(histogram),
                }
            own = stats.totals()
            consumers[name] = {
                "kind": stats.kind,
                "enqueued": own["enqueued"], "handled": own["handled"], "errors": own["errors"],
                "timeouts": stats.timeouts, "dead_letters": stats.dead_letters,
                "error_rate_percent": _percent(own["errors"], own["handled"]),
                "dropped": own["dropped"], "drop_rate_percent": _percent(own["dropped"], own["enqueued"]),
                "coalesced": own["coalesced"],
                "throughput_msgs_per_sec": per_second(own["handled"]),
                "queue_size": sum(depths.values()),
                "high_water": max(ln["high_water"] for ln in lanes.values()),
                "latency_ms": _latency_ms(_merged(histograms)),
                "breaker": stats.breaker.as_dict() if stats.breaker is not None else None,
                "lanes": lanes,
            }
            for key in ("enqueued", "handled", "errors", "dropped", "coalesced"):
                totals[key] += own[key]
            totals["timeouts"] += stats.timeouts
            totals["dead_letters"] += stats.dead_letters
        totals["error_rate_percent"] = _percent(totals["errors"], totals["handled"])
        totals["drop_rate_percent"] = _percent(totals["dropped"], totals["enqueued"])
        return {
            "at_ms": self._wall_ms(),
            "uptime_seconds": uptime,
            "healthy": self.is_healthy(),
            "published": {"total": published_total, "per_channel": {c.value: n for c, n in self.published.items()}},
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "throughput_msgs_per_sec": {
                "overall": per_second(published_total),
                "per_channel": {c.value: per_second(n) for c, n in self.published.items()},
                "per_consumer": {name: c["throughput_msgs_per_sec"] for name, c in consumers.items()},
            },
            "latency_ms": {lane.name.lower(): _latency_ms(_merged(hs)) for lane, hs in lane_histograms.items()},
            "memory": {"rss_mb": self.rss_bytes() / 1_048_576},
            "totals": totals,
            "queues": {name: {"size": c["queue_size"], "high_water": c["high_water"]} for name, c in consumers.items()},
            "breakers": {name: c["breaker"]["state"] for name, c in consumers.items() if c["breaker"] is not None},
            "alerts": [a.as_dict() for a in self.active_alerts.values()],
            "consumers": consumers,
        }

    def export_performance_data(self, path: str | os.PathLike) -> Path:
        """Write the report as JSON to `path` (atomically: a temp file beside it, then a rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.get_performance_report(), indent=2, sort_keys=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return target

    def restart(self) -> None:
        """Zero every counter, histogram and high-water mark in place (the bus keeps its references),
        keep the registrations, forget alert state and start the clock again."""
        for channel in self.published:
            self.published[channel] = 0
        self.invalid = self.duplicates = 0
        for stats in self.consumers.values():
            stats.zero()
        self.active_alerts.clear()
        self._pending.clear()
        self._started = self._clock()
        self._last_check = None
        self._last_published = 0
        self._last_totals.clear()

    # --- alerts -------------------------------------------------------------------------------------

    def check_alerts(self) -> list[Alert]:
        """Evaluate every threshold now and return only the transitions (fired, severity changed, resolved).
        Rates are over the interval since the previous check (the first interval starts at start/restart)."""
        now = self._clock()
        since = self._last_check if self._last_check is not None else self._started
        interval = now - since
        at = self._wall_ms()
        limits = self.config.alerts
        out, self._pending = self._pending, []

        def judge(name: str, scope: str, level: str | None, value: float, threshold: float, message: str) -> None:
            key = f"{name}:{scope}"
            current = self.active_alerts.get(key)
            if level is None:
                if current is not None:
                    del self.active_alerts[key]
                    out.append(Alert(name=name, scope=scope, severity=current.severity, state="resolved",
                                     value=value, threshold=current.threshold, message=message, at_ms=at))
                return
            if current is not None and current.severity == level:
                return
            alert = Alert(name=name, scope=scope, severity=level, state="firing", value=value,
                          threshold=threshold, message=message, at_ms=at)
            self.active_alerts[key] = alert
            out.append(alert)

        def single(name: str, scope: str, bad: bool | None, value: float, threshold: float, what: str) -> None:
            """bad None: no evidence this interval, the alert keeps its state."""
            if bad is None:
                return
            verdict = f"above {threshold:g}" if bad else f"back within {threshold:g}"
            judge(name, scope, _SEVERITY[name] if bad else None, value, threshold,
                  f"{what} {value:.4g} {verdict} ({scope})")

        rss_mb = self.rss_bytes() / 1_048_576
        single("memory", "pipeline", rss_mb > limits.max_memory_mb, rss_mb, limits.max_memory_mb, "RSS MB")

        published = sum(self.published.values())
        if self._last_check is not None and interval > 0 and published > 0:
            rate = (published - self._last_published) / interval
            low = rate < limits.min_throughput_msgs_per_sec
            judge("throughput", "pipeline", "warning" if low else None, rate, limits.min_throughput_msgs_per_sec,
                  f"published msgs/s {rate:.4g} {'below' if low else 'back at or above'} "
                  f"{limits.min_throughput_msgs_per_sec:g} (pipeline)")
        self._last_published = published

        for name, stats in self.consumers.items():
            totals = stats.totals()
            before = self._last_totals.get(name, dict.fromkeys(totals, 0))
            delta = {k: totals[k] - before[k] for k in totals}
            self._last_totals[name] = totals

            if delta["handled"] or delta["errors"]:
                rate = _percent(delta["errors"], delta["handled"]) if delta["handled"] else 100.0
                single("error_rate", name, rate > limits.max_error_rate_percent, rate,
                       limits.max_error_rate_percent, "error rate %")
            if delta["enqueued"] or delta["dropped"]:
                rate = _percent(delta["dropped"], delta["enqueued"]) if delta["enqueued"] else 100.0
                single("drop_rate", name, rate > limits.max_drop_rate_percent, rate,
                       limits.max_drop_rate_percent, "drop rate %")

            interval_latency = _merged([lane.histogram for lane in stats.lanes.values()])
            if interval_latency is not None and interval_latency.get_total_count():
                p99 = interval_latency.get_value_at_percentile(99) / 1000
                single("latency", name, p99 > limits.max_latency_ms, p99, limits.max_latency_ms, "p99 latency ms")
            for lane in stats.lanes.values():
                lane._roll()

            depth = sum(stats.depths().values())
            if depth >= limits.queue_size_critical_threshold:
                level, threshold = "critical", limits.queue_size_critical_threshold
            elif depth >= limits.queue_size_warning_threshold:
                level, threshold = "warning", limits.queue_size_warning_threshold
            else:
                level, threshold = None, limits.queue_size_warning_threshold
            judge("queue_size", name, level, depth, threshold,
                  f"queue size {depth} {'at or above' if level else 'below'} {threshold} ({name})")

            if stats.breaker is not None:
                state = stats.breaker.state
                judge("breaker", name, None if state is BreakerState.CLOSED else "critical",
                      stats.breaker.opened_count, 0, f"circuit breaker {state.value} ({name}, "
                      f"opened {stats.breaker.opened_count} times)")

        self._last_check = now
        return out

    async def run(self, emit: Callable[[Alert], None],
                  report: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Check alerts every min(5 s, metrics_interval_seconds) and `emit` each transition; when metrics are
        on and `report` is given, hand it the performance report every metrics_interval_seconds. Runs until
        cancelled (the bus owns the task); a failing `emit`/`report` is logged and the loop goes on."""
        performance = self.config.performance
        tick = min(5.0, performance.metrics_interval_seconds)
        next_report = self._clock() + performance.metrics_interval_seconds
        log = logger.bind(component="monitor")
        while True:
            await asyncio.sleep(tick)
            try:
                for alert in self.check_alerts():
                    bound = log.bind(alert=alert.name, scope=alert.scope, severity=alert.severity, value=alert.value)
                    if alert.state == "firing":
                        bound.warning("pipeline alert firing")
                    else:
                        bound.info("pipeline alert resolved")
                    emit(alert)
                if report is not None and performance.enable_metrics and self._clock() >= next_report:
                    next_report = self._clock() + performance.metrics_interval_seconds
                    report(self.get_performance_report())
            except asyncio.CancelledError:
                raise
            except Exception:  # the monitor outlives a broken listener: the next tick tries again
                log.opt(exception=True).error("monitor tick failed")
