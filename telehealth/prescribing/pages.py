"""HTML pages for prescribing: the prescriber's encounter (chart, checks, flag notes, decision, plan writer),
and the plan page (sign with password + code on the same form). Its other forms (pause, resume, discontinue,
release a batch) post to dosing's `plan_changes_pages.py`, through `act_on_plan` here. The pharmacist's
queue and the patient's shipments are in `pharmacy_pages.py`. Each page calls the same service functions
as api.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.accounts.sessions import SignedIn
from telehealth.clinicians.service import clinician_zone
from telehealth.intake.sections import SECTIONS, vitals_in_words
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, InvalidInput
from telehealth.lib.forms import attempt, form_fields
from telehealth.lib.validation import parse_whole_number
from telehealth.prescribing import basis, encounters, plans
from telehealth.prescribing.models import Encounter, Pharmacy, TrochePlan
from telehealth.prescribing.rules import PRODUCTS, batches_for
from telehealth.prescribing.states import LIVE_PLAN, Decision, PlanStatus
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.visits import visit_evidence
from telehealth.settings import Settings

PRESCRIBER = [requires_role(Role.PRESCRIBER)]
PHARMACIST = [requires_role(Role.PHARMACIST)]
PATIENT = [requires_role(Role.PATIENT)]

# What each service field is called on the forms, so a refusal names the field the way the page does.
PLAN_WORDS = {
    "draft": "Draft (not signed)",
    "signed": "Signed",
    "sent_to_pharmacy": "Sent to pharmacy",
    "active": "Active",
    "paused": "Paused",
    "completed": "Completed",
    "discontinued": "Discontinued",
}
BATCH_WORDS = {
    "held": "Held until the earlier sessions are reported",
    "queued": "Waiting for the pharmacy",
    "accepted": "Accepted by the pharmacy",
    "rejected": "Rejected by the pharmacy",
    "filled": "Filled, ready to ship",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
}
# The longest text each form field may carry (the columns' sizes); longer is refused by name, never cut.
LIMITS = {
    "identity_method": 200,
    "pdmp_reference": 100,
    "pdmp_summary": 2000,
    "vitals_note": 2000,
    "note": 2000,
    "reason": 1000,
    "directions": 1000,
    "password": 200,
    "code": 10,
    "override_reason": 1000,
    "lot_number": 60,
    "carrier": 60,
    "tracking_number": 100,
}


def _refused(problems: dict[str, str], detail: str = "Some details need another look.") -> InvalidInput:
    return InvalidInput("request.invalid", detail, fields=problems)


def _check_lengths(fields: dict[str, str]) -> dict[str, str]:
    return {
        name: f"must be at most {LIMITS[name]} characters" for name, value in fields.items() if name in LIMITS and len(value) > LIMITS[name]
    }


def _whole_numbers(raw: str, *, most: int, largest: int) -> list[int] | None:
    """'100, 150, 200' -> [100, 150, 200]; None when it is not a short list of whole numbers."""
    numbers = [parse_whole_number(part) for part in re.split(r"[,\s]+", raw.strip()) if part]
    if not numbers or len(numbers) > most or any(n is None or n > largest for n in numbers):
        return None
    return [n for n in numbers if n is not None]  # all of them (checked above)


def _bounded(raw: str, *, largest: int = 99_999) -> int | None:
    """A whole number from a form field, small enough for its column; None otherwise (a field error)."""
    number = parse_whole_number(raw)
    return number if number is not None and number <= largest else None


def _refusal_context(refusal: DomainError | None) -> dict[str, Any]:
    """The summary at the top names each field as the form does (the field_words filter); `field_reasons` puts each
    reason beside its field."""
    if refusal is None:
        return {"error": None, "fields": {}, "error_fields": set(), "field_reasons": {}}
    return {
        "error": refusal.detail,
        "fields": dict(refusal.fields),
        "error_fields": set(refusal.fields),
        "field_reasons": dict(refusal.fields),
    }


async def _patient_name(session: AsyncSession, patient_id: uuid.UUID) -> str:
    return (await patient_contact(session, patient_id)).full_name


# --- The encounter -------------------------------------------------------------------------------------------


def _record_values(fields: dict[str, str], zone: str) -> encounters.EncounterRecord:
    problems = _check_lengths(fields)
    checked_at = None
    if fields["pdmp_checked_at"]:
        try:
            checked_at = datetime.fromisoformat(fields["pdmp_checked_at"])
            checked_at = (checked_at.replace(tzinfo=ZoneInfo(zone)) if checked_at.tzinfo is None else checked_at).astimezone(UTC)
        except ValueError:
            problems["pdmp_checked_at"] = "must be a date and a time"
    if problems:
        raise _refused(problems)
    yes_no = {"yes": True, "no": False}
    return encounters.EncounterRecord(
        identity_checked=yes_no.get(fields["identity_checked"]),
        identity_method=fields["identity_method"].strip() or None,
        location_state=fields["location_state"] or None,
        pdmp_checked_at=checked_at,
        pdmp_state=fields["pdmp_state"] or None,
        pdmp_reference=fields["pdmp_reference"].strip() or None,
        pdmp_summary=fields["pdmp_summary"].strip() or None,
        vitals_reviewed=yes_no.get(fields["vitals_reviewed"]),
        vitals_note=fields["vitals_note"].strip() or None,
    )


def _plan_values(fields: dict[str, str]) -> dict[str, Any]:
    problems = _check_lengths(fields)
    doses = _whole_numbers(fields["doses_mg"], most=100, largest=100_000)
    if doses is None:
        problems["doses_mg"] = "list one dose in mg per session, separated by commas, e.g. 100, 150, 200"
    shipments = _whole_numbers(fields["shipment_sessions"], most=100, largest=100) if fields["shipment_sessions"].strip() else None
    if fields["shipment_sessions"].strip() and shipments is None:
        problems["shipment_sessions"] = "list the sessions in each shipment, separated by commas, e.g. 3,3"
    strength = _bounded(fields["strength_mg"])
    if strength is None:
        problems["strength_mg"] = "choose a strength"
    hours = _bounded(fields["min_hours_between"])
    if hours is None:
        problems["min_hours_between"] = "must be a whole number of hours"
    try:
        pharmacy_id = uuid.UUID(fields["pharmacy_id"]) if fields["pharmacy_id"] else None
    except ValueError:
        problems["pharmacy_id"] = "choose one of the clinic's pharmacies"
    if problems:
        raise _refused(problems)
    return {
        "product": fields["product"],
        "strength_mg": strength,
        "doses_mg": doses,
        "min_hours_between": hours,
        "directions": fields["directions"],
        "shipment_sessions": shipments,
        "pharmacy_id": pharmacy_id,
    }


def _decision(raw: str) -> Decision:
    try:
        return Decision(raw)
    except ValueError:
        raise _refused({"decision": "choose start a plan, decline, or refer out"}, "Choose the decision.") from None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def _needs_recorded_basis(session: AsyncSession, encounter: Encounter, *, now: datetime, settings: Settings) -> bool:
    """Today, where the patient is, is past the telemedicine flexibilities: signing will ask for a recorded basis
    (basis.basis_for_signing decides at the signature; this only warns ahead of it)."""
    if not encounter.location_state:
        return False
    patient = await session.get(Patient, encounter.patient_id)
    day, _zone = basis.day_in_state(now, state=encounter.location_state, patient_timezone=patient.timezone if patient else None)
    return not basis.flexibilities_cover(day, settings)


async def _encounter_page(
    session: AsyncSession,
    encounter: Encounter,
    *,
    signed_in: SignedIn,
    actor: Actor,
    settings: Settings,
    now: datetime,
    refusal: DomainError | None = None,
    form: str | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
) -> Template:
    chart = await encounters.chart(session, encounter, signed_in=signed_in, actor=actor, now=now)
    for row in chart["scores"]:
        row["answered_at"] = _when(row["answered_at"])
    for row in chart["appointments"]:
        row["starts_at"] = _when(row["starts_at"])
    own_plans = list(
        (
            await session.execute(select(TrochePlan).where(TrochePlan.encounter_id == encounter.id).order_by(col(TrochePlan.created_at)))
        ).scalars()
    )
    signed = any(plan.signed_at is not None for plan in own_plans)
    blocker = await encounters.prescribing_blocker(session, encounter, now=now, settings=settings)
    zone = await clinician_zone(session, signed_in.user_id, settings)
    return Template(
        "prescribing/encounter.html",
        context={
            "encounter": encounter,
            "appointment": await session.get(Appointment, encounter.appointment_id),
            "chart": chart,
            "sections": SECTIONS,
            "visit": await visit_evidence(session, encounter.appointment_id),
            "intake_vitals": vitals_in_words(chart["intake"]),
            "needs_recorded_basis": await _needs_recorded_basis(session, encounter, now=now, settings=settings),
            "zone": zone,
            "blocker": blocker if encounter.decision in (None, Decision.START_PLAN) and not signed else None,
            "pdmp_local": encounter.pdmp_checked_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
            if encounter.pdmp_checked_at
            else "",
            "now_local": now.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M"),
            "plans": own_plans,
            "plan_words": PLAN_WORDS,
            # The page shows one draft at a time; the API may hold alternatives (only signing is exclusive).
            "may_write": encounter.decision == Decision.START_PLAN
            and not any(p.status in (PlanStatus.DRAFT, *LIVE_PLAN) for p in own_plans),
            "products": PRODUCTS,
            "strengths": settings.troche_strengths,
            "pharmacies": list((await session.execute(select(Pharmacy).order_by(Pharmacy.name))).scalars()),
            "form": form,
            "values": values or {},
            "done": done,
            **_refusal_context(refusal),
        },
        status_code=refusal.status_code if refusal else 200,
    )


class EncounterPagesController(Controller):
    include_in_schema = False
    guards = PRESCRIBER

    @post("/appointments/{appointment_id:uuid}/encounter")
    async def open(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Redirect:
        """From the calendar: open (or reopen) the encounter of this consult or reassessment."""
        encounter = await encounters.open_encounter(
            db_session, appointment_id=appointment_id, signed_in=signed_in, actor=actor, now=clock.now()
        )
        return Redirect(path=f"/encounters/{encounter.id}", status_code=303)

    @get("/encounters/{encounter_id:uuid}")
    async def show(
        self,
        encounter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        done: FromQuery[str | None] = None,
    ) -> Template:
        """The chart (the read is audited), the checks, the flag notes, the decision and the plan writer."""
        encounter = await encounters.own_encounter(db_session, encounter_id=encounter_id, signed_in=signed_in)
        return await _encounter_page(db_session, encounter, signed_in=signed_in, actor=actor, settings=settings, now=clock.now(), done=done)

    async def _act(
        self,
        session: AsyncSession,
        encounter_id: uuid.UUID,
        *,
        form: str,
        values: dict[str, str],
        signed_in: SignedIn,
        actor: Actor,
        settings: Settings,
        clock: Clock,
        work: Callable[[Encounter], Awaitable[Any]],
    ) -> Template | Redirect:
        """Run one service call on the locked encounter; a refusal shows the page again with the message and the typed values."""
        encounter = await encounters.own_encounter(session, encounter_id=encounter_id, signed_in=signed_in, lock=True)
        result = await attempt(session, work(encounter))
        if isinstance(result, DomainError):
            await session.refresh(encounter)  # a rolled-back savepoint leaves its changes expired
            return await _encounter_page(
                session,
                encounter,
                signed_in=signed_in,
                actor=actor,
                settings=settings,
                now=clock.now(),
                refusal=result,
                form=form,
                values=values,
            )
        if isinstance(result, TrochePlan):
            return Redirect(path=f"/plans/{result.id}", status_code=303)
        return Redirect(path=f"/encounters/{encounter_id}?done={form}", status_code=303)

    @post("/encounters/{encounter_id:uuid}")
    async def record(
        self,
        request: Request,
        encounter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """Identity, where the patient is now, the PDMP check (typed in the prescriber's zone, stored in UTC), vitals."""
        fields = await form_fields(
            request,
            "identity_checked",
            "identity_method",
            "location_state",
            "pdmp_checked_at",
            "pdmp_state",
            "pdmp_reference",
            "pdmp_summary",
            "vitals_reviewed",
            "vitals_note",
            max_length=4000,
        )
        zone = await clinician_zone(db_session, signed_in.user_id, settings)

        async def work(encounter: Encounter) -> Encounter:
            return await encounters.record(db_session, encounter, _record_values(fields, zone), actor=actor, now=clock.now())

        return await self._act(
            db_session,
            encounter_id,
            form="record",
            values=fields,
            signed_in=signed_in,
            actor=actor,
            settings=settings,
            clock=clock,
            work=work,
        )

    @post("/encounters/{encounter_id:uuid}/flags")
    async def acknowledge(
        self,
        request: Request,
        encounter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "rule_id", "note", max_length=4000)

        async def work(encounter: Encounter) -> None:
            if problems := _check_lengths(fields):
                raise _refused(problems)
            await encounters.acknowledge_flag(
                db_session, encounter, rule_id=fields["rule_id"], note=fields["note"], actor=actor, now=clock.now()
            )

        return await self._act(
            db_session,
            encounter_id,
            form=f"flag:{fields['rule_id']}",
            values=fields,
            signed_in=signed_in,
            actor=actor,
            settings=settings,
            clock=clock,
            work=work,
        )

    @post("/encounters/{encounter_id:uuid}/decision")
    async def decide(
        self,
        request: Request,
        encounter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """Start a plan (only when nothing blocks prescribing), decline (refunds the consult) or refer out, with the reason."""
        fields = await form_fields(request, "decision", "reason", max_length=4000)

        async def work(encounter: Encounter) -> Encounter:
            if problems := _check_lengths(fields):
                raise _refused(problems)
            return await encounters.decide(
                db_session,
                encounter,
                decision=_decision(fields["decision"]),
                reason=fields["reason"],
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await self._act(
            db_session,
            encounter_id,
            form="decision",
            values=fields,
            signed_in=signed_in,
            actor=actor,
            settings=settings,
            clock=clock,
            work=work,
        )

    @post("/encounters/{encounter_id:uuid}/plans")
    async def write(
        self,
        request: Request,
        encounter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """A draft plan; its page shows the units per session and per shipment, computed from the doses and the strength."""
        fields = await form_fields(
            request,
            "product",
            "strength_mg",
            "doses_mg",
            "min_hours_between",
            "directions",
            "shipment_sessions",
            "pharmacy_id",
            max_length=4000,
        )

        async def work(encounter: Encounter) -> TrochePlan:
            return await plans.write_plan(
                db_session, encounter, **_plan_values(fields), refills=0, actor=actor, now=clock.now(), settings=settings
            )

        return await self._act(
            db_session,
            encounter_id,
            form="plan",
            values=fields,
            signed_in=signed_in,
            actor=actor,
            settings=settings,
            clock=clock,
            work=work,
        )


# --- The plan ------------------------------------------------------------------------------------------------


async def _plan_page(
    session: AsyncSession,
    plan: TrochePlan,
    *,
    settings: Settings,
    refusal: DomainError | None = None,
    form: str | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
) -> Template:
    batches = await plans.batches_of(session, plan_id=plan.id)
    zone = await clinician_zone(session, plan.prescriber_id, settings)
    return Template(
        "prescribing/plan.html",
        context={
            "plan": plan,
            "patient_name": await _patient_name(session, plan.patient_id),
            "zone": zone,
            "pharmacy": await session.get(Pharmacy, plan.pharmacy_id),
            "batches": batches,
            "planned": batches_for(plans.content_of(plan)),
            "units": [dose // plan.strength_mg for dose in plan.doses_mg],
            "signature_ok": plans.verify_signature(plan),
            "plan_words": PLAN_WORDS,
            "batch_words": BATCH_WORDS,
            "live": plan.status in LIVE_PLAN,
            "form": form,
            "values": values or {},
            "done": done,
            **_refusal_context(refusal),
        },
        status_code=refusal.status_code if refusal else 200,
    )


async def act_on_plan(
    request: Request,
    session: AsyncSession,
    plan_id: uuid.UUID,
    *,
    form: str,
    names: tuple[str, ...],
    signed_in: SignedIn,
    settings: Settings,
    work: Callable[[TrochePlan, dict[str, str]], Awaitable[Any]],
) -> Template | Redirect:
    """One form posted on the plan page (here and dosing's plan changes): the prescriber's own plan, locked
    but for signing; a refusal shows the page again with the form's values, success goes back to it."""
    fields = await form_fields(request, *names, max_length=4000)
    plan = await plans.own_plan(session, plan_id=plan_id, signed_in=signed_in, lock=form != "sign")  # signing is its own compare-and-swap

    async def checked() -> Any:
        if problems := _check_lengths(fields):
            raise _refused(problems)
        return await work(plan, fields)

    result = await attempt(session, checked())
    if isinstance(result, DomainError):
        await session.refresh(plan)
        values = {name: value for name, value in fields.items() if name != "password"}  # never echo a password
        return await _plan_page(session, plan, settings=settings, refusal=result, form=form, values=values)
    return Redirect(path=f"/plans/{plan_id}?done={form}", status_code=303)


class PlanPagesController(Controller):
    include_in_schema = False
    guards = PRESCRIBER

    @get("/plans/{plan_id:uuid}")
    async def show(
        self,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        done: FromQuery[str | None] = None,
    ) -> Template:
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in)
        return await _plan_page(db_session, plan, settings=settings, done=done)

    @post("/plans/{plan_id:uuid}/sign")
    async def sign(
        self,
        request: Request,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """The step-up is this request: the password and a fresh authenticator code typed on the signing form."""

        async def work(plan: TrochePlan, fields: dict[str, str]) -> TrochePlan:
            return await plans.sign_plan(
                db_session,
                plan,
                signed_in=signed_in,
                password=fields["password"],
                code=fields["code"],
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        return await act_on_plan(
            request, db_session, plan_id, form="sign", names=("password", "code"), signed_in=signed_in, settings=settings, work=work
        )
