"""JSON API: open slots and an appointment's video visit; hours, overrides and settings for clinicians.
(Booking, one's appointments, cancelling, moving, no-shows and follow-ups: booking/api.py.)"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.dates import instant_in_range
from telehealth.lib.errors import InvalidInput
from telehealth.scheduling import availability, service, visits
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.schemas import (
    AppointmentBody,
    OverrideBody,
    SlotBody,
    TypeSettingsBody,
    VisitBody,
    VisitConnectionBody,
    WeeklyHoursBody,
)
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings

PATIENT = [requires_role(Role.PATIENT)]
CLINICIAN = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]
PARTICIPANTS = [requires_role(Role.PATIENT, Role.PRESCRIBER, Role.THERAPIST)]


def appointment_body(
    appointment: Appointment, *, payment_id: uuid.UUID | None = None, checkout_url: str | None = None, amount_cents: int | None = None
) -> AppointmentBody:
    """An appointment as the API answers it; what it costs is filled in by booking/api.py, which knows the payment."""
    return AppointmentBody(
        id=appointment.id,
        type=appointment.appointment_type,
        status=appointment.status,
        clinician_id=appointment.clinician_id,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        hold_expires_at=appointment.hold_expires_at,
        payment_id=payment_id,
        checkout_url=checkout_url,
        amount_cents=amount_cents,
    )


def visit_body(appointment_id: uuid.UUID, evidence: visits.VisitEvidence) -> VisitBody:
    visit, duration = evidence.visit, evidence.duration
    return VisitBody(
        appointment_id=appointment_id,
        modality=visit.modality if visit else None,
        started_at=visit.started_at if visit else None,
        start_evidence=visit.start_evidence if visit else None,
        ended_at=visit.ended_at if visit else None,
        duration_seconds=int(duration.total_seconds()) if duration is not None else None,
        connections=[
            VisitConnectionBody(participant=c.participant, joined_at=c.joined_at, left_at=c.left_at) for c, _name in evidence.connections
        ],
    )


def aware(value: datetime, field: str) -> datetime:
    """A time from a request, refused (400) without a UTC offset."""
    if value.tzinfo is None:
        raise InvalidInput(
            "request.invalid", "Times need a UTC offset, e.g. 2027-01-12T14:00:00Z.", fields={field: "must include a UTC offset"}
        )
    return value


class SchedulingApiController(Controller):
    tags = ["scheduling"]

    @get("/api/v1/slots", guards=PATIENT)
    async def slots(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
        type: FromQuery[AppointmentType],
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: FromQuery[datetime | None] = None,
        clinician_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=2000)] = 500,
    ) -> list[SlotBody]:
        """Open start times for you, soonest first, from clinicians licensed (and for consults DEA-registered)
        in your state on the appointment date; shown in your time zone too. Default window: the next 14 days;
        at most `limit` slots (the first available ones)."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        now = clock.now()
        start = instant_in_range(aware(from_, "from"), "from") if from_ else now
        end = instant_in_range(aware(to, "to"), "to") if to else start + timedelta(days=14)
        found = await service.find_slots(
            db_session,
            patient=patient,
            appointment_type=type,
            window_start=start,
            window_end=end,
            now=now,
            clinician_id=clinician_id,
            limit=limit,
        )
        zone = ZoneInfo(patient.timezone)
        local: dict[datetime, str] = {}  # many clinicians share each start: convert each instant once
        return [
            SlotBody(
                clinician_id=s.clinician_id,
                clinician_name=s.clinician_name,
                starts_at=s.starts_at,
                starts_at_local=local.get(s.starts_at) or local.setdefault(s.starts_at, s.starts_at.astimezone(zone).isoformat()),
            )
            for s in found
        ]

    @get("/api/v1/appointments/{appointment_id:uuid}/visit", guards=PARTICIPANTS)
    async def visit(
        self, appointment_id: FromPath[uuid.UUID], signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]
    ) -> VisitBody:
        """The video visit: whether and when it started (and on what evidence), who joined and left when."""
        return visit_body(appointment_id, await visits.own_visit_evidence(db_session, appointment_id=appointment_id, viewer=signed_in))

    @post("/api/v1/appointments/{appointment_id:uuid}/visit/attest", status_code=200, guards=CLINICIAN)
    async def attest_visit(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> VisitBody:
        """With an external video service only: the clinician attests the audio-video visit, inside the join window."""
        await visits.attest_external_visit(
            db_session, appointment_id=appointment_id, viewer=signed_in, actor=actor, now=clock.now(), settings=settings
        )
        return visit_body(appointment_id, await visits.visit_evidence(db_session, appointment_id))

    @put("/api/v1/availability/weekly", guards=CLINICIAN)
    async def weekly(
        self,
        data: JSONBody[WeeklyHoursBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> dict[str, int]:
        """Replace your weekly hours (in your own time zone)."""
        ranges = [availability.WeeklyRange(r.weekday, r.start, r.end) for r in data.ranges]
        await availability.replace_weekly_hours(db_session, clinician_id=signed_in.user_id, ranges=ranges, actor=actor, now=clock.now())
        return {"ranges": len(ranges)}

    @post("/api/v1/availability/overrides", status_code=201, guards=CLINICIAN)
    async def override(
        self,
        data: JSONBody[OverrideBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> dict[str, str]:
        """A day off, or extra hours on one date."""
        await availability.add_date_override(
            db_session,
            clinician_id=signed_in.user_id,
            on_date=data.on_date,
            kind=data.kind,
            start=data.start,
            end=data.end,
            actor=actor,
            now=clock.now(),
        )
        return {"on_date": data.on_date.isoformat(), "kind": data.kind}

    @put("/api/v1/availability/settings/{appointment_type:str}", guards=CLINICIAN)
    async def type_settings(
        self,
        appointment_type: FromPath[AppointmentType],
        data: JSONBody[TypeSettingsBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> dict[str, str]:
        """Duration, buffers, notice, horizon, daily limit and alignment for one appointment type."""
        values = {name: getattr(data, name) for name in TypeSettingsBody.__struct_fields__}
        await availability.save_type_settings(
            db_session, clinician_id=signed_in.user_id, appointment_type=appointment_type, values=values, actor=actor, now=clock.now()
        )
        return {"appointment_type": appointment_type.value}
