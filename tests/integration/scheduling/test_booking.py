"""Slots and booking: licensure on the date, no double booking under a real race, holds that lapse."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from telehealth.accounts.models import Patient
from telehealth.booking.service import may_book
from telehealth.db.engine import make_engine, make_session_factory, transaction
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.service import find_slots, take_slot
from telehealth.scheduling.states import AppointmentType
from tests.helpers import book_paid, csrf_headers, sign_in
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

# The frozen clock is Monday 23 Nov 2026 15:00 UTC (10:00 in New York); slots need 12 h notice.
TUESDAY_TEN_NY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


async def _slots(client, **params):
    query = {"type": "consult", "from": "2026-11-24T00:00:00Z", "to": "2026-11-25T00:00:00Z"} | params
    response = await client.get("/api/v1/slots", params=query)
    assert response.status_code == 200, response.text
    return response.json()


async def test_slots_come_from_credentialed_clinicians_shown_in_the_patient_zone(client, session_factory, settings, clock):
    await prescriber_with_hours(session_factory, settings, clock)
    await prescriber_with_hours(session_factory, settings, clock, email="nj@example.org", state="NJ")  # not licensed in NY
    patient = await screened_patient(session_factory, settings, clock, zone="America/Los_Angeles")
    await sign_in(client, patient, clock)
    slots = await _slots(client)
    assert {s["clinician_name"] for s in slots} == {"Rx"}
    first = slots[0]
    assert first["starts_at"] == "2026-11-24T14:00:00Z"  # 09:00 in New York
    assert first["starts_at_local"] == "2026-11-24T06:00:00-08:00"  # the patient's own zone


async def test_no_slots_after_the_dea_registration_lapses(client, session_factory, settings, clock):
    await prescriber_with_hours(session_factory, settings, clock, dea_expires=date(2026, 11, 25))
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    slots = await _slots(client, to="2026-11-28T00:00:00Z")
    days = sorted({s["starts_at"][:10] for s in slots})
    assert days == ["2026-11-24", "2026-11-25"]  # valid today and through its expiry date, not after


async def test_booking_takes_the_slot_and_cancelling_gives_it_back(client, session_factory, settings, clock, stripe_fake):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    booked = await book_paid(client, stripe_fake, body)
    assert (booked["status"], booked["ends_at"]) == ("booked", "2026-11-24T15:45:00Z")
    starts = {s["starts_at"] for s in await _slots(client)}
    assert "2026-11-24T15:00:00Z" not in starts and "2026-11-24T15:45:00Z" not in starts  # 10-min buffer after
    assert "2026-11-24T14:00:00Z" in starts and "2026-11-24T16:00:00Z" in starts
    again = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert again.status_code == 409 and again.json()["code"] == "appointment.slot_taken" and again.json()["slots"]
    cancelled = await client.post(f"/api/v1/appointments/{booked['id']}/cancel", json={}, headers=await csrf_headers(client))
    assert cancelled.json()["status"] == "cancelled"
    assert "2026-11-24T15:00:00Z" in {s["starts_at"] for s in await _slots(client)}


async def test_fifty_concurrent_bookings_of_one_slot_give_exactly_one(database_url, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patients = [await screened_patient(session_factory, settings, clock, email=f"p{i}@example.org") for i in range(50)]
    engine = make_engine(database_url, pool_size=50)  # fifty separate connections
    factory = make_session_factory(engine)

    async def attempt(person) -> str:
        try:
            async with transaction(factory) as session:
                record = await session.get(Patient, person.patient_id)
                # The gates, then the slot, as booking.service books (its fee aside: these race for the slot itself).
                await may_book(session, patient=record, appointment_type=AppointmentType.CONSULT)
                await take_slot(
                    session,
                    patient=record,
                    clinician_id=prescriber.user_id,
                    appointment_type=AppointmentType.CONSULT,
                    starts_at=TUESDAY_TEN_NY,
                    hold=False,
                    actor=Actor.system(),
                    now=clock.now(),
                    settings=settings,
                )
            return "booked"
        except Conflict as refusal:
            return refusal.code

    try:
        outcomes = await asyncio.gather(*(attempt(p) for p in patients))
    finally:
        await engine.dispose()
    assert outcomes.count("booked") == 1
    assert outcomes.count("appointment.slot_taken") == 49
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 1


async def test_the_database_refuses_overlap_of_different_lengths_whatever_the_code_does(session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    first = await screened_patient(session_factory, settings, clock, email="a@example.org")
    second = await screened_patient(session_factory, settings, clock, email="b@example.org")
    insert = text(
        "INSERT INTO appointment (id, appointment_type, clinician_id, patient_id, status, starts_at, ends_at, busy_from, busy_until, "
        "room_token, ics_sequence, created_at) VALUES (gen_random_uuid(), :type, :clinician, :patient, 'booked', :start, "
        ":end, :start, :end, "
        "md5(random()::text), 0, now())"
    )
    async with transaction(session_factory) as session:
        await session.execute(
            insert,
            {
                "type": "consult",
                "clinician": prescriber.user_id,
                "patient": first.patient_id,
                "start": TUESDAY_TEN_NY,
                "end": TUESDAY_TEN_NY + timedelta(minutes=45),
            },
        )
    with pytest.raises(IntegrityError, match="ex_appointment_clinician_busy"):
        async with transaction(session_factory) as session:
            await session.execute(
                insert,
                {
                    "type": "integration",
                    "clinician": prescriber.user_id,
                    "patient": second.patient_id,
                    "start": TUESDAY_TEN_NY + timedelta(minutes=30),
                    "end": TUESDAY_TEN_NY + timedelta(minutes=80),
                },
            )
    async with transaction(session_factory) as session:  # back to back is fine: ranges are half-open
        await session.execute(
            insert,
            {
                "type": "consult",
                "clinician": prescriber.user_id,
                "patient": second.patient_id,
                "start": TUESDAY_TEN_NY + timedelta(minutes=45),
                "end": TUESDAY_TEN_NY + timedelta(minutes=90),
            },
        )


async def test_a_patient_cannot_hold_two_overlapping_appointments(client, session_factory, settings, clock):
    first = await prescriber_with_hours(session_factory, settings, clock)
    second = await prescriber_with_hours(session_factory, settings, clock, email="rx2@example.org")
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    body = {"type": "consult", "starts_at": "2026-11-24T15:00:00Z"}
    assert (
        await client.post("/api/v1/appointments", json=body | {"clinician_id": str(first.user_id)}, headers=await csrf_headers(client))
    ).status_code == 201
    clash = await client.post("/api/v1/appointments", json=body | {"clinician_id": str(second.user_id)}, headers=await csrf_headers(client))
    assert (clash.status_code, clash.json()["code"]) == (409, "appointment.patient_overlap")


async def test_a_paid_hold_lapses_after_thirty_minutes_and_the_time_comes_back(client, session_factory, settings, clock):
    """A consult is held while the patient pays; Stripe Checkout lives at least 30 minutes, so the hold does too."""
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    holder = await screened_patient(session_factory, settings, clock, email="holder@example.org")
    other = await screened_patient(session_factory, settings, clock, email="other@example.org")
    await sign_in(client, holder, clock)
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z", "hold": True}
    held = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert (held.json()["status"], held.json()["hold_expires_at"]) == ("held", "2026-11-23T15:30:00Z")
    client.cookies.clear()
    await sign_in(client, other, clock)
    assert "2026-11-24T15:00:00Z" not in {s["starts_at"] for s in await _slots(client)}
    clock.advance(timedelta(minutes=29))
    assert "2026-11-24T15:00:00Z" not in {s["starts_at"] for s in await _slots(client)}
    clock.advance(timedelta(minutes=1))
    assert "2026-11-24T15:00:00Z" in {s["starts_at"] for s in await _slots(client)}
    taken = await client.post("/api/v1/appointments", json=body | {"hold": False}, headers=await csrf_headers(client))
    assert taken.status_code == 201
    async with session_factory() as session:
        statuses = sorted((await session.execute(select(Appointment.status))).scalars())
    assert statuses == ["expired", "held"]  # the second patient now holds it while paying


async def test_booking_needs_screening_and_no_open_crisis(client, session_factory, settings, clock):
    from telehealth.intake.escalations import open_crisis_escalation

    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    unscreened = await screened_patient(session_factory, settings, clock, email="new@example.org", outcome=None)
    await sign_in(client, unscreened, clock)
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    refused = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert (refused.status_code, refused.json()["code"]) == (422, "booking.screening_required")
    in_crisis = await screened_patient(session_factory, settings, clock, email="crisis@example.org", outcome="needs_review")
    async with transaction(session_factory) as session:
        await open_crisis_escalation(
            session,
            patient_id=in_crisis.patient_id,
            rule_ids=["crisis.cssrs_intent_or_plan"],
            actor=Actor.system(),
            now=clock.now(),
            settings=settings,
        )
    client.cookies.clear()
    await sign_in(client, in_crisis, clock)
    blocked = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert (blocked.status_code, blocked.json()["code"]) == (422, "booking.crisis_contact_pending")
    assert "988" in blocked.json()["detail"]


async def test_a_deadlock_between_racing_writes_is_retried_not_a_500(session_factory):
    """PostgreSQL may resolve two conflicting exclusion-constraint writes as a deadlock (40P01) instead of
    a violation; the loser must try again, and a violation still comes back as a conflict."""
    from sqlalchemy.exc import DBAPIError

    from telehealth.scheduling.service import write_or_find_conflict

    class Orig(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__(f"sqlstate {sqlstate}")
            self.sqlstate = sqlstate

    calls = []

    def failing_then(outcomes):
        async def write() -> None:
            calls.append(1)
            state = outcomes.pop(0)
            if state:
                raise DBAPIError("INSERT ...", {}, Orig(state))

        return write

    async with session_factory() as session:
        assert await write_or_find_conflict(session, failing_then(["40P01", "40P01", None])) is None
        assert len(calls) == 3
        assert "23P01" in await write_or_find_conflict(session, failing_then(["40P01", "23P01"]))
        with pytest.raises(DBAPIError):
            await write_or_find_conflict(session, failing_then(["40P01"] * 6))


async def test_a_limit_answers_the_first_available_slots_across_days(client, session_factory, settings, clock):
    await prescriber_with_hours(session_factory, settings, clock)
    await prescriber_with_hours(session_factory, settings, clock, email="rx2@example.org")
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    everything = await _slots(client, to="2026-11-27T00:00:00Z", limit=2000)
    first_forty = await _slots(client, to="2026-11-27T00:00:00Z", limit=40)
    assert len(first_forty) == 40 and len(everything) > 40
    assert [(s["starts_at"], s["clinician_id"]) for s in first_forty] == [(s["starts_at"], s["clinician_id"]) for s in everything[:40]]
    assert first_forty[-1]["starts_at"][:10] == "2026-11-24"  # two clinicians' first day fill the first 40


async def test_racing_bookings_of_overlapping_times_never_overlap_and_never_fail(database_url, session_factory, settings, clock):
    """Thirty patients race for six different but overlapping starts of one prescriber (10:00 to 11:15 every
    15 minutes, each 45 min plus the 10-min buffer), while one of them also races itself on a second
    prescriber: the booked ones never overlap, every other answer is a refusal that says why, and no
    attempt fails (the writes are speculative inserts: racing writers wait for each other, never deadlock)."""
    first = await prescriber_with_hours(session_factory, settings, clock)
    second = await prescriber_with_hours(session_factory, settings, clock, email="rx2@example.org")
    patients = [await screened_patient(session_factory, settings, clock, email=f"p{i}@example.org") for i in range(30)]
    starts = [TUESDAY_TEN_NY + timedelta(minutes=15 * k) for k in range(6)]
    engine = make_engine(database_url, pool_size=31)
    factory = make_session_factory(engine)

    async def attempt(person, clinician_id, starts_at) -> tuple[str, list]:
        try:
            async with transaction(factory) as session:
                record = await session.get(Patient, person.patient_id)
                await may_book(session, patient=record, appointment_type=AppointmentType.CONSULT)
                await take_slot(
                    session,
                    patient=record,
                    clinician_id=clinician_id,
                    appointment_type=AppointmentType.CONSULT,
                    starts_at=starts_at,
                    hold=False,
                    actor=Actor.system(),
                    now=clock.now(),
                    settings=settings,
                )
            return "booked", []
        except Conflict as refusal:
            return refusal.code, refusal.extra.get("slots", [])

    plan = [(person, first.user_id, starts[i % len(starts)]) for i, person in enumerate(patients)]
    plan.append((patients[0], second.user_id, starts[0]))  # the same patient, the same time, elsewhere
    races = [attempt(*entry) for entry in plan]
    try:
        outcomes = await asyncio.gather(*races)
    finally:
        await engine.dispose()
    codes = [code for code, _ in outcomes]
    assert set(codes) <= {"booked", "appointment.slot_taken", "appointment.patient_overlap"}, codes
    async with session_factory() as session:
        booked = (
            (await session.execute(select(Appointment).where(Appointment.status == "booked").order_by(Appointment.starts_at)))
            .scalars()
            .all()
        )
    assert codes.count("booked") == len(booked) >= 1
    mine = [a for a in booked if a.clinician_id == first.user_id]
    assert all(a.busy_until <= b.busy_from for a, b in itertools.pairwise(mine))  # with buffers, never overlapping
    patient_zero = [a for a in booked if a.patient_id == patients[0].patient_id]
    assert len(patient_zero) <= 1 and (len(patient_zero) == 1) == ("booked" in (codes[0], codes[-1]))
    if codes[0] == "booked" and codes[-1] != "booked":
        assert codes[-1] in ("appointment.patient_overlap", "appointment.slot_taken")
    for (code, fresh), (_, clinician_id, asked) in zip(outcomes, plan, strict=True):
        if code == "appointment.slot_taken":  # fresh slots of that prescriber, taken when it lost: not the time it asked for
            assert fresh and {s["clinician_id"] for s in fresh} == {str(clinician_id)}
            assert asked.isoformat() not in {s["starts_at"] for s in fresh}


async def test_a_patient_racing_themselves_on_two_prescribers_gets_one_and_is_told_why(database_url, session_factory, settings, clock):
    first = await prescriber_with_hours(session_factory, settings, clock)
    second = await prescriber_with_hours(session_factory, settings, clock, email="rx2@example.org")
    patient = await screened_patient(session_factory, settings, clock)
    engine = make_engine(database_url, pool_size=2)
    factory = make_session_factory(engine)

    async def attempt(clinician_id) -> str:
        try:
            async with transaction(factory) as session:
                record = await session.get(Patient, patient.patient_id)
                await may_book(session, patient=record, appointment_type=AppointmentType.CONSULT)
                await take_slot(
                    session,
                    patient=record,
                    clinician_id=clinician_id,
                    appointment_type=AppointmentType.CONSULT,
                    starts_at=TUESDAY_TEN_NY,
                    hold=False,
                    actor=Actor.system(),
                    now=clock.now(),
                    settings=settings,
                )
            return "booked"
        except Conflict as refusal:
            return refusal.code

    try:
        outcomes = sorted(await asyncio.gather(attempt(first.user_id), attempt(second.user_id)))
    finally:
        await engine.dispose()
    assert outcomes == ["appointment.patient_overlap", "booked"]


async def test_a_busy_span_that_began_before_the_window_still_blocks_it_and_none_lasts_over_a_day(session_factory, settings, clock):
    """A search finds busy spans by their start (the btree index): a span that began hours before the
    window and runs into it must still block, and the database refuses a span over a day, the bound the
    search relies on."""
    prescriber = await prescriber_with_hours(session_factory, settings, clock, hours=((time(6), time(18)),))
    patient = await screened_patient(session_factory, settings, clock)
    insert = text(
        "INSERT INTO appointment (id, appointment_type, clinician_id, patient_id, status, starts_at, ends_at, busy_from, busy_until, "
        "room_token, ics_sequence, created_at) VALUES (gen_random_uuid(), 'consult', :clinician, :patient, 'booked', :start, :end, :start, "
        ":busy_until, md5(random()::text), 0, now())"
    )
    start = TUESDAY_TEN_NY - timedelta(hours=3)  # 07:00 New York, busy (buffers included) until 13:00
    async with transaction(session_factory) as session:
        await session.execute(
            insert,
            {
                "clinician": prescriber.user_id,
                "patient": patient.patient_id,
                "start": start,
                "end": start + timedelta(minutes=45),
                "busy_until": start + timedelta(hours=6),
            },
        )
    async with session_factory() as session:
        found = await find_slots(
            session,
            patient=await session.get(Patient, patient.patient_id),
            appointment_type=AppointmentType.CONSULT,
            window_start=TUESDAY_TEN_NY,
            window_end=TUESDAY_TEN_NY + timedelta(hours=8),
            now=clock.now(),
        )
    assert found and min(slot.starts_at for slot in found) == TUESDAY_TEN_NY + timedelta(hours=3)  # 13:00, not 10:00
    with pytest.raises(IntegrityError, match="busy_within_a_day"):
        async with transaction(session_factory) as session:
            later = TUESDAY_TEN_NY + timedelta(days=2)
            await session.execute(
                insert,
                {
                    "clinician": prescriber.user_id,
                    "patient": patient.patient_id,
                    "start": later,
                    "end": later + timedelta(minutes=45),
                    "busy_until": later + timedelta(hours=25),
                },
            )
