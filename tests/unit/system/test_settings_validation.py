"""Settings are validated as declared: a malformed list, a number out of its bounds or a value the code
would silently misread stops the process, naming the variable and the reason."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import get_type_hints

import pytest

from telehealth.lib.env_settings import declared_fields
from telehealth.settings import ClinicalThresholds, Settings, SettingsError, load_settings

# The five values issue 21 found accepted (a strength dropped, CPT codes emptied, nonsense numbers).
ISSUE_EXAMPLES = [
    ("TROCHE_STRENGTHS_MG", "50,1OO", "'1OO' is not a whole number of mg"),
    ("CPT_CODES", "consult:90792", "'consult:90792' is not type=code"),
    ("JOB_LEASE_SECONDS", "0", "a whole number of at least 1"),
    ("SESSION_IDLE_MINUTES", "-5", "a whole number of at least 1"),
    ("PORT", "99999", "a whole number from 1 to 65535"),
]


@pytest.mark.parametrize(("name", "value", "reason"), ISSUE_EXAMPLES)
def test_the_issue_examples_are_refused_naming_the_setting(monkeypatch, name, value, reason):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"{name} must be") and reason in str(refused.value)
    assert repr(value) in str(refused.value)  # it quotes what it got


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TROCHE_STRENGTHS_MG", "50,,100"),  # an empty item is not skipped
        ("TROCHE_STRENGTHS_MG", "50,50"),
        ("TROCHE_STRENGTHS_MG", "500"),  # above the envelope's dose cap: no troche could be prescribed whole
        ("CPT_CODES", "consult=90792,visit=99214"),  # not an appointment type
        ("CPT_CODES", "consult=9079"),
        ("CPT_CODES", "consult=90792,consult=99214"),
        ("PORT", "80a"),
        ("STRIPE_TIMEOUT_SECONDS", "0"),
        ("WORKER_CONCURRENCY", "0"),
        ("AUTO_MIGRATE", "maybe"),
        ("SMTP_URL", "mail.example.org:25"),
        ("PUBLIC_BASE_URL", "care.example.org"),
        ("DATABASE_URL", "mysql://db/clinic"),
        ("APP_ENV", "staging"),
        ("BP_URGENT", "180"),
    ],
)
def test_other_malformed_values_are_refused_naming_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(name)


def test_well_formed_values_are_read(monkeypatch):
    for name, value in {
        "TROCHE_STRENGTHS_MG": " 25, 50 ,100",
        "CPT_CODES": "consult=90792, integration=0001F",
        "PORT": "65535",
        "JOB_LEASE_SECONDS": "30",
        "STRIPE_TIMEOUT_SECONDS": "2.5",
        "AUTO_MIGRATE": "off",
        "WORKER_CONCURRENCY": "8",
        "CONSULT_FEE_CENTS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.troche_strengths == (25, 50, 100)
    assert settings.cpt_code_by_type == {"consult": "90792", "integration": "0001F"}
    assert (settings.port, settings.job_lease_seconds, settings.stripe_timeout_seconds) == (65535, 30, 2.5)
    assert (settings.auto_migrate, settings.worker_concurrency, settings.consult_fee_cents) == (False, 8, 0)


# The lowest meaningful value of every whole-number setting. Fees may be 0 (free) and a Stripe call may be
# tried once; the clinical ones below their envelope are refused by check_envelope in its own words.
LOWEST_MEANINGFUL = {
    "PORT": 1,
    "SESSION_IDLE_MINUTES": 1,
    "SESSION_ABSOLUTE_HOURS": 1,
    "LOGIN_LOCK_AFTER_FAILURES": 1,
    "LOGIN_LOCK_MINUTES": 1,
    "LOGIN_ATTEMPTS_PER_IP_PER_15_MIN": 1,
    "WAITLIST_JOINS_PER_IP_PER_HOUR": 1,
    "LATE_CANCEL_FEE_CENTS": 0,
    "CONSULT_FEE_CENTS": 0,
    "PROGRAM_FEE_CENTS": 0,
    "INTEGRATION_FEE_CENTS": 0,
    "NO_SHOW_FEE_CENTS": 0,
    "STRIPE_MAX_NETWORK_RETRIES": 0,
    "PASSWORD_RESET_VALID_MINUTES": 1,
    "EMAIL_VERIFICATION_VALID_HOURS": 1,
    "STEP_UP_VALID_MINUTES": 1,
    "JOB_MAX_ATTEMPTS": 1,
    "JOB_LEASE_SECONDS": 1,
    "MAX_REQUEST_BODY_BYTES": 1024,
    "WORKER_CONCURRENCY": 1,
    "DATABASE_POOL_SIZE": 1,
    "REVIEW_AGE_OVER": 18,
    "MAX_DOSE_MG_PER_SESSION": 1,
    "MAX_SESSIONS_PER_PLAN": 1,
    "DEFAULT_SESSIONS_PER_PLAN": 1,
    "MIN_HOURS_BETWEEN_SESSIONS": 48,
    "PDMP_CHECK_VALID_HOURS": 1,
    "CHECKIN_VALID_MINUTES": 1,
    "INVITATION_VALID_DAYS": 1,
    "BP_RECHECK_AFTER_MINUTES": 1,
    "UNLOCK_LATE_MINUTES": 1,
    "PRESENCE_LINK_MINUTES_BEFORE": 1,
    "REPORT_REMINDER_HOURS": 1,
    "REPORT_ALERT_HOURS": 1,
    "OBSERVATION_MINUTES": 60,
}


def test_every_whole_number_setting_is_declared_and_in_the_table():
    """A new int setting must declare its variable and bounds, and say here what its lowest meaningful value is."""
    for cls in (Settings, ClinicalThresholds):
        hints = get_type_hints(cls)
        read_by_hand = [item.name for item in fields(cls) if hints[item.name] is int and "env" not in item.metadata]
        assert read_by_hand == [], f"declare these with setting(...): {read_by_hand}"
    declared = {spec.name for cls in (Settings, ClinicalThresholds) for _, spec, hint in declared_fields(cls) if hint is int}
    assert declared == set(LOWEST_MEANINGFUL)


@pytest.mark.parametrize("name", sorted(LOWEST_MEANINGFUL))
def test_every_whole_number_setting_refuses_values_below_its_meaningful_range(monkeypatch, name):
    lowest = LOWEST_MEANINGFUL[name]
    for value in (0, -5, lowest - 1):
        if value >= lowest:
            continue
        monkeypatch.setenv(name, str(value))
        with pytest.raises(SettingsError) as refused:
            load_settings()
        assert str(refused.value).startswith(name), str(refused.value)
    monkeypatch.setenv(name, str(lowest))
    if name == "MAX_SESSIONS_PER_PLAN":
        monkeypatch.setenv("DEFAULT_SESSIONS_PER_PLAN", "1")  # the default (6) may not exceed the maximum
    load_settings()  # the lowest meaningful value itself is accepted


def test_settings_made_in_code_are_checked_too():
    with pytest.raises(SettingsError, match=r"^PORT must be a whole number from 1 to 65535, got 99999$"):
        Settings(port=99999).validate()
    with pytest.raises(SettingsError, match=r"^TROCHE_STRENGTHS_MG must be"):
        Settings(troche_strengths_mg="50,1OO").validate()
    with pytest.raises(SettingsError, match=r"^UNLOCK_LATE_MINUTES must be"):
        replace(Settings(), thresholds=ClinicalThresholds(unlock_late_minutes=0)).validate()
    with pytest.raises(SettingsError, match=r"^JOB_LEASE_SECONDS"):
        Settings(job_lease_seconds=True).validate()  # a bool is not a number of seconds
