"""Issue 23 items 5 and 2 in a browser. The C-SSRS page asks its follow-ups only when the instrument does and
names a missing answer by its question, beside it (never a field key); the demographics start from what the
waiting list knows. A crisis answer then reaches the care team's prescriber on the escalations page in words:
what set it off, when, the number to call (a tel: link), the emergency contact, and whose call it is."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text, update

from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import LiveServer
from tests.e2e.screenshots import save_screenshots
from tests.e2e.test_prescribing_pages import _sign_in
from tests.helpers import join_care_team, make_person

pytestmark = pytest.mark.browser
CSSRS = QUESTIONNAIRES["cssrs"]


async def _patient_from_the_waiting_list(session_factory, live_server: LiveServer):
    """A New York patient whose waiting-list entry gave name, date of birth and phone."""
    patient = await make_person(
        session_factory, role=Role.PATIENT, email="pat@example.org", now=SystemClock().now(), settings=live_server.settings
    )
    async with transaction(session_factory) as session:
        await session.execute(update(Patient).where(Patient.id == patient.patient_id).values(state_of_residence="NY"))
        await session.execute(
            text(
                "INSERT INTO waitlist_entry (id, status, state, first_name, last_name, email, date_of_birth, phone, "
                "consent_to_contact, joined_at, patient_id)"
                " VALUES (gen_random_uuid(), 'enrolled', 'NY', 'Robin', 'Fresh', 'pat@example.org', :dob, '+12125550123', "
                "true, now(), :patient)"
            ),
            {"dob": date(1990, 4, 2), "patient": patient.patient_id},
        )
    return patient


async def _answer(page: Page, answers: dict[int, str]) -> None:
    """Answer C-SSRS questions by their number as the page shows it ({2: "Yes"}); the others are left alone."""
    for number, label in answers.items():
        item = CSSRS.items[number - 1]
        await page.get_by_role("group", name=f"{number}. {item.text}").get_by_label(label, exact=True).check()


async def test_cssrs_in_plain_words_then_the_escalation_in_words(page: Page, browser: Browser, live_server: LiveServer, session_factory):
    patient = await _patient_from_the_waiting_list(session_factory, live_server)
    prescriber = await make_person(
        session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=SystemClock().now(), settings=live_server.settings
    )
    await join_care_team(session_factory, patient, prescriber, now=SystemClock().now())
    await _sign_in(page, patient)

    # What the waiting list knows is already filled in.
    await page.goto("/intake/demographics")
    await expect(page.get_by_label("Legal first name", exact=True)).to_have_value("Robin")
    await expect(page.get_by_label("Legal last name", exact=True)).to_have_value("Fresh")
    await expect(page.get_by_label("Date of birth", exact=True)).to_have_value("1990-04-02")
    await expect(page.get_by_label("Mobile phone", exact=True)).to_have_value("+12125550123")
    await page.get_by_label("Your time zone", exact=True).select_option("America/New_York")
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page).not_to_have_url(re.compile(r"/intake/demographics$"))

    await page.goto("/intake/emergency_contact")
    await page.get_by_label("Full name", exact=True).fill("Alex Fresh")
    await page.get_by_label("Relationship to you", exact=True).fill("sister")
    await page.get_by_label("Phone", exact=True).fill("+12125550999")
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page).not_to_have_url(re.compile(r"/intake/emergency_contact$"))

    # Yes to question 2 asks 3-5; leaving 4 blank is named as "Question 4", at the top and beside it.
    await page.goto("/intake/cssrs")
    await _answer(page, {1: "Yes", 2: "Yes", 3: "No", 5: "No", 6: "No"})
    async with page.expect_response(lambda r: r.url.endswith("/intake/cssrs") and r.request.method == "POST") as refused:
        await page.get_by_role("button", name="Save and continue").click()
    assert (await refused.value).status == 422
    alert = page.get_by_role("alert")
    await expect(alert.get_by_role("link", name="Question 4")).to_be_visible()
    await expect(alert).to_contain_text("Question 4: Please choose an answer.")
    question_4 = page.get_by_role("group", name=f"4. {CSSRS.items[3].text}")
    await expect(question_4.locator(".field-error")).to_have_text("Please choose an answer.")
    await expect(question_4).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_text("cssrs_")).to_have_count(0)  # no field keys anywhere on the page
    await expect(page.get_by_text("Cssrs")).to_have_count(0)
    # The layout seen in the screenshots: the page starts clear of the header, and a question's border runs
    # above its words, not through them (a legend straddles the border unless the CSS floats it inside).
    assert await page.evaluate("() => getComputedStyle(document.querySelector('main')).paddingTop") == "24px"
    legend, box = await question_4.locator("legend").bounding_box(), await question_4.bounding_box()
    assert legend and box and legend["y"] > box["y"], (legend, box)
    await save_screenshots(page, "patient-cssrs-error")

    # No to questions 1, 2 and 6 is a whole answer: 3-5 and the follow-up are not asked.
    await page.goto("/intake/cssrs")
    await _answer(page, {1: "No", 2: "No", 6: "No"})
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page).not_to_have_url(re.compile(r"/intake/cssrs$"))
    await expect(page.get_by_role("alert")).to_have_count(0)

    # A worked-out plan: crisis resources at once, and an escalation for the care team.
    await page.goto("/intake/cssrs")
    await _answer(page, {1: "Yes", 2: "Yes", 3: "Yes", 4: "No", 5: "Yes", 6: "No"})
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page.get_by_role("heading", name="You do not have to face this alone")).to_be_visible()

    today = datetime.now(ZoneInfo(live_server.settings.clinic_timezone)).strftime("%a %d %b %Y")
    context = await browser.new_context(base_url=live_server.url)
    try:
        desk = await context.new_page()
        await _sign_in(desk, prescriber)
        await desk.goto("/escalations")
        card = desk.locator("section.card", has=desk.get_by_role("heading", name=re.compile(": crisis$")))
        await expect(card).to_have_count(1)
        await expect(card.locator("dt:text-is('What happened') + dd")).to_contain_text("worked-out plan (C-SSRS 4 or 5)")
        await expect(card.locator("dt:text-is('When') + dd")).to_contain_text(today)
        phone = card.get_by_role("link", name="+12125550123")
        await expect(phone).to_have_attribute("href", "tel:+12125550123")
        await expect(card.locator("dt:text-is('Emergency contact') + dd")).to_have_text("Alex Fresh, sister, +12125550999")
        await expect(card.locator("dt:text-is('Whose call') + dd")).to_have_text("Rx (prescriber)")
        await expect(desk.get_by_text("crisis.cssrs")).to_have_count(0)  # rule ids are for the audit, not the reader
        await save_screenshots(desk, "prescriber-escalations")
    finally:
        await context.close()
