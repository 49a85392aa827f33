"""JSON API of clinician credentials, for coordinators: profiles (NPI, zone), state licenses, DEA registrations,
telemedicine special registrations."""

from __future__ import annotations

import uuid
from datetime import date

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.clinicians import service, special_registrations
from telehealth.clinicians.checks import dea_warnings, expiry_status, schedule_list
from telehealth.clinicians.models import ClinicianProfile, DeaRegistration, SpecialRegistration, StateLicense
from telehealth.clinicians.schemas import (
    ClinicianBody,
    CredentialWarning,
    DeaBody,
    DeaRequest,
    LicenseBody,
    LicenseRequest,
    ProfileBody,
    ProfileUpdate,
    SpecialRegistrationBody,
    SpecialRegistrationRequest,
)
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.us_states import US_STATES
from telehealth.settings import Settings


def license_body(license: StateLicense, *, today: date) -> LicenseBody:
    return LicenseBody(
        id=license.id,
        state=license.state,
        state_name=US_STATES.get(license.state, license.state),
        number=license.number,
        license_type=license.license_type,
        expires_on=license.expires_on,
        expiry_status=expiry_status(license.expires_on, today=today),
    )


def dea_body(registration: DeaRegistration, *, today: date) -> DeaBody:
    warnings = dea_warnings(state=registration.state, schedules=registration.schedules)
    return DeaBody(
        id=registration.id,
        state=registration.state,
        state_name=US_STATES.get(registration.state, registration.state),
        number=registration.number,
        schedules=schedule_list(registration.schedules),
        expires_on=registration.expires_on,
        expiry_status=expiry_status(registration.expires_on, today=today),
        covers_schedule_iii=not warnings,
        warnings=[CredentialWarning(code=code, detail=detail) for code, detail in warnings],
    )


def special_registration_body(registration: SpecialRegistration, *, today: date) -> SpecialRegistrationBody:
    return SpecialRegistrationBody(
        id=registration.id,
        state=registration.state,
        state_name=US_STATES.get(registration.state, registration.state),
        number=registration.number,
        expires_on=registration.expires_on,
        expiry_status=expiry_status(registration.expires_on, today=today),
    )


def clinician_body(entry: service.ClinicianCredentials, *, today: date) -> ClinicianBody:
    clinician, profile = entry.clinician, entry.profile
    return ClinicianBody(
        id=clinician.id,
        full_name=clinician.full_name,
        email=clinician.email,
        role=clinician.role,
        is_active=clinician.is_active,
        npi=profile.npi if profile else None,
        timezone=profile.timezone if profile else None,
        licenses=[license_body(license, today=today) for license in entry.licenses],
        dea_registrations=[dea_body(registration, today=today) for registration in entry.dea_registrations],
        special_registrations=[special_registration_body(registration, today=today) for registration in entry.special_registrations],
    )


def profile_body(clinician_id: uuid.UUID, profile: ClinicianProfile | None) -> ProfileBody:
    return ProfileBody(clinician_id=clinician_id, npi=profile.npi if profile else None, timezone=profile.timezone if profile else None)


