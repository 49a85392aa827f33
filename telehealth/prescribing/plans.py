"""Troche plans: written as a draft in an encounter, signed with the password and a TOTP code on the signing
request itself, then sent to the pharmacy in batches. Signing is a compare-and-swap; one live plan per
patient is a unique index. A signed plan never changes: any change is a new plan. Its pause, resume and
discontinuation are dosing's (dosing/plan_changes.py), which does what they cause to the sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.locks import lock_patient
from telehealth.accounts.sessions import SignedIn
from telehealth.accounts.two_factor import confirm_signature
from telehealth.audit.service import change_status, record_audit_event
from telehealth.billing.service import payment_due
from telehealth.billing.states import PaymentPurpose
from telehealth.care_teams import service as care_teams
from telehealth.db import driver
from telehealth.db.driver import Record
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.prescribing import encounters
from telehealth.prescribing.basis import basis_for_signing
from telehealth.prescribing.models import Encounter, Pharmacy, PlanBatch, TrochePlan
from telehealth.prescribing.rules import PlanContent, batches_for, check_plan, default_shipments
from telehealth.prescribing.states import LIVE_PLAN, PLAN_TRANSITIONS, BatchStatus, Decision, PlanStatus
from telehealth.settings import Settings


def content_of(plan: TrochePlan) -> PlanContent:
    return PlanContent(
        patient_id=str(plan.patient_id),
        encounter_id=str(plan.encounter_id),
        prescriber_id=str(plan.prescriber_id),
        pharmacy_id=str(plan.pharmacy_id),
        product=plan.product,
        strength_mg=plan.strength_mg,
        doses_mg=tuple(plan.doses_mg),
        min_hours_between=plan.min_hours_between,
        directions=plan.directions,
        shipment_sessions=tuple(plan.shipment_sessions),
        refills=plan.refills,
    )


async def _one_pharmacy(session: AsyncSession, pharmacy_id: uuid.UUID | None) -> Pharmacy:
    if pharmacy_id is not None:
        found = await session.get(Pharmacy, pharmacy_id)
        if found is None:
            raise InvalidInput(
                "request.invalid", "Choose one of the clinic's pharmacies.", fields={"pharmacy_id": "is not a known pharmacy"}
            )
        return found
    rows = list((await session.execute(select(Pharmacy).order_by(Pharmacy.name).limit(2))).scalars())
    if len(rows) != 1:
        raise InvalidInput(
            "request.invalid", "Choose the pharmacy.", fields={"pharmacy_id": "is required when the clinic has several (or none is set up)"}
        )
    return rows[0]


# The patient's newest signed plan (any status but draft): the patient's home and the reassessment's checkpoint
# read it on every visit, so on the driver (db/driver.py), as a record.
_NEWEST_SIGNED_PLAN = f"""
SELECT id, status, sessions FROM troche_plan
WHERE patient_id = $1 AND status != '{PlanStatus.DRAFT.value}' ORDER BY created_at DESC LIMIT 1
"""


async def newest_signed_plan(session: AsyncSession, *, patient_id: uuid.UUID, lock: bool = False) -> Record | None:
    """(id, status, sessions) of the patient's newest plan but a draft, or None; `lock` holds its row."""
    return await driver.fetchrow(session, _NEWEST_SIGNED_PLAN + (" FOR UPDATE" if lock else ""), patient_id)


async def live_plan(session: AsyncSession, *, patient_id: uuid.UUID) -> TrochePlan | None:
    return (
        await session.execute(select(TrochePlan).where(TrochePlan.patient_id == patient_id, col(TrochePlan.status).in_(list(LIVE_PLAN))))
    ).scalar_one_or_none()


