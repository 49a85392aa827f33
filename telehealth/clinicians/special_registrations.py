"""Telemedicine special registrations (a credential kind, for when the DEA's proposed rule becomes final): kept
by coordinators like licenses and DEA registrations, one per prescriber and state, each change audited on the
clinician. Signing reads them after the telemedicine flexibilities end (prescribing.basis)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telehealth.clinicians.checks import SpecialRegistrationDetails, checked_special_registration
from telehealth.clinicians.models import SpecialRegistration
from telehealth.clinicians.service import _audit, _changed, _prescriber, _reason, _update_or_conflict, clinic_today
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, NotFound
from telehealth.settings import Settings

# A referenced row: PostgreSQL 15 reports foreign_key_violation, 18 restrict_violation (ON DELETE RESTRICT).
REFERENCED_ROW = {"23503", "23001"}


def _exists(details: SpecialRegistrationDetails) -> Conflict:
    return Conflict(
        "clinician.special_registration_exists",
        f"This prescriber already has a special registration in {details.state}; renew that one instead.",
        fields={"state": "already has a special registration"},
    )


def _not_found() -> NotFound:
    return NotFound("clinician.special_registration_not_found", "This clinician has no special registration with that id.")


async def _registration(session: AsyncSession, clinician_id: uuid.UUID, registration_id: uuid.UUID) -> SpecialRegistration:
    registration = await session.get(SpecialRegistration, registration_id, populate_existing=True)
    if registration is None or registration.clinician_id != clinician_id:
        raise _not_found()
    return registration


async def add_special_registration(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    state: str,
    number: str,
    expires_on: date,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> SpecialRegistration:
    """Record a prescriber's telemedicine special registration in a state (one per state: a second is 409)."""
    await _prescriber(session, clinician_id)
    checked = checked_special_registration(state=state, number=number, expires_on=expires_on, today=clinic_today(now, settings))
    registration_id = await session.scalar(
        insert(SpecialRegistration)
        .values(id=uuid.uuid4(), clinician_id=clinician_id, **asdict(checked))
        .on_conflict_do_nothing(index_elements=["clinician_id", "state"])
        .returning(col(SpecialRegistration.id))
    )
    if registration_id is None:
        raise _exists(checked)
    await _audit(
        session,
        action="clinician.special_registration.add",
        clinician_id=clinician_id,
        actor=actor,
        now=now,
        reason=_reason(checked.state, checked.expires_on),
    )
    return await _registration(session, clinician_id, registration_id)


async def update_special_registration(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    registration_id: uuid.UUID,
    state: str,
    number: str,
    expires_on: date,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> SpecialRegistration:
    """Change or renew a special registration. The UPDATE waits for a signature that relies on the row (it
    holds it FOR SHARE), so a lapse set now never lets a plan be signed on the old expiry afterwards."""
    await _prescriber(session, clinician_id)
    checked = checked_special_registration(state=state, number=number, expires_on=expires_on, today=clinic_today(now, settings))
    changed = _changed(await _registration(session, clinician_id, registration_id), asdict(checked))
    statement = (
        update(SpecialRegistration)
        .where(col(SpecialRegistration.id) == registration_id, col(SpecialRegistration.clinician_id) == clinician_id)
        .values(**asdict(checked))
        .returning(col(SpecialRegistration.id))
    )
    if await _update_or_conflict(session, statement, _exists(checked)) is None:
        raise _not_found()
    await _audit(
        session,
        action="clinician.special_registration.update",
        clinician_id=clinician_id,
        actor=actor,
        now=now,
        reason=_reason(checked.state, checked.expires_on, changed),
    )
    return await _registration(session, clinician_id, registration_id)


async def remove_special_registration(
    session: AsyncSession, *, clinician_id: uuid.UUID, registration_id: uuid.UUID, actor: Actor, now: datetime
) -> None:
    """Remove one. A registration a signed plan rests on stays on file as the plan's evidence (409): set its
    expiry instead."""
    statement = (
        delete(SpecialRegistration)
        .where(col(SpecialRegistration.id) == registration_id, col(SpecialRegistration.clinician_id) == clinician_id)
        .returning(col(SpecialRegistration.state), col(SpecialRegistration.expires_on))
    )
    try:
        async with session.begin_nested():
            removed = (await session.execute(statement)).first()
    except IntegrityError as error:
        if getattr(error.orig, "sqlstate", None) in REFERENCED_ROW:
            raise Conflict(
                "clinician.special_registration_cited",
                "A signed plan rests on this special registration, so it stays on file; set its expiry date instead.",
                fields={"registration": "is the basis of a signed plan"},
            ) from None
        raise
    if removed is None:
        raise _not_found()
    await _audit(
        session, action="clinician.special_registration.remove", clinician_id=clinician_id, actor=actor, now=now, reason=_reason(*removed)
    )
