"""Finding: TOTP secrets were stored in clear (a database dump or backup gave every second factor away).

Now they are sealed with AES-256-GCM under TOTP_ENCRYPTION_KEY, the key's id stored with them; old keys
(TOTP_OLD_ENCRYPTION_KEYS) still open theirs, and a secret in clear or under an old key is re-encrypted at its
owner's next correct code, or by `encrypt-totp-secrets`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code, new_totp_secret
from telehealth.accounts.totp_secrets import TotpKeyring, TotpSecretUnreadable, seal, unseal
from telehealth.db.engine import transaction
from telehealth.lib.key_texts import new_key_text
from telehealth.settings import DEVELOPMENT_TOTP_KEY, SettingsError
from tests.conftest import with_settings
from tests.helpers import PASSWORD, csrf_headers, make_person

OLD_KEY, NEW_KEY = new_key_text("k2025"), new_key_text("k2026")


async def _stored_secret(session_factory, user_id) -> str:
    async with session_factory() as session:
        return (await session.get(UserAccount, user_id)).totp_secret


async def _store(session_factory, user_id, value: str) -> None:
    async with transaction(session_factory) as session:
        await session.execute(update(UserAccount).where(UserAccount.id == user_id).values(totp_secret=value))


async def _sign_in_with_code(client, email: str, secret: str, clock) -> int:
    headers = await csrf_headers(client)
    assert (await client.post("/api/v1/auth/sign-in", json={"email": email, "password": PASSWORD}, headers=headers)).status_code == 200
    code = current_totp_code(secret, at=clock.now())
    headers = await csrf_headers(client)  # the token is bound to the session, which signing in replaced
    return (await client.post("/api/v1/auth/two-factor/verify", json={"code": code}, headers=headers)).status_code


async def test_enrolment_stores_the_secret_encrypted(client, session_factory, settings, clock):
    prescriber = await make_person(
        session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings, enrol_two_factor=False
    )
    headers = await csrf_headers(client)
    assert (
        await client.post("/api/v1/auth/sign-in", json={"email": prescriber.email, "password": PASSWORD}, headers=headers)
    ).status_code == 200
    secret = (await client.post("/api/v1/auth/two-factor/enrol", headers=headers)).json()["secret"]

    stored = await _stored_secret(session_factory, prescriber.user_id)
    assert secret not in stored
    assert stored.startswith("v1:dev:")  # the development key's id, stored with the ciphertext
    keyring = TotpKeyring.from_settings(settings)
    assert unseal(stored, user_id=prescriber.user_id, keyring=keyring) == secret
    with pytest.raises(TotpSecretUnreadable):  # bound to its account: copied onto another, it does not open
        unseal(stored, user_id=uuid.uuid4(), keyring=keyring)
    confirmed = await client.post(
        "/api/v1/auth/two-factor/confirm", json={"code": current_totp_code(secret, at=clock.now())}, headers=headers
    )
    assert confirmed.status_code == 200


async def test_a_rotated_key_still_opens_old_secrets_and_a_correct_code_reencrypts(session_factory, settings, clock):
    before = with_settings(settings, totp_encryption_key=OLD_KEY)
    after = with_settings(settings, totp_encryption_key=NEW_KEY, totp_old_encryption_keys=OLD_KEY)
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=before)
    assert (await _stored_secret(session_factory, prescriber.user_id)).startswith("v1:k2025:")

    from telehealth.asgi import create_app

    async with AsyncTestClient(app=create_app(after, clock=clock), base_url="http://testserver.local") as client:
        assert await _sign_in_with_code(client, prescriber.email, prescriber.totp_secret, clock) == 200
    assert (await _stored_secret(session_factory, prescriber.user_id)).startswith("v1:k2026:")  # re-encrypted on use

    # once re-encrypted, the old key can go
    without_old = with_settings(settings, totp_encryption_key=NEW_KEY)
    clock.advance(timedelta(seconds=30))  # a new step: codes are accepted once
    async with AsyncTestClient(app=create_app(without_old, clock=clock), base_url="http://testserver.local") as client:
        assert await _sign_in_with_code(client, prescriber.email, prescriber.totp_secret, clock) == 200


async def test_the_command_encrypts_secrets_in_clear_and_under_old_keys(database_url, session_factory, settings, clock, monkeypatch):
    from telehealth import cli
    from telehealth.settings import get_settings

    old = with_settings(settings, totp_encryption_key=OLD_KEY)
    in_clear = await make_person(session_factory, role=Role.PRESCRIBER, email="clear@example.org", now=clock.now(), settings=settings)
    await _store(session_factory, in_clear.user_id, in_clear.totp_secret)  # as stored before migration 0030
    under_old = await make_person(session_factory, role=Role.THERAPIST, email="old@example.org", now=clock.now(), settings=old)
    current = await make_person(
        session_factory,
        role=Role.COORDINATOR,
        email="new@example.org",
        now=clock.now(),
        settings=with_settings(settings, totp_encryption_key=NEW_KEY),
    )
    untouched = await _stored_secret(session_factory, current.user_id)

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TOTP_ENCRYPTION_KEY", NEW_KEY)
    monkeypatch.setenv("TOTP_OLD_ENCRYPTION_KEYS", OLD_KEY)
    get_settings.cache_clear()
    try:
        ran = await asyncio.to_thread(CliRunner().invoke, cli.encrypt_totp_secrets_command, [])
        again = await asyncio.to_thread(CliRunner().invoke, cli.encrypt_totp_secrets_command, [])
    finally:
        get_settings.cache_clear()
    assert ran.exit_code == 0, ran.output
    assert "2 of 3" in ran.output
    assert "0 of 3" in again.output

    keyring = TotpKeyring.from_settings(with_settings(settings, totp_encryption_key=NEW_KEY))
    for person in (in_clear, under_old, current):
        stored = await _stored_secret(session_factory, person.user_id)
        assert stored.startswith("v1:k2026:")
        assert unseal(stored, user_id=person.user_id, keyring=keyring) == person.totp_secret
    assert await _stored_secret(session_factory, current.user_id) == untouched


AUDIT_KEYS = {
    "audit_hmac_key": "a" * 40,
    "audit_anchor_path": Path("/var/lib/telehealth/anchors.jsonl"),
    "public_base_url": "https://clinic.example",
}  # production's other settings


def test_keys_are_checked_like_other_secrets(settings):
    with pytest.raises(SettingsError, match="TOTP_ENCRYPTION_KEY must be set in production"):
        with_settings(
            settings, environment="production", secret_key="x" * 40, totp_encryption_key=DEVELOPMENT_TOTP_KEY, **AUDIT_KEYS
        ).validate()
    with pytest.raises(SettingsError, match="TOTP_ENCRYPTION_KEY: key 'k1' must be 32 bytes"):
        with_settings(settings, totp_encryption_key="k1:c2hvcnQ").validate()
    with pytest.raises(SettingsError, match="TOTP_OLD_ENCRYPTION_KEYS"):
        with_settings(settings, totp_old_encryption_keys="no key here").validate()
    with_settings(settings, environment="production", secret_key="x" * 40, totp_encryption_key=NEW_KEY, **AUDIT_KEYS).validate()


def test_a_sealed_secret_fits_the_column(settings):
    longest_id = "k" * 32
    keyring = TotpKeyring.from_settings(with_settings(settings, totp_encryption_key=new_key_text(longest_id)))
    assert len(seal(new_totp_secret(), user_id=uuid.uuid4(), keyring=keyring)) <= UserAccount.__table__.c.totp_secret.type.length
