"""The gates before a home dose, as pure rules over plain facts: each failed gate is a code and a sentence
for the patient, and `unlock` answers with every one that failed, not just the first.

DOMAIN.md: a signed, not paused, not discontinued plan; the dose's batch delivered; at least the minimum
interval since the last dose; a check-in within 60 min; a sitter verified by a coordinator (when the clinic
requires it) and their presence for this session; BP below 140/90 (180/120 is the urgent path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from telehealth.settings import ClinicalThresholds

PHQ9_ITEM9_CRISIS = 3  # "nearly every day"; 1 and 2 ask for contact (DOMAIN.md: graded check-in answers)


@dataclass(frozen=True)
class Gate:
    code: str
    detail: str


class Pressure(StrEnum):
    NORMAL = "normal"
    HOLD = "hold"  # at or above 140/90: not today (one re-check)
    URGENT = "urgent"  # at or above 180/120: emergency instructions, the care team alerted


def pressure_level(systolic: int, diastolic: int, thresholds: ClinicalThresholds) -> Pressure:
    """Either number at or above its threshold counts: 140/85 holds like 135/90 does."""
    urgent_systolic, urgent_diastolic = thresholds.bp_urgent
    hold_systolic, hold_diastolic = thresholds.bp_needs_review
    if systolic >= urgent_systolic or diastolic >= urgent_diastolic:
        return Pressure.URGENT
    if systolic >= hold_systolic or diastolic >= hold_diastolic:
        return Pressure.HOLD
    return Pressure.NORMAL


@dataclass(frozen=True)
class CheckInFacts:
    checked_in_at: datetime
    systolic: int
    diastolic: int
    phq9_item9: int
    fasted_two_hours: bool
    no_alcohol_or_sedatives: bool


def check_in_gates(check_in: CheckInFacts, thresholds: ClinicalThresholds) -> list[Gate]:
    """What the answers themselves rule out (time aside)."""
    gates = []
    level = pressure_level(check_in.systolic, check_in.diastolic, thresholds)
    if level is Pressure.URGENT:
        gates.append(
            Gate(
                "gate.blood_pressure_urgent",
                (
                    f"Your blood pressure ({check_in.systolic}/{check_in.diastolic}) is very high. Do not take a dose. "
                    "If you have a severe headache, chest pain, shortness of breath, weakness or trouble speaking, call 911 now. "
                    "Your care team has been told and will contact you."
                ),
            )
        )
    elif level is Pressure.HOLD:
        gates.append(
            Gate(
                "gate.blood_pressure_high",
                (
                    f"Your blood pressure ({check_in.systolic}/{check_in.diastolic}) is at or above "
                    f"{thresholds.bp_needs_review[0]}/{thresholds.bp_needs_review[1]}. Rest quietly and measure once more after "
                    f"{thresholds.bp_recheck_after_minutes} minutes; if it is still high, today's session is held."
                ),
            )
        )
    # Graded (DOMAIN.md): nearly every day is the crisis path; several days or more than half the days hold
    # the dose and ask the care team to reach the patient, without pausing the plan.
    if check_in.phq9_item9 >= PHQ9_ITEM9_CRISIS:
        gates.append(
            Gate(
                "gate.crisis",
                "You told us you have had thoughts of being better off dead or of hurting yourself. "
                "Today's dose is held, and a clinician will contact you. If you are in danger now, call or text 988, or call 911.",
            )
        )
    elif check_in.phq9_item9 > 0:
        gates.append(
            Gate(
                "gate.care_team_contact",
                "You told us you have had thoughts of being better off dead or of hurting yourself. "
                "Today's dose is held, and someone from your care team will call you before your next one. "
                "If you are in danger now, call or text 988, or call 911.",
            )
        )
    if not check_in.fasted_two_hours:
        gates.append(Gate("gate.not_fasting", "Nothing to eat or drink (except sips of water) for 2 hours before the dose."))
    if not check_in.no_alcohol_or_sedatives:
        gates.append(Gate("gate.alcohol_or_sedatives", "No dose on a day with alcohol or sedatives: today's session is held."))
    return gates


@dataclass(frozen=True)
class UnlockFacts:
    now: datetime
    scheduled_at: datetime
    session_status: str
    plan_status: str
    batch_delivered: bool
    last_dose_at: datetime | None
    min_hours_between: int
    check_in: CheckInFacts | None
    sitter_confirmed: bool
    sitter_verified: bool  # by a coordinator's call, or the clinic does not require it (SITTER_VERIFICATION_REQUIRED)
    sitter_present: bool
    crisis_open: bool
    contact_requested: bool  # a contact request from an earlier check-in waits for a clinician


def unlock_gates(facts: UnlockFacts, thresholds: ClinicalThresholds) -> list[Gate]:
    """Every gate that stands between the patient and this dose; empty means unlock."""
    gates = []
    if facts.plan_status == "paused":
        gates.append(Gate("gate.plan_paused", "Your plan is paused until your prescriber reviews it."))
    elif facts.plan_status == "discontinued":
        gates.append(Gate("gate.plan_discontinued", "Your plan was stopped: no more sessions can be taken."))
    elif facts.plan_status != "active":
        gates.append(Gate("gate.plan_not_active", "Your plan is not active."))
    if facts.session_status == "held":
        gates.append(Gate("gate.session_held", "This session was held after the check-in. Schedule another day."))
    elif facts.session_status != "scheduled":
        gates.append(Gate("gate.session_not_open", "This session cannot be unlocked."))
    window = timedelta(minutes=thresholds.checkin_valid_minutes)
    if facts.now < facts.scheduled_at - window:
        gates.append(Gate("gate.too_early", f"The session opens {thresholds.checkin_valid_minutes} minutes before its time."))
    elif facts.now > facts.scheduled_at + timedelta(minutes=thresholds.unlock_late_minutes):
        gates.append(Gate("gate.window_passed", "This session's time has passed. Schedule it again."))
    if not facts.batch_delivered:
        gates.append(Gate("gate.batch_not_delivered", "The shipment with this dose has not been delivered yet."))
    interval = timedelta(hours=facts.min_hours_between)
    if facts.last_dose_at is not None and facts.now - facts.last_dose_at < interval:
        gates.append(Gate("gate.too_soon", f"Your plan needs at least {facts.min_hours_between} hours between doses."))
    if facts.check_in is None:
        gates.append(Gate("gate.check_in_missing", "Check in first: blood pressure, pulse, mood and a few questions."))
    elif facts.now - facts.check_in.checked_in_at > window:
        gates.append(
            Gate("gate.check_in_stale", f"Your check-in is more than {thresholds.checkin_valid_minutes} minutes old. Check in again.")
        )
    else:
        gates.extend(check_in_gates(facts.check_in, thresholds))
    said_already = any(gate.code in ("gate.crisis", "gate.care_team_contact") for gate in gates)
    if facts.crisis_open and not said_already:
        gates.append(Gate("gate.crisis_open", "A clinician needs to speak with you before your next dose."))
    elif facts.contact_requested and not said_already:
        gates.append(
            Gate("gate.care_team_contact_pending", "Someone from your care team will call you; your next dose opens once you have spoken.")
        )
    if not facts.sitter_confirmed:
        gates.append(Gate("gate.no_sitter", "This session has no confirmed sitter. Choose one, or reschedule."))
        return gates
    if not facts.sitter_verified:
        gates.append(
            Gate(
                "gate.sitter_not_verified",
                "Our team has not verified your sitter yet: a coordinator calls each new sitter for a few "
                "minutes before their first session. Choose a verified sitter, or reschedule.",
            )
        )
    if not facts.sitter_present:
        gates.append(Gate("gate.sitter_not_present", "Your sitter has not confirmed they are with you for this session yet."))
    return gates
