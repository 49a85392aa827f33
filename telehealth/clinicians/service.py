"""Who is credentialed where: the one source for served states, slot eligibility and plan signing."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.clinicians.models import DeaRegistration, StateLicense

SCHEDULE_III = "III"


def _holds_schedule_iii(schedules: ColumnElement[str]) -> ColumnElement[bool]:
    # schedules is a comma list like "II,IIN,III,IIIN,IV,V": match the whole item, not "IIIN" for "III"
    return ("," + schedules + ",").contains("," + SCHEDULE_III + ",")


def prescriber_may_prescribe_in(state: ColumnElement[str] | str, on: date) -> ColumnElement[bool]:
    """SQL: the user_account row is an active prescriber with an unexpired license AND an unexpired
    DEA registration covering Schedule III in `state` on the date `on`."""
    # Aliases: callers may select from state_license themselves (served_states does).
    license, dea = aliased(StateLicense), aliased(DeaRegistration)
    license_ok = exists().where(license.clinician_id == UserAccount.id, license.state == state, license.expires_on >= on)
    dea_ok = exists().where(
        dea.clinician_id == UserAccount.id, dea.state == state, dea.expires_on >= on, _holds_schedule_iii(dea.schedules)
    )
    return and_(UserAccount.role == Role.PRESCRIBER.value, UserAccount.is_active.is_(True), license_ok, dea_ok)


async def served_states(session: AsyncSession, *, on: date) -> set[str]:
    """States where at least one active prescriber may prescribe on `on`."""
    rows = await session.execute(
        select(StateLicense.state)
        .join(UserAccount, UserAccount.id == StateLicense.clinician_id)
        .where(prescriber_may_prescribe_in(StateLicense.state, on))
        .distinct()
    )
    return set(rows.scalars())


async def is_state_served(session: AsyncSession, *, state: str, on: date) -> bool:
    return bool(await session.scalar(select(exists().where(prescriber_may_prescribe_in(state, on)))))
