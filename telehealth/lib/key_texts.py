"""Keys written as "id:key" in the environment (TOTP_ENCRYPTION_KEY, TOTP_OLD_ENCRYPTION_KEYS): parsed here, in the
base, so settings.validate() refuses a malformed one at start without importing the area that uses it
(accounts/totp_secrets.py)."""

from __future__ import annotations

import base64
import binascii
import os
import re

from telehealth.lib.env_settings import SettingsError

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


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


def parse_keyring(current: str, old: str, *, current_variable: str, old_variable: str) -> tuple[str, dict[str, bytes]]:
    """The current key's id, and every key (current and old, comma-separated) by id; refuses an id used twice."""
    current_id, current_key = parse_key(current, variable=current_variable)
    keys = {current_id: current_key}
    for entry in filter(str.strip, old.split(",")):
        key_id, key = parse_key(entry, variable=old_variable)
        if key_id in keys and keys[key_id] != key:
            raise SettingsError(f"{old_variable}: key id {key_id!r} is used twice for different keys")
        keys.setdefault(key_id, key)
    return current_id, keys


def new_key_text(key_id: str) -> str:
    """A fresh "id:key" value (32 random bytes)."""
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"
