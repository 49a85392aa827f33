"""The pharmacy's side: a queue showing only what filling needs (minimum necessary: who, born when, where
to ship, the prescriber and DEA number, the medication lines), and each batch's steps. A pharmacist sees and
works only their own pharmacy's batches (pharmacy_staff): another pharmacy's batch answers 404 like one that
does not exist, and the refusal is audited; every queue and batch read is audited. Nothing ships before the
program fee is paid. A held batch goes to the pharmacy once the sessions before it are reported, or by a
prescriber's override with a reason: those rules are dosing's (dosing/inventory.py), which moves the batch
with `move_batch` here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from telehealth.accounts.models import UserAccount
from telehealth.accounts.service import patient_contact
from telehealth.audit.service import change_status, record_audit_event
from telehealth.billing.models import Payment
from telehealth.billing.states import PaymentPurpose, PaymentStatus
from telehealth.clinicians.models import DeaRegistration
from telehealth.clinicians.service import holds_schedule_iii
from telehealth.intake.models import Intake, IntakeSection
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput, NotFound, RuleRefused
from telehealth.notifications.service import queue_email
from telehealth.prescribing.models import Encounter, Pharmacy, PlanBatch, TrochePlan
from telehealth.prescribing.pharmacy_staff import NO_PHARMACY, pharmacy_of
from telehealth.prescribing.states import BATCH_TRANSITIONS, PLAN_TRANSITIONS, BatchStatus, PlanStatus

QUEUE_STATUSES = (BatchStatus.QUEUED, BatchStatus.ACCEPTED, BatchStatus.FILLED, BatchStatus.SHIPPED)


@dataclass(frozen=True)
class QueueItem:
    batch: PlanBatch
    patient_name: str
    date_of_birth: str | None
    ship_to: dict[str, str]
    prescriber_name: str
    prescriber_dea: str | None
    product: str
    strength_mg: int
    directions: str


async def _fill_details(session: AsyncSession, patient_id: uuid.UUID) -> tuple[str, str | None, dict[str, str]]:
    """Name and date of birth as on the photo ID, and the shipping address: the intake's two sections, nothing else."""
    intake_id = await session.scalar(
        select(Intake.id)
        .where(Intake.patient_id == patient_id, Intake.status == "submitted")
        .order_by(col(Intake.submitted_at).desc())
        .limit(1)
    )
    rows = {}
    if intake_id is not None:
        rows = {
            row.section: row.answers
            for row in (
                await session.execute(
                    select(IntakeSection).where(
                        IntakeSection.intake_id == intake_id, col(IntakeSection.section).in_(["demographics", "address"])
                    )
                )
            ).scalars()
        }
    demographics, address = rows.get("demographics", {}), rows.get("address", {})
    name = " ".join(part for part in (demographics.get("first_name"), demographics.get("last_name")) if part)
    if not name:
        name = (await patient_contact(session, patient_id)).full_name
    ship_to = {key: str(address[key]) for key in ("line1", "line2", "city", "state", "postal_code") if address.get(key)}
    return name, demographics.get("date_of_birth"), ship_to


@dataclass(frozen=True)
class PharmacyQueue:
    pharmacy: Pharmacy | None
    items: list[QueueItem]
    notice: str | None = None  # why the queue is empty when the pharmacist belongs to no pharmacy


def _batch_rows() -> Select[PlanBatch, TrochePlan, Encounter, str]:
    return (
        select(PlanBatch, TrochePlan, Encounter, UserAccount.full_name)
        .join(TrochePlan, col(TrochePlan.id) == PlanBatch.plan_id)
        .join(Encounter, col(Encounter.id) == TrochePlan.encounter_id)
        .join(UserAccount, col(UserAccount.id) == TrochePlan.prescriber_id)
    )


