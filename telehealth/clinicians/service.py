"""Who is credentialed where: the one source for served states, slot eligibility and plan signing; and
keeping those credentials (NPI, state licenses, DEA registrations), checked and audited, for coordinators."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, String, and_, bindparam, delete, exists, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlmodel import col, select

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.audit.service import record_audit_event
from telehealth.clinicians.checks import SCHEDULE_III, DeaDetails, LicenseDetails, checked_dea, checked_license, checked_profile
from telehealth.clinicians.models import ClinicianProfile, DeaRegistration, SpecialRegistration, StateLicense
from telehealth.db import driver
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, NotFound, RuleRefused
from telehealth.settings import Settings

CLINICIAN_ROLES = (Role.PRESCRIBER.value, Role.THERAPIST.value)
UNIQUE_VIOLATION = "23505"


def holds_schedule_iii(schedules: SQLCoreOperations[str]) -> ColumnElement[bool]:
    # schedules is a comma list like "II,IIN,III,IIIN,IV,V": match the whole item, not "IIIN" for "III"
    return ("," + schedules + ",").contains("," + SCHEDULE_III + ",")


def prescriber_may_prescribe_in(state: ColumnElement[str] | str, on: ColumnElement[date] | date) -> ColumnElement[bool]:
    """SQL: the user_account row is an active prescriber with an unexpired license AND an unexpired
    DEA registration covering Schedule III in `state` on the date `on`."""
    # Aliases: callers may select from state_license themselves (served_states does).
    license, dea = aliased(StateLicense), aliased(DeaRegistration)
    license_ok = exists().where(col(license.clinician_id) == UserAccount.id, col(license.state) == state, col(license.expires_on) >= on)
    dea_ok = exists().where(
        col(dea.clinician_id) == UserAccount.id, col(dea.state) == state, col(dea.expires_on) >= on, holds_schedule_iii(col(dea.schedules))
    )
    return and_(col(UserAccount.role) == Role.PRESCRIBER.value, col(UserAccount.is_active).is_(True), license_ok, dea_ok)


async def hold_prescribing_credentials(session: AsyncSession, *, prescriber_id: uuid.UUID, state: str, on: date) -> bool:
    """At signing: whether the prescriber may prescribe in `state` on `on`, holding (FOR SHARE, until the
    transaction ends) the account, license and DEA rows that say so. A removal, an edit or a deactivation
    racing the signature waits for it, or, committed first, is seen here: never a plan signed on a
    credential that was already gone."""
    holder = await session.scalar(
        select(UserAccount.id)
        .where(UserAccount.id == prescriber_id, UserAccount.role == Role.PRESCRIBER.value, col(UserAccount.is_active).is_(True))
        .with_for_update(read=True)
    )
    license = await session.scalar(
        select(StateLicense.id)
        .where(StateLicense.clinician_id == prescriber_id, StateLicense.state == state, StateLicense.expires_on >= on)
        .with_for_update(read=True)
    )
    dea = await session.scalar(
        select(DeaRegistration.id)
        .where(
            DeaRegistration.clinician_id == prescriber_id,
            DeaRegistration.state == state,
            DeaRegistration.expires_on >= on,
            holds_schedule_iii(col(DeaRegistration.schedules)),
        )
        .with_for_update(read=True)
    )
    return None not in (holder, license, dea)


async def served_states(session: AsyncSession, *, on: date) -> set[str]:
    """States where at least one active prescriber may prescribe on `on`."""
    rows = await session.execute(
        select(StateLicense.state)
        .join(UserAccount, col(UserAccount.id) == StateLicense.clinician_id)
        .where(prescriber_may_prescribe_in(StateLicense.state, on))
        .distinct()
    )
    return set(rows.scalars())


# Every waiting-list position lookup asks it: the same rule, compiled once, on the driver (db/driver.py).
_STATE_SERVED = driver.compiled(
    select(exists().where(prescriber_may_prescribe_in(bindparam("state", type_=String), bindparam("on", type_=Date))))
)


async def is_state_served(session: AsyncSession, *, state: str, on: date) -> bool:
    """Whether at least one active prescriber may prescribe in `state` on `on`."""
    return bool(await driver.fetchval(session, _STATE_SERVED.sql, *_STATE_SERVED.args(state=state, on=on)))


async def clinician_zone(session: AsyncSession, user_id: uuid.UUID, settings: Settings) -> str:
    """The zone a clinician keeps their hours in (their profile), or the clinic's."""
    return await session.scalar(select(ClinicianProfile.timezone).where(ClinicianProfile.user_id == user_id)) or settings.clinic_timezone


