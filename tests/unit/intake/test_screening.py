"""Screening rules from DOMAIN.md: one test per rule (each fails if its rule is removed), the edges of
every threshold, clinic overrides, crisis detection and the patient-facing wording."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from telehealth.intake.screening import (
    CONDITIONS,
    MEDICATION_CLASSES,
    Outcome,
    ScreeningInput,
    screen_intake,
)
from telehealth.lib.dates import age_on
from telehealth.lib.errors import InvalidInput
from telehealth.settings import ClinicalThresholds

DEFAULTS = ClinicalThresholds()
SCREENED_ON = date(2026, 11, 23)


def intake(**overrides) -> ScreeningInput:
    """A clean intake (age 36, no history, 120/80, all-zero questionnaires) with the given changes."""
    phq9 = {f"phq9_{n}": 0 for n in range(1, 10)} | overrides.pop("phq9", {})
    cssrs = dict.fromkeys(("cssrs_1", "cssrs_2", "cssrs_3", "cssrs_4", "cssrs_5", "cssrs_6", "cssrs_6_recent"), 0)
    cssrs |= overrides.pop("cssrs", {})
    fields = {
        "date_of_birth": date(1990, 5, 15),
        "screened_on": SCREENED_ON,
        "pregnant": False,
        "breastfeeding": False,
        "conditions": frozenset(),
        "medication_classes": frozenset(),
        "ketamine_misuse_ever": False,
        "substance_dependence_12_months": False,
        "bp_systolic": 120,
        "bp_diastolic": 80,
        "phq9": phq9,
        "cssrs": cssrs,
    }
    fields.update(overrides)
    return ScreeningInput(**fields)


def rule_ids(result) -> set[str]:
    return {reason.rule_id for reason in result.reasons}


def reason(result, rule_id):
    return next(r for r in result.reasons if r.rule_id == rule_id)


def test_a_clean_intake_is_eligible_with_no_reasons():
    result = screen_intake(intake(), DEFAULTS)
    assert result.outcome == Outcome.ELIGIBLE
    assert result.reasons == ()
    assert result.crisis is False
    assert result.crisis_reasons == ()


@pytest.mark.parametrize(
    ("changes", "rule_id", "evidence"),
    [
        ({"pregnant": True}, "pregnancy", "pregnant: yes"),
        ({"breastfeeding": True}, "breastfeeding", "breastfeeding: yes"),
        ({"conditions": frozenset({"psychosis_or_schizophrenia"})}, "history.psychosis", "reported: Psychosis or schizophrenia"),
        ({"ketamine_misuse_ever": True}, "substance.ketamine_misuse", "ketamine misuse ever: yes"),
        ({"substance_dependence_12_months": True}, "substance.dependence_12m", "substance dependence in the last 12 months: yes"),
        ({"conditions": frozenset({"interstitial_cystitis_or_bladder"})}, "history.bladder", None),
        ({"conditions": frozenset({"aneurysm"})}, "history.aneurysm", None),
        ({"conditions": frozenset({"coronary_disease"})}, "history.coronary_disease", None),
        ({"conditions": frozenset({"heart_failure"})}, "history.heart_failure", None),
        ({"conditions": frozenset({"stroke"})}, "history.stroke", "reported: A stroke"),
    ],
)
def test_each_ineligible_rule(changes, rule_id, evidence):
    result = screen_intake(intake(**changes), DEFAULTS)
    assert result.outcome == Outcome.INELIGIBLE
    assert rule_ids(result) == {rule_id}
    assert reason(result, rule_id).outcome == Outcome.INELIGIBLE
    if evidence:
        assert reason(result, rule_id).evidence == evidence


@pytest.mark.parametrize(
    ("changes", "rule_id"),
    [
        ({"conditions": frozenset({"bipolar_or_mania"})}, "history.bipolar_or_mania"),
        ({"conditions": frozenset({"seizure_disorder"})}, "history.seizure"),
        ({"conditions": frozenset({"liver_disease"})}, "history.liver"),
        ({"medication_classes": frozenset({"benzodiazepines"})}, "medication.benzodiazepines"),
        ({"medication_classes": frozenset({"lamotrigine"})}, "medication.lamotrigine"),
        ({"medication_classes": frozenset({"maoi"})}, "medication.maoi"),
        ({"medication_classes": frozenset({"opioids"})}, "medication.opioids"),
        ({"medication_classes": frozenset({"stimulants"})}, "medication.stimulants"),
    ],
)
def test_each_needs_review_rule(changes, rule_id):
    result = screen_intake(intake(**changes), DEFAULTS)
    assert result.outcome == Outcome.NEEDS_REVIEW
    assert rule_ids(result) == {rule_id}
    assert result.crisis is False


def test_medication_evidence_names_the_class():
    result = screen_intake(intake(medication_classes=frozenset({"opioids"})), DEFAULTS)
    assert reason(result, "medication.opioids").evidence == f"reported: {MEDICATION_CLASSES['opioids']}"


@pytest.mark.parametrize(
    ("systolic", "diastolic", "outcome", "rule_id"),
    [
        (139, 89, Outcome.ELIGIBLE, None),
        (140, 90, Outcome.NEEDS_REVIEW, "bp.intake_review"),
        (140, 85, Outcome.NEEDS_REVIEW, "bp.intake_review"),
        (135, 90, Outcome.NEEDS_REVIEW, "bp.intake_review"),
        (159, 99, Outcome.NEEDS_REVIEW, "bp.intake_review"),
        (160, 100, Outcome.INELIGIBLE, "bp.intake_hard_limit"),
        (160, 80, Outcome.INELIGIBLE, "bp.intake_hard_limit"),
        (120, 100, Outcome.INELIGIBLE, "bp.intake_hard_limit"),
    ],
)
def test_blood_pressure_edges(systolic, diastolic, outcome, rule_id):
    result = screen_intake(intake(bp_systolic=systolic, bp_diastolic=diastolic), DEFAULTS)
    assert result.outcome == outcome
    # Exactly one BP reason: a reading over the hard limit is not also listed as "review".
    assert rule_ids(result) == ({rule_id} if rule_id else set())
    if rule_id:
        assert reason(result, rule_id).evidence == f"{systolic}/{diastolic} mmHg"


def test_blood_pressure_evidence_is_the_reading():
    result = screen_intake(intake(bp_systolic=162, bp_diastolic=95), DEFAULTS)
    assert reason(result, "bp.intake_hard_limit").evidence == "162/95 mmHg"


def test_the_day_before_the_18th_birthday_is_ineligible():
    result = screen_intake(intake(date_of_birth=date(2008, 11, 24)), DEFAULTS)
    assert result.outcome == Outcome.INELIGIBLE
    assert rule_ids(result) == {"age.under_18"}
    assert reason(result, "age.under_18").evidence == "age 17"


def test_the_18th_birthday_is_eligible():
    result = screen_intake(intake(date_of_birth=date(2008, 11, 23)), DEFAULTS)
    assert result.outcome == Outcome.ELIGIBLE


def test_a_29_february_birthday_turns_18_on_1_march_in_a_common_year():
    born = date(2008, 2, 29)
    on_28_february = screen_intake(intake(date_of_birth=born, screened_on=date(2026, 2, 28)), DEFAULTS)
    assert on_28_february.outcome == Outcome.INELIGIBLE
    on_1_march = screen_intake(intake(date_of_birth=born, screened_on=date(2026, 3, 1)), DEFAULTS)
    assert on_1_march.outcome == Outcome.ELIGIBLE


def test_age_on_counts_whole_years():
    assert age_on(date(2000, 6, 15), date(2026, 6, 14)) == 25
    assert age_on(date(2000, 6, 15), date(2026, 6, 15)) == 26
    assert age_on(date(2004, 2, 29), date(2028, 2, 29)) == 24
    assert age_on(date(2004, 2, 29), date(2027, 2, 28)) == 22
    assert age_on(date(2004, 2, 29), date(2027, 3, 1)) == 23


def test_age_65_is_eligible_and_66_needs_review():
    the_day_before_66 = screen_intake(intake(date_of_birth=date(1960, 11, 24)), DEFAULTS)
    assert the_day_before_66.outcome == Outcome.ELIGIBLE
    the_66th_birthday = screen_intake(intake(date_of_birth=date(1960, 11, 23)), DEFAULTS)
    assert the_66th_birthday.outcome == Outcome.NEEDS_REVIEW
    assert rule_ids(the_66th_birthday) == {"age.over_review_age"}
    assert reason(the_66th_birthday, "age.over_review_age").evidence == "age 66"


def test_clinic_thresholds_override_the_defaults():
    reading = intake(bp_systolic=132, bp_diastolic=80)
    assert screen_intake(reading, DEFAULTS).outcome == Outcome.ELIGIBLE
    assert screen_intake(reading, ClinicalThresholds(bp_needs_review=(130, 85))).outcome == Outcome.NEEDS_REVIEW

    high = intake(bp_systolic=152, bp_diastolic=80)
    assert screen_intake(high, DEFAULTS).outcome == Outcome.NEEDS_REVIEW
    stricter = ClinicalThresholds(intake_bp_ineligible=(150, 95))
    assert rule_ids(screen_intake(high, stricter)) == {"bp.intake_hard_limit"}

    sixty_six = intake(date_of_birth=date(1960, 11, 23))
    assert screen_intake(sixty_six, ClinicalThresholds(review_age_over=70)).outcome == Outcome.ELIGIBLE


def test_multiple_reasons_are_all_listed_ineligible_first():
    result = screen_intake(
        intake(
            pregnant=True,
            conditions=frozenset({"stroke", "liver_disease"}),
            medication_classes=frozenset({"benzodiazepines"}),
            bp_systolic=145,
            bp_diastolic=92,
            phq9={"phq9_9": 1},
        ),
        DEFAULTS,
    )
    assert result.outcome == Outcome.INELIGIBLE
    assert rule_ids(result) == {
        "pregnancy",
        "history.stroke",
        "history.liver",
        "medication.benzodiazepines",
        "bp.intake_review",
        "phq9.item9_positive",
    }
    outcomes = [r.outcome for r in result.reasons]
    assert outcomes == sorted(outcomes, key=lambda o: o != Outcome.INELIGIBLE)


@pytest.mark.parametrize("value", [1, 2])
def test_phq9_item9_above_zero_needs_review_without_crisis(value):
    result = screen_intake(intake(phq9={"phq9_9": value}), DEFAULTS)
    assert result.outcome == Outcome.NEEDS_REVIEW
    assert rule_ids(result) == {"phq9.item9_positive"}
    assert result.crisis is False


def test_other_phq9_items_do_not_flag():
    result = screen_intake(intake(phq9={f"phq9_{n}": 3 for n in range(1, 9)}), DEFAULTS)
    assert result.outcome == Outcome.ELIGIBLE


def test_phq9_item9_nearly_every_day_is_a_crisis():
    result = screen_intake(intake(phq9={"phq9_9": 3}), DEFAULTS)
    assert result.outcome == Outcome.NEEDS_REVIEW
    assert result.crisis is True
    assert [r.rule_id for r in result.crisis_reasons] == ["crisis.phq9_item9_nearly_every_day"]
    assert "phq9.item9_positive" in rule_ids(result)
    assert result.crisis_reasons[0].outcome == Outcome.NEEDS_REVIEW
    assert result.crisis_reasons[0].evidence == "PHQ-9 item 9 = 3 (Nearly every day)"


@pytest.mark.parametrize("item", ["cssrs_1", "cssrs_2", "cssrs_3", "cssrs_6"])
def test_any_positive_cssrs_answer_needs_review(item):
    result = screen_intake(intake(cssrs={item: 1}), DEFAULTS)
    assert result.outcome == Outcome.NEEDS_REVIEW
    assert rule_ids(result) == {"cssrs.positive"}
    assert reason(result, "cssrs.positive").evidence == f"C-SSRS yes to: {item}"
    assert result.crisis is False


@pytest.mark.parametrize("item", ["cssrs_4", "cssrs_5"])
def test_cssrs_intent_or_plan_is_a_crisis(item):
    result = screen_intake(intake(cssrs={"cssrs_1": 1, "cssrs_2": 1, item: 1}), DEFAULTS)
    assert result.outcome == Outcome.NEEDS_REVIEW
    assert result.crisis is True
    assert [r.rule_id for r in result.crisis_reasons] == ["crisis.cssrs_intent_or_plan"]
    assert result.crisis_reasons[0].evidence == f"C-SSRS yes to: {item}"
    assert "cssrs.positive" in rule_ids(result)


def test_suicidal_behavior_in_the_past_3_months_is_a_crisis():
    result = screen_intake(intake(cssrs={"cssrs_6": 1, "cssrs_6_recent": 1}), DEFAULTS)
    assert [r.rule_id for r in result.crisis_reasons] == ["crisis.cssrs_recent_behavior"]
    assert result.outcome == Outcome.NEEDS_REVIEW


def test_a_crisis_is_reported_even_when_the_intake_is_ineligible():
    result = screen_intake(intake(pregnant=True, phq9={"phq9_9": 3}), DEFAULTS)
    assert result.outcome == Outcome.INELIGIBLE
    assert result.crisis is True
    assert result.reasons[0].rule_id == "pregnancy"
    assert result.reasons[1].rule_id == "crisis.phq9_item9_nearly_every_day"


def test_crisis_reasons_give_the_patient_988_and_911():
    result = screen_intake(intake(cssrs={"cssrs_5": 1}), DEFAULTS)
    text = result.crisis_reasons[0].patient_text
    assert "988" in text and "911" in text


ALL_RULE_IDS = {
    "age.under_18",
    "age.over_review_age",
    "pregnancy",
    "breastfeeding",
    "substance.ketamine_misuse",
    "substance.dependence_12m",
    "history.psychosis",
    "history.bladder",
    "history.aneurysm",
    "history.coronary_disease",
    "history.heart_failure",
    "history.stroke",
    "history.bipolar_or_mania",
    "history.seizure",
    "history.liver",
    "bp.intake_hard_limit",
    "bp.intake_review",
    "medication.benzodiazepines",
    "medication.lamotrigine",
    "medication.maoi",
    "medication.opioids",
    "medication.stimulants",
    "phq9.item9_positive",
    "cssrs.positive",
    "crisis.phq9_item9_nearly_every_day",
    "crisis.cssrs_intent_or_plan",
    "crisis.cssrs_recent_behavior",
}


def _every_reason():
    """Reasons from intakes that, together, fire every rule."""
    everything = intake(
        pregnant=True,
        breastfeeding=True,
        conditions=frozenset(CONDITIONS),
        medication_classes=frozenset(MEDICATION_CLASSES),
        ketamine_misuse_ever=True,
        substance_dependence_12_months=True,
        bp_systolic=170,
        bp_diastolic=110,
        phq9={"phq9_9": 3},
        cssrs=dict.fromkeys(("cssrs_1", "cssrs_2", "cssrs_3", "cssrs_4", "cssrs_5", "cssrs_6", "cssrs_6_recent"), 1),
        date_of_birth=date(2010, 1, 1),
    )
    others = [intake(bp_systolic=145, bp_diastolic=80), intake(date_of_birth=date(1950, 1, 1))]
    return [r for data in [everything, *others] for r in screen_intake(data, DEFAULTS).reasons]


def test_patient_text_never_shows_a_rule_id():
    reasons = _every_reason()
    ids = {r.rule_id for r in reasons}
    assert ids == ALL_RULE_IDS  # every rule fired, so every id is checked
    for r in reasons:
        assert r.patient_text and r.clinician_text and r.evidence
        for rule_id in ids:
            assert rule_id not in r.patient_text.lower(), (r.rule_id, rule_id)


def test_unknown_condition_or_medication_keys_are_refused():
    with pytest.raises(ValueError, match="condition"):
        intake(conditions=frozenset({"gout"}))
    with pytest.raises(ValueError, match="medication"):
        intake(medication_classes=frozenset({"ssri"}))


def test_incomplete_questionnaires_are_refused_before_screening():
    data = intake()
    phq9 = dict(data.phq9)
    del phq9["phq9_9"]
    with pytest.raises(InvalidInput) as caught:
        replace(data, phq9=phq9)
    assert caught.value.fields == {"phq9_9": "Please choose an answer."}
    with pytest.raises(InvalidInput) as caught:
        replace(data, cssrs={**data.cssrs, "cssrs_4": 2})
    assert caught.value.fields == {"cssrs_4": "Please choose one of the answers shown."}
