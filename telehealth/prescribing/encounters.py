"""The consult encounter: opened from a consult or reassessment by its prescriber; records identity, the
patient's location right now, the PDMP check, vitals, a note on each needs_review flag, and the decision.
Whether this prescriber may prescribe where the patient is right now is answered here, with the reason."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import load_patient_for
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.clinicians.service import clinic_today, hold_prescribing_credentials, prescriber_may_prescribe_in
from telehealth.intake.models import Intake, IntakeSection, QuestionnaireResponse, ScreeningDecision
from telehealth.intake.service import latest_decision
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.lib.us_states import US_STATES
from telehealth.prescribing.models import Encounter, FlagAcknowledgement, TrochePlan
from telehealth.prescribing.reassessment import score_changes
from telehealth.prescribing.states import Decision
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import AppointmentStatus
from telehealth.scheduling.visits import started_visit, visit_of
from telehealth.settings import Settings

ENCOUNTER_TYPES = ("consult", "reassessment")


async def open_encounter(
    session: AsyncSession, *, appointment_id: uuid.UUID, signed_in: SignedIn, actor: Actor, now: datetime
) -> Encounter:
    """The encounter of this appointment, opened by its own prescriber (the same one on a second call)."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.clinician_id != signed_in.user_id or appointment.appointment_type not in ENCOUNTER_TYPES:
        raise NotFound("appointment.not_found", "No consult or reassessment with this id is yours.")
    if appointment.status not in (AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED):
        raise RuleRefused("encounter.appointment_not_booked", "An encounter opens from a booked consult or reassessment.")
    await started_visit(session, appointment.id, code="encounter.visit_not_started", doing="The encounter opens")
    inserted = await session.execute(
        insert(Encounter)
        .values(
            id=uuid.uuid4(),
            appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            prescriber_id=signed_in.user_id,
            opened_at=now,
            vitals_reviewed=False,
        )
        .on_conflict_do_nothing()
        .returning(col(Encounter.id))
    )
    if (encounter_id := inserted.scalar_one_or_none()) is not None:  # the encounter's own id, like every later event on it
        await record_audit_event(
            session,
            actor=actor,
            action="encounter.open",
            resource_type="encounter",
            resource_id=encounter_id,
            patient_id=appointment.patient_id,
            now=now,
        )
    return (await session.execute(select(Encounter).where(Encounter.appointment_id == appointment.id))).scalar_one()


async def own_encounter(session: AsyncSession, *, encounter_id: uuid.UUID, signed_in: SignedIn, lock: bool = False) -> Encounter:
    encounter = await session.get(Encounter, encounter_id, with_for_update=lock)
    if encounter is None or encounter.prescriber_id != signed_in.user_id:
        raise NotFound("encounter.not_found", "No encounter with this id is yours.")
    return encounter


async def encounters_of(session: AsyncSession, *, patient_id: uuid.UUID) -> list[Encounter]:
    """One patient's encounters, newest first (each opens only for its own prescriber: own_encounter)."""
    return list(
        (
            await session.execute(select(Encounter).where(Encounter.patient_id == patient_id).order_by(col(Encounter.opened_at).desc()))
        ).scalars()
    )


@dataclass
class EncounterRecord:
    identity_checked: bool | None = None
    identity_method: str | None = None
    location_state: str | None = None
    pdmp_checked_at: datetime | None = None
    pdmp_state: str | None = None
    pdmp_reference: str | None = None
    pdmp_summary: str | None = None
    vitals_reviewed: bool | None = None
    vitals_note: str | None = None


async def record(session: AsyncSession, encounter: Encounter, values: EncounterRecord, *, actor: Actor, now: datetime) -> Encounter:
    """Save what the prescriber checked; every field is optional, each change audited by name."""
    if encounter.decision is not None:
        raise Conflict("encounter.decided", "This encounter is decided; open the next one from a new appointment.")
    visit = await started_visit(session, encounter.appointment_id, code="encounter.visit_not_started", doing="Findings are recorded")
    problems: dict[str, str] = {}
    for name in ("location_state", "pdmp_state"):
        value = getattr(values, name)
        if value is not None and value.upper() not in US_STATES:
            problems[name] = "must be a US state code, e.g. NY"
    if values.pdmp_checked_at is not None:
        if values.pdmp_checked_at.tzinfo is None:
            problems["pdmp_checked_at"] = "must include a UTC offset"
        elif values.pdmp_checked_at > now + timedelta(minutes=5):
            problems["pdmp_checked_at"] = "is in the future"
        elif values.pdmp_checked_at < visit.started_at:
            problems["pdmp_checked_at"] = "is before the video visit started: check the PDMP during or after the visit"
    if values.identity_checked and not (values.identity_method or encounter.identity_method or "").strip():
        problems["identity_method"] = "say how identity was checked (e.g. driver's license shown on video)"
    if problems:
        raise InvalidInput("request.invalid", "Some details need another look.", fields=problems)
    changed = []
    for name, value in vars(values).items():
        if value is None:
            continue
        if name in ("location_state", "pdmp_state"):
            value = value.upper()
        if getattr(encounter, name) != value:
            setattr(encounter, name, value)
            changed.append(name)
    if "location_state" in changed:
        encounter.location_recorded_at = now
    session.add(encounter)
    await session.flush()
    for name in sorted(changed):  # one event per field: the audit reason is a short code
        await record_audit_event(
            session,
            actor=actor,
            action="encounter.record",
            resource_type="encounter",
            resource_id=encounter.id,
            patient_id=encounter.patient_id,
            now=now,
            reason=name,
        )
    return encounter


