"""After the dose: the patient's report (a serious answer pauses the plan; the troches are counted; the
plan moves on) and the sitter's end attestation (a 911 call pauses the plan). Neither comes before the
observation window after unlock closes (DOMAIN.md: 60 min) unless it says why it ended early; an early
end is recorded and flagged to the care team."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.audit.service import change_status, record_audit_event
from telehealth.dosing import inventory, progress
from telehealth.dosing.alerts import alert_care_team
from telehealth.dosing.gates import Pressure, pressure_level
from telehealth.dosing.models import DosingReport, DosingSession, SitterAttestation
from telehealth.dosing.safety import record_serious_event
from telehealth.dosing.sessions import attestation, locked_session, own_session, units_for
from telehealth.dosing.sitter_checks import flag_for_prescriber, same_as_patient
from telehealth.dosing.sitters import open_link, revoke_links, same_name, spend_link
from telehealth.dosing.states import SESSION_TRANSITIONS, LinkPurpose, SessionStatus
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, RuleRefused
from telehealth.lib.validation import plain_text_problem
from telehealth.prescribing.models import TrochePlan
from telehealth.settings import Settings

SERIOUS_REPORT_ANSWERS = ("emergency_services_called", "fainting", "chest_pain", "suicidal_thoughts")
# The report's yes/no answers once, for every page that shows them: (field, as the patient is asked, as a reader
# of the report is told). The form, the clinician's patient page and the record all read this table.
REPORT_SYMPTOMS: tuple[tuple[str, str, str], ...] = (
    ("nausea", "Nausea", "nausea"),
    ("vomiting", "Vomiting", "vomiting"),
    ("dizziness", "Dizziness", "dizziness"),
    ("headache", "Headache", "headache"),
    ("bladder_symptoms", "Bladder pain or urgency", "bladder pain or urgency"),
    ("fainting", "Fainting", "fainting"),
    ("chest_pain", "Chest pain", "chest pain"),
    ("suicidal_thoughts", "Thoughts of suicide or of hurting myself", "thoughts of suicide or self-harm"),
)
EARLY_REASON_LONGEST = 1000


def observation_ends_at(row: DosingSession, settings: Settings) -> datetime | None:
    """When the observation window after unlock closes: from then the sitter may attest the end and the
    patient report the session without giving a reason. None until the dose is unlocked."""
    if row.unlocked_at is None:
        return None
    return row.unlocked_at + timedelta(minutes=settings.thresholds.observation_minutes)


def _ended_early(
    row: DosingSession, *, reason: str, explained: bool, now: datetime, settings: Settings, zone: str
) -> tuple[bool, str | None]:
    """(ended early, the reason to record). Before the window closes a reason is required, unless what
    happened already explains it (a serious answer, a sitter's event): an emergency is never held up
    asking why. After it, nothing is early and a reason given anyway is not kept."""
    closes = observation_ends_at(row, settings)
    assert closes is not None  # only called on an unlocked session
    if now >= closes:
        return False, None
    reason = reason.strip()
    if not reason and not explained:
        minutes = settings.thresholds.observation_minutes
        until = closes.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z")
        raise RuleRefused(
            "dosing_session.observation_window_open",
            f"The session is observed for {minutes} minutes after unlock, until {until}. "
            "To end it earlier, say why: the prescriber is told.",
            fields={"ended_early_reason": f"is required before {until}"},
            extra={"window_closes_at": closes.isoformat()},
        )
    return True, reason or None


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
    ended_early_reason: str | None = None  # required before the observation window closes (file_report)
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
        for name, longest in (("other_side_effects", 1000), ("notes", 4000), ("ended_early_reason", EARLY_REASON_LONGEST)):
            if problem := plain_text_problem(getattr(self, name) or "", longest=longest):
                problems[name] = problem
        return problems


def serious_reasons(answers: ReportAnswers, settings: Settings) -> list[str]:
    reasons = [name for name in SERIOUS_REPORT_ANSWERS if getattr(answers, name)]
    if (
        answers.systolic is not None
        and answers.diastolic is not None
        and pressure_level(answers.systolic, answers.diastolic, settings.thresholds) is Pressure.URGENT
    ):
        reasons.append("blood_pressure_urgent")
    return reasons


async def file_report(
    session: AsyncSession,
    *,
    patient: Patient,
    dosing_session_id: uuid.UUID,
    answers: ReportAnswers,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> DosingReport:
    """The patient's report, once the dose was unlocked (409 before). Before the observation window closes
    it needs `ended_early_reason` (a serious answer stands for one); an early report is recorded and the
    care team alerted. A serious event pauses the plan; the count of troches is checked; the next batch is
    released when due; the last session's report completes the plan."""
    if problems := answers.problems():
        raise InvalidInput("request.invalid", "Some answers of the report need another look.", fields=problems)
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status == SessionStatus.REPORTED:
        raise Conflict("dosing_session.already_reported", "This session is reported already.")
    if row.status != SessionStatus.UNLOCKED:
        raise Conflict("dosing_session.not_unlocked", "Only a session that was unlocked can be reported.")
    reasons = serious_reasons(answers, settings)
    ended_early, early_reason = _ended_early(
        row, reason=answers.ended_early_reason or "", explained=bool(reasons), now=now, settings=settings, zone=patient.timezone
    )
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    await change_status(
        session,
        DosingSession,
        row.id,
        table=SESSION_TRANSITIONS,
        source=SessionStatus.UNLOCKED,
        target=SessionStatus.REPORTED,
        actor=actor,
        now=now,
        patient_id=patient.id,
        values={"updated_at": now},
    )
    values = {
        name: getattr(answers, name)
        for name in DosingReport.model_fields
        if name not in ("dosing_session_id", "reported_at", "ended_early")
    }
    values["other_side_effects"] = (answers.other_side_effects or "").strip() or None
    values["notes"] = (answers.notes or "").strip() or None
    values["ended_early"], values["ended_early_reason"] = ended_early, early_reason
    report = DosingReport(dosing_session_id=row.id, reported_at=now, **values)
    session.add(report)
    await session.flush()
    if reasons:
        escalated = answers.suicidal_thoughts and await open_crisis_escalation(
            session, patient_id=patient.id, rule_ids=["dosing.report.suicidal_thoughts"], actor=actor, now=now, settings=settings
        )
        await record_serious_event(session, plan, source="report", reasons=reasons, now=now, dosing_session_id=row.id, alert=not escalated)
    elif ended_early:  # a serious event alerts already; this email would only repeat it
        await alert_care_team(session, plan, template="care_team_update", key=f"ended_early:report:{row.id}", now=now)
    await inventory.check_after_report(
        session, plan, units_prescribed=units_for(plan, row.number), troches_used=answers.troches_used, completed=answers.completed, now=now
    )
    await session.refresh(plan)
    await progress.advance(session, plan, now=now)
    return report


OUTCOMES = ("alert_and_safe", "event")


async def attest_end(
    session: AsyncSession,
    *,
    token: str,
    typed_name: str,
    outcome: str,
    event_description: str,
    emergency_services_called: bool,
    actor: Actor,
    now: datetime,
    settings: Settings,
    ended_early_reason: str = "",
) -> SitterAttestation:
    """The sitter says how the session ended: the patient alert and safe, or an event (what, and whether
    emergency services were called; a call pauses the plan). Not before unlock (409); before the
    observation window closes, "alert and safe" needs `ended_early_reason` (an event's description stands
    for one), and an early end is recorded and the care team alerted."""
    opened = await open_link(session, token=token, purpose=LinkPurpose.END, actor=actor, now=now)
    # Locked (its patient, then the row: accounts/locks.py): the link from the presence page and the one
    # emailed when the window closes are both live. Submits at once end the session once, the others answer
    # 409/410; without the lock each spent its own link, then waited to withdraw the other's (a deadlock, a 500).
    row = await locked_session(session, opened.session_id)
    assert row is not None
    if row.status not in (SessionStatus.UNLOCKED, SessionStatus.REPORTED):
        raise Conflict("dosing_session.not_unlocked", "The dose has not been unlocked yet: come back to this page after it.")
    if await attestation(session, dosing_session_id=row.id, kind="end") is not None:
        raise Conflict("dosing_session.already_ended", "The end of this session is recorded already.")
    problems = {}
    if outcome not in OUTCOMES:
        problems["outcome"] = "choose: alert and safe, or something happened"
    if outcome == "event" and not event_description.strip():
        problems["event_description"] = "say what happened"
    if problem := plain_text_problem(event_description, longest=2000):
        problems["event_description"] = problem
    if not same_name(typed_name, opened.sitter.full_name):
        problems["typed_name"] = f"type your full name as given: {opened.sitter.full_name}"
    if problem := plain_text_problem(ended_early_reason, longest=EARLY_REASON_LONGEST):
        problems["ended_early_reason"] = problem
    if problems:
        raise InvalidInput("request.invalid", "The end of the session is not recorded yet.", fields=problems)
    patient = await session.get(Patient, row.patient_id)
    assert patient is not None
    ended_early, early_reason = _ended_early(
        row, reason=ended_early_reason, explained=outcome == "event", now=now, settings=settings, zone=patient.timezone
    )
    await spend_link(session, token=token, purpose=LinkPurpose.END, actor=actor, now=now)
    await revoke_links(session, now=now, dosing_session_id=row.id)  # the session's other end link stops working
    ended = SitterAttestation(
        dosing_session_id=row.id,
        sitter_id=opened.sitter.id,
        kind="end",
        typed_name=" ".join(typed_name.split()),
        outcome=outcome,
        event_description=event_description.strip() or None,
        emergency_services_called=emergency_services_called and outcome == "event",
        ended_early=ended_early,
        ended_early_reason=early_reason,
        attested_at=now,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:400] or None,
        same_as_patient=await same_as_patient(session, patient_id=row.patient_id, actor=actor, now=now),
    )
    session.add(ended)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="dosing_session.sitter_end",
        resource_type="dosing_session",
        resource_id=row.id,
        patient_id=row.patient_id,
        now=now,
        reason=outcome,
    )
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    if ended.emergency_services_called:
        await record_serious_event(session, plan, source="sitter", reasons=["emergency_services_called"], now=now, dosing_session_id=row.id)
    elif outcome == "event":
        # An event without a 911 call: the care team looks at it, the plan goes on.
        await alert_care_team(session, plan, template="care_team_update", key=f"sitter_event:{row.id}", now=now)
    elif ended_early:
        await alert_care_team(session, plan, template="care_team_update", key=f"ended_early:sitter:{row.id}", now=now)
    await flag_for_prescriber(session, ended, plan, now=now, alerted=ended.emergency_services_called or outcome == "event" or ended_early)
    return ended
