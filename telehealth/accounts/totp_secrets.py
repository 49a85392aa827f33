"""TOTP secrets encrypted at rest: AES-256-GCM with a key from the environment, its id stored with the ciphertext.

Stored form: "v1:<key id>:<base64url(12-byte nonce + ciphertext + tag)>". The account's id is the associated
data, so a ciphertext copied onto another account does not open. TOTP_ENCRYPTION_KEY ("id:key") encrypts;
TOTP_OLD_ENCRYPTION_KEYS ("id:key,id:key") only decrypt, during a rotation. A value without the "v1:" prefix is
a secret stored in clear before migration 0030 (base32 never contains ":"). Anything not under the current key
is re-encrypted when the owner next enters a correct code, or all at once by `encrypt-totp-secrets`
(docs/operations.md, "TOTP secrets: encryption and key rotation").
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.settings import Settings, SettingsError

VERSION = "v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class TotpSecretUnreadable(RuntimeError):
    """A stored secret whose key is not configured, or that does not decrypt (wrong key, tampered, moved)."""


def parse_key(text: str, *, variable: str) -> tuple[str, bytes]:
    """One "id:key" entry: an id of letters, digits, - or _, and 32 random bytes in base64url."""
    key_id, _, encoded = text.strip().partition(":")
    if not _KEY_ID.match(key_id):
        raise SettingsError(f"{variable}: each key is written id:key, the id 1-32 letters, digits, - or _ (got {key_id!r})")
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(f"{variable}: key {key_id!r} is not base64url") from exc
    if len(key) != 32:
        raise SettingsError(f"{variable}: key {key_id!r} must be 32 bytes (base64url of 32 random bytes), got {len(key)}")
    return key_id, key


def new_key_text(key_id: str) -> str:
    """A fresh "id:key" value for TOTP_ENCRYPTION_KEY."""
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


@dataclass(frozen=True)
class TotpKeyring:
    current_id: str
    keys: dict[str, bytes]

    @classmethod
    def from_settings(cls, settings: Settings) -> TotpKeyring:
        current_id, current = parse_key(settings.totp_encryption_key, variable="TOTP_ENCRYPTION_KEY")
        keys = {current_id: current}
        for entry in filter(str.strip, settings.totp_old_encryption_keys.split(",")):
            key_id, key = parse_key(entry, variable="TOTP_OLD_ENCRYPTION_KEYS")
            if key_id in keys and keys[key_id] != key:
                raise SettingsError(f"TOTP_OLD_ENCRYPTION_KEYS: key id {key_id!r} is used twice for different keys")
            keys.setdefault(key_id, key)
        return cls(current_id, keys)


def _associated_data(user_id: uuid.UUID) -> bytes:
    return b"totp-secret:" + user_id.bytes


def seal(secret: str, *, user_id: uuid.UUID, keyring: TotpKeyring) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(keyring.keys[keyring.current_id]).encrypt(nonce, secret.encode(), _associated_data(user_id))
    return f"{VERSION}:{keyring.current_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def unseal(stored: str, *, user_id: uuid.UUID, keyring: TotpKeyring) -> str:
    """The secret in clear (a value stored in clear before encryption is answered as it is)."""
    if not stored.startswith(f"{VERSION}:"):
        return stored
    _, key_id, encoded = stored.split(":", 2)
    if key_id not in keyring.keys:
        raise TotpSecretUnreadable(f"TOTP secret encrypted with key {key_id!r}, which is not in TOTP_ENCRYPTION_KEY or TOTP_OLD_ENCRYPTION_KEYS")
    blob = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    try:
        return AESGCM(keyring.keys[key_id]).decrypt(blob[:12], blob[12:], _associated_data(user_id)).decode()
    except InvalidTag as exc:
        raise TotpSecretUnreadable(f"TOTP secret under key {key_id!r} does not decrypt for this account") from exc


def sealed_with_current_key(stored: str, keyring: TotpKeyring) -> bool:
    return stored.startswith(f"{VERSION}:{keyring.current_id}:")


def resealed(stored: str, *, user_id: uuid.UUID, keyring: TotpKeyring) -> str | None:
    """The value encrypted under the current key, or None when it already is."""
    if sealed_with_current_key(stored, keyring):
        return None
    return seal(unseal(stored, user_id=user_id, keyring=keyring), user_id=user_id, keyring=keyring)


async def encrypt_all_totp_secrets(factory: async_sessionmaker[AsyncSession], settings: Settings, *, batch: int = 500) -> tuple[int, int]:
    """Bring every stored secret under the current key (those in clear, or under an old key), a batch per
    transaction with the rows locked, so sign-ins meanwhile see either form. Answers (changed, checked).
    Safe to run again, and to stop half-way: run it after a rotation, before dropping the old key."""
    from telehealth.accounts.models import UserAccount
    from telehealth.db.engine import transaction

    keyring = TotpKeyring.from_settings(settings)
    changed = checked = 0
    after: uuid.UUID | None = None
    while True:
        async with transaction(factory) as session:
            query = select(UserAccount).where(UserAccount.totp_secret.is_not(None)).order_by(UserAccount.id).limit(batch).with_for_update()
            users = list((await session.execute(query.where(UserAccount.id > after) if after else query)).scalars())
            for user in users:
                assert user.totp_secret is not None
                if (fresh := resealed(user.totp_secret, user_id=user.id, keyring=keyring)) is not None:
                    user.totp_secret = fresh
                    changed += 1
        if not users:
            return changed, checked
        checked += len(users)
        after = users[-1].id
