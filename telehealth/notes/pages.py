"""A patient's clinical notes for the care team: therapists and prescribers write, coordinators read."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import load_patient_for
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.accounts.sessions import SignedIn
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.notes.service import MAX_NOTE, NOTE_WRITERS, notes_of, write_note

READERS = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]  # coordinators: operational facts, never notes
WRITERS = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]


async def _page(
    session: AsyncSession, patient: Patient, viewer: SignedIn, *, error: DomainError | None = None, draft: str = ""
) -> Template:
    return Template(
        "notes/notes.html",
        context={
            "patient": patient,
            "patient_name": (await patient_contact(session, patient.id)).full_name,
            "notes": await notes_of(session, patient=patient, reader=viewer),
            "may_keep_private": viewer.role is Role.THERAPIST,
            "may_write": viewer.role in NOTE_WRITERS,
            "zone": patient.timezone,
            "draft": draft,
            "error": error.detail if error else None,
            "fields": error.fields if error else {},
        },
        status_code=error.status_code if error else 200,
    )


class NotePagesController(Controller):
    include_in_schema = False

    @get("/patients/{patient_id:uuid}/notes", guards=READERS)
    async def read(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        patient = await load_patient_for(db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="notes")
        return await _page(db_session, patient, signed_in)

    @post("/patients/{patient_id:uuid}/notes", guards=WRITERS)
    async def write(
        self,
        patient_id: FromPath[uuid.UUID],
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await load_patient_for(db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="notes")
        fields = await form_fields(request, "body", "kind", max_length=MAX_NOTE + 1)
        written = await attempt(
            db_session,
            write_note(
                db_session,
                patient=patient,
                author=signed_in,
                body=fields["body"],
                actor=actor,
                now=clock.now(),
                kind=fields["kind"] or "shared",
            ),
        )
        if isinstance(written, DomainError):
            return await _page(db_session, patient, signed_in, error=written, draft=fields["body"])
        return Redirect(path=f"/patients/{patient_id}/notes")
