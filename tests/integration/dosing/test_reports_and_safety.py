"""After the dose, through the real API: a serious answer in the report (fainting, 911 called, chest pain,
suicidal thoughts, BP at or above 180/120) or a sitter's end attestation with a 911 call pauses the plan
and records a serious event; the prescriber cannot simply resume it, only review it with a note and
resume or discontinue. A session is reported once and only after it was unlocked; the last session's
report completes the plan. Reports not filed are chased by the clock: the patient once after 24 h,
each coordinator once after 48 h, however often the job runs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.integration.dosing.helpers import (
    SITTER,
    active_plan,
    after_the_window,
    check_in,
    confirmed_sitter,
    coordinator,
    count,
    emails_to,
    next_unlocked,
    patient_signed_in,
    post,
    prescriber_signed_in,
    report,
    scheduled,
    sitter_device,
    unlocked_session,
)
from tests.integration.prescribing.helpers import refusal


async def plan_status(session_factory, plan_id) -> str:
    async with session_factory() as session:
        return await session.scalar(text("SELECT status FROM troche_plan WHERE id = :id"), {"id": plan_id})


async def serious_events(session_factory, plan_id) -> list[dict]:
    async with session_factory() as session:
        rows = await session.execute(text("SELECT * FROM serious_event WHERE plan_id = :id ORDER BY occurred_at"), {"id": plan_id})
        return [dict(row) for row in rows.mappings()]


# --- serious answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ({"fainting": True}, "fainting"),
        ({"emergency_services_called": True}, "emergency_services_called"),
        ({"chest_pain": True}, "chest_pain"),
        ({"suicidal_thoughts": True}, "suicidal_thoughts"),
        ({"systolic": 180, "diastolic": 120}, "blood_pressure_urgent"),
        ({"systolic": 150, "diastolic": 120}, "blood_pressure_urgent"),
    ],
    ids=["fainting", "911", "chest_pain", "suicidal_thoughts", "bp_180_120", "bp_diastolic_120"],
)
async def test_a_serious_answer_in_the_report_pauses_the_plan(client, session_factory, settings, clock, mail, answers, reason):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    reported = await report(client, unlocked["id"], **answers)
    assert reported.status_code == 201, reported.text

    assert await plan_status(session_factory, home.plan_id) == "paused"
    [event] = await serious_events(session_factory, home.plan_id)
    assert (event["source"], event["reasons"], event["dosing_session_id"], event["reviewed_at"]) == (
        "report",
        [reason],
        uuid.UUID(unlocked["id"]),
        None,
    )
    crisis = await count(session_factory, "SELECT count(*) FROM escalation WHERE kind = 'crisis' AND status = 'open'")
    assert crisis == (1 if reason == "suicidal_thoughts" else 0)


async def test_ordinary_side_effects_and_a_high_but_not_urgent_bp_do_not_pause(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    answers = {"nausea": True, "vomiting": True, "dizziness": True, "headache": True, "dissociation": 9, "systolic": 179, "diastolic": 119}
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"], **answers)).status_code == 201
    assert await plan_status(session_factory, home.plan_id) == "active"
    assert await serious_events(session_factory, home.plan_id) == []


async def test_a_sitter_reporting_a_911_call_pauses_the_plan(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, end_token = await unlocked_session(client, mail)
    ended = await post(
        sitter_device(client),
        f"/api/v1/sitter-links/{end_token}/end",
        {
            "typed_name": SITTER["full_name"],
            "outcome": "event",
            "event_description": "Fainted in the kitchen",
            "emergency_services_called": True,
        },
    )
    assert ended.status_code == 200, ended.text
    assert await plan_status(session_factory, home.plan_id) == "paused"
    [event] = await serious_events(session_factory, home.plan_id)
    assert (event["source"], event["reasons"], event["dosing_session_id"]) == (
        "sitter",
        ["emergency_services_called"],
        uuid.UUID(unlocked["id"]),
    )


async def test_a_sitter_event_without_911_alerts_the_care_team_but_does_not_pause(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, _, end_token = await unlocked_session(client, mail)
    already = len(mail.smtp.messages)
    ended = await post(
        sitter_device(client),
        f"/api/v1/sitter-links/{end_token}/end",
        {"typed_name": SITTER["full_name"], "outcome": "event", "event_description": "Very sleepy"},
    )
    assert ended.status_code == 200, ended.text
    assert await plan_status(session_factory, home.plan_id) == "active"
    assert await serious_events(session_factory, home.plan_id) == []
    await mail.deliver()
    assert len([m for m in mail.smtp.messages[already:] if m["To"] == home.prescriber.email]) == 1


# --- the prescriber's review ----------------------------------------------------------------------------


async def paused_by_a_report(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    assert (await report(client, unlocked["id"], fainting=True)).status_code == 201
    assert await plan_status(session_factory, home.plan_id) == "paused"
    await prescriber_signed_in(client, home, clock)
    return home


async def test_the_prescriber_cannot_resume_without_reviewing_and_a_review_resumes(client, session_factory, settings, clock, mail):
    home = await paused_by_a_report(client, session_factory, settings, clock, mail)

    resumed = await post(client, f"/api/v1/plans/{home.plan_id}/resume")
    assert refusal(resumed)[:2] == (422, "plan.serious_event_unreviewed")
    assert await plan_status(session_factory, home.plan_id) == "paused"

    for blank in ("", "   "):
        no_note = await post(client, f"/api/v1/plans/{home.plan_id}/review", {"note": blank, "decision": "resume"})
        assert refusal(no_note) == (422, "request.invalid", ["note"])
    assert (await serious_events(session_factory, home.plan_id))[0]["reviewed_at"] is None

    reviewed = await post(
        client, f"/api/v1/plans/{home.plan_id}/review", {"note": "Spoke with the patient; vasovagal, resolved.", "decision": "resume"}
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["status"] == "active"
    assert await plan_status(session_factory, home.plan_id) == "active"
    [event] = await serious_events(session_factory, home.plan_id)
    assert event["reviewed_at"] is not None and event["reviewed_by"] == home.prescriber.user_id
    assert (event["review_note"], event["review_decision"]) == ("Spoke with the patient; vasovagal, resolved.", "resume")
    assert await count(session_factory, "SELECT count(*) FROM audit_event WHERE action = 'serious_event.review' AND reason = 'resume'") == 1


async def test_a_review_can_discontinue_the_plan(client, session_factory, settings, clock, mail):
    home = await paused_by_a_report(client, session_factory, settings, clock, mail)
    reviewed = await post(
        client, f"/api/v1/plans/{home.plan_id}/review", {"note": "Not safe to continue at home.", "decision": "discontinue"}
    )
    assert reviewed.status_code == 200, reviewed.text
    assert await plan_status(session_factory, home.plan_id) == "discontinued"
    [event] = await serious_events(session_factory, home.plan_id)
    assert event["review_decision"] == "discontinue" and event["reviewed_at"] is not None
    assert (
        await count(session_factory, "SELECT count(*) FROM plan_batch WHERE plan_id = :p AND status = 'cancelled'", p=home.plan_id) == 1
    )  # the held batch 2


async def test_a_plan_that_is_not_paused_has_nothing_to_review(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await prescriber_signed_in(client, home, clock)
    answer = await post(client, f"/api/v1/plans/{home.plan_id}/review", {"note": "Looked at it.", "decision": "resume"})
    assert refusal(answer)[:2] == (409, "plan.not_paused")


# --- one report, after the dose -------------------------------------------------------------------------


async def test_a_session_is_reported_once(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"])).status_code == 201
    again = await report(client, unlocked["id"], troches_used=0)
    assert refusal(again)[:2] == (409, "dosing_session.already_reported")
    assert await count(session_factory, "SELECT count(*) FROM dosing_report") == 1
    assert await count(session_factory, "SELECT troches_used FROM dosing_report") == 2


async def test_a_session_never_unlocked_cannot_be_reported(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201
    refused = await report(client, booked["id"])
    assert refusal(refused)[:2] == (409, "dosing_session.not_unlocked")
    assert await count(session_factory, "SELECT count(*) FROM dosing_report") == 0


async def test_the_last_sessions_report_completes_the_plan(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock, doses_mg=(100, 150), shipment_sessions=(2,))
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201
    assert await plan_status(session_factory, home.plan_id) == "active"  # one session to go

    last = await next_unlocked(client, home, mail, sitter["id"])
    assert (last["number"], last["dose_mg"], last["troches"]) == (2, 150, 3)
    await after_the_window(client, home, clock)
    assert (await report(client, last["id"], troches_used=3)).status_code == 201
    assert await plan_status(session_factory, home.plan_id) == "completed"


# --- reports not filed ----------------------------------------------------------------------------------


async def test_a_missing_report_reminds_the_patient_once_then_alerts_each_coordinator_once(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    coordinators = [
        await coordinator(session_factory, settings, clock),
        await coordinator(session_factory, settings, clock, "coord2@example.org"),
    ]
    await patient_signed_in(client, home, clock)
    await unlocked_session(client, mail)
    unlocked_at = clock.now()
    await mail.deliver()
    already = len(mail.smtp.messages)

    def since_unlock(to: str) -> list:
        return [m for m in mail.smtp.messages[already:] if m["To"] == to]

    clock.set(unlocked_at + timedelta(hours=23, minutes=59))
    await mail.deliver()
    assert since_unlock(home.patient.email) == []

    clock.advance(timedelta(minutes=1))  # 24 h
    await mail.deliver()
    [reminder] = since_unlock(home.patient.email)
    assert "portal" in mail.smtp.text_of(reminder).lower()
    await mail.deliver()
    clock.advance(timedelta(hours=1))
    await mail.deliver()
    assert len(since_unlock(home.patient.email)) == 1  # once, however often the job runs
    assert all(since_unlock(c.email) == [] for c in coordinators)

    clock.set(unlocked_at + timedelta(hours=48))
    await mail.deliver()
    await mail.deliver()
    clock.advance(timedelta(minutes=15))
    await mail.deliver()
    for member in coordinators:
        assert len(since_unlock(member.email)) == 1, member.email
    assert len(since_unlock(home.patient.email)) == 1
    assert since_unlock(home.prescriber.email) == []


async def test_a_reported_session_is_not_chased(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    member = await coordinator(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"])).status_code == 201
    await mail.deliver()
    already = len(mail.smtp.messages)
    clock.advance(timedelta(hours=49))
    await mail.deliver()
    assert [m for m in mail.smtp.messages[already:] if m["To"] in (home.patient.email, member.email)] == []
    assert emails_to(mail, member.email) == []


async def test_a_serious_event_in_the_last_report_pauses_and_the_review_then_completes_the_plan(
    client, session_factory, settings, clock, mail
):
    home = await active_plan(session_factory, settings, clock, doses_mg=(100,), shipment_sessions=(1,))
    await patient_signed_in(client, home, clock)
    _, only, _ = await unlocked_session(client, mail)
    assert (await report(client, only["id"], fainting=True)).status_code == 201
    assert await plan_status(session_factory, home.plan_id) == "paused"  # reviewed first, even at the end

    await prescriber_signed_in(client, home, clock)
    reviewed = await post(
        client, f"/api/v1/plans/{home.plan_id}/review", {"note": "Brief faint, recovered; no further sessions.", "decision": "resume"}
    )
    assert reviewed.status_code == 200, reviewed.text
    assert await plan_status(session_factory, home.plan_id) == "completed"  # nothing left to take: not an active plan with no sessions
