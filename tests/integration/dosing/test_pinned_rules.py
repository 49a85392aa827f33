"""Dosing rules pinned one by one (issue 19, item 5): each test names the rule it holds and fails when the
code that enforces the rule is taken out (docs/safety-rules.md lists the break tried for each)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from telehealth.accounts.models import Patient
from telehealth.db.engine import transaction
from telehealth.dosing.before_dose import unlock_session
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.lib.actors import Actor
from tests.helpers import csrf_headers, send_in_thread, until_lock_waiters
from tests.integration.dosing.helpers import (
    active_plan,
    after_the_window,
    check_in,
    confirmed_sitter,
    coordinator,
    count,
    execute,
    gate_codes,
    patient_signed_in,
    post,
    ready_session,
    report,
    schedule,
    scheduled,
    sitter_present,
    unlock,
    unlocked_session,
)
from tests.integration.prescribing.helpers import at_once, refusal, request_as

COUNTED_AS_SESSION_1 = (
    "SELECT count(*) FROM dosing_session WHERE plan_id = :p AND number = 1 AND status IN ('scheduled', 'unlocked', 'reported')"
)


async def test_the_minimum_interval_counts_a_dose_unlocked_but_not_yet_reported(client, session_factory, settings, clock, mail):
    """Rule 1: the interval runs from the last dose taken, which is the last unlock, reported or not
    (sessions.last_dose_at); a patient who has not reported yet cannot schedule or open the next dose early."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)  # unlocked, never reported
    unlocked_at = clock.now()

    too_soon = await schedule(client, sitter["id"], unlocked_at + timedelta(hours=47, minutes=59))
    assert refusal(too_soon) == (422, "dosing.too_soon", ["starts_at"])
    second = await scheduled(client, sitter["id"], unlocked_at + timedelta(hours=48, minutes=30))

    clock.advance(timedelta(hours=48))  # 30 minutes before the second session; the first is still not reported
    await patient_signed_in(client, home, clock)
    assert (await check_in(client, second["id"])).status_code == 201
    await sitter_present(client, mail)
    await execute(
        session_factory,
        "UPDATE dosing_session SET unlocked_at = :at WHERE id = :id",
        at=clock.now() - timedelta(hours=47, minutes=59),
        id=uuid.UUID(first["id"]),
    )
    assert gate_codes(await unlock(client, second["id"])) == ["gate.too_soon"]


async def test_a_crisis_opened_after_scheduling_keeps_the_dose_locked_until_contact(client, session_factory, settings, clock, mail):
    """Rule 2: an open crisis escalation is an unlock gate (gates.crisis_open, fed by before_dose.unlock_facts):
    a session scheduled and checked in before the crisis opened stays locked until a clinician records contact."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, mail)  # scheduled, a good check-in, the sitter present
    async with transaction(session_factory) as session:  # e.g. a crisis answer in a reassessment, opened meanwhile
        assert await open_crisis_escalation(
            session, patient_id=home.patient.patient_id, rule_ids=["phq9.item9"], actor=Actor.system(), now=clock.now(), settings=settings
        )
    assert gate_codes(await unlock(client, booked["id"])) == ["gate.crisis_open"]

    await execute(
        session_factory,
        "UPDATE escalation SET status = 'contact_recorded', contact_recorded_at = :now WHERE patient_id = :p",
        now=clock.now(),
        p=home.patient.patient_id,
    )
    assert (await unlock(client, booked["id"])).status_code == 200


async def test_two_schedulings_of_session_1_at_once_schedule_it_once(client, session_factory, settings, clock, mail):
    """Rule 5 (both indexes together): two requests scheduling the next session at once, from two browsers,
    give one session and a 409; either unique index on dosing_session refuses the second (each alone is
    pinned below)."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    await csrf_headers(client)
    browser, url = httpx.Cookies(client.cookies), "/api/v1/my/dosing/sessions"
    bodies = [{"starts_at": (clock.now() + timedelta(hours=hours)).isoformat(), "sitter_id": sitter["id"]} for hours in (2, 3)]

    answers = await at_once(client, [request_as(client, browser, "POST", url, json=body) for body in bodies])

    assert sorted(a.status_code for a in answers) == [201, 409], [(a.status_code, a.text) for a in answers]
    assert {a.json().get("code") for a in answers if a.status_code == 409} == {"dosing.already_scheduled"}
    assert await count(session_factory, COUNTED_AS_SESSION_1, p=home.plan_id) == 1


