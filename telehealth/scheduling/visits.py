"""The visit an appointment became, and who may be in its room when.

A visit *starts* when both people are connected in the built-in room at once: the process serving one
person's live socket receives the other person's live join (video_room.py) and records the start here, a
compare-and-swap that the first of the two processes wins. With an external video service nothing reaches us
from the call, so the clinician attests an audio-video visit inside the join window instead. The encounter, the
decision and the signature follow the start (prescribing/encounters.py), and a visit that took place can no
longer be cancelled, moved or marked missed (booking/changes.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.errors import NotFound, RuleRefused
from telehealth.scheduling.models import Appointment, VideoVisit, VisitConnection
from telehealth.scheduling.states import AppointmentStatus
from telehealth.settings import Settings

JOIN_OPENS_BEFORE = timedelta(minutes=10)
JOIN_CLOSES_AFTER_END = timedelta(minutes=30)
BOTH_CONNECTED = "both_connected"
CLINICIAN_ATTESTED = "clinician_attested"


@dataclass(frozen=True)
class RoomPass:
    """Who is entering which appointment's room, and until when the room stays open for them."""

    appointment_id: uuid.UUID
    user_id: uuid.UUID
    participant: str  # "patient" or "clinician"
    closes_at: datetime


def participant_of(appointment: Appointment, *, viewer: SignedIn, patient: Patient | None) -> str | None:
    if appointment.clinician_id == viewer.user_id:
        return "clinician"
    if patient is not None and appointment.patient_id == patient.id:
        return "patient"
    return None


def check_may_join(appointment: Appointment, *, viewer: SignedIn, patient: Patient | None, now: datetime) -> RoomPass:
    """Only the appointment's patient and clinician, only while it is booked, from 10 minutes before the start
    to 30 minutes after the end. Anyone else learns nothing (404)."""
    participant = participant_of(appointment, viewer=viewer, patient=patient)
    if participant is None or appointment.status != AppointmentStatus.BOOKED:
        raise NotFound("appointment.not_found", "No appointment with this id is yours.")
    if now < appointment.starts_at - JOIN_OPENS_BEFORE:
        raise RuleRefused("appointment.join_not_open", "The room opens 10 minutes before the start.")
    closes_at = appointment.ends_at + JOIN_CLOSES_AFTER_END
    if now > closes_at:
        raise RuleRefused("appointment.join_closed", "This appointment has ended.")
    return RoomPass(appointment.id, viewer.user_id, participant, closes_at)


def join_url(appointment: Appointment, *, viewer: SignedIn, patient: Patient | None, now: datetime, settings: Settings) -> str:
    """The video room, for the appointment's patient and clinician only, 10 min before to 30 min after."""
    check_may_join(appointment, viewer=viewer, patient=patient, now=now)
    return settings.video_room_url_template.format(public_base_url=settings.public_base_url, room_token=appointment.room_token)


async def admit_to_room(session: AsyncSession, *, room_token: str, viewer: SignedIn, now: datetime) -> RoomPass:
    appointment = await session.scalar(select(Appointment).where(Appointment.room_token == room_token))
    if appointment is None:
        raise NotFound("room.not_found", "There is no such room.")
    patient = await _own_patient(session, viewer)
    return check_may_join(appointment, viewer=viewer, patient=patient, now=now)


async def _own_patient(session: AsyncSession, viewer: SignedIn) -> Patient | None:
    if viewer.role is not Role.PATIENT:
        return None
    return await session.scalar(select(Patient).where(Patient.user_id == viewer.user_id))


async def record_joined(session: AsyncSession, room: RoomPass, *, now: datetime) -> uuid.UUID:
    connection = VisitConnection(appointment_id=room.appointment_id, user_id=room.user_id, participant=room.participant, joined_at=now)
    session.add(connection)
    await session.flush()
    return connection.id


async def record_left(session: AsyncSession, *, connection_id: uuid.UUID, appointment_id: uuid.UUID, now: datetime) -> None:
    """The person left: their connection ends, and a visit that started ends now (a rejoin moves it on)."""
    await session.execute(
        update(VisitConnection).where(col(VisitConnection.id) == connection_id, col(VisitConnection.left_at).is_(None)).values(left_at=now)
    )
    # GREATEST: two people leaving at once commit in either order; the visit ends at the later leave.
    await session.execute(
        update(VideoVisit)
        .where(col(VideoVisit.appointment_id) == appointment_id)
        .values(ended_at=func.greatest(func.coalesce(VideoVisit.ended_at, now), now))
    )


