"""A complete, clean intake, step by step, through the real API."""

from __future__ import annotations

from sqlalchemy import update

from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.intake.consents import CONSENT_DOCUMENTS
from telehealth.intake.screening import CONDITIONS
from tests.helpers import csrf_headers, make_person, sign_in

CLEAN: dict[str, dict] = {
    "demographics": {
        "first_name": "Robin",
        "last_name": "Example",
        "date_of_birth": "1985-04-02",
        "phone": "+12125550123",
        "timezone": "America/Chicago",
    },
    "address": {"line1": "1 Main Street", "city": "Albany", "state": "NY", "postal_code": "12207"},
    "emergency_contact": {"name": "Sam Example", "relationship": "Sibling", "phone": "+12125550199"},
    "medical_history": dict.fromkeys(CONDITIONS, "no"),
    "medications": {"classes": []},
    "substance_use": {"ketamine_misuse_ever": "no", "substance_dependence_12_months": "no", "alcohol_drinks_per_week": "2"},
    "pregnancy": {"pregnant": "no", "breastfeeding": "no"},
    "vitals": {"bp_systolic": "122", "bp_diastolic": "78", "pulse": "70", "height_inches": "68", "weight_pounds": "160"},
    "phq9": {f"phq9_{i}": 1 for i in range(1, 9)} | {"phq9_9": 0},
    "gad7": {f"gad7_{i}": 1 for i in range(1, 8)},
    "cssrs": {"cssrs_1": 0, "cssrs_2": 0, "cssrs_3": 0, "cssrs_4": 0, "cssrs_5": 0, "cssrs_6": 0, "cssrs_6_recent": 0},
}


async def new_patient(client, session_factory, settings, clock, *, email="pat@example.org", state="NY"):
    patient = await make_person(session_factory, role=Role.PATIENT, email=email, now=clock.now(), settings=settings)
    async with session_factory() as session:
        await session.execute(update(Patient).where(Patient.id == patient.patient_id).values(state_of_residence=state))
        await session.commit()
    await sign_in(client, patient, clock)
    return patient


async def save(client, step: str, answers: dict):
    return await client.put(f"/api/v1/intake/steps/{step}", json={"answers": answers}, headers=await csrf_headers(client))


async def complete_intake(client, changes: dict[str, dict] | None = None, *, sign=True) -> None:
    for step, answers in CLEAN.items():
        response = await save(client, step, answers | (changes or {}).get(step, {}))
        assert response.status_code == 200, (step, response.text)
    if sign:
        for document in CONSENT_DOCUMENTS:
            signed = await client.post(
                "/api/v1/intake/consents", json={"document": document, "typed_name": "robin  EXAMPLE"}, headers=await csrf_headers(client)
            )
            assert signed.status_code == 200, signed.text


async def submit(client):
    return await client.post("/api/v1/intake/submit", headers=await csrf_headers(client))
