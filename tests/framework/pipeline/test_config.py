"""Pipeline config: defaults as documented, presets by name, one-line errors naming field, value and fix."""

import attrs
import pytest

from framework.errors import ConfigError
from framework.pipeline.config import (
    BALANCED,
    BASIC,
    HIGH_PERFORMANCE,
    AlertConfig,
    BreakerConfig,
    MessageQueueConfig,
    PerformanceConfig,
    PipelineConfig,
    preset,
)


def test_defaults_are_the_documented_values():
    config = PipelineConfig()
    assert attrs.asdict(config.queue) == {"max_size": 1000, "timeout_seconds": 1.0, "priority_multiplier": 2.0,
                                          "enable_deduplication": True, "dedup_window_seconds": 0.1}
    assert attrs.asdict(config.performance) == {"enable_metrics": True, "metrics_interval_seconds": 30.0,
                                                "max_processing_time_ms": 5.0, "enable_latency_tracking": True,
                                                "memory_usage_threshold_mb": 100.0}
    assert attrs.asdict(config.alerts) == {"max_latency_ms": 50.0, "max_memory_mb": 500.0,
                                           "max_error_rate_percent": 5.0, "max_drop_rate_percent": 2.0,
                                           "min_throughput_msgs_per_sec": 1.0, "queue_size_warning_threshold": 1500,
                                           "queue_size_critical_threshold": 1800}
    assert attrs.asdict(config.breaker) == {"failure_threshold": 5, "cool_down_seconds": 5.0,
                                            "window_seconds": 10.0, "min_calls_for_rate": 20}
    assert config.monitor is True


def test_configs_are_frozen():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        BALANCED.monitor = False


@pytest.mark.parametrize("name, expected", [
    ("basic", BASIC), ("balanced", BALANCED), ("high-performance", HIGH_PERFORMANCE),
    ("high_performance", HIGH_PERFORMANCE), (" Balanced ", BALANCED),
])
def test_preset_by_name(name, expected):
    assert preset(name) is expected


def test_presets_differ_as_documented():
    assert BASIC.monitor is False
    assert BASIC.performance.enable_metrics is False
    assert BASIC.performance.enable_latency_tracking is False
    assert BALANCED == PipelineConfig()
    assert HIGH_PERFORMANCE.queue.max_size == 10_000
    assert HIGH_PERFORMANCE.queue.priority_multiplier == 4.0
    assert HIGH_PERFORMANCE.performance.enable_latency_tracking is True
    assert HIGH_PERFORMANCE.performance.metrics_interval_seconds > BALANCED.performance.metrics_interval_seconds


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match="unknown pipeline preset 'fast': use one of basic, balanced, high-performance"):
        preset("fast")


@pytest.mark.parametrize("cls, field, value, message", [
    (MessageQueueConfig, "max_size", 0, "MessageQueueConfig.max_size must be an integer ≥ 1, got 0"),
    (MessageQueueConfig, "max_size", 10.0, "MessageQueueConfig.max_size must be an integer ≥ 1, got 10.0"),
    (MessageQueueConfig, "max_size", True, "MessageQueueConfig.max_size must be an integer ≥ 1, got True"),
    (MessageQueueConfig, "timeout_seconds", 0, "MessageQueueConfig.timeout_seconds must be a number > 0, got 0"),
    (MessageQueueConfig, "priority_multiplier", 0.5,
     "MessageQueueConfig.priority_multiplier must be a number ≥ 1, got 0.5"),
    (MessageQueueConfig, "enable_deduplication", 1, "MessageQueueConfig.enable_deduplication must be True or False, got 1"),
    (MessageQueueConfig, "dedup_window_seconds", "0.1",
     "MessageQueueConfig.dedup_window_seconds must be a number > 0, got '0.1'"),
    (PerformanceConfig, "metrics_interval_seconds", float("nan"),
     "PerformanceConfig.metrics_interval_seconds must be a number > 0, got nan"),
    (PerformanceConfig, "max_processing_time_ms", -5, "PerformanceConfig.max_processing_time_ms must be a number > 0"),
    (PerformanceConfig, "memory_usage_threshold_mb", False,
     "PerformanceConfig.memory_usage_threshold_mb must be a number > 0, got False"),
    (AlertConfig, "max_latency_ms", float("inf"), "AlertConfig.max_latency_ms must be a number > 0, got inf"),
    (AlertConfig, "min_throughput_msgs_per_sec", -1, "AlertConfig.min_throughput_msgs_per_sec must be a number ≥ 0"),
    (AlertConfig, "queue_size_critical_threshold", 1800.0,
     "AlertConfig.queue_size_critical_threshold must be an integer ≥ 1, got 1800.0"),
    (BreakerConfig, "failure_threshold", 0, "BreakerConfig.failure_threshold must be an integer ≥ 1, got 0"),
    (BreakerConfig, "window_seconds", 0.5, "BreakerConfig.window_seconds must be a number ≥ 1, got 0.5"),
    (BreakerConfig, "min_calls_for_rate", None, "BreakerConfig.min_calls_for_rate must be an integer ≥ 1, got None"),
    (PipelineConfig, "queue", {"max_size": 5}, "PipelineConfig.queue must be a MessageQueueConfig, got {'max_size': 5}"),
    (PipelineConfig, "monitor", "yes", "PipelineConfig.monitor must be True or False, got 'yes'"),
])
def test_bad_value_is_one_line_naming_field_value_and_fix(cls, field, value, message):
    with pytest.raises(ConfigError) as caught:
        cls(**{field: value})
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_warning_threshold_must_be_below_critical():
    with pytest.raises(ConfigError, match="queue_size_warning_threshold must be below queue_size_critical_threshold, "
                                          "got 1800 ≥ 1800"):
        AlertConfig(queue_size_warning_threshold=1800)


def test_ints_are_accepted_for_float_fields_and_stored_as_floats():
    config = MessageQueueConfig(timeout_seconds=2, priority_multiplier=3)
    assert config.timeout_seconds == 2.0 and type(config.timeout_seconds) is float
    assert config.priority_multiplier == 3.0 and type(config.priority_multiplier) is float


def test_evolve_validates_too():
    with pytest.raises(ConfigError, match="BreakerConfig.cool_down_seconds must be a number > 0, got -1"):
        attrs.evolve(BreakerConfig(), cool_down_seconds=-1)
