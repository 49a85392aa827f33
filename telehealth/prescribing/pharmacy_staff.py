"""Pharmacies are organisations: each pharmacist account belongs to one pharmacy (a `pharmacy_staff` row) and
sees and works only that pharmacy's batches (pharmacy.py asks `pharmacy_id_of`). A coordinator assigns or
moves a pharmacist; creating a pharmacist may name the pharmacy at once. Both are audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.service import create_account
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from telehealth.prescribing.models import Pharmacy, PharmacyStaff
from telehealth.settings import Settings

NO_PHARMACY = (
    "Your account does not belong to a pharmacy yet, so no prescriptions are shown to you. "
    "Ask the clinic's coordinator to add you to your pharmacy."
)


async def pharmacy_of(session: AsyncSession, pharmacist_id: uuid.UUID) -> Pharmacy | None:
    """The pharmacy this account works for, or None (then it sees nothing)."""
    return await session.scalar(
        select(Pharmacy).join(PharmacyStaff, col(PharmacyStaff.pharmacy_id) == Pharmacy.id).where(PharmacyStaff.user_id == pharmacist_id)
    )


async def pharmacies(session: AsyncSession) -> list[Pharmacy]:
    return list((await session.execute(select(Pharmacy).order_by(Pharmacy.name))).scalars())


@dataclass(frozen=True)
class PharmacistEntry:
    pharmacist: UserAccount
    pharmacy: Pharmacy | None


async def pharmacists(session: AsyncSession) -> list[PharmacistEntry]:
    """Every pharmacist account with its pharmacy (None when not yet assigned), by name."""
    rows = await session.execute(
        select(UserAccount, Pharmacy)
        .outerjoin(PharmacyStaff, col(PharmacyStaff.user_id) == UserAccount.id)
        .outerjoin(Pharmacy, col(Pharmacy.id) == PharmacyStaff.pharmacy_id)
        .where(UserAccount.role == Role.PHARMACIST.value)
        .order_by(UserAccount.full_name, col(UserAccount.id))
    )
    return [PharmacistEntry(account, pharmacy) for account, pharmacy in rows.all()]


async def _checked(session: AsyncSession, *, pharmacist_id: uuid.UUID | None, pharmacy_id: uuid.UUID | None) -> dict[str, str]:
    problems = {}
    if pharmacist_id is not None:
        role = await session.scalar(select(UserAccount.role).where(UserAccount.id == pharmacist_id))
        if role != Role.PHARMACIST.value:
            problems["pharmacist_id"] = "is not a pharmacist's account"
    if pharmacy_id is None or await session.get(Pharmacy, pharmacy_id) is None:
        problems["pharmacy_id"] = "is not a known pharmacy"
    return problems


async def assign_pharmacy(
    session: AsyncSession, *, pharmacist_id: uuid.UUID, pharmacy_id: uuid.UUID | None, actor: Actor, now: datetime
) -> Pharmacy:
    """Make `pharmacy_id` the pharmacist's one pharmacy (moving them if they had another): 422 naming
    `pharmacist_id` when the account is not a pharmacist's, `pharmacy_id` when the pharmacy is unknown."""
    if problems := await _checked(session, pharmacist_id=pharmacist_id, pharmacy_id=pharmacy_id):
        raise InvalidInput("pharmacy_staff.invalid", "Choose a pharmacist and one of the clinic's pharmacies.", fields=problems)
    assert pharmacy_id is not None
    # One statement: two coordinators assigning at once leave exactly one row, the last one's.
    await session.execute(
        insert(PharmacyStaff)
        .values(user_id=pharmacist_id, pharmacy_id=pharmacy_id, assigned_at=now)
        .on_conflict_do_update(index_elements=[col(PharmacyStaff.user_id)], set_={"pharmacy_id": pharmacy_id, "assigned_at": now})
    )
    await record_audit_event(
        session,
        actor=actor,
        action="pharmacy_staff.assign",
        resource_type="user_account",
        resource_id=pharmacist_id,
        now=now,
        reason=f"pharmacy:{pharmacy_id}",
    )
    pharmacy = await session.get(Pharmacy, pharmacy_id)
    assert pharmacy is not None
    return pharmacy


async def find_pharmacy(session: AsyncSession, reference: str) -> Pharmacy | None:
    """A pharmacy by its id or its exact name (what an operator types at the command line)."""
    try:
        return await session.get(Pharmacy, uuid.UUID(reference))
    except ValueError:
        return await session.scalar(select(Pharmacy).where(Pharmacy.name == reference.strip()))


async def create_pharmacist(
    session: AsyncSession,
    *,
    email: str,
    full_name: str,
    password: str,
    pharmacy_id: uuid.UUID | None,
    actor: Actor,
    now: datetime,
    settings: Settings,
    email_verified: bool = False,
) -> UserAccount:
    """A pharmacist account placed in its pharmacy in the same transaction (the pharmacy is checked first,
    so an unknown one creates nothing)."""
    if problems := await _checked(session, pharmacist_id=None, pharmacy_id=pharmacy_id):
        raise InvalidInput("pharmacy_staff.invalid", "Choose one of the clinic's pharmacies.", fields=problems)
    user = await create_account(
        session,
        email=email,
        full_name=full_name,
        role=Role.PHARMACIST,
        password=password,
        actor=actor,
        now=now,
        settings=settings,
        email_verified=email_verified,
    )
    await assign_pharmacy(session, pharmacist_id=user.id, pharmacy_id=pharmacy_id, actor=actor, now=now)
    return user
