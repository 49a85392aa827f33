"""The demo's patient in a home program: a consult done, a signed plan whose first shipment is delivered,
and a sitter who has signed the agreement and whom the demo coordinator has verified by a video call, so
/dosing has a session to schedule. Idempotent."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.service import create_account, find_user_by_email
from telehealth.care_teams import service as care_teams
from telehealth.dosing.models import Sitter
from telehealth.dosing.sitters import SITTER_AGREEMENT
from telehealth.dosing.states import SitterStatus
from telehealth.lib.actors import Actor
from telehealth.prescribing.models import Encounter, Pharmacy, PlanBatch, TrochePlan
from telehealth.prescribing.plans import content_of
from telehealth.scheduling.models import Appointment, VideoVisit, VisitConnection
from telehealth.settings import Settings

HOME_PATIENT = ("home@demo.example", "Taylor Brooks")
TITRATION = [100, 150, 200, 200, 200, 200]


async def seed_home_program(
    session: AsyncSession, *, prescriber: UserAccount, coordinator: UserAccount, password: str, now: datetime, settings: Settings
) -> UserAccount:
    email, name = HOME_PATIENT
    user = await find_user_by_email(session, email)
    if user is not None:
        return user
    user = await create_account(
        session,
        email=email,
        full_name=name,
        role=Role.PATIENT,
        password=password,
        actor=Actor.system(),
        now=now,
        settings=settings,
        email_verified=True,
    )
    await session.flush()
    patient = (await session.execute(select(Patient).where(Patient.user_id == user.id))).scalar_one()
    patient.state_of_residence = "NY"
    await care_teams.join(session, patient_id=patient.id, clinician_id=prescriber.id, because="consult_booked", now=now)
    consult_at = now - timedelta(days=10)
    appointment = Appointment(
        appointment_type="consult",
        clinician_id=prescriber.id,
        patient_id=patient.id,
        status="completed",
        starts_at=consult_at,
        ends_at=consult_at + timedelta(minutes=45),
        busy_from=consult_at,
        busy_until=consult_at + timedelta(minutes=45),
        room_token=secrets.token_urlsafe(24),
        created_at=consult_at - timedelta(days=3),
    )
    pharmacy = (await session.execute(select(Pharmacy).limit(1))).scalar_one()
    session.add(appointment)
    await session.flush()
    session.add_all(
        [  # the consult's video visit: the encounter below followed its start
            VisitConnection(
                appointment_id=appointment.id,
                user_id=prescriber.id,
                participant="clinician",
                joined_at=consult_at - timedelta(minutes=2),
                left_at=consult_at + timedelta(minutes=44),
            ),
            VisitConnection(
                appointment_id=appointment.id,
                user_id=user.id,
                participant="patient",
                joined_at=consult_at,
                left_at=consult_at + timedelta(minutes=44),
            ),
            VideoVisit(
                appointment_id=appointment.id,
                started_at=consult_at,
                start_evidence="both_connected",
                ended_at=consult_at + timedelta(minutes=44),
            ),
        ]
    )
    await session.flush()
    encounter = Encounter(
        appointment_id=appointment.id,
        patient_id=patient.id,
        prescriber_id=prescriber.id,
        opened_at=consult_at,
        identity_checked=True,
        identity_method="driver's license on video",
        location_state="NY",
        location_recorded_at=consult_at,
        vitals_reviewed=True,
        decision="start_plan",
        decided_at=consult_at + timedelta(minutes=40),
    )
    session.add(encounter)
    await session.flush()
    plan = TrochePlan(
        patient_id=patient.id,
        encounter_id=encounter.id,
        prescriber_id=prescriber.id,
        pharmacy_id=pharmacy.id,
        status="active",
        product="Ketamine HCl sublingual troche",
        strength_mg=50,
        sessions=len(TITRATION),
        doses_mg=TITRATION,
        min_hours_between=48,
        directions="Dissolve under the tongue with your sitter present; do not swallow for 15 minutes.",
        shipment_sessions=[3, 3],
        signed_at=consult_at + timedelta(minutes=50),
        prescribing_basis="telemedicine_flexibilities",
        created_at=consult_at,
        updated_at=now,
    )
    plan.content_sha256 = content_of(plan).sha256()
    session.add(plan)
    await session.flush()
    delivered = now - timedelta(days=2)
    session.add_all(
        [
            PlanBatch(
                plan_id=plan.id,
                sequence=1,
                first_session=1,
                last_session=3,
                units=9,
                units_filled=9,
                status="delivered",
                lot_number="DEMO-1",
                carrier="UPS",
                tracking_number="1ZDEMO",
                shipped_at=delivered - timedelta(days=2),
                delivered_at=delivered,
                updated_at=delivered,
            ),
            PlanBatch(plan_id=plan.id, sequence=2, first_session=4, last_session=6, units=12, status="held", updated_at=delivered),
        ]
    )
    session.add(
        Sitter(
            patient_id=patient.id,
            status=SitterStatus.CONFIRMED,
            full_name="Jordan Brooks",
            email="sitter@demo.example",
            relationship="partner",
            adult_confirmed=True,
            agreement_version=SITTER_AGREEMENT.version,
            agreement_sha256=SITTER_AGREEMENT.sha256,
            typed_name="Jordan Brooks",
            signed_at=delivered,
            created_at=delivered - timedelta(days=1),
            updated_at=delivered,
            verified_at=delivered + timedelta(hours=2),
            verified_by=coordinator.id,
            verification_method="video",
            verification_note="Demo: a short video call; a different person from the patient, knows the agreement.",
        )
    )
    return user
