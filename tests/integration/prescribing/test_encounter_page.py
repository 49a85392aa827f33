"""The encounter page as a prescriber reads it: the intake's blood pressure in plain sight (not folded away
in the intake answers), a refusal's reason printed beside its field as well as in the summary at the top
(the page is long), and links to the patient's page and the video room."""

from __future__ import annotations

import re

from sqlalchemy import select

from telehealth.db.engine import transaction
from telehealth.intake.models import Intake, IntakeSection
from tests.helpers import form_csrf_token
from tests.integration.prescribing.helpers import consult_with_encounter, ready_to_prescribe


async def _with_intake_vitals(session_factory, consult, clock) -> None:
    async with transaction(session_factory) as session:
        intake_id = await session.scalar(select(Intake.id).where(Intake.patient_id == consult.patient.patient_id))
        session.add(
            IntakeSection(
                intake_id=intake_id, section="vitals", answers={"bp_systolic": 148, "bp_diastolic": 94, "pulse": 81}, saved_at=clock.now()
            )
        )


async def test_vitals_links_and_refusals_beside_their_fields(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await _with_intake_vitals(session_factory, consult, clock)
    url = f"/encounters/{consult.encounter_id}"
    page = (await client.get(url)).text

    # The blood pressure is on the page, outside any folded <details>.
    vitals = page.split('id="intake-vitals"')[1].split("</section>")[0]
    assert "<dt>Blood pressure</dt><dd>148/94 mmHg</dd>" in vitals and "<dt>Pulse</dt><dd>81 per minute</dd>" in vitals
    assert all("148/94" not in folded for folded in re.findall(r"<details>.*?</details>", page, flags=re.S))
    # The patient's page and the video room (the consult is still booked).
    assert f'href="/patients/{consult.patient.patient_id}"' in page
    assert f'href="/appointments/{consult.appointment_id}/join"' in page

    # A plan above the dose cap: the summary at the top names it, and so does a message beside the field.
    await ready_to_prescribe(client, consult, clock)
    page = (await client.get(url)).text
    refused = await client.post(
        f"{url}/plans",
        data={
            "product": "Ketamine HCl sublingual troche",
            "strength_mg": "50",
            "doses_mg": "100, 5000",
            "min_hours_between": "48",
            "directions": "Under the tongue",
            "shipment_sessions": "",
            "pharmacy_id": "",
            "_csrf_token": form_csrf_token(page),
        },
    )
    assert refused.status_code in (409, 422), refused.text
    body = refused.text
    assert 'id="refusal"' in body and "Dose per session" in body.split('id="refusal"')[1].split("</div>")[0]
    beside = re.search(r'<p class="field-error" id="error-doses_mg">([^<]*)</p>\s*<input id="doses_mg"[^>]*>', body)
    assert beside is not None, body
    assert beside.group(1) == "Session 2 is 5000 mg; it must be between 1 and 400 mg."
    field = re.search(r'<input id="doses_mg"[^>]*>', body).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="error-doses_mg refusal doses-hint"' in field
    # Only the named field carries a message.
    assert body.count('class="field-error"') == 1
