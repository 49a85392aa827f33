"""Only a clinician (a prescriber or a therapist) records contact on a crisis escalation, and the rule is the
service's own, not only the API's guard: a coordinator calling the service (a page, the CLI, a job) is
refused and the escalation stays open, so self-booking stays blocked. The mutation check (python -m
tests.mutation) found no test failing with coordinators added to the service's roles."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.db.engine import transaction
from telehealth.intake.escalations import has_open_crisis, open_crisis_escalation, record_contact
from telehealth.intake.models import Escalation
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from tests.helpers import make_person
from tests.integration.scheduling.helpers import screened_patient


def signed_in_as(person, role: Role) -> SignedIn:
    return SignedIn(
        user_id=person.user_id,
        session_id=uuid.uuid4(),
        role=role,
        email=person.email,
        full_name=person.email,
        email_verified=True,
        totp_enrolled=True,
        two_factor_verified=True,
        step_up_at=None,
    )


async def test_a_coordinator_cannot_record_contact_even_through_the_service(session_factory, settings, clock):
    patient = await screened_patient(session_factory, settings, clock, outcome="needs_review")
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        assert await open_crisis_escalation(
            session,
            patient_id=patient.patient_id,
            rule_ids=["crisis.cssrs_intent_or_plan"],
            actor=Actor.system(),
            now=clock.now(),
            settings=settings,
        )
    async with session_factory() as session:
        escalation_id = await session.scalar(select(Escalation.id).where(Escalation.patient_id == patient.patient_id))

    with pytest.raises(InvalidInput) as refused:
        async with transaction(session_factory) as session:
            await record_contact(
                session,
                escalation_id=escalation_id,
                viewer=signed_in_as(coordinator, Role.COORDINATOR),
                note="Phoned her",
                actor=Actor.system(),
                now=clock.now(),
            )
    assert refused.value.code == "escalation.clinician_only"
    async with session_factory() as session:
        assert await has_open_crisis(session, patient_id=patient.patient_id)

    async with transaction(session_factory) as session:  # a prescriber may
        await record_contact(
            session,
            escalation_id=escalation_id,
            viewer=signed_in_as(prescriber, Role.PRESCRIBER),
            note="Phoned her at 15:10; safe.",
            actor=Actor.system(),
            now=clock.now(),
        )
    async with session_factory() as session:
        assert not await has_open_crisis(session, patient_id=patient.patient_id)
