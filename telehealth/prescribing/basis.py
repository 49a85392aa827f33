"""The prescribing basis on the date (DOMAIN.md "Prescribing basis on the date").

Through `TELEMEDICINE_FLEXIBILITIES_UNTIL` (the DEA's telemedicine flexibilities) an audio-video visit is
basis enough to sign a plan. From the day after, a signature needs a basis recorded beforehand: an in-person
medical evaluation of the patient by the signing prescriber, or the prescriber's telemedicine special
registration valid in the patient's state on that day. The day is the calendar day where the patient is
(the encounter's location state, read in `lib.us_states.state_zone_name`), so the same instant can be the
last day in California and the first day after in New York.

`basis_for_signing` is called by `plans.sign_plan` inside the signing transaction, and locks the record it
relies on FOR SHARE: a coordinator's concurrent change or removal of that registration waits for the
signature to commit (or the signature waits for it and then sees the change), never check-then-act.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient
from telehealth.clinicians.models import SpecialRegistration
from telehealth.lib.errors import RuleRefused
from telehealth.lib.us_states import US_STATES, state_zone_name
from telehealth.prescribing.models import InPersonEvaluation
from telehealth.settings import Settings

NO_BASIS = "plan.no_prescribing_basis"


class Basis(StrEnum):
    TELEMEDICINE_FLEXIBILITIES = "telemedicine_flexibilities"
    IN_PERSON_EVALUATION = "in_person_evaluation"
    SPECIAL_REGISTRATION = "special_registration"


class Missing(StrEnum):
    """What a patient lacks for a plan after the flexibilities end (the cliff page shows the same words)."""

    IN_PERSON_EVALUATION = "in_person_evaluation"
    SPECIAL_REGISTRATION = "special_registration"


@dataclass(frozen=True)
class PrescribingBasis:
    basis: Basis
    in_person_evaluation_id: uuid.UUID | None = None
    special_registration_id: uuid.UUID | None = None

    def plan_values(self) -> dict[str, object]:
        """The troche_plan columns that record it."""
        return {
            "prescribing_basis": self.basis.value,
            "in_person_evaluation_id": self.in_person_evaluation_id,
            "special_registration_id": self.special_registration_id,
        }

    def audit_reason(self) -> str:
        record = self.in_person_evaluation_id or self.special_registration_id
        return f"{self.basis.value} {record}" if record else self.basis.value


def day_in_state(now: datetime, *, state: str, patient_timezone: str | None) -> tuple[date, str]:
    """(the calendar day at `now` where the patient is, the zone it was read in)."""
    zone = state_zone_name(state, own_zone=patient_timezone)
    return now.astimezone(ZoneInfo(zone)).date(), zone


def flexibilities_cover(day: date, settings: Settings) -> bool:
    """On or before the last day of the flexibilities an audio-video visit is basis enough."""
    return day <= settings.telemedicine_flexibilities_until


def _when(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


async def basis_for_signing(
    session: AsyncSession, *, patient: Patient, prescriber_id: uuid.UUID, location_state: str, now: datetime, settings: Settings
) -> PrescribingBasis:
    """The basis on which `prescriber_id` may sign this patient's plan at `now`, or RuleRefused
    `plan.no_prescribing_basis` naming the date and what is missing. The record relied on is locked FOR SHARE
    in the caller's (the signature's) transaction. An in-person evaluation is preferred: it does not expire."""
    day, zone = day_in_state(now, state=location_state, patient_timezone=patient.timezone)
    if flexibilities_cover(day, settings):
        return PrescribingBasis(Basis.TELEMEDICINE_FLEXIBILITIES)
    evaluation_id = await session.scalar(
        select(InPersonEvaluation.id)
        .where(
            InPersonEvaluation.patient_id == patient.id,
            InPersonEvaluation.prescriber_id == prescriber_id,
            InPersonEvaluation.evaluated_on <= day,
        )
        .order_by(col(InPersonEvaluation.evaluated_on).desc(), col(InPersonEvaluation.recorded_at).desc())
        .limit(1)
        .with_for_update(read=True)
    )
    if evaluation_id is not None:
        return PrescribingBasis(Basis.IN_PERSON_EVALUATION, in_person_evaluation_id=evaluation_id)
    # FOR SHARE re-checks the row after a concurrent update commits (READ COMMITTED), so a registration a
    # coordinator just let lapse or removed is not relied on, and one being relied on cannot change until signed.
    registration_id = await session.scalar(
        select(SpecialRegistration.id)
        .where(
            SpecialRegistration.clinician_id == prescriber_id,
            SpecialRegistration.state == location_state,
            SpecialRegistration.expires_on >= day,
        )
        .with_for_update(read=True)
    )
    if registration_id is not None:
        return PrescribingBasis(Basis.SPECIAL_REGISTRATION, special_registration_id=registration_id)
    until, state_name = settings.telemedicine_flexibilities_until, US_STATES.get(location_state, location_state)
    raise RuleRefused(
        NO_BASIS,
        f"Today, {_when(day)} in {state_name}, is after the telemedicine flexibilities ended on {_when(until)}: "
        f"signing needs an in-person medical evaluation of this patient by you, recorded beforehand, or your "
        f"telemedicine special registration valid in {state_name} today. Neither is on file.",
        fields={
            "prescribing_basis": (
                f"no in-person evaluation by you and no special registration in {location_state} valid on {day.isoformat()}"
            )
        },
        extra={
            "day": day.isoformat(),
            "zone": zone,
            "flexibilities_until": until.isoformat(),
            "state": location_state,
            "missing": [Missing.IN_PERSON_EVALUATION.value, Missing.SPECIAL_REGISTRATION.value],
        },
    )
