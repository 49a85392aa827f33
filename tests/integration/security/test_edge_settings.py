"""Production refuses an http or missing PUBLIC_BASE_URL; the embedded demo signs with a random key of its own;
`python app.py` seeds demo accounts only into the embedded database unless SEED_DEMO=true."""

from __future__ import annotations

import pytest

from telehealth.lib.key_texts import new_key_text
from telehealth.settings import DEFAULT_SECRET_KEY, SettingsError, load_settings

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "k" * 40,
    "DATABASE_URL": "postgresql://db/clinic",
    "SMTP_URL": "smtp://mail",
    "STRIPE_API_KEY": "sk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "AUDIT_HMAC_KEY": "a" * 40,
    "AUDIT_ANCHOR_PATH": "/var/lib/telehealth/anchors.jsonl",
    "TOTP_ENCRYPTION_KEY": new_key_text("k1"),
}
NEWCOMER_UNSET = (
    "APP_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "SMTP_URL",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "PUBLIC_BASE_URL",
    "SEED_DEMO",
)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in NEWCOMER_UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMBEDDED_DATA_DIR", str(tmp_path / "data" / "postgres-18"))
    return monkeypatch


@pytest.mark.parametrize("public_base_url", [None, "http://clinic.example", "clinic.example"])
def test_production_refuses_a_missing_or_plain_http_public_base_url(clean_env, public_base_url):
    for name, value in PRODUCTION.items():
        clean_env.setenv(name, value)
    if public_base_url:
        clean_env.setenv("PUBLIC_BASE_URL", public_base_url)
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        load_settings()


def test_production_accepts_an_https_public_base_url_and_refuses_the_default_key(clean_env):
    for name, value in PRODUCTION.items():
        clean_env.setenv(name, value)
    clean_env.setenv("PUBLIC_BASE_URL", "https://clinic.example/")
    assert load_settings().public_base_url == "https://clinic.example"
    clean_env.setenv("SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings()


def test_the_embedded_demo_makes_a_random_key_once_and_keeps_it(clean_env, tmp_path):
    first = load_settings()
    assert first.secret_key != DEFAULT_SECRET_KEY and len(first.secret_key) >= 32
    key_file = tmp_path / "data" / "secret-key"
    assert key_file.read_text() == first.secret_key
    assert key_file.stat().st_mode & 0o077 == 0  # owner only
    assert load_settings().secret_key == first.secret_key  # the same after a restart

    clean_env.setenv("EMBEDDED_DATA_DIR", str(tmp_path / "another" / "postgres-18"))
    assert load_settings().secret_key != first.secret_key  # another demo folder, another key


def test_seed_demo_only_into_the_embedded_database_unless_asked(clean_env):
    assert load_settings().seed_demo is True  # the embedded demo
    clean_env.setenv("DATABASE_URL", "postgresql://db/clinic")
    assert load_settings().seed_demo is False  # a real database: no accounts with published passwords
    clean_env.setenv("SEED_DEMO", "true")
    assert load_settings().seed_demo is True
