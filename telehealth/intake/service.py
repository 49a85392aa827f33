"""Intake rules: steps saved as the patient goes, the address-state rule, questionnaires stored with their
version, consents signed per document version, and submission into screening.

Crisis answers are acted on the moment they are saved (`escalations.py`), not at submission.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.audit.service import change_status, record_audit_event
from telehealth.db import driver
from telehealth.intake.consents import CONSENT_DOCUMENTS, ConsentDocument
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.intake.models import ConsentSignature, Intake, IntakeSection, QuestionnaireResponse, ScreeningDecision
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.intake.screening import Reason, ScreeningInput, screen_intake, suicide_risk_reasons
from telehealth.intake.sections import CONSENTS_STEP, QUESTIONNAIRE_STEPS, SECTIONS, STEPS
from telehealth.intake.states import INTAKE_TRANSITIONS, IntakeStatus
from telehealth.lib.actors import Actor
from telehealth.lib.dates import age_on
from telehealth.lib.errors import Conflict, InvalidInput, NotFound
from telehealth.lib.us_states import US_STATES
from telehealth.settings import Settings


async def latest_intake(session: AsyncSession, *, patient_id: uuid.UUID, for_update: bool = False) -> Intake | None:
    """The patient's newest intake, or None (reads only)."""
    latest = select(Intake).where(Intake.patient_id == patient_id).order_by(col(Intake.started_at).desc()).limit(1)
    return (await session.execute(latest.with_for_update() if for_update else latest)).scalar_one_or_none()


async def current_intake(session: AsyncSession, *, patient_id: uuid.UUID, now: datetime, for_update: bool = False) -> Intake:
    """The patient's intake in progress, started on first use; or, once submitted, the latest one.
    `for_update` locks it, so a save and a submission of the same intake take turns."""
    if (intake := await latest_intake(session, patient_id=patient_id, for_update=for_update)) is not None:
        return intake
    await session.execute(
        insert(Intake)
        .values(id=uuid.uuid4(), patient_id=patient_id, status=IntakeStatus.IN_PROGRESS, started_at=now)
        .on_conflict_do_nothing(index_elements=["patient_id"], index_where=text("status = 'in_progress'"))  # two tabs: one intake
    )
    intake = await latest_intake(session, patient_id=patient_id, for_update=for_update)
    assert intake is not None
    return intake


async def known_from_waiting_list(session: AsyncSession, *, patient_id: uuid.UUID) -> dict[str, str]:
    """What the person already told the waiting list (name, date of birth, phone, state), offered as the
    starting answers of the intake so nobody types them twice; the patient still confirms them by saving."""
    from telehealth.waitlist.models import WaitlistEntry  # the intake reads the list; the list never reads the intake

    entry = (await session.execute(select(WaitlistEntry).where(WaitlistEntry.patient_id == patient_id).limit(1))).scalar_one_or_none()
    if entry is None:
        return {}
    known = {
        "first_name": entry.first_name,
        "last_name": entry.last_name,
        "phone": entry.phone,
        "state": entry.state,
        "date_of_birth": entry.date_of_birth.isoformat() if entry.date_of_birth else None,
    }
    return {name: value for name, value in known.items() if value}