def clinic_today(now: datetime, settings: Settings) -> date:
    """Credential dates are calendar dates of the clinic."""
    return now.astimezone(settings.clinic_zone).date()


# --- Reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClinicianCredentials:
    clinician: UserAccount
    profile: ClinicianProfile | None
    licenses: list[StateLicense]
    dea_registrations: list[DeaRegistration]
    special_registrations: list[SpecialRegistration]


async def clinicians_with_credentials(session: AsyncSession, *, clinician_id: uuid.UUID | None = None) -> list[ClinicianCredentials]:
    """Every prescriber and therapist (or one) with profile, licenses, DEA and special registrations: five queries."""
    query = (
        select(UserAccount)
        .where(col(UserAccount.role).in_(CLINICIAN_ROLES))
        .order_by(UserAccount.role, UserAccount.full_name, col(UserAccount.id))
    )
    if clinician_id is not None:
        query = query.where(UserAccount.id == clinician_id)
    clinicians = list((await session.execute(query)).scalars())
    if clinician_id is not None and not clinicians:
        raise NotFound("clinician.not_found", "There is no prescriber or therapist with that id.")
    ids = [clinician.id for clinician in clinicians]
    profiles = {
        p.user_id: p for p in (await session.execute(select(ClinicianProfile).where(col(ClinicianProfile.user_id).in_(ids)))).scalars()
    }
    licenses: dict[uuid.UUID, list[StateLicense]] = {}
    for license in (
        await session.execute(select(StateLicense).where(col(StateLicense.clinician_id).in_(ids)).order_by(StateLicense.state))
    ).scalars():
        licenses.setdefault(license.clinician_id, []).append(license)
    registrations: dict[uuid.UUID, list[DeaRegistration]] = {}
    dea_query = select(DeaRegistration).where(col(DeaRegistration.clinician_id).in_(ids)).order_by(DeaRegistration.state)
    for registration in (await session.execute(dea_query)).scalars():
        registrations.setdefault(registration.clinician_id, []).append(registration)
    special: dict[uuid.UUID, list[SpecialRegistration]] = {}
    special_query = select(SpecialRegistration).where(col(SpecialRegistration.clinician_id).in_(ids)).order_by(SpecialRegistration.state)
    for special_registration in (await session.execute(special_query)).scalars():
        special.setdefault(special_registration.clinician_id, []).append(special_registration)
    return [
        ClinicianCredentials(c, profiles.get(c.id), licenses.get(c.id, []), registrations.get(c.id, []), special.get(c.id, []))
        for c in clinicians
    ]


async def load_clinician(session: AsyncSession, clinician_id: uuid.UUID) -> UserAccount:
    clinician = await session.get(UserAccount, clinician_id)
    if clinician is None or clinician.role not in CLINICIAN_ROLES:
        raise NotFound("clinician.not_found", "There is no prescriber or therapist with that id.")
    return clinician


# --- Changing (coordinators); every change is audited on the clinician -----------------------------------


def _reason(*parts: object) -> str:
    return " ".join(str(part) for part in parts if part)[:80]  # audit_event.reason holds 80


def _changed(old: object, new: dict[str, object]) -> str:
    names = [name for name, value in new.items() if getattr(old, name) != value]
    return "changed=" + ",".join(names) if names else "unchanged"


async def _audit(session: AsyncSession, *, action: str, clinician_id: uuid.UUID, reason: str, actor: Actor, now: datetime) -> None:
    await record_audit_event(
        session, actor=actor, action=action, resource_type="clinician", resource_id=clinician_id, now=now, reason=reason
    )


async def _update_or_conflict(session: AsyncSession, statement: Any, conflict: Conflict) -> Any:
    """Run an UPDATE in a savepoint: one that would give a clinician a second license of a kind (a race
    included) answers `conflict` and leaves the request's transaction usable."""
    try:
        async with session.begin_nested():
            return (await session.execute(statement)).scalar_one_or_none()
    except IntegrityError as error:
        if getattr(error.orig, "sqlstate", None) == UNIQUE_VIOLATION:
            raise conflict from None
        raise


