"""The safety envelope (DOMAIN.md): settings may tighten the clinical limits, never loosen them, and the
blood-pressure thresholds stay ordered; a value outside stops the service at start, naming the setting and
its bound, in development and production alike."""

from __future__ import annotations

import subprocess
import sys

import pytest

from telehealth.settings import PROJECT_ROOT, ClinicalThresholds, Settings, SettingsError, load_settings

OUTSIDE = [
    ("MAX_DOSE_MG_PER_SESSION", "401", "from 1 to 400"),
    ("MAX_DOSE_MG_PER_SESSION", "4000", "from 1 to 400"),
    ("MAX_SESSIONS_PER_PLAN", "13", "from 1 to 12"),
    ("DEFAULT_SESSIONS_PER_PLAN", "0", "from 1 to 12"),
    ("MIN_HOURS_BETWEEN_SESSIONS", "47", "from 48 to"),
    ("MIN_HOURS_BETWEEN_SESSIONS", "0", "from 48 to"),
    ("CHECKIN_VALID_MINUTES", "61", "from 1 to 60"),
    ("PDMP_CHECK_VALID_HOURS", "25", "from 1 to 24"),
    ("OBSERVATION_MINUTES", "59", "from 60 to"),
    ("OBSERVATION_MINUTES", "0", "from 60 to"),
    ("BP_NEEDS_REVIEW", "141/90", "at most 140/90"),
    ("BP_NEEDS_REVIEW", "140/91", "at most 140/90"),
    ("INTAKE_BP_INELIGIBLE", "161/100", "at most 160/100"),
    ("BP_URGENT", "999/999", "at most 180/120"),
    ("BP_URGENT", "180/121", "at most 180/120"),
]


@pytest.mark.parametrize(("name", "value", "bound"), OUTSIDE)
@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_setting_outside_the_envelope_is_refused_naming_it(monkeypatch, name, value, bound, environment):
    monkeypatch.setenv("APP_ENV", environment)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"{name}={value} is outside the safety envelope") and bound in str(refused.value)


@pytest.mark.parametrize(
    "thresholds",
    [
        ClinicalThresholds(bp_needs_review=(130, 85), intake_bp_ineligible=(125, 95)),  # systolic out of order
        ClinicalThresholds(bp_needs_review=(130, 85), intake_bp_ineligible=(150, 80)),  # diastolic out of order
        ClinicalThresholds(intake_bp_ineligible=(160, 100), bp_urgent=(160, 110)),  # equal is not below
        ClinicalThresholds(bp_needs_review=(130, 90), intake_bp_ineligible=(150, 90)),  # nor in the diastolic alone
    ],
)
def test_blood_pressure_thresholds_must_stay_ordered(thresholds):
    with pytest.raises(SettingsError, match="must be below"):
        Settings(thresholds=thresholds).validate()


def test_tightening_is_allowed_and_the_defaults_sit_on_the_envelope():
    Settings().validate()
    Settings(
        thresholds=ClinicalThresholds(
            max_dose_mg_per_session=300,
            max_sessions_per_plan=6,
            default_sessions_per_plan=4,
            min_hours_between_sessions=72,
            checkin_valid_minutes=30,
            pdmp_check_valid_hours=12,
            observation_minutes=90,
            bp_needs_review=(130, 85),
            intake_bp_ineligible=(150, 95),
            bp_urgent=(170, 110),
        )
    ).validate()


def test_the_service_does_not_start_with_a_loosened_limit():
    env = {"PATH": "/usr/bin:/bin", "MAX_DOSE_MG_PER_SESSION": "4000", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    started = subprocess.run([sys.executable, "-c", "import app"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "MAX_DOSE_MG_PER_SESSION=4000 is outside the safety envelope" in started.stderr
