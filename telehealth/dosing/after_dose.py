"""After the dose: the patient's report (a serious answer pauses the plan; the troches are counted; the
plan moves on) and the sitter's end attestation (a 911 call pauses the plan)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.audit.service import Actor, record_audit_event
from telehealth.dosing import inventory, progress
from telehealth.dosing.alerts import alert_care_team
from telehealth.dosing.gates import Pressure, pressure_level
from telehealth.dosing.models import DosingReport, DosingSession, SitterAttestation
from telehealth.dosing.safety import record_serious_event
from telehealth.dosing.sessions import own_session, units_for
from telehealth.dosing.sitters import open_link, same_name, spend_link
from telehealth.dosing.states import SESSION_TRANSITIONS, LinkPurpose, SessionStatus
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.lib.errors import Conflict, InvalidInput, RuleRefused
from telehealth.lib.states import change_status
from telehealth.lib.validation import plain_text_problem
from telehealth.prescribing.models import TrochePlan
from telehealth.settings import Settings

SERIOUS_REPORT_ANSWERS = ("emergency_services_called", "fainting", "chest_pain", "suicidal_thoughts")


@dataclass(frozen=True)
class ReportAnswers:
    completed: bool
    troches_used: int
    nausea: bool = False
    vomiting: bool = False
    dizziness: bool = False
    dissociation: int = 0
    headache: bool = False
    bladder_symptoms: bool = False
    fainting: bool = False
    chest_pain: bool = False
    suicidal_thoughts: bool = False
    emergency_services_called: bool = False
    other_side_effects: str | None = None
    systolic: int | None = None
    diastolic: int | None = None
    notes: str | None = None
    problems_found: dict[str, str] = field(default_factory=dict)

    def problems(self) -> dict[str, str]:
        problems = dict(self.problems_found)
        if not 0 <= self.troches_used <= 100:
            problems["troches_used"] = "must be from 0 to 100"
        if not 0 <= self.dissociation <= 10:
            problems["dissociation"] = "must be from 0 to 10"
        if (self.systolic is None) != (self.diastolic is None):
            problems["systolic" if self.systolic is None else "diastolic"] = "give both numbers of the blood pressure, or neither"
        elif self.systolic is not None and not (50 <= self.systolic <= 300 and 20 <= (self.diastolic or 0) <= 200):
            problems["systolic"] = "is not a blood pressure we can record"
        for name, longest in (("other_side_effects", 1000), ("notes", 4000)):
            if problem := plain_text_problem(getattr(self, name) or "", longest=longest):
                problems[name] = problem
        return problems


def serious_reasons(answers: ReportAnswers, settings: Settings) -> list[str]:
    reasons = [name for name in SERIOUS_REPORT_ANSWERS if getattr(answers, name)]
    if answers.systolic is not None and answers.diastolic is not None and pressure_level(answers.systolic, answers.diastolic, settings.thresholds) is Pressure.URGENT:
        reasons.append("blood_pressure_urgent")
    return reasons


async def file_report(
    session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, answers: ReportAnswers, actor: Actor, now: datetime, settings: Settings
) -> DosingReport:
    """The patient's report. A serious event pauses the plan; the count of troches is checked; the next
    batch is released when due; the last session's report completes the plan."""
    if problems := answers.problems():
        raise InvalidInput("request.invalid", "Some answers of the report need another look.", fields=problems)
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status == SessionStatus.REPORTED:
        raise Conflict("dosing_session.already_reported", "This session is reported already.")
    if row.status != SessionStatus.UNLOCKED:
        raise RuleRefused("dosing_session.not_unlocked", "Only a session that was unlocked can be reported.")
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    await change_status(session, DosingSession, row.id, table=SESSION_TRANSITIONS, source=SessionStatus.UNLOCKED, target=SessionStatus.REPORTED,
                        actor=actor, now=now, patient_id=patient.id, values={"updated_at": now})  # fmt: skip
    values = {name: getattr(answers, name) for name in DosingReport.model_fields if name not in ("dosing_session_id", "reported_at")}
    values["other_side_effects"] = (answers.other_side_effects or "").strip() or None
    values["notes"] = (answers.notes or "").strip() or None
    report = DosingReport(dosing_session_id=row.id, reported_at=now, **values)
    session.add(report)
    await session.flush()
    if reasons := serious_reasons(answers, settings):
        escalated = answers.suicidal_thoughts and await open_crisis_escalation(
            session, patient_id=patient.id, rule_ids=["dosing.report.suicidal_thoughts"], actor=actor, now=now, settings=settings
        )  # fmt: skip
        await record_serious_event(session, plan, source="report", reasons=reasons, now=now, dosing_session_id=row.id, alert=not escalated)
    await inventory.check_after_report(session, plan, units_prescribed=units_for(plan, row.number), troches_used=answers.troches_used, now=now)
    await session.refresh(plan)
    await progress.advance(session, plan, now=now)
    return report


OUTCOMES = ("alert_and_safe", "event")


async def attest_end(
    session: AsyncSession, *, token: str, typed_name: str, outcome: str, event_description: str, emergency_services_called: bool,
    actor: Actor, now: datetime,
) -> SitterAttestation:
    """The sitter says how the session ended: the patient alert and safe, or an event (what, and whether
    emergency services were called; a call pauses the plan)."""
    opened = await open_link(session, token=token, purpose=LinkPurpose.END, now=now)
    row = await session.get(DosingSession, opened.link.dosing_session_id)
    assert row is not None
    if row.status not in (SessionStatus.UNLOCKED, SessionStatus.REPORTED):
        raise RuleRefused("dosing_session.not_unlocked", "The dose has not been unlocked yet: come back to this page after it.")
    problems = {}
    if outcome not in OUTCOMES:
        problems["outcome"] = "choose: alert and safe, or something happened"
    if outcome == "event" and not event_description.strip():
        problems["event_description"] = "say what happened"
    if problem := plain_text_problem(event_description, longest=2000):
        problems["event_description"] = problem
    if not same_name(typed_name, opened.sitter.full_name):
        problems["typed_name"] = f"type your full name as given: {opened.sitter.full_name}"
    if problems:
        raise InvalidInput("request.invalid", "The end of the session is not recorded yet.", fields=problems)
    await spend_link(session, token=token, purpose=LinkPurpose.END, now=now)
    ended = SitterAttestation(
        dosing_session_id=row.id, sitter_id=opened.sitter.id, kind="end", typed_name=" ".join(typed_name.split()), outcome=outcome,
        event_description=event_description.strip() or None, emergency_services_called=emergency_services_called and outcome == "event",
        attested_at=now, ip=actor.ip, user_agent=(actor.user_agent or "")[:400] or None,
    )  # fmt: skip
    session.add(ended)
    await session.flush()
    await record_audit_event(session, actor=actor, action="dosing_session.sitter_end", resource_type="dosing_session", resource_id=row.id,
                             patient_id=row.patient_id, now=now, reason=outcome)  # fmt: skip
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    if ended.emergency_services_called:
        await record_serious_event(session, plan, source="sitter", reasons=["emergency_services_called"], now=now, dosing_session_id=row.id)
    elif outcome == "event":
        # An event without a 911 call: the care team looks at it, the plan goes on.
        await alert_care_team(session, plan, template="care_team_update", key=f"sitter_event:{row.id}", now=now)
    return ended
