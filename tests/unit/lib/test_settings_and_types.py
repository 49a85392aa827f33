"""Settings refuse unsafe production values; UTC columns refuse naive datetimes; transition tables."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from telehealth.db.types import UTCDateTime
from telehealth.lib.errors import Conflict
from telehealth.lib.states import TransitionTable
from telehealth.settings import DEFAULT_SECRET_KEY, Settings, SettingsError, load_settings


def test_production_refuses_the_default_secret():
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings(environment="production", secret_key=DEFAULT_SECRET_KEY, database_url="postgresql://x/y", smtp_url="smtp://h").validate()


def test_production_refuses_a_short_secret_and_missing_services():
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings(environment="production", secret_key="short", database_url="postgresql://x/y", smtp_url="smtp://h").validate()
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        Settings(environment="production", secret_key="s" * 40, smtp_url="smtp://h").validate()
    with pytest.raises(SettingsError, match="SMTP_URL"):
        Settings(environment="production", secret_key="s" * 40, database_url="postgresql://x/y").validate()
    with pytest.raises(SettingsError, match="STRIPE_API_KEY"):
        Settings(environment="production", secret_key="s" * 40, database_url="postgresql://x/y", smtp_url="smtp://h").validate()
    with pytest.raises(SettingsError, match="AUDIT_HMAC_KEY"):
        Settings(
            environment="production",
            secret_key="s" * 40,
            database_url="postgresql://x/y",
            smtp_url="smtp://h",
            stripe_api_key="sk_live_x",
            stripe_webhook_secret="whsec_x",
            audit_hmac_key="short",
            audit_anchor_path=Path("/a"),
        ).validate()
    with pytest.raises(SettingsError, match="AUDIT_ANCHOR_PATH"):
        Settings(
            environment="production",
            secret_key="s" * 40,
            database_url="postgresql://x/y",
            smtp_url="smtp://h",
            stripe_api_key="sk_live_x",
            stripe_webhook_secret="whsec_x",
            audit_hmac_key="k" * 40,
        ).validate()
    with pytest.raises(SettingsError, match="TOTP_ENCRYPTION_KEY"):
        Settings(
            environment="production",
            secret_key="s" * 40,
            database_url="postgresql://x/y",
            smtp_url="smtp://h",
            stripe_api_key="sk_live_x",
            stripe_webhook_secret="whsec_x",
            audit_hmac_key="k" * 40,
            audit_anchor_path=Path("/a"),
        ).validate()
    Settings(
        environment="production",
        secret_key="s" * 40,
        database_url="postgresql://x/y",
        smtp_url="smtp://h",
        stripe_api_key="sk_live_x",
        stripe_webhook_secret="whsec_x",
        audit_hmac_key="k" * 40,
        audit_anchor_path=Path("/a"),
        public_base_url="https://clinic.example",
        totp_encryption_key="k1:" + base64.urlsafe_b64encode(b"t" * 32).decode().rstrip("="),
    ).validate()


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("CLINIC_NAME", "Harbor Clinic")
    monkeypatch.setenv("BP_NEEDS_REVIEW", "135/85")
    monkeypatch.setenv("MAX_DOSE_MG_PER_SESSION", "300")
    settings = load_settings()
    assert settings.clinic_name == "Harbor Clinic"
    assert settings.thresholds.bp_needs_review == (135, 85)
    assert settings.thresholds.max_dose_mg_per_session == 300


def test_bad_environment_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("BP_URGENT", "high")
    with pytest.raises(SettingsError, match="BP_URGENT"):
        load_settings()
    monkeypatch.delenv("BP_URGENT")
    monkeypatch.setenv("CLINIC_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError, match="CLINIC_TIMEZONE"):
        load_settings()


def test_utc_column_refuses_naive_datetimes():
    column = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2026, 1, 1, 12, 0), None)
    assert column.process_bind_param(datetime(2026, 1, 1, 12, 0, tzinfo=UTC), None).tzinfo is UTC


def test_a_transition_outside_the_table_is_a_conflict():
    table = TransitionTable("plan", {("draft", "signed"): "sign"})
    assert table.action("draft", "signed") == "sign"
    with pytest.raises(Conflict) as refused:
        table.action("signed", "draft")
    assert refused.value.code == "plan.invalid_transition"


def test_public_base_url_follows_host_and_port_unless_set(monkeypatch):
    for name in ("PUBLIC_BASE_URL", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().public_base_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("PORT", "8100")  # `PORT=8100 python app.py`: links, banner and the demo's Stripe stand-in follow
    assert load_settings().public_base_url == "http://127.0.0.1:8100"
    monkeypatch.setenv("HOST", "0.0.0.0")  # listening everywhere: this machine still answers on loopback
    assert load_settings().public_base_url == "http://127.0.0.1:8100"
    monkeypatch.setenv("HOST", "192.0.2.7")
    assert load_settings().public_base_url == "http://192.0.2.7:8100"
    monkeypatch.setenv("HOST", "::1")
    assert load_settings().public_base_url == "http://[::1]:8100"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://care.example.org/")  # set: it wins (a proxy in front)
    assert load_settings().public_base_url == "https://care.example.org"


def test_database_pool_settings(monkeypatch):
    from telehealth.settings import SettingsError, load_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://app@pgbouncer:6432/telehealth")
    monkeypatch.setenv("DATABASE_POOL_SIZE", "40")
    settings = load_settings()
    assert (settings.database_pool_mode, settings.database_pool_size, settings.direct_database_url) == (
        "session",
        40,
        "postgresql://app@pgbouncer:6432/telehealth",
    )
    monkeypatch.setenv("DATABASE_POOL_MODE", "transaction")
    with pytest.raises(SettingsError, match="DATABASE_DIRECT_URL"):
        load_settings()  # LISTEN/NOTIFY and migrations cannot go through transaction pooling
    monkeypatch.setenv("DATABASE_DIRECT_URL", "postgresql://app@db:5432/telehealth")
    settings = load_settings()
    assert settings.transaction_pooling and settings.direct_database_url == "postgresql://app@db:5432/telehealth"
    monkeypatch.setenv("DATABASE_POOL_MODE", "statement")
    with pytest.raises(SettingsError, match="DATABASE_POOL_MODE"):
        load_settings()