async def saved_answers(session: AsyncSession, intake_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    rows = await session.execute(select(IntakeSection.section, IntakeSection.answers).where(IntakeSection.intake_id == intake_id))
    return dict(rows.all())


@dataclass(frozen=True)
class StepSaved:
    step: str
    crisis: bool  # show crisis resources on the very next page


async def save_step(
    session: AsyncSession, *, patient: Patient, step: str, answers: Mapping[str, Any], actor: Actor, now: datetime, settings: Settings
) -> StepSaved:
    """Validate and save one step (saving again replaces it). A crisis answer opens an escalation now."""
    intake = await current_intake(session, patient_id=patient.id, now=now, for_update=True)
    if intake.status != IntakeStatus.IN_PROGRESS:
        raise Conflict("intake.already_submitted", "Your intake is already submitted; your care team has it.")
    crisis = False
    if step in SECTIONS:
        cleaned: dict[str, Any] = SECTIONS[step].validate(answers)
        if step == "demographics":
            _check_date_of_birth(cleaned["date_of_birth"], today=now.astimezone(settings.clinic_zone).date())
        if step == "address" and cleaned["state"] != patient.state_of_residence:
            served = US_STATES.get(patient.state_of_residence or "", "the state you gave when you joined")
            raise InvalidInput(
                "intake.address_state_mismatch",
                f"We can only care for you in {served}, the state you gave when you joined the waiting list. "
                "If you have moved, please message us before going on.",
                fields={"state": f"must be {served}"},
            )
    elif step in QUESTIONNAIRE_STEPS:
        questionnaire = QUESTIONNAIRES[step]
        checked = questionnaire.validate(answers)
        cleaned = {"version": questionnaire.version, "answers": checked}
        risk = suicide_risk_reasons(phq9=checked if step == "phq9" else None, cssrs=checked if step == "cssrs" else None)
        if risk:
            seen = {(r["rule_id"], r["evidence"]) for r in intake.risk_reasons}
            intake.risk_reasons = [*intake.risk_reasons, *(_reason_dict(r) for r in risk if (r.rule_id, r.evidence) not in seen)]
        if crisis_reasons := [reason for reason in risk if reason.crisis]:
            crisis = True
            await open_crisis_escalation(
                session, patient_id=patient.id, rule_ids=[r.rule_id for r in crisis_reasons], actor=actor, now=now, settings=settings
            )
    else:
        raise NotFound("intake.unknown_step", "There is no such intake step.")
    await session.execute(
        insert(IntakeSection)
        .values(intake_id=intake.id, section=step, answers=cleaned, saved_at=now)
        .on_conflict_do_update(index_elements=["intake_id", "section"], set_={"answers": cleaned, "saved_at": now})
    )
    await record_audit_event(
        session,
        actor=actor,
        action="intake.save_step",
        resource_type="intake",
        resource_id=intake.id,
        patient_id=patient.id,
        reason=step,
        now=now,
    )
    return StepSaved(step, crisis)


def _check_date_of_birth(value: str, *, today: date) -> None:
    born = date.fromisoformat(value)
    if born > today:
        raise InvalidInput("intake.demographics.invalid", "Some answers need another look.", fields={"date_of_birth": "is in the future"})
    if age_on(born, today) > 120:
        raise InvalidInput("intake.demographics.invalid", "Some answers need another look.", fields={"date_of_birth": "is not plausible"})


def _reason_dict(reason: Reason) -> dict[str, Any]:
    return {
        "rule_id": reason.rule_id,
        "outcome": reason.outcome.value,
        "clinician_text": reason.clinician_text,
        "patient_text": reason.patient_text,
        "evidence": reason.evidence,
        "crisis": reason.crisis,
    }


def _normalized(name: str) -> str:
    return " ".join(name.lower().split())


async def expected_signature_name(session: AsyncSession, *, patient: Patient, now: datetime) -> str:
    """The legal name from the intake when given, else the account's name: what the patient must type."""
    intake = await current_intake(session, patient_id=patient.id, now=now)
    demographics = (await saved_answers(session, intake.id)).get("demographics")
    if demographics:
        return f"{demographics['first_name']} {demographics['last_name']}"
    user = await session.get(UserAccount, patient.user_id)
    assert user is not None
    return user.full_name


async def sign_consent(session: AsyncSession, *, patient: Patient, document: str, typed_name: str, actor: Actor, now: datetime) -> None:
    """Sign the current version of one document by typing one's full name (signing twice changes nothing)."""
    consent = CONSENT_DOCUMENTS.get(document)
    if consent is None:
        raise InvalidInput("consent.unknown", "There is no such document.", fields={"document": "is not a consent document"})
    expected = await expected_signature_name(session, patient=patient, now=now)
    if _normalized(typed_name) != _normalized(expected):
        raise InvalidInput(
            "consent.name_mismatch",
            f"To sign, type your full name exactly: {expected}.",
            fields={f"typed_name_{document}": "must be your full legal name"},
        )
    inserted = await session.execute(
        insert(ConsentSignature)
        .values(
            id=uuid.uuid4(),
            patient_id=patient.id,
            document=consent.key,
            version=consent.version,
            content_sha256=consent.sha256,
            typed_name=" ".join(typed_name.split()),
            signed_at=now,
            ip=actor.ip,
            user_agent=(actor.user_agent or "")[:400] or None,
        )
        .on_conflict_do_nothing(index_elements=["patient_id", "document", "version"])
        .returning(col(ConsentSignature.id))
    )
    if (signature_id := inserted.scalar_one_or_none()) is not None:
        await record_audit_event(
            session,
            actor=actor,
            action="consent.sign",
            resource_type="consent_signature",
            resource_id=signature_id,
            patient_id=patient.id,
            reason=f"{consent.key}:{consent.version}",
            now=now,
        )


async def consents_to_sign(session: AsyncSession, *, patient_id: uuid.UUID) -> list[ConsentDocument]:
    """Documents whose current version this patient has not signed (a new version asks again)."""
    rows = await session.execute(
        select(ConsentSignature.document, ConsentSignature.version).where(ConsentSignature.patient_id == patient_id)
    )
    signed = {(document, version) for document, version in rows.all()}
    return [doc for doc in CONSENT_DOCUMENTS.values() if (doc.key, doc.version) not in signed]


@dataclass(frozen=True)
class Progress:
    intake: Intake
    done: dict[str, bool]

    @property
    def next_step(self) -> str | None:
        return next((step for step in STEPS if not self.done[step]), None)


async def intake_progress(session: AsyncSession, *, patient: Patient, now: datetime) -> Progress:
    intake = await current_intake(session, patient_id=patient.id, now=now)
    saved = await saved_answers(session, intake.id)
    done = {step: step in saved for step in STEPS if step != CONSENTS_STEP}
    done[CONSENTS_STEP] = not await consents_to_sign(session, patient_id=patient.id)
    return Progress(intake, done)


async def submit_intake(session: AsyncSession, *, patient: Patient, actor: Actor, now: datetime, settings: Settings) -> ScreeningDecision:
    """Submit a complete intake: store the questionnaire scores, screen it, and keep the decision."""
    await current_intake(session, patient_id=patient.id, now=now, for_update=True)  # a double click waits its turn
    progress = await intake_progress(session, patient=patient, now=now)
    intake = progress.intake
    if intake.status != IntakeStatus.IN_PROGRESS:
        raise Conflict("intake.already_submitted", "Your intake is already submitted; your care team has it.")
    if missing := [step for step, done in progress.done.items() if not done]:
        raise InvalidInput("intake.incomplete", "Some steps are not finished yet.", fields=dict.fromkeys(missing, "is not complete"))
    saved = await saved_answers(session, intake.id)
    history, medications, substances = saved["medical_history"], saved["medications"], saved["substance_use"]
    result = screen_intake(
        ScreeningInput(
            date_of_birth=date.fromisoformat(saved["demographics"]["date_of_birth"]),
            screened_on=now.astimezone(settings.clinic_zone).date(),
            pregnant=saved["pregnancy"]["pregnant"],
            breastfeeding=saved["pregnancy"]["breastfeeding"],
            conditions=frozenset(key for key, answer in history.items() if answer),
            medication_classes=frozenset(medications["classes"]),
            ketamine_misuse_ever=substances["ketamine_misuse_ever"],
            substance_dependence_12_months=substances["substance_dependence_12_months"],
            bp_systolic=saved["vitals"]["bp_systolic"],
            bp_diastolic=saved["vitals"]["bp_diastolic"],
            phq9=saved["phq9"]["answers"],
            cssrs=saved["cssrs"]["answers"],
        ),
        settings.thresholds,
    )
    for key in QUESTIONNAIRE_STEPS:
        questionnaire, answers = QUESTIONNAIRES[key], saved[key]["answers"]
        score = questionnaire.score(answers)
        session.add(
            QuestionnaireResponse(
                patient_id=patient.id,
                intake_id=intake.id,
                questionnaire=key,
                version=saved[key]["version"],
                answers=answers,
                score=score,
                band=questionnaire.band(score).label if questionnaire.bands else None,
                answered_at=now,
            )
        )
    reasons = [_reason_dict(r) for r in result.reasons]
    # Risk answers seen earlier but changed before submission still go to the prescriber.
    final_rules = {r.rule_id for r in result.reasons}
    earlier = [
        {**r, "evidence": f"{r['evidence']} (answered earlier, changed before submission)"}
        for r in intake.risk_reasons
        if r["rule_id"] not in final_rules
    ]
    reasons += list({r["rule_id"]: r for r in earlier}.values())
    outcome = result.outcome.value
    if earlier and outcome == "eligible":
        outcome = "needs_review"
    crisis = result.crisis or any(r["crisis"] for r in earlier)
    decision = ScreeningDecision(
        intake_id=intake.id, patient_id=patient.id, outcome=outcome, crisis=crisis, screened_at=now, reasons=reasons
    )
    session.add(decision)
    patient.timezone = saved["demographics"]["timezone"]
    await change_status(
        session,
        Intake,
        intake.id,
        table=INTAKE_TRANSITIONS,
        source=IntakeStatus.IN_PROGRESS,
        target=IntakeStatus.SUBMITTED,
        actor=actor,
        now=now,
        patient_id=patient.id,
        values={"submitted_at": now},
    )
    if crisis:
        await open_crisis_escalation(
            session, patient_id=patient.id, rule_ids=[r["rule_id"] for r in reasons if r["crisis"]], actor=actor, now=now, settings=settings
        )
    await session.flush()
    return decision


_LATEST_DECISION = (
    select(ScreeningDecision)
    .where(ScreeningDecision.patient_id == bindparam("patient_id"))
    .order_by(col(ScreeningDecision.screened_at).desc())
    .limit(1)
)


async def latest_decision(session: AsyncSession, *, patient_id: uuid.UUID) -> ScreeningDecision | None:
    return await session.scalar(_LATEST_DECISION, {"patient_id": patient_id})


# Only the outcome, for the booking gate and the patient's home (every booking, every visit): on the driver,
# compiled once from the same rule.
_LATEST_OUTCOME = driver.compiled(_LATEST_DECISION.with_only_columns(col(ScreeningDecision.outcome)))


async def latest_outcome(session: AsyncSession, *, patient_id: uuid.UUID) -> str | None:
    """The latest screening's outcome (eligible, needs_review, ineligible), or None before any."""
    outcome: str | None = await driver.fetchval(session, _LATEST_OUTCOME.sql, *_LATEST_OUTCOME.args(patient_id=patient_id))
    return outcome
