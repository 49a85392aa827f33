"""A home session in two browsers: the patient names a sitter, who signs the agreement on their own link
(a second browser context, no account); a coordinator records the verification call (a third); the patient
schedules the session and checks in; the dose stays locked until the sitter attests presence from their link;
then it unlocks, the patient sees the dose and the timer, the sitter sees the same timer, and both report how
it went (on a real clock, within the observation window: each says why it ended early)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from telehealth.accounts.roles import Role
from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import LiveServer
from tests.e2e.screenshots import save_screenshots
from tests.e2e.test_prescribing_pages import _sign_in
from tests.helpers import make_person
from tests.integration.dosing.helpers import Mail, active_plan

pytestmark = pytest.mark.browser


async def test_patient_and_sitter_take_a_session_in_two_browsers(
    page: Page, browser: Browser, live_server: LiveServer, session_factory, smtp
):
    clock = SystemClock()
    home = await active_plan(session_factory, live_server.settings, clock)
    mail = Mail(session_factory, live_server.settings, clock, smtp)
    await _sign_in(page, home.patient)

    await page.goto("/dosing")
    await page.get_by_label("Their full name").fill("Sam Rivers")
    await page.get_by_label("Their email").fill("sam@example.org")
    await page.get_by_label("How you know them").fill("partner")
    await page.get_by_role("button", name="Send them the agreement").click()
    await expect(page.get_by_role("status")).to_contain_text("emailed their own link")

    sitter_context = await browser.new_context(base_url=live_server.url)
    try:
        sitter = await sitter_context.new_page()
        await sitter.goto(f"/sitter/{await mail.sitter_link('sam@example.org')}")
        await expect(sitter.get_by_role("heading", name="Sitter agreement (version 2026-1)")).to_be_visible()
        await sitter.get_by_label("I am 18 or older").check()
        await sitter.get_by_label("I have read the sitter agreement").check()
        await sitter.get_by_label("Type your full name to sign").fill("Sam Rivers")
        await sitter.get_by_role("button", name="Sign the agreement").click()
        await expect(sitter.get_by_role("heading", name="Thank you, Sam Rivers")).to_be_visible()

        # A coordinator's short call with the new sitter, recorded on their page (a third browser).
        await page.goto("/dosing")
        await expect(page.get_by_text("verification pending")).to_be_visible()
        desk_context = await browser.new_context(base_url=live_server.url)
        desk = await desk_context.new_page()
        await _sign_in(
            desk,
            await make_person(
                session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=live_server.settings
            ),
        )
        await desk.goto("/coordinator/sitters")
        await desk.get_by_label("Phone call").check()
        await desk.get_by_role("button", name="Record the call with Sam Rivers").click()
        await expect(desk.get_by_role("status").first).to_contain_text("The call is recorded")
        await desk_context.close()

        starts = (datetime.now(ZoneInfo("America/New_York")) + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M")
        await page.goto("/dosing")
        await page.get_by_label("Date and time").fill(starts)
        await page.get_by_role("button", name="Schedule").click()
        await expect(page.get_by_role("heading", name="Session 1: Scheduled")).to_be_visible()

        await page.get_by_label("top number (systolic)").fill("126")
        await page.get_by_label("bottom number (diastolic)").fill("82")
        await page.get_by_label("Pulse").fill("74")
        await page.get_by_label("Your mood right now").fill("6")
        await page.get_by_role("group", name="thoughts that you would be better off dead").get_by_label("Not at all").check()
        await page.get_by_role("group", name="nothing to eat or drink").get_by_label("Yes").check()
        await page.get_by_role("group", name="no alcohol and no sedatives").get_by_label("Yes").check()
        await page.get_by_role("button", name="Send my check-in").click()
        await expect(page.locator('[data-gate="gate.sitter_not_present"]').first).to_be_visible()
        await page.get_by_role("button", name="Unlock my dose").click()
        await expect(page.get_by_role("alert")).to_contain_text("not confirmed they are with you")

        await sitter.goto(f"/sitter/{await mail.sitter_link('sam@example.org')}")
        await expect(sitter.get_by_role("button", name="I am here with")).to_be_visible()
        await save_screenshots(sitter, "sitter-presence")
        await sitter.get_by_label("Type your full name").fill("Sam Rivers")
        await sitter.get_by_role("button", name="I am here with").click()
        await expect(sitter.get_by_text("Your presence is recorded")).to_be_visible()

        await page.get_by_role("button", name="Unlock my dose").click()
        await expect(page.get_by_role("heading", name="Today's dose: 100 mg, 2 troches")).to_be_visible()
        await expect(page.locator("time[data-countdown]")).to_contain_text("min")  # the countdown script runs
        # Issue 23 item 6: the plan's own directions beside the dose, not only the general steps.
        await expect(page.locator(".directions")).to_have_text("Your prescriber's directions: Under the tongue")
        await save_screenshots(page, "patient-dose")

        await sitter.reload()
        await expect(sitter.get_by_role("heading", name="Timer")).to_be_visible()
        await expect(sitter.locator("time[data-countdown]")).to_contain_text("min")
        await sitter.get_by_label("Alert and safe").check()
        await sitter.get_by_label("Say why").fill("The test cannot wait an hour")
        await sitter.get_by_label("Type your full name").fill("Sam Rivers")
        await sitter.get_by_role("button", name="Send").click()
        await expect(sitter.get_by_text("Your answer has been recorded")).to_be_visible()

        await page.get_by_role("group", name="Did you complete the session?").get_by_label("Yes").check()
        await page.get_by_label("Nausea").check()
        await expect(page.locator("#report-from")).to_contain_text("Send your report from")
        await page.get_by_label("Say why").fill("The test cannot wait an hour")
        await page.get_by_role("button", name="Send my report").click()
        await expect(page.get_by_role("status")).to_contain_text("Reported. Thank you.")
        await page.goto("/dosing")
        await expect(page.get_by_role("cell", name="Reported")).to_be_visible()
    finally:
        await sitter_context.close()