async def record_visit_started(session: AsyncSession, room: RoomPass, *, actor: Actor, now: datetime) -> bool:
    """Both people are connected now: the visit starts (once; later meetings change nothing). True if this call
    recorded the start."""
    # FOR SHARE waits for a cancellation that holds the row (booking/changes.py locks it), so a cancelled appointment
    # never gains a visit, and a cancellation after this sees the visit and is refused.
    booked = await session.scalar(
        select(Appointment.patient_id)
        .where(Appointment.id == room.appointment_id, Appointment.status == AppointmentStatus.BOOKED)
        .with_for_update(read=True)
    )
    if booked is None:
        return False
    inserted = await session.execute(
        insert(VideoVisit)
        .values(appointment_id=room.appointment_id, modality="audio_video", started_at=now, start_evidence=BOTH_CONNECTED)
        .on_conflict_do_nothing()
        .returning(col(VideoVisit.appointment_id))
    )
    if inserted.scalar_one_or_none() is None:
        return False
    await record_audit_event(
        session,
        actor=actor,
        action="video_visit.start",
        resource_type="appointment",
        resource_id=room.appointment_id,
        patient_id=booked,
        now=now,
        reason=BOTH_CONNECTED,
    )
    return True


async def attest_external_visit(
    session: AsyncSession, *, appointment_id: uuid.UUID, viewer: SignedIn, actor: Actor, now: datetime, settings: Settings
) -> VideoVisit:
    """With an external video service, the clinician attests that the audio-video visit is under way: only
    inside the join window, and only when the built-in room (which records the start itself) is not in use."""
    appointment = await session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None or appointment.clinician_id != viewer.user_id:
        raise NotFound("appointment.not_found", "No appointment with this id is yours.")
    if settings.video_room_is_built_in:
        raise RuleRefused(
            "video_visit.recorded_by_room", "The built-in video room records the visit's start when you and the patient are both in it."
        )
    check_may_join(appointment, viewer=viewer, patient=None, now=now)
    inserted = await session.execute(
        insert(VideoVisit)
        .values(
            appointment_id=appointment.id,
            modality="audio_video",
            started_at=now,
            start_evidence=CLINICIAN_ATTESTED,
            attested_by=viewer.user_id,
        )
        .on_conflict_do_nothing()
        .returning(col(VideoVisit.appointment_id))
    )
    if inserted.scalar_one_or_none() is not None:
        await record_audit_event(
            session,
            actor=actor,
            action="video_visit.attest",
            resource_type="appointment",
            resource_id=appointment.id,
            patient_id=appointment.patient_id,
            now=now,
            reason=CLINICIAN_ATTESTED,
        )
    visit = await session.get(VideoVisit, appointment.id, populate_existing=True)
    assert visit is not None
    return visit


async def visit_of(session: AsyncSession, appointment_id: uuid.UUID) -> VideoVisit | None:
    return await session.get(VideoVisit, appointment_id)


async def started_visit(session: AsyncSession, appointment_id: uuid.UUID, *, code: str, doing: str) -> VideoVisit:
    """The visit, if it has started; else a refusal saying what waits for it (`doing`)."""
    visit = await visit_of(session, appointment_id)
    if visit is None:
        raise RuleRefused(
            code,
            f"{doing} only once the video visit has started: you and the patient both in the room "
            "(or, with an external video service, your attestation of the audio-video visit inside the join window).",
        )
    return visit


@dataclass(frozen=True)
class VisitEvidence:
    visit: VideoVisit | None
    connections: list[tuple[VisitConnection, str]]  # each with the person's name

    @property
    def duration(self) -> timedelta | None:
        if self.visit is None or self.visit.ended_at is None:
            return None
        return self.visit.ended_at - self.visit.started_at


async def visit_evidence(session: AsyncSession, appointment_id: uuid.UUID) -> VisitEvidence:
    """What the room recorded: the visit (start, its evidence, end) and every join and leave, in order."""
    rows = await session.execute(
        select(VisitConnection, UserAccount.full_name)
        .join(UserAccount, col(UserAccount.id) == VisitConnection.user_id)
        .where(VisitConnection.appointment_id == appointment_id)
        .order_by(col(VisitConnection.joined_at))
    )
    return VisitEvidence(await visit_of(session, appointment_id), [(connection, name) for connection, name in rows.all()])


async def own_visit_evidence(session: AsyncSession, *, appointment_id: uuid.UUID, viewer: SignedIn) -> VisitEvidence:
    """The visit's evidence, for the appointment's own patient and clinician (anyone else: 404)."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or participant_of(appointment, viewer=viewer, patient=await _own_patient(session, viewer)) is None:
        raise NotFound("appointment.not_found", "No appointment with this id is yours.")
    return await visit_evidence(session, appointment_id)
