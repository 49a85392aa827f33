"""Each gate before a home dose, through the real API: alone it keeps the dose locked and the 422 names it
in `gates` (code and sentence); removing it lets the dose unlock. The sitter's presence counts only for
this session; a check-in counts for 60 minutes; 140/90 holds with one re-check after 5 minutes; 180/120
and a crisis answer hold the session, pause the plan and alert the care team; the batch must be
delivered and the plan's interval respected (at scheduling and at unlock); a paused or discontinued plan
unlocks nothing; two taps at once unlock once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from tests.integration.dosing.helpers import (
    active_plan,
    after_the_window,
    check_in,
    confirmed_sitter,
    coordinator,
    count,
    emails_to,
    execute,
    gate_codes,
    patient_signed_in,
    ready_session,
    report,
    schedule,
    scheduled,
    sitter_present,
    unlock,
    unlocked_session,
)
from tests.integration.prescribing.helpers import at_once, refusal, request_as


async def session_status(session_factory, session_id: str) -> str:
    from sqlalchemy import text

    async with session_factory() as session:
        return await session.scalar(text("SELECT status FROM dosing_session WHERE id = :id"), {"id": uuid.UUID(session_id)})


async def plan_status(session_factory, plan_id) -> str:
    from sqlalchemy import text

    async with session_factory() as session:
        return await session.scalar(text("SELECT status FROM troche_plan WHERE id = :id"), {"id": plan_id})


async def unlocks(session_factory) -> int:
    return await count(session_factory, "SELECT count(*) FROM audit_event WHERE action = 'dosing_session.unlock'")


# --- the sitter's presence ------------------------------------------------------------------------------


async def test_without_the_sitters_presence_the_dose_stays_locked(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201

    refused = await unlock(client, booked["id"])
    assert gate_codes(refused) == ["gate.sitter_not_present"]
    [gate] = refused.json()["gates"]
    assert "sitter" in gate["detail"].lower()
    assert refused.json()["code"] == "dosing.unlock_refused"
    assert await session_status(session_factory, booked["id"]) == "scheduled" and await unlocks(session_factory) == 0

    await sitter_present(client, mail)
    assert (await unlock(client, booked["id"])).status_code == 200


async def test_presence_for_another_patients_session_does_not_count(client, session_factory, settings, clock, mail):
    """The same sitter sits for two patients; being present for one opens nothing for the other."""
    other = await active_plan(session_factory, settings, clock, email="other@example.org")
    await patient_signed_in(client, other, clock)
    sitter_of_other = await confirmed_sitter(client, mail)
    await scheduled(client, sitter_of_other["id"], clock.now() + timedelta(minutes=30))
    await sitter_present(client, mail)  # present for the other patient's session

    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201
    assert gate_codes(await unlock(client, booked["id"])) == ["gate.sitter_not_present"]

    await sitter_present(client, mail)  # their presence link for this session
    assert (await unlock(client, booked["id"])).status_code == 200


async def test_presence_at_an_earlier_session_does_not_count_for_the_next(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201

    clock.advance(timedelta(hours=48))
    await patient_signed_in(client, home, clock)
    second = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert second["number"] == 2
    assert (await check_in(client, second["id"])).status_code == 201
    assert gate_codes(await unlock(client, second["id"])) == ["gate.sitter_not_present"]


# --- the check-in ---------------------------------------------------------------------------------------


async def test_no_check_in_keeps_the_dose_locked(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    await sitter_present(client, mail)
    assert gate_codes(await unlock(client, booked["id"])) == ["gate.check_in_missing"]


async def test_a_check_in_61_minutes_old_is_stale_and_a_fresh_one_unlocks(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=60))
    assert (await check_in(client, booked["id"])).status_code == 201  # exactly an hour before: the window opens
    await sitter_present(client, mail)

    clock.advance(timedelta(minutes=61))
    await patient_signed_in(client, home, clock)  # the idle session ended meanwhile
    refused = await unlock(client, booked["id"])
    assert gate_codes(refused) == ["gate.check_in_stale"]
    assert "60 minutes" in refused.json()["gates"][0]["detail"]

    again = await check_in(client, booked["id"])
    assert again.status_code == 201 and again.json()["attempt"] == 2
    assert (await unlock(client, booked["id"])).status_code == 200


async def test_blood_pressure_140_90_holds_the_dose(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    checked = await check_in(client, booked["id"], systolic=140, diastolic=90)
    assert checked.status_code == 201, checked.text
    body = checked.json()
    assert (body["held"], [g["code"] for g in body["gates"]]) == (False, ["gate.blood_pressure_high"])
    assert body["recheck_from"] is not None
    await sitter_present(client, mail)

    refused = await unlock(client, booked["id"])
    assert gate_codes(refused) == ["gate.blood_pressure_high"]
    assert "140/90" in refused.json()["gates"][0]["detail"]


async def test_blood_pressure_139_89_unlocks(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    checked = await check_in(client, booked["id"], systolic=139, diastolic=89)
    assert checked.status_code == 201 and checked.json()["gates"] == []
    await sitter_present(client, mail)
    assert (await unlock(client, booked["id"])).status_code == 200


async def high_first_reading(client, session_factory, settings, clock, mail) -> dict:
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    first = await check_in(client, booked["id"], systolic=150, diastolic=85)
    assert first.status_code == 201 and first.json()["held"] is False
    await sitter_present(client, mail)
    return booked


async def test_a_re_check_before_five_minutes_is_refused(client, session_factory, settings, clock, mail):
    booked = await high_first_reading(client, session_factory, settings, clock, mail)
    clock.advance(timedelta(minutes=4, seconds=59))
    early = await check_in(client, booked["id"])
    assert refusal(early)[:2] == (422, "check_in.recheck_too_soon")
    assert early.json()["recheck_from"]
    assert await count(session_factory, "SELECT count(*) FROM dosing_check_in") == 1


async def test_a_re_check_still_high_holds_the_session(client, session_factory, settings, clock, mail):
    booked = await high_first_reading(client, session_factory, settings, clock, mail)
    clock.advance(timedelta(minutes=5))
    recheck = await check_in(client, booked["id"], systolic=138, diastolic=92)
    assert recheck.status_code == 201, recheck.text
    assert (recheck.json()["attempt"], recheck.json()["held"]) == (2, True)
    assert await session_status(session_factory, booked["id"]) == "held"
    codes = gate_codes(await unlock(client, booked["id"]))
    assert "gate.session_held" in codes and "gate.blood_pressure_high" in codes
    third = await check_in(client, booked["id"])
    assert refusal(third)[:2] == (409, "dosing_session.not_scheduled")  # no third reading


async def test_a_normal_re_check_unlocks(client, session_factory, settings, clock, mail):
    booked = await high_first_reading(client, session_factory, settings, clock, mail)
    clock.advance(timedelta(minutes=5))
    recheck = await check_in(client, booked["id"], systolic=132, diastolic=84)
    assert recheck.status_code == 201 and (recheck.json()["attempt"], recheck.json()["held"], recheck.json()["gates"]) == (2, False, [])
    assert (await unlock(client, booked["id"])).status_code == 200
    assert refusal(await check_in(client, booked["id"]))[:2] == (409, "dosing_session.not_scheduled")


async def test_only_one_re_check_is_allowed(client, session_factory, settings, clock, mail):
    booked = await high_first_reading(client, session_factory, settings, clock, mail)
    clock.advance(timedelta(minutes=5))
    assert (await check_in(client, booked["id"], systolic=132, diastolic=84)).status_code == 201
    clock.advance(timedelta(minutes=5))
    assert refusal(await check_in(client, booked["id"]))[:2] == (409, "check_in.already_done")


async def test_blood_pressure_180_120_takes_the_urgent_path(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    coordinators = [
        await coordinator(session_factory, settings, clock),
        await coordinator(session_factory, settings, clock, "coord2@example.org"),
    ]
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    already = len(mail.smtp.messages)

    checked = await check_in(client, booked["id"], systolic=180, diastolic=120)
    assert checked.status_code == 201, checked.text
    body = checked.json()
    assert (body["held"], body["urgent"], body["crisis"]) == (True, True, False)
    assert [g["code"] for g in body["gates"]] == ["gate.blood_pressure_urgent"] and "911" in body["gates"][0]["detail"]
    assert await session_status(session_factory, booked["id"]) == "held"
    assert await plan_status(session_factory, home.plan_id) == "paused"
    assert (
        await count(
            session_factory,
            "SELECT count(*) FROM serious_event WHERE plan_id = :p AND source = 'check_in' AND reasons = '[\"blood_pressure_urgent\"]' "
            "AND reviewed_at IS NULL",
            p=home.plan_id,
        )
        == 1
    )
    assert set(gate_codes(await unlock(client, booked["id"]))) >= {"gate.plan_paused", "gate.session_held", "gate.blood_pressure_urgent"}

    await mail.deliver()
    for staff in [home.prescriber, *coordinators]:
        received = [m for m in emails_to(mail, staff.email) if m in mail.smtp.messages[already:]]
        assert len(received) == 1, (staff.email, [m["Subject"] for m in received])
        words = (str(received[0]["Subject"]) + mail.smtp.text_of(received[0])).lower()
        for leak in ("180", "120", "blood pressure", "ketamine", "troche", "dose", "mg"):
            assert leak not in words, (leak, words)


async def test_a_crisis_answer_opens_the_escalation_and_holds_the_session(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))

    checked = await check_in(client, booked["id"], phq9_item9=3)
    assert checked.status_code == 201, checked.text
    body = checked.json()
    assert (body["held"], body["crisis"], body["care_team_contact"]) == (True, True, False)
    assert body["crisis_resources"] and any("988" in line for line in body["crisis_resources"])
    assert (
        await count(
            session_factory,
            "SELECT count(*) FROM escalation WHERE patient_id = :p AND kind = 'crisis' AND status = 'open'",
            p=home.patient.patient_id,
        )
        == 1
    )
    assert await session_status(session_factory, booked["id"]) == "held"
    assert await plan_status(session_factory, home.plan_id) == "paused"
    codes = gate_codes(await unlock(client, booked["id"]))
    assert "gate.session_held" in codes and "gate.crisis" in codes
    await mail.deliver()  # the prescriber hears once, from the escalation, not again for the serious event
    assert len(emails_to(mail, home.prescriber.email)) == 1


@pytest.mark.parametrize("answer", [1, 2])
async def test_some_days_of_such_thoughts_hold_the_dose_and_ask_the_care_team_to_call_without_pausing(
    client, session_factory, settings, clock, mail, answer
):
    """DOMAIN.md, graded check-in answers: PHQ-9 item 9 of 1 or 2 holds the dose and opens a contact request
    for the care team; the plan is not paused; the next dose waits until a clinician has spoken with them."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))

    body = (await check_in(client, booked["id"], phq9_item9=answer)).json()
    assert (body["held"], body["crisis"], body["care_team_contact"]) == (True, False, True)
    assert any("988" in line for line in body["crisis_resources"])
    assert await session_status(session_factory, booked["id"]) == "held"
    assert await plan_status(session_factory, home.plan_id) == "active"
    patient = home.patient.patient_id
    assert (
        await count(
            session_factory, "SELECT count(*) FROM escalation WHERE patient_id = :p AND kind = 'contact' AND status = 'open'", p=patient
        )
        == 1
    )
    assert await count(session_factory, "SELECT count(*) FROM escalation WHERE patient_id = :p AND kind = 'crisis'", p=patient) == 0
    assert await count(session_factory, "SELECT count(*) FROM serious_event WHERE patient_id = :p", p=patient) == 0
    await mail.deliver()
    assert len(emails_to(mail, home.prescriber.email)) == 1  # asked to call, with no detail in the email

    # Not a crisis: the patient may schedule again, but that dose stays locked until someone has called.
    clock.advance(timedelta(minutes=10))
    again = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=40))
    assert (await check_in(client, again["id"])).status_code == 201
    await sitter_present(client, mail)
    assert gate_codes(await unlock(client, again["id"])) == ["gate.care_team_contact_pending"]
    await execute(
        session_factory, "UPDATE escalation SET status = 'contact_recorded', contact_recorded_at = now() WHERE patient_id = :p", p=patient
    )
    assert (await unlock(client, again["id"])).status_code == 200