async def _item(session: AsyncSession, batch: PlanBatch, plan: TrochePlan, encounter: Encounter, prescriber_name: str) -> QueueItem:
    name, born, ship_to = await _fill_details(session, plan.patient_id)
    dea = await session.scalar(  # the registration the plan was signed under: that state, Schedule III, unexpired
        select(DeaRegistration.number).where(
            DeaRegistration.clinician_id == plan.prescriber_id,
            DeaRegistration.state == encounter.location_state,
            holds_schedule_iii(col(DeaRegistration.schedules)),
            DeaRegistration.expires_on >= (plan.signed_at or batch.updated_at).date(),
        )
    )
    return QueueItem(batch, name, born, ship_to, prescriber_name, dea, plan.product, plan.strength_mg, plan.directions)


async def queue(
    session: AsyncSession, *, pharmacist_id: uuid.UUID, actor: Actor, now: datetime, statuses: tuple[str, ...] = QUEUE_STATUSES
) -> PharmacyQueue:
    """The pharmacist's own pharmacy's batches, oldest first; empty with a sentence when they belong to none.
    Audited: one event for the queue and one per batch shown (with its patient), nothing of the patient in a reason."""
    pharmacy = await pharmacy_of(session, pharmacist_id)
    if pharmacy is None:
        await record_audit_event(
            session, actor=actor, action="pharmacy.queue.read", resource_type="pharmacy", now=now, outcome="denied", reason="no_pharmacy"
        )
        return PharmacyQueue(None, [], NO_PHARMACY)
    rows = (
        await session.execute(
            _batch_rows()
            .where(col(TrochePlan.pharmacy_id) == pharmacy.id, col(PlanBatch.status).in_([str(s) for s in statuses]))
            .order_by(col(PlanBatch.updated_at))
        )
    ).all()
    await record_audit_event(
        session,
        actor=actor,
        action="pharmacy.queue.read",
        resource_type="pharmacy",
        resource_id=pharmacy.id,
        now=now,
        reason=f"batches:{len(rows)}",
    )
    items = []
    for batch, plan, encounter, prescriber_name in rows:
        # Each line shows a patient's name, birth date and address: the patient's trail names who saw it.
        await record_audit_event(
            session,
            actor=actor,
            action="pharmacy.queue.line",
            resource_type="plan_batch",
            resource_id=batch.id,
            patient_id=plan.patient_id,
            now=now,
            reason=f"pharmacy:{pharmacy.id}",
        )
        items.append(await _item(session, batch, plan, encounter, prescriber_name))
    return PharmacyQueue(pharmacy, items)


async def lock_batch(session: AsyncSession, batch_id: uuid.UUID) -> tuple[PlanBatch, TrochePlan]:
    """The batch (FOR UPDATE) and its plan (FOR SHARE, as for a pharmacy step), for a step outside the
    pharmacy's queue: dosing's release by a prescriber. 404 `batch.not_found` when no batch has this id."""
    batch = await session.get(PlanBatch, batch_id, with_for_update=True, populate_existing=True)
    if batch is None:
        raise NotFound("batch.not_found", "No batch with this id.")
    return batch, await _plan_for_step(session, batch)


async def _plan_for_step(session: AsyncSession, batch: PlanBatch) -> TrochePlan:
    # FOR SHARE: a pause (an UPDATE of the plan) and a pharmacy step serialize, so a batch never ships from a
    # plan paused a moment before (the order is batch, then plan; pausing touches no batch).
    plan = await session.get(TrochePlan, batch.plan_id, with_for_update={"read": True}, populate_existing=True)
    assert plan is not None
    return plan


