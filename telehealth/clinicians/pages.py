"""The coordinator's credentials page: every clinician's NPI, zone, licenses, DEA registrations and telemedicine
special registrations with their expiry dates, and forms to add, renew and remove them (the same service calls as the JSON API);
pharmacists are placed in their pharmacy on prescribing's /coordinator/pharmacists."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.clinicians import service, special_registrations
from telehealth.clinicians.checks import LICENSE_TYPES, PRACTITIONER_SCHEDULES, dea_warnings, expiry_status, schedule_list
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, InvalidInput
from telehealth.lib.forms import attempt, form_fields, form_list
from telehealth.settings import Settings

PAGE = "/coordinator/clinicians"
LICENSE_FIELDS = ("state", "number", "license_type", "expires_on")
DEA_FIELDS = ("state", "number", "expires_on")
SPECIAL_FIELDS = ("state", "number", "expires_on")
DONE = {
    "profile": "Profile saved.",
    "license_added": "License added.",
    "license_saved": "License saved.",
    "license_removed": "License removed.",
    "dea_added": "DEA registration added.",
    "dea_saved": "DEA registration saved.",
    "dea_removed": "DEA registration removed.",
    "special_added": "Special registration added.",
    "special_saved": "Special registration saved.",
    "special_removed": "Special registration removed.",
}


def _expiry(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("clinician.invalid", "Some details need another look.", fields={"expires_on": "must be a date"}) from None


async def _page(
    db_session: AsyncSession,
    *,
    settings: Settings,
    clock: Clock,
    done: str | None = None,
    error: DomainError | None = None,
    error_for: uuid.UUID | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    today = service.clinic_today(clock.now(), settings)
    return Template(
        "clinicians/coordinator.html",
        context={
            "clinicians": await service.clinicians_with_credentials(db_session),
            "today": today,
            "status_of": lambda expires_on: expiry_status(expires_on, today=today),
            "dea_flags": lambda registration: dea_warnings(state=registration.state, schedules=registration.schedules),
            "schedule_list": schedule_list,
            "license_types": {role.value: kinds for role, kinds in LICENSE_TYPES.items()},
            "schedules": PRACTITIONER_SCHEDULES,
            "message": DONE.get(done or ""),
            "error": error.detail if error else None,
            "fields": error.fields if error else {},
            "error_for": error_for,
            "values": values or {},
        },
        status_code=error.status_code if error else 200,
    )


async def _submit(
    db_session: AsyncSession,
    action: Callable[[], Awaitable[object]],
    *,
    clinician_id: uuid.UUID,
    done: str,
    settings: Settings,
    clock: Clock,
    values: dict[str, Any] | None = None,
) -> Redirect | Template:
    """Run one service call in a savepoint: success goes back to the clinician's section, a refusal shows
    the page again with the reason next to that clinician's forms."""

    result = await attempt(db_session, action())
    if isinstance(result, DomainError):
        return await _page(db_session, settings=settings, clock=clock, error=result, error_for=clinician_id, values=values)
    return Redirect(path=f"{PAGE}?done={done}#clinician-{clinician_id}")