async def test_a_good_check_in_answers_no_crisis_resources(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    body = (await check_in(client, booked["id"])).json()
    assert (body["held"], body["crisis"], body["crisis_resources"], body["gates"]) == (False, False, None, [])


# --- the batch and the interval -------------------------------------------------------------------------


async def test_a_dose_in_an_undelivered_batch_is_neither_scheduled_nor_unlocked(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock, delivered=0)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    refused = await schedule(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert refusal(refused)[:2] == (422, "dosing.batch_not_delivered")

    session_id = uuid.uuid4()  # as if scheduled while it looked delivered
    await execute(
        session_factory,
        "INSERT INTO dosing_session (id, plan_id, patient_id, sitter_id, number, status, scheduled_at, ics_sequence, "
        "created_at, updated_at) "
        "VALUES (:id, :plan, :patient, :sitter, 1, 'scheduled', :at, 0, :now, :now)",
        id=session_id,
        plan=home.plan_id,
        patient=home.patient.patient_id,
        sitter=uuid.UUID(sitter["id"]),
        at=clock.now() + timedelta(minutes=30),
        now=clock.now(),
    )
    assert (await check_in(client, str(session_id))).status_code == 201
    await sitter_present(client, mail)
    assert gate_codes(await unlock(client, str(session_id))) == ["gate.batch_not_delivered"]

    await execute(
        session_factory,
        "UPDATE plan_batch SET status = 'delivered', units_filled = units, delivered_at = :now WHERE id = :id",
        id=home.batch_ids[0],
        now=clock.now(),
    )
    assert (await unlock(client, str(session_id))).status_code == 200


async def test_the_minimum_interval_at_scheduling_and_at_unlock(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    unlocked_at = clock.now()
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201

    too_soon = await schedule(client, sitter["id"], unlocked_at + timedelta(hours=47, minutes=59))
    assert refusal(too_soon) == (422, "dosing.too_soon", ["starts_at"])
    second = await scheduled(client, sitter["id"], unlocked_at + timedelta(hours=48, minutes=30))

    clock.advance(timedelta(hours=48))  # 30 minutes before the second session
    await patient_signed_in(client, home, clock)
    assert (await check_in(client, second["id"])).status_code == 201
    await sitter_present(client, mail)
    # The first dose was later than we thought (as if it had been unlocked 47 h 59 min ago).
    await execute(
        session_factory,
        "UPDATE dosing_session SET unlocked_at = :at WHERE id = :id",
        at=clock.now() - timedelta(hours=47, minutes=59),
        id=uuid.UUID(first["id"]),
    )
    refused = await unlock(client, second["id"])
    assert gate_codes(refused) == ["gate.too_soon"]
    assert "48 hours" in refused.json()["gates"][0]["detail"]

    await execute(
        session_factory,
        "UPDATE dosing_session SET unlocked_at = :at WHERE id = :id",
        at=clock.now() - timedelta(hours=48),
        id=uuid.UUID(first["id"]),
    )
    assert (await unlock(client, second["id"])).status_code == 200


# --- the plan -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [("paused", "gate.plan_paused"), ("discontinued", "gate.plan_discontinued")])
async def test_a_paused_or_discontinued_plan_unlocks_nothing(client, session_factory, settings, clock, mail, status, code):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, mail)
    await execute(
        session_factory,
        "UPDATE troche_plan SET status = :status, status_reason = 'by the test' WHERE id = :id",
        status=status,
        id=home.plan_id,
    )
    assert gate_codes(await unlock(client, booked["id"])) == [code]
    assert await session_status(session_factory, booked["id"]) == "scheduled" and await unlocks(session_factory) == 0


# --- two taps at once -----------------------------------------------------------------------------------


async def test_two_concurrent_unlocks_both_answer_unlocked_and_unlock_once(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, mail)
    browser = httpx.Cookies(client.cookies)
    url = f"/api/v1/my/dosing/sessions/{booked['id']}/unlock"

    answers = await at_once(client, [request_as(client, browser, "POST", url, json={}) for _ in range(2)])

    assert [a.status_code for a in answers] == [200, 200], [(a.status_code, a.text) for a in answers]
    assert {a.json()["status"] for a in answers} == {"unlocked"}
    assert len({a.json()["unlocked_at"] for a in answers}) == 1
    assert await unlocks(session_factory) == 1
    assert await count(session_factory, "SELECT count(*) FROM dosing_session WHERE status = 'unlocked'") == 1


async def test_the_re_check_opens_at_the_minute_the_screen_shows(client, session_factory, settings, clock, mail):
    """The page shows the re-check time in minutes ("from 15:06"); a first reading at 15:00:38 must not
    refuse a re-check at 15:06:00 that the screen offered."""
    clock.advance(timedelta(seconds=38))
    booked = await high_first_reading(client, session_factory, settings, clock, mail)
    too_soon = (await check_in(client, booked["id"])).json()
    shown = datetime.fromisoformat(too_soon["recheck_from"])
    assert (shown.second, shown.microsecond) == (0, 0), too_soon
    clock.set(shown - timedelta(seconds=1))
    assert refusal(await check_in(client, booked["id"]))[:2] == (422, "check_in.recheck_too_soon")
    clock.set(shown)
    assert (await check_in(client, booked["id"], systolic=130, diastolic=80)).status_code == 201
