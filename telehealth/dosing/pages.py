"""HTML pages of home dosing for the patient (sessions, check-in, unlock, timer, report, sitters) and the
prescriber (a plan's sessions with BP and side effects, paused plans to review, inventory flags). They call
the same service functions as api.py; the sitter's own pages are in sitter_pages.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.accounts.sessions import SignedIn
from telehealth.clinicians.service import clinician_zone
from telehealth.dosing import after_dose, before_dose, inventory, safety, sessions, sitter_checks, sitters
from telehealth.dosing.api import plan_dosing_body
from telehealth.dosing.gates import Gate, unlock_gates
from telehealth.dosing.models import DosingSession, InventoryFlag, SeriousEvent
from telehealth.dosing.states import SessionStatus, SitterStatus
from telehealth.intake.results import CRISIS_RESOURCES
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, InvalidInput
from telehealth.lib.forms import attempt, form_fields, form_list
from telehealth.lib.validation import parse_whole_number
from telehealth.prescribing import plans
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.states import PlanStatus
from telehealth.settings import Settings

PATIENT = [requires_role(Role.PATIENT)]
PRESCRIBER = [requires_role(Role.PRESCRIBER)]

SHOWN_AS = {
    "scheduled": "Scheduled",
    "checked_in": "Checked in",
    "waiting_for_sitter": "Checked in: waiting for your sitter",
    "unlocked": "Unlocked: report when you can",
    "reported": "Reported",
    "held": "Held: not today",
    "cancelled": "Cancelled",
}
SIDE_EFFECTS = (  # the report form's checkboxes: each symptom as asked, then whether 911 was called
    *((name, asked) for name, asked, _told in after_dose.REPORT_SYMPTOMS),
    ("emergency_services_called", "Emergency services (911) were called"),
)
STEPS = (
    "Sit or lie down somewhere quiet and safe, with your sitter in the room.",
    "Place the troche(s) under your tongue or between cheek and gum. Let them dissolve for 15 minutes; do not chew or swallow.",
    "After 15 minutes, spit out what is left. Do not swallow it.",
    "Stay seated or lying down until the timer ends, and rest for two hours after. No driving until tomorrow.",
)


def _refusal(error: DomainError | None) -> dict[str, Any]:
    if error is None:
        return {"error": None, "fields": {}, "gates": [], "error_fields": set()}
    gates = error.extra.get("gates", []) if isinstance(error.extra.get("gates"), list) else []
    fields = {k: v for k, v in error.fields.items() if k != "gates"}
    return {"error": error.detail, "fields": fields, "gates": gates, "error_fields": set(fields)}


def _whole(raw: str, field: str, problems: dict[str, str], *, required: bool = True) -> int | None:
    if not raw.strip():
        if required:
            problems[field] = "is required"
        return None
    number = parse_whole_number(raw.strip())
    if number is None or number > 100_000:
        problems[field] = "must be a whole number"
    return number


def _local_input(raw: str, zone: str, field: str) -> datetime:
    """A datetime-local field, read in the patient's zone."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("request.invalid", "Choose a date and a time.", fields={field: "must be a date and a time"}) from None
    return (moment.replace(tzinfo=ZoneInfo(zone)) if moment.tzinfo is None else moment).astimezone(UTC)


def _optional_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# --- The patient ----------------------------------------------------------------------------------------------


