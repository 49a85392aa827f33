"""Seeing the cliff coming: from CLIFF_WARNING_DAYS before the telemedicine flexibilities end, the active
patients whose next plan or renewal will be signed after the date without a basis (basis.py).

An active patient is one with, in this order of who will sign their next plan:
  1. a booked consult or reassessment not yet over (its prescriber signs the next plan);
  2. an encounter undecided or decided `start_plan` whose plan is not signed yet (that encounter's prescriber);
  3. a live plan: signed, at the pharmacy, active or paused (its prescriber renews it);
  4. a plan completed in the last RECENTLY_COMPLETED_DAYS (its prescriber renews it);
  5. a latest screening of eligible or needs_review, no plan ever signed and no decline or referral since
     (no prescriber yet: whoever they book must have a basis).
Accounts that are disabled are left out. The patient's state is their state of residence (where they will
most likely be at the next signing); a patient is listed when their prescriber has neither an in-person
evaluation of them nor a special registration in that state valid on the first day after the date.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, Select, Uuid, and_, cast, exists, func, literal, null, or_, select, union_all
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from telehealth.accounts.models import Patient, UserAccount
from telehealth.clinicians.models import SpecialRegistration
from telehealth.clinicians.service import clinic_today
from telehealth.intake.models import ScreeningDecision
from telehealth.lib.us_states import US_STATES
from telehealth.prescribing.models import Encounter, InPersonEvaluation, TrochePlan
from telehealth.prescribing.states import Decision, PlanStatus
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import AppointmentStatus, AppointmentType
from telehealth.settings import Settings

CLIFF_WARNING_DAYS = 45
RECENTLY_COMPLETED_DAYS = 90
LIVE = (PlanStatus.SIGNED, PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE, PlanStatus.PAUSED)
WHY_WORDS = {
    "consult": "consult booked",
    "reassessment": "reassessment booked",
    "plan_to_sign": "seen, plan not signed yet",
    "live_plan": "current plan, to renew",
    "plan_completed": "plan completed recently, to renew",
    "awaiting_plan": "screened, no consult yet",
}


def first_day_after(settings: Settings) -> date:
    return settings.telemedicine_flexibilities_until + timedelta(days=1)


def cliff_in_view(now: datetime, settings: Settings) -> bool:
    """Homes show the count from CLIFF_WARNING_DAYS before the last day (in the clinic's zone), and after it."""
    return clinic_today(now, settings) >= settings.telemedicine_flexibilities_until - timedelta(days=CLIFF_WARNING_DAYS)


@dataclass(frozen=True)
class PatientWithoutBasis:
    patient_id: uuid.UUID
    patient_name: str
    state: str | None
    prescriber_id: uuid.UUID | None
    prescriber_name: str | None
    why: str  # a key of WHY_WORDS
    registration_expires_on: date | None  # their prescriber's special registration in the state, lapsing before the date

    def missing(self, after: date) -> list[str]:
        """What this patient lacks, in words an operations person acts on."""
        state = US_STATES.get(self.state or "", self.state or "their state")
        if self.prescriber_name is None:
            return [f"no prescriber yet: book one with a special registration in {state}, or arrange an in-person evaluation"]
        registration = (
            f"{self.prescriber_name}'s special registration in {state} "
            f"expires {self.registration_expires_on.isoformat()}, before {after.isoformat()}"
            if self.registration_expires_on
            else f"no special registration of {self.prescriber_name} in {state}"
        )
        return [f"no in-person evaluation by {self.prescriber_name}", registration]


def _candidates(now: datetime) -> CompoundSelect[*tuple[Any, ...]]:
    """(patient_id, prescriber_id, rank, why, at): every reason a patient is active, ranked by who signs next."""
    no_prescriber = cast(null(), Uuid)
    booked: Select[*tuple[Any, ...]] = select(
        col(Appointment.patient_id),
        col(Appointment.clinician_id).label("prescriber_id"),
        literal(1).label("rank"),
        col(Appointment.appointment_type).label("why"),
        col(Appointment.starts_at).label("at"),
    ).where(
        col(Appointment.status) == AppointmentStatus.BOOKED.value,
        col(Appointment.ends_at) >= now,
        col(Appointment.appointment_type).in_([AppointmentType.CONSULT.value, AppointmentType.REASSESSMENT.value]),
    )
    signed_from = select(col(TrochePlan.id)).where(col(TrochePlan.encounter_id) == Encounter.id, col(TrochePlan.signed_at).is_not(None))
    decided = select(
        col(Encounter.patient_id), col(Encounter.prescriber_id), literal(2), literal("plan_to_sign"), col(Encounter.opened_at)
    ).where(or_(col(Encounter.decision).is_(None), col(Encounter.decision) == Decision.START_PLAN.value), ~signed_from.exists())
    live = select(
        col(TrochePlan.patient_id), col(TrochePlan.prescriber_id), literal(3), literal("live_plan"), col(TrochePlan.signed_at)
    ).where(col(TrochePlan.status).in_([status.value for status in LIVE]))
    completed = select(
        col(TrochePlan.patient_id), col(TrochePlan.prescriber_id), literal(4), literal("plan_completed"), col(TrochePlan.updated_at)
    ).where(
        col(TrochePlan.status) == PlanStatus.COMPLETED.value, col(TrochePlan.updated_at) >= now - timedelta(days=RECENTLY_COMPLETED_DAYS)
    )
    latest = (
        select(col(ScreeningDecision.patient_id), col(ScreeningDecision.outcome), col(ScreeningDecision.screened_at))
        .ext(distinct_on(col(ScreeningDecision.patient_id)))
        .order_by(col(ScreeningDecision.patient_id), col(ScreeningDecision.screened_at).desc())
        .subquery()
    )
    ever_signed = select(col(TrochePlan.id)).where(
        col(TrochePlan.patient_id) == latest.c.patient_id, col(TrochePlan.signed_at).is_not(None)
    )
    turned_away = select(col(Encounter.id)).where(
        col(Encounter.patient_id) == latest.c.patient_id,
        col(Encounter.decision).in_([Decision.DECLINE.value, Decision.REFER_OUT.value]),
        Encounter.decided_at >= latest.c.screened_at,
    )
    awaiting = select(latest.c.patient_id, no_prescriber, literal(5), literal("awaiting_plan"), latest.c.screened_at).where(
        latest.c.outcome.in_(["eligible", "needs_review"]), ~ever_signed.exists(), ~turned_away.exists()
    )
    return union_all(booked, decided, live, completed, awaiting)


def _without_basis(*, now: datetime, settings: Settings, prescriber_id: uuid.UUID | None) -> Select[*tuple[Any, ...]]:
    every = _candidates(now).subquery()
    first = (
        select(every).ext(distinct_on(every.c.patient_id)).order_by(every.c.patient_id, every.c.rank, every.c.at).subquery()
    )  # the one who signs next
    patient_user, prescriber_user, registration = aliased(UserAccount), aliased(UserAccount), aliased(SpecialRegistration)
    evaluated = exists().where(
        col(InPersonEvaluation.patient_id) == first.c.patient_id, col(InPersonEvaluation.prescriber_id) == first.c.prescriber_id
    )
    query = (
        select(
            first.c.patient_id,
            col(patient_user.full_name).label("patient_name"),
            col(Patient.state_of_residence),
            first.c.prescriber_id,
            col(prescriber_user.full_name).label("prescriber_name"),
            first.c.why,
            col(registration.expires_on),
        )
        .join(Patient, col(Patient.id) == first.c.patient_id)
        .join(patient_user, col(patient_user.id) == Patient.user_id)
        .outerjoin(prescriber_user, col(prescriber_user.id) == first.c.prescriber_id)
        .outerjoin(
            registration,
            and_(col(registration.clinician_id) == first.c.prescriber_id, col(registration.state) == Patient.state_of_residence),
        )
        .where(
            col(patient_user.is_active).is_(True),
            ~evaluated,
            or_(col(registration.id).is_(None), col(registration.expires_on) < first_day_after(settings)),
        )
    )
    if prescriber_id is not None:
        query = query.where(first.c.prescriber_id == prescriber_id)
    return query.order_by(col(Patient.state_of_residence), col(patient_user.full_name), first.c.patient_id)


async def patients_without_basis(
    session: AsyncSession, *, now: datetime, settings: Settings, prescriber_id: uuid.UUID | None = None
) -> list[PatientWithoutBasis]:
    """Every active patient (or one prescriber's) whose next plan after the date has no basis, by state then name."""
    rows = await session.execute(_without_basis(now=now, settings=settings, prescriber_id=prescriber_id))
    return [PatientWithoutBasis(*row) for row in rows.all()]


async def count_patients_without_basis(
    session: AsyncSession, *, now: datetime, settings: Settings, prescriber_id: uuid.UUID | None = None
) -> int:
    query = _without_basis(now=now, settings=settings, prescriber_id=prescriber_id).order_by(None).subquery()
    return int(await session.scalar(select(func.count()).select_from(query)) or 0)


def without_basis_csv(patients: list[PatientWithoutBasis], *, settings: Settings) -> str:
    """Name, state, prescriber and what is missing: what operations need to act, and nothing of anyone's health."""
    after = first_day_after(settings)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["patient", "state", "prescriber", "missing"])
    for patient in patients:
        writer.writerow(
            [_cell(patient.patient_name), patient.state or "", _cell(patient.prescriber_name or ""), "; ".join(patient.missing(after))]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """A spreadsheet never runs a name as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass(frozen=True)
class CliffSummary:
    until: date
    count: int
    patients: list[PatientWithoutBasis]  # a prescriber's own; empty on the coordinator's home (the page lists them)


async def home_summary(
    session: AsyncSession, *, now: datetime, settings: Settings, prescriber_id: uuid.UUID | None = None
) -> CliffSummary | None:
    """What a home page shows from CLIFF_WARNING_DAYS before the date (None before then): the count, and for
    a prescriber their own patients."""
    if not cliff_in_view(now, settings):
        return None
    until = settings.telemedicine_flexibilities_until
    if prescriber_id is None:
        return CliffSummary(until, await count_patients_without_basis(session, now=now, settings=settings), [])
    patients = await patients_without_basis(session, now=now, settings=settings, prescriber_id=prescriber_id)
    return CliffSummary(until, len(patients), patients)
