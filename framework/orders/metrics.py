"""Order entry figures: latency samples per path (ack, confirmation, first fill), counts and fallbacks."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

SAMPLES = 10_000  # latency samples kept per series (the newest)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 3)


class OrderMetrics:
    def __init__(self) -> None:
        self.latency: dict[str, deque[float]] = {}  # "ack:websocket", "confirm:rest", "first_fill:websocket" → ms
        self.counts: Counter[str] = Counter()  # placed, filled, canceled, rejected, expired, amended, unknown
        self.attempts: Counter[str] = Counter()  # per path: requests sent
        self.answered: Counter[str] = Counter()  # per path: requests the venue took (accepted / acked)
        self.refused: Counter[str] = Counter()  # per path: venue rejections
        self.ambiguous: Counter[str] = Counter()  # per path: outcomes that needed reconciling
        self.fallbacks: Counter[str] = Counter()  # reason → times a request went to REST instead
        self.double_orders_prevented = 0  # re-placements held back because the venue knew the order

    def sample(self, series: str, path: str, ms: float) -> None:
        self.latency.setdefault(f"{series}:{path}", deque(maxlen=SAMPLES)).append(ms)

    def summary(self, series: str, path: str) -> dict[str, Any]:
        values = list(self.latency.get(f"{series}:{path}", ()))
        return {"count": len(values), "p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99)}

    def success_rate(self, path: str) -> float | None:
        sent = self.attempts[path]
        return round(self.answered[path] / sent, 4) if sent else None

    def as_dict(self) -> dict[str, Any]:
        paths = ("websocket", "rest")
        return {
            "orders_placed": self.counts["placed"], "orders_filled": self.counts["filled"],
            "orders_canceled": self.counts["canceled"], "orders_rejected": self.counts["rejected"],
            "orders_expired": self.counts["expired"], "orders_amended": self.counts["amended"],
            "orders_unknown": self.counts["unknown"],
            "websocket_latency_ms": self.summary("ack", "websocket")["p50_ms"],
            "rest_latency_ms": self.summary("ack", "rest")["p50_ms"],
            "ack_latency": {p: self.summary("ack", p) for p in paths},
            "confirm_latency": {p: self.summary("confirm", p) for p in paths},
            "first_fill_latency": {p: self.summary("first_fill", p) for p in paths},
            "requests": {p: self.attempts[p] for p in paths},
            "success_rate": {p: self.success_rate(p) for p in paths},
            "rejections": {p: self.refused[p] for p in paths},
            "ambiguous": {p: self.ambiguous[p] for p in paths},
            "fallback_events": dict(self.fallbacks),
            "double_orders_prevented": self.double_orders_prevented,
        }
