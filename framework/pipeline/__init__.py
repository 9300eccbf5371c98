"""The event pipeline: one bus between the sockets and every consumer (store writer, strategies, components)."""

from framework.pipeline.bus import Component, KeySink, Pipeline, channel_of
from framework.pipeline.channels import LANE_OF, Channel, Lane
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

__all__ = [
    "BALANCED", "BASIC", "HIGH_PERFORMANCE", "LANE_OF", "AlertConfig", "BreakerConfig", "Channel", "Component",
    "KeySink", "Lane", "MessageQueueConfig", "PerformanceConfig", "Pipeline", "PipelineConfig", "channel_of", "preset",
]