class ClinicianApiController(Controller):
    path = "/api/v1/clinicians"
    tags = ["clinicians"]
    guards = [requires_role(Role.COORDINATOR)]

    @get("/")
    async def list_clinicians(
        self, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings], clock: NamedDependency[Clock]
    ) -> list[ClinicianBody]:
        """Every prescriber and therapist with NPI, zone, licenses and DEA registrations, and how soon each expires."""
        today = service.clinic_today(clock.now(), settings)
        return [clinician_body(entry, today=today) for entry in await service.clinicians_with_credentials(db_session)]

    @get("/{clinician_id:uuid}")
    async def one_clinician(
        self,
        clinician_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> ClinicianBody:
        (entry,) = await service.clinicians_with_credentials(db_session, clinician_id=clinician_id)
        return clinician_body(entry, today=service.clinic_today(clock.now(), settings))

    @get("/{clinician_id:uuid}/profile")
    async def profile(self, clinician_id: FromPath[uuid.UUID], db_session: NamedDependency[AsyncSession]) -> ProfileBody:
        await service.load_clinician(db_session, clinician_id)
        return profile_body(clinician_id, await db_session.get(ClinicianProfile, clinician_id))

    @put("/{clinician_id:uuid}/profile")
    async def change_profile(
        self,
        clinician_id: FromPath[uuid.UUID],
        data: JSONBody[ProfileUpdate],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> ProfileBody:
        """Set the NPI (null clears it; the check digit is verified) and the zone weekly hours are read in."""
        profile = await service.update_profile(
            db_session, clinician_id=clinician_id, npi=data.npi, timezone=data.timezone, actor=actor, now=clock.now()
        )
        return profile_body(clinician_id, profile)

    @post("/{clinician_id:uuid}/licenses", status_code=201)
    async def add_license(
        self,
        clinician_id: FromPath[uuid.UUID],
        data: JSONBody[LicenseRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> LicenseBody:
        """A state license. One per state and type: a second answers 409 `clinician.license_exists` (renew it)."""
        license = await service.add_license(
            db_session,
            clinician_id=clinician_id,
            state=data.state,
            number=data.number,
            license_type=data.license_type,
            expires_on=data.expires_on,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return license_body(license, today=service.clinic_today(clock.now(), settings))

    @put("/{clinician_id:uuid}/licenses/{license_id:uuid}")
    async def change_license(
        self,
        clinician_id: FromPath[uuid.UUID],
        license_id: FromPath[uuid.UUID],
        data: JSONBody[LicenseRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> LicenseBody:
        """Replace a license's details, e.g. renew it with a later `expires_on`."""
        license = await service.update_license(
            db_session,
            clinician_id=clinician_id,
            license_id=license_id,
            state=data.state,
            number=data.number,
            license_type=data.license_type,
            expires_on=data.expires_on,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return license_body(license, today=service.clinic_today(clock.now(), settings))

    @delete("/{clinician_id:uuid}/licenses/{license_id:uuid}", status_code=204)
    async def remove_license(
        self,
        clinician_id: FromPath[uuid.UUID],
        license_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> None:
        await service.remove_license(db_session, clinician_id=clinician_id, license_id=license_id, actor=actor, now=clock.now())

    @post("/{clinician_id:uuid}/dea-registrations", status_code=201)
    async def add_dea(
        self,
        clinician_id: FromPath[uuid.UUID],
        data: JSONBody[DeaRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> DeaBody:
        """A prescriber's DEA registration in a state. Without Schedule III it is saved with the warning
        `dea.no_schedule_iii` (it cannot prescribe ketamine)."""
        registration = await service.add_dea_registration(
            db_session,
            clinician_id=clinician_id,
            state=data.state,
            number=data.number,
            schedules=data.schedules,
            expires_on=data.expires_on,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return dea_body(registration, today=service.clinic_today(clock.now(), settings))

    @put("/{clinician_id:uuid}/dea-registrations/{registration_id:uuid}")
    async def change_dea(
        self,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        data: JSONBody[DeaRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> DeaBody:
        registration = await service.update_dea_registration(
            db_session,
            clinician_id=clinician_id,
            registration_id=registration_id,
            state=data.state,
            number=data.number,
            schedules=data.schedules,
            expires_on=data.expires_on,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return dea_body(registration, today=service.clinic_today(clock.now(), settings))

    @delete("/{clinician_id:uuid}/dea-registrations/{registration_id:uuid}", status_code=204)
    async def remove_dea(
        self,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> None:
        await service.remove_dea_registration(
            db_session, clinician_id=clinician_id, registration_id=registration_id, actor=actor, now=clock.now()
        )

    @post("/{clinician_id:uuid}/special-registrations", status_code=201)
    async def add_special_registration(
        self,
        clinician_id: FromPath[uuid.UUID],
        data: JSONBody[SpecialRegistrationRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SpecialRegistrationBody:
        """A prescriber's DEA telemedicine special registration in a state (one per state: a second answers 409
        `clinician.special_registration_exists`). After the telemedicine flexibilities end it lets them sign
        plans for patients in that state without an in-person evaluation."""
        registration = await special_registrations.add_special_registration(
            db_session,
            clinician_id=clinician_id,
            state=data.state,
            number=data.number,
            expires_on=data.expires_on,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return special_registration_body(registration, today=service.clinic_today(clock.now(), settings))

    @put("/{clinician_id:uuid}/special-registrations/{registration_id:uuid}")
    async def change_special_registration(
        self,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        data: JSONBody[SpecialRegistrationRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SpecialRegistrationBody:
        registration = await special_registrations.update_special_registration(
            db_session,
            clinician_id=clinician_id,
            registration_id=registration_id,
            state=data.state,
            number=data.number,
            expires_on=data.expires_on,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return special_registration_body(registration, today=service.clinic_today(clock.now(), settings))

    @delete("/{clinician_id:uuid}/special-registrations/{registration_id:uuid}", status_code=204)
    async def remove_special_registration(
        self,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> None:
        """Remove one; a registration a signed plan rests on answers 409 `clinician.special_registration_cited`."""
        await special_registrations.remove_special_registration(
            db_session, clinician_id=clinician_id, registration_id=registration_id, actor=actor, now=clock.now()
        )
