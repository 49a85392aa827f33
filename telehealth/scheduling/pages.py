"""Joining a video visit, and the built-in room used when no external video service is configured."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.clinicians.service import clinician_zone
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import NotFound
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.visits import admit_to_room, attest_external_visit, join_url
from telehealth.settings import Settings

PARTICIPANTS = [requires_role(Role.PATIENT, Role.PRESCRIBER, Role.THERAPIST)]
CLINICIANS = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]


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
            db_session,
            actor=actor,
            action="appointment.join",
            resource_type="appointment",
            resource_id=appointment.id,
            patient_id=appointment.patient_id,
            now=clock.now(),
        )
        return Redirect(path=url)

    @post("/appointments/{appointment_id:uuid}/visit/attest", guards=CLINICIANS, status_code=303)
    async def attest_visit(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect:
        """With an external video service: the clinician attests the audio-video visit is under way."""
        await attest_external_visit(
            db_session, appointment_id=appointment_id, viewer=signed_in, actor=actor, now=clock.now(), settings=settings
        )
        return Redirect(path="/clinician/calendar")

    @get("/rooms/{room_token:str}", guards=PARTICIPANTS)
    async def room(
        self,
        room_token: FromPath[str],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        """The built-in room: the same rules as joining; the call itself runs in the page (static/room.js)."""
        room = await admit_to_room(db_session, room_token=room_token, viewer=signed_in, now=clock.now())
        appointment = await db_session.get(Appointment, room.appointment_id)
        assert appointment is not None
        patient = await db_session.get(Patient, appointment.patient_id)
        assert patient is not None
        if room.participant == "patient":
            clinician = await db_session.get(UserAccount, appointment.clinician_id)
            other_name, zone = (clinician.full_name if clinician else "your clinician"), patient.timezone
        else:
            patient_user = await db_session.get(UserAccount, patient.user_id)
            other_name, zone = (
                (patient_user.full_name if patient_user else "your patient"),
                await clinician_zone(db_session, signed_in.user_id, settings),
            )
        return Template(
            "scheduling/room.html",
            context={
                "appointment": appointment,
                "room_token": room_token,
                "participant": room.participant,
                "other_name": other_name,
                "closes_at": room.closes_at,
                "viewer_zone": zone,
            },
        )
