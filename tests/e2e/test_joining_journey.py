"""The first journey in a real browser: a person joins the waiting list, confirms from the email caught by the
test SMTP server, is invited by a coordinator (second browser), creates an account, completes the intake and
sees the result."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code
from telehealth.intake.consents import CONSENT_DOCUMENTS
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.intake.sections import SECTIONS
from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import LiveServer
from tests.helpers import PASSWORD, drain_jobs, link_in, make_person, worker_context
from tests.integration.intake.helpers import CLEAN
from tests.integration.waitlist.helpers import credential_prescriber

pytestmark = pytest.mark.browser


async def newest_link(session_factory, live_server: LiveServer, smtp, path: str) -> str:
    await drain_jobs(worker_context(session_factory, live_server.settings, SystemClock()))
    token = link_in(smtp.text_of(smtp.messages[-1]), path)
    return f"{path}?token={token}"


async def fill_section(page: Page, step: str) -> None:
    """Answer one intake step from the clean answers, finding every field by its visible label."""
    section, answers = SECTIONS[step], CLEAN[step]
    for field in section.fields:
        value = answers.get(field.name)
        if field.kind == "yes_no":
            await page.get_by_role("group", name=field.label).get_by_label("Yes" if value == "yes" else "No", exact=True).check()
        elif field.kind == "choice":
            await page.get_by_label(field.label, exact=True).select_option(value)
        elif field.kind == "checklist" or value is None:
            continue
        else:
            await page.get_by_label(field.label, exact=True).fill(str(value))
    await page.get_by_role("button", name="Save and continue").click()


async def answer_questionnaire(page: Page, key: str) -> None:
    questionnaire = QUESTIONNAIRES[key]
    for index, item in enumerate(questionnaire.items, start=1):
        label = item.label_for(CLEAN[key][item.key])
        await page.get_by_role("group", name=f"{index}. {item.text}").get_by_label(label, exact=True).check()
    await page.get_by_role("button", name="Save and continue").click()


async def coordinator_invites_from_new_york(browser: Browser, live_server: LiveServer, session_factory) -> None:
    coordinator = await make_person(
        session_factory, role=Role.COORDINATOR, email="co@example.org", now=SystemClock().now(), settings=live_server.settings
    )
    context = await browser.new_context(base_url=live_server.url)
    try:
        staff = await context.new_page()
        await staff.goto("/sign-in")
        await staff.get_by_label("Email", exact=True).fill(coordinator.email)
        await staff.get_by_label("Password", exact=True).fill(PASSWORD)
        await staff.get_by_role("button", name="Sign in").click()
        await staff.get_by_label("6-digit code").fill(current_totp_code(coordinator.totp_secret, at=SystemClock().now()))
        await staff.get_by_role("button", name="Continue").click()
        await staff.goto("/coordinator/waitlist")
        row = staff.get_by_role("row", name="New York")
        await expect(row).to_contain_text("1")
        await row.get_by_role("button", name="Invite").click()
        await expect(staff.get_by_role("status")).to_have_text("Invited 1 from NY.")
    finally:
        await context.close()


async def test_join_confirm_invite_create_account_complete_intake(
    page: Page, browser: Browser, live_server: LiveServer, session_factory, smtp
):
    await credential_prescriber(session_factory, live_server.settings, SystemClock())  # New York is served
    await page.goto("/waitlist")
    await page.get_by_label("First name").fill("Robin")
    await page.get_by_label("Last name").fill("Example")
    await page.get_by_label("Email", exact=True).fill("robin@example.org")
    await page.get_by_label("State where you live").select_option("NY")
    await page.get_by_label("Date of birth").fill("1985-04-02")
    await page.get_by_label("Depression").check()
    await page.get_by_label("You may email me about my place on the list.").check()
    await page.get_by_role("button", name="Join the waiting list").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    await page.goto(await newest_link(session_factory, live_server, smtp, "/waitlist/entry"))
    await page.get_by_role("button", name="Confirm my place").click()
    await expect(page.locator("#position")).to_contain_text("You are number 1 of 1 waiting in New York")

    await coordinator_invites_from_new_york(browser, live_server, session_factory)

    await page.goto(await newest_link(session_factory, live_server, smtp, "/invitations/accept"))
    await page.get_by_label("Choose a password").fill(PASSWORD)
    await page.get_by_label("The same password, again").fill(PASSWORD)
    await page.get_by_label("I accept the terms of service").check()
    await page.get_by_role("button", name="Create my account").click()
    await expect(page).to_have_url(f"{live_server.url}/patient")
    await page.get_by_role("link", name="Start my intake").click()
    await page.get_by_role("link", name="Start: About you").click()

    for step in SECTIONS:
        await expect(page.get_by_role("heading", level=1)).to_have_text(SECTIONS[step].title)
        await fill_section(page, step)
    for key in ("phq9", "gad7", "cssrs"):
        await expect(page.get_by_role("heading", level=1)).to_have_text(QUESTIONNAIRES[key].title)
        await answer_questionnaire(page, key)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Consents")
    for document in CONSENT_DOCUMENTS.values():
        await page.get_by_label(f'Type your full name to sign "{document.title}"').fill("Robin Example")
        await page.get_by_role("article", name=f"{document.title} version {document.version}").get_by_role("button", name="Sign").click()
    await page.get_by_role("link", name="Continue").click()
    await page.get_by_role("button", name="Send my intake").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You can go on to the next step")
    await expect(page.get_by_text("Your next step is to book a video consultation")).to_be_visible()
