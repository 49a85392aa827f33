"""JSON API of home dosing: the patient's sitters, sessions, check-in, unlock and report; the sitter's
links (no account: the token is the key); the prescriber's view of a plan's sessions and the review that
resumes or discontinues a paused plan."""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.accounts.sessions import SignedIn
from telehealth.dosing import after_dose, before_dose, inventory, safety, sessions, sitter_checks, sitters
from telehealth.dosing.models import DosingReport, DosingSession, InventoryFlag, SeriousEvent, Sitter
from telehealth.dosing.schemas import (
    AgreementRequest,
    CheckInBody,
    CheckInRequest,
    DosingBody,
    EndRequest,
    FlagBody,
    GateBody,
    InventoryBody,
    LossRequest,
    NextBatchBody,
    PlanDosingBody,
    PrescriberSessionBody,
    PresenceBody,
    PresenceRequest,
    ReportRequest,
    RescheduleRequest,
    ResolveRequest,
    ReviewRequest,
    ScheduleRequest,
    SeriousEventBody,
    SessionBody,
    SitterBody,
    SitterLinkBody,
    SitterRequest,
)
from telehealth.dosing.states import LinkPurpose, SessionStatus, SitterStatus
from telehealth.intake.results import CRISIS_RESOURCES
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import RuleRefused
from telehealth.prescribing import plans
from telehealth.prescribing.api import plan_body
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.schemas import PlanBody
from telehealth.settings import Settings

PATIENT = [requires_role(Role.PATIENT)]
PRESCRIBER = [requires_role(Role.PRESCRIBER)]


def sitter_body(sitter: Sitter, settings: Settings | None = None) -> SitterBody:
    """With `settings`, whether a coordinator's call is still awaited before this sitter's first session."""
    pending = settings is not None and sitter.status == SitterStatus.CONFIRMED and not sitter_checks.is_verified(sitter, settings)
    return SitterBody(
        id=sitter.id,
        full_name=sitter.full_name,
        email=sitter.email,
        phone=sitter.phone,
        relationship=sitter.relationship,
        status=sitter.status,
        signed_at=sitter.signed_at,
        verified_at=sitter.verified_at,
        verification_method=sitter.verification_method,
        verification_pending=pending,
    )


async def session_body(session: AsyncSession, row: DosingSession, plan: TrochePlan, settings: Settings) -> SessionBody:
    check_ins = await sessions.check_ins_of(session, dosing_session_id=row.id)
    presence = await sessions.attestation(session, dosing_session_id=row.id, kind="presence")
    opened = row.status in (SessionStatus.UNLOCKED, SessionStatus.REPORTED)
    window_closes = after_dose.observation_ends_at(row, settings)
    patient = await session.get(Patient, row.patient_id)
    assert patient is not None
    return SessionBody(
        id=row.id,
        number=row.number,
        status=row.status,
        scheduled_at=row.scheduled_at,
        sitter_id=row.sitter_id,
        unlocked_at=row.unlocked_at,
        shown_as=sessions.display_status(row, checked_in=bool(check_ins), sitter_present=presence is not None),
        held_reason=row.held_reason,
        dose_mg=plan.doses_mg[row.number - 1] if opened else None,
        troches=sessions.units_for(plan, row.number) if opened else None,
        timer_ends_at=window_closes,
        report_from=window_closes,
        report_from_local=window_closes.astimezone(ZoneInfo(patient.timezone)).isoformat() if window_closes else None,
        reported=row.status == SessionStatus.REPORTED,
    )


def inventory_body(counts: inventory.Inventory) -> InventoryBody:
    return InventoryBody(delivered=counts.delivered, used=counts.used, lost=counts.lost, on_hand=counts.on_hand)


def flag_body(flag: InventoryFlag) -> FlagBody:
    return FlagBody(
        id=flag.id,
        kind=flag.kind,
        troches=flag.troches,
        detail=flag.detail,
        raised_at=flag.raised_at,
        resolved_at=flag.resolved_at,
        resolution_note=flag.resolution_note,
    )


