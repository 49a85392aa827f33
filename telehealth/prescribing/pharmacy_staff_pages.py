"""The coordinator's pharmacists page: each pharmacist's pharmacy and a form to place them in one (the same
service call as PUT /api/v1/pharmacists/{id}/pharmacy; pharmacy_staff.py holds the rule). It was a section of
the credentials page until that page's area (clinicians) had to stop importing prescribing."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.prescribing import pharmacy_staff

PAGE = "/coordinator/pharmacists"


async def _page(
    db_session: AsyncSession, *, saved: bool = False, error: DomainError | None = None, error_for: uuid.UUID | None = None
) -> Template:
    return Template(
        "prescribing/pharmacists.html",
        context={
            "pharmacists": await pharmacy_staff.pharmacists(db_session),
            "pharmacies": await pharmacy_staff.pharmacies(db_session),
            "message": "Pharmacy saved." if saved else None,
            "error": error.detail if error else None,
            "fields": error.fields if error else {},
            "error_for": error_for,
        },
        status_code=error.status_code if error else 200,
    )


class PharmacistPagesController(Controller):
    include_in_schema = False
    path = PAGE
    guards = [requires_role(Role.COORDINATOR)]

    @get("/")
    async def pharmacists(self, db_session: NamedDependency[AsyncSession], done: FromQuery[str | None] = None) -> Template:
        return await _page(db_session, saved=done == "pharmacy")

    @post("/{pharmacist_id:uuid}/pharmacy")
    async def save_pharmacy(
        self,
        request: Request,
        pharmacist_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        """Place a pharmacist in a pharmacy; a refusal shows the page again with the reason beside their form."""
        fields = await form_fields(request, "pharmacy_id", max_length=100)
        try:
            pharmacy_id: uuid.UUID | None = uuid.UUID(fields["pharmacy_id"])
        except ValueError:
            pharmacy_id = None  # the service refuses it, naming the field
        result = await attempt(
            db_session,
            pharmacy_staff.assign_pharmacy(db_session, pharmacist_id=pharmacist_id, pharmacy_id=pharmacy_id, actor=actor, now=clock.now()),
        )
        if isinstance(result, DomainError):
            return await _page(db_session, error=result, error_for=pharmacist_id)
        return Redirect(path=f"{PAGE}?done=pharmacy#pharmacist-{pharmacist_id}")
