"""Screening: DOMAIN.md's rules turn an intake into eligible, needs_review or ineligible, with every reason.

Pure functions over a `ScreeningInput`; the clinic-adjustable numbers come from `ClinicalThresholds`.
Each reason carries a rule id, text for the clinician, kind text for the patient (no rule ids, no jargon)
and the evidence (the concrete answer or reading that triggered it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from telehealth.intake.questionnaires import CSSRS, PHQ9
from telehealth.lib.dates import age_on
from telehealth.settings import ClinicalThresholds


class Outcome(StrEnum):
    """What screening decides; needs_review means a prescriber must acknowledge each flag."""

    ELIGIBLE = "eligible"
    NEEDS_REVIEW = "needs_review"
    INELIGIBLE = "ineligible"


@dataclass(frozen=True)
class Reason:
    """One rule that fired. `crisis` reasons need contact now (they also carry outcome needs_review)."""

    rule_id: str
    outcome: Outcome
    clinician_text: str
    patient_text: str
    evidence: str
    crisis: bool = False


# The intake form asks "Have you ever been diagnosed with or treated for any of these?" over these keys.
CONDITIONS: dict[str, str] = {
    "psychosis_or_schizophrenia": "Psychosis or schizophrenia",
    "bipolar_or_mania": "Bipolar disorder, or an episode of mania",
    "seizure_disorder": "Seizures or epilepsy",
    "liver_disease": "Liver disease (such as cirrhosis or hepatitis)",
    "interstitial_cystitis_or_bladder": "Interstitial cystitis, or bladder problems from ketamine",
    "aneurysm": "An aneurysm (in the brain, chest or belly)",
    "coronary_disease": "Coronary artery disease, angina or a heart attack",
    "heart_failure": "Heart failure",
    "stroke": "A stroke",
}

# "Do you currently take any of these?"
MEDICATION_CLASSES: dict[str, str] = {
    "benzodiazepines": "Benzodiazepines (such as alprazolam, lorazepam, clonazepam)",
    "lamotrigine": "Lamotrigine (Lamictal)",
    "maoi": "MAO inhibitors (such as phenelzine, tranylcypromine, selegiline)",
    "opioids": "Opioids (such as oxycodone, hydrocodone, tramadol, methadone, buprenorphine)",
    "stimulants": "Stimulants (such as amphetamine salts, methylphenidate, lisdexamfetamine)",
}


@dataclass(frozen=True)
class ScreeningInput:
    """The intake answers screening needs. Construction refuses unknown condition or medication keys
    (ValueError) and incomplete or invalid questionnaires (InvalidInput naming the fields)."""

    date_of_birth: date
    screened_on: date
    pregnant: bool
    breastfeeding: bool
    conditions: frozenset[str]
    medication_classes: frozenset[str]
    ketamine_misuse_ever: bool
    substance_dependence_12_months: bool
    bp_systolic: int
    bp_diastolic: int
    phq9: Mapping[str, int]
    cssrs: Mapping[str, int]

    def __post_init__(self) -> None:
        if unknown := set(self.conditions) - CONDITIONS.keys():
            raise ValueError(f"unknown condition keys: {sorted(unknown)}")
        if unknown := set(self.medication_classes) - MEDICATION_CLASSES.keys():
            raise ValueError(f"unknown medication class keys: {sorted(unknown)}")
        if self.screened_on < self.date_of_birth:
            raise ValueError("screened_on is before date_of_birth")
        if self.bp_systolic <= 0 or self.bp_diastolic <= 0:
            raise ValueError("blood pressure readings must be positive")
        # A missing PHQ-9 item 9 must not pass as "0": screening only sees complete, checked answers.
        object.__setattr__(self, "phq9", PHQ9.validate(self.phq9))
        object.__setattr__(self, "cssrs", CSSRS.validate(self.cssrs))
        object.__setattr__(self, "conditions", frozenset(self.conditions))
        object.__setattr__(self, "medication_classes", frozenset(self.medication_classes))


@dataclass(frozen=True)
class ScreeningResult:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    crisis: bool

    @property
    def crisis_reasons(self) -> tuple[Reason, ...]:
        return tuple(reason for reason in self.reasons if reason.crisis)


def screen_intake(data: ScreeningInput, thresholds: ClinicalThresholds) -> ScreeningResult:
    """Apply every screening rule: ineligible if any reason is; else needs_review if any reason exists
    (crisis reasons are needs_review too, a clinician must see them); else eligible.

    Reasons come ineligible first, then crisis, then the other review flags, each group in rule order.
    """
    reasons = [
        *_age_rules(data, thresholds),
        *_history_rules(data),
        *_blood_pressure_rules(data, thresholds),
        *_suicide_risk_rules(data),
    ]
    reasons.sort(key=lambda r: (r.outcome != Outcome.INELIGIBLE, not r.crisis))
    if any(reason.outcome == Outcome.INELIGIBLE for reason in reasons):
        outcome = Outcome.INELIGIBLE
    elif reasons:
        outcome = Outcome.NEEDS_REVIEW
    else:
        outcome = Outcome.ELIGIBLE
    return ScreeningResult(outcome=outcome, reasons=tuple(reasons), crisis=any(r.crisis for r in reasons))


_INELIGIBLE, _REVIEW = Outcome.INELIGIBLE, Outcome.NEEDS_REVIEW
_HEART = (
    "Ketamine raises blood pressure and heart rate for a while after each dose, which isn't safe with the "
    "heart or blood vessel condition you told us about. Our care team can help you look at other options."
)
_MEDICINES = "A prescriber will go over your current medicines with you, since some can interact with ketamine."
_SELF_HARM = (
    "Thank you for answering honestly about thoughts of death or self-harm. A clinician will talk with you "
    "about how you are doing before treatment. If you feel unsafe, call or text 988 any time."
)
_CRISIS = (
    "Your answers tell us you may be going through something very painful right now, and we want you to be "
    "safe. If you are thinking about ending your life, call or text 988 (Suicide & Crisis Lifeline) any "
    "time, or call 911 if you are in danger right now. A member of our care team will reach out to you."
)

# rule id -> (outcome, clinician text, patient text). Texts may name a threshold as {low}/{high}/{age}.
# Every rule id starting "crisis." is a crisis: needs_review, plus crisis resources and alerts at once.
_RULES: dict[str, tuple[Outcome, str, str]] = {
    "age.under_18": (
        _INELIGIBLE,
        "Under 18: the program treats adults only.",
        "This program is for adults 18 and older, so we can't offer treatment at this time.",
    ),
    "pregnancy": (
        _INELIGIBLE,
        "Pregnant: ketamine is not used in pregnancy.",
        "Ketamine isn't considered safe while you are pregnant, so we can't offer this treatment now. "
        "Please talk with your own doctor about safe options.",
    ),
    "breastfeeding": (
        _INELIGIBLE,
        "Breastfeeding: ketamine passes into breast milk.",
        "Ketamine can pass into breast milk, so we can't offer this treatment while you are nursing.",
    ),
    "substance.ketamine_misuse": (
        _INELIGIBLE,
        "Ketamine misuse reported: a home supply risks relapse and diversion.",
        "Because ketamine has been hard to control for you in the past, a home supply of it wouldn't be safe. "
        "We'd be glad to help you find other support.",
    ),
    "substance.dependence_12m": (
        _INELIGIBLE,
        "Substance dependence within the last 12 months.",
        "Because of recent substance use, an at-home ketamine program isn't a safe fit right now. "
        "Our care team can point you to other support.",
    ),
    "history.psychosis": (
        _INELIGIBLE,
        "History of psychosis or schizophrenia: ketamine can provoke or worsen psychotic symptoms.",
        "Ketamine can bring on or worsen symptoms like hearing or seeing things that aren't there, so at-home "
        "treatment isn't a safe choice for you. Please talk with your own doctor about other options.",
    ),
    "history.bladder": (
        _INELIGIBLE,
        "Interstitial cystitis or ketamine-related bladder disease: ketamine can damage the bladder.",
        "Ketamine can irritate and damage the bladder, so it isn't safe with the bladder condition you told us about.",
    ),
    "history.aneurysm": (_INELIGIBLE, "History of aneurysm: ketamine's rise in blood pressure risks rupture.", _HEART),
    "history.coronary_disease": (_INELIGIBLE, "Coronary disease: ketamine raises heart rate and blood pressure (oxygen demand).", _HEART),
    "history.heart_failure": (_INELIGIBLE, "Heart failure: ketamine's sympathetic stimulation is unsafe unmonitored.", _HEART),
    "history.stroke": (_INELIGIBLE, "History of stroke: ketamine's rise in blood pressure is unsafe unmonitored.", _HEART),
    "bp.intake_hard_limit": (
        _INELIGIBLE,
        "Intake blood pressure at or above {high} mmHg.",
        "Your blood pressure reading is too high for ketamine treatment to be safe. Please see your doctor about "
        "it soon; if you have chest pain, a severe headache or trouble speaking, call 911.",
    ),
    "bp.intake_review": (
        _REVIEW,
        "Intake blood pressure at or above {low} mmHg (below the {high} limit).",
        "Your blood pressure reading is a little high. A prescriber will look at it with you before treatment.",
    ),
    "history.bipolar_or_mania": (
        _REVIEW,
        "Bipolar disorder or history of mania: ketamine may trigger mania; review mood stabilization.",
        "A prescriber will talk with you about your mood history before treatment, to make sure it is safe for you.",
    ),
    "history.seizure": (
        _REVIEW,
        "Seizure disorder: review control, anticonvulsants and interactions.",
        "A prescriber will review your seizure history with you before treatment.",
    ),
    "history.liver": (
        _REVIEW,
        "Liver disease: ketamine is cleared by the liver and can injure it; review liver function.",
        "A prescriber will review your liver health with you before treatment.",
    ),
    "age.over_review_age": (
        _REVIEW,
        "Age over {age}: review cardiovascular health and sensitivity to sedation.",
        "A prescriber will review your overall health with you before treatment, as we do for every patient over {age}.",
    ),
    "medication.benzodiazepines": (_REVIEW, "Takes benzodiazepines: added sedation, and they may blunt ketamine's effect.", _MEDICINES),
    "medication.lamotrigine": (_REVIEW, "Takes lamotrigine: may blunt ketamine's effect.", _MEDICINES),
    "medication.maoi": (_REVIEW, "Takes an MAOI: risk of a hypertensive reaction.", _MEDICINES),
    "medication.opioids": (_REVIEW, "Takes opioids: added sedation and respiratory depression.", _MEDICINES),
    "medication.stimulants": (_REVIEW, "Takes stimulants: added rise in blood pressure and heart rate.", _MEDICINES),
    "phq9.item9_positive": (
        _REVIEW,
        "PHQ-9 item 9 (thoughts of death or self-harm) above 0: document a response before the consult.",
        _SELF_HARM,
    ),
    "cssrs.positive": (_REVIEW, "Positive C-SSRS screener answer: a clinician must assess suicide risk.", _SELF_HARM),
    "crisis.phq9_item9_nearly_every_day": (
        _REVIEW,
        "Crisis: thoughts of death or self-harm nearly every day (PHQ-9 item 9 = 3). Contact the patient now.",
        _CRISIS,
    ),
    "crisis.cssrs_intent_or_plan": (
        _REVIEW,
        "Crisis: suicidal ideation with intent (C-SSRS 4) or a plan (C-SSRS 5). Contact the patient now.",
        _CRISIS,
    ),
    "crisis.cssrs_recent_behavior": (
        _REVIEW,
        "Crisis: suicidal behavior within the past 3 months (C-SSRS 6). Contact the patient now.",
        _CRISIS,
    ),
}

# condition key -> rule id; in the table's order so reasons come out in a stable order.
_CONDITION_RULE_IDS: dict[str, str] = {
    "psychosis_or_schizophrenia": "history.psychosis",
    "interstitial_cystitis_or_bladder": "history.bladder",
    "aneurysm": "history.aneurysm",
    "coronary_disease": "history.coronary_disease",
    "heart_failure": "history.heart_failure",
    "stroke": "history.stroke",
    "bipolar_or_mania": "history.bipolar_or_mania",
    "seizure_disorder": "history.seizure",
    "liver_disease": "history.liver",
}


def _reason(rule_id: str, evidence: str, **threshold_text: object) -> Reason:
    outcome, clinician_text, patient_text = _RULES[rule_id]
    return Reason(
        rule_id=rule_id,
        outcome=outcome,
        clinician_text=clinician_text.format(**threshold_text),
        patient_text=patient_text.format(**threshold_text),
        evidence=evidence,
        crisis=rule_id.startswith("crisis."),
    )


def _age_rules(data: ScreeningInput, thresholds: ClinicalThresholds) -> list[Reason]:
    age = age_on(data.date_of_birth, data.screened_on)
    if age < 18:
        return [_reason("age.under_18", f"age {age}")]
    # "Over 65" read as whole years strictly above the setting: 65 passes, the 66th birthday is flagged.
    if age > thresholds.review_age_over:
        return [_reason("age.over_review_age", f"age {age}", age=thresholds.review_age_over)]
    return []


def _history_rules(data: ScreeningInput) -> list[Reason]:
    flags = [
        ("pregnancy", data.pregnant, "pregnant: yes"),
        ("breastfeeding", data.breastfeeding, "breastfeeding: yes"),
        ("substance.ketamine_misuse", data.ketamine_misuse_ever, "ketamine misuse ever: yes"),
        ("substance.dependence_12m", data.substance_dependence_12_months, "substance dependence in the last 12 months: yes"),
    ]
    reasons = [_reason(rule_id, evidence) for rule_id, present, evidence in flags if present]
    reasons += [_reason(rule_id, f"reported: {CONDITIONS[key]}") for key, rule_id in _CONDITION_RULE_IDS.items() if key in data.conditions]
    reasons += [
        _reason(f"medication.{key}", f"reported: {label}") for key, label in MEDICATION_CLASSES.items() if key in data.medication_classes
    ]
    return reasons


def _at_or_above(systolic: int, diastolic: int, limit: tuple[int, int]) -> bool:
    # Either number alone reaching its limit counts: 160/80 and 120/100 are both at the hard limit.
    return systolic >= limit[0] or diastolic >= limit[1]


def _blood_pressure_rules(data: ScreeningInput, thresholds: ClinicalThresholds) -> list[Reason]:
    reading = f"{data.bp_systolic}/{data.bp_diastolic} mmHg"
    low = "{}/{}".format(*thresholds.bp_needs_review)
    high = "{}/{}".format(*thresholds.intake_bp_ineligible)
    if _at_or_above(data.bp_systolic, data.bp_diastolic, thresholds.intake_bp_ineligible):
        return [_reason("bp.intake_hard_limit", reading, high=high)]
    if _at_or_above(data.bp_systolic, data.bp_diastolic, thresholds.bp_needs_review):
        return [_reason("bp.intake_review", reading, low=low, high=high)]
    return []


def _suicide_risk_rules(data: ScreeningInput) -> list[Reason]:
    return suicide_risk_reasons(phq9=data.phq9, cssrs=data.cssrs)


def suicide_risk_reasons(*, phq9: Mapping[str, int] | None, cssrs: Mapping[str, int] | None) -> list[Reason]:
    """The PHQ-9 item 9 and C-SSRS rules alone, for validated answers. The intake calls this as soon as
    either questionnaire is saved, so a crisis answer is acted on at once, not at submission."""
    reasons = []
    if phq9 is not None:
        item9 = phq9["phq9_9"]
        item9_evidence = f"PHQ-9 item 9 = {item9} ({PHQ9.items[8].label_for(item9)})"
        if item9 > 0:
            reasons.append(_reason("phq9.item9_positive", item9_evidence))
        if item9 == 3:
            reasons.append(_reason("crisis.phq9_item9_nearly_every_day", item9_evidence))
    if cssrs is not None:
        if positive := [key for key, value in cssrs.items() if value == 1]:
            reasons.append(_reason("cssrs.positive", "C-SSRS yes to: " + ", ".join(positive)))
        if intent_or_plan := [key for key in ("cssrs_4", "cssrs_5") if cssrs[key] == 1]:
            reasons.append(_reason("crisis.cssrs_intent_or_plan", "C-SSRS yes to: " + ", ".join(intent_or_plan)))
        # Not in DOMAIN.md's list, but clinicians treat suicidal behavior within the past 3 months as high
        # risk (the C-SSRS triage puts it with intent and plan), so it is a crisis too.
        if cssrs["cssrs_6_recent"] == 1:
            reasons.append(_reason("crisis.cssrs_recent_behavior", "C-SSRS yes to: cssrs_6_recent"))
    return reasons
