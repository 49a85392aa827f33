"""The care team forms in a real browser: a new patient books and pays an integration session with a therapist
who has never seen them; the therapist then finds them on their home page, books a follow-up, writes a
psychotherapy note of their own and a summary for the team; the team's prescriber reads the summary and not
the psychotherapy note."""

from __future__ import annotations

import re
from datetime import date, time

import pytest
from playwright.async_api import Browser, Page, expect

from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code
from telehealth.clinicians.models import ClinicianProfile, StateLicense
from telehealth.db.engine import transaction
from telehealth.lib.clock import SystemClock
from telehealth.scheduling.models import WeeklyHours
from tests.e2e.conftest import LiveServer
from tests.e2e.test_booking_pages import pick
from tests.helpers import PASSWORD, Person, join_care_team, make_person
from tests.integration.scheduling.helpers import screened_patient

pytestmark = pytest.mark.browser


async def _sign_in(page: Page, person: Person) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("Email", exact=True).fill(person.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    if person.totp_secret:
        await page.get_by_label("6-digit code").fill(current_totp_code(person.totp_secret, at=SystemClock().now()))
        await page.get_by_role("button", name="Continue").click()


async def test_an_integration_session_puts_the_therapist_on_the_team_and_the_summary_reaches_the_prescriber(
    page: Page, browser: Browser, live_server: LiveServer, session_factory
):
    clock, settings = SystemClock(), live_server.settings
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    patient = await screened_patient(session_factory, settings, clock)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone="America/New_York", created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        for weekday in range(7):
            session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=weekday, starts_at_local=time(0), ends_at_local=time(23, 45)))
    await join_care_team(session_factory, patient, prescriber, now=clock.now())  # their consult's prescriber

    await _sign_in(page, patient)
    await page.goto("/appointments/book?type=integration")
    await pick(page, day=-1, time=-1)
    await page.get_by_role("button", name=re.compile(r"^Pay \$[\d.,]+ securely$")).click()
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    await page.goto("/patient")
    await expect(page.get_by_role("region", name="Your care team")).to_contain_text("your therapist")

    staff = await browser.new_context(base_url=live_server.url)
    try:
        therapist_page = await staff.new_page()
        await _sign_in(therapist_page, therapist)
        mine = therapist_page.get_by_role("region", name="My patients (care team)")
        await expect(mine).to_contain_text("Pat")
        await mine.get_by_role("link", name="Follow-up visit").click()
        await pick(therapist_page, day=0, time=0)
        await expect(therapist_page.get_by_role("heading", level=1)).to_have_text("My calendar")

        await therapist_page.goto(f"/patients/{patient.patient_id}/notes")
        await therapist_page.get_by_label("New note").fill("Grief about her father; the guilt came up again.")
        await therapist_page.get_by_role("button", name="Save the note").click()
        await therapist_page.get_by_label("New note").fill("Integration 1: steady; grounding helps; next session in a week.")
        await therapist_page.get_by_label("Summary for the care team").check()
        await therapist_page.get_by_role("button", name="Save the note").click()
        await expect(therapist_page.get_by_text("the guilt came up again")).to_be_visible()
    finally:
        await staff.close()

    other = await browser.new_context(base_url=live_server.url)
    try:
        prescriber_page = await other.new_page()
        await _sign_in(prescriber_page, prescriber)
        await prescriber_page.goto(f"/patients/{patient.patient_id}/notes")
        await expect(prescriber_page.get_by_text("grounding helps")).to_be_visible()
        await expect(prescriber_page.get_by_text("the guilt came up again")).to_have_count(0)
    finally:
        await other.close()