async def _overview(
    session: AsyncSession,
    patient: Patient,
    *,
    settings: Settings,
    now: datetime,
    error: DomainError | None = None,
    done: str | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    plan = await plans.live_plan(session, patient_id=patient.id)
    all_sitters = await sitters.patient_sitters(session, patient_id=patient.id)
    confirmed = [s for s in all_sitters if s.status == SitterStatus.CONFIRMED]
    context: dict[str, Any] = {
        "plan": plan,
        "zone": patient.timezone,
        "shown_as": SHOWN_AS,
        "done": done,
        "values": values or {},
        "sitters": all_sitters,
        **_refusal(error),
        "confirmed": [s for s in confirmed if sitter_checks.is_verified(s, settings)],  # the ones a session may have
        "awaiting_call": {s.id for s in confirmed if not sitter_checks.is_verified(s, settings)},
    }
    if plan is not None:
        rows = await sessions.sessions_of(session, plan_id=plan.id)
        last = await sessions.last_dose_at(session, plan_id=plan.id)
        context |= {
            "rows": [(row, await _shown(session, row)) for row in rows],
            "counts": await inventory.inventory(session, plan_id=plan.id),
            "open_session": next((row for row in rows if row.status == SessionStatus.SCHEDULED), None),
            "earliest": max(filter(None, [last + timedelta(hours=plan.min_hours_between) if last else None, now])),
            "taken": sum(1 for row in rows if row.status in (SessionStatus.UNLOCKED, SessionStatus.REPORTED)),
        }
    return Template("dosing/overview.html", context=context, status_code=error.status_code if error else 200)


async def _shown(session: AsyncSession, row: DosingSession) -> str:
    checked_in = bool(await sessions.check_ins_of(session, dosing_session_id=row.id))
    present = await sessions.attestation(session, dosing_session_id=row.id, kind="presence") is not None
    return sessions.display_status(row, checked_in=checked_in, sitter_present=present)


async def _session_page(
    session: AsyncSession,
    patient: Patient,
    dosing_session_id: uuid.UUID,
    *,
    now: datetime,
    settings: Settings,
    error: DomainError | None = None,
    check_in: before_dose.CheckInOutcome | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    row = await sessions.own_session(session, patient=patient, dosing_session_id=dosing_session_id)
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    check_ins = await sessions.check_ins_of(session, dosing_session_id=row.id)
    thresholds = settings.thresholds
    window_opens = row.scheduled_at - timedelta(minutes=thresholds.checkin_valid_minutes)
    opened = row.status in (SessionStatus.UNLOCKED, SessionStatus.REPORTED)
    sitter = await session.get(sitters.Sitter, row.sitter_id) if row.sitter_id else None
    gates: list[Gate] = []
    if row.status == SessionStatus.SCHEDULED and check_ins:
        gates = unlock_gates(await before_dose.unlock_facts(session, row, plan, now=now, settings=settings), thresholds)
    context = {
        "row": row,
        "plan": plan,
        "zone": patient.timezone,
        "shown": SHOWN_AS.get(await _shown(session, row)),
        "check_ins": check_ins,
        "may_check_in": row.status == SessionStatus.SCHEDULED and window_opens <= now,
        "window_opens": window_opens,
        "dose_mg": plan.doses_mg[row.number - 1] if opened else None,
        "troches": sessions.units_for(plan, row.number) if opened else None,
        "timer_ends_at": (window_closes := after_dose.observation_ends_at(row, settings)),
        "window_open": window_closes is not None and now < window_closes,
        "observation_minutes": thresholds.observation_minutes,
        "steps": STEPS,
        "sitter": sitter,
        "pending_gates": gates,
        "side_effects": SIDE_EFFECTS,
        "confirmed": [
            s
            for s in await sitters.patient_sitters(session, patient_id=patient.id)
            if s.status == SitterStatus.CONFIRMED and sitter_checks.is_verified(s, settings)
        ],
        "check_in": check_in,
        "crisis_resources": CRISIS_RESOURCES if check_in and (check_in.crisis or check_in.care_team_contact) else None,
        "values": values or {},
        "now": now,
        **_refusal(error),
    }
    return Template("dosing/session.html", context=context, status_code=error.status_code if error else 200)


def _check_in_answers(fields: dict[str, str]) -> before_dose.CheckInAnswers:
    problems: dict[str, str] = {}
    numbers = {name: _whole(fields[name], name, problems) for name in ("systolic", "diastolic", "pulse", "mood", "phq9_item9")}
    for name in ("fasted_two_hours", "no_alcohol_or_sedatives"):
        if fields[name] not in ("yes", "no"):
            problems[name] = "answer yes or no"
    if problems:
        raise InvalidInput("request.invalid", "Some check-in answers need another look.", fields=problems)
    whole = {name: number for name, number in numbers.items() if number is not None}  # all of them: a missing one is a problem
    return before_dose.CheckInAnswers(
        **whole, fasted_two_hours=fields["fasted_two_hours"] == "yes", no_alcohol_or_sedatives=fields["no_alcohol_or_sedatives"] == "yes"
    )


def _report_answers(fields: dict[str, str], ticked: list[str]) -> after_dose.ReportAnswers:
    problems: dict[str, str] = {}
    if fields["completed"] not in ("yes", "no"):
        problems["completed"] = "answer yes or no"
    used = _whole(fields["troches_used"], "troches_used", problems)
    dissociation = _whole(fields["dissociation"] or "0", "dissociation", problems)
    systolic = _whole(fields["systolic"], "systolic", problems, required=False)
    diastolic = _whole(fields["diastolic"], "diastolic", problems, required=False)
    return after_dose.ReportAnswers(
        completed=fields["completed"] == "yes",
        troches_used=used or 0,
        dissociation=dissociation or 0,
        systolic=systolic,
        diastolic=diastolic,
        other_side_effects=fields["other_side_effects"],
        notes=fields["notes"],
        ended_early_reason=fields["ended_early_reason"],
        problems_found=problems,
        **{name: name in ticked for name, _ in SIDE_EFFECTS},
    )


CHECK_IN_FIELDS = ("systolic", "diastolic", "pulse", "mood", "phq9_item9", "fasted_two_hours", "no_alcohol_or_sedatives")
REPORT_FIELDS = ("completed", "troches_used", "dissociation", "systolic", "diastolic", "other_side_effects", "notes", "ended_early_reason")


class DosingPagesController(Controller):
    include_in_schema = False
    guards = PATIENT

    @get("/dosing")
    async def overview(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _overview(
            db_session, await own_patient_record(db_session, viewer=signed_in), settings=settings, now=clock.now(), done=done
        )

    @post("/dosing/sessions")
    async def schedule(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        fields = await form_fields(request, "starts_at", "sitter_id")

        async def schedule_it() -> DosingSession:
            starts_at = _local_input(fields["starts_at"], patient.timezone, "starts_at")
            return await sessions.schedule_session(
                db_session,
                patient=patient,
                starts_at=starts_at,
                sitter_id=_optional_uuid(fields["sitter_id"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        row = await attempt(db_session, schedule_it())
        if isinstance(row, DomainError):
            return await _overview(db_session, patient, settings=settings, now=clock.now(), error=row, values=fields)
        return Redirect(path=f"/dosing/sessions/{row.id}")

    @get("/dosing/sessions/{dosing_session_id:uuid}")
    async def session_page(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)
        return await _session_page(db_session, patient, dosing_session_id, now=clock.now(), settings=settings)

    @post("/dosing/sessions/{dosing_session_id:uuid}/check-in")
    async def check_in(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)
        fields = await form_fields(request, *CHECK_IN_FIELDS, max_length=10)

        async def record() -> before_dose.CheckInOutcome:
            return await before_dose.record_check_in(
                db_session,
                patient=patient,
                dosing_session_id=dosing_session_id,
                answers=_check_in_answers(fields),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        outcome = await attempt(db_session, record())
        if isinstance(outcome, DomainError):
            return await _session_page(
                db_session, patient, dosing_session_id, now=clock.now(), settings=settings, error=outcome, values=fields
            )
        return await _session_page(db_session, patient, dosing_session_id, now=clock.now(), settings=settings, check_in=outcome)

    @post("/dosing/sessions/{dosing_session_id:uuid}/unlock")
    async def unlock(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        unlocked = await attempt(
            db_session,
            before_dose.unlock_session(
                db_session, patient=patient, dosing_session_id=dosing_session_id, actor=actor, now=clock.now(), settings=settings
            ),
        )
        if isinstance(unlocked, DomainError):
            return await _session_page(db_session, patient, dosing_session_id, now=clock.now(), settings=settings, error=unlocked)
        return Redirect(path=f"/dosing/sessions/{dosing_session_id}")

    @post("/dosing/sessions/{dosing_session_id:uuid}/report")
    async def report(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        fields = await form_fields(request, *REPORT_FIELDS, max_length=4000)
        ticked = await form_list(request, "side_effects")
        filed = await attempt(
            db_session,
            after_dose.file_report(
                db_session,
                patient=patient,
                dosing_session_id=dosing_session_id,
                answers=_report_answers(fields, ticked),
                actor=actor,
                now=clock.now(),
                settings=settings,
            ),
        )
        if isinstance(filed, DomainError):
            return await _session_page(
                db_session, patient, dosing_session_id, now=clock.now(), settings=settings, error=filed, values=fields
            )
        return Redirect(path=f"/dosing/sessions/{dosing_session_id}")

    @post("/dosing/sessions/{dosing_session_id:uuid}/reschedule")
    async def reschedule(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        fields = await form_fields(request, "starts_at", "sitter_id")

        async def move() -> DosingSession:
            starts_at = _local_input(fields["starts_at"], patient.timezone, "starts_at")
            return await sessions.reschedule_session(
                db_session,
                patient=patient,
                dosing_session_id=dosing_session_id,
                starts_at=starts_at,
                sitter_id=_optional_uuid(fields["sitter_id"]),
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        moved = await attempt(db_session, move())
        if isinstance(moved, DomainError):
            return await _session_page(
                db_session, patient, dosing_session_id, now=clock.now(), settings=settings, error=moved, values=fields
            )
        return Redirect(path=f"/dosing/sessions/{dosing_session_id}")

    @post("/dosing/sessions/{dosing_session_id:uuid}/cancel")
    async def cancel(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        cancelled = await attempt(
            db_session,
            sessions.cancel_session(
                db_session, patient=patient, dosing_session_id=dosing_session_id, actor=actor, now=clock.now(), settings=settings
            ),
        )
        if isinstance(cancelled, DomainError):
            return await _session_page(db_session, patient, dosing_session_id, now=clock.now(), settings=settings, error=cancelled)
        return Redirect(path="/dosing")

    @post("/dosing/sitters")
    async def add_sitter(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        fields = await form_fields(request, "full_name", "email", "phone", "relationship", max_length=400)
        added = await attempt(
            db_session, sitters.add_sitter(db_session, patient=patient, **fields, actor=actor, now=clock.now(), settings=settings)
        )
        if isinstance(added, DomainError):
            return await _overview(db_session, patient, settings=settings, now=clock.now(), error=added, values=fields)
        return Redirect(path="/dosing?done=sitter_added#sitters")

    @post("/dosing/sitters/{sitter_id:uuid}/remove")
    async def remove_sitter(
        self,
        sitter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        removed = await attempt(
            db_session,
            sitters.remove_sitter(db_session, patient=patient, sitter_id=sitter_id, actor=actor, now=clock.now(), settings=settings),
        )
        if isinstance(removed, DomainError):
            return await _overview(db_session, patient, settings=settings, now=clock.now(), error=removed)
        return Redirect(path="/dosing#sitters")

    @post("/dosing/loss")
    async def report_loss(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        fields = await form_fields(request, "troches", "what_happened")

        async def report_it() -> InventoryFlag:
            plan = await plans.live_plan(db_session, patient_id=patient.id)
            if plan is None:
                raise InvalidInput("dosing.no_plan", "You have no active plan.")
            problems: dict[str, str] = {}
            troches = _whole(fields["troches"], "troches", problems)
            if problems:
                raise InvalidInput("request.invalid", "The report of a loss is not complete.", fields=problems)
            return await inventory.report_loss(
                db_session, plan, troches=troches or 0, what_happened=fields["what_happened"], actor=actor, now=clock.now()
            )

        flagged = await attempt(db_session, report_it())
        if isinstance(flagged, DomainError):
            return await _overview(db_session, patient, settings=settings, now=clock.now(), error=flagged, values=fields)
        return await _overview(db_session, patient, settings=settings, now=clock.now(), done="loss_reported")

    @post("/dosing/next-batch")
    async def next_batch(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)

        async def ask() -> tuple[Any, bool]:
            plan = await plans.live_plan(db_session, patient_id=patient.id)
            if plan is None:
                raise InvalidInput("dosing.no_plan", "You have no active plan.")
            return await inventory.request_next_batch(db_session, plan, actor=actor, now=clock.now())

        asked = await attempt(db_session, ask())
        if isinstance(asked, DomainError):
            return await _overview(db_session, patient, settings=settings, now=clock.now(), error=asked)
        batch, early = asked
        return await _overview(
            db_session,
            patient,
            settings=settings,
            now=clock.now(),
            done="batch_early" if early else "batch_released" if batch else "batch_asked",
        )


# --- The prescriber --------------------------------------------------------------------------------------------


async def _plan_page(
    session: AsyncSession, plan: TrochePlan, *, settings: Settings, error: DomainError | None = None, zone: str
) -> Template:
    body = await plan_dosing_body(session, plan, settings)
    context = {
        "plan": plan,
        "body": body,
        "patient_name": (await patient_contact(session, plan.patient_id)).full_name,
        "zone": zone,
        "reason_words": safety.REASON_WORDS,
        "flag_words": inventory.FLAG_WORDS,
        "shown_as": SHOWN_AS,
        "open_events": [e for e in body.serious_events if e.reviewed_at is None],
        **_refusal(error),
    }
    return Template("dosing/plan.html", context=context, status_code=error.status_code if error else 200)


class PlanDosingPagesController(Controller):
    include_in_schema = False
    guards = PRESCRIBER

    @get("/prescriber/dosing")
    async def reviews(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        """Your plans that wait for you: paused by a serious event, or with an inventory flag open."""
        paused = (
            await db_session.execute(
                select(TrochePlan, SeriousEvent)
                .join(SeriousEvent, col(SeriousEvent.plan_id) == TrochePlan.id)
                .where(TrochePlan.prescriber_id == signed_in.user_id, col(SeriousEvent.reviewed_at).is_(None))
                .order_by(col(SeriousEvent.occurred_at))
            )
        ).all()
        flagged = (
            await db_session.execute(
                select(TrochePlan, InventoryFlag)
                .join(InventoryFlag, col(InventoryFlag.plan_id) == TrochePlan.id)
                .where(TrochePlan.prescriber_id == signed_in.user_id, col(InventoryFlag.resolved_at).is_(None))
                .order_by(col(InventoryFlag.raised_at))
            )
        ).all()
        live = (
            (
                await db_session.execute(
                    select(TrochePlan)
                    .where(
                        TrochePlan.prescriber_id == signed_in.user_id, col(TrochePlan.status).in_([PlanStatus.ACTIVE, PlanStatus.PAUSED])
                    )
                    .order_by(col(TrochePlan.updated_at).desc())
                )
            )
            .scalars()
            .all()
        )
        names = {plan.patient_id: (await patient_contact(db_session, plan.patient_id)).full_name for plan in live}
        for plan, _ in [*paused, *flagged]:
            names.setdefault(plan.patient_id, (await patient_contact(db_session, plan.patient_id)).full_name)
        return Template(
            "dosing/reviews.html",
            context={
                "paused": paused,
                "flagged": flagged,
                "live": live,
                "names": names,
                "reason_words": safety.REASON_WORDS,
                "flag_words": inventory.FLAG_WORDS,
            },
        )

    @get("/plans/{plan_id:uuid}/dosing")
    async def plan_page(
        self,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Template:
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in)
        return await _plan_page(db_session, plan, settings=settings, zone=await clinician_zone(db_session, signed_in.user_id, settings))

    @post("/plans/{plan_id:uuid}/review")
    async def review(
        self,
        plan_id: FromPath[uuid.UUID],
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in, lock=True)
        fields = await form_fields(request, "note", "decision", max_length=4000)
        reviewed = await attempt(
            db_session,
            safety.review(
                db_session, plan, note=fields["note"], decision=fields["decision"], actor=actor, now=clock.now(), settings=settings
            ),
        )
        if isinstance(reviewed, DomainError):
            return await _plan_page(
                db_session, plan, settings=settings, error=reviewed, zone=await clinician_zone(db_session, signed_in.user_id, settings)
            )
        return Redirect(path=f"/plans/{plan_id}/dosing")

    @post("/plans/{plan_id:uuid}/inventory-flags/{flag_id:uuid}/resolve")
    async def resolve(
        self,
        plan_id: FromPath[uuid.UUID],
        flag_id: FromPath[uuid.UUID],
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in, lock=True)
        fields = await form_fields(request, "note", max_length=2000)
        resolved = await attempt(
            db_session, inventory.resolve_flag(db_session, plan, flag_id=flag_id, note=fields["note"], actor=actor, now=clock.now())
        )
        if isinstance(resolved, DomainError):
            return await _plan_page(
                db_session, plan, settings=settings, error=resolved, zone=await clinician_zone(db_session, signed_in.user_id, settings)
            )
        return Redirect(path=f"/plans/{plan_id}/dosing")
