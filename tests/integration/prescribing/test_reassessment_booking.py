"""A reassessment is booked only with a plan that needs one (here: a completed plan); it is part of the plan,
so it is booked without a payment."""

from __future__ import annotations

from sqlalchemy import update

from telehealth.db.engine import transaction
from telehealth.prescribing.models import TrochePlan
from tests.helpers import csrf_headers, sign_in
from tests.integration.billing.helpers import plan_row
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient


async def test_a_reassessment_needs_a_plan_that_needs_one(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    body = {"type": "reassessment", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    refused = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert (refused.status_code, refused.json()["code"]) == (422, "booking.reassessment_needs_plan")

    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:  # an active plan with no sessions reported: not yet
        await session.execute(
            update(TrochePlan).where(TrochePlan.id == plan_id).values(status="active", content_sha256="0" * 64, signed_at=clock.now())
        )
    still = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert still.json()["code"] == "booking.reassessment_needs_plan"

    async with transaction(session_factory) as session:  # the plan's last session is done
        await session.execute(update(TrochePlan).where(TrochePlan.id == plan_id).values(status="completed"))
    booked = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert booked.status_code == 201, booked.text
    assert (booked.json()["status"], booked.json()["checkout_url"]) == ("booked", None)


async def test_the_reassessment_is_booked_from_the_page_without_paying(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:
        await session.execute(
            update(TrochePlan).where(TrochePlan.id == plan_id).values(status="completed", content_sha256="0" * 64, signed_at=clock.now())
        )
    await sign_in(client, patient, clock)
    page = await client.get("/appointments/book", params={"type": "reassessment"})
    assert page.status_code == 200 and "Book a reassessment" in page.text and "nothing to pay" in page.text
    form = {
        "clinician_id": str(prescriber.user_id),
        "starts_at": "2026-11-24T15:00:00+00:00",
        "type": "reassessment",
        "_csrf_token": client.cookies.get("csrftoken"),
    }
    booked = await client.post("/appointments/book", data=form, headers=await csrf_headers(client), follow_redirects=False)
    assert booked.status_code in (301, 302, 303) and booked.headers["location"] == "/appointments?done=booked", booked.text
