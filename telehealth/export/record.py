"""What the record holds about one patient, read once: the account, intake answers, consents, scores,
appointments, plans with their shipments, home sessions with their check-ins, reports and sitter
attestations, the sitters, messages with the care team, and payments. Clinical notes are not part of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.billing.models import Payment
from telehealth.dosing.models import CheckIn, DosingReport, DosingSession, Sitter, SitterAttestation
from telehealth.intake.models import ConsentSignature, Intake, IntakeSection, QuestionnaireResponse
from telehealth.messages.models import CareMessage
from telehealth.prescribing.models import PlanBatch, TrochePlan
from telehealth.scheduling.models import Appointment


@dataclass
class PatientRecord:
    patient: Patient
    account: UserAccount
    intake_sections: list[IntakeSection]
    consents: list[ConsentSignature]
    responses: list[QuestionnaireResponse]
    appointments: list[tuple[Appointment, str]]  # with the clinician's name
    plans: list[tuple[TrochePlan, str]]  # with the prescriber's name
    sessions: list[DosingSession]
    check_ins: dict[uuid.UUID, list[CheckIn]] = field(default_factory=dict)
    reports: dict[uuid.UUID, DosingReport] = field(default_factory=dict)
    sitters: list[Sitter] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    batches: dict[uuid.UUID, list[PlanBatch]] = field(default_factory=dict)  # each plan's shipments, in order
    attestations: dict[uuid.UUID, list[SitterAttestation]] = field(default_factory=dict)  # per dosing session
    messages: list[tuple[CareMessage, str]] = field(default_factory=list)  # with the author's name

    @property
    def answers(self) -> dict[str, dict[str, Any]]:
        return {section.section: section.answers for section in self.intake_sections}


async def _all(session: AsyncSession, statement: Any) -> list[Any]:
    return list((await session.execute(statement)).scalars())


async def collect(session: AsyncSession, *, patient: Patient) -> PatientRecord:
    account = await session.get(UserAccount, patient.user_id)
    assert account is not None
    intake_id = await session.scalar(
        select(Intake.id).where(Intake.patient_id == patient.id).order_by(col(Intake.started_at).desc()).limit(1)
    )
    sections = (
        await _all(session, select(IntakeSection).where(IntakeSection.intake_id == intake_id).order_by(IntakeSection.section))
        if intake_id
        else []
    )
    appointments = (
        await session.execute(
            select(Appointment, UserAccount.full_name)
            .join(UserAccount, col(UserAccount.id) == Appointment.clinician_id)
            .where(Appointment.patient_id == patient.id)
            .order_by(col(Appointment.starts_at))
        )
    ).all()
    plans = (
        await session.execute(
            select(TrochePlan, UserAccount.full_name)
            .join(UserAccount, col(UserAccount.id) == TrochePlan.prescriber_id)
            .where(TrochePlan.patient_id == patient.id, TrochePlan.status != "draft")
            .order_by(col(TrochePlan.created_at))
        )
    ).all()
    sessions = await _all(
        session, select(DosingSession).where(DosingSession.patient_id == patient.id).order_by(col(DosingSession.scheduled_at))
    )
    ids = [row.id for row in sessions]
    check_ins: dict[uuid.UUID, list[CheckIn]] = {}
    for check_in in await _all(session, select(CheckIn).where(col(CheckIn.dosing_session_id).in_(ids)).order_by(col(CheckIn.attempt))):
        check_ins.setdefault(check_in.dosing_session_id, []).append(check_in)
    attestations: dict[uuid.UUID, list[SitterAttestation]] = {}
    for attestation in await _all(
        session,
        select(SitterAttestation).where(col(SitterAttestation.dosing_session_id).in_(ids)).order_by(col(SitterAttestation.attested_at)),
    ):
        attestations.setdefault(attestation.dosing_session_id, []).append(attestation)
    batches: dict[uuid.UUID, list[PlanBatch]] = {}
    plan_ids = [plan.id for plan, _ in plans]
    for batch in await _all(session, select(PlanBatch).where(col(PlanBatch.plan_id).in_(plan_ids)).order_by(col(PlanBatch.sequence))):
        batches.setdefault(batch.plan_id, []).append(batch)
    messages = (
        await session.execute(
            select(CareMessage, UserAccount.full_name)
            .join(UserAccount, col(UserAccount.id) == CareMessage.author_user_id)
            .where(CareMessage.patient_id == patient.id)
            .order_by(col(CareMessage.sent_at), col(CareMessage.id))
        )
    ).all()
    reports = {
        r.dosing_session_id: r for r in await _all(session, select(DosingReport).where(col(DosingReport.dosing_session_id).in_(ids)))
    }
    return PatientRecord(
        patient=patient,
        account=account,
        intake_sections=sections,
        consents=await _all(
            session, select(ConsentSignature).where(ConsentSignature.patient_id == patient.id).order_by(col(ConsentSignature.signed_at))
        ),
        responses=await _all(
            session,
            select(QuestionnaireResponse)
            .where(QuestionnaireResponse.patient_id == patient.id)
            .order_by(col(QuestionnaireResponse.answered_at)),
        ),
        appointments=[(a, name) for a, name in appointments],
        plans=[(p, name) for p, name in plans],
        sessions=sessions,
        check_ins=check_ins,
        reports=reports,
        sitters=await _all(session, select(Sitter).where(Sitter.patient_id == patient.id).order_by(col(Sitter.created_at))),
        payments=await _all(session, select(Payment).where(Payment.patient_id == patient.id).order_by(col(Payment.created_at))),
        batches=batches,
        attestations=attestations,
        messages=[(m, name) for m, name in messages],
    )
