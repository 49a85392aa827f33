"""The therapist's day: today's integration sessions, the care-team patients, the follow-ups due after a
dose, and the sessions still waiting for a note. Read-only queries; times stay UTC here and are shown in
the therapist's zone by the page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import visible_patients_clause
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.sessions import SignedIn
from telehealth.clinicians.service import clinician_zone
from telehealth.dosing.models import DosingSession
from telehealth.dosing.states import SessionStatus
from telehealth.notes.models import ClinicalNote
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import AppointmentStatus, AppointmentType
from telehealth.settings import Settings

# DOMAIN.md 9: integration is suggested within 72 h after a dosing session.
FOLLOW_UP_WINDOW = timedelta(hours=72)
DOSED = (SessionStatus.UNLOCKED, SessionStatus.REPORTED)  # the patient took the dose (reported or not yet)
# An integration session that covers a dose: one on the books or one that took place.
COVERS_A_DOSE = (AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED)


@dataclass(frozen=True)
class TodaysSession:
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    starts_at: datetime
    ends_at: datetime
    status: str


@dataclass(frozen=True)
class FollowUpDue:
    patient_id: uuid.UUID
    patient_name: str
    session_number: int
    dosed_at: datetime
    window_closes_at: datetime


@dataclass(frozen=True)
class NoteToWrite:
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    starts_at: datetime


@dataclass(frozen=True)
class TherapistDay:
    zone: str
    day_start: datetime  # midnight today in the therapist's zone, as an aware datetime
    today: list[TodaysSession]
    follow_ups_due: list[FollowUpDue]
    notes_to_write: list[NoteToWrite]
    patients: list[tuple[uuid.UUID, str]]


async def todays_sessions(session: AsyncSession, viewer: SignedIn, *, day_start: datetime) -> list[TodaysSession]:
    """This therapist's integration sessions on the books or completed, from midnight to midnight of their
    own day (a day of 23 or 25 hours when the clocks change)."""
    rows = await session.execute(
        select(Appointment, UserAccount.full_name)
        .join(Patient, col(Patient.id) == Appointment.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(
            Appointment.clinician_id == viewer.user_id,
            Appointment.appointment_type == AppointmentType.INTEGRATION,
            col(Appointment.status).in_(COVERS_A_DOSE),
            Appointment.starts_at >= day_start,
            Appointment.starts_at < day_start + timedelta(days=1),
        )
        .order_by(col(Appointment.starts_at))
    )
    return [TodaysSession(a.id, a.patient_id, name, a.starts_at, a.ends_at, a.status) for a, name in rows.all()]


async def follow_ups_due(session: AsyncSession, viewer: SignedIn, *, now: datetime) -> list[FollowUpDue]:
    """Care-team patients whose latest dose was taken in the last 72 h with no integration session booked
    (or completed) after it; the window closing soonest first."""
    latest_dose = (
        select(DosingSession.patient_id, DosingSession.number, DosingSession.unlocked_at)
        .join(Patient, col(Patient.id) == DosingSession.patient_id)
        .where(
            col(DosingSession.status).in_(DOSED),
            col(DosingSession.unlocked_at) > now - FOLLOW_UP_WINDOW,
            col(DosingSession.unlocked_at) <= now,
            visible_patients_clause(viewer),
        )
        .order_by(col(DosingSession.patient_id), col(DosingSession.unlocked_at).desc())
        .ext(distinct_on(col(DosingSession.patient_id)))
        .subquery()
    )
    booked_after = (
        select(Appointment.id)
        .where(
            Appointment.patient_id == latest_dose.c.patient_id,
            Appointment.appointment_type == AppointmentType.INTEGRATION,
            col(Appointment.status).in_(COVERS_A_DOSE),
            Appointment.starts_at >= latest_dose.c.unlocked_at,
        )
        .exists()
    )
    rows = await session.execute(
        select(latest_dose.c.patient_id, UserAccount.full_name, latest_dose.c.number, latest_dose.c.unlocked_at)
        .join(Patient, col(Patient.id) == latest_dose.c.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(~booked_after)
        .order_by(latest_dose.c.unlocked_at)
    )
    return [
        FollowUpDue(patient_id, name, number, dosed_at, dosed_at + FOLLOW_UP_WINDOW) for patient_id, name, number, dosed_at in rows.all()
    ]


async def notes_to_write(session: AsyncSession, viewer: SignedIn, *, now: datetime) -> list[NoteToWrite]:
    """This therapist's integration sessions that took place (completed, or booked and over) with no note
    by them on that patient since the session began (or tied to it); oldest first."""
    written_since = (
        select(ClinicalNote.id)
        .where(
            ClinicalNote.patient_id == Appointment.patient_id,
            ClinicalNote.author_user_id == viewer.user_id,
            or_(col(ClinicalNote.written_at) >= Appointment.starts_at, col(ClinicalNote.appointment_id) == Appointment.id),
        )
        .exists()
    )
    took_place = or_(
        col(Appointment.status) == AppointmentStatus.COMPLETED,
        (col(Appointment.status) == AppointmentStatus.BOOKED) & (col(Appointment.ends_at) <= now),
    )
    rows = await session.execute(
        select(Appointment.id, Appointment.patient_id, UserAccount.full_name, Appointment.starts_at)
        .join(Patient, col(Patient.id) == Appointment.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(
            Appointment.clinician_id == viewer.user_id,
            Appointment.appointment_type == AppointmentType.INTEGRATION,
            took_place,
            visible_patients_clause(viewer),
            ~written_since,
        )
        .order_by(col(Appointment.starts_at))
    )
    return [NoteToWrite(*row) for row in rows.all()]


async def care_team_patients(session: AsyncSession, viewer: SignedIn) -> list[tuple[uuid.UUID, str]]:
    rows = await session.execute(
        select(Patient.id, UserAccount.full_name)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(visible_patients_clause(viewer))
        .order_by(UserAccount.full_name)
    )
    return [(patient_id, name) for patient_id, name in rows.all()]


async def therapist_day(session: AsyncSession, viewer: SignedIn, *, now: datetime, settings: Settings) -> TherapistDay:
    """Everything the therapist's home shows; `today` is the therapist's own calendar day."""
    zone = await clinician_zone(session, viewer.user_id, settings)
    day_start = datetime.combine(now.astimezone(ZoneInfo(zone)).date(), time(0), tzinfo=ZoneInfo(zone))
    return TherapistDay(
        zone=zone,
        day_start=day_start,
        today=await todays_sessions(session, viewer, day_start=day_start),
        follow_ups_due=await follow_ups_due(session, viewer, now=now),
        notes_to_write=await notes_to_write(session, viewer, now=now),
        patients=await care_team_patients(session, viewer),
    )