async def _patient_plan(session: AsyncSession, patient: Patient) -> TrochePlan:
    plan = await plans.live_plan(session, patient_id=patient.id)
    if plan is None:
        raise RuleRefused("dosing.no_plan", "You have no active plan.")
    return plan


async def _session_and_plan(session: AsyncSession, patient: Patient, dosing_session_id: uuid.UUID, settings: Settings) -> SessionBody:
    row = await sessions.own_session(session, patient=patient, dosing_session_id=dosing_session_id)
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    return await session_body(session, row, plan, settings)


class SitterApiController(Controller):
    path = "/api/v1/my/sitters"
    tags = ["dosing"]
    guards = PATIENT

    @get("/")
    async def list_sitters(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> list[SitterBody]:
        """Your sitters; `verification_pending` while our team has yet to call one before their first session."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        return [sitter_body(s, settings) for s in await sitters.patient_sitters(db_session, patient_id=patient.id)]

    @post("/", status_code=201)
    async def add(
        self,
        data: JSONBody[SitterRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterBody:
        """Name a sitter: they are emailed their own link to read and sign the sitter agreement."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        return sitter_body(
            await sitters.add_sitter(
                db_session,
                patient=patient,
                full_name=data.full_name,
                email=data.email,
                phone=data.phone,
                relationship=data.relationship,
                actor=actor,
                now=clock.now(),
                settings=settings,
            ),
            settings,
        )

    @post("/{sitter_id:uuid}/remove", status_code=200)
    async def remove(
        self,
        sitter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterBody:
        patient = await own_patient_record(db_session, viewer=signed_in)
        return sitter_body(
            await sitters.remove_sitter(db_session, patient=patient, sitter_id=sitter_id, actor=actor, now=clock.now(), settings=settings),
            settings,
        )

    @post("/{sitter_id:uuid}/resend", status_code=200)
    async def resend(
        self,
        sitter_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterBody:
        patient = await own_patient_record(db_session, viewer=signed_in)
        return sitter_body(
            await sitters.resend_invitation(
                db_session, patient=patient, sitter_id=sitter_id, actor=actor, now=clock.now(), settings=settings
            ),
            settings,
        )


async def dosing_overview(session: AsyncSession, patient: Patient, settings: Settings) -> DosingBody:
    plan = await plans.live_plan(session, patient_id=patient.id)
    if plan is None:
        return DosingBody(plan_id=None, plan_status=None, sessions_in_plan=0, sessions=[], inventory=None, earliest_next=None)
    last = await sessions.last_dose_at(session, plan_id=plan.id)
    return DosingBody(
        plan_id=plan.id,
        plan_status=plan.status,
        sessions_in_plan=plan.sessions,
        sessions=[await session_body(session, row, plan, settings) for row in await sessions.sessions_of(session, plan_id=plan.id)],
        inventory=inventory_body(await inventory.inventory(session, plan_id=plan.id)),
        earliest_next=last + timedelta(hours=plan.min_hours_between) if last else None,
    )


class DosingApiController(Controller):
    path = "/api/v1/my/dosing"
    tags = ["dosing"]
    guards = PATIENT

    @get("/")
    async def overview(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> DosingBody:
        """Your plan's sessions, their states, and the troches on hand."""
        return await dosing_overview(db_session, await own_patient_record(db_session, viewer=signed_in), settings)

    @post("/sessions", status_code=201)
    async def schedule(
        self,
        data: JSONBody[ScheduleRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SessionBody:
        """Schedule the next session with a confirmed sitter (they get an invite)."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        row = await sessions.schedule_session(
            db_session, patient=patient, starts_at=data.starts_at, sitter_id=data.sitter_id, actor=actor, now=clock.now(), settings=settings
        )
        return await _session_and_plan(db_session, patient, row.id, settings)

    @get("/sessions/{dosing_session_id:uuid}")
    async def read(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> SessionBody:
        return await _session_and_plan(db_session, await own_patient_record(db_session, viewer=signed_in), dosing_session_id, settings)

    @post("/sessions/{dosing_session_id:uuid}/reschedule", status_code=200)
    async def reschedule(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        data: JSONBody[RescheduleRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SessionBody:
        """Move the session, or give it another sitter: free, any time before the check-in."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        await sessions.reschedule_session(
            db_session,
            patient=patient,
            dosing_session_id=dosing_session_id,
            starts_at=data.starts_at,
            sitter_id=data.sitter_id,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return await _session_and_plan(db_session, patient, dosing_session_id, settings)

    @post("/sessions/{dosing_session_id:uuid}/cancel", status_code=200)
    async def cancel(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SessionBody:
        patient = await own_patient_record(db_session, viewer=signed_in)
        await sessions.cancel_session(
            db_session, patient=patient, dosing_session_id=dosing_session_id, actor=actor, now=clock.now(), settings=settings
        )
        return await _session_and_plan(db_session, patient, dosing_session_id, settings)

    @post("/sessions/{dosing_session_id:uuid}/check-in", status_code=201)
    async def check_in(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        data: JSONBody[CheckInRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> CheckInBody:
        """Blood pressure, pulse, mood and the safety questions, in the hour before the session."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        answers = before_dose.CheckInAnswers(**{name: getattr(data, name) for name in data.__struct_fields__})
        outcome = await before_dose.record_check_in(
            db_session,
            patient=patient,
            dosing_session_id=dosing_session_id,
            answers=answers,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return CheckInBody(
            attempt=outcome.check_in.attempt,
            checked_in_at=outcome.check_in.checked_in_at,
            held=outcome.held,
            urgent=outcome.urgent,
            crisis=outcome.crisis,
            care_team_contact=outcome.care_team_contact,
            gates=[GateBody(code=g.code, detail=g.detail) for g in outcome.gates],
            recheck_from=outcome.recheck_from,
            crisis_resources=CRISIS_RESOURCES if outcome.crisis or outcome.care_team_contact else None,
        )

    @post("/sessions/{dosing_session_id:uuid}/unlock", status_code=200)
    async def unlock(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SessionBody:
        """Unlock the dose when every gate holds; otherwise 422 with `gates`, each failed gate's code and sentence."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        await before_dose.unlock_session(
            db_session, patient=patient, dosing_session_id=dosing_session_id, actor=actor, now=clock.now(), settings=settings
        )
        return await _session_and_plan(db_session, patient, dosing_session_id, settings)

    @post("/sessions/{dosing_session_id:uuid}/report", status_code=201)
    async def report(
        self,
        dosing_session_id: FromPath[uuid.UUID],
        data: JSONBody[ReportRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SessionBody:
        """How the session went: from `report_from` (the observation window after unlock), within 24 hours,
        please. Earlier needs `ended_early_reason` (422 naming it), unless a serious answer explains it;
        before unlock, 409."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        answers = after_dose.ReportAnswers(**{name: getattr(data, name) for name in data.__struct_fields__})
        await after_dose.file_report(
            db_session,
            patient=patient,
            dosing_session_id=dosing_session_id,
            answers=answers,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return await _session_and_plan(db_session, patient, dosing_session_id, settings)

    @post("/loss", status_code=201)
    async def loss(
        self,
        data: JSONBody[LossRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> FlagBody:
        """Report troches lost, stolen or spoiled (your prescriber is told)."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        plan = await _patient_plan(db_session, patient)
        return flag_body(
            await inventory.report_loss(
                db_session, plan, troches=data.troches, what_happened=data.what_happened, actor=actor, now=clock.now()
            )
        )

    @post("/next-batch", status_code=200)
    async def next_batch(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> NextBatchBody:
        """Ask for the next shipment: sent when your earlier sessions are reported; early asks go to your prescriber."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        plan = await _patient_plan(db_session, patient)
        batch, early = await inventory.request_next_batch(db_session, plan, actor=actor, now=clock.now())
        detail = (
            "Your prescriber has been asked: the sessions before this shipment are not all reported yet."
            if early
            else "Your next shipment is on its way to the pharmacy."
            if batch is not None
            else "Your prescriber will look at your request before the next shipment is sent."
        )
        return NextBatchBody(released=batch is not None, early=early, detail=detail)


# --- The sitter's links: no account, the token is the key ---------------------------------------------


async def sitter_link_body(session: AsyncSession, opened: sitters.OpenLink, settings: Settings) -> SitterLinkBody:
    contact = await patient_contact(session, opened.sitter.patient_id)
    body = SitterLinkBody(purpose=opened.link.purpose, sitter_name=opened.sitter.full_name, patient_name=contact.full_name)
    if opened.link.purpose == LinkPurpose.AGREEMENT:
        body.agreement_title, body.agreement_version = sitters.SITTER_AGREEMENT.title, sitters.SITTER_AGREEMENT.version
    elif (row := await session.get(DosingSession, opened.link.dosing_session_id)) is not None:
        body.session_at, body.session_status = row.scheduled_at, row.status
        body.timer_ends_at = body.end_from = after_dose.observation_ends_at(row, settings)
        if body.end_from is not None and (patient := await session.get(Patient, row.patient_id)) is not None:
            body.end_from_local = body.end_from.astimezone(ZoneInfo(patient.timezone)).isoformat()
    return body


class SitterLinkApiController(Controller):
    path = "/api/v1/sitter-links/{token:str}"
    tags = ["dosing"]

    @get("/")
    async def read(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterLinkBody:
        """What this link is for: the agreement, the presence before a session, or its end (from `end_from`).
        Every sitter link answers 403 `sitter_link.patient_signed_in` to a browser signed in as the patient."""
        return await sitter_link_body(
            db_session, await sitters.open_link(db_session, token=token, purpose=None, actor=actor, now=clock.now()), settings
        )

    @post("/agreement", status_code=200)
    async def sign(
        self,
        token: FromPath[str],
        data: JSONBody[AgreementRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> SitterBody:
        return sitter_body(
            await sitters.sign_agreement(
                db_session, token=token, typed_name=data.typed_name, adult=data.adult, agreed=data.agreed, actor=actor, now=clock.now()
            )
        )

    @post("/decline", status_code=200)
    async def decline(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterBody:
        return sitter_body(await sitters.decline(db_session, token=token, actor=actor, now=clock.now(), settings=settings))

    @post("/excuse", status_code=200)
    async def excuse(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterLinkBody:
        """You cannot come to this session: the patient is told, to find another sitter or move it."""
        opened = await sitters.open_link(db_session, token=token, purpose=None, actor=actor, now=clock.now())
        body = await sitter_link_body(db_session, opened, settings)
        await sessions.excuse_sitter(db_session, token=token, actor=actor, now=clock.now())
        return body

    @post("/withdraw", status_code=200)
    async def withdraw(
        self, token: FromPath[str], actor: NamedDependency[Actor], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> SitterBody:
        """Stop being a sitter altogether (any live link of yours): every future session you sit for loses you
        and its links, and the patient is told at once. Before signing the agreement, decline it instead (409)."""
        return sitter_body(await sitters.withdraw(db_session, token=token, actor=actor, now=clock.now()))

    @post("/presence", status_code=200)
    async def presence(
        self,
        token: FromPath[str],
        data: JSONBody[PresenceRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> PresenceBody:
        """Confirm you are with the patient for this session. Answers your next link: the timer and the end."""
        next_token = await before_dose.attest_presence(db_session, token=token, typed_name=data.typed_name, actor=actor, now=clock.now())
        return PresenceBody(next_link=f"/sitter/{next_token}")

    @post("/end", status_code=200)
    async def end(
        self,
        token: FromPath[str],
        data: JSONBody[EndRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterLinkBody:
        """How the session ended: the patient alert and safe, or what happened. Before `end_from`, "alert and
        safe" needs `ended_early_reason` (422 naming it); before unlock, 409."""
        await after_dose.attest_end(
            db_session,
            token=token,
            typed_name=data.typed_name,
            outcome=data.outcome,
            event_description=data.event_description,
            emergency_services_called=data.emergency_services_called,
            ended_early_reason=data.ended_early_reason,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return SitterLinkBody(purpose="end", sitter_name=data.typed_name, patient_name="")


# --- The prescriber's side ----------------------------------------------------------------------------


def serious_event_body(event: SeriousEvent) -> SeriousEventBody:
    return SeriousEventBody(
        id=event.id,
        source=event.source,
        reasons=list(event.reasons),
        occurred_at=event.occurred_at,
        reviewed_at=event.reviewed_at,
        review_note=event.review_note,
        review_decision=event.review_decision,
    )


async def plan_dosing_body(session: AsyncSession, plan: TrochePlan, settings: Settings) -> PlanDosingBody:
    rows = []
    for row in await sessions.sessions_of(session, plan_id=plan.id):
        report = await session.get(DosingReport, row.id)
        end = await sessions.attestation(session, dosing_session_id=row.id, kind="end")
        presence = await sessions.attestation(session, dosing_session_id=row.id, kind="presence")
        rows.append(
            PrescriberSessionBody(
                session=await session_body(session, row, plan, settings),
                check_ins=[
                    {k: v for k, v in c.model_dump().items() if k not in ("id", "dosing_session_id")}
                    for c in await sessions.check_ins_of(session, dosing_session_id=row.id)
                ],
                report={k: v for k, v in report.model_dump().items() if k != "dosing_session_id"} if report else None,
                sitter_present=presence is not None,
                presence_same_as_patient=presence.same_as_patient if presence else None,
                sitter_end={
                    "outcome": end.outcome,
                    "event_description": end.event_description,
                    "emergency_services_called": end.emergency_services_called,
                    "ended_early": end.ended_early,
                    "ended_early_reason": end.ended_early_reason,
                    "attested_at": end.attested_at,
                    "same_as_patient": end.same_as_patient,
                }
                if end
                else None,
            )
        )
    events = (
        await session.execute(select(SeriousEvent).where(SeriousEvent.plan_id == plan.id).order_by(col(SeriousEvent.occurred_at)))
    ).scalars()
    flags = (
        await session.execute(select(InventoryFlag).where(InventoryFlag.plan_id == plan.id).order_by(col(InventoryFlag.raised_at)))
    ).scalars()
    return PlanDosingBody(
        plan_id=plan.id,
        plan_status=plan.status,
        sessions=rows,
        inventory=inventory_body(await inventory.inventory(session, plan_id=plan.id)),
        serious_events=[serious_event_body(e) for e in events],
        inventory_flags=[flag_body(f) for f in flags],
    )


class PlanDosingApiController(Controller):
    tags = ["dosing"]
    guards = PRESCRIBER

    @get("/api/v1/plans/{plan_id:uuid}/dosing")
    async def read(
        self,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> PlanDosingBody:
        """The plan's sessions: check-ins (BP), reports (side effects, an early end and why), sitter
        attestations (an early end and why; `same_as_patient` when one came from the patient's address or
        device), serious events and inventory."""
        return await plan_dosing_body(db_session, await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in), settings)

    @post("/api/v1/plans/{plan_id:uuid}/review", status_code=200)
    async def review(
        self,
        plan_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> PlanBody:
        """Review the serious events that paused the plan, with a note, and resume or discontinue it."""
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in, lock=True)
        return await plan_body(
            db_session,
            await safety.review(db_session, plan, note=data.note, decision=data.decision, actor=actor, now=clock.now(), settings=settings),
        )

    @post("/api/v1/plans/{plan_id:uuid}/inventory-flags/{flag_id:uuid}/resolve", status_code=200)
    async def resolve(
        self,
        plan_id: FromPath[uuid.UUID],
        flag_id: FromPath[uuid.UUID],
        data: JSONBody[ResolveRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> FlagBody:
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in, lock=True)
        return flag_body(await inventory.resolve_flag(db_session, plan, flag_id=flag_id, note=data.note, actor=actor, now=clock.now()))
