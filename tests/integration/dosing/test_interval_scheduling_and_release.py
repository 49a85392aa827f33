"""Dosing rules that the mutation check (python -m tests.mutation) found with no test failing when they were
broken: the minimum interval counts a dose unlocked but not yet reported, at scheduling and at unlock; two
schedulings sent at once schedule one session and the other is told why (409 dosing.already_scheduled, never a
500), and the database refuses what each of its two unique indexes on dosing sessions forbids; a check-in is
recorded only in the 60 minutes before the session; the prescriber releases the next batch while an earlier
session is unreported only with a reason."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from telehealth.db.engine import transaction
from tests.integration.dosing.helpers import (
    active_plan,
    after_the_window,
    check_in,
    confirmed_sitter,
    count,
    execute,
    gate_codes,
    next_unlocked,
    patient_signed_in,
    prescriber_signed_in,
    report,
    schedule,
    scheduled,
    sitter_present,
    unlock,
    unlocked_session,
)
from tests.integration.prescribing.helpers import at_once, refusal, release, request_as


async def test_the_interval_counts_a_dose_unlocked_but_not_yet_reported(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)  # taken now; the patient has not reported it (yet)
    unlocked_at = clock.now()

    too_soon = await schedule(client, sitter["id"], unlocked_at + timedelta(hours=47, minutes=59))
    assert refusal(too_soon) == (422, "dosing.too_soon", ["starts_at"])
    second = await scheduled(client, sitter["id"], unlocked_at + timedelta(hours=48, minutes=30))

    clock.advance(timedelta(hours=48))  # 30 minutes before the second session; the first is still unreported
    await patient_signed_in(client, home, clock)
    assert (await check_in(client, second["id"])).status_code == 201
    await sitter_present(client, mail)
    # As if the first dose had been unlocked 47 h 59 min ago: still a dose, report or not.
    await execute(
        session_factory,
        "UPDATE dosing_session SET unlocked_at = :at WHERE id = :id",
        at=clock.now() - timedelta(hours=47, minutes=59),
        id=uuid.UUID(first["id"]),
    )
    assert gate_codes(await unlock(client, second["id"])) == ["gate.too_soon"]


async def test_two_schedulings_sent_at_once_schedule_one_session_and_the_other_is_told_why(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    browser = httpx.Cookies(client.cookies)
    body = {"starts_at": (clock.now() + timedelta(hours=3)).isoformat(), "sitter_id": sitter["id"]}

    answers = await at_once(client, [request_as(client, browser, "POST", "/api/v1/my/dosing/sessions", json=body) for _ in range(2)])

    assert sorted(a.status_code for a in answers) == [201, 409], [(a.status_code, a.text) for a in answers]
    assert next(a for a in answers if a.status_code == 409).json()["code"] == "dosing.already_scheduled"
    assert await count(session_factory, "SELECT count(*) FROM dosing_session WHERE status = 'scheduled'") == 1
    # And one after the other: the second is refused the same way.
    again = await schedule(client, sitter["id"], clock.now() + timedelta(hours=4))
    assert refusal(again)[:2] == (409, "dosing.already_scheduled")


async def test_a_check_in_is_recorded_only_in_the_hour_before_the_session(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=61))

    early = await check_in(client, booked["id"])
    assert refusal(early)[:2] == (422, "check_in.outside_window")
    assert await count(session_factory, "SELECT count(*) FROM dosing_check_in") == 0

    clock.advance(timedelta(minutes=1))  # exactly 60 minutes before
    assert (await check_in(client, booked["id"])).status_code == 201


@pytest.mark.parametrize(
    ("index", "rows"),
    [
        ("uq_dosing_session_number", [(1, "unlocked"), (1, "scheduled")]),  # each dose of the plan is taken once
        ("uq_dosing_session_one_scheduled", [(1, "scheduled"), (2, "scheduled")]),  # one session waits at a time
    ],
)
async def test_the_database_refuses_what_each_dosing_session_index_forbids(session_factory, settings, clock, index, rows):
    home = await active_plan(session_factory, settings, clock)
    with pytest.raises(IntegrityError, match=index):
        async with transaction(session_factory) as session:  # written around the service (a script, psql)
            for number, status in rows:
                await session.execute(
                    text(
                        "INSERT INTO dosing_session (id, plan_id, patient_id, number, status, scheduled_at, unlocked_at, "
                        "ics_sequence, created_at, updated_at) "
                        "VALUES (:id, :plan, :patient, :number, :status, :at, :unlocked_at, 0, :at, :at)"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "plan": home.plan_id,
                        "patient": home.patient.patient_id,
                        "number": number,
                        "status": status,
                        "at": clock.now(),
                        "unlocked_at": clock.now() if status == "unlocked" else None,
                    },
                )


async def test_a_release_with_one_earlier_session_unreported_still_needs_a_reason(client, session_factory, settings, clock, mail):
    """Every earlier session reported, or a reason: one of two unreported is not close enough (the existing test
    releases with none reported, so the count could be off by one unnoticed)."""
    home = await active_plan(session_factory, settings, clock)  # sessions 1-2 in batch 1 (delivered), 3-4 in batch 2 (held)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)  # the report comes after the observation window
    assert (await report(client, first["id"])).status_code == 201
    await next_unlocked(client, home, mail, sitter["id"])  # session 2 taken, not reported yet

    await prescriber_signed_in(client, home, clock)
    unreported = await release(client, str(home.batch_ids[1]))
    assert refusal(unreported) == (422, "batch.sessions_not_reported", ["override_reason"])
    assert "(1 are)" in unreported.json()["detail"]
    released = await release(client, str(home.batch_ids[1]), "Session 2 reported by phone; travelling")
    assert (released.status_code, released.json()["status"]) == (200, "queued"), released.text
