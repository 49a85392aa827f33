"""Screening outcomes as the patient sees them, the crisis path, and the staff view."""

from __future__ import annotations

from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from telehealth.intake.escalations import has_open_crisis
from tests.helpers import csrf_headers, drain_jobs, form_csrf_token, join_care_team, make_person, sign_in, worker_context
from tests.integration.intake.helpers import CLEAN, complete_intake, new_patient, save, submit


async def test_a_hard_blood_pressure_limit_makes_the_intake_ineligible_in_plain_words(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    await complete_intake(client, {"vitals": {"bp_systolic": "160", "bp_diastolic": "85"}})
    result = (await submit(client)).json()
    assert result["outcome"] == "ineligible"
    assert result["headline"] == "This program is not a safe fit for you right now"
    assert any("blood pressure" in line.lower() for line in result["explanations"])
    assert not any("bp." in line or "." in line.split(" ")[0] for line in result["explanations"])  # no rule ids


async def test_an_interacting_medicine_needs_review(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    await complete_intake(client, {"medications": {"classes": ["benzodiazepines"]}})
    result = (await submit(client)).json()
    assert (result["outcome"], result["crisis"]) == ("needs_review", False)
    assert result["explanations"] and "prescriber" in result["next_step"]


async def test_a_crisis_answer_is_acted_on_the_moment_it_is_saved(client, session_factory, settings, clock, smtp):
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    patient = await new_patient(client, session_factory, settings, clock)
    saved = await save(client, "phq9", CLEAN["phq9"] | {"phq9_9": 3})
    assert saved.status_code == 200
    assert saved.json()["crisis"] is True
    assert any("988" in line for line in saved.json()["crisis_resources"])
    async with session_factory() as session:
        assert await has_open_crisis(session, patient_id=patient.patient_id)
    await drain_jobs(worker_context(session_factory, settings, clock))
    alerts = {str(m["To"]): m for m in smtp.messages}
    assert set(alerts) == {"co@example.org", "rx@example.org"}
    for message in alerts.values():
        body = smtp.text_of(message).lower()
        assert "urgent item" in body and "phq" not in body and "suicid" not in body and "robin" not in body
    # saving again does not open a second escalation
    await save(client, "phq9", CLEAN["phq9"] | {"phq9_9": 3})
    await sign_in(client, coordinator, clock)
    queue = (await client.get("/api/v1/escalations")).json()
    assert [(e["patient_id"], e["kind"]) for e in queue] == [(str(patient.patient_id), "crisis")]
    not_a_clinician = await client.post(
        f"/api/v1/escalations/{queue[0]['id']}/contact", json={"note": "called"}, headers=await csrf_headers(client)
    )
    assert not_a_clinician.status_code == 403
    outsider = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    client.cookies.clear()
    await sign_in(client, outsider, clock)
    assert (await client.get("/api/v1/escalations")).json() == []  # not on this patient's care team
    blocked = await client.post(
        f"/api/v1/escalations/{queue[0]['id']}/contact", json={"note": "called"}, headers=await csrf_headers(client)
    )
    assert blocked.status_code == 404
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    recorded = await client.post(
        f"/api/v1/escalations/{queue[0]['id']}/contact",
        json={"note": "Phoned the patient at 15:10; safe, plan made."},
        headers=await csrf_headers(client),
    )
    assert (recorded.status_code, recorded.json()) == (200, [])
    async with session_factory() as session:
        assert not await has_open_crisis(session, patient_id=patient.patient_id)


async def test_a_crisis_answer_on_the_page_shows_crisis_resources_next(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    page = await client.get("/intake/cssrs")
    token = form_csrf_token(page.text)
    form = {key: str(value) for key, value in (CLEAN["cssrs"] | {"cssrs_5": 1}).items()} | {"_csrf_token": token}
    response = await client.post("/intake/cssrs", data=form)
    assert response.status_code == 200
    assert "988" in response.text and "911" in response.text and 'role="alert"' in response.text


async def test_the_care_team_reads_the_intake_and_each_read_is_audited(client, session_factory, settings, clock):
    patient = await new_patient(client, session_factory, settings, clock)
    await complete_intake(client, {"medications": {"classes": ["opioids"]}})
    await submit(client)
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    pharmacist = await make_person(session_factory, role=Role.PHARMACIST, email="ph@example.org", now=clock.now(), settings=settings)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await join_care_team(session_factory, patient, prescriber, now=clock.now())  # the consult's prescriber
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    view = (await client.get(f"/api/v1/patients/{patient.patient_id}/intake")).json()
    assert view["outcome"] == "needs_review"
    assert [r["rule_id"] for r in view["reasons"]] == ["medication.opioids"]
    assert view["answers"]["vitals"]["bp_systolic"] == 122
    page = await client.get(f"/staff/patients/{patient.patient_id}/intake")
    assert page.status_code == 200 and "medication.opioids" in page.text
    for person, expected in ((therapist, 404), (pharmacist, 403), (coordinator, 403)):  # not on the team; no records; operational only
        client.cookies.clear()
        await sign_in(client, person, clock)
        assert (await client.get(f"/api/v1/patients/{patient.patient_id}/intake")).status_code == expected
    async with session_factory() as session:
        reads = (
            await session.execute(
                select(AuditEvent.actor_role, AuditEvent.outcome)
                .where(AuditEvent.action == "patient.record.intake.read")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert reads == [("prescriber", "success"), ("prescriber", "success"), ("therapist", "denied")]


async def test_an_open_escalation_shows_on_the_staff_dashboards(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    await save(client, "cssrs", CLEAN["cssrs"] | {"cssrs_4": 1})
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    client.cookies.clear()
    await sign_in(client, coordinator, clock)
    home = await client.get("/coordinator")
    assert "1 escalation waiting" in home.text


async def test_a_risk_answer_changed_before_submission_still_reaches_the_prescriber(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    await save(client, "phq9", CLEAN["phq9"] | {"phq9_9": 3})
    await complete_intake(client)  # saves phq9 again with item 9 = 0
    result = (await submit(client)).json()
    assert (result["outcome"], result["crisis"]) == ("needs_review", True)
    async with session_factory() as session:
        from telehealth.intake.models import ScreeningDecision

        decision = (await session.execute(select(ScreeningDecision))).scalar_one()
    earlier = {r["rule_id"]: r["evidence"] for r in decision.reasons}
    assert earlier["crisis.phq9_item9_nearly_every_day"].endswith("(answered earlier, changed before submission)")
    assert "phq9.item9_positive" in earlier


async def test_a_double_submission_screens_once(client, session_factory, settings, clock):
    import asyncio

    from telehealth.accounts.models import Patient
    from telehealth.db.engine import transaction
    from telehealth.intake.service import submit_intake
    from telehealth.lib.actors import Actor
    from telehealth.lib.errors import Conflict

    patient = await new_patient(client, session_factory, settings, clock)
    await complete_intake(client)

    async def submit_once():
        try:
            async with transaction(session_factory) as session:
                record = await session.get(Patient, patient.patient_id)
                await submit_intake(session, patient=record, actor=Actor.system(), now=clock.now(), settings=settings)
                return "submitted"
        except Conflict as refusal:
            return refusal.code

    assert sorted(await asyncio.gather(submit_once(), submit_once())) == ["intake.already_submitted", "submitted"]
