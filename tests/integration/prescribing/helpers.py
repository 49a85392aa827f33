"""A prescriber in a paid, booked consult with a screened patient, an open encounter, and the partner pharmacy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.prescribing.models import Pharmacy
from tests.helpers import Person, book_paid, csrf_headers, make_person, sign_in
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

TITRATION = [100, 150, 200, 200, 200, 200]
PLAN = {"product": "Ketamine HCl sublingual troche", "strength_mg": 50, "doses_mg": TITRATION, "min_hours_between": 48,
        "directions": "Dissolve under the tongue with your sitter present; do not swallow for 15 minutes."}  # fmt: skip


@dataclass
class Consult:
    prescriber: Person
    patient: Person
    appointment_id: str
    encounter_id: str
    pharmacy_id: uuid.UUID


async def consult_with_encounter(client, session_factory, settings, clock, stripe_fake, *, outcome="eligible", state="NY") -> Consult:
    """Patient books and pays a consult; the prescriber signs in and opens the encounter."""
    prescriber = await prescriber_with_hours(session_factory, settings, clock, state=state)
    patient = await screened_patient(session_factory, settings, clock, outcome=outcome, state=state)
    async with transaction(session_factory) as session:
        pharmacy = Pharmacy(name="Green Mountain Compounding", phone="+18025550111", address="1 Mill St, Burlington VT", created_at=clock.now())
        session.add(pharmacy)
    await sign_in(client, patient, clock)
    booked = await book_paid(client, stripe_fake, {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"})
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    opened = await client.post(f"/api/v1/appointments/{booked['id']}/encounter", headers=await csrf_headers(client))
    assert opened.status_code == 200, opened.text
    return Consult(prescriber, patient, booked["id"], opened.json()["id"], pharmacy.id)


async def ready_to_prescribe(client, consult: Consult, clock, *, state="NY") -> None:
    """Identity, location, a fresh PDMP check, vitals, and the decision to start a plan."""
    body = {"identity_checked": True, "identity_method": "driver's license shown on video", "location_state": state,
            "pdmp_checked_at": (clock.now() - timedelta(minutes=5)).isoformat(), "pdmp_state": state, "pdmp_reference": "PMP-1",
            "pdmp_summary": "no controlled prescriptions in 12 months", "vitals_reviewed": True, "vitals_note": "BP 122/78 at home"}  # fmt: skip
    recorded = await client.patch(f"/api/v1/encounters/{consult.encounter_id}", json=body, headers=await csrf_headers(client))
    assert recorded.status_code == 200, recorded.text
    decided = await client.post(f"/api/v1/encounters/{consult.encounter_id}/decision", json={"decision": "start_plan"}, headers=await csrf_headers(client))
    assert decided.status_code == 200, decided.text


async def sign(client, consult: Consult, plan_id: str, clock, *, code: str | None = None, password: str | None = None):
    """Sign with a fresh code (the sign-in used the current one, so move to the next 30-second step)."""
    from telehealth.accounts.security import current_totp_code
    from tests.helpers import PASSWORD

    clock.advance(timedelta(seconds=30))
    body = {"password": password or PASSWORD, "code": code or current_totp_code(consult.prescriber.totp_secret, at=clock.now())}
    return await client.post(f"/api/v1/plans/{plan_id}/sign", json=body, headers=await csrf_headers(client))


async def pharmacist(session_factory, settings, clock) -> Person:
    return await make_person(session_factory, role=Role.PHARMACIST, email="pharm@example.org", now=clock.now(), settings=settings)
