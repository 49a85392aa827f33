"""A credentialed prescriber with hours, and patients whose screening allows booking."""

from __future__ import annotations

import uuid
from datetime import date, time

from sqlalchemy import update

from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.clinicians.models import ClinicianProfile, DeaRegistration, StateLicense
from telehealth.db.engine import transaction
from telehealth.intake.models import Intake, ScreeningDecision
from telehealth.scheduling.models import WeeklyHours
from tests.helpers import make_person


async def prescriber_with_hours(
    session_factory,
    settings,
    clock,
    *,
    email="rx@example.org",
    state="NY",
    zone="America/New_York",
    dea_expires=date(2030, 1, 1),
    hours=((time(9), time(17)),),
):
    person = await make_person(session_factory, role=Role.PRESCRIBER, email=email, now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=person.user_id, timezone=zone, created_at=clock.now()))
        session.add(StateLicense(clinician_id=person.user_id, state=state, number="L", license_type="MD", expires_on=date(2030, 1, 1)))
        session.add(
            DeaRegistration(clinician_id=person.user_id, state=state, number="BX1", schedules="II,III,IV,V", expires_on=dea_expires)
        )
        for weekday in range(7):
            for start, end in hours:
                session.add(WeeklyHours(clinician_id=person.user_id, weekday=weekday, starts_at_local=start, ends_at_local=end))
    return person


async def screened_patient(
    session_factory, settings, clock, *, email="pat@example.org", state="NY", zone="America/New_York", outcome="eligible"
):
    person = await make_person(session_factory, role=Role.PATIENT, email=email, now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        await session.execute(update(Patient).where(Patient.id == person.patient_id).values(state_of_residence=state, timezone=zone))
        if outcome:
            intake = Intake(
                id=uuid.uuid4(), patient_id=person.patient_id, status="submitted", started_at=clock.now(), submitted_at=clock.now()
            )
            session.add(intake)
            await session.flush()
            session.add(
                ScreeningDecision(
                    intake_id=intake.id, patient_id=person.patient_id, outcome=outcome, crisis=False, reasons=[], screened_at=clock.now()
                )
            )
    return person
