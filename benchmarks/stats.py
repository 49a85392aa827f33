"""Latency summaries: count, mean and percentiles (linear interpolation between closest ranks, as
numpy's default), in milliseconds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass
class Series:
    """Latencies of one operation (seconds as measured, reported in ms)."""

    name: str
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    wall_seconds: float = 0.0  # the phase's wall time, for throughput
    notes: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        ms = sorted(s * 1000 for s in self.seconds)
        return {
            "operation": self.name,
            "count": len(ms),
            "errors": self.errors,
            "mean_ms": sum(ms) / len(ms) if ms else math.nan,
            "p50_ms": percentile(ms, 50),
            "p95_ms": percentile(ms, 95),
            "p99_ms": percentile(ms, 99),
            "max_ms": ms[-1] if ms else math.nan,
            "per_second": len(ms) / self.wall_seconds if self.wall_seconds else math.nan,
            **self.notes,
        }
