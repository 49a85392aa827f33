"""A patient books, reschedules and cancels a consultation in a real browser, and meets the late fee."""

from __future__ import annotations

from datetime import time

import pytest
from playwright.async_api import Page, expect

from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import LiveServer
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
    await page.locator("form.slot button").last.click()  # about two weeks ahead: free to change
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is booked")
    booked_heading = await page.locator("section.card h2").first.inner_text()

    await page.get_by_role("link", name="Reschedule").click()
    await page.locator("form.slot button").nth(-2).click()
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is moved")
    assert await page.locator("section.card h2").first.inner_text() != booked_heading

    await page.get_by_role("button", name="Cancel this appointment").click()
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is cancelled")

    await page.goto("/appointments/book")
    await page.locator("form.slot button").first.click()  # about 12 hours ahead: inside 24 h
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is booked")
    await page.get_by_role("button", name="Cancel this appointment").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("This change has a fee")
    await expect(page.get_by_text("$50.00")).to_be_visible()
    await page.get_by_role("button", name="Accept the fee and go ahead").click()
    await expect(page.get_by_role("status")).to_contain_text("Your appointment is cancelled")
    await expect(page.get_by_text("You have no upcoming appointments.")).to_be_visible()