def _license_exists(details: LicenseDetails) -> Conflict:
    return Conflict(
        "clinician.license_exists",
        f"This clinician already has a {details.license_type} license in {details.state}; renew that one instead.",
        fields={"state": f"already has a {details.license_type} license"},
    )


def _dea_exists(details: DeaDetails) -> Conflict:
    return Conflict(
        "clinician.dea_exists",
        f"This clinician already has a DEA registration in {details.state}; renew that one instead.",
        fields={"state": "already has a DEA registration"},
    )


def _license_not_found() -> NotFound:
    return NotFound("clinician.license_not_found", "This clinician has no license with that id.")


def _dea_not_found() -> NotFound:
    return NotFound("clinician.dea_not_found", "This clinician has no DEA registration with that id.")


async def update_profile(
    session: AsyncSession, *, clinician_id: uuid.UUID, npi: str | None, timezone: str, actor: Actor, now: datetime
) -> ClinicianProfile:
    """Set the NPI (check digit verified) and the zone the clinician's weekly hours are read in."""
    await load_clinician(session, clinician_id)
    npi, timezone = checked_profile(npi=npi, timezone=timezone)
    old = await session.get(ClinicianProfile, clinician_id)
    changed = _changed(old, {"npi": npi, "timezone": timezone}) if old else "created"
    await session.execute(
        insert(ClinicianProfile)
        .values(user_id=clinician_id, npi=npi, timezone=timezone, created_at=now)
        .on_conflict_do_update(index_elements=[col(ClinicianProfile.user_id)], set_={"npi": npi, "timezone": timezone})
    )
    await _audit(session, action="clinician.profile.update", clinician_id=clinician_id, reason=changed, actor=actor, now=now)
    profile = await session.get(ClinicianProfile, clinician_id, populate_existing=True)
    assert profile is not None
    return profile


async def _license(session: AsyncSession, clinician_id: uuid.UUID, license_id: uuid.UUID) -> StateLicense:
    license = await session.get(StateLicense, license_id, populate_existing=True)
    if license is None or license.clinician_id != clinician_id:
        raise _license_not_found()
    return license


