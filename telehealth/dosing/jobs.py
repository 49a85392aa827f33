"""Dosing's timed work: each sitter's one-time presence link an hour before the session, their end link
when the observation window after unlock closes, and reports not filed (after 24 h the patient is
reminded; after 48 h the coordinators are alerted). Each runs every few minutes and acts once per session
(a column set by compare-and-swap, and dedupe keys), so a late or repeated run sends nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.db.engine import transaction
from telehealth.dosing.before_dose import END_LINK_VALID_AFTER
from telehealth.dosing.models import DosingReport, DosingSession, Sitter, SitterAttestation, SitterLink
from telehealth.dosing.sitters import issue_link
from telehealth.dosing.states import LinkPurpose, SessionStatus, SitterStatus
from telehealth.lib.names import first_name
from telehealth.notifications.service import queue_email
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler
from telehealth.settings import Settings

PRESENCE_LINKS = "dosing.presence_links"
REPORT_REMINDERS = "dosing.report_reminders"
END_LINKS = "dosing.end_links"


async def send_presence_links(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Email the presence link to each confirmed sitter whose session starts within the hour and who has
    no live link for it yet (a reschedule withdrew the old one, so the new time gets a new link)."""
    thresholds = settings.thresholds
    live_link = select(SitterLink.token_hash).where(
        SitterLink.dosing_session_id == DosingSession.id,
        SitterLink.sitter_id == DosingSession.sitter_id,
        SitterLink.purpose == LinkPurpose.PRESENCE,
        col(SitterLink.revoked_at).is_(None),
    )
    due = (
        await session.execute(
            select(DosingSession, Sitter)
            .join(Sitter, col(Sitter.id) == DosingSession.sitter_id)
            .where(
                DosingSession.status == SessionStatus.SCHEDULED,
                Sitter.status == SitterStatus.CONFIRMED,
                DosingSession.scheduled_at <= now + timedelta(minutes=thresholds.presence_link_minutes_before),
                DosingSession.scheduled_at > now - timedelta(minutes=thresholds.unlock_late_minutes),
                ~live_link.exists(),
            )
            .with_for_update(of=DosingSession, skip_locked=True)
        )
    ).all()
    for row, sitter in due:
        expires = row.scheduled_at + timedelta(minutes=thresholds.unlock_late_minutes)
        raw = await issue_link(
            session, sitter_id=sitter.id, purpose=LinkPurpose.PRESENCE, now=now, expires_at=expires, dosing_session_id=row.id
        )
        patient = await session.get(Patient, row.patient_id)
        assert patient is not None
        contact = await patient_contact(session, row.patient_id)
        await queue_email(
            session,
            to=sitter.email,
            template="sitter_presence_link",
            context={
                "recipient_name": sitter.full_name,
                "patient_first_name": first_name(contact.full_name),
                "link_url": f"{settings.public_base_url}/sitter/{raw}",
                "when_local": row.scheduled_at.astimezone(ZoneInfo(patient.timezone)).strftime("%H:%M %Z"),
            },
            now=now,
        )
    return len(due)


async def _mark_once(session: AsyncSession, row: DosingSession, column: str, *, now: datetime) -> bool:
    """Set `column` if it is still empty (compare-and-swap): True for the one run that set it. A dedupe key
    alone stops a copy only while the first email is queued; once it is sent, the next run would send again."""
    marked = await session.execute(
        update(DosingSession)
        .where(col(DosingSession.id) == row.id, getattr(DosingSession, column).is_(None))
        .values({column: now})
        .returning(col(DosingSession.id))
    )
    return marked.scalar_one_or_none() is not None


