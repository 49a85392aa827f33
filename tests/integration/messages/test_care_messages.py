"""Care-team messages: the patient writes, their care team hears only "You have a new message"; a
therapist not on the care team and a pharmacist cannot read the conversation; a clinician answers; staff
see messages waiting more than one business day (weekends do not count); bad input gets a 4xx naming the
field."""

from __future__ import annotations

from datetime import datetime, timedelta

from telehealth.accounts.models import CareTeamMember
from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.messages.service import business_days_before
from tests.helpers import form_csrf_token, make_person, sign_in
from tests.integration.scheduling.helpers import screened_patient


async def write(client, page_url: str, body: str):
    page = await client.get(page_url)
    return await client.post(page_url, data={"body": body, "_csrf_token": form_csrf_token(page.text)}, headers={"accept": "text/html"})


def test_business_days_skip_the_weekend():
    monday_9 = datetime(2026, 12, 7, 9)
    assert business_days_before(monday_9, 1) == datetime(2026, 12, 4, 9)  # Friday
    assert business_days_before(datetime(2026, 12, 9, 9), 1) == datetime(2026, 12, 8, 9)


async def test_a_conversation_and_the_waiting_list(client, session_factory, settings, clock, smtp):
    patient = await screened_patient(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="th@example.org", now=clock.now(), settings=settings)
    outsider = await make_person(session_factory, role=Role.THERAPIST, email="other@example.org", now=clock.now(), settings=settings)
    pharmacist = await make_person(session_factory, role=Role.PHARMACIST, email="ph@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(CareTeamMember(patient_id=patient.patient_id, clinician_id=therapist.user_id, added_at=clock.now()))

    await sign_in(client, patient, clock)
    empty = await write(client, "/messages", "   ")
    assert empty.status_code == 422 and "Write your message first" in empty.text
    too_long = await write(client, "/messages", "x" * 4001)
    assert too_long.status_code == 422
    sent = await write(client, "/messages", "My sitter is away next week. Can we talk about moving session 3?")
    assert sent.status_code == 200 and "moving session 3" in sent.text

    from tests.integration.billing.helpers import run_jobs

    await run_jobs(session_factory, settings, clock)
    to_therapist = [m for m in smtp.messages if m["To"] == "th@example.org"]
    assert len(to_therapist) == 1 and "new message" in smtp.text_of(to_therapist[0]) and "session 3" not in smtp.text_of(to_therapist[0])

    clock.advance(timedelta(days=3))  # Monday 23 Nov 15:00 -> Thursday: more than one business day
    for person, status in ((outsider, 404), (pharmacist, 403)):
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))
        await sign_in(client, person, clock)
        assert (await client.get(f"/patients/{patient.patient_id}/messages")).status_code == status
    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    await sign_in(client, therapist, clock)
    waiting = await client.get("/messages/waiting")
    assert f"/patients/{patient.patient_id}/messages" in waiting.text
    answered = await write(client, f"/patients/{patient.patient_id}/messages", "Yes: pick a new time on your sessions page, it is free.")
    assert answered.status_code == 200 and "pick a new time" in answered.text
    assert f"/patients/{patient.patient_id}/messages" not in (await client.get("/messages/waiting")).text

    await run_jobs(session_factory, settings, clock)
    to_patient = [m for m in smtp.messages if m["To"] == patient.email]
    assert len(to_patient) == 1 and "pick a new time" not in smtp.text_of(to_patient[0])
