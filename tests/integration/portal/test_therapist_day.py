"""The therapist's home is their day: today's integration sessions in their own zone, the follow-ups due
within 72 h after a dose (gone once one is booked), and the sessions still waiting for their note (gone
once it is written)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from telehealth.accounts.roles import Role
from telehealth.clinicians.models import ClinicianProfile, StateLicense
from telehealth.db.engine import transaction
from telehealth.dosing.models import DosingSession
from telehealth.scheduling.models import WeeklyHours
from tests.helpers import csrf_headers, form_csrf_token, join_care_team, make_person, sign_in
from tests.integration.billing.helpers import insert_appointment
from tests.integration.dosing.helpers import active_plan

ZONE = "America/Chicago"  # UTC-6 in November: the clock's 15:00 UTC Monday is 09:00 here


async def _therapist(session_factory, settings, clock, email="t@example.org"):
    therapist = await make_person(session_factory, role=Role.THERAPIST, email=email, now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone=ZONE, created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        for weekday in range(7):
            session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=weekday, starts_at_local=time(9), ends_at_local=time(17)))
    return therapist


async def _dosed(session_factory, home, clock, *, hours_ago: float, number: int = 1, status: str = "reported") -> None:
    taken = clock.now() - timedelta(hours=hours_ago)
    async with transaction(session_factory) as session:
        session.add(
            DosingSession(
                plan_id=home.plan_id,
                patient_id=home.patient.patient_id,
                number=number,
                status=status,
                scheduled_at=taken - timedelta(minutes=5),
                unlocked_at=taken,
                created_at=taken,
                updated_at=taken,
            )
        )


def _section(page: str, section_id: str) -> str:
    return page.split(f'id="{section_id}"')[1].split("</section>")[0]


async def _home(client) -> str:
    response = await client.get("/therapist")
    assert response.status_code == 200, response.text
    return response.text


async def test_today_lists_the_therapists_own_integration_sessions_of_their_own_day(client, session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock)
    therapist = await _therapist(session_factory, settings, clock)
    other = await _therapist(session_factory, settings, clock, email="other@example.org")
    morning = await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=datetime(2026, 11, 23, 17, tzinfo=UTC)
    )
    late_evening = await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=datetime(2026, 11, 24, 4, tzinfo=UTC)
    )
    tomorrow = await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=datetime(2026, 11, 24, 7, tzinfo=UTC)
    )
    cancelled = await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=datetime(2026, 11, 23, 20, tzinfo=UTC), status="cancelled"
    )
    someone_elses = await insert_appointment(
        session_factory, patient=home.patient, clinician=other, starts_at=datetime(2026, 11, 23, 19, tzinfo=UTC)
    )
    await sign_in(client, therapist, clock)
    today = _section(await _home(client), "today")
    assert "Monday 23 November" in today
    assert f"/appointments/{morning}/join" in today and "11:00–11:50" in today  # 17:00 UTC, shown in Chicago
    assert f"/appointments/{late_evening}/join" in today and "22:00–22:50" in today  # already tomorrow in UTC, still today here
    assert f"/patients/{home.patient.patient_id}/notes" in today
    for absent in (tomorrow, cancelled, someone_elses):
        assert str(absent) not in today


async def test_a_follow_up_is_due_for_72_hours_after_a_dose_until_one_is_booked(client, session_factory, settings, clock):
    therapist = await _therapist(session_factory, settings, clock)
    recent = await active_plan(session_factory, settings, clock, email="recent@example.org")
    older = await active_plan(session_factory, settings, clock, email="older@example.org")
    stranger = await active_plan(session_factory, settings, clock, email="stranger@example.org")
    for home in (recent, older):
        await join_care_team(session_factory, home.patient, therapist, now=clock.now(), because="integration_booked")
    # An integration session before the dose does not cover it.
    await insert_appointment(
        session_factory, patient=recent.patient, clinician=therapist, starts_at=clock.now() - timedelta(days=5), status="completed"
    )
    await _dosed(session_factory, recent, clock, hours_ago=71)
    await _dosed(session_factory, older, clock, hours_ago=73)
    await _dosed(session_factory, stranger, clock, hours_ago=1)  # not on this therapist's care team
    await sign_in(client, therapist, clock)

    due = _section(await _home(client), "follow-ups-due")
    assert f"/clinician/follow-ups/{recent.patient.patient_id}" in due
    assert "the 72 h window closes <strong>Mon 23 Nov, 10:00</strong>" in due  # 71 h ago + 72 h = an hour from 09:00 Chicago
    assert str(older.patient.patient_id) not in due  # 73 h: the window has closed
    assert str(stranger.patient.patient_id) not in due

    body = {"patient_id": str(recent.patient.patient_id), "starts_at": "2026-11-24T16:00:00Z"}  # Tuesday 10:00 Chicago
    booked = await client.post("/api/v1/follow-ups", json=body, headers=await csrf_headers(client))
    assert booked.status_code == 201, booked.text
    assert "No follow-ups due." in _section(await _home(client), "follow-ups-due")


async def test_notes_to_write_lists_sessions_that_took_place_until_the_note_is_written(client, session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock)
    therapist = await _therapist(session_factory, settings, clock)
    await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=clock.now() - timedelta(days=2), status="completed"
    )
    await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=clock.now() - timedelta(hours=3)
    )  # booked, and over
    await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=clock.now() - timedelta(days=1), status="no_show"
    )
    await insert_appointment(session_factory, patient=home.patient, clinician=therapist, starts_at=clock.now() + timedelta(hours=2))
    await sign_in(client, therapist, clock)
    to_write = _section(await _home(client), "notes-to-write")
    assert to_write.count(f"/patients/{home.patient.patient_id}/notes") == 2
    assert "Sat 21 Nov, 09:00" in to_write and "Mon 23 Nov, 06:00" in to_write  # completed and over, in Chicago
    assert "Sun 22 Nov" not in to_write and "Mon 23 Nov, 11:00" not in to_write  # the no-show; the one still to come

    clock.advance(timedelta(minutes=5))
    notes = await client.get(f"/patients/{home.patient.patient_id}/notes")
    written = await client.post(
        f"/patients/{home.patient.patient_id}/notes", data={"body": "Integration summary.", "_csrf_token": form_csrf_token(notes.text)}
    )
    assert written.status_code in (200, 302, 303), written.text
    assert "Every session has its note." in _section(await _home(client), "notes-to-write")

    clock.advance(timedelta(hours=3))  # the upcoming session is now over, after the note: it needs its own
    client.cookies.clear()
    await sign_in(client, therapist, clock)
    to_write = _section(await _home(client), "notes-to-write")
    assert to_write.count("/notes") == 1 and "Mon 23 Nov, 11:00" in to_write
