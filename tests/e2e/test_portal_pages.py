"""The portals in a browser: a patient whose plan is complete follows the next step to the reassessment,
answers it, sees the scores drawn as charts, writes to the care team and downloads their record as FHIR;
each role's home page renders, and a screenshot of each is saved (test-artifacts/screenshots/)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.intake.models import Intake, QuestionnaireResponse
from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import LiveServer
from tests.e2e.screenshots import save_screenshots
from tests.e2e.test_prescribing_pages import _sign_in
from tests.helpers import make_person
from tests.integration.dosing.helpers import active_plan, execute

pytestmark = pytest.mark.browser


async def _baseline(session_factory, patient, clock) -> None:
    """The intake's PHQ-9 (18) and GAD-7 (12): what the reassessment is compared with."""
    async with transaction(session_factory) as session:
        intake_id = (await session.execute(select(Intake.id).where(Intake.patient_id == patient.patient_id))).scalar_one()
        for kind, value, count in (("phq9", 2, 9), ("gad7", 2, 6)):
            session.add(
                QuestionnaireResponse(
                    id=uuid.uuid4(),
                    patient_id=patient.patient_id,
                    intake_id=intake_id,
                    questionnaire=kind,
                    version="2026-1",
                    answers={f"{kind}_{i}": value for i in range(1, count + 1)},
                    score=value * count,
                    answered_at=clock.now() - timedelta(days=40),
                )
            )


async def _home_screenshot(page: Page, name: str) -> None:
    await save_screenshots(page, f"{name}-home")  # both sizes; fails when the home runs wider than the phone


async def test_reassessment_scores_messages_and_export(page: Page, live_server: LiveServer, session_factory):
    clock = SystemClock()
    home = await active_plan(session_factory, live_server.settings, clock, doses_mg=(100, 100), shipment_sessions=(2,), status="completed")
    await _baseline(session_factory, home.patient, clock)
    await _sign_in(page, home.patient)
    await expect(page.get_by_role("heading", name="Your next step")).to_be_visible()
    await expect(page.locator('[aria-current="step"]')).to_contain_text("Reassessment")
    await _home_screenshot(page, "patient")
    await page.get_by_role("link", name="Answer the questionnaires").click()

    for fieldset in await page.locator("fieldset").all():
        await fieldset.get_by_label("Not at all").check()  # every item 0: PHQ-9 and GAD-7 both 0 now
    await page.get_by_role("button", name="Send my answers").click()
    await expect(page.get_by_role("heading", name="Your scores: then and now")).to_be_visible()

    await page.goto("/outcomes")
    await expect(page.locator("svg.chart").first).to_be_visible()
    await expect(page.get_by_text("From 18 to 0 (-100%).")).to_be_visible()
    await expect(page.get_by_text("Remission.").first).to_be_visible()

    await page.goto("/messages")
    await page.get_by_label("Write to your care team").fill("Thank you. When is my reassessment visit?")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#latest")).to_contain_text("When is my reassessment visit?")

    await page.goto("/record")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download as FHIR (JSON)").click()
    download = await download_info.value
    bundle = json.loads(Path(await download.path()).read_text())
    assert bundle["resourceType"] == "Bundle" and {e["resource"]["resourceType"] for e in bundle["entry"]} >= {
        "Patient",
        "Observation",
        "MedicationRequest",
    }


async def test_every_role_has_a_home_page(page: Page, live_server: LiveServer, session_factory):
    clock = SystemClock()
    home = await active_plan(session_factory, live_server.settings, clock)
    people = {"prescriber": home.prescriber}
    for role in (Role.THERAPIST, Role.PHARMACIST, Role.COORDINATOR):
        people[role.value] = await make_person(
            session_factory, role=role, email=f"{role.value}@example.org", now=clock.now(), settings=live_server.settings
        )
    headings = {
        "prescriber": "Prescriber home",
        "therapist": "Therapist home",
        "pharmacist": "Pharmacy home",
        "coordinator": "Coordinator home",
    }
    for name, person in people.items():
        await page.context.clear_cookies()
        await _sign_in(page, person)
        await expect(page.get_by_role("heading", level=1)).to_have_text(headings[name])
        await _home_screenshot(page, name)


async def test_a_plan_without_an_intake_on_file_is_past_intake(page: Page, live_server: LiveServer, session_factory):
    """Issue 23 item 7: a patient with a plan and no intake here (the demo's home patient, a transfer) is at
    "Home sessions" on the tracker, and is never asked to start an intake."""
    home = await active_plan(session_factory, live_server.settings, SystemClock())
    await execute(session_factory, "TRUNCATE intake CASCADE")
    await _sign_in(page, home.patient)
    await expect(page.get_by_role("heading", name="Your next step")).to_be_visible()
    await expect(page.locator('[aria-current="step"]')).to_have_count(1)
    await expect(page.locator('[aria-current="step"]')).to_contain_text("Home sessions")
    await expect(page.get_by_text("Start my intake")).to_have_count(0)
    await expect(page.get_by_text("Intake: done")).to_have_count(1)  # the stages before it read as done
