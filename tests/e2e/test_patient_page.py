"""A prescriber reaches a patient's page and their messages by clicking links only (no typed URL past the
sign-in): home -> "My patients" -> the patient's page -> Messages, at desktop (1280x800) and phone (390x844)
sizes. Screenshots: test-artifacts/prescriber-patient-1280.png and -390.png; axe checks every page shown."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from telehealth.db.engine import transaction
from telehealth.intake.models import Intake, IntakeSection, ScreeningDecision
from telehealth.lib.clock import SystemClock
from telehealth.messages.models import CareMessage
from tests.e2e.conftest import LiveServer
from tests.e2e.test_prescribing_pages import SEIZURE_FLAG, _sign_in
from tests.integration.dosing.helpers import active_plan

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SIZES = ((1280, 800), (390, 844))


async def _patient_with_a_message(session_factory, live_server: LiveServer):
    clock = SystemClock()
    home = await active_plan(session_factory, live_server.settings, clock)
    async with transaction(session_factory) as session:
        intake_id = await session.scalar(select(Intake.id).where(Intake.patient_id == home.patient.patient_id))
        await session.execute(
            ScreeningDecision.__table__.update()
            .where(ScreeningDecision.patient_id == home.patient.patient_id)
            .values(outcome="needs_review", reasons=[SEIZURE_FLAG])
        )
        session.add_all(
            [
                IntakeSection(
                    intake_id=intake_id,
                    section="vitals",
                    answers={"bp_systolic": 138, "bp_diastolic": 88, "pulse": 74},
                    saved_at=clock.now(),
                ),
                CareMessage(
                    patient_id=home.patient.patient_id,
                    author_user_id=home.patient.user_id,
                    author_role="patient",
                    body="My sitter can only come on Saturdays; is that fine?",
                    sent_at=clock.now() - timedelta(hours=3),
                ),
            ]
        )
    return home


@pytest.mark.parametrize("width,height", SIZES, ids=["desktop", "phone"])
async def test_prescriber_clicks_from_home_to_the_patient_and_their_messages(
    page: Page, live_server: LiveServer, session_factory, width, height
):
    home = await _patient_with_a_message(session_factory, live_server)
    await page.set_viewport_size({"width": width, "height": height})
    await _sign_in(page, home.prescriber)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Prescriber home")

    await page.get_by_role("region", name="My patients (care team)").get_by_role("link", name="Pat", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Patient: Pat")
    await expect(page.locator("#intake-vitals")).to_contain_text("Blood pressure 138/88 mmHg")
    await expect(page.locator("#intake-vitals")).to_be_visible()
    await expect(page.get_by_role("region", name="Screening flags")).to_contain_text("Seizure disorder: review control")
    await expect(page.get_by_role("region", name="Messages")).to_contain_text("My sitter can only come on Saturdays")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"prescriber-patient-{width}.png"), full_page=True)

    await page.get_by_role("navigation", name="This patient's pages").get_by_role("link", name="Messages").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Messages with Pat")
    await expect(page.get_by_text("My sitter can only come on Saturdays; is that fine?")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / f"prescriber-patient-messages-{width}.png"), full_page=True)
    # And back to the patient's page from the thread, by its link.
    await page.get_by_role("link", name="Pat's page").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Patient: Pat")
