"""A prescriber in a paid, booked consult with a screened patient, an open encounter, and the partner pharmacy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.prescribing.models import Pharmacy
from tests.helpers import Person, book_paid, csrf_headers, make_person, sign_in, visit_took_place
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

TITRATION = [100, 150, 200, 200, 200, 200]
PLAN = {
    "product": "Ketamine HCl sublingual troche",
    "strength_mg": 50,
    "doses_mg": TITRATION,
    "min_hours_between": 48,
    "directions": "Dissolve under the tongue with your sitter present; do not swallow for 15 minutes.",
}


@dataclass
class Consult:
    prescriber: Person
    patient: Person
    appointment_id: str
    encounter_id: str
    pharmacy_id: uuid.UUID


async def consult_with_encounter(client, session_factory, settings, clock, stripe_fake, *, outcome="eligible", state="NY") -> Consult:
    """Patient books and pays a consult; at its start both join the video visit; the prescriber opens the encounter."""
    prescriber = await prescriber_with_hours(session_factory, settings, clock, state=state)
    patient = await screened_patient(session_factory, settings, clock, outcome=outcome, state=state)
    async with transaction(session_factory) as session:
        pharmacy = Pharmacy(
            name="Green Mountain Compounding", phone="+18025550111", address="1 Mill St, Burlington VT", created_at=clock.now()
        )
        session.add(pharmacy)
    await sign_in(client, patient, clock)
    booked = await book_paid(
        client, stripe_fake, {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    )
    # The visit: both in the room at the start; the prescriber opens the encounter ten minutes in.
    consult_starts_at = datetime.fromisoformat(booked["starts_at"])
    await visit_took_place(session_factory, booked["id"], started_at=consult_starts_at)
    clock.set(consult_starts_at + timedelta(minutes=10))
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    opened = await client.post(f"/api/v1/appointments/{booked['id']}/encounter", headers=await csrf_headers(client))
    assert opened.status_code == 200, opened.text
    return Consult(prescriber, patient, booked["id"], opened.json()["id"], pharmacy.id)


async def ready_to_prescribe(client, consult: Consult, clock, *, state="NY") -> None:
    """Identity, location, a fresh PDMP check, vitals, and the decision to start a plan."""
    body = {
        "identity_checked": True,
        "identity_method": "driver's license shown on video",
        "location_state": state,
        "pdmp_checked_at": (clock.now() - timedelta(minutes=5)).isoformat(),
        "pdmp_state": state,
        "pdmp_reference": "PMP-1",
        "pdmp_summary": "no controlled prescriptions in 12 months",
        "vitals_reviewed": True,
        "vitals_note": "BP 122/78 at home",
    }
    recorded = await client.patch(f"/api/v1/encounters/{consult.encounter_id}", json=body, headers=await csrf_headers(client))
    assert recorded.status_code == 200, recorded.text
    decided = await client.post(
        f"/api/v1/encounters/{consult.encounter_id}/decision", json={"decision": "start_plan"}, headers=await csrf_headers(client)
    )
    assert decided.status_code == 200, decided.text


async def sign(client, consult: Consult, plan_id: str, clock, *, code: str | None = None, password: str | None = None):
    """Sign with a fresh code (the sign-in used the current one, so move to the next 30-second step)."""
    from telehealth.accounts.security import current_totp_code
    from tests.helpers import PASSWORD

    clock.advance(timedelta(seconds=30))
    body = {"password": password or PASSWORD, "code": code or current_totp_code(consult.prescriber.totp_secret, at=clock.now())}
    return await client.post(f"/api/v1/plans/{plan_id}/sign", json=body, headers=await csrf_headers(client))


async def pharmacist(session_factory, settings, clock, *, pharmacy_id: uuid.UUID | None, email: str = "pharm@example.org") -> Person:
    """A pharmacist of `pharmacy_id` (the consult's pharmacy, for the queue to show its plan); None: of no pharmacy."""
    from telehealth.lib.actors import Actor
    from telehealth.prescribing.pharmacy_staff import assign_pharmacy

    person = await make_person(session_factory, role=Role.PHARMACIST, email=email, now=clock.now(), settings=settings)
    if pharmacy_id is not None:
        async with transaction(session_factory) as session:
            await assign_pharmacy(session, pharmacist_id=person.user_id, pharmacy_id=pharmacy_id, actor=Actor.system(), now=clock.now())
    return person


async def other_pharmacy(session_factory, clock, name: str = "Hudson Valley Compounding") -> uuid.UUID:
    """A second partner pharmacy: its staff must see nothing of the first one's batches."""
    async with transaction(session_factory) as session:
        pharmacy = Pharmacy(name=name, phone="+18455550122", address="9 Main St, Kingston NY", created_at=clock.now())
        session.add(pharmacy)
    return pharmacy.id


# --- Steps the rule tests share -------------------------------------------------------------------------


async def switch_to(client, person: Person, clock) -> None:
    """Sign in as someone else; staff get a fresh TOTP step (a code is never accepted twice)."""
    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    await sign_in(client, person, clock)


async def draft(client, consult: Consult, **changes):
    """POST a draft plan: PLAN with `changes` (the response, not asserted)."""
    return await client.post(
        f"/api/v1/encounters/{consult.encounter_id}/plans", json={**PLAN, **changes}, headers=await csrf_headers(client)
    )


async def drafted(client, consult: Consult, **changes) -> dict:
    response = await draft(client, consult, **changes)
    assert response.status_code == 201, response.text
    return response.json()


async def signed_plan(client, session_factory, settings, clock, stripe_fake, **changes) -> tuple[Consult, dict]:
    """A consult, its encounter ready, and a plan signed (batch 1 queued, the rest held); the prescriber signed in."""
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult, **changes)
    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text
    return consult, signed.json()


