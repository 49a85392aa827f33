"""The cliff in a browser: a coordinator sees how many active patients lack a prescribing basis for after the
telemedicine flexibilities, opens the list by state, and records an in-person evaluation for one through its
form; the prescriber's home counts theirs. Screenshots of the list (desktop and phone) go to
test-artifacts/screenshots/. The machine's real date is used: the homes speak from 45 days before the date."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from telehealth.accounts.roles import Role
from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import LiveServer
from tests.e2e.screenshots import SCREENSHOTS
from tests.e2e.test_prescribing_pages import _sign_in
from tests.helpers import make_person
from tests.integration.dosing.helpers import active_plan
from tests.integration.scheduling.helpers import screened_patient

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings):
    """The last day of the flexibilities 30 days from today, whatever day the tests run on."""
    return replace(settings, telemedicine_flexibilities_until=date.today() + timedelta(days=30))


async def test_the_coordinator_sees_the_cliff_and_records_an_evaluation(page: Page, live_server: LiveServer, session_factory):
    clock = SystemClock()
    until = live_server.settings.telemedicine_flexibilities_until
    home = await active_plan(session_factory, live_server.settings, clock)  # a live plan in New York, no basis after the date
    await screened_patient(session_factory, live_server.settings, clock, email="dana@example.org", state="NJ")
    coordinator = await make_person(
        session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=live_server.settings
    )

    await _sign_in(page, coordinator)
    await expect(page.get_by_text(f"2 active patients need a new plan or renewal after {until:%d %b %Y}")).to_be_visible()
    await page.get_by_role("link", name="See them by state").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Patients without a prescribing basis")
    await expect(page.get_by_role("heading", name="New Jersey")).to_be_visible()
    await expect(page.get_by_role("heading", name="New York")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "prescribing-basis-cliff.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=str(SCREENSHOTS / "prescribing-basis-cliff-phone.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 800})

    new_york = page.locator("section", has=page.get_by_role("heading", name="New York"))
    await new_york.get_by_role("link", name="Record an in-person evaluation").click()
    await page.get_by_label("Prescriber who examined the patient").select_option(index=1)  # the only prescriber
    # "today" as the clinic reads it: between midnight UTC and midnight in New York the machine's date is a day ahead
    clinic_today = datetime.now(ZoneInfo(live_server.settings.clinic_timezone)).date()
    await page.get_by_label("Date of the evaluation").fill((clinic_today + timedelta(days=3)).isoformat())
    await page.get_by_label("Place").fill("Evergreen clinic, 100 Main St, Burlington VT")
    await page.get_by_role("button", name="Record the evaluation").click()
    await expect(page.get_by_role("alert")).to_contain_text("is in the future")
    await page.get_by_label("Date of the evaluation").fill(clinic_today.isoformat())
    await page.get_by_role("button", name="Record the evaluation").click()
    await expect(page.get_by_role("status")).to_have_text("Evaluation recorded.")

    await page.goto("/coordinator/prescribing-basis")
    await expect(page.get_by_role("heading", name="New York")).to_have_count(0)
    await expect(page.get_by_text("1 patient in 1 state.")).to_be_visible()

    # the credentials page sends pharmacist placement to its own page (prescribing owns pharmacies)
    await page.goto("/coordinator/clinicians")
    await page.get_by_role("link", name="Pharmacists", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pharmacists")

    await page.context.clear_cookies()
    await _sign_in(page, home.prescriber)
    await expect(page.get_by_text("Every active patient of yours has a basis")).to_be_visible()
