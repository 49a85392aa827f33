"""Every email template renders with sample data and carries no health information."""

from __future__ import annotations

import re

import pytest

from telehealth.notifications.render import EMAIL_TEMPLATE_DIR, EMAIL_TEMPLATES, render_email
from telehealth.settings import Settings

# Words that would reveal care: a drug, a dose, a diagnosis, a score, a clinical event.
HEALTH_TERMS = re.compile(
    r"ketamine|troche|\bmg\b|dose|dosing|prescri|diagnos|depress|anxiety|ptsd|suicid|phq|gad-?7|c-ssrs|"
    r"blood pressure|adverse|psychedelic|pharmacy|medication|therapy|treatment",
    re.IGNORECASE,
)
SAMPLE = {
    "recipient_name": "Alex Rivera",
    "verify_url": "https://clinic.example/account/verify-email?token=abc",
    "reset_url": "https://clinic.example/password/reset?token=abc",
    "valid_minutes": 30,
    "locked_minutes": 15,
    "paused_for": "15 minutes",
    "link_url": "https://clinic.example/waitlist/entry?token=abc",
    "accept_url": "https://clinic.example/invitations/accept?token=abc",
    "expires_on": "Sunday 29 November 2026",
    "when_local": "Tuesday 24 November 2026 at 10:00 EST",
    "amount": "$150.00",
    "patient_first_name": "Jamie",
}


def test_every_template_folder_is_listed():
    folders = {p.name for p in EMAIL_TEMPLATE_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders == set(EMAIL_TEMPLATES)


@pytest.mark.parametrize("name", sorted(EMAIL_TEMPLATES))
def test_template_renders_without_health_information(name):
    rendered = render_email(name, {key: SAMPLE[key] for key in EMAIL_TEMPLATES[name]}, Settings())
    for part in (rendered.subject, rendered.body_text, rendered.body_html):
        assert part.strip()
        assert not HEALTH_TERMS.search(part), HEALTH_TERMS.search(part)
    assert "\n" not in rendered.subject
    assert "Alex Rivera" in rendered.body_text


def test_the_health_check_itself_catches_a_leak():
    assert HEALTH_TERMS.search("Your ketamine troche dose is ready")


def test_a_missing_value_is_an_error_not_a_blank():
    with pytest.raises(ValueError, match="verify_url"):
        render_email("verify_email", {"recipient_name": "A"}, Settings())
