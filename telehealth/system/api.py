"""/health answers while the process runs; /ready only when the database answers and the schema is current."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Controller, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from telehealth.lib.clock import Clock
from telehealth.lib.dependencies import LOOPBACK, client_ip
from telehealth.lib.errors import Forbidden
from telehealth.settings import Settings
from telehealth.system.metrics import exposition
from telehealth.system.service import outbox_figures, readiness


class HealthController(Controller):
    tags = ["operations"]

    @get("/health", media_type=MediaType.JSON, opt={"exclude_from_csrf": True}, sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", media_type=MediaType.JSON)
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        report = await readiness(state.engine)
        return Response(report, status_code=200 if report["status"] == "ready" else 503)

    @get("/metrics", media_type="text/plain; version=0.0.4", include_in_schema=False)
    async def metrics(self, request: Request, state: State, settings: NamedDependency[Settings], clock: NamedDependency[Clock]) -> str:
        """Prometheus scrape: the bearer token of METRICS_TOKEN, or (none set) a client on this machine."""
        token = settings.metrics_token
        bearer = request.headers.get("authorization", "")
        allowed = secrets.compare_digest(bearer, f"Bearer {token}") if token else client_ip(request) in LOOPBACK
        if not allowed:
            raise Forbidden("metrics.forbidden", "Metrics are for the monitoring system.")
        jobs, oldest = await outbox_figures(state.engine, now=clock.now())
        return exposition(state.metrics, jobs_by_status=jobs, oldest_queued_seconds=oldest)
