"""Message pages: the patient's conversation with their care team, the same conversation for staff who
may see the patient (each read audited), and the list of patients waiting more than one business day."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import load_patient_for, own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.accounts.sessions import SignedIn
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.messages import service

STAFF = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]  # the care team (load_patient_for); coordinators see only that a message waits


async def _page(session: AsyncSession, patient: Patient, *, own: bool, error: DomainError | None = None, draft: str = "") -> Template:
    return Template(
        "messages/thread.html",
        context={
            "messages": await service.thread(session, patient_id=patient.id),
            "own": own,
            "zone": patient.timezone,
            "draft": draft,
            "patient": patient,
            "patient_name": (await patient_contact(session, patient.id)).full_name,
            "error": error.detail if error else None,
            "fields": error.fields if error else {},
        },
        status_code=error.status_code if error else 200,
    )


class MessagePagesController(Controller):
    include_in_schema = False

    @get("/messages", guards=[requires_role(Role.PATIENT)])
    async def own(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        return await _page(db_session, await own_patient_record(db_session, viewer=signed_in), own=True)

    @post("/messages", guards=[requires_role(Role.PATIENT)])
    async def write(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        fields = await form_fields(request, "body", max_length=service.MAX_BODY + 1)
        sent = await attempt(
            db_session, service.send(db_session, patient=patient, author=signed_in, body=fields["body"], actor=actor, now=clock.now())
        )
        if isinstance(sent, DomainError):
            return await _page(db_session, patient, own=True, error=sent, draft=fields["body"])
        return Redirect(path="/messages#latest")

    @get("/messages/waiting", guards=STAFF)
    async def waiting(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> Template:
        """Patients whose message has waited more than one business day for an answer."""
        return Template(
            "messages/waiting.html", context={"waiting": await service.unanswered(db_session, viewer=signed_in, now=clock.now())}
        )

    @get("/patients/{patient_id:uuid}/messages", guards=STAFF)
    async def staff_thread(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="messages"
        )
        return await _page(db_session, patient, own=False)

    @post("/patients/{patient_id:uuid}/messages", guards=STAFF)
    async def staff_write(
        self,
        patient_id: FromPath[uuid.UUID],
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="messages"
        )
        fields = await form_fields(request, "body", max_length=service.MAX_BODY + 1)
        sent = await attempt(
            db_session, service.send(db_session, patient=patient, author=signed_in, body=fields["body"], actor=actor, now=clock.now())
        )
        if isinstance(sent, DomainError):
            return await _page(db_session, patient, own=False, error=sent, draft=fields["body"])
        return Redirect(path=f"/patients/{patient_id}/messages#latest")
