"""The audit chain's HMAC keys: a secret the database never holds, so whoever can rewrite rows (the tables'
owner, a superuser, a stolen backup) cannot compute hashes that verify.

Each sealed event records the id of the key that sealed it. A key's id is derived from the key itself (an
HMAC of a fixed label), so rotating is only: set the new AUDIT_HMAC_KEY and move the old one into
AUDIT_HMAC_OLD_KEYS. Events sealed before keyed hashing (migration 0029) carry LEGACY_KEY_ID and are
checked with plain SHA-256, and only as the chain's first stretch.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from telehealth.settings import Settings, SettingsError

LEGACY_KEY_ID = "sha256-legacy"
# Development and tests with a DATABASE_URL: a fixed key (their chains need no secrecy). Production refuses it.
DEVELOPMENT_KEY = "development-only-audit-hmac-key-change-me"
EMBEDDED_KEY_FILE = "audit-hmac.key"


def key_id_of(key: bytes) -> str:
    """A short public name for a key: an HMAC of a fixed label, which tells nothing about the key."""
    return "k-" + hmac.new(key, b"telehealth audit key id", hashlib.sha256).hexdigest()[:12]


@dataclass(frozen=True)
class AuditKeys:
    """The key that seals now, and every key (current and old) that verification accepts, by id."""

    current: bytes
    by_id: dict[str, bytes]

    @property
    def current_id(self) -> str:
        return key_id_of(self.current)

    @classmethod
    def of(cls, current: str | bytes, old: tuple[str | bytes, ...] = ()) -> AuditKeys:
        as_bytes = [key.encode() if isinstance(key, str) else key for key in (current, *old)]
        return cls(current=as_bytes[0], by_id={key_id_of(key): key for key in as_bytes})


def audit_keys(settings: Settings) -> AuditKeys:
    """AUDIT_HMAC_KEY (and AUDIT_HMAC_OLD_KEYS); without it, the embedded demo's own random key kept in its
    data folder, or else the fixed development key (production refuses to start without a key)."""
    old = tuple(part.strip() for part in settings.audit_hmac_old_keys.split(",") if part.strip())
    if settings.audit_hmac_key:
        return AuditKeys.of(settings.audit_hmac_key, old)
    if settings.is_production:
        raise SettingsError("AUDIT_HMAC_KEY is required in production")
    if not settings.database_url:
        return AuditKeys.of(_embedded_key(settings.embedded_data_dir.parent / EMBEDDED_KEY_FILE), old)
    return AuditKeys.of(DEVELOPMENT_KEY, old)


@lru_cache(maxsize=4)
def _embedded_key(path: Path) -> bytes:
    """Read the demo's key, making it once (readable by this user only). Two processes starting together
    both end up with the file the first one linked into place."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)  # fails if another process got there first: theirs is the key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip().encode()
