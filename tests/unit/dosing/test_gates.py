"""The gates before a home dose as pure rules (telehealth/dosing/gates.py): the blood-pressure levels at
their edges (140/90 holds, 180/120 is urgent, either number alone counts), every unlock gate alone at
and just past its boundary, and several failing together all reported, not just the first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from telehealth.dosing.gates import CheckInFacts, Pressure, UnlockFacts, pressure_level, unlock_gates
from telehealth.settings import ClinicalThresholds

THRESHOLDS = ClinicalThresholds()
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
GOOD_CHECK_IN = CheckInFacts(
    checked_in_at=NOW - timedelta(minutes=10), systolic=122, diastolic=78, phq9_item9=0, fasted_two_hours=True, no_alcohol_or_sedatives=True
)
GOOD = UnlockFacts(
    now=NOW,
    scheduled_at=NOW + timedelta(minutes=30),
    session_status="scheduled",
    plan_status="active",
    batch_delivered=True,
    last_dose_at=NOW - timedelta(hours=72),
    min_hours_between=48,
    check_in=GOOD_CHECK_IN,
    sitter_confirmed=True,
    sitter_verified=True,
    sitter_present=True,
    crisis_open=False,
    contact_requested=False,
)


def codes(facts: UnlockFacts) -> list[str]:
    return [gate.code for gate in unlock_gates(facts, THRESHOLDS)]


def with_check_in(**changes) -> UnlockFacts:
    return replace(GOOD, check_in=replace(GOOD_CHECK_IN, **changes))


@pytest.mark.parametrize(
    ("systolic", "diastolic", "level"),
    [
        (139, 89, Pressure.NORMAL),
        (140, 89, Pressure.HOLD),
        (139, 90, Pressure.HOLD),
        (140, 90, Pressure.HOLD),
        (179, 119, Pressure.HOLD),
        (180, 119, Pressure.URGENT),
        (179, 120, Pressure.URGENT),
        (180, 120, Pressure.URGENT),
    ],
)
def test_pressure_level_at_its_boundaries(systolic, diastolic, level):
    assert pressure_level(systolic, diastolic, THRESHOLDS) is level


def test_pressure_level_follows_the_clinics_thresholds():
    stricter = replace(THRESHOLDS, bp_needs_review=(130, 85), bp_urgent=(170, 110))
    assert pressure_level(129, 84, stricter) is Pressure.NORMAL
    assert pressure_level(130, 84, stricter) is Pressure.HOLD
    assert pressure_level(169, 110, stricter) is Pressure.URGENT


def test_all_facts_good_leaves_no_gate():
    assert unlock_gates(GOOD, THRESHOLDS) == []


@pytest.mark.parametrize(
    ("facts", "code"),
    [
        (replace(GOOD, plan_status="paused"), "gate.plan_paused"),
        (replace(GOOD, plan_status="discontinued"), "gate.plan_discontinued"),
        (replace(GOOD, plan_status="completed"), "gate.plan_not_active"),
        (replace(GOOD, session_status="held"), "gate.session_held"),
        (replace(GOOD, session_status="cancelled"), "gate.session_not_open"),
        (replace(GOOD, batch_delivered=False), "gate.batch_not_delivered"),
        (replace(GOOD, last_dose_at=NOW - timedelta(hours=47, minutes=59)), "gate.too_soon"),
        (replace(GOOD, check_in=None), "gate.check_in_missing"),
        (with_check_in(checked_in_at=NOW - timedelta(minutes=61)), "gate.check_in_stale"),
        (with_check_in(systolic=140, diastolic=90), "gate.blood_pressure_high"),
        (with_check_in(systolic=180, diastolic=120), "gate.blood_pressure_urgent"),
        (with_check_in(phq9_item9=1), "gate.care_team_contact"),
        (with_check_in(phq9_item9=2), "gate.care_team_contact"),
        (with_check_in(phq9_item9=3), "gate.crisis"),
        (with_check_in(fasted_two_hours=False), "gate.not_fasting"),
        (with_check_in(no_alcohol_or_sedatives=False), "gate.alcohol_or_sedatives"),
        (replace(GOOD, sitter_confirmed=False), "gate.no_sitter"),
        (replace(GOOD, sitter_confirmed=False, sitter_present=False), "gate.no_sitter"),
        (replace(GOOD, sitter_present=False), "gate.sitter_not_present"),
        (replace(GOOD, sitter_verified=False), "gate.sitter_not_verified"),
        (replace(GOOD, sitter_confirmed=False, sitter_verified=False), "gate.no_sitter"),
        (replace(GOOD, scheduled_at=NOW + timedelta(minutes=61)), "gate.too_early"),
        (replace(GOOD, scheduled_at=NOW - timedelta(minutes=121)), "gate.window_passed"),
        (replace(GOOD, crisis_open=True), "gate.crisis_open"),
        (replace(GOOD, contact_requested=True), "gate.care_team_contact_pending"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_bad_fact_alone_fails_exactly_its_gate(facts, code):
    gates = unlock_gates(facts, THRESHOLDS)
    assert [gate.code for gate in gates] == [code]
    assert gates[0].detail.strip()  # a sentence for the patient, never just the code


@pytest.mark.parametrize(
    "facts",
    [
        replace(GOOD, last_dose_at=NOW - timedelta(hours=48)),  # exactly the minimum interval
        with_check_in(checked_in_at=NOW - timedelta(minutes=60)),  # a check-in exactly an hour old
        with_check_in(systolic=139, diastolic=89),
        replace(GOOD, scheduled_at=NOW + timedelta(minutes=60)),  # the session opens an hour before
        replace(GOOD, scheduled_at=NOW - timedelta(minutes=120)),  # and stays open two hours after
        replace(GOOD, last_dose_at=None),  # the first dose
    ],
    ids=["interval_exactly_48h", "check_in_exactly_60min", "bp_139_89", "opens_60min_before", "open_120min_after", "first_dose"],
)
def test_the_boundary_itself_passes(facts):
    assert codes(facts) == []


def test_a_longer_minimum_interval_is_the_plans_own():
    assert codes(replace(GOOD, min_hours_between=72, last_dose_at=NOW - timedelta(hours=71, minutes=59))) == ["gate.too_soon"]
    assert codes(replace(GOOD, min_hours_between=72, last_dose_at=NOW - timedelta(hours=72))) == []


def test_the_blood_pressure_sentence_names_the_reading():
    [gate] = unlock_gates(with_check_in(systolic=150, diastolic=85), THRESHOLDS)
    assert gate.code == "gate.blood_pressure_high" and "150/85" in gate.detail


def test_a_stale_check_in_is_not_judged_on_its_old_answers():
    stale_and_high = with_check_in(checked_in_at=NOW - timedelta(minutes=61), systolic=185, diastolic=125, phq9_item9=2)
    assert codes(stale_and_high) == ["gate.check_in_stale"]


def test_a_crisis_answer_today_is_not_reported_twice_with_an_open_crisis():
    assert codes(replace(with_check_in(phq9_item9=3), crisis_open=True)) == ["gate.crisis"]
    assert codes(replace(with_check_in(phq9_item9=2), contact_requested=True)) == ["gate.care_team_contact"]


def test_several_bad_facts_are_all_reported():
    facts = replace(
        GOOD,
        plan_status="paused",
        batch_delivered=False,
        last_dose_at=NOW - timedelta(hours=20),
        sitter_present=False,
        check_in=replace(GOOD_CHECK_IN, systolic=145, diastolic=95, fasted_two_hours=False, no_alcohol_or_sedatives=False, phq9_item9=1),
    )
    assert codes(facts) == [
        "gate.plan_paused",
        "gate.batch_not_delivered",
        "gate.too_soon",
        "gate.blood_pressure_high",
        "gate.care_team_contact",
        "gate.not_fasting",
        "gate.alcohol_or_sedatives",
        "gate.sitter_not_present",
    ]


def test_an_unverified_sitter_and_their_absence_are_both_reported():
    assert codes(replace(GOOD, sitter_verified=False, sitter_present=False)) == ["gate.sitter_not_verified", "gate.sitter_not_present"]


def test_nothing_checked_in_no_sitter_and_too_early_are_all_reported():
    facts = replace(
        GOOD, scheduled_at=NOW + timedelta(hours=3), check_in=None, sitter_confirmed=False, sitter_present=False, crisis_open=True
    )
    assert codes(facts) == ["gate.too_early", "gate.check_in_missing", "gate.crisis_open", "gate.no_sitter"]
