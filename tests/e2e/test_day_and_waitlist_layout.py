"""The therapist's day and the coordinator's waiting list in Chromium at a laptop (1280x800) and a phone
(390x844): nothing runs off the side, the Invite column is inside the viewport at 1280, unserved states
offer no Invite, and the score chart's line labels never overlap. Screenshots: test-artifacts/screenshots/."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from telehealth.accounts.roles import Role
from telehealth.clinicians.models import ClinicianProfile, StateLicense
from telehealth.db.engine import transaction
from telehealth.dosing.models import DosingSession
from telehealth.intake.models import Intake, QuestionnaireResponse
from telehealth.lib.clock import SystemClock
from telehealth.scheduling.models import WeeklyHours
from telehealth.waitlist.models import WaitlistEntry
from tests.e2e.conftest import LiveServer
from tests.e2e.screenshots import SCREENSHOTS
from tests.e2e.test_prescribing_pages import _sign_in
from tests.helpers import make_person
from tests.integration.billing.helpers import insert_appointment
from tests.integration.dosing.helpers import active_plan
from tests.integration.waitlist.helpers import credential_prescriber

pytestmark = pytest.mark.browser
LAPTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
ZONE = "America/New_York"


async def _shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def _at(page: Page, size: dict[str, int], path: str) -> None:
    await page.set_viewport_size(size)
    await page.goto(path)
    # Nothing wider than the viewport: the page never scrolls sideways.
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= size["width"]


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


async def _scores(session_factory, patient, now: datetime) -> None:
    """PHQ-9 9 then 4: its response line (half of 9) falls on the remission line (below 5); GAD-7 10 then 3."""
    async with transaction(session_factory) as session:
        intake_id = (await session.execute(Intake.__table__.select().where(Intake.patient_id == patient.patient_id))).first().id
        for kind, scores in (("phq9", (9, 4)), ("gad7", (10, 3))):
            for days_ago, score in zip((40, 1), scores, strict=True):
                session.add(
                    QuestionnaireResponse(
                        id=uuid.uuid4(),
                        patient_id=patient.patient_id,
                        intake_id=intake_id,
                        questionnaire=kind,
                        version="2026-1",
                        answers={},
                        score=score,
                        answered_at=now - timedelta(days=days_ago),
                    )
                )


async def test_the_therapist_day_at_a_laptop_and_a_phone(page: Page, live_server: LiveServer, session_factory):
    clock, settings = SystemClock(), live_server.settings
    home = await active_plan(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="therapist@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone=ZONE, created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        for weekday in range(7):
            session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=weekday, starts_at_local=time(9), ends_at_local=time(17)))
    now = clock.now()
    day_start = datetime.combine(now.astimezone(ZoneInfo(ZONE)).date(), time(0), tzinfo=ZoneInfo(ZONE))
    # Today's session, over by a sixth of the day so far (so it needs a note even just after midnight), then a dose
    # after it (so a follow-up is due), and an earlier session still without a note.
    so_far = now - day_start
    await insert_appointment(
        session_factory,
        patient=home.patient,
        clinician=therapist,
        starts_at=day_start + so_far / 3,
        minutes=so_far.total_seconds() / 60 / 6,
    )
    await insert_appointment(
        session_factory, patient=home.patient, clinician=therapist, starts_at=now - timedelta(days=2), status="completed"
    )
    dosed = day_start + so_far * 2 / 3
    async with transaction(session_factory) as session:
        session.add(
            DosingSession(
                plan_id=home.plan_id,
                patient_id=home.patient.patient_id,
                number=1,
                status="reported",
                scheduled_at=dosed,
                unlocked_at=dosed,
                created_at=dosed,
                updated_at=dosed,
            )
        )
    await _scores(session_factory, home.patient, now)

    await page.set_viewport_size(LAPTOP)
    await _sign_in(page, therapist)
    for size, suffix in ((LAPTOP, "1280"), (PHONE, "390")):
        await _at(page, size, "/therapist")
        await expect(page.get_by_role("heading", name="Today,")).to_be_visible()
        await expect(page.locator("#today").get_by_role("link", name="Join the video room")).to_be_visible()
        await expect(page.locator("#follow-ups-due")).to_contain_text("the 72 h window closes")
        await expect(page.locator("#notes-to-write").get_by_role("link", name="Write the note")).to_have_count(2)
        await _shoot(page, f"therapist-home-{suffix}")

    await page.locator("#follow-ups-due").get_by_role("link", name="Book follow-up").click()
    await expect(page).to_have_url(f"{live_server.url}/clinician/follow-ups/{home.patient.patient_id}")

    for size, suffix in ((LAPTOP, "1280"), (PHONE, "390")):
        await _at(page, size, f"/patients/{home.patient.patient_id}/outcomes")
        charts = page.locator("svg.chart")
        await expect(charts).to_have_count(2)
        for chart in await charts.all():
            labels = chart.locator("text.line-label, text.band")
            boxes = [box for box in [await label.bounding_box() for label in await labels.all()] if box]
            assert len(boxes) >= 3 + 4  # baseline, response, remission; the severity bands
            for a, b in combinations(boxes, 2):
                assert not _overlap(a, b), (a, b)
            frame = await chart.bounding_box()
            for text in await chart.locator("text").all():  # and no text is cut off at the chart's edges
                box = await text.bounding_box()
                assert frame and box and frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"], (
                    await text.text_content()
                )
        await _shoot(page, f"therapist-scores-{suffix}")


async def test_the_coordinator_waiting_list_at_a_laptop_and_a_phone(page: Page, live_server: LiveServer, session_factory):
    clock, settings = SystemClock(), live_server.settings
    await credential_prescriber(session_factory, settings, clock, states=("NY", "MA", "NC"))
    waiting = {"NY": 3, "MA": 12, "NC": 1, "DC": 140, "PA": 2}  # DC and PA are not served
    async with transaction(session_factory) as session:
        for state, count in waiting.items():
            for index in range(count):
                session.add(
                    WaitlistEntry(
                        id=uuid.uuid4(),
                        status="waiting",
                        state=state,
                        first_name=f"W{index}",
                        last_name="Example",
                        email=f"w{index}-{state.lower()}@example.org",
                        date_of_birth=date(1980, 1, 1),
                        consent_to_contact=True,
                        joined_at=clock.now() - timedelta(days=40),
                        confirmed_at=clock.now() - timedelta(days=40 - index % 30),
                    )
                )
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await page.set_viewport_size(LAPTOP)
    await _sign_in(page, coordinator)

    await _at(page, LAPTOP, "/coordinator/waitlist")
    scroller = page.locator(".table-scroll")
    assert await scroller.evaluate("el => el.scrollWidth <= el.clientWidth")  # the whole table fits: nothing hidden to scroll to
    header = page.get_by_role("columnheader", name="Invite next")
    box = await header.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= LAPTOP["width"]
    for state_name in ("New York", "Massachusetts", "North Carolina"):
        button = page.get_by_role("row", name=state_name).get_by_role("button", name="Invite")
        box = await button.bounding_box()
        assert box and box["x"] + box["width"] <= LAPTOP["width"]
    for state_name in ("District of Columbia", "Pennsylvania"):
        row = page.get_by_role("row", name=state_name)
        await expect(row).to_contain_text("Not served yet")
        await expect(row.get_by_role("button", name="Invite")).to_have_count(0)
    await _shoot(page, "coordinator-waitlist-1280")

    await _at(page, PHONE, "/coordinator/waitlist")
    row = page.get_by_role("row", name="New York")
    button = row.get_by_role("button", name="Invite")
    await expect(button).to_be_visible()
    box = await button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await expect(page.get_by_role("row", name="District of Columbia")).to_contain_text("Not served yet")
    await _shoot(page, "coordinator-waitlist-390")
    await button.click()
    await expect(page.get_by_role("status")).to_have_text("Invited 1 from NY.")
