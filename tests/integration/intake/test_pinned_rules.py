"""Intake rules pinned one by one (issue 19, item 5): each test names the rule it holds and fails when the
code that enforces the rule is taken out (docs/safety-rules.md lists the break tried for each)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.db.engine import transaction
from telehealth.intake.escalations import has_open_crisis, record_contact
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from tests.helpers import csrf_headers, make_person, sign_in
from tests.integration.intake.helpers import CLEAN, new_patient, save


async def test_a_coordinator_cannot_record_crisis_contact_through_any_door(client, session_factory, settings, clock):
    """Rule 13: only a prescriber or a therapist records contact on a crisis escalation (escalations.
    CONTACT_RECORDING_ROLES, in the service that the API, the page and any other caller share); a coordinator
    sees that it is open and is refused: the escalation stays open and self-booking stays blocked. (The API
    route's own role guard is pinned by test_a_crisis_answer_is_acted_on_the_moment_it_is_saved.)"""
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    patient = await new_patient(client, session_factory, settings, clock)
    assert (await save(client, "phq9", CLEAN["phq9"] | {"phq9_9": 3})).json()["crisis"] is True
    async with session_factory() as session:
        escalation_id = await session.scalar(
            text("SELECT id FROM escalation WHERE patient_id = :p AND status = 'open'"), {"p": patient.patient_id}
        )

    # The service itself, as any caller reaches it (a signed-in coordinator, two-factor done).
    as_coordinator = SignedIn(
        user_id=coordinator.user_id,
        session_id=uuid.uuid4(),
        role=Role.COORDINATOR,
        email=coordinator.email,
        full_name="Co",
        email_verified=True,
        totp_enrolled=True,
        two_factor_verified=True,
        step_up_at=None,
    )
    with pytest.raises(InvalidInput) as refused:
        async with transaction(session_factory) as session:
            await record_contact(
                session,
                escalation_id=escalation_id,
                viewer=as_coordinator,
                note="Phoned the patient, all fine.",
                actor=Actor(coordinator.user_id, Role.COORDINATOR.value),
                now=clock.now(),
            )
    assert refused.value.code == "escalation.clinician_only"

    # The page: the queue offers no form, and posting one anyway is refused.
    client.cookies.clear()
    await sign_in(client, coordinator, clock)
    queue = await client.get("/escalations")
    assert queue.status_code == 200 and f"/escalations/{escalation_id}/contact" not in queue.text
    posted = await client.post(
        f"/escalations/{escalation_id}/contact", data={"note": "Phoned the patient."}, headers=await csrf_headers(client)
    )
    assert posted.status_code == 403, posted.text

    async with session_factory() as session:
        assert await has_open_crisis(session, patient_id=patient.patient_id)
