"""What each staff home page shows at a glance: the work waiting for this person, soonest or most
urgent first. Read-only; every item links to the page where it is done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import visible_patients_clause
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.sessions import SignedIn
from telehealth.billing.models import Payment, Refund
from telehealth.clinicians.service import clinician_zone
from telehealth.dosing.models import DosingReport, DosingSession, InventoryFlag, SeriousEvent, Sitter
from telehealth.dosing.states import SessionStatus, SitterStatus
from telehealth.messages.service import unanswered
from telehealth.portal.therapist_day import therapist_day
from telehealth.prescribing.models import Encounter, PlanBatch, TrochePlan
from telehealth.prescribing.pharmacy_staff import NO_PHARMACY, pharmacy_of
from telehealth.prescribing.states import Decision, PlanStatus
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.service import find_slots
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings
from telehealth.waitlist.models import WaitlistEntry

CAPACITY_DAYS = 14


async def _day_of(
    session: AsyncSession, viewer: SignedIn, *, now: datetime, settings: Settings, types: tuple[str, ...], days: int = 1
) -> list[tuple[Appointment, str]]:
    """This clinician's booked appointments from the start of today (their zone) for `days` days."""
    zone = ZoneInfo(await clinician_zone(session, viewer.user_id, settings))
    start = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)
    rows = await session.execute(
        select(Appointment, UserAccount.full_name)
        .join(Patient, col(Patient.id) == Appointment.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(
            Appointment.clinician_id == viewer.user_id,
            Appointment.status == "booked",
            col(Appointment.appointment_type).in_(types),
            Appointment.starts_at >= start,
            Appointment.starts_at < start + timedelta(days=days),
        )
        .order_by(col(Appointment.starts_at))
    )
    return [(a, name) for a, name in rows.all()]


async def care_team_patients(session: AsyncSession, viewer: SignedIn) -> list[Any]:
    """The patients on this clinician's care team, by name: each links to the patient's page."""
    return list(
        (
            await session.execute(
                select(Patient.id, UserAccount.full_name)
                .join(UserAccount, col(UserAccount.id) == Patient.user_id)
                .where(visible_patients_clause(viewer))
                .order_by(UserAccount.full_name)
            )
        ).all()
    )


async def prescriber_home(session: AsyncSession, viewer: SignedIn, *, now: datetime, settings: Settings) -> dict[str, Any]:
    decided_without_plan = (
        select(Encounter.id, Encounter.appointment_id, Encounter.patient_id, UserAccount.full_name)
        .join(Patient, col(Patient.id) == Encounter.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(
            Encounter.prescriber_id == viewer.user_id,
            Encounter.decision == Decision.START_PLAN,
            ~select(TrochePlan.id).where(TrochePlan.encounter_id == Encounter.id, TrochePlan.status != PlanStatus.DRAFT).exists(),
        )
        .order_by(col(Encounter.decided_at))
    )
    undecided = (
        select(Encounter.id, Encounter.patient_id, UserAccount.full_name)
        .join(Patient, col(Patient.id) == Encounter.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(Encounter.prescriber_id == viewer.user_id, col(Encounter.decision).is_(None))
        .order_by(col(Encounter.opened_at))
    )
    own_plans = select(TrochePlan.id).where(TrochePlan.prescriber_id == viewer.user_id)
    return {
        "zone": await clinician_zone(session, viewer.user_id, settings),
        "today": await _day_of(session, viewer, now=now, settings=settings, types=("consult", "reassessment")),
        "plans_to_write": (await session.execute(decided_without_plan)).all(),
        "encounters_open": (await session.execute(undecided)).all(),
        "serious_events": await session.scalar(
            select(func.count())
            .select_from(SeriousEvent)
            .where(col(SeriousEvent.plan_id).in_(own_plans), col(SeriousEvent.reviewed_at).is_(None))
        ),
        "inventory_flags": await session.scalar(
            select(func.count())
            .select_from(InventoryFlag)
            .where(col(InventoryFlag.plan_id).in_(own_plans), col(InventoryFlag.resolved_at).is_(None))
        ),
        "messages_waiting": len(await unanswered(session, viewer=viewer, now=now)),
        "patients": await care_team_patients(session, viewer),
    }


async def therapist_home(session: AsyncSession, viewer: SignedIn, *, now: datetime, settings: Settings) -> dict[str, Any]:
    """The therapist's day (portal/therapist_day.py) and the messages waiting."""
    return {
        "day": await therapist_day(session, viewer, now=now, settings=settings),
        "messages_waiting": len(await unanswered(session, viewer=viewer, now=now)),
    }


async def pharmacist_home(session: AsyncSession, viewer: SignedIn) -> dict[str, Any]:
    """Counts of the pharmacist's own pharmacy's batches by step (no patient in them, so not a queue read)."""
    pharmacy = await pharmacy_of(session, viewer.user_id)
    if pharmacy is None:
        return {"pharmacy": None, "notice": NO_PHARMACY, "queue": []}
    counts = dict(
        (
            await session.execute(
                select(PlanBatch.status, func.count())
                .join(TrochePlan, col(TrochePlan.id) == PlanBatch.plan_id)
                .where(TrochePlan.pharmacy_id == pharmacy.id)
                .group_by(PlanBatch.status)
            )
        ).all()
    )
    return {
        "pharmacy": pharmacy,
        "notice": None,
        "queue": [(status, counts.get(status, 0)) for status in ("queued", "accepted", "filled", "shipped")],
    }


@dataclass(frozen=True)
class _StateProbe:
    """A patient of a state, for asking find_slots what that state's patients could book."""

    state_of_residence: str


@dataclass(frozen=True)
class StateLine:
    state: str
    waiting: int
    open_consult_slots: int


async def waitlist_capacity(session: AsyncSession, *, now: datetime) -> list[StateLine]:
    """People waiting per state beside the consult starts open in the next 14 days from prescribers who
    may see that state (a prescriber licensed in two states counts in both)."""
    waiting = (
        await session.execute(
            select(WaitlistEntry.state, func.count())
            .where(WaitlistEntry.status == "waiting")
            .group_by(WaitlistEntry.state)
            .order_by(WaitlistEntry.state)
        )
    ).all()
    lines = []
    for state, count in waiting:
        probe = _StateProbe(state)  # find_slots reads only the state
        slots = await find_slots(
            session,
            patient=probe,
            appointment_type=AppointmentType.CONSULT,
            window_start=now,
            window_end=now + timedelta(days=CAPACITY_DAYS),
            now=now,
        )
        lines.append(StateLine(state, count, len(slots)))
    return lines


async def coordinator_home(session: AsyncSession, viewer: SignedIn, *, now: datetime, settings: Settings) -> dict[str, Any]:
    serious = (
        await session.execute(
            select(SeriousEvent, UserAccount.full_name)
            .join(Patient, col(Patient.id) == SeriousEvent.patient_id)
            .join(UserAccount, col(UserAccount.id) == Patient.user_id)
            .where(col(SeriousEvent.reviewed_at).is_(None))
            .order_by(col(SeriousEvent.occurred_at))
        )
    ).all()
    unfiled = (
        await session.execute(
            select(DosingSession, UserAccount.full_name)
            .join(Patient, col(Patient.id) == DosingSession.patient_id)
            .join(UserAccount, col(UserAccount.id) == Patient.user_id)
            .where(
                DosingSession.status == SessionStatus.UNLOCKED,
                col(DosingSession.unlocked_at) <= now - timedelta(hours=settings.thresholds.report_alert_hours),
                ~select(DosingReport.dosing_session_id).where(DosingReport.dosing_session_id == DosingSession.id).exists(),
            )
            .order_by(col(DosingSession.unlocked_at))
        )
    ).all()
    return {
        "capacity": await waitlist_capacity(session, now=now),
        "serious_events": serious,
        "unfiled_reports": unfiled,
        "no_shows": await session.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(Appointment.status == "no_show", Appointment.starts_at >= now - timedelta(days=14))
        ),
        "failed_refunds": await session.scalar(select(func.count()).select_from(Refund).where(Refund.status == "failed")),
        "disputes": await session.scalar(
            select(func.count())
            .select_from(Payment)
            .where(col(Payment.disputed_at).is_not(None), col(Payment.disputed_at) >= now - timedelta(days=30))
        ),
        "messages_waiting": len(await unanswered(session, viewer=viewer, now=now)),
        "sitters_to_verify": await session.scalar(
            select(func.count()).select_from(Sitter).where(Sitter.status == SitterStatus.CONFIRMED, col(Sitter.verified_at).is_(None))
        ),
    }
