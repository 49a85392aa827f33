"""/metrics: request latency per route template (ids never become labels), the outbox's queue depth and
parked jobs; only the monitoring system's bearer token, or without one a client on this machine."""

from __future__ import annotations

import re
import uuid

from telehealth.db.engine import transaction
from telehealth.outbox.models import Job
from tests.conftest import with_settings


async def test_metrics_show_latency_by_route_template_and_the_outbox(client, session_factory, clock):
    for _ in range(3):
        await client.get(f"/api/v1/plans/{uuid.uuid4()}")  # 401s, on one route template
    async with transaction(session_factory) as session:
        session.add(Job(kind="notifications.send_email", payload={}, status="parked", run_at=clock.now(), created_at=clock.now()))
        session.add(Job(kind="notifications.send_email", payload={}, status="queued", run_at=clock.now(), created_at=clock.now()))
    scraped = await client.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    body = scraped.text
    assert 'http_request_duration_seconds_count{method="GET",route="/api/v1/plans/{plan_id:uuid}",status="4xx"} 3' in body
    assert not re.search(r"route=\"[^\"]*[0-9a-f]{8}-[0-9a-f]{4}", body)  # no id ever becomes a label
    assert 'outbox_jobs{status="parked"} 1' in body and 'outbox_jobs{status="queued"} 1' in body


async def test_metrics_need_the_token_when_one_is_set(settings, database_url):
    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app

    app = create_app(with_settings(settings, metrics_token="scrape-secret"))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/metrics")).status_code == 403
        assert (await client.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 403
        assert (await client.get("/metrics", headers={"authorization": "Bearer scrape-secret"})).status_code == 200
