"""Outcome pages: the patient's own charts, a patient's charts for their care team (beside the home
sessions and doses), and the coordinator's de-identified program report with its CSV."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import load_patient_for, own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.accounts.sessions import SignedIn
from telehealth.dosing.models import DosingSession
from telehealth.dosing.states import SessionStatus
from telehealth.intake.questionnaires import QUESTIONNAIRES, REMISSION_BELOW
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.outcomes.charts import score_chart
from telehealth.outcomes.service import TRACKED, outcomes_csv, program_outcomes, score_history
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.reassessment import score_change

CARE_TEAM = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]  # load_patient_for narrows to the care team


async def _charts(session: AsyncSession, patient: Patient) -> list[dict[str, Any]]:
    history = await score_history(session, patient_id=patient.id)
    charts = []
    for key in TRACKED:
        points = history[key]
        change = score_change(key, [p.score for p in points]) if points else None
        charts.append(
            {
                "key": key,
                "title": QUESTIONNAIRES[key].title,
                "points": points,
                "change": change,
                "remission_below": REMISSION_BELOW[key],
                "svg": score_chart(QUESTIONNAIRES[key], points, zone=patient.timezone, chart_id=f"chart-{key}"),
            }
        )
    return charts


async def _doses(session: AsyncSession, patient_id: uuid.UUID) -> list[tuple[DosingSession, int]]:
    """Each session taken, with its dose: what the care team reads beside the scores."""
    rows = await session.execute(
        select(DosingSession, TrochePlan.doses_mg)
        .join(TrochePlan, col(TrochePlan.id) == DosingSession.plan_id)
        .where(DosingSession.patient_id == patient_id, col(DosingSession.status).in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED]))
        .order_by(col(DosingSession.unlocked_at))
    )
    return [(row, doses[row.number - 1]) for row, doses in rows.all()]


class OutcomePagesController(Controller):
    include_in_schema = False

    @get("/outcomes", guards=[requires_role(Role.PATIENT)])
    async def own(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        """Your PHQ-9 and GAD-7 since you started."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        return Template(
            "outcomes/patient.html", context={"charts": await _charts(db_session, patient), "zone": patient.timezone, "own": True}
        )

    @get("/patients/{patient_id:uuid}/outcomes", guards=CARE_TEAM)
    async def patient(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="outcomes"
        )
        return Template(
            "outcomes/patient.html",
            context={
                "charts": await _charts(db_session, patient),
                "zone": patient.timezone,
                "own": False,
                "patient_name": (await patient_contact(db_session, patient.id)).full_name,
                "doses": await _doses(db_session, patient.id),
                "patient_id": patient.id,
            },
        )

    @get("/coordinator/outcomes", guards=[requires_role(Role.COORDINATOR)])
    async def program(self, db_session: NamedDependency[AsyncSession]) -> Template:
        """The program's outcomes, de-identified: counts and rates only."""
        return Template("outcomes/program.html", context={"report": await program_outcomes(db_session)})

    @get("/coordinator/outcomes.csv", guards=[requires_role(Role.COORDINATOR)])
    async def program_csv(self, db_session: NamedDependency[AsyncSession]) -> Response[str]:
        return Response(
            outcomes_csv(await program_outcomes(db_session)),
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="program-outcomes.csv"'},
        )
