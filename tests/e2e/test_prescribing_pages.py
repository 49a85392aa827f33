"""A prescriber opens a consult's encounter from the calendar, records identity, location, PDMP and vitals,
writes a note on the screening flag, decides to start a plan, writes the titrated plan and signs it with
password + a fresh code; the patient sees the shipment and pays the program fee; the pharmacist accepts,
fills and ships batch 1; the patient sees it on its way. Refusals come back on the page, by field, as 4xx."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pyotp
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select, update

from telehealth.accounts.roles import Role
from telehealth.audit.service import Actor
from telehealth.db.engine import transaction
from telehealth.intake.models import Intake, IntakeSection, QuestionnaireResponse, ScreeningDecision
from telehealth.lib.clock import SystemClock
from telehealth.prescribing.models import Pharmacy
from telehealth.prescribing.pharmacy_staff import assign_pharmacy
from tests.e2e.conftest import LiveServer
from tests.e2e.screenshots import save_screenshots
from tests.helpers import PASSWORD, Person, make_person, visit_took_place
from tests.integration.billing.helpers import insert_appointment
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

pytestmark = pytest.mark.browser

SEIZURE_FLAG = {
    "rule_id": "history.seizure",
    "outcome": "needs_review",
    "clinician_text": "Seizure disorder: review control, anticonvulsants and interactions.",
    "patient_text": "A prescriber will review your seizure history with you before treatment.",
    "evidence": "medical_history.seizure_disorder = yes",
    "crisis": False,
}


async def _sign_in(page: Page, person: Person) -> int | None:
    """Password, then (staff) the current code: answers the 30-second step that code used."""
    await page.goto("/sign-in")
    await page.get_by_label("Email", exact=True).fill(person.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    if not person.totp_secret:
        return None
    step = int(time.time()) // 30
    await page.get_by_label("6-digit code").fill(pyotp.TOTP(person.totp_secret).at(step * 30))
    await page.get_by_role("button", name="Continue").click()
    return step


def _fresh_code(secret: str, used_step: int) -> str:
    """A code never used before: the sign-in spent `used_step`, and the server accepts one step of drift ahead."""
    return pyotp.TOTP(secret).at(max(int(time.time()) // 30, used_step + 1) * 30)


async def _consult_ready(session_factory, live_server: LiveServer):
    """A NY prescriber (license + DEA), a screened NY patient with one needs_review flag, an address and a
    PHQ-9, the partner pharmacy, and a booked consult starting in a few minutes (the live server's clock is real)."""
    clock, settings = SystemClock(), live_server.settings
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    async with transaction(session_factory) as session:
        intake_id = await session.scalar(select(Intake.id).where(Intake.patient_id == patient.patient_id))
        await session.execute(
            update(ScreeningDecision)
            .where(ScreeningDecision.patient_id == patient.patient_id)
            .values(outcome="needs_review", reasons=[SEIZURE_FLAG])
        )
        session.add_all(
            [
                IntakeSection(
                    intake_id=intake_id,
                    section="demographics",
                    answers={"first_name": "Patricia", "last_name": "Doe", "date_of_birth": "1988-04-02"},
                    saved_at=clock.now(),
                ),
                IntakeSection(
                    intake_id=intake_id,
                    section="address",
                    answers={"line1": "12 Elm St", "city": "Albany", "state": "NY", "postal_code": "12207"},
                    saved_at=clock.now(),
                ),
                QuestionnaireResponse(
                    patient_id=patient.patient_id,
                    intake_id=intake_id,
                    questionnaire="phq9",
                    version="2026-1",
                    answers={},
                    score=14,
                    band="moderate",
                    answered_at=clock.now(),
                ),
                Pharmacy(
                    name="Green Mountain Compounding", phone="+18025550111", address="1 Mill St, Burlington VT", created_at=clock.now()
                ),
            ]
        )
    starts_at = (clock.now() + timedelta(minutes=2)).replace(second=0, microsecond=0)
    consult = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=starts_at, appointment_type="consult", minutes=45
    )
    # Both are in the video room (the room itself: test_video_room.py); the findings below are typed after it.
    await visit_took_place(session_factory, consult, started_at=clock.now() - timedelta(minutes=7))
    return prescriber, patient


