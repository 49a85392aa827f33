"""The day of the prescribing basis is the calendar day where the patient is: the state's zone, or the
patient's own zone when the state has that time (states spanning zones), and the last day is inclusive."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from telehealth.lib.us_states import STATE_ZONES, US_STATES, state_zone_name
from telehealth.prescribing.basis import day_in_state, flexibilities_cover
from telehealth.settings import Settings


def test_every_state_and_dc_has_zones_that_exist():
    from zoneinfo import ZoneInfo

    assert set(STATE_ZONES) == set(US_STATES)
    for zones in STATE_ZONES.values():
        for zone in zones:
            ZoneInfo(zone)


@pytest.mark.parametrize(
    ("state", "own_zone", "expected"),
    [
        ("NY", "America/Los_Angeles", "America/New_York"),  # a Californian in New York: New York's time
        ("TN", "America/New_York", "America/New_York"),  # East Tennessee
        ("TN", None, "America/Chicago"),  # the state's main zone
        ("TX", "America/Denver", "America/Denver"),  # El Paso
        ("FL", "America/Chicago", "America/Chicago"),  # the panhandle
        ("FL", "Pacific/Honolulu", "America/New_York"),  # not one of Florida's: the main zone
        ("AZ", "America/Phoenix", "America/Phoenix"),
        ("IN", "America/Chicago", "America/Chicago"),
        ("IN", "Europe/Paris", "America/Indiana/Indianapolis"),
    ],
)
def test_the_zone_of_a_state(state, own_zone, expected):
    assert state_zone_name(state, own_zone=own_zone) == expected


def test_the_same_instant_is_a_different_day_in_different_states():
    instant = datetime(2027, 1, 1, 5, 30, tzinfo=UTC)
    assert day_in_state(instant, state="NY", patient_timezone="America/New_York") == (date(2027, 1, 1), "America/New_York")
    assert day_in_state(instant, state="CA", patient_timezone="America/New_York") == (date(2026, 12, 31), "America/Los_Angeles")
    assert day_in_state(instant, state="HI", patient_timezone=None) == (date(2026, 12, 31), "Pacific/Honolulu")


def test_the_last_day_is_covered_and_the_next_is_not():
    settings = Settings()
    assert settings.telemedicine_flexibilities_until == date(2026, 12, 31)
    assert flexibilities_cover(date(2026, 12, 31), settings) and not flexibilities_cover(date(2027, 1, 1), settings)
