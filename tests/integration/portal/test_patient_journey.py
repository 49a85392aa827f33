"""The patient's home page always leads with the one next step, and the tracker marks where they are:
intake, then a consultation, then (with a plan) the shipment, a sitter, a session; a paused plan or an
open crisis comes first, in words that do not wait for a reply."""

from __future__ import annotations

from datetime import timedelta

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.dosing.models import DosingSession
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.lib.actors import Actor
from tests.helpers import make_person, sign_in
from tests.integration.billing.helpers import insert_appointment
from tests.integration.dosing.helpers import active_plan, execute, patient_signed_in


def next_step(html: str) -> str:
    return html.split('id="next-step"')[1].split("</section>")[0]


def current_stage(html: str) -> str:
    return html.split('aria-current="step">')[1].split("<")[0]


async def test_the_next_step_follows_the_journey(client, session_factory, settings, clock):
    fresh = await make_person(session_factory, role=Role.PATIENT, email="new@example.org", now=clock.now(), settings=settings)
    await sign_in(client, fresh, clock)
    home = (await client.get("/patient")).text
    assert "Start my intake" in next_step(home) and current_stage(home) == "Intake"

    client.cookies.clear()
    in_program = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, in_program, clock)
    home = (await client.get("/patient")).text
    assert "Add a sitter" in next_step(home) and current_stage(home) == "Home sessions"

    await execute(session_factory, "UPDATE plan_batch SET status = 'shipped', delivered_at = NULL WHERE plan_id = :p", p=in_program.plan_id)
    home = (await client.get("/patient")).text
    assert "Track my shipment" in next_step(home) and current_stage(home) == "Shipment"

    await execute(session_factory, "UPDATE troche_plan SET status = 'paused' WHERE id = :p", p=in_program.plan_id)
    assert "paused until your prescriber reviews it" in next_step((await client.get("/patient")).text)

    async with transaction(session_factory) as session:
        await open_crisis_escalation(
            session, patient_id=in_program.patient.patient_id, rule_ids=["test"], actor=Actor.system(), now=clock.now(), settings=settings
        )
    step = next_step((await client.get("/patient")).text)
    assert "988" in step and "crisis" in (await client.get("/patient")).text.split('id="next-step"')[0][-80:]


async def test_a_plan_without_an_intake_on_file_is_past_intake(client, session_factory, settings, clock):
    """The demo's home patient (and a transfer) has troches delivered and no intake here: never "Start my intake"."""
    in_program = await active_plan(session_factory, settings, clock)
    await execute(session_factory, "TRUNCATE intake CASCADE")
    await patient_signed_in(client, in_program, clock)
    home = (await client.get("/patient")).text
    assert "Start my intake" not in home and current_stage(home) == "Home sessions"


async def test_a_consultation_under_way_is_not_marked_done(client, session_factory, settings, clock):
    """A plan signed during the consult (payment due at once) must not tick "Consultation" while the consult
    is still on the patient's upcoming list."""
    in_program = await active_plan(session_factory, settings, clock)
    await insert_appointment(
        session_factory,
        patient=in_program.patient,
        clinician=in_program.prescriber,
        starts_at=clock.now() - timedelta(minutes=10),
        appointment_type="consult",
        status="booked",
        minutes=45,
    )
    await patient_signed_in(client, in_program, clock)
    home = (await client.get("/patient")).text
    assert current_stage(home) == "Consultation" and "Join from here" in next_step(home)


async def test_coming_up_lists_the_next_appointments_and_home_session(client, session_factory, settings, clock):
    """The records the journey reads (db/driver.py) reach the page: each upcoming appointment with its links,
    then the next home session."""
    in_program = await active_plan(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    held = await insert_appointment(
        session_factory,
        patient=in_program.patient,
        clinician=therapist,
        starts_at=clock.now() + timedelta(days=2),
        status="held",
        hold_expires_at=clock.now() + timedelta(minutes=10),
    )
    booked = await insert_appointment(
        session_factory, patient=in_program.patient, clinician=therapist, starts_at=clock.now() + timedelta(days=1)
    )
    async with transaction(session_factory) as session:
        dose = DosingSession(
            plan_id=in_program.plan_id,
            patient_id=in_program.patient.patient_id,
            number=1,
            status="scheduled",
            scheduled_at=clock.now() + timedelta(days=3),
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(dose)
    await patient_signed_in(client, in_program, clock)
    coming_up = (await client.get("/patient")).text.split('id="upcoming-heading"')[1].split("</section>")[0]
    items = coming_up.split("<li>")[1:]
    assert len(items) == 3
    assert items[0].startswith("Integration session") and f"/appointments/{booked}/join" in items[0] and "held" not in items[0]
    assert "(held: waiting for payment)" in items[1] and f"/appointments/{held}/cancel" in items[1]
    assert items[2].startswith("Home session 1") and f"/dosing/sessions/{dose.id}" in items[2]
