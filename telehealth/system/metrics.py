"""Prometheus metrics with prometheus_client: request latency as a histogram per method, route template (never a
path with ids in it) and status class, plus the outbox's queue depth and parked (failed) jobs, read from the
database at scrape time by a collector of their own (the same figures from any process).

One process: each app keeps its own registry (several apps in one process, as in the tests, never mix).
Several processes (`uvicorn --workers N`): with PROMETHEUS_MULTIPROC_DIR set before the processes start,
prometheus_client writes every process's values to files there and a scrape of any process sums them all.
prometheus_client reads that variable itself when it is imported, hence not a setting of ours.

Not Litestar's Prometheus plugin: it keeps one global registry (apps in one process would share counts) and
its own metric names and labels (a path, not our status class), which the alerts in docs/operations.md use."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import prometheus_client
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

prometheus_client.disable_created_metrics()  # `_created` series: noise here, and absent in multiprocess mode
if _directory := os.environ.get(MULTIPROCESS_DIR_VARIABLE):
    os.makedirs(_directory, exist_ok=True)  # values are written there from the first request on


class RequestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.duration.labels(method, route, f"{status // 100}xx").observe(seconds)


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
            method = scope["method"] if scope["type"] == ScopeType.HTTP else "GET"  # scopes: HTTP only
            self.metrics.observe(method, _route_of(scope), status, time.perf_counter() - started)


class OutboxCollector:
    """The outbox's figures, read from the database just before the scrape (a collector cannot await)."""

    def __init__(self, *, jobs_by_status: dict[str, int], oldest_queued_seconds: float) -> None:
        self.jobs_by_status, self.oldest_queued_seconds = jobs_by_status, oldest_queued_seconds

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("outbox_jobs", "Jobs in the outbox by status (parked: failed after every retry).", labels=["status"])
        for status in ("queued", "running", "parked"):
            jobs.add_metric([status], self.jobs_by_status.get(status, 0))
        yield jobs
        yield GaugeMetricFamily(
            "outbox_oldest_queued_seconds", "Age of the oldest job due and not yet run.", value=self.oldest_queued_seconds
        )


def exposition(
    metrics: RequestMetrics, *, jobs_by_status: dict[str, int], oldest_queued_seconds: float, multiprocess_dir: str | None = None
) -> str:
    """The scrape: this app's requests (or, under PROMETHEUS_MULTIPROC_DIR, every process's summed) and the outbox."""
    scrape = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir or os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if directory:
        MultiProcessCollector(scrape, path=directory)
    else:
        scrape.register(metrics.registry)  # a registry is a collector too
    scrape.register(OutboxCollector(jobs_by_status=jobs_by_status, oldest_queued_seconds=oldest_queued_seconds))
    return generate_latest(scrape).decode("utf-8")
