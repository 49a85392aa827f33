"""JSON API for coordinators: the clinic's pharmacies, its pharmacists with their pharmacy, and placing a
pharmacist in a pharmacy (pharmacy_staff.py holds the rule). The same form is on /coordinator/pharmacists."""

from __future__ import annotations

import uuid

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.prescribing import pharmacy_staff
from telehealth.prescribing.models import Pharmacy
from telehealth.prescribing.schemas import PharmacistBody, PharmacyAssignment, PharmacyBody


def pharmacy_body(pharmacy: Pharmacy | None) -> PharmacyBody | None:
    return PharmacyBody(id=pharmacy.id, name=pharmacy.name) if pharmacy else None


class PharmacyStaffApiController(Controller):
    tags = ["pharmacy"]
    guards = [requires_role(Role.COORDINATOR)]

    @get("/api/v1/pharmacies")
    async def list_pharmacies(self, db_session: NamedDependency[AsyncSession]) -> list[PharmacyBody]:
        """The partner pharmacies (their ids are what an assignment names)."""
        return [PharmacyBody(id=p.id, name=p.name) for p in await pharmacy_staff.pharmacies(db_session)]

    @get("/api/v1/pharmacists")
    async def list_pharmacists(self, db_session: NamedDependency[AsyncSession]) -> list[PharmacistBody]:
        """Every pharmacist account with its pharmacy; `pharmacy` null means it sees no queue yet."""
        return [
            PharmacistBody(
                id=e.pharmacist.id,
                full_name=e.pharmacist.full_name,
                email=e.pharmacist.email,
                is_active=e.pharmacist.is_active,
                pharmacy=pharmacy_body(e.pharmacy),
            )
            for e in await pharmacy_staff.pharmacists(db_session)
        ]

    @put("/api/v1/pharmacists/{pharmacist_id:uuid}/pharmacy")
    async def assign(
        self,
        pharmacist_id: FromPath[uuid.UUID],
        data: JSONBody[PharmacyAssignment],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> PharmacyBody:
        """Place the pharmacist in this pharmacy (moving them from any other): 422 `pharmacy_staff.invalid` naming
        `pharmacist_id` (not a pharmacist's account) or `pharmacy_id` (unknown). Audited."""
        pharmacy = await pharmacy_staff.assign_pharmacy(
            db_session, pharmacist_id=pharmacist_id, pharmacy_id=data.pharmacy_id, actor=actor, now=clock.now()
        )
        return PharmacyBody(id=pharmacy.id, name=pharmacy.name)
