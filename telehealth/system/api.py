"""/health answers while the process runs; /ready only when the database answers and the schema is current."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State

from telehealth.system.service import readiness


class HealthController(Controller):
    tags = ["operations"]

    @get("/health", media_type=MediaType.JSON, opt={"exclude_from_csrf": True}, sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", media_type=MediaType.JSON)
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        report = await readiness(state.engine)
        return Response(report, status_code=200 if report["status"] == "ready" else 503)
