"""The clinician's page of one patient (/patients/{id}): the summary, the timeline newest first, the screening
flags in plain words, the plan with its progress, the sessions with their reports, the latest messages and
notes, the scores and the record link. Only the patient's current care team reads it (a prescriber not on the
team: 404; coordinators, pharmacists and patients: 403), a therapist's psychotherapy notes stay theirs, and
every read (and refusal) is audited. The staff homes and the escalations page link to it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, text

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.dosing.models import DosingReport, DosingSession
from telehealth.intake.models import Escalation, Intake, IntakeSection, QuestionnaireResponse, ScreeningDecision
from telehealth.messages.models import CareMessage
from telehealth.notes.models import ClinicalNote
from tests.helpers import form_csrf_token, join_care_team, make_person
from tests.integration.dosing.helpers import active_plan
from tests.integration.prescribing.helpers import switch_to

BP_FLAG = {
    "rule_id": "vitals.blood_pressure_high",
    "outcome": "needs_review",
    "crisis": False,
    "evidence": "bp 152/96",
    "clinician_text": "Blood pressure at or above 150/95: recheck and consider control before dosing.",
    "patient_text": "We will check your blood pressure.",
}


async def _patient_with_history(session_factory, settings, clock):
    """An active plan (the prescriber on the team), two therapists on the team, and a little of everything."""
    home = await active_plan(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="ther@example.org", now=clock.now(), settings=settings)
    other_therapist = await make_person(session_factory, role=Role.THERAPIST, email="ther2@example.org", now=clock.now(), settings=settings)
    for member in (therapist, other_therapist):
        await join_care_team(session_factory, home.patient, member, now=clock.now(), because="integration_booked")
    pid = home.patient.patient_id
    async with transaction(session_factory) as session:
        intake_id = await session.scalar(select(Intake.id).where(Intake.patient_id == pid))
        await session.execute(
            ScreeningDecision.__table__.update()
            .where(ScreeningDecision.patient_id == pid)
            .values(outcome="needs_review", reasons=[BP_FLAG])
        )
        session.add_all(
            [
                IntakeSection(
                    intake_id=intake_id,
                    section="demographics",
                    answers={"first_name": "Pat", "last_name": "Doe", "date_of_birth": "1980-01-15", "phone": "+12125550123"},
                    saved_at=clock.now(),
                ),
                IntakeSection(
                    intake_id=intake_id,
                    section="vitals",
                    answers={"bp_systolic": 152, "bp_diastolic": 96, "pulse": 70, "height_inches": 66, "weight_pounds": 150},
                    saved_at=clock.now(),
                ),
                QuestionnaireResponse(
                    patient_id=pid,
                    intake_id=intake_id,
                    questionnaire="phq9",
                    version="2026-1",
                    answers={},
                    score=16,
                    band="moderately_severe",
                    answered_at=clock.now() - timedelta(days=10),
                ),
                QuestionnaireResponse(
                    patient_id=pid, questionnaire="phq9", version="2026-1", answers={}, score=7, band="mild", answered_at=clock.now()
                ),
                CareMessage(
                    patient_id=pid,
                    author_user_id=home.patient.user_id,
                    author_role="patient",
                    body="Is it fine to take ibuprofen?",
                    sent_at=clock.now(),
                ),
                ClinicalNote(
                    patient_id=pid, author_user_id=therapist.user_id, body="Shared: grounding helps.", kind="shared", written_at=clock.now()
                ),
                ClinicalNote(
                    patient_id=pid,
                    author_user_id=therapist.user_id,
                    body="Private: grief about her father.",
                    kind="psychotherapy",
                    written_at=clock.now(),
                ),
                Escalation(
                    id=uuid.uuid4(),
                    patient_id=pid,
                    kind="contact",
                    status="open",
                    rule_ids="dosing.check_in.phq9_9_some_days",
                    opened_at=clock.now(),
                ),
            ]
        )
        dose = DosingSession(
            plan_id=home.plan_id,
            patient_id=pid,
            number=1,
            status="reported",
            scheduled_at=clock.now() - timedelta(hours=30),
            unlocked_at=clock.now() - timedelta(hours=30),
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(dose)
        await session.flush()
        session.add(
            DosingReport(
                dosing_session_id=dose.id,
                completed=True,
                troches_used=2,
                nausea=True,
                dissociation=4,
                reported_at=clock.now() - timedelta(hours=28),
            )
        )
    return home, therapist, other_therapist


async def test_the_care_team_reads_one_page_of_the_patient(client, session_factory, settings, clock):
    home, therapist, other_therapist = await _patient_with_history(session_factory, settings, clock)
    url = f"/patients/{home.patient.patient_id}"

    await switch_to(client, home.prescriber, clock)
    page = await client.get(url)
    assert page.status_code == 200, page.text
    body = page.text
    # Summary: name, age, state, phone, care team, and the intake's blood pressure in plain sight.
    assert "Patient: Pat" in body and "<dd>46</dd>" in body and "New York" in body and "+12125550123" in body
    assert "Ther (therapist)" in body and "Ther2 (therapist)" in body
    assert "Blood pressure 152/96 mmHg" in body
    # Screening flags in the clinician's words; the plan's doses and progress; the session's report.
    assert "Review before prescribing" in body and "Blood pressure at or above 150/95" in body
    assert "100, 100, 150, 150 mg" in body and "1 of 4 sessions reported" in body
    assert "completed; nausea; dissociation 4/10" in body
    # Messages, notes (the shared one), scores, the record and every area's own page.
    assert "Is it fine to take ibuprofen?" in body and "Shared: grounding helps." in body and "her father" not in body
    assert "16" in body and "baseline 16, -56%" in body
    for path in ("messages", "notes", "outcomes", "record", "care-team"):
        assert f'href="{url}/{path}"' in body
    assert f'href="/plans/{home.plan_id}"' in body  # the plan's prescriber opens it
    # The timeline, newest first: the escalation (now), the delivery (24 h ago), the report (28 h ago), the signature (2 days ago).
    timeline = body.split('id="timeline-heading"')[1].split("</section>")[0]
    order = [
        timeline.index(words)
        for words in (
            "Call requested: Check-in before a dose",
            "Delivered: shipment 1",
            "Home session 1 (100 mg) reported",
            "Plan of 4 sessions signed",
        )
    ]
    assert order == sorted(order), timeline

    # A therapist on the team: the same page, their own psychotherapy note, and no plan page link (not theirs).
    await switch_to(client, therapist, clock)
    mine = await client.get(url)
    assert mine.status_code == 200 and "her father" in mine.text and f'href="/plans/{home.plan_id}"' not in mine.text
    # The other therapist on the team: never the first one's psychotherapy note.
    await switch_to(client, other_therapist, clock)
    theirs = await client.get(url)
    assert theirs.status_code == 200 and "Shared: grounding helps." in theirs.text and "her father" not in theirs.text


async def test_only_the_care_team_reaches_the_page_and_every_read_is_audited(client, session_factory, settings, clock):
    home, therapist, _ = await _patient_with_history(session_factory, settings, clock)
    url = f"/patients/{home.patient.patient_id}"
    outsider = await make_person(session_factory, role=Role.PRESCRIBER, email="rx-out@example.org", now=clock.now(), settings=settings)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="coord@example.org", now=clock.now(), settings=settings)
    pharmacist = await make_person(session_factory, role=Role.PHARMACIST, email="pharm@example.org", now=clock.now(), settings=settings)
    expected = [(home.prescriber, 200), (therapist, 200), (outsider, 404), (coordinator, 403), (pharmacist, 403), (home.patient, 403)]
    for person, status in expected:
        await switch_to(client, person, clock)
        response = await client.get(url)
        assert response.status_code == status, (person.role, response.status_code)
        assert ("Blood pressure 152/96" in response.text) == (status == 200)
    # Someone else's id, and a made-up one, answer alike.
    await switch_to(client, home.prescriber, clock)
    assert (await client.get(f"/patients/{uuid.uuid4()}")).status_code == 404
    # The prescriber outside the team breaks the glass on its page: it leads to the patient's page, read under the grant.
    await switch_to(client, outsider, clock)
    form = await client.get(f"{url}/break-glass")
    broken = await client.post(
        f"{url}/break-glass", data={"reason": "ER called: patient unresponsive after a dose", "_csrf_token": form_csrf_token(form.text)}
    )
    assert broken.status_code == 200 and "Blood pressure 152/96" in broken.text, broken.text
    async with session_factory() as session:
        reads = (
            await session.execute(
                text(
                    "SELECT actor_user_id, outcome, reason FROM audit_event WHERE action = 'patient.record.chart' AND "
                    "resource_id = :pid ORDER BY id"
                ),
                {"pid": str(home.patient.patient_id)},
            )
        ).all()
    assert [(row.actor_user_id, row.outcome, (row.reason or "").split(":")[0]) for row in reads] == [
        (home.prescriber.user_id, "success", ""),
        (therapist.user_id, "success", ""),
        (outsider.user_id, "denied", "not_visible"),
        (outsider.user_id, "success", "break_glass"),
    ]


async def test_staff_lists_link_to_the_patient_page(client, session_factory, settings, clock):
    home, therapist, _ = await _patient_with_history(session_factory, settings, clock)
    link = f'href="/patients/{home.patient.patient_id}"'
    await switch_to(client, home.prescriber, clock)
    assert link in (await client.get("/prescriber")).text
    assert link in (await client.get("/escalations")).text
    assert link in (await client.get(f"/plans/{home.plan_id}")).text
    assert link in (await client.get(f"/plans/{home.plan_id}/dosing")).text
    for path in ("messages", "notes", "outcomes", "care-team"):
        assert link in (await client.get(f"/patients/{home.patient.patient_id}/{path}")).text, path
    await switch_to(client, therapist, clock)
    assert link in (await client.get("/therapist")).text