async def pay_program_fee(client, consult: Consult, stripe_fake, clock) -> dict:
    """The patient pays the program fee from the billing page (leaves the patient signed in): the payment."""
    from tests.helpers import pay_checkout

    await switch_to(client, consult.patient, clock)
    statement = (await client.get("/api/v1/billing/statement")).json()
    program = next(p for p in statement["payments"] if p["purpose"] == "program")
    checkout = await client.post(f"/api/v1/billing/payments/{program['id']}/checkout", headers=await csrf_headers(client))
    assert checkout.status_code == 200, checkout.text
    await pay_checkout(client, stripe_fake, checkout.json()["checkout_url"])
    return program


async def pharmacy_step(client, batch_id: str, step: str, body: dict | None = None):
    return await client.post(f"/api/v1/pharmacy/batches/{batch_id}/{step}", json=body or {}, headers=await csrf_headers(client))


FILL = {"lot_number": "L-7", "beyond_use_date": "2027-02-01"}
SHIP = {"carrier": "UPS", "tracking_number": "1Z999"}


async def release(client, batch_id: str, override_reason: str | None = None):
    body = {} if override_reason is None else {"override_reason": override_reason}
    return await client.post(f"/api/v1/batches/{batch_id}/release", json=body, headers=await csrf_headers(client))


def refusal(response) -> tuple[int, str, list[str]]:
    """(status, code, the fields it names) of an error answer."""
    body = response.json()
    return response.status_code, body.get("code"), sorted(body.get("fields", {}))


async def set_credentials(session_factory, prescriber: Person, *, license_expires=None, dea_expires=None, schedules=None) -> None:
    """Change the prescriber's NY license or DEA registration in the database (what time or a registrar does)."""
    from sqlalchemy import update

    from telehealth.clinicians.models import DeaRegistration, StateLicense

    async with transaction(session_factory) as session:
        if license_expires is not None:
            await session.execute(
                update(StateLicense).where(StateLicense.clinician_id == prescriber.user_id).values(expires_on=license_expires)
            )
        dea = {name: value for name, value in (("expires_on", dea_expires), ("schedules", schedules)) if value is not None}
        if dea:
            await session.execute(update(DeaRegistration).where(DeaRegistration.clinician_id == prescriber.user_id).values(**dea))


def review_reason(rule_id: str) -> dict:
    """One needs_review reason as screening stores it."""
    from telehealth.intake.screening import MEDICATION_CLASSES, Outcome, Reason
    from telehealth.intake.service import _reason_dict

    key = rule_id.removeprefix("medication.")
    return _reason_dict(
        Reason(
            rule_id=rule_id,
            outcome=Outcome.NEEDS_REVIEW,
            clinician_text=f"Takes {MEDICATION_CLASSES.get(key, key)}.",
            patient_text="A prescriber will review this.",
            evidence=f"reported: {key}",
        )
    )


