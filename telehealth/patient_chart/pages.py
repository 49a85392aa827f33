"""The clinician's page for one patient. Prescribers and therapists only (coordinators have their operational
pages: 403); within those, `load_patient_for` admits the patient's current care team and live break-glass
grants (404 for anyone else) and audits the read as patient.record.chart."""

from __future__ import annotations

import uuid

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import Access, load_patient_for
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.clinicians.service import clinician_zone
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.patient_chart.service import patient_chart
from telehealth.settings import Settings

CLINICIANS = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]


class PatientChartPagesController(Controller):
    include_in_schema = False

    @get("/patients/{patient_id:uuid}", guards=CLINICIANS)
    async def show(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        """Everything the care team needs about one patient, each part linking to its own page."""
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="chart", access=Access.CLINICAL
        )
        chart = await patient_chart(db_session, patient=patient, viewer=signed_in, now=clock.now())
        return Template(
            "patient_chart/patient.html",
            context={
                "chart": chart,
                "reader": signed_in,
                "zone": await clinician_zone(db_session, signed_in.user_id, settings),
            },
        )
