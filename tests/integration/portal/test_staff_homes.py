"""Each staff home shows the work waiting at a glance: the prescriber's consults today and encounters
without a decision, serious events and credentials; the coordinator's serious events, unreported
sessions, waiting list beside open consult capacity per state; the pharmacist's queue by step; the
therapist's week."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.dosing.models import DosingSession, SeriousEvent
from telehealth.prescribing.models import Encounter
from telehealth.waitlist.models import WaitlistEntry
from tests.helpers import make_person, sign_in
from tests.integration.billing.helpers import insert_appointment
from tests.integration.dosing.helpers import active_plan
from tests.integration.scheduling.helpers import prescriber_with_hours


async def test_staff_homes_show_the_waiting_work(client, session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock)
    booked_consult = await prescriber_with_hours(session_factory, settings, clock)
    today = await insert_appointment(
        session_factory,
        patient=home.patient,
        clinician=booked_consult,
        starts_at=clock.now() + timedelta(hours=2),
        appointment_type="consult",
        minutes=45,
    )
    async with transaction(session_factory) as session:
        session.add(
            Encounter(appointment_id=today, patient_id=home.patient.patient_id, prescriber_id=booked_consult.user_id, opened_at=clock.now())
        )
        session.add(
            SeriousEvent(
                plan_id=home.plan_id, patient_id=home.patient.patient_id, source="report", reasons=["fainting"], occurred_at=clock.now()
            )
        )
        session.add(
            DosingSession(
                plan_id=home.plan_id,
                patient_id=home.patient.patient_id,
                number=1,
                status="unlocked",
                scheduled_at=clock.now() - timedelta(hours=50),
                unlocked_at=clock.now() - timedelta(hours=49),
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        for index in range(3):
            session.add(
                WaitlistEntry(
                    id=uuid.uuid4(),
                    status="waiting",
                    state="NY",
                    first_name=f"W{index}",
                    last_name="Demo",
                    email=f"w{index}@example.org",
                    date_of_birth=date(1980, 1, 1),
                    consent_to_contact=True,
                    joined_at=clock.now(),
                    confirmed_at=clock.now(),
                )
            )

    await sign_in(client, booked_consult, clock)
    page = (await client.get("/prescriber")).text
    assert f'consult with <a href="/patients/{home.patient.patient_id}">Pat</a>' in page and f"/appointments/{today}/join" in page
    assert "no decision recorded yet" in page

    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    await sign_in(client, home.prescriber, clock)
    assert "1 serious event" in (await client.get("/prescriber")).text

    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    page = (await client.get("/coordinator")).text
    assert "fainting" in page and "session 1, unlocked" in page
    ny_row = page.split('<th scope="row">New York</th>')[1].split("</tr>")[0]
    waiting, slots = (int(cell.split("<")[0]) for cell in ny_row.split("<td>")[1:3])
    assert waiting == 3 and slots > 0

    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    pharmacist = await make_person(session_factory, role=Role.PHARMACIST, email="ph@example.org", now=clock.now(), settings=settings)
    await sign_in(client, pharmacist, clock)
    assert "does not belong to a pharmacy yet" in (await client.get("/pharmacist")).text  # placed in none: told why, shown nothing
