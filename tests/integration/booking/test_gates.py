"""A crisis waiting for a clinician's contact blocks every way to book (booking/service.py may_book): the
patient's own booking through the API, for every kind of appointment, and on the booking page, and a
therapist's follow-up through the API and on the page. Nothing is held or booked."""

from __future__ import annotations

from datetime import date, time
from urllib.parse import unquote_plus

from sqlalchemy import func, select

from telehealth.accounts.models import CareTeamMember
from telehealth.accounts.roles import Role
from telehealth.clinicians.models import ClinicianProfile, StateLicense
from telehealth.db.engine import transaction
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.lib.actors import Actor
from telehealth.scheduling.models import Appointment, WeeklyHours
from tests.helpers import csrf_headers, make_person, sign_in
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

TUESDAY_TEN = "2026-11-24T15:00:00Z"  # 10:00 New York, 09:00 Chicago; the frozen clock is Monday 15:00 UTC
CRISIS = "booking.crisis_contact_pending"


async def _therapist_of(session_factory, settings, clock, patient):
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone="America/Chicago", created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=1, starts_at_local=time(9), ends_at_local=time(12)))
        session.add(CareTeamMember(patient_id=patient.patient_id, clinician_id=therapist.user_id, added_at=clock.now()))
    return therapist


async def test_a_crisis_waiting_for_contact_blocks_every_way_to_book(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock, outcome="eligible")
    therapist = await _therapist_of(session_factory, settings, clock, patient)
    async with transaction(session_factory) as session:
        await open_crisis_escalation(
            session,
            patient_id=patient.patient_id,
            rule_ids=["crisis.cssrs_intent_or_plan"],
            actor=Actor.system(),
            now=clock.now(),
            settings=settings,
        )

    await sign_in(client, patient, clock)
    for kind, clinician in (("consult", prescriber), ("integration", therapist), ("reassessment", prescriber)):
        body = {"type": kind, "clinician_id": str(clinician.user_id), "starts_at": TUESDAY_TEN}
        refused = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
        assert (refused.status_code, refused.json()["code"]) == (422, CRISIS), (kind, refused.text)
        assert "988" in refused.json()["detail"]
    form = {
        "clinician_id": str(prescriber.user_id),
        "starts_at": TUESDAY_TEN.replace("Z", "+00:00"),
        "type": "consult",
        "_csrf_token": client.cookies.get("csrftoken"),
    }
    page = await client.post("/appointments/book", data=form, headers=await csrf_headers(client), follow_redirects=False)
    assert page.status_code == 422 and "a clinician needs to speak with you" in page.text and "988" in page.text

    client.cookies.clear()
    await sign_in(client, therapist, clock)
    body = {"patient_id": str(patient.patient_id), "starts_at": TUESDAY_TEN}
    refused = await client.post("/api/v1/follow-ups", json=body, headers=await csrf_headers(client))
    assert (refused.status_code, refused.json()["code"]) == (422, CRISIS), refused.text
    form = {"starts_at": TUESDAY_TEN.replace("Z", "+00:00"), "_csrf_token": client.cookies.get("csrftoken")}
    page = await client.post(
        f"/clinician/follow-ups/{patient.patient_id}", data=form, headers=await csrf_headers(client), follow_redirects=False
    )
    assert page.status_code in (302, 303) and "988" in unquote_plus(page.headers["location"])

    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 0
