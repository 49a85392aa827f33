"""The patient's booking page (issue 23 item 4): the open days first with their number of times, then one
day's times only (`?day=`, in the patient's zone), under the fee and the cancellation rule read from the
clinic's current policy; an integration session shows its price or that the program includes it; a `?day=`
that is not one of the days shown answers 400 with the days to choose from, never 500."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from telehealth.billing.models import Payment
from telehealth.db.engine import transaction
from tests.helpers import csrf_headers, sign_in
from tests.integration.billing.helpers import coordinator, plan_row, switch_to
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

# The frozen clock is Monday 23 Nov 2026 15:00 UTC, 10:00 in New York and 07:00 in Los Angeles.
DAY_LINK = re.compile(r'href="/appointments/book\?type=(\w+)&amp;day=(\d{4}-\d\d-\d\d)"[^>]*>(.*?)</a>', re.DOTALL)
SLOT_START = re.compile(r'name="starts_at" value="([^"]+)"')


def _days(html: str) -> dict[str, int]:
    """{day: its number of times} as the day list says it."""
    return {
        day: int(re.search(r"· (\d+) times?", " ".join(re.sub("<[^>]+>", "", label).split())).group(1))
        for _, day, label in DAY_LINK.findall(html)
    }


def _starts(html: str) -> list[datetime]:
    return [datetime.fromisoformat(value) for value in SLOT_START.findall(html)]


async def test_the_page_lists_the_days_then_one_days_times_in_the_patients_zone(client, session_factory, settings, clock):
    await prescriber_with_hours(session_factory, settings, clock, hours=((time(9), time(12)),))  # 09:00-12:00 New York
    await prescriber_with_hours(session_factory, settings, clock, email="rx2@example.org", hours=((time(9), time(12)),))  # the same hours
    patient = await screened_patient(session_factory, settings, clock, zone="America/Los_Angeles")
    await sign_in(client, patient, clock)

    page = await client.get("/appointments/book")
    assert page.status_code == 200, page.text
    days = _days(page.text)
    # Today (Monday) has no time left after the 12 h notice; then Tuesday 24 Nov to Sunday 6 Dec: 14 days shown.
    assert list(days) == [f"2026-{month:02d}-{day:02d}" for month, day in [(11, d) for d in range(24, 31)] + [(12, d) for d in range(1, 7)]]
    assert '<span class="day-name">Tue 24 Nov</span>' in page.text
    assert _starts(page.text) == []  # no times until a day is chosen: not hundreds of buttons in one list

    chosen = await client.get("/appointments/book", params={"day": "2026-11-25"})
    assert chosen.status_code == 200, chosen.text
    starts = _starts(chosen.text)
    los_angeles = ZoneInfo("America/Los_Angeles")
    assert starts and {start.astimezone(los_angeles).date() for start in starts} == {date(2026, 11, 25)}
    assert len(starts) == len(set(starts)) == days["2026-11-25"]  # two prescribers, each time once
    assert ">06:00</button>" in chosen.text and ">09:00</button>" not in chosen.text  # 09:00 New York is 06:00 for this patient
    assert 'aria-current="date"' in chosen.text


async def test_the_fee_and_the_cancellation_rule_follow_the_coordinators_policy(client, session_factory, settings, clock):
    await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    page = (await client.get("/appointments/book", params={"day": "2026-11-24"})).text
    assert "Fee: <strong>$150.00</strong>" in page
    assert "Cancel 24 hours or more before the start: full refund, and moving it is free." in page
    assert "cancelling or moving it costs the $50.00 late-cancellation fee" in page

    staff = await coordinator(session_factory, settings, clock)
    await switch_to(client, staff, clock)
    body = {"consult_fee_cents": 17500, "late_cancel_fee_cents": 4000, "free_cancel_hours": 48}
    changed = await client.put("/api/v1/billing/policy", json=body, headers=await csrf_headers(client))
    assert changed.status_code == 200, changed.text
    await switch_to(client, patient, clock)
    page = (await client.get("/appointments/book", params={"day": "2026-11-24"})).text
    assert "Fee: <strong>$175.00</strong>" in page and "$150.00" not in page
    assert "Cancel 48 hours or more before the start: full refund" in page and "$40.00 late-cancellation fee" in page

    clock.advance(timedelta(seconds=30))  # the next TOTP code: a code is accepted once
    await switch_to(client, staff, clock)
    await client.put("/api/v1/billing/policy", json={"late_cancel_fee_cents": 0}, headers=await csrf_headers(client))
    await switch_to(client, patient, clock)
    page = (await client.get("/appointments/book")).text
    assert "Cancel any time before the start: full refund; moving it is free." in page and "late-cancellation fee" not in page


async def test_an_integration_session_shows_its_price_or_that_the_program_includes_it(client, session_factory, settings, clock):
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    page = (await client.get("/appointments/book", params={"type": "integration"})).text
    assert "Fee: <strong>$75.00</strong>" in page  # no paid program: charged, as booking would charge it

    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:  # the program fee is paid: it includes one session
        session.add(
            Payment(
                id=uuid.uuid4(),
                patient_id=patient.patient_id,
                purpose="program",
                status="paid",
                amount_cents=115800,
                plan_id=plan_id,
                created_at=clock.now(),
                paid_at=clock.now(),
            )
        )
    page = (await client.get("/appointments/book", params={"type": "integration"})).text
    assert "<strong>Included in your program</strong>" in page and "$75.00" not in page
    assert (
        "Cancel or move it 24 hours or more before the start: no charge." in page
    )  # an included session is never refunded: it costs nothing early

    staff = await coordinator(session_factory, settings, clock)
    await switch_to(client, staff, clock)
    changed = await client.put("/api/v1/billing/policy", json={"included_integration_sessions": 0}, headers=await csrf_headers(client))
    assert changed.status_code == 200, changed.text
    await switch_to(client, patient, clock)
    page = (await client.get("/appointments/book", params={"type": "integration"})).text
    assert "Fee: <strong>$75.00</strong>" in page and "Included in your program" not in page


@pytest.mark.parametrize(
    ("day", "says"),
    [
        ("tuesday", "not a date we can read"),
        ("2026-13-40", "not a date we can read"),
        ("2026-11-24T10:00", "not a date we can read"),
        ("9" * 5000, "not a date we can read"),
        ("2026-11-22", "from today to Sun 6 Dec"),  # yesterday
        ("2026-12-07", "from today to Sun 6 Dec"),  # the day after the last day shown
        ("0001-01-01", "from today to Sun 6 Dec"),
    ],
)
async def test_a_day_that_is_not_shown_answers_400_with_the_days_to_choose_from(client, session_factory, settings, clock, day, says):
    await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    page = await client.get("/appointments/book", params={"day": day})
    assert page.status_code == 400, page.text
    assert says in page.text and 'role="alert"' in page.text
    assert _days(page.text) and _starts(page.text) == []  # the days to choose from, no times


async def test_a_day_with_no_times_left_says_so(client, session_factory, settings, clock):
    await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    page = await client.get("/appointments/book", params={"day": "2026-11-23"})  # today: inside the 12 h notice
    assert page.status_code == 200 and "No open times left on this day" in page.text and _starts(page.text) == []


async def test_a_refused_time_shows_its_day_again(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    form = {
        "clinician_id": str(prescriber.user_id),
        "starts_at": "2026-11-26T14:05:00+00:00",
        "type": "consult",
        "_csrf_token": client.cookies.get("csrftoken"),
    }
    refused = await client.post("/appointments/book", data=form, headers=await csrf_headers(client), follow_redirects=False)
    assert refused.status_code in (409, 422), refused.text  # 09:05 is not on the 15-minute grid
    starts = _starts(refused.text)
    assert starts and {start.astimezone(ZoneInfo("America/New_York")).date() for start in starts} == {date(2026, 11, 26)}


async def test_the_therapists_follow_up_page_picks_a_day_and_says_what_the_patient_pays(client, session_factory, settings, clock):
    from telehealth.accounts.models import CareTeamMember
    from telehealth.accounts.roles import Role
    from telehealth.clinicians.models import ClinicianProfile, StateLicense
    from telehealth.scheduling.models import WeeklyHours
    from tests.helpers import make_person

    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    patient = await screened_patient(session_factory, settings, clock)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone="America/Chicago", created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=1, starts_at_local=time(9), ends_at_local=time(12)))  # Tuesdays
        session.add(CareTeamMember(patient_id=patient.patient_id, clinician_id=therapist.user_id, added_at=clock.now()))
    await sign_in(client, therapist, clock)
    path = f"/clinician/follow-ups/{patient.patient_id}"

    page = await client.get(path)
    assert page.status_code == 200 and _starts(page.text) == []
    assert f'href="{path}?day=2026-11-24"' in page.text and f'href="{path}?day=2026-12-01"' in page.text
    assert "The patient pays <strong>$75.00</strong>" in page.text  # no paid program yet
    tuesday = await client.get(path, params={"day": "2026-11-24"})
    starts = _starts(tuesday.text)
    assert starts and starts[0].astimezone(ZoneInfo("America/Chicago")).time() == time(9) and ">09:00</button>" in tuesday.text
    assert {start.astimezone(ZoneInfo("America/Chicago")).date() for start in starts} == {date(2026, 11, 24)}

    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:
        session.add(
            Payment(
                id=uuid.uuid4(),
                patient_id=patient.patient_id,
                purpose="program",
                status="paid",
                amount_cents=115800,
                plan_id=plan_id,
                created_at=clock.now(),
                paid_at=clock.now(),
            )
        )
    assert "Included in the patient's program" in (await client.get(path)).text
    wrong = await client.get(path, params={"day": "31/12/2026"})
    assert wrong.status_code == 400 and "not a date we can read" in wrong.text


async def test_rescheduling_picks_a_day_too(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    from tests.integration.billing.helpers import insert_appointment

    appointment_id = await insert_appointment(
        session_factory,
        patient=patient,
        clinician=prescriber,
        starts_at=datetime(2026, 12, 1, 15, tzinfo=ZoneInfo("UTC")),
        appointment_type="consult",
        minutes=45,
    )
    await sign_in(client, patient, clock)
    page = await client.get(f"/appointments/{appointment_id}/reschedule")
    assert (
        page.status_code == 200
        and f'href="/appointments/{appointment_id}/reschedule?day=2026-11-25"' in page.text
        and _starts(page.text) == []
    )
    assert "Fee:" not in page.text  # already booked: only the cancellation rule
    chosen = await client.get(f"/appointments/{appointment_id}/reschedule", params={"day": "2026-11-25"})
    assert chosen.status_code == 200 and _starts(chosen.text) and f'action="/appointments/{appointment_id}/change"' in chosen.text
    wrong = await client.get(f"/appointments/{appointment_id}/reschedule", params={"day": "2027-01-01"})
    assert wrong.status_code == 400 and "from today to Sun 6 Dec" in wrong.text
