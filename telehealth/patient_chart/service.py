"""One patient, as the care team sees them on one page: who they are and how to reach them, what happened
(newest first), the screening's flags in plain words, the plan and its progress, the home sessions with
their reports, the latest messages and notes, and the scores. Nothing is read here that an area does not
already offer: each part calls its area's service (the record's `collect`, notes_of, thread, score_history,
how_to_reach, ...). The caller has loaded the patient through `load_patient_for` (access and audit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.accounts.sessions import SignedIn
from telehealth.care_teams import service as care_teams
from telehealth.dosing import after_dose
from telehealth.dosing.inventory import sessions_reported
from telehealth.dosing.models import DosingReport, DosingSession
from telehealth.export.record import collect
from telehealth.intake import escalations
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.intake.sections import vitals_in_words
from telehealth.intake.service import latest_decision, latest_intake
from telehealth.lib.dates import age_on
from telehealth.messages.service import thread
from telehealth.notes.service import notes_of
from telehealth.outcomes.service import TRACKED, score_history
from telehealth.prescribing import encounters, plans
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.reassessment import score_change

LATEST_SHOWN = 3  # messages and notes: the newest few; their own pages hold the rest
TIMELINE_SHOWN = 40  # the newest events; the record page holds everything

APPOINTMENT_WORDS = {"consult": "Consultation", "reassessment": "Reassessment", "integration": "Integration session"}
APPOINTMENT_STATUS_WORDS = {
    "held": "held, not yet paid",
    "booked": "booked",
    "completed": "completed",
    "cancelled": "cancelled",
    "no_show": "missed (no-show)",
    "expired": "hold expired",
}
PLAN_STATUS_WORDS = {
    "draft": "draft, not signed",
    "signed": "signed",
    "sent_to_pharmacy": "sent to the pharmacy",
    "active": "active",
    "paused": "paused",
    "completed": "completed",
    "discontinued": "discontinued",
}
SESSION_STATUS_WORDS = {
    "scheduled": "scheduled",
    "unlocked": "taken, report not filed yet",
    "reported": "reported",
    "held": "held",
    "cancelled": "cancelled",
}
SCREENING_WORDS = {"eligible": "eligible", "needs_review": "needs a prescriber's review", "ineligible": "not eligible"}
FLAG_WORDS = {"needs_review": "Review before prescribing", "ineligible": "Rules out treatment"}
DECISION_WORDS = {"start_plan": "decided to start a plan", "decline": "declined", "refer_out": "referred out"}
# The report's yes/no answers as a reader is told them (dosing owns the table), and whether 911 was called.
REPORT_SYMPTOMS = (*((name, told) for name, _asked, told in after_dose.REPORT_SYMPTOMS), ("emergency_services_called", "911 called"))


@dataclass(frozen=True)
class Event:
    """One line of the timeline; `href` when the viewer has a page for it."""

    at: datetime
    kind: str
    text: str
    href: str | None = None


@dataclass(frozen=True)
class PlanLine:
    plan: TrochePlan
    prescriber_name: str
    reported: int
    own: bool  # the viewer prescribed it: the plan's own pages open for them

    @property
    def status_words(self) -> str:
        return PLAN_STATUS_WORDS.get(self.plan.status, self.plan.status)


@dataclass(frozen=True)
class SessionLine:
    session: DosingSession
    dose_mg: int | None
    report: DosingReport | None

    @property
    def status_words(self) -> str:
        return SESSION_STATUS_WORDS.get(self.session.status, self.session.status)

    @property
    def outcome_words(self) -> str:
        return report_in_words(self.report) if self.report else ""


@dataclass(frozen=True)
class ScoreLine:
    key: str
    title: str
    latest: int | None
    latest_at: datetime | None
    baseline: int | None
    change_percent: int | None
    response: bool
    remission: bool
    answers: int


@dataclass
class PatientChart:
    patient: Patient
    name: str
    age: int | None
    state: str | None
    phone: str | None
    emergency_contact: str | None
    care_team: list[care_teams.Member]
    vitals: list[tuple[str, str]]  # the intake's, in words: ("Blood pressure", "152/96 mmHg")
    screening_outcome: str | None
    screened_at: datetime | None
    flags: list[dict[str, Any]]
    plans: list[PlanLine]
    sessions: list[SessionLine]
    timeline: list[Event]
    timeline_total: int
    messages: list[tuple[Any, str]]
    message_count: int
    notes: list[tuple[Any, str, str]]
    note_count: int
    scores: list[ScoreLine]
    own_encounters: list[Any]


def report_in_words(report: DosingReport) -> str:
    """'completed; nausea, dizziness; dissociation 6/10; BP 130/85' for a report."""
    parts = ["completed" if report.completed else "not completed"]
    if symptoms := [words for name, words in REPORT_SYMPTOMS if getattr(report, name)]:
        parts.append(", ".join(symptoms))
    if report.dissociation:
        parts.append(f"dissociation {report.dissociation}/10")
    if report.systolic is not None:
        parts.append(f"BP {report.systolic}/{report.diastolic}")
    if report.ended_early:
        parts.append("ended early" + (f": {report.ended_early_reason}" if report.ended_early_reason else ""))
    return "; ".join(parts)


def _age(answers: dict[str, dict[str, Any]], patient: Patient, now: datetime) -> int | None:
    raw = answers.get("demographics", {}).get("date_of_birth")
    try:
        return age_on(date.fromisoformat(raw), now.astimezone(ZoneInfo(patient.timezone)).date()) if raw else None
    except (TypeError, ValueError):
        return None


async def patient_chart(session: AsyncSession, *, patient: Patient, viewer: SignedIn, now: datetime) -> PatientChart:
    """Everything on the clinician's page for one patient `viewer` may see (load_patient_for has decided that)."""
    record = await collect(session, patient=patient)
    reach = await escalations.how_to_reach(session, patient_id=patient.id)
    decision = await latest_decision(session, patient_id=patient.id)
    intake = await latest_intake(session, patient_id=patient.id)
    plan_by_id = {plan.id: plan for plan, _ in record.plans}
    plan_lines = [
        PlanLine(
            plan,
            name,
            await sessions_reported(session, plan_id=plan.id, through_session=plan.sessions),
            plan.prescriber_id == viewer.user_id,
        )
        for plan, name in reversed(record.plans)
    ]
    session_lines = [
        SessionLine(row, _dose(plan_by_id.get(row.plan_id), row.number), record.reports.get(row.id)) for row in reversed(record.sessions)
    ]
    all_messages = await thread(session, patient_id=patient.id)
    all_notes = await notes_of(session, patient=patient, reader=viewer)
    own_encounters = [e for e in await encounters.encounters_of(session, patient_id=patient.id) if e.prescriber_id == viewer.user_id]

    events: list[Event] = []
    encounter_of_appointment = {e.appointment_id: e for e in own_encounters}
    for appointment, clinician in record.appointments:
        encounter = encounter_of_appointment.get(appointment.id)
        events.append(
            Event(
                appointment.starts_at,
                "appointment",
                f"{APPOINTMENT_WORDS.get(appointment.appointment_type, appointment.appointment_type)} with {clinician}: "
                f"{APPOINTMENT_STATUS_WORDS.get(appointment.status, appointment.status)}",
                f"/encounters/{encounter.id}" if encounter else None,
            )
        )
    for encounter in own_encounters:
        if encounter.decided_at:
            words = DECISION_WORDS.get(encounter.decision or "", encounter.decision or "")
            events.append(Event(encounter.decided_at, "decision", f"Encounter: {words}", f"/encounters/{encounter.id}"))
    if intake is not None and intake.submitted_at is not None:
        events.append(Event(intake.submitted_at, "intake", "Intake submitted", f"/staff/patients/{patient.id}/intake"))
    if decision is not None:
        flags = sum(1 for reason in decision.reasons if reason.get("outcome") in FLAG_WORDS)
        events.append(
            Event(
                decision.screened_at,
                "screening",
                f"Screening: {SCREENING_WORDS.get(decision.outcome, decision.outcome)}"
                + (f" ({flags} flag{'s' if flags != 1 else ''})" if flags else ""),
                "#flags",
            )
        )
    for plan_line in plan_lines:
        plan = plan_line.plan
        href = f"/plans/{plan.id}" if plan_line.own else None
        if plan.signed_at:
            events.append(Event(plan.signed_at, "plan", f"Plan of {plan.sessions} sessions signed by {plan_line.prescriber_name}", href))
        if plan.status in ("paused", "discontinued", "completed"):
            events.append(
                Event(
                    plan.updated_at,
                    "plan",
                    f"Plan {plan_line.status_words}" + (f": {plan.status_reason}" if plan.status_reason else ""),
                    href,
                )
            )
        for batch in await plans.batches_of(session, plan_id=plan.id):
            covers = f"shipment {batch.sequence} (sessions {batch.first_session}–{batch.last_session})"
            if batch.shipped_at:
                events.append(Event(batch.shipped_at, "shipment", f"Pharmacy shipped {covers}", href))
            if batch.delivered_at:
                events.append(Event(batch.delivered_at, "shipment", f"Delivered: {covers}", href))
    for line in session_lines:
        row = line.session
        dose = f" ({line.dose_mg} mg)" if line.dose_mg else ""
        if line.report is not None:
            events.append(Event(line.report.reported_at, "session", f"Home session {row.number}{dose} reported: {line.outcome_words}"))
        elif row.unlocked_at is not None:
            events.append(Event(row.unlocked_at, "session", f"Home session {row.number}{dose} taken; report not filed yet"))
        elif row.status in ("held", "cancelled"):
            events.append(
                Event(
                    row.scheduled_at,
                    "session",
                    f"Home session {row.number}{dose} {line.status_words}"
                    + (f" ({row.held_reason.replace('_', ' ')})" if row.held_reason else ""),
                )
            )
    for escalation in await escalations.escalations_of(session, patient_id=patient.id):
        what = "; ".join(escalations.triggers_in_words(escalation.rule_ids)) or "a safety answer"
        kind = "Crisis escalation" if escalation.kind == "crisis" else "Call requested"
        events.append(
            Event(escalation.opened_at, "escalation", f"{kind}: {what}", "/escalations" if escalation.contact_recorded_at is None else None)
        )
        if escalation.contact_recorded_at is not None:
            events.append(Event(escalation.contact_recorded_at, "escalation", "Escalation closed: a clinician reached the patient"))
    events.sort(key=lambda event: event.at, reverse=True)

    history = await score_history(session, patient_id=patient.id)
    scores = []
    for key in TRACKED:
        points = history[key]
        change = score_change(key, [p.score for p in points]) if points else None
        scores.append(
            ScoreLine(
                key,
                QUESTIONNAIRES[key].title,
                points[-1].score if points else None,
                points[-1].at if points else None,
                change.baseline if change else None,
                change.change_percent if change and len(points) > 1 else None,
                bool(change and change.response),
                bool(change and change.remission),
                len(points),
            )
        )

    return PatientChart(
        patient=patient,
        name=record.account.full_name,
        age=_age(record.answers, patient, now),
        state=patient.state_of_residence,
        phone=reach.phone,
        emergency_contact=reach.emergency_contact,
        care_team=await care_teams.members(session, patient_id=patient.id),
        vitals=vitals_in_words(record.answers),
        screening_outcome=SCREENING_WORDS.get(decision.outcome, decision.outcome) if decision else None,
        screened_at=decision.screened_at if decision else None,
        flags=[
            {**reason, "outcome_words": FLAG_WORDS[reason["outcome"]]}
            for reason in (decision.reasons if decision else [])
            if reason.get("outcome") in FLAG_WORDS
        ],
        plans=plan_lines,
        sessions=session_lines,
        timeline=events[:TIMELINE_SHOWN],
        timeline_total=len(events),
        messages=list(reversed(all_messages[-LATEST_SHOWN:])),
        message_count=len(all_messages),
        notes=all_notes[:LATEST_SHOWN],
        note_count=len(all_notes),
        scores=scores,
        own_encounters=own_encounters,
    )


def _dose(plan: TrochePlan | None, number: int) -> int | None:
    return plan.doses_mg[number - 1] if plan is not None and 0 < number <= len(plan.doses_mg) else None
