"""The patient's record in a browser (issue 23 item 8), at 1280x800 and 390x844: readable sections (questions by
their text, no `null`, no JSON), the messages and the sitter's attestation, "Print or save as PDF" opening the
print dialog through the static script (the CSP refuses inline ones), the print stylesheet, and axe on every page
shown. Screenshots in test-artifacts/ (patient-record-1280.png, patient-record-390.png, patient-record-print.png)
and the PDF the print stylesheet makes (patient-record.pdf)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from telehealth.db.engine import transaction
from telehealth.dosing.models import DosingSession, Sitter, SitterAttestation
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.lib.clock import SystemClock
from telehealth.messages.models import CareMessage
from tests.e2e.conftest import LiveServer
from tests.e2e.test_prescribing_pages import _sign_in
from tests.integration.dosing.helpers import active_plan
from tests.integration.export.test_record_export import intake_on_file

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def _record_with_a_session(session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock)
    await intake_on_file(session_factory, clock, home.patient.patient_id)
    now = clock.now()
    async with transaction(session_factory) as session:
        sitter = Sitter(
            patient_id=home.patient.patient_id,
            status="confirmed",
            full_name="Sam Rivers",
            email="sam@example.org",
            relationship="partner",
            adult_confirmed=True,
            agreement_version="2026-1",
            agreement_sha256="c" * 64,
            typed_name="Sam Rivers",
            signed_at=now - timedelta(days=2),
            created_at=now - timedelta(days=3),
            updated_at=now,
        )
        session.add(sitter)
        await session.flush()
        dose = DosingSession(
            plan_id=home.plan_id,
            patient_id=home.patient.patient_id,
            sitter_id=sitter.id,
            number=1,
            status="unlocked",
            scheduled_at=now - timedelta(hours=2),
            unlocked_at=now - timedelta(hours=2),
            created_at=now - timedelta(days=1),
            updated_at=now,
        )
        session.add(dose)
        await session.flush()
        session.add_all(
            [
                SitterAttestation(
                    dosing_session_id=dose.id,
                    sitter_id=sitter.id,
                    kind="presence",
                    typed_name="Sam Rivers",
                    attested_at=now - timedelta(hours=2, minutes=5),
                ),
                SitterAttestation(
                    dosing_session_id=dose.id,
                    sitter_id=sitter.id,
                    kind="end",
                    typed_name="Sam Rivers",
                    outcome="alert_and_safe",
                    attested_at=now - timedelta(minutes=40),
                ),
                CareMessage(
                    id=uuid.uuid4(),
                    patient_id=home.patient.patient_id,
                    author_user_id=home.patient.user_id,
                    author_role="patient",
                    body="Is it fine to eat a light lunch before?",
                    sent_at=now - timedelta(days=1),
                ),
                CareMessage(
                    id=uuid.uuid4(),
                    patient_id=home.patient.patient_id,
                    author_user_id=home.prescriber.user_id,
                    author_role="prescriber",
                    body="Yes, two hours before at the latest.",
                    sent_at=now - timedelta(hours=20),
                ),
            ]
        )
    return home


async def test_the_patient_reads_prints_and_downloads_their_record(browser, live_server: LiveServer, session_factory):
    home = await _record_with_a_session(session_factory, live_server.settings, SystemClock())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (390, 844)):
        context = await browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
        # Stands in for the print dialog (headless has none) and counts the calls; added by DevTools, so the app's
        # CSP still applies to its own scripts.
        await context.add_init_script("window.__printed = 0; window.print = () => { window.__printed += 1; };")
        page = await context.new_page()
        await _sign_in(page, home.patient)
        await page.goto("/record")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Your record")
        main = page.locator("main")
        for heading in (
            "About you",
            "Intake answers",
            "Questionnaires",
            "Consents signed",
            "Prescriptions and shipments",
            "Home sessions",
            "Sitters and what they attested",
            "Messages with the care team",
            "Outcomes",
            "Payments",
        ):
            await expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
        await expect(main).to_contain_text(QUESTIONNAIRES["phq9"].items[0].text)
        await expect(main).to_contain_text("Total score: 18 (moderately severe)")
        await expect(main).to_contain_text("Sam Rivers (signed “Sam Rivers”) attested the session ended with you alert and safe")
        await expect(main).to_contain_text("Yes, two hours before at the latest.")
        text = await main.inner_text()
        assert "null" not in text and "{" not in text and "line2" not in text
        await page.screenshot(path=str(ARTIFACTS / f"patient-record-{width}.png"), full_page=True)

        await page.get_by_role("link", name="Print or save as PDF").click()
        assert await page.evaluate("window.__printed") == 1 and page.url.endswith("/record")  # the script ran: no inline script needed
        if width == 1280:
            await page.emulate_media(media="print")
            await expect(page.locator(".site-header")).to_be_hidden()
            await expect(page.get_by_role("link", name="Download as FHIR (JSON)")).to_be_hidden()
            await page.screenshot(path=str(ARTIFACTS / "patient-record-print.png"), full_page=True)
            await page.pdf(path=str(ARTIFACTS / "patient-record.pdf"), format="Letter")
            await page.emulate_media(media="screen")
            async with page.expect_download() as download_info:
                await page.get_by_role("link", name="Download as FHIR (JSON)").click()
            assert (await download_info.value).suggested_filename == "my-record.fhir.json"
        await context.close()


async def test_the_print_view_is_where_the_button_leads_without_javascript(browser, live_server: LiveServer, session_factory):
    home = await _record_with_a_session(session_factory, live_server.settings, SystemClock())
    context = await browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await _sign_in(page, home.patient)
    await page.goto("/record")
    await page.goto(
        await page.get_by_role("link", name="Print or save as PDF").get_attribute("href")
    )  # what a browser without scripts follows
    await expect(page).to_have_url(f"{live_server.url}/record?print=1")
    await expect(page.locator("body.print-view")).to_contain_text("Is it fine to eat a light lunch before?")
    await expect(page.get_by_role("link", name="Back to the record")).to_be_visible()
    await context.close()
