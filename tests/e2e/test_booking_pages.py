"""A patient books a consultation, pays for it on the (fake) Stripe page, sees the booking and the receipt,
reschedules and cancels it with the refund shown first, and meets the late fee."""

from __future__ import annotations

import re
from datetime import time

import pytest
from playwright.async_api import Page, expect

from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import AuditedBrowser, LiveServer
from tests.e2e.screenshots import SCREENSHOTS
from tests.helpers import PASSWORD
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

pytestmark = pytest.mark.browser


async def test_book_reschedule_cancel_and_the_late_fee(page: Page, live_server: LiveServer, session_factory):
    clock, settings = SystemClock(), live_server.settings
    await prescriber_with_hours(session_factory, settings, clock, hours=((time(0), time(23, 45)),))  # open all day, every day
    patient = await screened_patient(session_factory, settings, clock)
    await page.goto("/sign-in")
    await page.get_by_label("Email", exact=True).fill(patient.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="Book a consultation").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Book a consultation")
    await pick(page, day=-1, time=-1)  # about two weeks ahead: free to change
    await _pay(page)
    await page.get_by_role("link", name="Receipt").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    await expect(page.get_by_text("Consultation")).to_be_visible()
    await page.goto("/appointments")
    booked_heading = await page.locator("section.card h2").first.inner_text()

    await page.get_by_role("link", name="Reschedule").click()
    await pick(page, day=-1, time=-2)
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is moved")
    assert await page.locator("section.card h2").first.inner_text() != booked_heading

    await page.get_by_role("link", name="Cancel this appointment").click()
    await expect(page.get_by_text("you get the full $150.00 back")).to_be_visible()
    await page.get_by_role("button", name="Cancel the appointment").click()
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is cancelled")

    await page.goto("/appointments/book")
    await pick(page, day=0, time=0)  # about 12 hours ahead: inside 24 h
    await _pay(page)
    await page.goto("/appointments")
    await page.get_by_role("link", name="Cancel this appointment").click()
    await expect(page.get_by_text("the late-cancellation fee of $50.00 is kept and you get $100.00 back")).to_be_visible()
    await page.get_by_role("button", name="Accept and cancel").click()
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is cancelled")
    await expect(page.get_by_text("You have no upcoming appointments.")).to_be_visible()


async def pick(page: Page, *, day: int, time: int) -> None:
    """Days first, then that day's times: choose the `day`th open day, then its `time`th time."""
    await page.get_by_role("navigation", name="Days with open times").get_by_role("link").nth(day).click()
    await expect(page.get_by_role("heading", level=2, name=re.compile(r"^\w+day \d+ \w+$"))).to_be_visible()
    await page.locator(".time-grid form.slot button").nth(time).click()


async def _pay(page: Page) -> None:
    """The policy in dollars, then Stripe's (fake) page; back on ours once Stripe's webhook has said so."""
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pay $150.00")
    await expect(page.get_by_text("the late-cancellation fee of $50.00 is kept")).to_be_visible()
    await page.get_by_role("button", name="Pay $150.00 securely").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Test checkout")  # the fake's checkout page
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is booked")


async def test_a_therapist_books_a_follow_up_for_their_patient(page: Page, live_server: LiveServer, session_factory):
    from datetime import date

    from telehealth.accounts.models import CareTeamMember
    from telehealth.accounts.roles import Role
    from telehealth.accounts.security import current_totp_code
    from telehealth.clinicians.models import ClinicianProfile, StateLicense
    from telehealth.db.engine import transaction
    from telehealth.scheduling.models import WeeklyHours
    from tests.helpers import make_person

    clock, settings = SystemClock(), live_server.settings
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    patient = await screened_patient(session_factory, settings, clock)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone="America/Chicago", created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        for weekday in range(7):
            session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=weekday, starts_at_local=time(0), ends_at_local=time(23, 45)))
        session.add(CareTeamMember(patient_id=patient.patient_id, clinician_id=therapist.user_id, added_at=clock.now()))
    await page.goto("/sign-in")
    await page.get_by_label("Email", exact=True).fill(therapist.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("6-digit code").fill(current_totp_code(therapist.totp_secret, at=clock.now()))
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("link", name="Book a follow-up").click()
    await page.get_by_role("link", name="Pat").click()
    await expect(page.get_by_text("The patient pays $75.00 for this session")).to_be_visible()  # no paid program yet
    await pick(page, day=0, time=0)
    await expect(page.get_by_role("heading", level=1)).to_have_text("My calendar")
    await expect(page.get_by_text("integration")).to_be_visible()


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
async def test_a_patient_books_by_choosing_a_day_then_a_time_on_a_desktop_and_a_phone(
    browser: AuditedBrowser, live_server: LiveServer, session_factory, width: int, height: int
):
    """Issue 23 item 4: days first with their number of times, then the day's times as a grid, under the fee
    and the cancellation rule; the same at phone width (nothing wider than the screen)."""
    clock, settings = SystemClock(), live_server.settings
    await prescriber_with_hours(session_factory, settings, clock, hours=((time(8), time(18)),))
    patient = await screened_patient(session_factory, settings, clock)
    context = await browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    try:
        page = await context.new_page()
        await page.goto("/sign-in")
        await page.get_by_label("Email", exact=True).fill(patient.email)
        await page.get_by_label("Password", exact=True).fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("link", name="Book a consultation").click()

        terms = page.get_by_role("region", name="Price and cancellation")
        await expect(terms).to_contain_text("Fee: $150.00")
        await expect(terms).to_contain_text("Cancel 24 hours or more before the start: full refund")
        await expect(terms).to_contain_text("$50.00 late-cancellation fee")
        days = page.get_by_role("navigation", name="Days with open times").get_by_role("link")
        assert await days.count() >= 13
        await expect(days.nth(1)).to_have_accessible_name(re.compile(r"^\w{3} \d{1,2} \w{3} · \d+ times?$"))
        assert await page.locator("form.slot").count() == 0  # no times before a day is chosen
        tops = {round((await days.nth(i).bounding_box())["y"]) for i in range(await days.count())}
        assert 1 < len(tops) < await days.count()  # the days wrap into rows of several, on a phone too
        await _fits(page, width)

        label = " ".join((await days.nth(1).text_content()).split())  # "Tue 8 Dec · 38 times"
        await days.nth(1).click()
        await expect(days.nth(1)).to_have_attribute("aria-current", "date")
        times = page.locator(".time-grid form.slot button")
        assert await times.count() == int(re.search(r"· (\d+) time", label).group(1))
        first_row = [box["y"] for box in [await times.nth(i).bounding_box() for i in range(min(3, await times.count()))]]
        assert len({round(y) for y in first_row}) == 1  # a grid: the first three times side by side, even on a phone
        await _fits(page, width)
        await expect(terms).to_be_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / f"patient-booking-{width}.png"), full_page=True)

        await times.nth(2).click()
        await _pay(page)
        await page.goto("/appointments")
        weekday, day_of_month, month = label.split(" · ")[0].split()
        await expect(page.locator("section.card h2").first).to_contain_text(f"{weekday} {int(day_of_month):02d} {month}")  # the day chosen
    finally:
        await context.close()


async def _fits(page: Page, width: int) -> None:
    """Nothing on the page is wider than the window: no sideways scrolling."""
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
