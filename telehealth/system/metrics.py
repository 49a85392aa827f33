"""Prometheus metrics of one app process, in the text exposition format, with no client library: request
latency as a histogram per method, route template (never a path with ids in it) and status class, plus
the outbox's queue depth and parked (failed) jobs read from the database at scrape time. Each process is
scraped on its own; the outbox figures are the same from any of them."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: int = 0
    seconds: float = 0.0

    def observe(self, seconds: float) -> None:
        self.total += 1
        self.seconds += seconds
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[index] += 1


@dataclass
class RequestMetrics:
    by_route: dict[tuple[str, str, str], Histogram] = field(default_factory=lambda: defaultdict(Histogram))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.by_route[(method, route, f"{status // 100}xx")].observe(seconds)


def _route_of(scope: Scope) -> str:
    """The matched route's template (e.g. /api/v1/plans/{plan_id:uuid}): bounded labels, no ids."""
    handler = scope.get("route_handler")
    paths = sorted(getattr(handler, "paths", ()) or ())
    return paths[0] if paths else "unmatched"


class MetricsMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: RequestMetrics) -> None:
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, remember_status)
        finally:
            self.metrics.observe(scope.get("method", "GET"), _route_of(scope), status, time.perf_counter() - started)


def _labels(**values: str) -> str:
    escaped = (f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in values.items())
    return "{" + ",".join(escaped) + "}"


def exposition(metrics: RequestMetrics, *, jobs_by_status: dict[str, int], oldest_queued_seconds: float) -> str:
    lines = [
        "# HELP http_request_duration_seconds Time from request to the end of the response, by route template.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    for (method, route, status), histogram in sorted(metrics.by_route.items()):
        base = {"method": method, "route": route, "status": status}
        for bound, count in zip(BUCKETS, histogram.counts, strict=True):
            lines.append(f"http_request_duration_seconds_bucket{_labels(**base, le=str(bound))} {count}")
        lines.append(f"http_request_duration_seconds_bucket{_labels(**base, le='+Inf')} {histogram.total}")
        lines.append(f"http_request_duration_seconds_sum{_labels(**base)} {histogram.seconds:.6f}")
        lines.append(f"http_request_duration_seconds_count{_labels(**base)} {histogram.total}")
    lines += ["# HELP outbox_jobs Jobs in the outbox by status (parked: failed after every retry).", "# TYPE outbox_jobs gauge"]
    for status in ("queued", "running", "parked"):
        lines.append(f"outbox_jobs{_labels(status=status)} {jobs_by_status.get(status, 0)}")
    lines += [
        "# HELP outbox_oldest_queued_seconds Age of the oldest job due and not yet run.",
        "# TYPE outbox_oldest_queued_seconds gauge",
        f"outbox_oldest_queued_seconds {oldest_queued_seconds:.3f}",
    ]
    return "\n".join(lines) + "\n"