class ClinicianPagesController(Controller):
    include_in_schema = False
    path = PAGE
    guards = [requires_role(Role.COORDINATOR)]

    @get("/")
    async def credentials(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _page(db_session, settings=settings, clock=clock, done=done)

    @post("/{clinician_id:uuid}/profile")
    async def save_profile(
        self,
        request: Request,
        clinician_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, "npi", "timezone", max_length=100)
        return await _submit(
            db_session,
            lambda: service.update_profile(
                db_session, clinician_id=clinician_id, npi=fields["npi"], timezone=fields["timezone"], actor=actor, now=clock.now()
            ),
            clinician_id=clinician_id,
            done="profile",
            settings=settings,
            clock=clock,
        )

    @post("/{clinician_id:uuid}/licenses")
    async def add_license(
        self,
        request: Request,
        clinician_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, *LICENSE_FIELDS, max_length=100)

        async def add() -> object:
            return await service.add_license(
                db_session,
                clinician_id=clinician_id,
                state=fields["state"],
                number=fields["number"],
                license_type=fields["license_type"],
                expires_on=_expiry(fields["expires_on"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await _submit(
            db_session, add, clinician_id=clinician_id, done="license_added", settings=settings, clock=clock, values={"license": fields}
        )

    @post("/{clinician_id:uuid}/licenses/{license_id:uuid}")
    async def save_license(
        self,
        request: Request,
        clinician_id: FromPath[uuid.UUID],
        license_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, *LICENSE_FIELDS, max_length=100)

        async def save() -> object:
            return await service.update_license(
                db_session,
                clinician_id=clinician_id,
                license_id=license_id,
                state=fields["state"],
                number=fields["number"],
                license_type=fields["license_type"],
                expires_on=_expiry(fields["expires_on"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await _submit(db_session, save, clinician_id=clinician_id, done="license_saved", settings=settings, clock=clock)

    @post("/{clinician_id:uuid}/licenses/{license_id:uuid}/remove")
    async def remove_license(
        self,
        clinician_id: FromPath[uuid.UUID],
        license_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        return await _submit(
            db_session,
            lambda: service.remove_license(db_session, clinician_id=clinician_id, license_id=license_id, actor=actor, now=clock.now()),
            clinician_id=clinician_id,
            done="license_removed",
            settings=settings,
            clock=clock,
        )

    @post("/{clinician_id:uuid}/dea-registrations")
    async def add_dea(
        self,
        request: Request,
        clinician_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, *DEA_FIELDS, max_length=100)
        schedules = await form_list(request, "schedules", max_items=len(PRACTITIONER_SCHEDULES) + 2, max_length=10)

        async def add() -> object:
            return await service.add_dea_registration(
                db_session,
                clinician_id=clinician_id,
                state=fields["state"],
                number=fields["number"],
                schedules=schedules,
                expires_on=_expiry(fields["expires_on"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await _submit(
            db_session,
            add,
            clinician_id=clinician_id,
            done="dea_added",
            settings=settings,
            clock=clock,
            values={"dea": fields | {"schedules": schedules}},
        )

    @post("/{clinician_id:uuid}/dea-registrations/{registration_id:uuid}")
    async def save_dea(
        self,
        request: Request,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, *DEA_FIELDS, max_length=100)
        schedules = await form_list(request, "schedules", max_items=len(PRACTITIONER_SCHEDULES) + 2, max_length=10)

        async def save() -> object:
            return await service.update_dea_registration(
                db_session,
                clinician_id=clinician_id,
                registration_id=registration_id,
                state=fields["state"],
                number=fields["number"],
                schedules=schedules,
                expires_on=_expiry(fields["expires_on"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await _submit(db_session, save, clinician_id=clinician_id, done="dea_saved", settings=settings, clock=clock)

    @post("/{clinician_id:uuid}/dea-registrations/{registration_id:uuid}/remove")
    async def remove_dea(
        self,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        return await _submit(
            db_session,
            lambda: service.remove_dea_registration(
                db_session, clinician_id=clinician_id, registration_id=registration_id, actor=actor, now=clock.now()
            ),
            clinician_id=clinician_id,
            done="dea_removed",
            settings=settings,
            clock=clock,
        )

    @post("/{clinician_id:uuid}/special-registrations")
    async def add_special(
        self,
        request: Request,
        clinician_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, *SPECIAL_FIELDS, max_length=100)

        async def add() -> object:
            return await special_registrations.add_special_registration(
                db_session,
                clinician_id=clinician_id,
                state=fields["state"],
                number=fields["number"],
                expires_on=_expiry(fields["expires_on"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await _submit(
            db_session, add, clinician_id=clinician_id, done="special_added", settings=settings, clock=clock, values={"special": fields}
        )

    @post("/{clinician_id:uuid}/special-registrations/{registration_id:uuid}")
    async def save_special(
        self,
        request: Request,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, *SPECIAL_FIELDS, max_length=100)

        async def save() -> object:
            return await special_registrations.update_special_registration(
                db_session,
                clinician_id=clinician_id,
                registration_id=registration_id,
                state=fields["state"],
                number=fields["number"],
                expires_on=_expiry(fields["expires_on"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await _submit(db_session, save, clinician_id=clinician_id, done="special_saved", settings=settings, clock=clock)

    @post("/{clinician_id:uuid}/special-registrations/{registration_id:uuid}/remove")
    async def remove_special(
        self,
        clinician_id: FromPath[uuid.UUID],
        registration_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        return await _submit(
            db_session,
            lambda: special_registrations.remove_special_registration(
                db_session, clinician_id=clinician_id, registration_id=registration_id, actor=actor, now=clock.now()
            ),
            clinician_id=clinician_id,
            done="special_removed",
            settings=settings,
            clock=clock,
        )