async def test_consult_to_signed_plan_to_shipped_batch(page: Page, browser: Browser, live_server: LiveServer, session_factory):
    prescriber, patient = await _consult_ready(session_factory, live_server)
    pharmacist = await make_person(
        session_factory, role=Role.PHARMACIST, email="pharm@example.org", now=SystemClock().now(), settings=live_server.settings
    )
    async with transaction(session_factory) as session:  # the pharmacist works for the plan's pharmacy (the only one here)
        pharmacy_id = (await session.execute(select(Pharmacy.id))).scalar_one()
        await assign_pharmacy(
            session, pharmacist_id=pharmacist.user_id, pharmacy_id=pharmacy_id, actor=Actor.system(), now=SystemClock().now()
        )
    assert prescriber.totp_secret and pharmacist.totp_secret

    # The prescriber opens the encounter from the calendar.
    used_step = await _sign_in(page, prescriber)
    assert used_step is not None
    await page.get_by_role("link", name="My calendar").click()
    await page.get_by_role("button", name="Open encounter").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Encounter: Pat")
    await expect(page.locator("#blocker")).to_contain_text("Check the patient's identity against a photo ID first.")
    await expect(page.get_by_role("cell", name="Seizure disorder: review control, anticonvulsants and interactions.")).to_be_visible()
    await expect(page.get_by_role("row", name=re.compile(r"PHQ-9 14 moderate"))).to_be_visible()

    # Deciding to start a plan before the checks is refused on the page, naming the field.
    await page.get_by_role("group", name="What you decide").get_by_label("Start a plan").check()
    async with page.expect_response(lambda r: r.url.endswith("/decision")) as refused:
        await page.get_by_role("button", name="Record decision").click()
    assert (await refused.value).status == 422
    await expect(page.get_by_role("alert")).to_contain_text("Check the patient's identity against a photo ID first.")
    await expect(page.get_by_role("alert")).to_contain_text("Identity checked: must be yes")

    # Identity, location, PDMP (typed in the prescriber's zone), vitals.
    await page.get_by_role("group", name="Identity checked against a photo ID").get_by_label("Yes").check()
    await page.get_by_label("How identity was checked", exact=True).fill("Driver's license shown on video")
    await page.get_by_label("Where the patient is now", exact=True).select_option("NY")
    checked_at = (SystemClock().now() - timedelta(minutes=5)).astimezone(ZoneInfo("America/New_York"))
    await page.get_by_label("PDMP checked at (your time)", exact=True).fill(checked_at.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("PDMP state", exact=True).select_option("NY")
    await page.get_by_label("PDMP reference", exact=True).fill("NY-PMP-0001")
    await page.get_by_label("PDMP summary", exact=True).fill("No controlled prescriptions in 12 months.")
    await page.get_by_role("group", name="Vitals reviewed").get_by_label("Yes").check()
    await page.get_by_label("Vitals note", exact=True).fill("Home BP 122/78, pulse 70.")
    await page.get_by_role("button", name="Save encounter details").click()
    await expect(page.get_by_role("status")).to_have_text("Encounter details saved.")
    await expect(page.locator("#blocker")).to_contain_text("Write a note on every screening flag first.")

    await page.get_by_label("Note on history.seizure").fill("One febrile seizure in childhood, none since; no anticonvulsants.")
    await page.get_by_role("button", name="Save note").click()
    await expect(page.get_by_role("status")).to_have_text("Note saved.")
    await expect(page.locator("#blocker")).to_have_count(0)

    await page.get_by_role("group", name="What you decide").get_by_label("Start a plan").check()
    await page.get_by_role("button", name="Record decision").click()
    await expect(page.get_by_role("status")).to_have_text("Decision recorded.")

    # The titrated plan: a dose above the cap is refused by field, and what was typed stays.
    await page.get_by_label("Strength per unit").select_option("50")
    await page.get_by_label("Dose per session, in mg").fill("100, 150, 200, 200, 200, 450")
    await page.get_by_label("Directions").fill("Dissolve under the tongue with your sitter present; do not swallow for 15 minutes.")
    async with page.expect_response(lambda r: r.url.endswith("/plans")) as refused:
        await page.get_by_role("button", name="Save draft plan").click()
    assert (await refused.value).status == 422
    await expect(page.get_by_role("alert")).to_contain_text("Dose per session: session 6 is 450 mg")
    await expect(page.get_by_label("Directions")).to_have_value(re.compile("sitter present"))
    await expect(page.get_by_label("Minimum hours between sessions")).to_have_value("48")
    await expect(page.get_by_label("Sessions per shipment")).to_have_value("3,3")
    await page.get_by_label("Dose per session, in mg").fill("100, 150, 200, 200, 200, 200")
    await page.get_by_role("button", name="Save draft plan").click()

    # The draft shows the units, computed: per session and per shipment.
    await expect(page.get_by_role("heading", level=1)).to_have_text("Troche plan for Pat")
    await expect(page.locator("#plan-status")).to_have_text("Draft (not signed)")
    sessions = page.get_by_role("region", name="Sessions")
    for number, (dose, units) in enumerate(zip((100, 150, 200, 200, 200, 200), (2, 3, 4, 4, 4, 4), strict=True), start=1):
        await expect(sessions.get_by_role("row", name=f"{number} {dose} mg {units}", exact=True)).to_be_visible()
    shipments = page.get_by_role("region", name="Shipments")
    await expect(shipments.get_by_role("row", name="1 Sessions 1–3: 9 units")).to_be_visible()
    await expect(shipments.get_by_role("row", name="2 Sessions 4–6: 12 units")).to_be_visible()

    # Signing: password and a fresh code on the same form. A wrong password is refused by field.
    await page.get_by_label("Password").fill("not my password")
    await page.get_by_label("6-digit code").fill(_fresh_code(prescriber.totp_secret, used_step))
    async with page.expect_response(lambda r: r.url.endswith("/sign")) as refused:
        await page.get_by_role("button", name="Sign plan").click()
    assert (await refused.value).status == 422
    await expect(page.get_by_role("alert")).to_contain_text("Password: is not your password")
    await expect(page.get_by_label("Password")).to_have_value("")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("6-digit code").fill(_fresh_code(prescriber.totp_secret, used_step))
    await page.get_by_role("button", name="Sign plan").click()
    await expect(page.get_by_role("status")).to_have_text("Plan signed and sent to the pharmacy.")
    await expect(page.locator("#plan-status")).to_have_text("Sent to pharmacy")
    await expect(page.get_by_text(re.compile(r"^[0-9a-f]{64}$"))).to_be_visible()
    await expect(page.get_by_text("matches the plan's content", exact=False)).to_be_visible()
    await expect(shipments.get_by_role("row", name="1 Sessions 1–3: 9 units Waiting for the pharmacy")).to_be_visible()
    await expect(shipments.get_by_role("row", name="2 Sessions 4–6: 12 units Held until the earlier sessions are reported")).to_be_visible()
    await expect(page.get_by_role("button", name="Release shipment 2")).to_be_visible()

    # The patient sees the shipment waiting on the program fee, and pays it on Stripe's (fake) page.
    patient_context = await browser.new_context(base_url=live_server.url)
    pharmacy_context = await browser.new_context(base_url=live_server.url)
    try:
        them = await patient_context.new_page()
        await _sign_in(them, patient)
        await them.get_by_role("link", name="Shipments").click()
        await expect(them.get_by_role("region", name="Shipment 1")).to_contain_text("At the pharmacy")
        await them.get_by_role("link", name="Go to billing").click()
        await them.get_by_role("link", name="Pay").click()
        await expect(them.get_by_role("heading", level=1)).to_have_text("Pay $1,158.00")
        await them.get_by_role("button", name="Pay $1,158.00 securely").click()
        await expect(them.get_by_role("heading", level=1)).to_have_text("Test checkout")
        await them.get_by_role("button", name="Pay", exact=True).click()
        await expect(them.get_by_role("heading", level=1)).to_have_text("Payment received")

        # The pharmacist: minimum necessary, then accept, fill (wrong units refused), ship.
        pharmacy_page = await pharmacy_context.new_page()
        await _sign_in(pharmacy_page, pharmacist)
        await pharmacy_page.get_by_role("link", name="Pharmacy queue").click()
        batch = pharmacy_page.get_by_role("region", name=re.compile("^Patricia Doe, shipment 1"))
        await expect(batch).to_contain_text("Patricia Doe, born 1988-04-02")
        await expect(batch).to_contain_text("Albany, NY 12207")
        await expect(batch).to_contain_text("DEA BX1")
        await expect(batch).to_contain_text("9 (sessions 1–3)")
        await expect(pharmacy_page.get_by_text("Seizure")).to_have_count(0)  # nothing of screening, scores or notes
        await expect(pharmacy_page.get_by_text("PHQ-9")).to_have_count(0)
        await save_screenshots(pharmacy_page, "pharmacist-queue")
        await batch.get_by_role("button", name="Accept shipment 1 for Patricia Doe").click()
        await expect(pharmacy_page.get_by_role("status")).to_have_text("Batch accepted.")

        beyond_use = (SystemClock().now() + timedelta(days=60)).date().isoformat()
        await batch.get_by_label("Lot number").fill("LOT-2611-A")
        await batch.get_by_label("Beyond-use date").fill(beyond_use)
        await batch.get_by_label("Units filled").fill("8")
        async with pharmacy_page.expect_response(lambda r: r.url.endswith("/fill")) as refused:
            await batch.get_by_role("button", name="Record fill").click()
        assert (await refused.value).status == 422
        await expect(batch.get_by_role("alert")).to_contain_text("Units filled: must be 9")
        await expect(batch.get_by_label("Lot number")).to_have_value("LOT-2611-A")
        await batch.get_by_label("Units filled").fill("9")
        await batch.get_by_role("button", name="Record fill").click()
        await expect(pharmacy_page.get_by_role("status")).to_have_text("Batch filled.")

        await batch.get_by_label("Carrier").fill("UPS")
        await batch.get_by_label("Tracking number").fill("1Z999AA10123456784")
        await expect(batch.get_by_label("Adult signature required on delivery")).to_be_checked()
        await batch.get_by_role("button", name="Record shipment").click()
        await expect(pharmacy_page.get_by_role("status")).to_contain_text("Batch shipped")
        await expect(batch.get_by_role("heading", level=2)).to_have_text("Patricia Doe, shipment 1: Shipped")
        await expect(batch).to_contain_text("UPS 1Z999AA10123456784 (signature required)")

        # The patient sees it on its way; the prescriber sees it on the plan.
        await them.goto("/shipments")
        await expect(them.get_by_role("region", name="Shipment 1")).to_contain_text("On its way")
        await expect(them.get_by_role("region", name="Shipment 1")).to_contain_text("1Z999AA10123456784")
        await page.reload()
        await expect(
            shipments.get_by_role("row", name=re.compile("^1 Sessions 1–3: 9 units Shipped · UPS 1Z999AA10123456784"))
        ).to_be_visible()
    finally:
        await patient_context.close()
        await pharmacy_context.close()
