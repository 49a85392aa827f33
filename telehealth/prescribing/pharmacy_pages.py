"""HTML pages for the pharmacist's queue (only what filling needs, and each batch's next step) and the
patient's shipments. They call the same service functions as api.py and share the form helpers of pages.py."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.sessions import SignedIn
from telehealth.billing.models import Payment
from telehealth.billing.states import PaymentPurpose, PaymentStatus
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.prescribing import pharmacy, plans
from telehealth.prescribing.pages import BATCH_WORDS, PATIENT, PHARMACIST, _bounded, _check_lengths, _refusal_context, _refused
from telehealth.prescribing.states import BatchStatus

# --- The pharmacy --------------------------------------------------------------------------------------------


def _fill_values(fields: dict[str, str]) -> dict[str, Any]:
    problems = _check_lengths(fields)
    try:
        beyond_use = date.fromisoformat(fields["beyond_use_date"])
    except ValueError:
        problems["beyond_use_date"] = "must be a date"
    units = _bounded(fields["units"])
    if units is None:
        problems["units"] = "must be a whole number"
    if problems:
        raise _refused(problems, "Some fill details need another look.")
    return {"lot_number": fields["lot_number"], "beyond_use_date": beyond_use, "units": units}


BATCH_ACTIONS: dict[str, Callable[..., Awaitable[Any]]] = {
    "accept": lambda s, batch_id, fields, **kw: pharmacy.accept(s, batch_id=batch_id, **kw),
    "reject": lambda s, batch_id, fields, **kw: pharmacy.reject(s, batch_id=batch_id, reason=fields["reason"], **kw),
    "fill": lambda s, batch_id, fields, **kw: pharmacy.fill(s, batch_id=batch_id, **_fill_values(fields), **kw),
    "ship": lambda s, batch_id, fields, **kw: pharmacy.ship(
        s,
        batch_id=batch_id,
        carrier=fields["carrier"],
        tracking_number=fields["tracking_number"],
        signature_required=fields["signature_required"] == "yes",
        **kw,
    ),
    "deliver": lambda s, batch_id, fields, **kw: pharmacy.deliver(s, batch_id=batch_id, **kw),
}


async def _queue_page(
    session: AsyncSession,
    signed_in: SignedIn,
    actor: Actor,
    *,
    now: datetime,
    refusal: DomainError | None = None,
    batch_id: uuid.UUID | None = None,
    action: str | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
) -> Template:
    found = await pharmacy.queue(session, pharmacist_id=signed_in.user_id, actor=actor, now=now)
    return Template(
        "prescribing/pharmacy.html",
        context={
            "items": found.items,
            "pharmacy": found.pharmacy,
            "notice": found.notice,
            "batch_words": BATCH_WORDS,
            "refused_batch": batch_id,
            "action": action,
            "values": values or {},
            "done": done,
            **_refusal_context(refusal),
        },
        status_code=refusal.status_code if refusal else 200,
    )


class PharmacyPagesController(Controller):
    include_in_schema = False
    guards = PHARMACIST

    @get("/pharmacy")
    async def queue(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
        done: FromQuery[str | None] = None,
    ) -> Template:
        """Your pharmacy's batches with only what filling needs, and each one's next step (the read is audited)."""
        return await _queue_page(db_session, signed_in, actor, now=clock.now(), done=done)

    @post("/pharmacy/batches/{batch_id:uuid}/{action:str}")
    async def act(
        self,
        request: Request,
        batch_id: FromPath[uuid.UUID],
        action: FromPath[str],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """accept, reject (reason), fill (lot, beyond-use date, units), ship (carrier, tracking, signature), deliver."""
        step = BATCH_ACTIONS.get(action)
        if step is None:
            return await _queue_page(
                db_session, signed_in, actor, now=clock.now(), refusal=_refused({}, "That is not a step a batch can take.")
            )
        fields = await form_fields(
            request, "reason", "lot_number", "beyond_use_date", "units", "carrier", "tracking_number", "signature_required", max_length=4000
        )

        async def work() -> Any:
            if problems := _check_lengths(fields):
                raise _refused(problems)
            return await step(db_session, batch_id, fields, pharmacist_id=signed_in.user_id, actor=actor, now=clock.now())

        result = await attempt(db_session, work())
        if isinstance(result, DomainError):
            return await _queue_page(
                db_session, signed_in, actor, now=clock.now(), refusal=result, batch_id=batch_id, action=action, values=fields
            )
        return Redirect(path=f"/pharmacy?done={action}", status_code=303)


# --- The patient's shipments ---------------------------------------------------------------------------------


class ShipmentPagesController(Controller):
    include_in_schema = False
    guards = PATIENT

    @get("/shipments")
    async def shipments(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        """The live plan's shipments: status and tracking, nothing of doses (as the JSON API)."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        plan = await plans.live_plan(db_session, patient_id=patient.id)
        batches = [b for b in await plans.batches_of(db_session, plan_id=plan.id) if b.status != BatchStatus.CANCELLED] if plan else []
        fee_due = None
        if plan is not None:
            fee_due = await db_session.scalar(
                select(Payment.id).where(
                    Payment.plan_id == plan.id, Payment.purpose == PaymentPurpose.PROGRAM, Payment.status == PaymentStatus.OPEN
                )
            )
        return Template("prescribing/shipments.html", context={"batches": batches, "fee_due": fee_due, "zone": patient.timezone})
