"""Alerting the care team: an email with no details to the plan's prescriber and every active
coordinator, once per event; what happened waits on their pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.notifications.service import queue_email
from telehealth.prescribing.models import TrochePlan


async def alert_care_team(session: AsyncSession, plan: TrochePlan, *, template: str, key: str, now: datetime) -> None:
    """Email the plan's prescriber and every active coordinator, once per `key`; the email says only that
    something waits in the portal."""
    recipients = (
        await session.execute(
            select(UserAccount).where(
                col(UserAccount.is_active).is_(True), (UserAccount.id == plan.prescriber_id) | (UserAccount.role == Role.COORDINATOR.value)
            )
        )
    ).scalars()
    for member in recipients:
        await queue_email(
            session,
            to=member.email,
            template=template,
            context={"recipient_name": member.full_name},
            now=now,
            dedupe_key=f"{key}:{member.id}",
        )
