"""Credentials running out: the coordinator's list, and an email to the clinician for each credential and
expiry (one email a run for all of a clinician's credentials that came due together)."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telehealth.accounts.models import UserAccount
from telehealth.audit.service import record_audit_event
from telehealth.clinicians.checks import EXPIRY_WARNING_DAYS
from telehealth.clinicians.models import DeaRegistration, SpecialRegistration, StateLicense
from telehealth.clinicians.service import clinic_today
from telehealth.lib.actors import Actor
from telehealth.notifications.service import queue_email
from telehealth.settings import Settings

REMINDER_TEMPLATE = "credential_expiring"
CREDENTIAL_TABLES = ((StateLicense, "license"), (DeaRegistration, "dea"), (SpecialRegistration, "special"))
Credential = type[StateLicense] | type[DeaRegistration] | type[SpecialRegistration]


@dataclass(frozen=True)
class ExpiringCredential:
    clinician_id: uuid.UUID
    clinician_name: str
    kind: str  # license, dea or special (a telemedicine special registration)
    license_type: str | None  # for licenses
    state: str
    expires_on: date
    expired: bool


async def expiring_credentials(session: AsyncSession, *, today: date) -> list[ExpiringCredential]:
    """Active clinicians' licenses, DEA and special registrations that lapsed or lapse within EXPIRY_WARNING_DAYS,
    soonest first (a lapsed one stays listed until it is renewed or removed)."""
    horizon = today + timedelta(days=EXPIRY_WARNING_DAYS)

    def part(table: Credential, kind: str, license_type: ColumnElement[str] | ColumnElement[None]) -> Select[*tuple[Any, ...]]:
        return (
            select(
                col(table.clinician_id),
                col(UserAccount.full_name),
                literal(kind).label("kind"),
                license_type,
                col(table.state),
                col(table.expires_on),
            )
            .join(UserAccount, col(UserAccount.id) == table.clinician_id)
            .where(col(UserAccount.is_active).is_(True), col(table.expires_on) <= horizon)
        )

    both = union_all(
        part(StateLicense, "license", col(StateLicense.license_type).label("license_type")),
        part(DeaRegistration, "dea", literal(None).label("license_type")),
        part(SpecialRegistration, "special", literal(None).label("license_type")),
    ).subquery()
    rows = await session.execute(select(both).order_by(both.c.expires_on, both.c.full_name, both.c.kind, both.c.state))
    return [
        ExpiringCredential(row.clinician_id, row.full_name, row.kind, row.license_type, row.state, row.expires_on, row.expires_on < today)
        for row in rows
    ]


async def remind_expiring_credentials(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Remind each active clinician once per credential and expiry date that falls within EXPIRY_WARNING_DAYS:
    one email per clinician and run, however many of their credentials came due (a state's license and DEA
    registration often expire together, and two identical emails said nothing more than one).

    The mark is a compare-and-swap on `reminded_for_expiry` (set to the expiry it reminded of), so a rerun,
    a second worker or the next day sends nothing more, and a renewal (a new expiry) re-arms it. The email
    is generic: the clinic, the person's name, how many credentials and a link; nothing about which one or
    anyone's care. Answers the number of credentials reminded of.
    """
    today = clinic_today(now, settings)
    horizon = today + timedelta(days=EXPIRY_WARNING_DAYS)
    due: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for table, kind in CREDENTIAL_TABLES:
        marked = await session.execute(
            update(table)
            .where(
                col(table.clinician_id) == UserAccount.id,
                col(UserAccount.is_active).is_(True),
                col(table.expires_on) >= today,
                col(table.expires_on) <= horizon,
                col(table.reminded_for_expiry).is_distinct_from(table.expires_on),
            )
            .values(reminded_for_expiry=table.expires_on)
            .returning(
                col(table.id),
                col(table.clinician_id),
                col(table.state),
                col(table.expires_on),
                col(UserAccount.email),
                col(UserAccount.full_name),
            )
            .execution_options(synchronize_session=False)
        )
        for row in marked.all():
            due[row.clinician_id].append(row)
            await record_audit_event(
                session,
                actor=Actor.system(),
                action="clinician.credential_reminder",
                resource_type="clinician",
                resource_id=row.clinician_id,
                now=now,
                reason=f"{kind} {row.state} {row.expires_on.isoformat()}",
            )
    for rows in due.values():
        reminded = ",".join(sorted(f"{row.id}:{row.expires_on.isoformat()}" for row in rows))
        await queue_email(
            session,
            to=rows[0].email,
            template=REMINDER_TEMPLATE,
            now=now,
            context={"recipient_name": rows[0].full_name, "credential_count": len(rows)},
            dedupe_key=f"{REMINDER_TEMPLATE}:{rows[0].clinician_id}:{hashlib.sha256(reminded.encode()).hexdigest()[:32]}",
        )
    return sum(len(rows) for rows in due.values())
