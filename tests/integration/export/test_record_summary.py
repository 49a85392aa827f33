"""The patient's record page reads as words (issue 23 item 8): each intake answer under its question's own label,
questionnaires with each question's text and the chosen answer, the total and the band; no `null`, no raw keys or
JSON braces; the messages and the sitter's attestations are there; the print view holds the same sections on a
page made for printing; the page claims only what it holds."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select

from telehealth.db.engine import transaction
from telehealth.intake.models import Intake, IntakeSection, QuestionnaireResponse
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.messages.models import CareMessage
from tests.helpers import sign_in
from tests.integration.dosing.helpers import (
    GOOD_REPORT,
    SITTER,
    Mail,
    active_plan,
    after_the_window,
    patient_signed_in,
    post,
    ready_session,
    unlock,
)
from tests.integration.export.test_record_export import intake_on_file


async def a_full_record(client, session_factory, settings, clock, smtp):
    home = await active_plan(session_factory, settings, clock)
    await intake_on_file(session_factory, clock, home.patient.patient_id)
    async with transaction(session_factory) as session:
        intake_id = (await session.execute(select(Intake.id).where(Intake.patient_id == home.patient.patient_id))).scalar_one()
        session.add_all(
            [
                IntakeSection(
                    intake_id=intake_id,
                    section="medical_history",
                    answers={"schizophrenia": False, "uncontrolled_hypertension": True},
                    saved_at=clock.now(),
                ),
                IntakeSection(
                    intake_id=intake_id,
                    section="medications",
                    answers={"classes": ["benzodiazepines"], "other": None},
                    saved_at=clock.now(),
                ),
                IntakeSection(
                    intake_id=intake_id,
                    section="emergency_contact",
                    answers={"name": "Lee Example", "relationship": "sister", "phone": "+12125550100"},
                    saved_at=clock.now(),
                ),
                QuestionnaireResponse(
                    id=uuid.uuid4(),
                    patient_id=home.patient.patient_id,
                    intake_id=intake_id,
                    questionnaire="cssrs",
                    version="2026-1",
                    answers={"cssrs_1": 1, "cssrs_2": 0},
                    score=1,
                    band=None,
                    answered_at=clock.now() - timedelta(days=20),
                ),
                CareMessage(
                    patient_id=home.patient.patient_id,
                    author_user_id=home.patient.user_id,
                    author_role="patient",
                    body="Can I take my dose in the evening?",
                    sent_at=clock.now(),
                ),
                CareMessage(
                    patient_id=home.patient.patient_id,
                    author_user_id=home.prescriber.user_id,
                    author_role="prescriber",
                    body="Yes, any time with your sitter.",
                    sent_at=clock.now() + timedelta(minutes=5),
                ),
            ]
        )
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, Mail(session_factory, settings, clock, smtp))
    assert (await unlock(client, booked["id"])).status_code == 200
    await after_the_window(client, home, clock)
    assert (await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/report", GOOD_REPORT)).status_code == 201
    return home


def visible_text(html: str) -> str:
    """The words a reader sees: the <main> element without its tags."""
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main.split(">", 1)[1]))


async def test_the_record_page_is_words_with_messages_and_attestations(client, session_factory, settings, clock, smtp):
    await a_full_record(client, session_factory, settings, clock, smtp)
    page = await client.get("/record")
    assert page.status_code == 200
    seen = visible_text(page.text)
    for raw in ("null", "None,", "{", "}", "cssrs_1", "line2", "first_name", "uncontrolled_hypertension", "True", "False"):
        assert raw not in seen, raw
    for shown in (
        "Date of birth 2 April 1985",
        "1 Elm St",
        "Albany, NY 12207",
        "Lee Example (sister, +12125550100)",
        "Medical history",
        "I take",
        "Benzodiazepines",
        QUESTIONNAIRES["cssrs"].items[0].text,
        QUESTIONNAIRES["phq9"].items[0].text,
        "Total score: 18 (moderately severe)",
        "More than half the days",  # the PHQ-9 option chosen (2), by its label
        "Consent to telehealth care",
        "Shipment 1: sessions 1 to 2",
        "blood pressure 122/78, pulse 72",
        "Side effects nausea",
        f"{SITTER['full_name']} (signed “{SITTER['full_name']}”) attested was with you before the dose",
        "Can I take my dose in the evening?",
        "Yes, any time with your sitter.",
        "(prescriber)",
        "Clinical notes written by the care team are not part of this page",
    ):
        assert shown in seen, shown
    assert "Everything we hold" not in seen  # it claims only what it holds
    assert 'id="print-record" href="/record?print=1"' in page.text and '<script src="/static/record-print.js"' in page.text
    assert (await client.get("/static/record-print.js")).status_code == 200


async def test_the_print_view_is_the_same_record_without_the_site_around_it(client, session_factory, settings, clock, smtp):
    await a_full_record(client, session_factory, settings, clock, smtp)
    printable = await client.get("/record", params={"print": "1"})
    assert printable.status_code == 200
    assert 'class="print-view"' in printable.text and "site-header" not in printable.text and "Sign out" not in printable.text
    seen = visible_text(printable.text)
    assert "null" not in seen and "{" not in seen
    for shown in (
        "Intake answers",
        "Messages with the care team",
        "Sitters and what they attested",
        "Can I take my dose in the evening?",
        "Payments",
    ):
        assert shown in seen, shown
    refused = await client.get("/record", params={"print": "sideways"})
    assert refused.status_code == 422 and "print" in refused.text


async def test_the_care_teams_copy_is_audited_and_the_patients_own_reads_stay_as_they_were(client, session_factory, settings, clock, smtp):
    from sqlalchemy import text

    home = await a_full_record(client, session_factory, settings, clock, smtp)
    client.cookies.clear()
    await sign_in(client, home.prescriber, clock)
    for params in ({}, {"print": "1"}):
        page = await client.get(f"/patients/{home.patient.patient_id}/record", params=params)
        assert page.status_code == 200 and "Yes, any time with your sitter." in page.text
    async with session_factory() as session:
        reads = (await session.execute(text("SELECT actor_role FROM audit_event WHERE action = 'patient.record.summary'"))).scalars().all()
    assert reads == ["prescriber", "prescriber"]
