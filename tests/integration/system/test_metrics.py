"""/metrics: request latency per route template (ids never become labels), the outbox's queue depth and
parked jobs; only the monitoring system's bearer token, or without one a client on this machine."""

from __future__ import annotations

import re
import subprocess
import sys
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
    assert 'http_request_duration_seconds_count{method="GET",route="/api/v1/plans/{plan_id:uuid}",status="4xx"} 3.0' in body
    assert not re.search(r"route=\"[^\"]*[0-9a-f]{8}-[0-9a-f]{4}", body)  # no id ever becomes a label
    assert 'outbox_jobs{status="parked"} 1.0' in body and 'outbox_jobs{status="queued"} 1.0' in body
    assert "# TYPE http_request_duration_seconds histogram" in body and "# TYPE outbox_jobs gauge" in body
    assert "outbox_oldest_queued_seconds 0.0" in body


async def test_metrics_need_the_token_when_one_is_set(settings, database_url):
    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app

    app = create_app(with_settings(settings, metrics_token="scrape-secret"))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/metrics")).status_code == 403
        assert (await client.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 403
        assert (await client.get("/metrics", headers={"authorization": "Bearer scrape-secret"})).status_code == 200


RECORD_REQUESTS = """
import sys
from telehealth.system.metrics import RequestMetrics
metrics = RequestMetrics()
for _ in range(int(sys.argv[1])):
    metrics.observe("GET", "/api/v1/appointments", 200, 0.02)
"""


def test_several_processes_are_summed_through_the_multiprocess_directory(tmp_path):
    """uvicorn --workers N: each process writes its values under PROMETHEUS_MULTIPROC_DIR; a scrape of any one
    answers the sum (two processes here, with 2 and 3 requests)."""
    from telehealth.system.metrics import RequestMetrics, exposition

    for count in (2, 3):
        subprocess.run(
            [sys.executable, "-c", RECORD_REQUESTS, str(count)],
            check=True,
            timeout=60,
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "", "PYTHONPATH": "."},
        )
    assert len(list(tmp_path.glob("histogram_*.db"))) == 2  # one file per process
    body = exposition(RequestMetrics(), jobs_by_status={"parked": 2}, oldest_queued_seconds=0.0, multiprocess_dir=str(tmp_path))
    assert 'http_request_duration_seconds_count{method="GET",route="/api/v1/appointments",status="2xx"} 5.0' in body
    assert 'http_request_duration_seconds_bucket{le="0.025",method="GET",route="/api/v1/appointments",status="2xx"} 5.0' in body
    assert 'outbox_jobs{status="parked"} 2.0' in body