async def _own_pharmacy_batch(
    session: AsyncSession, *, batch_id: uuid.UUID, pharmacist_id: uuid.UUID, purpose: str, actor: Actor, now: datetime
) -> tuple[PlanBatch, TrochePlan, Pharmacy]:
    """The batch if it belongs to a plan sent to the pharmacist's own pharmacy (locked for a step, `purpose`
    not "read"). Any other id, another pharmacy's or none at all, is one answer: 404, audited as a refused
    `pharmacy.batch.<purpose>`."""
    lock = purpose != "read"
    pharmacy = await pharmacy_of(session, pharmacist_id)
    batch = None
    if pharmacy is not None:
        query = (
            select(PlanBatch)
            .join(TrochePlan, col(TrochePlan.id) == PlanBatch.plan_id)
            .where(PlanBatch.id == batch_id, TrochePlan.pharmacy_id == pharmacy.id)
        )
        if lock:
            query = query.with_for_update(of=PlanBatch)
        else:  # a read: a held batch is not sent to the pharmacy yet (a step on it answers 409 with its status)
            query = query.where(PlanBatch.status != BatchStatus.HELD)
        batch = await session.scalar(query.execution_options(populate_existing=True))
    if batch is None or pharmacy is None:
        await record_audit_event(
            session,
            actor=actor,
            action=f"pharmacy.batch.{purpose}",
            resource_type="plan_batch",
            resource_id=batch_id,
            now=now,
            outcome="denied",
            reason="no_pharmacy" if pharmacy is None else "not_visible",
        )
        raise NotFound("batch.not_found", "No batch with this id is in your pharmacy's queue.", keep_evidence=True)
    plan = await _plan_for_step(session, batch) if lock else await session.get(TrochePlan, batch.plan_id)
    assert plan is not None
    return batch, plan, pharmacy


async def read_batch(session: AsyncSession, *, batch_id: uuid.UUID, pharmacist_id: uuid.UUID, actor: Actor, now: datetime) -> QueueItem:
    """One batch of the pharmacist's own pharmacy with what filling needs (audited `pharmacy.batch.read`)."""
    batch, plan, pharmacy = await _own_pharmacy_batch(
        session, batch_id=batch_id, pharmacist_id=pharmacist_id, purpose="read", actor=actor, now=now
    )
    await record_audit_event(
        session,
        actor=actor,
        action="pharmacy.batch.read",
        resource_type="plan_batch",
        resource_id=batch.id,
        patient_id=plan.patient_id,
        now=now,
        reason=f"pharmacy:{pharmacy.id}",
    )
    _, _, encounter, prescriber_name = (await session.execute(_batch_rows().where(col(PlanBatch.id) == batch.id))).one()
    return await _item(session, batch, plan, encounter, prescriber_name)


async def move_batch(
    session: AsyncSession, batch: PlanBatch, plan: TrochePlan, target: BatchStatus, *, actor: Actor, now: datetime, **values: Any
) -> PlanBatch:
    """Move a batch the caller holds (locked, with its plan) to `target` through the batch transition table,
    audited with the plan's patient; `values` are the step's own columns. Each pharmacy step here ends with
    it, and dosing's release (held -> queued, by the rule or by a prescriber) calls it."""
    await change_status(
        session,
        PlanBatch,
        batch.id,
        table=BATCH_TRANSITIONS,
        source=batch.status,
        target=target,
        actor=actor,
        now=now,
        patient_id=plan.patient_id,
        values={"updated_at": now, **values},
    )
    await session.refresh(batch)
    return batch


async def accept(session: AsyncSession, *, batch_id: uuid.UUID, pharmacist_id: uuid.UUID, actor: Actor, now: datetime) -> PlanBatch:
    batch, plan, _ = await _own_pharmacy_batch(
        session, batch_id=batch_id, pharmacist_id=pharmacist_id, purpose="accept", actor=actor, now=now
    )
    return await move_batch(session, batch, plan, BatchStatus.ACCEPTED, actor=actor, now=now)


async def reject(
    session: AsyncSession, *, batch_id: uuid.UUID, pharmacist_id: uuid.UUID, reason: str, actor: Actor, now: datetime
) -> PlanBatch:
    """The pharmacy cannot fill it; the reason goes back to the prescriber (shown on the plan)."""
    batch, plan, _ = await _own_pharmacy_batch(
        session, batch_id=batch_id, pharmacist_id=pharmacist_id, purpose="reject", actor=actor, now=now
    )
    if not reason.strip():
        raise InvalidInput("request.invalid", "Give the reason for the prescriber.", fields={"reason": "is required"})
    return await move_batch(session, batch, plan, BatchStatus.REJECTED, actor=actor, now=now, rejected_reason=reason.strip()[:1000])