async def review_flags(session: AsyncSession, *, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    """The needs_review reasons of the patient's latest screening."""
    decision = await latest_decision(session, patient_id=patient_id)
    if decision is None:
        return []
    return [reason for reason in decision.reasons if reason.get("outcome") == "needs_review"]


async def acknowledge_flag(session: AsyncSession, encounter: Encounter, *, rule_id: str, note: str, actor: Actor, now: datetime) -> None:
    if not note.strip():
        raise InvalidInput("request.invalid", "Write what you considered.", fields={"note": "is required"})
    if rule_id not in {reason["rule_id"] for reason in await review_flags(session, patient_id=encounter.patient_id)}:
        raise InvalidInput(
            "request.invalid",
            "That flag is not on this patient's screening.",
            fields={"rule_id": "is not a needs_review flag of this patient"},
        )
    statement = insert(FlagAcknowledgement).values(
        encounter_id=encounter.id, rule_id=rule_id, note=note.strip(), acknowledged_by=actor.user_id, acknowledged_at=now
    )
    if encounter.decision is None:
        await session.execute(
            statement.on_conflict_do_update(index_elements=["encounter_id", "rule_id"], set_={"note": note.strip(), "acknowledged_at": now})
        )
    elif (
        await session.execute(statement.on_conflict_do_nothing().returning(col(FlagAcknowledgement.rule_id)))
    ).scalar_one_or_none() is None:
        # After the decision a note that justified it stays as written; a flag that appeared since may still get one.
        raise Conflict("encounter.decided", "This flag's note was part of the decision and cannot be changed now.")
    await record_audit_event(
        session,
        actor=actor,
        action="encounter.acknowledge_flag",
        resource_type="encounter",
        resource_id=encounter.id,
        patient_id=encounter.patient_id,
        now=now,
        reason=rule_id[:80],
    )


async def unacknowledged_flags(session: AsyncSession, encounter: Encounter) -> list[str]:
    flags = [reason["rule_id"] for reason in await review_flags(session, patient_id=encounter.patient_id)]
    done = set(
        (await session.execute(select(FlagAcknowledgement.rule_id).where(FlagAcknowledgement.encounter_id == encounter.id))).scalars()
    )
    return [rule_id for rule_id in flags if rule_id not in done]


async def prescribing_blocker(
    session: AsyncSession, encounter: Encounter, *, now: datetime, settings: Settings, hold_credentials: bool = False
) -> RuleRefused | None:
    """Why this prescriber may not prescribe in this encounter right now, or None. Checked when a plan is
    written and again when it is signed (a credential can lapse in between); signing holds the credentials
    it relied on until it commits (`hold_credentials`)."""
    if await visit_of(session, encounter.appointment_id) is None:
        return RuleRefused(
            "plan.visit_not_started", "Prescribing follows the video visit: it has not started.", fields={"visit": "has not started"}
        )
    if not encounter.identity_checked:
        return RuleRefused(
            "plan.identity_not_checked",
            "Check the patient's identity against a photo ID first.",
            fields={"identity_checked": "must be yes"},
        )
    if not encounter.location_state:
        return RuleRefused(
            "plan.location_missing", "Record the state the patient is in right now.", fields={"location_state": "is required"}
        )
    today = clinic_today(now, settings)
    allowed: bool | None  # scalar() of a SELECT EXISTS is never None, but is typed as if it could be
    if hold_credentials:
        allowed = await hold_prescribing_credentials(
            session, prescriber_id=encounter.prescriber_id, state=encounter.location_state, on=today
        )
    else:
        allowed = await session.scalar(
            select(
                exists().where(col(UserAccount.id) == encounter.prescriber_id, prescriber_may_prescribe_in(encounter.location_state, today))
            )
        )
    if not allowed:
        return RuleRefused(
            "plan.location_not_licensed",
            f"You cannot prescribe to a patient who is in {US_STATES.get(encounter.location_state, encounter.location_state)} today: "
            "that needs an unexpired license and a DEA registration covering Schedule III there.",
            fields={"location_state": "is not a state where your license and DEA registration are both valid today"},
        )
    hours = settings.thresholds.pdmp_check_valid_hours
    if encounter.pdmp_checked_at is None or now - encounter.pdmp_checked_at > timedelta(hours=hours):
        return RuleRefused(
            "plan.pdmp_stale",
            f"Check the state PDMP and record it: the check must be within {hours} hours of signing.",
            fields={"pdmp_checked_at": f"must be within the last {hours} hours"},
        )
    if encounter.pdmp_state != encounter.location_state:  # a check with no state recorded proves nothing
        return RuleRefused(
            "plan.pdmp_wrong_state",
            "Check the PDMP of the state the patient is in, and record which state you checked.",
            fields={"pdmp_state": f"must be {encounter.location_state}"},
        )
    missing = await unacknowledged_flags(session, encounter)
    if missing:
        return RuleRefused(
            "plan.flags_unacknowledged",
            "Write a note on every screening flag first.",
            fields={"acknowledgements": f"missing for {', '.join(missing)}"},
            extra={"unacknowledged": missing},
        )
    return None


async def decide(
    session: AsyncSession, encounter: Encounter, *, decision: Decision, reason: str | None, actor: Actor, now: datetime, settings: Settings
) -> Encounter:
    """Start a plan, decline (with a reason: the consult is refunded in full) or refer out (with a reason)."""
    if encounter.decision is not None:
        raise Conflict("encounter.decided", "This encounter is already decided.")
    await started_visit(session, encounter.appointment_id, code="encounter.visit_not_started", doing="The decision is made")
    if decision is not Decision.START_PLAN and not (reason or "").strip():
        raise InvalidInput("request.invalid", "Give the reason.", fields={"reason": "is required to decline or refer out"})
    if (
        decision is Decision.START_PLAN
        and (blocker := await prescribing_blocker(session, encounter, now=now, settings=settings)) is not None
    ):
        raise blocker
    encounter.decision, encounter.decision_reason, encounter.decided_at = decision.value, (reason or "").strip() or None, now
    session.add(encounter)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action=f"encounter.{decision.value}",
        resource_type="encounter",
        resource_id=encounter.id,
        patient_id=encounter.patient_id,
        now=now,
    )
    if decision is Decision.DECLINE:
        from telehealth.billing.settlement import refund_consult_for_ineligibility

        await refund_consult_for_ineligibility(session, appointment_id=encounter.appointment_id, actor=actor, now=now)
    return encounter


