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
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from telehealth.lib.key_texts import parse_keyring
from telehealth.settings import Settings

VERSION = "v1"


class TotpSecretUnreadable(RuntimeError):
    """A stored secret whose key is not configured, or that does not decrypt (wrong key, tampered, moved)."""


@dataclass(frozen=True)
class TotpKeyring:
    current_id: str
    keys: dict[str, bytes]

    @classmethod
    def from_settings(cls, settings: Settings) -> TotpKeyring:
        current_id, keys = parse_keyring(
            settings.totp_encryption_key,
            settings.totp_old_encryption_keys,
            current_variable="TOTP_ENCRYPTION_KEY",
            old_variable="TOTP_OLD_ENCRYPTION_KEYS",
        )
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
        raise TotpSecretUnreadable(
            f"TOTP secret encrypted with key {key_id!r}, which is not in TOTP_ENCRYPTION_KEY or TOTP_OLD_ENCRYPTION_KEYS"
        )
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
            query = (
                select(UserAccount)
                .where(col(UserAccount.totp_secret).is_not(None))
                .order_by(col(UserAccount.id))
                .limit(batch)
                .with_for_update()
            )
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