async def fill(
    session: AsyncSession,
    *,
    batch_id: uuid.UUID,
    pharmacist_id: uuid.UUID,
    lot_number: str,
    beyond_use_date: date,
    units: int,
    actor: Actor,
    now: datetime,
) -> PlanBatch:
    batch, plan, _ = await _own_pharmacy_batch(
        session, batch_id=batch_id, pharmacist_id=pharmacist_id, purpose="fill", actor=actor, now=now
    )
    problems = {}
    if not lot_number.strip():
        problems["lot_number"] = "is required"
    if beyond_use_date <= now.date():
        problems["beyond_use_date"] = "must be after today"
    if units != batch.units:
        problems["units"] = f"must be {batch.units}, the units this batch's doses need"
    if problems:
        raise InvalidInput("request.invalid", "Some fill details need another look.", fields=problems)
    return await move_batch(
        session,
        batch,
        plan,
        BatchStatus.FILLED,
        actor=actor,
        now=now,
        lot_number=lot_number.strip(),
        beyond_use_date=beyond_use_date,
        units_filled=units,
    )


async def ship(
    session: AsyncSession,
    *,
    batch_id: uuid.UUID,
    pharmacist_id: uuid.UUID,
    carrier: str,
    tracking_number: str,
    signature_required: bool,
    actor: Actor,
    now: datetime,
) -> PlanBatch:
    batch, plan, _ = await _own_pharmacy_batch(
        session, batch_id=batch_id, pharmacist_id=pharmacist_id, purpose="ship", actor=actor, now=now
    )
    if not carrier.strip() or not tracking_number.strip():
        raise InvalidInput(
            "request.invalid",
            "Give the carrier and the tracking number.",
            fields={
                name: "is required" for name, value in (("carrier", carrier), ("tracking_number", tracking_number)) if not value.strip()
            },
        )
    if plan.status == PlanStatus.PAUSED:
        raise RuleRefused("batch.plan_paused", "The plan is paused for a prescriber's review; hold the shipment.")
    paid = await session.scalar(
        select(Payment.id).where(
            Payment.plan_id == plan.id, Payment.purpose == PaymentPurpose.PROGRAM, Payment.status == PaymentStatus.PAID
        )
    )
    if paid is None:
        raise RuleRefused("batch.program_fee_unpaid", "The program fee is not paid yet; shipping waits for it.")
    shipped = await move_batch(
        session,
        batch,
        plan,
        BatchStatus.SHIPPED,
        actor=actor,
        now=now,
        carrier=carrier.strip(),
        tracking_number=tracking_number.strip(),
        signature_required=signature_required,
        shipped_at=now,
    )
    user = await patient_contact(session, plan.patient_id)
    await queue_email(
        session,
        to=user.email,
        template="shipment_on_its_way",
        context={"recipient_name": user.full_name},
        now=now,
        dedupe_key=f"shipped:{batch.id}",
    )
    return shipped


async def deliver(session: AsyncSession, *, batch_id: uuid.UUID, pharmacist_id: uuid.UUID, actor: Actor, now: datetime) -> PlanBatch:
    """Delivered (signed for); the plan becomes active with its first delivery."""
    batch, plan, _ = await _own_pharmacy_batch(
        session, batch_id=batch_id, pharmacist_id=pharmacist_id, purpose="deliver", actor=actor, now=now
    )
    delivered = await move_batch(session, batch, plan, BatchStatus.DELIVERED, actor=actor, now=now, delivered_at=now)
    if plan.status == PlanStatus.SENT_TO_PHARMACY:
        await change_status(
            session,
            TrochePlan,
            plan.id,
            table=PLAN_TRANSITIONS,
            source=PlanStatus.SENT_TO_PHARMACY,
            target=PlanStatus.ACTIVE,
            actor=Actor.system(),
            now=now,
            patient_id=plan.patient_id,
            values={"updated_at": now},
        )
    return delivered
