"""The record to take away: the patient's own (summary page and FHIR download) and, for transfer of care,
one patient's record exported by a prescriber or coordinator (each export audited)."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import load_patient_for, own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.billing.policy import dollars
from telehealth.export import fhir
from telehealth.export.record import collect
from telehealth.export.summary import summary_context
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.settings import Settings

TRANSFER_ROLES = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]  # the care team (load_patient_for); coordinators never read the record


async def _summary(session: AsyncSession, patient: Patient, *, own: bool, printable: bool, clock: Clock) -> Template:
    """The page, or (`?print=1`) the same sections alone on a page made for printing."""
    record = await collect(session, patient=patient)
    base = "/record" if own else f"/patients/{patient.id}/record"
    context = {
        "record": record,
        "zone": patient.timezone,
        "own": own,
        "dollars": dollars,
        "printed_at": clock.now(),
        "print_url": f"{base}?print=1",
        "fhir_url": f"{base}/fhir.json",
        "back_url": base,
        **summary_context(record),
    }
    return Template("export/print.html" if printable else "export/summary.html", context=context)


async def _download(session: AsyncSession, patient: Patient, *, settings: Settings, clock: Clock) -> Response[str]:
    body = fhir.bundle(await collect(session, patient=patient), base_url=settings.public_base_url, now=clock.now())
    return Response(
        body,
        media_type="application/fhir+json",
        headers={
            "content-disposition": 'attachment; filename="my-record.fhir.json"',
            "cache-control": "no-store",
        },
    )


class RecordPagesController(Controller):
    include_in_schema = False

    @get("/record", guards=[requires_role(Role.PATIENT)])
    async def own_summary(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
        print: FromQuery[bool] = False,
    ) -> Template:
        """Your record in plain words (print it, or save it as a PDF from the print dialog; ?print=1 is the print view)."""
        return await _summary(db_session, await own_patient_record(db_session, viewer=signed_in), own=True, printable=print, clock=clock)

    @get("/record/fhir.json", guards=[requires_role(Role.PATIENT)])
    async def own_fhir(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[str]:
        patient = await own_patient_record(db_session, viewer=signed_in)
        await record_audit_event(
            db_session,
            actor=actor,
            action="patient.record.export",
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
            now=clock.now(),
            reason="own",
        )
        return await _download(db_session, patient, settings=settings, clock=clock)

    @get("/patients/{patient_id:uuid}/record", guards=TRANSFER_ROLES)
    async def staff_summary(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
        print: FromQuery[bool] = False,
    ) -> Template:
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="summary"
        )
        return await _summary(db_session, patient, own=False, printable=print, clock=clock)

    @get("/patients/{patient_id:uuid}/record/fhir.json", guards=TRANSFER_ROLES)
    async def staff_fhir(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[str]:
        """Transfer of care: one patient's record as FHIR (audited as patient.record.export)."""
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="export"
        )
        return await _download(db_session, patient, settings=settings, clock=clock)
