"""In-person medical evaluations: a prescriber examined the patient in person, on a date, at a place. Recorded
by that prescriber, or by a coordinator for them (from the clinic's paperwork); audited; never edited (a
mistake is corrected by recording the right one: signing relies on the latest by date). After the
telemedicine flexibilities end, one is a basis for that prescriber to sign the patient's plans (basis.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from telehealth.accounts.authz import Access, load_patient_for
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from telehealth.lib.validation import has_control_characters
from telehealth.prescribing.models import InPersonEvaluation
from telehealth.settings import Settings

PLACE_MAX = 300


def _patient_zone(patient: Patient, settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(patient.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return settings.clinic_zone


async def record_in_person_evaluation(
    session: AsyncSession,
    *,
    patient_id: uuid.UUID,
    prescriber_id: uuid.UUID | None,
    evaluated_on: date,
    place: str,
    viewer: SignedIn,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> InPersonEvaluation:
    """Record an evaluation. A prescriber records their own (`prescriber_id` None or themselves); a coordinator
    names the prescriber. The date may be neither in the future nor before the patient's account existed, both
    read on the patient's calendar (their own zone): 422 naming `evaluated_on`."""
    patient = await load_patient_for(
        session, viewer=viewer, patient_id=patient_id, actor=actor, now=now, purpose="in_person_evaluation", access=Access.CLINIC_WIDE
    )
    problems: dict[str, str] = {}
    if viewer.role is Role.PRESCRIBER:
        if prescriber_id not in (None, viewer.user_id):
            problems["prescriber_id"] = "must be you: prescribers record their own in-person evaluations"
        prescriber_id = viewer.user_id
    elif prescriber_id is None:
        problems["prescriber_id"] = "is required: the prescriber who examined the patient"
    elif (
        await session.scalar(select(UserAccount.id).where(UserAccount.id == prescriber_id, UserAccount.role == Role.PRESCRIBER.value))
        is None
    ):
        problems["prescriber_id"] = "is not a prescriber of the clinic"
    zone = _patient_zone(patient, settings)
    account_created = await session.scalar(select(UserAccount.created_at).where(UserAccount.id == patient.user_id))
    opened_on = (account_created or patient.created_at).astimezone(zone).date()
    if evaluated_on > now.astimezone(zone).date():
        problems["evaluated_on"] = "is in the future"
    elif evaluated_on < opened_on:
        problems["evaluated_on"] = f"is before the patient's account was created ({opened_on.isoformat()})"
    place = place.strip()
    if not place:
        problems["place"] = "is required: where the evaluation took place"
    elif len(place) > PLACE_MAX or has_control_characters(place):
        problems["place"] = f"must be at most {PLACE_MAX} characters of plain text"
    if problems:
        raise InvalidInput("request.invalid", "Some details of the evaluation need another look.", fields=problems)
    assert prescriber_id is not None
    evaluation = InPersonEvaluation(
        patient_id=patient.id,
        prescriber_id=prescriber_id,
        evaluated_on=evaluated_on,
        place=place,
        recorded_by=viewer.user_id,
        recorded_at=now,
    )
    session.add(evaluation)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="in_person_evaluation.record",
        resource_type="in_person_evaluation",
        resource_id=evaluation.id,
        patient_id=patient.id,
        now=now,
        reason=f"{evaluated_on.isoformat()} prescriber {prescriber_id}",
    )
    return evaluation


@dataclass(frozen=True)
class EvaluationLine:
    evaluation: InPersonEvaluation
    prescriber_name: str
    recorded_by_name: str


async def evaluations_of(session: AsyncSession, *, patient_id: uuid.UUID) -> list[EvaluationLine]:
    """The patient's recorded in-person evaluations, latest first (the caller has checked who may see them)."""
    prescriber, recorder = aliased(UserAccount), aliased(UserAccount)
    rows = await session.execute(
        select(InPersonEvaluation, prescriber.full_name, recorder.full_name)
        .join(prescriber, col(prescriber.id) == InPersonEvaluation.prescriber_id)
        .join(recorder, col(recorder.id) == InPersonEvaluation.recorded_by)
        .where(InPersonEvaluation.patient_id == patient_id)
        .order_by(col(InPersonEvaluation.evaluated_on).desc(), col(InPersonEvaluation.recorded_at).desc())
    )
    return [EvaluationLine(evaluation, prescriber_name, recorder_name) for evaluation, prescriber_name, recorder_name in rows.all()]


async def prescribers(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """Active prescribers, for the coordinator's choice on the form."""
    rows = await session.execute(
        select(UserAccount.id, UserAccount.full_name)
        .where(UserAccount.role == Role.PRESCRIBER.value, col(UserAccount.is_active).is_(True))
        .order_by(UserAccount.full_name)
    )
    return [(row.id, row.full_name) for row in rows]