async def send_end_links(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """When the observation window after unlock closes, email the session's sitter a link to attest how it
    ended (once per session; none when the end is attested already, the sitter left, or a link would have
    expired). The link they reached from the presence page keeps working too: the first end spends both."""
    ended = select(SitterAttestation.id).where(SitterAttestation.dosing_session_id == DosingSession.id, SitterAttestation.kind == "end")
    due = (
        await session.execute(
            select(DosingSession, Sitter)
            .join(Sitter, col(Sitter.id) == DosingSession.sitter_id)
            .where(
                col(DosingSession.status).in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED]),
                Sitter.status == SitterStatus.CONFIRMED,
                col(DosingSession.unlocked_at) <= now - timedelta(minutes=settings.thresholds.observation_minutes),
                DosingSession.scheduled_at > now - END_LINK_VALID_AFTER,
                col(DosingSession.end_link_sent_at).is_(None),
                ~ended.exists(),
            )
            .with_for_update(of=DosingSession, skip_locked=True)
        )
    ).all()
    for row, sitter in due:
        if not await _mark_once(session, row, "end_link_sent_at", now=now):
            continue
        raw = await issue_link(
            session,
            sitter_id=sitter.id,
            purpose=LinkPurpose.END,
            now=now,
            expires_at=row.scheduled_at + END_LINK_VALID_AFTER,
            dosing_session_id=row.id,
        )
        patient = await session.get(Patient, row.patient_id)
        assert patient is not None
        contact = await patient_contact(session, row.patient_id)
        await queue_email(
            session,
            to=sitter.email,
            template="sitter_end_link",
            context={
                "recipient_name": sitter.full_name,
                "patient_first_name": first_name(contact.full_name),
                "link_url": f"{settings.public_base_url}/sitter/{raw}",
                "when_local": row.scheduled_at.astimezone(ZoneInfo(patient.timezone)).strftime("%H:%M %Z"),
            },
            now=now,
            dedupe_key=f"sitter_end_link:{row.id}",
        )
    return len(due)


async def chase_reports(session: AsyncSession, *, now: datetime, settings: Settings) -> None:
    """Unlocked sessions with no report: remind the patient after 24 h, alert coordinators after 48 h."""
    thresholds = settings.thresholds
    overdue = (
        (
            await session.execute(
                select(DosingSession)
                .where(
                    DosingSession.status == SessionStatus.UNLOCKED,
                    col(DosingSession.unlocked_at) <= now - timedelta(hours=thresholds.report_reminder_hours),
                    ~select(DosingReport.dosing_session_id).where(DosingReport.dosing_session_id == DosingSession.id).exists(),
                )
                .with_for_update(skip_locked=True)  # two runs at once: each session is chased by one of them
            )
        )
        .scalars()
        .all()
    )
    coordinators = (
        (await session.execute(select(UserAccount).where(UserAccount.role == Role.COORDINATOR.value, col(UserAccount.is_active).is_(True))))
        .scalars()
        .all()
    )
    for row in overdue:
        if await _mark_once(session, row, "report_reminded_at", now=now):
            contact = await patient_contact(session, row.patient_id)
            await queue_email(
                session,
                to=contact.email,
                template="portal_update",
                context={"recipient_name": contact.full_name},
                now=now,
                dedupe_key=f"report_reminder:{row.id}",
            )
        overdue_long = row.unlocked_at is not None and row.unlocked_at <= now - timedelta(hours=thresholds.report_alert_hours)
        if overdue_long and await _mark_once(session, row, "report_escalated_at", now=now):
            for member in coordinators:
                await queue_email(
                    session,
                    to=member.email,
                    template="care_team_update",
                    context={"recipient_name": member.full_name},
                    now=now,
                    dedupe_key=f"report_overdue:{row.id}:{member.id}",
                )


@job_handler(PRESENCE_LINKS)
async def presence_links(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await send_presence_links(session, now=context.clock.now(), settings=context.settings)


@job_handler(END_LINKS)
async def end_links(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await send_end_links(session, now=context.clock.now(), settings=context.settings)


@job_handler(REPORT_REMINDERS)
async def report_reminders(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await chase_reports(session, now=context.clock.now(), settings=context.settings)


run_every(PRESENCE_LINKS, timedelta(minutes=1))
run_every(END_LINKS, timedelta(minutes=1))
run_every(REPORT_REMINDERS, timedelta(minutes=15))