async def rescreen(session_factory, clock, patient: Person, *, rule_ids: list[str]) -> None:
    """A newer screening of the patient (a later intake) with these needs_review flags."""
    from telehealth.intake.models import Intake, ScreeningDecision

    async with transaction(session_factory) as session:
        intake = Intake(
            id=uuid.uuid4(), patient_id=patient.patient_id, status="submitted", started_at=clock.now(), submitted_at=clock.now()
        )
        session.add(intake)
        await session.flush()
        session.add(
            ScreeningDecision(
                intake_id=intake.id,
                patient_id=patient.patient_id,
                outcome="needs_review",
                crisis=False,
                reasons=[review_reason(r) for r in rule_ids],
                screened_at=clock.now(),
            )
        )


async def audit_actions(session_factory, resource_id, *, outcome: str | None = None, prefix: str | None = None) -> list[str]:
    """The audit trail's actions on one resource, in order (only those starting with `prefix`, if given)."""
    from sqlalchemy import select

    from telehealth.audit.models import AuditEvent

    query = select(AuditEvent.action).where(AuditEvent.resource_id == str(resource_id)).order_by(AuditEvent.id)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    if prefix is not None:
        query = query.where(AuditEvent.action.startswith(prefix))
    async with session_factory() as session:
        return list((await session.execute(query)).scalars())


async def at_once(client, requests) -> list:
    """Send prepared requests truly concurrently: the test client blocks its caller per request, so each goes
    from its own thread into the app's one event loop (as separate browsers would)."""
    import asyncio

    transport = client._transport

    def send(request):
        response = transport.handle_request(request)
        response.read()
        return response

    return await asyncio.gather(*(asyncio.to_thread(send, request) for request in requests))


def request_as(client, cookies, method: str, url: str, **kwargs):
    """A request carrying one saved browser's cookies (session and CSRF token)."""
    saved = client.cookies
    client.cookies = cookies
    try:
        return client.build_request(method, url, headers={"x-csrftoken": cookies["csrftoken"]}, **kwargs)
    finally:
        client.cookies = saved


async def flag_screening(session_factory, patient: Person, *, rule_ids: list[str]) -> None:
    """Put needs_review reasons on the patient's (latest) screening."""
    from sqlalchemy import update

    from telehealth.intake.models import ScreeningDecision

    async with transaction(session_factory) as session:
        await session.execute(
            update(ScreeningDecision)
            .where(ScreeningDecision.patient_id == patient.patient_id)
            .values(outcome="needs_review", reasons=[review_reason(r) for r in rule_ids])
        )


def not_a_current_code(secret: str, at) -> str:
    """Six digits that are none of the codes the signing check accepts at `at` (one step either side)."""
    from telehealth.accounts.security import current_totp_code

    accepted = {current_totp_code(secret, at=at + timedelta(seconds=30 * n)) for n in (-1, 0, 1, 2)}
    return next(code for code in (f"{d}" * 6 for d in range(10)) if code not in accepted)


async def record_encounter(client, consult: Consult, **values):
    return await client.patch(f"/api/v1/encounters/{consult.encounter_id}", json=values, headers=await csrf_headers(client))


async def decide(client, consult: Consult, decision: str = "start_plan", reason: str | None = None):
    body = {"decision": decision, **({"reason": reason} if reason is not None else {})}
    return await client.post(f"/api/v1/encounters/{consult.encounter_id}/decision", json=body, headers=await csrf_headers(client))


MEDICAL_HISTORY = {"conditions": ["seizure_disorder"], "notes": "Clonazepam since 2019"}


async def intake_on_file(session_factory, clock, patient: Person) -> None:
    """The sections a submitted intake holds: what fills a prescription, and what must never reach the pharmacy."""
    from sqlalchemy import select

    from telehealth.intake.models import Intake, IntakeSection

    sections = {
        "demographics": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "date_of_birth": "1985-12-10",
            "phone": "+12125550100",
            "timezone": "America/New_York",
        },
        "address": {"line1": "12 Hudson St", "line2": "Apt 4", "city": "New York", "state": "NY", "postal_code": "10013"},
        "emergency_contact": {"name": "Charles Babbage", "relationship": "friend", "phone": "+12125550199"},
        "medical_history": MEDICAL_HISTORY,
        "medications": {"classes": ["benzodiazepines"], "other": "Clonazepam 0.5 mg"},
        "vitals": {"bp_systolic": 128, "bp_diastolic": 82, "pulse": 70, "height_inches": 66, "weight_pounds": 150},
    }
    async with transaction(session_factory) as session:
        intake_id = (await session.execute(select(Intake.id).where(Intake.patient_id == patient.patient_id))).scalar_one()
        for name, answers in sections.items():
            session.add(IntakeSection(intake_id=intake_id, section=name, answers=answers, saved_at=clock.now()))