async def add_license(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    state: str,
    number: str,
    license_type: str,
    expires_on: date,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> StateLicense:
    """Record a state license: one per state and type (a second answers 409 and says to renew the first)."""
    clinician = await load_clinician(session, clinician_id)
    checked = checked_license(
        Role(clinician.role),
        state=state,
        number=number,
        license_type=license_type,
        expires_on=expires_on,
        today=clinic_today(now, settings),
    )
    license_id = await session.scalar(
        insert(StateLicense)
        .values(id=uuid.uuid4(), clinician_id=clinician_id, **asdict(checked))
        .on_conflict_do_nothing(index_elements=["clinician_id", "state", "license_type"])
        .returning(col(StateLicense.id))
    )
    if license_id is None:
        raise _license_exists(checked)
    await _audit(
        session,
        action="clinician.license.add",
        clinician_id=clinician_id,
        actor=actor,
        now=now,
        reason=_reason(checked.state, checked.license_type, checked.expires_on),
    )
    return await _license(session, clinician_id, license_id)


async def update_license(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    license_id: uuid.UUID,
    state: str,
    number: str,
    license_type: str,
    expires_on: date,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> StateLicense:
    """Change or renew a license. A new expiry re-arms its reminder; slots follow at once (they read this row)."""
    clinician = await load_clinician(session, clinician_id)
    checked = checked_license(
        Role(clinician.role),
        state=state,
        number=number,
        license_type=license_type,
        expires_on=expires_on,
        today=clinic_today(now, settings),
    )
    changed = _changed(await _license(session, clinician_id, license_id), asdict(checked))
    statement = (
        update(StateLicense)
        .where(col(StateLicense.id) == license_id, col(StateLicense.clinician_id) == clinician_id)
        .values(**asdict(checked))
        .returning(col(StateLicense.id))
    )
    if await _update_or_conflict(session, statement, _license_exists(checked)) is None:
        raise _license_not_found()  # removed meanwhile
    await _audit(
        session,
        action="clinician.license.update",
        clinician_id=clinician_id,
        actor=actor,
        now=now,
        reason=_reason(checked.state, checked.license_type, checked.expires_on, changed),
    )
    return await _license(session, clinician_id, license_id)


async def remove_license(session: AsyncSession, *, clinician_id: uuid.UUID, license_id: uuid.UUID, actor: Actor, now: datetime) -> None:
    removed = (
        await session.execute(
            delete(StateLicense)
            .where(col(StateLicense.id) == license_id, col(StateLicense.clinician_id) == clinician_id)
            .returning(col(StateLicense.state), col(StateLicense.license_type), col(StateLicense.expires_on))
        )
    ).first()
    if removed is None:
        raise _license_not_found()
    await _audit(session, action="clinician.license.remove", clinician_id=clinician_id, actor=actor, now=now, reason=_reason(*removed))


async def _prescriber(session: AsyncSession, clinician_id: uuid.UUID) -> None:
    clinician = await load_clinician(session, clinician_id)
    if clinician.role != Role.PRESCRIBER:
        raise RuleRefused(
            "clinician.not_a_prescriber", "Only prescribers hold DEA registrations here.", fields={"clinician_id": "is not a prescriber"}
        )


async def _dea(session: AsyncSession, clinician_id: uuid.UUID, registration_id: uuid.UUID) -> DeaRegistration:
    registration = await session.get(DeaRegistration, registration_id, populate_existing=True)
    if registration is None or registration.clinician_id != clinician_id:
        raise _dea_not_found()
    return registration


async def add_dea_registration(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    state: str,
    number: str,
    schedules: list[str],
    expires_on: date,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> DeaRegistration:
    """Record a prescriber's DEA registration in a state (one per state). One without Schedule III is kept
    but flagged (`checks.dea_warnings`): it does not let its holder prescribe ketamine."""
    await _prescriber(session, clinician_id)
    checked = checked_dea(state=state, number=number, schedules=schedules, expires_on=expires_on, today=clinic_today(now, settings))
    registration_id = await session.scalar(
        insert(DeaRegistration)
        .values(id=uuid.uuid4(), clinician_id=clinician_id, **asdict(checked))
        .on_conflict_do_nothing(index_elements=["clinician_id", "state"])
        .returning(col(DeaRegistration.id))
    )
    if registration_id is None:
        raise _dea_exists(checked)
    await _audit(
        session,
        action="clinician.dea.add",
        clinician_id=clinician_id,
        actor=actor,
        now=now,
        reason=_reason(checked.state, checked.expires_on, checked.schedules),
    )
    return await _dea(session, clinician_id, registration_id)


async def update_dea_registration(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    registration_id: uuid.UUID,
    state: str,
    number: str,
    schedules: list[str],
    expires_on: date,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> DeaRegistration:
    """Change or renew a DEA registration (a new expiry re-arms its reminder)."""
    await _prescriber(session, clinician_id)
    checked = checked_dea(state=state, number=number, schedules=schedules, expires_on=expires_on, today=clinic_today(now, settings))
    changed = _changed(await _dea(session, clinician_id, registration_id), asdict(checked))
    statement = (
        update(DeaRegistration)
        .where(col(DeaRegistration.id) == registration_id, col(DeaRegistration.clinician_id) == clinician_id)
        .values(**asdict(checked))
        .returning(col(DeaRegistration.id))
    )
    if await _update_or_conflict(session, statement, _dea_exists(checked)) is None:
        raise _dea_not_found()
    await _audit(
        session,
        action="clinician.dea.update",
        clinician_id=clinician_id,
        actor=actor,
        now=now,
        reason=_reason(checked.state, checked.expires_on, checked.schedules, changed),
    )
    return await _dea(session, clinician_id, registration_id)


async def remove_dea_registration(
    session: AsyncSession, *, clinician_id: uuid.UUID, registration_id: uuid.UUID, actor: Actor, now: datetime
) -> None:
    removed = (
        await session.execute(
            delete(DeaRegistration)
            .where(col(DeaRegistration.id) == registration_id, col(DeaRegistration.clinician_id) == clinician_id)
            .returning(col(DeaRegistration.state), col(DeaRegistration.expires_on), col(DeaRegistration.schedules))
        )
    ).first()
    if removed is None:
        raise _dea_not_found()
    await _audit(session, action="clinician.dea.remove", clinician_id=clinician_id, actor=actor, now=now, reason=_reason(*removed))
