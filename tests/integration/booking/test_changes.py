"""Rescheduling and cancelling (24 h rule, clinicians free), no-shows, the join window, invites, reminders."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr

import pytest
from icalendar import Calendar

from tests.helpers import book_paid, csrf_headers, drain_jobs, sign_in, worker_context
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

TUESDAY_TEN = "2026-11-24T15:00:00Z"  # 10:00 New York; the frozen clock is Monday 15:00 UTC


async def _book(client, prescriber, starts_at=TUESDAY_TEN):
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": starts_at}
    booked = await book_paid(client, STRIPE[0], body)
    assert booked["status"] == "booked"
    return booked["id"]


STRIPE: list = []  # the session's fake Stripe, set by the autouse fixture below


@pytest.fixture(autouse=True)
def _stripe(stripe_fake):
    STRIPE[:] = [stripe_fake]


def _invites(smtp) -> list[Calendar]:
    invites = []
    for message in smtp.messages:
        for part in message.iter_attachments():
            if part.get_filename() == "appointment.ics":
                invites.append(Calendar.from_ical(part.get_content()))
    return invites


async def _setup(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    return prescriber, patient


async def test_cancelling_is_free_until_24_hours_before_then_needs_the_fee_accepted(client, session_factory, settings, clock):
    await _setup(client, session_factory, settings, clock)
    prescriber = (await client.get("/api/v1/slots", params={"type": "consult", "from": TUESDAY_TEN, "to": "2026-11-25T00:00:00Z"})).json()[
        0
    ]
    clock.advance(timedelta(minutes=-1))  # 24 h and 1 min before
    first = await book_paid(client, STRIPE[0], {"type": "consult", "clinician_id": prescriber["clinician_id"], "starts_at": TUESDAY_TEN})
    clock.advance(timedelta(minutes=1))  # exactly 24 h before: still free
    free = await client.post(f"/api/v1/appointments/{first['id']}/cancel", json={}, headers=await csrf_headers(client))
    assert free.json()["status"] == "cancelled"
    second = await book_paid(client, STRIPE[0], {"type": "consult", "clinician_id": prescriber["clinician_id"], "starts_at": TUESDAY_TEN})
    clock.advance(timedelta(minutes=1))  # 23 h 59 min before: the fee applies
    told = await client.post(f"/api/v1/appointments/{second['id']}/cancel", json={}, headers=await csrf_headers(client))
    assert (told.status_code, told.json()["code"], told.json()["late_fee_cents"]) == (422, "appointment.late_fee_applies", 5000)
    assert "$50.00" in told.json()["detail"] and "$100.00 back" in told.json()["detail"]
    accepted = await client.post(
        f"/api/v1/appointments/{second['id']}/cancel", json={"accept_late_fee": True}, headers=await csrf_headers(client)
    )
    assert accepted.json()["status"] == "cancelled"


async def test_a_clinician_cancels_any_time_without_a_fee(client, session_factory, settings, clock):
    prescriber, _ = await _setup(client, session_factory, settings, clock)
    appointment_id = await _book(client, prescriber)
    clock.advance(timedelta(hours=23, minutes=30))
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    cancelled = await client.post(f"/api/v1/appointments/{appointment_id}/cancel", json={}, headers=await csrf_headers(client))
    assert cancelled.json()["status"] == "cancelled"


async def test_rescheduling_moves_the_same_appointment_and_raises_the_invite_sequence(client, session_factory, settings, clock, smtp):
    prescriber, _ = await _setup(client, session_factory, settings, clock)
    appointment_id = await _book(client, prescriber)
    moved = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule", json={"starts_at": "2026-11-25T16:00:00Z"}, headers=await csrf_headers(client)
    )
    assert (moved.status_code, moved.json()["id"], moved.json()["starts_at"]) == (200, appointment_id, "2026-11-25T16:00:00Z")
    taken_back = {
        s["starts_at"]
        for s in (await client.get("/api/v1/slots", params={"type": "consult", "from": TUESDAY_TEN, "to": "2026-11-26T00:00:00Z"})).json()
    }
    assert TUESDAY_TEN in taken_back and "2026-11-25T16:00:00Z" not in taken_back
    not_open = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule", json={"starts_at": "2026-11-25T03:00:00Z"}, headers=await csrf_headers(client)
    )
    assert not_open.status_code == 409
    cancelled = await client.post(f"/api/v1/appointments/{appointment_id}/cancel", json={}, headers=await csrf_headers(client))
    assert cancelled.status_code == 200
    await drain_jobs(worker_context(session_factory, settings, clock))
    events = [
        (cal.get("method"), ev.get("uid"), int(ev.get("sequence")), ev.decoded("dtstart").isoformat(), str(ev.get("summary")))
        for cal in _invites(smtp)
        for ev in cal.walk("VEVENT")
    ]
    assert [e[0] for e in events] == ["REQUEST", "REQUEST", "CANCEL"]
    assert len({e[1] for e in events}) == 1  # one stable UID
    assert [e[2] for e in events] == [0, 1, 2]  # the cancellation outranks the move it cancels
    assert events[1][3] == "2026-11-25T16:00:00+00:00"
    assert all(e[4] == "Appointment with Evergreen Home Program" for e in events)
    # iTIP over email (RFC 6047): the part's Content-Type carries the method; the event names who sends it
    # (the clinic's From address) and whom it invites (the recipient).
    parts = [
        (message, part) for message in smtp.messages for part in message.iter_attachments() if part.get_filename() == "appointment.ics"
    ]
    assert [part.get_content_type() for _, part in parts] == ["text/calendar"] * 3
    assert [part.get_param("method") for _, part in parts] == ["REQUEST", "REQUEST", "CANCEL"]
    for message, part in parts:
        [event] = Calendar.from_ical(part.get_content()).walk("VEVENT")
        assert str(event.get("organizer")).lower() == "mailto:" + parseaddr(settings.mail_from)[1].lower()
        assert str(event.get("attendee")).lower() == "mailto:" + parseaddr(message["To"])[1].lower()
        assert "ORGANIZER;CN=" in part.get_content() and "ATTENDEE;" in part.get_content()


async def test_reminders_follow_the_appointment_and_stop_when_it_is_cancelled(client, session_factory, settings, clock, smtp):
    prescriber, _ = await _setup(client, session_factory, settings, clock)
    kept = await _book(client, prescriber, "2026-11-25T15:00:00Z")
    dropped = await _book(client, prescriber, "2026-11-25T17:00:00Z")
    await client.post(f"/api/v1/appointments/{dropped}/cancel", json={}, headers=await csrf_headers(client))
    await client.post(
        f"/api/v1/appointments/{kept}/reschedule", json={"starts_at": "2026-11-25T19:00:00Z"}, headers=await csrf_headers(client)
    )
    context = worker_context(session_factory, settings, clock)
    await drain_jobs(context)
    before = len(smtp.messages)
    clock.set(clock.now().replace(day=24, hour=15, minute=1))  # 24 h before the old time of `kept`: no reminder
    await drain_jobs(context)
    assert len(smtp.messages) == before
    clock.set(clock.now().replace(day=24, hour=19, minute=1))  # 24 h before its new time
    await drain_jobs(context)
    clock.set(clock.now().replace(day=25, hour=18, minute=1))  # 1 h before
    await drain_jobs(context)
    reminders = [m for m in smtp.messages[before:] if m["Subject"].startswith("Reminder")]
    assert len(reminders) == 2  # 24 h and 1 h for the moved one; none for the cancelled one
    assert "14:00 EST" in smtp.text_of(reminders[0])


async def test_only_participants_join_and_only_in_the_window(client, session_factory, settings, clock):
    prescriber, patient = await _setup(client, session_factory, settings, clock)
    appointment_id = await _book(client, prescriber)
    clock.set(clock.now().replace(day=24, hour=14, minute=49))  # 11 min before
    await sign_in(client, patient, clock)  # a day later: a fresh session
    early = await client.get(f"/appointments/{appointment_id}/join", follow_redirects=False)
    assert early.status_code == 422 and early.json()["code"] == "appointment.join_not_open"
    clock.advance(timedelta(minutes=1))  # 10 min before: open
    opened = await client.get(f"/appointments/{appointment_id}/join", follow_redirects=False)
    assert opened.status_code in (302, 303) and "/rooms/" in opened.headers["location"]
    room = await client.get(opened.headers["location"])
    assert room.status_code == 200 and "Video visit" in room.text
    stranger = await screened_patient(session_factory, settings, clock, email="stranger@example.org")
    client.cookies.clear()
    await sign_in(client, stranger, clock)
    assert (await client.get(f"/appointments/{appointment_id}/join", follow_redirects=False)).status_code == 404
    assert (await client.get(opened.headers["location"])).status_code == 404
    clock.set(clock.now().replace(hour=16, minute=15))  # ends 15:45; 30 min after
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    assert (await client.get(f"/appointments/{appointment_id}/join", follow_redirects=False)).status_code in (302, 303)
    clock.advance(timedelta(minutes=1))
    late = await client.get(f"/appointments/{appointment_id}/join", follow_redirects=False)
    assert late.json()["code"] == "appointment.join_closed"


async def test_a_no_show_is_marked_by_the_clinician_after_the_start(client, session_factory, settings, clock):
    prescriber, _ = await _setup(client, session_factory, settings, clock)
    appointment_id = await _book(client, prescriber)
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    early = await client.post(f"/api/v1/appointments/{appointment_id}/no-show", headers=await csrf_headers(client))
    assert early.json()["code"] == "appointment.not_started"
    clock.set(clock.now().replace(day=24, hour=15, minute=10))
    await sign_in(client, prescriber, clock)
    marked = await client.post(f"/api/v1/appointments/{appointment_id}/no-show", headers=await csrf_headers(client))
    assert marked.json()["status"] == "no_show"


async def test_a_therapist_books_a_follow_up_for_their_own_patient_only(client, session_factory, settings, clock):
    from datetime import date, time

    from telehealth.accounts.models import CareTeamMember
    from telehealth.accounts.roles import Role
    from telehealth.clinicians.models import ClinicianProfile, StateLicense
    from telehealth.db.engine import transaction
    from telehealth.scheduling.models import WeeklyHours
    from tests.helpers import make_person

    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    own = await screened_patient(session_factory, settings, clock, email="own@example.org")
    other = await screened_patient(session_factory, settings, clock, email="other@example.org")
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone="America/Chicago", created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=1, starts_at_local=time(9), ends_at_local=time(12)))
        session.add(CareTeamMember(patient_id=own.patient_id, clinician_id=therapist.user_id, added_at=clock.now()))
    await sign_in(client, therapist, clock)
    body = {"patient_id": str(own.patient_id), "starts_at": "2026-11-24T15:00:00Z"}  # Tuesday 09:00 Chicago
    booked = await client.post("/api/v1/follow-ups", json=body, headers=await csrf_headers(client))
    assert booked.status_code == 201, booked.text
    assert (booked.json()["type"], booked.json()["ends_at"]) == ("integration", "2026-11-24T15:50:00Z")
    stranger = await client.post(
        "/api/v1/follow-ups", json=body | {"patient_id": str(other.patient_id)}, headers=await csrf_headers(client)
    )
    assert stranger.status_code == 404
    client.cookies.clear()
    await sign_in(client, other, clock)  # patients book integration sessions themselves too
    page = await client.get("/appointments/book", params={"type": "integration", "day": "2026-11-24"})  # the therapist's Tuesday
    assert "Book an integration session" in page.text and 'name="type" value="integration"' in page.text