async def test_scheduling_while_session_1_is_being_unlocked_does_not_make_a_second_session_1(
    client, session_factory, settings, clock, mail
):
    """Rule 5 (uq_dosing_session_number): a scheduling that counted the doses taken before session 1's unlock
    committed computes "session 1" again; once the unlock commits that session is no longer `scheduled` (the
    one-scheduled index lets it through) and only the number index refuses a second session 1."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await ready_session(client, mail)
    body = {"starts_at": (clock.now() + timedelta(hours=2)).isoformat(), "sitter_id": sitter["id"]}
    again = client.build_request("POST", "/api/v1/my/dosing/sessions", json=body, headers=await csrf_headers(client))

    async with session_factory() as tap:  # the unlock tap's transaction, written and not yet committed
        patient = await tap.get(Patient, home.patient.patient_id)
        await unlock_session(
            tap,
            patient=patient,
            dosing_session_id=uuid.UUID(first["id"]),
            actor=Actor(home.patient.user_id, "patient"),
            now=clock.now(),
            settings=settings,
        )
        scheduling = await send_in_thread(client, again)
        await until_lock_waiters(session_factory, 1, tasks=[scheduling])
        await tap.commit()
    answer = await scheduling

    # 409 from the index today; 422 too soon if scheduling ever waits for the unlock (a per-patient lock)
    assert refusal(answer)[:2] in {(409, "dosing.already_scheduled"), (422, "dosing.too_soon")}, answer.text
    assert await count(session_factory, COUNTED_AS_SESSION_1, p=home.plan_id) == 1


@pytest.mark.parametrize(
    ("index", "rows"),
    [
        ("uq_dosing_session_number", [(1, "unlocked"), (1, "scheduled")]),  # session 1 taken, and scheduled again
        ("uq_dosing_session_one_scheduled", [(1, "scheduled"), (2, "scheduled")]),  # two sessions waiting at once
    ],
)
async def test_the_database_refuses_what_each_dosing_session_index_forbids(client, session_factory, settings, clock, index, rows):
    """Rule 5 (each index alone, whatever the application does): one row per dose number among the sessions that
    count, and one scheduled session per plan at a time."""
    home = await active_plan(session_factory, settings, clock)
    insert = (
        "INSERT INTO dosing_session (id, plan_id, patient_id, number, status, scheduled_at, unlocked_at, ics_sequence, "
        "created_at, updated_at) "
        "VALUES (:id, :plan, :patient, :number, :status, :at, :unlocked_at, 0, :now, :now)"
    )

    def values(number, status):
        return {
            "id": uuid.uuid4(),
            "plan": home.plan_id,
            "patient": home.patient.patient_id,
            "number": number,
            "status": status,
            "at": clock.now() + timedelta(hours=number),
            "unlocked_at": clock.now() if status == "unlocked" else None,
            "now": clock.now(),
        }

    await execute(session_factory, insert, **values(*rows[0]))
    with pytest.raises(IntegrityError, match=index):
        await execute(session_factory, insert, **values(*rows[1]))


async def test_reporting_lost_troches_emails_the_care_team_once_without_details(client, session_factory, settings, clock, mail):
    """Rule 8: a loss report raises a flag (inventory.report_loss -> raise_flag) and the flag alerts the care
    team (alerts.alert_care_team): one email each to the plan's prescriber and every active coordinator, saying
    only that something waits for review; the patient gets none."""
    home = await active_plan(session_factory, settings, clock)
    staff = await coordinator(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    already = len(mail.smtp.messages)

    lost = await post(client, "/api/v1/my/dosing/loss", {"troches": 3, "what_happened": "The bottle was stolen from my bag"})
    assert lost.status_code == 201, lost.text
    await mail.deliver()

    sent = mail.smtp.messages[already:]
    assert sorted(m["To"] for m in sent) == sorted([home.prescriber.email, staff.email]), [(m["To"], m["Subject"]) for m in sent]
    for message in sent:
        words = (str(message["Subject"]) + mail.smtp.text_of(message)).lower()
        assert "needs your review" in words
        for leak in ("stolen", "troche", "ketamine", "lost"):
            assert leak not in words, (leak, words)


async def test_presence_counts_only_from_the_sessions_own_sitter(client, session_factory, settings, clock, mail):
    """Rule 9 (at unlock; the link's own check is test_a_presence_link_kept_by_the_first_sitter_is_refused_even_unrevoked):
    the presence gate needs the attestation of the sitter the session has now (before_dose.unlock_facts compares
    the attesting sitter with the session's). Sitter A attested; the session's sitter is then B (as a missed
    guard would leave it): A's word, another sitter of the same patient, opens nothing until B attests."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, mail)  # sitter A named, present for this session; checked in
    sitter_b = await confirmed_sitter(client, mail, full_name="Kim Lee", email="kim@example.org", relationship="friend")
    await execute(
        session_factory, "UPDATE dosing_session SET sitter_id = :b WHERE id = :id", b=uuid.UUID(sitter_b["id"]), id=uuid.UUID(booked["id"])
    )

    assert gate_codes(await unlock(client, booked["id"])) == ["gate.sitter_not_present"]


async def test_a_check_in_outside_its_window_is_refused_when_recorded(client, session_factory, settings, clock, mail):
    """Rule 10: a check-in is recorded only in the window of its session (before_dose.record_check_in): from
    60 minutes before the session's time to the end of its unlock window (120 minutes after), so answers
    given earlier (or later) never stand in for the hour before the dose."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=61))

    early = await check_in(client, booked["id"])
    assert refusal(early)[:2] == (422, "check_in.outside_window"), early.text
    assert await count(session_factory, "SELECT count(*) FROM dosing_check_in") == 0
    clock.advance(timedelta(minutes=1))  # exactly 60 minutes before
    assert (await check_in(client, booked["id"])).status_code == 201

    assert (await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/cancel")).status_code == 200
    late = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    clock.advance(timedelta(minutes=30 + 121))
    await patient_signed_in(client, home, clock)
    assert refusal(await check_in(client, late["id"]))[:2] == (422, "check_in.outside_window")


async def test_the_next_batch_released_is_the_lowest_held_one(client, session_factory, settings, clock, mail):
    """Rule 11: batches go to the pharmacy in order: the next batch is the held one with the lowest sequence
    (inventory._next_held_batch), released once the sessions before it are reported."""
    home = await active_plan(session_factory, settings, clock, shipment_sessions=(1, 1, 1, 1))  # one session per batch
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)  # the report comes after the observation window
    assert (await report(client, unlocked["id"])).status_code == 201

    async with session_factory() as session:
        statuses = list(
            (
                await session.execute(text("SELECT status FROM plan_batch WHERE plan_id = :p ORDER BY sequence"), {"p": home.plan_id})
            ).scalars()
        )
    assert statuses == ["delivered", "queued", "held", "held"]