async def chart(session: AsyncSession, encounter: Encounter, *, signed_in: SignedIn, actor: Actor, now: datetime) -> dict[str, Any]:
    """Everything the prescriber needs on one page: intake answers, scores, screening, history. Audited."""
    patient = await load_patient_for(
        session, viewer=signed_in, patient_id=encounter.patient_id, actor=actor, now=now, purpose="encounter.chart"
    )
    user = await session.get(UserAccount, patient.user_id)
    intake = (
        await session.execute(select(Intake).where(Intake.patient_id == patient.id).order_by(col(Intake.started_at).desc()).limit(1))
    ).scalar_one_or_none()
    sections = {}
    if intake is not None:
        sections = {
            row.section: row.answers
            for row in (await session.execute(select(IntakeSection).where(IntakeSection.intake_id == intake.id))).scalars()
        }
    scores = [
        {"questionnaire": r.questionnaire, "score": r.score, "band": r.band, "answered_at": r.answered_at.isoformat()}
        for r in (
            await session.execute(
                select(QuestionnaireResponse)
                .where(QuestionnaireResponse.patient_id == patient.id)
                .order_by(col(QuestionnaireResponse.answered_at))
            )
        ).scalars()
    ]
    screening = (
        await session.execute(
            select(ScreeningDecision)
            .where(ScreeningDecision.patient_id == patient.id)
            .order_by(col(ScreeningDecision.screened_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    appointments = [
        {"id": str(a.id), "type": a.appointment_type, "status": a.status, "starts_at": a.starts_at.isoformat()}
        for a in (
            await session.execute(select(Appointment).where(Appointment.patient_id == patient.id).order_by(col(Appointment.starts_at)))
        ).scalars()
    ]
    plans = [
        {
            "id": str(p.id),
            "status": p.status,
            "sessions": p.sessions,
            "doses_mg": p.doses_mg,
            "signed_at": p.signed_at.isoformat() if p.signed_at else None,
        }
        for p in (
            await session.execute(select(TrochePlan).where(TrochePlan.patient_id == patient.id).order_by(col(TrochePlan.created_at)))
        ).scalars()
    ]
    acknowledged = {
        row.rule_id: row.note
        for row in (await session.execute(select(FlagAcknowledgement).where(FlagAcknowledgement.encounter_id == encounter.id))).scalars()
    }
    return {
        "patient": {
            "id": str(patient.id),
            "name": user.full_name if user else "",
            "state_of_residence": patient.state_of_residence,
            "timezone": patient.timezone,
        },
        "intake": sections,
        "scores": scores,
        "screening": {"outcome": screening.outcome, "reasons": screening.reasons} if screening else None,
        "flags": [
            {**reason, "acknowledgement": acknowledged.get(reason["rule_id"])}
            for reason in await review_flags(session, patient_id=patient.id)
        ],
        "appointments": appointments,
        "plans": plans,
        "score_changes": [
            {
                "questionnaire": c.questionnaire,
                "baseline": c.baseline,
                "latest": c.latest,
                "change_percent": c.change_percent,
                "response": c.response,
                "remission": c.remission,
            }
            for c in await score_changes(session, patient_id=patient.id)
        ],
    }


async def patient_of(session: AsyncSession, encounter: Encounter) -> Patient:
    patient = await session.get(Patient, encounter.patient_id)
    assert patient is not None
    return patient
