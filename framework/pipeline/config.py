"""The event pipeline's settings (queues, performance tracking, alert thresholds, circuit breakers),
validated at construction, and the named presets `basic`, `balanced` and `high-performance`."""

from __future__ import annotations

from typing import Any

import attrs

from framework.errors import ConfigError


def _fail(obj: Any, field: attrs.Attribute, expected: str, value: Any) -> None:
    raise ConfigError(f"{type(obj).__name__}.{field.name} must be {expected}, got {value!r}")


def _int_at_least(minimum: int):
    def check(obj: Any, field: attrs.Attribute, value: Any) -> None:
        if type(value) is not int or value < minimum:
            _fail(obj, field, f"an integer ≥ {minimum}", value)

    return check


def _number(*, minimum: float, inclusive: bool = True):
    """A real number (int or float, never bool) ≥ minimum (or > minimum when not inclusive)."""
    expected = f"a number {'≥' if inclusive else '>'} {minimum:g}"

    def check(obj: Any, field: attrs.Attribute, value: Any) -> None:
        if type(value) not in (int, float) or value != value or value in (float("inf"), float("-inf")):
            _fail(obj, field, expected, value)
        if value < minimum or (not inclusive and value == minimum):
            _fail(obj, field, expected, value)

    return check


def _positive(obj: Any, field: attrs.Attribute, value: Any) -> None:
    _number(minimum=0, inclusive=False)(obj, field, value)


def _bool(obj: Any, field: attrs.Attribute, value: Any) -> None:
    if type(value) is not bool:
        _fail(obj, field, "True or False", value)


def _float(value: Any) -> Any:
    """Ints are accepted for float fields and stored as floats; anything else is left for the validator."""
    return float(value) if type(value) is int else value


def _instance_of(cls: type):
    def check(obj: Any, field: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, cls):
            _fail(obj, field, f"a {cls.__name__}", value)

    return check


@attrs.frozen(kw_only=True)
class MessageQueueConfig:
    """Per-consumer queues: `max_size` events per lane; the CRITICAL lane may hold `priority_multiplier`
    times as many before it leans on its overflow policy. Duplicates within `dedup_window_seconds` are dropped."""

    max_size: int = attrs.field(default=1000, validator=_int_at_least(1))
    timeout_seconds: float = attrs.field(default=1.0, converter=_float, validator=_positive)
    priority_multiplier: float = attrs.field(default=2.0, converter=_float, validator=_number(minimum=1))
    enable_deduplication: bool = attrs.field(default=True, validator=_bool)
    dedup_window_seconds: float = attrs.field(default=0.1, converter=_float, validator=_positive)


@attrs.frozen(kw_only=True)
class PerformanceConfig:
    """What the monitor measures and how often it checks: latency histograms only with
    `enable_latency_tracking`; a handler slower than `max_processing_time_ms` counts as slow."""

    enable_metrics: bool = attrs.field(default=True, validator=_bool)
    metrics_interval_seconds: float = attrs.field(default=30.0, converter=_float, validator=_positive)
    max_processing_time_ms: float = attrs.field(default=5.0, converter=_float, validator=_positive)
    enable_latency_tracking: bool = attrs.field(default=True, validator=_bool)
    memory_usage_threshold_mb: float = attrs.field(default=100.0, converter=_float, validator=_positive)


@attrs.frozen(kw_only=True)
class AlertConfig:
    """The thresholds the monitor fires alerts on (p99 latency, RSS, error, drop and throughput rates,
    queue depth: warning at or above the first threshold, critical at or above the second)."""

    max_latency_ms: float = attrs.field(default=50.0, converter=_float, validator=_positive)
    max_memory_mb: float = attrs.field(default=500.0, converter=_float, validator=_positive)
    max_error_rate_percent: float = attrs.field(default=5.0, converter=_float, validator=_positive)
    max_drop_rate_percent: float = attrs.field(default=2.0, converter=_float, validator=_positive)
    min_throughput_msgs_per_sec: float = attrs.field(default=1.0, converter=_float, validator=_number(minimum=0))
    queue_size_warning_threshold: int = attrs.field(default=1500, validator=_int_at_least(1))
    queue_size_critical_threshold: int = attrs.field(default=1800, validator=_int_at_least(1))

    def __attrs_post_init__(self) -> None:
        if self.queue_size_warning_threshold >= self.queue_size_critical_threshold:
            raise ConfigError(
                f"AlertConfig.queue_size_warning_threshold must be below queue_size_critical_threshold, "
                f"got {self.queue_size_warning_threshold} ≥ {self.queue_size_critical_threshold}"
            )


@attrs.frozen(kw_only=True)
class BreakerConfig:
    """A consumer's circuit breaker: it opens after `failure_threshold` failures in a row, or when the
    error rate over the last `window_seconds` passes AlertConfig.max_error_rate_percent once at least
    `min_calls_for_rate` calls were seen there; it stays open `cool_down_seconds`, then lets one trial through."""

    failure_threshold: int = attrs.field(default=5, validator=_int_at_least(1))
    cool_down_seconds: float = attrs.field(default=5.0, converter=_float, validator=_positive)
    window_seconds: float = attrs.field(default=10.0, converter=_float, validator=_number(minimum=1))
    min_calls_for_rate: int = attrs.field(default=20, validator=_int_at_least(1))


@attrs.frozen(kw_only=True)
class PipelineConfig:
    """Everything the bus and its monitor read; `monitor=False` runs no monitor task (counters still count)."""

    queue: MessageQueueConfig = attrs.field(factory=MessageQueueConfig, validator=_instance_of(MessageQueueConfig))
    performance: PerformanceConfig = attrs.field(factory=PerformanceConfig, validator=_instance_of(PerformanceConfig))
    alerts: AlertConfig = attrs.field(factory=AlertConfig, validator=_instance_of(AlertConfig))
    breaker: BreakerConfig = attrs.field(factory=BreakerConfig, validator=_instance_of(BreakerConfig))
    monitor: bool = attrs.field(default=True, validator=_bool)


BASIC = PipelineConfig(
    performance=PerformanceConfig(enable_metrics=False, enable_latency_tracking=False),
    monitor=False,
)
"""No monitor task, no metrics, no latency histograms: the least work per event (counters only)."""

BALANCED = PipelineConfig()
"""The defaults: 1,000 events per lane, latency histograms, alerts checked every 5 s, metrics every 30 s."""

HIGH_PERFORMANCE = PipelineConfig(
    queue=MessageQueueConfig(max_size=10_000, priority_multiplier=4.0, timeout_seconds=0.5),
    performance=PerformanceConfig(metrics_interval_seconds=60.0, enable_latency_tracking=True),
    alerts=AlertConfig(queue_size_warning_threshold=15_000, queue_size_critical_threshold=18_000),
)
"""For bursts (e.g. a book feed at 100k+ events/s): 10,000 events per lane (CRITICAL 40,000 before its
overflow policy), queue-depth alerts scaled to match, latency still tracked, metrics every 60 s."""

_PRESETS = {"basic": BASIC, "balanced": BALANCED, "high-performance": HIGH_PERFORMANCE}


def preset(name: str) -> PipelineConfig:
    """The named preset: "basic", "balanced" or "high-performance" ("high_performance" too)."""
    key = str(name).strip().lower().replace("_", "-")
    try:
        return _PRESETS[key]
    except KeyError:
        raise ConfigError(f"unknown pipeline preset {name!r}: use one of {', '.join(_PRESETS)}") from None
