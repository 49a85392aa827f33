"""How a screening decision is told to the patient: kind, plain, no rule ids."""

from __future__ import annotations

from telehealth.intake.models import ScreeningDecision
from telehealth.intake.schemas import PatientResult

CRISIS_RESOURCES = [
    "Call or text 988 (Suicide & Crisis Lifeline), any time, day or night.",
    "If you are in danger now, call 911 or go to the nearest emergency room.",
    "Our care team has been told and will contact you. You do not need to wait for us to get help.",
]
OTHER_CARE_OPTIONS = [
    "Talk with your primary care clinician or a psychiatrist about other treatments that may suit you.",
    "The SAMHSA National Helpline (1-800-662-4357) is free, confidential and open every day.",
]


def patient_result(decision: ScreeningDecision) -> PatientResult:
    if decision.outcome == "ineligible":
        return PatientResult(
            outcome="ineligible",
            headline="This program is not a safe fit for you right now",
            explanations=[*dict.fromkeys(r["patient_text"] for r in decision.reasons if r["outcome"] == "ineligible"), *OTHER_CARE_OPTIONS],
            next_step="You have not been charged anything. You are welcome to contact us with questions.",
            crisis=decision.crisis,
        )
    if decision.outcome == "needs_review":
        return PatientResult(
            outcome="needs_review",
            headline="A prescriber will go over a few answers with you",
            explanations=list(dict.fromkeys(r["patient_text"] for r in decision.reasons)),
            next_step="Your next step is to book a video consultation; the prescriber will review these points with you there.",
            crisis=decision.crisis,
        )
    return PatientResult(
        outcome="eligible",
        headline="You can go on to the next step",
        explanations=[],
        next_step="Your next step is to book a video consultation with a prescriber.",
        crisis=decision.crisis,
    )
