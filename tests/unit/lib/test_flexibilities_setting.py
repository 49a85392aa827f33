"""TELEMEDICINE_FLEXIBILITIES_UNTIL must be a date: anything else stops the service at start, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest

from telehealth.settings import PROJECT_ROOT, SettingsError, load_settings


def test_the_date_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TELEMEDICINE_FLEXIBILITIES_UNTIL", "2027-12-31")
    assert load_settings().telemedicine_flexibilities_until == date(2027, 12, 31)
    monkeypatch.delenv("TELEMEDICINE_FLEXIBILITIES_UNTIL")
    assert load_settings().telemedicine_flexibilities_until == date(2026, 12, 31)


@pytest.mark.parametrize("raw", ["soon", "2026-13-01", "31/12/2026", "2026-12-31T23:59"])
def test_a_value_that_is_not_a_date_is_refused_naming_the_setting(monkeypatch, raw):
    monkeypatch.setenv("TELEMEDICINE_FLEXIBILITIES_UNTIL", raw)
    with pytest.raises(SettingsError, match="TELEMEDICINE_FLEXIBILITIES_UNTIL"):
        load_settings()


def test_the_service_refuses_to_start_with_it():
    """`app.py` builds the app at import, as `python app.py` and uvicorn do: it stops there, naming the setting."""
    env = {**os.environ, "TELEMEDICINE_FLEXIBILITIES_UNTIL": "next year"}
    started = subprocess.run([sys.executable, "-c", "import app"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "SettingsError: TELEMEDICINE_FLEXIBILITIES_UNTIL must be a date like 2026-12-31, got 'next year'" in started.stderr
