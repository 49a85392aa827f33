"""The landing page of each role. Each later issue adds its own sections to these pages."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import current_user, requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.care_teams import service as care_teams
from telehealth.clinicians.expiry import expiring_credentials
from telehealth.clinicians.service import clinic_today
from telehealth.intake.escalations import count_open_escalations
from telehealth.lib.clock import Clock
from telehealth.portal import dashboards
from telehealth.portal.journey import patient_journey
from telehealth.prescribing.cliff import home_summary
from telehealth.settings import Settings

ROLE_HOME = {role: f"/{role.value}" for role in Role}


async def _staff_home(template: str, signed_in: SignedIn, db_session: AsyncSession, **more: object) -> Template:
    waiting = await count_open_escalations(db_session, viewer=signed_in)
    return Template(f"portal/{template}.html", context={"user": signed_in, "open_escalations": waiting, **more})


class PortalPagesController(Controller):
    include_in_schema = False

    @get("/")
    async def index(self, request: Request) -> Redirect:
        user = current_user(request)
        if user is None:
            return Redirect(path="/sign-in")
        return Redirect(path=ROLE_HOME[user.role])

    @get("/patient", guards=[requires_role(Role.PATIENT)])
    async def patient_home(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)
        return Template(
            "portal/patient.html",
            context={
                "user": signed_in,
                "journey": await patient_journey(db_session, patient, now=clock.now()),
                "zone": patient.timezone,
                "now": clock.now(),
                "care_team": await care_teams.members(db_session, patient_id=patient.id),
            },
        )

    @get("/prescriber", guards=[requires_role(Role.PRESCRIBER)])
    async def prescriber_home(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        today = clinic_today(clock.now(), settings)
        expiring = [item for item in await expiring_credentials(db_session, today=today) if item.clinician_id == signed_in.user_id]
        work = await dashboards.prescriber_home(db_session, signed_in, now=clock.now(), settings=settings)
        cliff = await home_summary(db_session, now=clock.now(), settings=settings, prescriber_id=signed_in.user_id)
        return await _staff_home("prescriber", signed_in, db_session, expiring_credentials=expiring, basis_cliff=cliff, **work)

    @get("/therapist", guards=[requires_role(Role.THERAPIST)])
    async def therapist_home(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        work = await dashboards.therapist_home(db_session, signed_in, now=clock.now(), settings=settings)
        return await _staff_home("therapist", signed_in, db_session, **work)

    @get("/pharmacist", guards=[requires_role(Role.PHARMACIST)])
    async def pharmacist_home(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        return Template("portal/pharmacist.html", context={"user": signed_in, **await dashboards.pharmacist_home(db_session, signed_in)})

    @get("/coordinator", guards=[requires_role(Role.COORDINATOR)])
    async def coordinator_home(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        expiring = await expiring_credentials(db_session, today=clinic_today(clock.now(), settings))
        work = await dashboards.coordinator_home(db_session, signed_in, now=clock.now(), settings=settings)
        cliff = await home_summary(db_session, now=clock.now(), settings=settings)
        return await _staff_home("coordinator", signed_in, db_session, expiring_credentials=expiring, basis_cliff=cliff, **work)
