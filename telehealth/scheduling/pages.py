"""Joining a video visit, and the built-in room used when no external video service is configured."""

from __future__ import annotations

import uuid

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import Actor, record_audit_event
from telehealth.lib.clock import Clock
from telehealth.lib.errors import NotFound
from telehealth.scheduling.changes import join_url
from telehealth.scheduling.models import Appointment
from telehealth.settings import Settings

PARTICIPANTS = [requires_role(Role.PATIENT, Role.PRESCRIBER, Role.THERAPIST)]


class VideoPagesController(Controller):
    include_in_schema = False

    @get("/appointments/{appointment_id:uuid}/join", guards=PARTICIPANTS)
    async def join(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect:
        appointment = await db_session.get(Appointment, appointment_id)
        if appointment is None:
            raise NotFound("appointment.not_found", "No appointment with this id is yours.")
        patient = await own_patient_record(db_session, viewer=signed_in) if signed_in.role is Role.PATIENT else None
        url = join_url(appointment, viewer=signed_in, patient=patient, now=clock.now(), settings=settings)
        await record_audit_event(
            db_session, actor=actor, action="appointment.join", resource_type="appointment", resource_id=appointment.id,
            patient_id=appointment.patient_id, now=clock.now(),
        )  # fmt: skip
        return Redirect(path=url)

    @get("/rooms/{room_token:str}", guards=PARTICIPANTS)
    async def room(
        self, room_token: FromPath[str], signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings], clock: NamedDependency[Clock]
    ) -> Template:
        """The demo room: it checks the same rules as joining, then says who is expected."""
        appointment = await db_session.scalar(select(Appointment).where(Appointment.room_token == room_token))
        if appointment is None:
            raise NotFound("room.not_found", "There is no such room.")
        patient = await own_patient_record(db_session, viewer=signed_in) if signed_in.role is Role.PATIENT else None
        join_url(appointment, viewer=signed_in, patient=patient, now=clock.now(), settings=settings)
        return Template("scheduling/room.html", context={"appointment": appointment})
