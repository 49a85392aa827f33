"""Notes are read and written through `load_patient_for`, so only the patient's care team reaches them
(coordinators and pharmacists never do). A therapist's psychotherapy notes are theirs alone; what the care
team reads is the shared kind (a prescriber's note, a therapist's summary for the team). Notes are
append-only: a correction is a new note."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Forbidden, InvalidInput
from telehealth.lib.validation import plain_text_problem
from telehealth.notes.models import ClinicalNote

MAX_NOTE = 8000
NOTE_WRITERS = frozenset({Role.PRESCRIBER, Role.THERAPIST})  # coordinators read; nobody else reaches a note


NOTE_KINDS = ("shared", "psychotherapy")


async def notes_of(session: AsyncSession, *, patient: Patient, reader: SignedIn) -> list[tuple[ClinicalNote, str, str]]:
    """The notes `reader` may read: every shared note, and their own psychotherapy notes."""
    rows = await session.execute(
        select(ClinicalNote, UserAccount.full_name, UserAccount.role)
        .join(UserAccount, col(UserAccount.id) == ClinicalNote.author_user_id)
        .where(ClinicalNote.patient_id == patient.id, (ClinicalNote.kind == "shared") | (ClinicalNote.author_user_id == reader.user_id))
        .order_by(col(ClinicalNote.written_at).desc())
    )
    return [(note, name, role) for note, name, role in rows.all()]


async def write_note(
    session: AsyncSession, *, patient: Patient, author: SignedIn, body: str, actor: Actor, now: datetime, kind: str = "shared"
) -> ClinicalNote:
    if author.role not in NOTE_WRITERS:
        raise Forbidden("clinical_note.not_a_writer", "Only therapists and prescribers write clinical notes.")
    if kind not in NOTE_KINDS or (kind == "psychotherapy" and author.role is not Role.THERAPIST):
        raise InvalidInput(
            "request.invalid", "Choose who the note is for.", fields={"kind": "must be shared, or psychotherapy (a therapist's own)"}
        )
    text = body.strip()
    if not text:
        raise InvalidInput("request.invalid", "Write the note first.", fields={"body": "is required"})
    if problem := plain_text_problem(text, longest=MAX_NOTE):
        raise InvalidInput("request.invalid", f"A note is plain text of at most {MAX_NOTE} characters.", fields={"body": problem})
    note = ClinicalNote(patient_id=patient.id, author_user_id=author.user_id, body=text, written_at=now, kind=kind)
    session.add(note)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="clinical_note.write",
        resource_type="clinical_note",
        resource_id=note.id,
        patient_id=patient.id,
        now=now,
    )
    return note