async def write_plan(
    session: AsyncSession,
    encounter: Encounter,
    *,
    product: str,
    strength_mg: int,
    doses_mg: list[int],
    min_hours_between: int,
    directions: str,
    shipment_sessions: list[int] | None,
    pharmacy_id: uuid.UUID | None,
    refills: int,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> TrochePlan:
    """A draft plan in an encounter decided `start_plan`; every cap is checked now and again at signing."""
    if encounter.decision != Decision.START_PLAN:
        raise RuleRefused("plan.no_start_decision", "Record the decision to start a plan in this encounter first.")
    if (blocker := await encounters.prescribing_blocker(session, encounter, now=now, settings=settings)) is not None:
        raise blocker
    if await live_plan(session, patient_id=encounter.patient_id) is not None:
        raise RuleRefused(
            "plan.one_active_plan",
            "This patient already has an active plan. Discontinue it, or let it complete, first.",
            fields={"patient": "already has an active plan"},
        )
    pharmacy = await _one_pharmacy(session, pharmacy_id)
    content = PlanContent(
        patient_id=str(encounter.patient_id),
        encounter_id=str(encounter.id),
        prescriber_id=str(encounter.prescriber_id),
        pharmacy_id=str(pharmacy.id),
        product=product,
        strength_mg=strength_mg,
        doses_mg=tuple(doses_mg),
        min_hours_between=min_hours_between,
        directions=directions.strip(),
        shipment_sessions=tuple(shipment_sessions or default_shipments(len(doses_mg))),
        refills=refills,
    )
    check_plan(content, thresholds=settings.thresholds, strengths=settings.troche_strengths)
    plan = TrochePlan(
        patient_id=encounter.patient_id,
        encounter_id=encounter.id,
        prescriber_id=encounter.prescriber_id,
        pharmacy_id=pharmacy.id,
        status=PlanStatus.DRAFT.value,
        product=content.product,
        strength_mg=content.strength_mg,
        sessions=content.sessions,
        doses_mg=list(content.doses_mg),
        min_hours_between=content.min_hours_between,
        directions=content.directions,
        shipment_sessions=list(content.shipment_sessions),
        refills=0,
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="troche_plan.draft",
        resource_type="troche_plan",
        resource_id=plan.id,
        patient_id=plan.patient_id,
        now=now,
    )
    return plan


async def own_plan(session: AsyncSession, *, plan_id: uuid.UUID, signed_in: SignedIn, lock: bool = False) -> TrochePlan:
    """`lock` takes the patient, then the plan (the order of accounts/locks.py): a pause and an unlock take turns."""
    plan = await session.get(TrochePlan, plan_id, populate_existing=True)
    if plan is None or plan.prescriber_id != signed_in.user_id:
        raise NotFound("plan.not_found", "No plan with this id is yours.")
    if lock:
        await lock_patient(session, plan.patient_id)
        plan = await session.get(TrochePlan, plan_id, with_for_update=True, populate_existing=True)
        assert plan is not None  # plans are never deleted
    return plan


async def sign_plan(
    session: AsyncSession,
    plan: TrochePlan,
    *,
    signed_in: SignedIn,
    password: str,
    code: str,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> TrochePlan:
    """Sign: step-up on this very request, then every check again and the prescribing basis of the day (stored
    on the plan), then draft -> signed as a compare-and-swap with the SHA-256 of the canonical content. Then
    the pharmacy queue gets batch 1 and the program fee is due."""
    if plan.status != PlanStatus.DRAFT:
        raise Conflict("plan.not_draft", "Only a draft can be signed; this plan is already signed or closed.")
    await confirm_signature(session, signed_in=signed_in, password=password, code=code, actor=actor, now=now, settings=settings)
    encounter = await session.get(Encounter, plan.encounter_id)
    assert encounter is not None
    if (blocker := await encounters.prescribing_blocker(session, encounter, now=now, settings=settings, hold_credentials=True)) is not None:
        raise blocker
    content = content_of(plan)
    check_plan(content, thresholds=settings.thresholds, strengths=settings.troche_strengths)
    assert encounter.location_state is not None  # the blocker refuses without it
    patient = await encounters.patient_of(session, encounter)
    # The law of the day where the patient is; the record it rests on stays locked until this transaction ends.
    basis = await basis_for_signing(
        session, patient=patient, prescriber_id=plan.prescriber_id, location_state=encounter.location_state, now=now, settings=settings
    )
    try:
        async with session.begin_nested():
            await change_status(
                session,
                TrochePlan,
                plan.id,
                table=PLAN_TRANSITIONS,
                source=PlanStatus.DRAFT,
                target=PlanStatus.SIGNED,
                actor=actor,
                now=now,
                patient_id=plan.patient_id,
                values={"content_sha256": content.sha256(), "signed_at": now, "updated_at": now, **basis.plan_values()},
            )
    except IntegrityError as error:
        if "uq_troche_plan_one_live_per_patient" in str(error.orig):
            raise RuleRefused(
                "plan.one_active_plan", "This patient already has an active plan.", fields={"patient": "already has an active plan"}
            ) from None
        raise
    await care_teams.join(session, patient_id=plan.patient_id, clinician_id=plan.prescriber_id, because="plan_signed", now=now)
    await record_audit_event(
        session,
        actor=actor,
        action="troche_plan.basis",
        resource_type="troche_plan",
        resource_id=plan.id,
        patient_id=plan.patient_id,
        now=now,
        reason=basis.audit_reason(),
    )
    for batch in batches_for(content):
        session.add(
            PlanBatch(
                plan_id=plan.id,
                sequence=batch.sequence,
                first_session=batch.first_session,
                last_session=batch.last_session,
                units=batch.units,
                status=(BatchStatus.QUEUED if batch.sequence == 1 else BatchStatus.HELD).value,
                updated_at=now,
            )
        )
    await session.flush()
    await change_status(
        session,
        TrochePlan,
        plan.id,
        table=PLAN_TRANSITIONS,
        source=PlanStatus.SIGNED,
        target=PlanStatus.SENT_TO_PHARMACY,
        actor=Actor.system(),
        now=now,
        patient_id=plan.patient_id,
    )
    await payment_due(session, patient_id=plan.patient_id, purpose=PaymentPurpose.PROGRAM, now=now, settings=settings, plan_id=plan.id)
    await session.refresh(plan)
    return plan


def verify_signature(plan: TrochePlan) -> bool:
    """The stored hash still matches the plan's content (nothing changed after signing)."""
    return plan.content_sha256 is not None and plan.content_sha256 == content_of(plan).sha256()


async def batches_of(session: AsyncSession, *, plan_id: uuid.UUID) -> list[PlanBatch]:
    return list((await session.execute(select(PlanBatch).where(PlanBatch.plan_id == plan_id).order_by(col(PlanBatch.sequence)))).scalars())
