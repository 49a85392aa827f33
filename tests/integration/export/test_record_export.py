"""A patient takes their whole record away: a readable summary and a FHIR R4 Bundle that the
`fhir.resources` models accept, holding the Patient, intake and questionnaire answers, scores (LOINC
coded), appointments, the signed plan, check-in vitals, session reports and consents. A prescriber can
export it for transfer of care (audited); a pharmacist or therapist cannot."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select, text

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.intake.models import ConsentSignature, Intake, IntakeSection, QuestionnaireResponse
from tests.helpers import make_person, sign_in
from tests.integration.dosing.helpers import (
    GOOD_REPORT,
    Mail,
    active_plan,
    after_the_window,
    patient_signed_in,
    post,
    ready_session,
    unlock,
)


async def intake_on_file(session_factory, clock, patient_id) -> None:
    async with transaction(session_factory) as session:
        intake_id = (await session.execute(select(Intake.id).where(Intake.patient_id == patient_id))).scalar_one()
        session.add_all(
            [
                IntakeSection(
                    intake_id=intake_id,
                    section="demographics",
                    answers={"first_name": "Pat", "last_name": "Example", "date_of_birth": "1985-04-02"},
                    saved_at=clock.now(),
                ),
                IntakeSection(
                    intake_id=intake_id,
                    section="address",
                    answers={"line1": "1 Elm St", "city": "Albany", "state": "NY", "postal_code": "12207"},
                    saved_at=clock.now(),
                ),
                ConsentSignature(
                    patient_id=patient_id,
                    document="telehealth_consent",
                    version="2026-1",
                    content_sha256="b" * 64,
                    typed_name="Pat Example",
                    signed_at=clock.now(),
                ),
                QuestionnaireResponse(
                    id=uuid.uuid4(),
                    patient_id=patient_id,
                    intake_id=intake_id,
                    questionnaire="phq9",
                    version="2026-1",
                    answers={f"phq9_{i}": 2 for i in range(1, 10)},
                    score=18,
                    band="moderately severe",
                    answered_at=clock.now() - timedelta(days=20),
                ),
            ]
        )


async def test_the_patient_downloads_a_valid_fhir_bundle_and_staff_export_is_audited(client, session_factory, settings, clock, smtp):
    home = await active_plan(session_factory, settings, clock)
    await intake_on_file(session_factory, clock, home.patient.patient_id)
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, Mail(session_factory, settings, clock, smtp))
    assert (await unlock(client, booked["id"])).status_code == 200
    await after_the_window(client, home, clock)
    assert (await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/report", GOOD_REPORT)).status_code == 201

    summary = await client.get("/record")
    assert summary.status_code == 200
    for shown in (
        "1 Elm St",
        "Consent to telehealth care",
        "Ketamine HCl sublingual troche, 50 mg",
        "122/78, pulse 72",
        "<dt>Troches used</dt><dd>2</dd>",
    ):
        assert shown in summary.text, shown

    download = await client.get("/record/fhir.json")
    assert download.status_code == 200 and download.headers["content-type"].startswith("application/fhir+json")
    body = json.loads(download.text)
    Bundle.model_validate(body)  # valid FHIR, by the library's models
    kinds = {entry["resource"]["resourceType"] for entry in body["entry"]}
    assert kinds == {"Patient", "QuestionnaireResponse", "Observation", "Appointment", "MedicationRequest", "Consent"}
    resources = [entry["resource"] for entry in body["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    assert (patient["birthDate"], patient["address"][0]["city"]) == ("1985-04-02", "Albany")
    phq9 = next(r for r in resources if r["resourceType"] == "Observation" and r["code"].get("coding", [{}])[0].get("code") == "44261-6")
    assert phq9["valueInteger"] == 18
    vitals = next(r for r in resources if r["resourceType"] == "Observation" and r["code"].get("coding", [{}])[0].get("code") == "85354-9")
    assert [c["valueQuantity"]["value"] for c in vitals["component"]] == [122, 78, 72]
    order = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    assert (order["status"], order["intent"], order["dispenseRequest"]["numberOfRepeatsAllowed"]) == ("active", "order", 0)
    assert len(order["dosageInstruction"]) == 4

    client.cookies.clear()
    await sign_in(client, home.prescriber, clock)
    transfer = await client.get(f"/patients/{home.patient.patient_id}/record/fhir.json")
    assert transfer.status_code == 200
    async with session_factory() as session:
        exports = (
            (await session.execute(text("SELECT actor_role FROM audit_event WHERE action = 'patient.record.export' ORDER BY occurred_at")))
            .scalars()
            .all()
        )
    assert exports == ["patient", "prescriber"]

    for role, refused in (
        (Role.PHARMACIST, 403),
        (Role.COORDINATOR, 403),
        (Role.THERAPIST, 404),
    ):  # no records; operational only; not on the team
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))
        other = await make_person(session_factory, role=role, email=f"{role.value}@example.org", now=clock.now(), settings=settings)
        await sign_in(client, other, clock)
        assert (await client.get(f"/patients/{home.patient.patient_id}/record/fhir.json")).status_code == refused, role
