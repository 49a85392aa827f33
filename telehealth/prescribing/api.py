"""JSON API: the prescriber's encounter and plans, the pharmacist's queue and batches, the patient's shipments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.schema import RequestBody, ResponseBody
from telehealth.prescribing import encounters, pharmacy, plans
from telehealth.prescribing.models import Encounter, PlanBatch, TrochePlan
from telehealth.prescribing.schemas import (
    Acknowledgement,
    BatchBody,
    DecisionBody,
    EncounterBody,
    EncounterUpdate,
    FillRequest,
    PharmacyQueueBody,
    PlanBody,
    PlanRequest,
    QueueLine,
    ReasonBody,
    ShipmentBody,
    ShipRequest,
    SignRequest,
)
from telehealth.prescribing.states import Decision
from telehealth.settings import Settings

PRESCRIBER = [requires_role(Role.PRESCRIBER)]
PHARMACIST = [requires_role(Role.PHARMACIST)]


async def encounter_body(
    session: AsyncSession, encounter: Encounter, *, now: datetime, settings: Settings, chart: dict[str, Any] | None = None
) -> EncounterBody:
    blocker = await encounters.prescribing_blocker(session, encounter, now=now, settings=settings)
    return EncounterBody(
        id=encounter.id,
        appointment_id=encounter.appointment_id,
        patient_id=encounter.patient_id,
        identity_checked=encounter.identity_checked,
        identity_method=encounter.identity_method,
        location_state=encounter.location_state,
        pdmp_checked_at=encounter.pdmp_checked_at,
        pdmp_state=encounter.pdmp_state,
        pdmp_reference=encounter.pdmp_reference,
        pdmp_summary=encounter.pdmp_summary,
        vitals_reviewed=encounter.vitals_reviewed,
        vitals_note=encounter.vitals_note,
        decision=encounter.decision,
        decision_reason=encounter.decision_reason,
        prescribing_blocked={"code": blocker.code, "detail": blocker.detail} if blocker else None,
        chart=chart,
    )


def batch_body(batch: PlanBatch) -> BatchBody:
    return BatchBody(
        id=batch.id,
        sequence=batch.sequence,
        sessions=f"{batch.first_session}-{batch.last_session}",
        units=batch.units,
        status=batch.status,
        rejected_reason=batch.rejected_reason,
        release_override_reason=batch.release_override_reason,
        lot_number=batch.lot_number,
        beyond_use_date=batch.beyond_use_date,
        carrier=batch.carrier,
        tracking_number=batch.tracking_number,
        shipped_at=batch.shipped_at,
        delivered_at=batch.delivered_at,
    )


async def plan_body(session: AsyncSession, plan: TrochePlan) -> PlanBody:
    batches = await plans.batches_of(session, plan_id=plan.id)
    return PlanBody(
        id=plan.id,
        patient_id=plan.patient_id,
        status=plan.status,
        product=plan.product,
        strength_mg=plan.strength_mg,
        sessions=plan.sessions,
        doses_mg=list(plan.doses_mg),
        units_per_session=[dose // plan.strength_mg for dose in plan.doses_mg],
        min_hours_between=plan.min_hours_between,
        directions=plan.directions,
        shipment_sessions=list(plan.shipment_sessions),
        refills=plan.refills,
        content_sha256=plan.content_sha256,
        signed_at=plan.signed_at,
        status_reason=plan.status_reason,
        batches=[batch_body(b) for b in batches],
        prescribing_basis=plan.prescribing_basis,
        in_person_evaluation_id=plan.in_person_evaluation_id,
        special_registration_id=plan.special_registration_id,
    )


class EncounterApiController(Controller):
    tags = ["prescribing"]
    guards = PRESCRIBER

    @post("/api/v1/appointments/{appointment_id:uuid}/encounter", status_code=200)
    async def open(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> EncounterBody:
        """Open (or reopen) the encounter of your consult or reassessment."""
        encounter = await encounters.open_encounter(
            db_session, appointment_id=appointment_id, signed_in=signed_in, actor=actor, now=clock.now()
        )
        return await encounter_body(db_session, encounter, now=clock.now(), settings=settings)

    @get("/api/v1/encounters/{encounter_id:uuid}")
    async def read(
        self,
        encounter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> EncounterBody:
        """The encounter with the patient's chart: intake, scores, screening flags, history (the read is audited)."""
        encounter = await encounters.own_encounter(db_session, encounter_id=encounter_id, signed_in=signed_in)
        chart = await encounters.chart(db_session, encounter, signed_in=signed_in, actor=actor, now=clock.now())
        return await encounter_body(db_session, encounter, now=clock.now(), settings=settings, chart=chart)

    @patch("/api/v1/encounters/{encounter_id:uuid}")
    async def update(
        self,
        encounter_id: FromPath[uuid.UUID],
        data: JSONBody[EncounterUpdate],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> EncounterBody:
        """Record identity, the patient's location now, the PDMP check and vitals (any subset)."""
        encounter = await encounters.own_encounter(db_session, encounter_id=encounter_id, signed_in=signed_in, lock=True)
        values = encounters.EncounterRecord(**{name: getattr(data, name) for name in EncounterUpdate.__struct_fields__})
        await encounters.record(db_session, encounter, values, actor=actor, now=clock.now())
        return await encounter_body(db_session, encounter, now=clock.now(), settings=settings)

    @post("/api/v1/encounters/{encounter_id:uuid}/acknowledgements", status_code=200)
    async def acknowledge(
        self,
        encounter_id: FromPath[uuid.UUID],
        data: JSONBody[Acknowledgement],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> EncounterBody:
        """A note on one needs_review flag of the patient's screening."""
        encounter = await encounters.own_encounter(db_session, encounter_id=encounter_id, signed_in=signed_in, lock=True)
        await encounters.acknowledge_flag(db_session, encounter, rule_id=data.rule_id, note=data.note, actor=actor, now=clock.now())
        return await encounter_body(db_session, encounter, now=clock.now(), settings=settings)

    @post("/api/v1/encounters/{encounter_id:uuid}/decision", status_code=200)
    async def decide(
        self,
        encounter_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> EncounterBody:
        """Start a plan, decline (the consult is refunded in full) or refer out."""
        encounter = await encounters.own_encounter(db_session, encounter_id=encounter_id, signed_in=signed_in, lock=True)
        await encounters.decide(
            db_session, encounter, decision=Decision(data.decision), reason=data.reason, actor=actor, now=clock.now(), settings=settings
        )
        return await encounter_body(db_session, encounter, now=clock.now(), settings=settings)

    @post("/api/v1/encounters/{encounter_id:uuid}/plans", status_code=201)
    async def write(
        self,
        encounter_id: FromPath[uuid.UUID],
        data: JSONBody[PlanRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> PlanBody:
        """A draft plan; the units of each shipment are computed from the doses and the strength."""
        encounter = await encounters.own_encounter(db_session, encounter_id=encounter_id, signed_in=signed_in, lock=True)
        plan = await plans.write_plan(
            db_session,
            encounter,
            product=data.product,
            strength_mg=data.strength_mg,
            doses_mg=data.doses_mg,
            min_hours_between=data.min_hours_between,
            directions=data.directions,
            shipment_sessions=data.shipment_sessions,
            pharmacy_id=data.pharmacy_id,
            refills=data.refills,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return await plan_body(db_session, plan)


class PlanApiController(Controller):
    tags = ["prescribing"]
    guards = PRESCRIBER

    @get("/api/v1/plans/{plan_id:uuid}")
    async def read(
        self, plan_id: FromPath[uuid.UUID], signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]
    ) -> PlanBody:
        return await plan_body(db_session, await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in))

    @post("/api/v1/plans/{plan_id:uuid}/sign", status_code=200)
    async def sign(
        self,
        plan_id: FromPath[uuid.UUID],
        data: JSONBody[SignRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> PlanBody:
        """Sign with your password and a current authenticator code, on this request."""
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in)
        signed = await plans.sign_plan(
            db_session, plan, signed_in=signed_in, password=data.password, code=data.code, actor=actor, now=clock.now(), settings=settings
        )
        return await plan_body(db_session, signed)


def queue_line(item: pharmacy.QueueItem) -> QueueLine:
    batch = item.batch
    return QueueLine(
        batch_id=batch.id,
        status=batch.status,
        sequence=batch.sequence,
        patient_name=item.patient_name,
        date_of_birth=item.date_of_birth,
        ship_to=item.ship_to,
        prescriber_name=item.prescriber_name,
        prescriber_dea=item.prescriber_dea,
        product=item.product,
        strength_mg=item.strength_mg,
        units=batch.units,
        sessions=f"{batch.first_session}-{batch.last_session}",
        directions=item.directions,
    )


class PharmacyApiController(Controller):
    """The pharmacist's own pharmacy only (pharmacy.py): another pharmacy's batch is 404 for every call."""

    tags = ["pharmacy"]
    guards = PHARMACIST

    @get("/api/v1/pharmacy/queue")
    async def queue(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> PharmacyQueueBody:
        """Your pharmacy's batches to accept, fill, ship and deliver: only what filling needs (the read is audited)."""
        found = await pharmacy.queue(db_session, pharmacist_id=signed_in.user_id, actor=actor, now=clock.now())
        return PharmacyQueueBody(
            pharmacy_id=found.pharmacy.id if found.pharmacy else None,
            pharmacy_name=found.pharmacy.name if found.pharmacy else None,
            notice=found.notice,
            batches=[queue_line(item) for item in found.items],
        )

    @get("/api/v1/pharmacy/batches/{batch_id:uuid}")
    async def read(
        self,
        batch_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> QueueLine:
        """One of your pharmacy's batches (the read is audited)."""
        return queue_line(
            await pharmacy.read_batch(db_session, batch_id=batch_id, pharmacist_id=signed_in.user_id, actor=actor, now=clock.now())
        )

    @post("/api/v1/pharmacy/batches/{batch_id:uuid}/accept", status_code=200)
    async def accept(
        self,
        batch_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> BatchBody:
        return batch_body(
            await pharmacy.accept(db_session, batch_id=batch_id, pharmacist_id=signed_in.user_id, actor=actor, now=clock.now())
        )

    @post("/api/v1/pharmacy/batches/{batch_id:uuid}/reject", status_code=200)
    async def reject(
        self,
        batch_id: FromPath[uuid.UUID],
        data: JSONBody[ReasonBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> BatchBody:
        return batch_body(
            await pharmacy.reject(
                db_session, batch_id=batch_id, pharmacist_id=signed_in.user_id, reason=data.reason, actor=actor, now=clock.now()
            )
        )

    @post("/api/v1/pharmacy/batches/{batch_id:uuid}/fill", status_code=200)
    async def fill(
        self,
        batch_id: FromPath[uuid.UUID],
        data: JSONBody[FillRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> BatchBody:
        return batch_body(
            await pharmacy.fill(
                db_session,
                batch_id=batch_id,
                pharmacist_id=signed_in.user_id,
                lot_number=data.lot_number,
                beyond_use_date=data.beyond_use_date,
                units=data.units,
                actor=actor,
                now=clock.now(),
            )
        )

    @post("/api/v1/pharmacy/batches/{batch_id:uuid}/ship", status_code=200)
    async def ship(
        self,
        batch_id: FromPath[uuid.UUID],
        data: JSONBody[ShipRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> BatchBody:
        return batch_body(
            await pharmacy.ship(
                db_session,
                batch_id=batch_id,
                pharmacist_id=signed_in.user_id,
                carrier=data.carrier,
                tracking_number=data.tracking_number,
                signature_required=data.signature_required,
                actor=actor,
                now=clock.now(),
            )
        )

    @post("/api/v1/pharmacy/batches/{batch_id:uuid}/deliver", status_code=200)
    async def deliver(
        self,
        batch_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> BatchBody:
        return batch_body(
            await pharmacy.deliver(db_session, batch_id=batch_id, pharmacist_id=signed_in.user_id, actor=actor, now=clock.now())
        )


class PatientShipmentsApiController(Controller):
    tags = ["prescribing"]

    @get("/api/v1/my/shipments", guards=[requires_role(Role.PATIENT)])
    async def shipments(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> list[ShipmentBody]:
        """Your shipments and their tracking (no drug names in emails; the details are here)."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        plan = await plans.live_plan(db_session, patient_id=patient.id)
        if plan is None:
            return []
        return [
            ShipmentBody(
                sequence=b.sequence,
                status=b.status,
                carrier=b.carrier,
                tracking_number=b.tracking_number,
                shipped_at=b.shipped_at,
                delivered_at=b.delivered_at,
            )
            for b in await plans.batches_of(db_session, plan_id=plan.id)
            if b.status != "cancelled"
        ]


# --- The patient's reassessment questionnaires (issue 6) ----------------------------------------------


class ReassessmentAnswers(RequestBody):
    phq9: dict[str, Any] = msgspec.field(default_factory=dict)  # {"phq9_1": 0..3, ..., "phq9_9": 0..3}
    gad7: dict[str, Any] = msgspec.field(default_factory=dict)  # {"gad7_1": 0..3, ..., "gad7_7": 0..3}


class QuestionnaireForm(ResponseBody):
    key: str
    version: str
    title: str
    instructions: str
    items: list[dict[str, Any]]  # {"key", "text", "options": [{"value", "label"}]}


class ScoreChangeBody(ResponseBody):
    questionnaire: str
    baseline: int
    baseline_band: str
    latest: int
    latest_band: str
    change_percent: int
    response: bool
    remission: bool
    in_words: str


class ReassessmentBody(ResponseBody):
    due: bool
    answered: bool
    questionnaires: list[QuestionnaireForm]  # to answer (empty unless due and not yet answered)
    score_changes: list[ScoreChangeBody]  # baseline vs now (once answered)
    booking_path: str | None  # where to book the reassessment visit (None while a crisis escalation is open)
    crisis: bool = False
    crisis_resources: list[str] | None = None
