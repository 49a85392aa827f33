"""When a reassessment falls due (dosing/reassessment_due.py): every 6 reported sessions of the newest plan, and
at its end; answered once per checkpoint. Its completed-plan branch is covered by the booking and questionnaire
tests; this is the every-6 count, which the booking gate and the patient's home read."""

from __future__ import annotations

from datetime import timedelta

from telehealth.db.engine import transaction
from telehealth.dosing.models import DosingSession
from telehealth.dosing.reassessment_due import due_reassessment, needs_reassessment
from telehealth.prescribing.models import ReassessmentAnswer
from tests.integration.dosing.helpers import active_plan

EIGHT_SESSIONS = (100, 100, 100, 100, 100, 100, 100, 100)


async def _report(session_factory, home, clock, numbers) -> None:
    async with transaction(session_factory) as session:
        for number in numbers:
            at = clock.now() - timedelta(days=20 - 2 * number)
            session.add(
                DosingSession(
                    plan_id=home.plan_id,
                    patient_id=home.patient.patient_id,
                    number=number,
                    status="reported",
                    scheduled_at=at,
                    unlocked_at=at,
                    created_at=at,
                    updated_at=at,
                )
            )


async def test_a_reassessment_falls_due_at_the_sixth_reported_session_and_is_answered_once(session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock, doses_mg=EIGHT_SESSIONS, shipment_sessions=(4, 4))
    patient_id = home.patient.patient_id
    await _report(session_factory, home, clock, range(1, 6))
    async with session_factory() as session:
        assert await due_reassessment(session, patient_id=patient_id) is None  # five reported: not yet
        assert not await needs_reassessment(session, patient_id=patient_id)

    await _report(session_factory, home, clock, [6])
    async with session_factory() as session:
        due = await due_reassessment(session, patient_id=patient_id)
        assert due is not None and (due.plan_id, due.checkpoint, due.answered) == (home.plan_id, 6, False)
        assert await needs_reassessment(session, patient_id=patient_id)

    async with transaction(session_factory) as session:
        session.add(ReassessmentAnswer(plan_id=home.plan_id, checkpoint=6, patient_id=patient_id, answered_at=clock.now()))
    await _report(session_factory, home, clock, [7])  # the seventh does not make a new checkpoint
    async with session_factory() as session:
        due = await due_reassessment(session, patient_id=patient_id)
        assert due is not None and (due.checkpoint, due.answered) == (6, True)
